"""Corrections: an issued invoice is never edited; what it over-charged is credited by a
credit note of its own (docs/invoicing.md, *Credit notes*).

`credit_notes` (the service: `billing invoices void`, through the Send function, which holds
the invoice bucket's, the bus's and SES's grants and the sender's settings), `credit_note_pdf`
(the PDF, drawn by the invoice's layout), `credit_note_email` (its email and its
CreditNoteIssued event). What a correction credits is pure and lives in the core
(`billing.core.credit_notes`, `billing.core.corrections`); the records in the store
(`billing.store.credit_notes`).

May import `billing.invoicing` (the PDF's layout, the email's delivery), `billing.core`,
`billing.store` and `billing.settings`; nothing below imports it but the wiring."""
