"""Corrections: where every cent came from, and mistakes fixed without rewriting history.
An issued invoice is never edited.

- From the raw archive: `replay` (archived records rated again by the rater itself, into
  ledgers held in memory), `sources` (what a correction reads: a period's replay, its
  stored or previewed invoice), `rerate` (what a period's invoices would be, with the
  current or another catalog, against what is stored), `open_period` (an open period's
  aggregates replaced while the rater keeps rating), `explain` (the events, aggregate and
  price steps behind each line): docs/corrections.md.
- Credit notes: `credit_notes` (the service: `billing invoices void`, through the Send
  function, which holds the invoice bucket's, the bus's and SES's grants and the sender's
  settings), `credit_note_pdf` (drawn by the invoice's layout), `credit_note_email` (its
  email and its CreditNoteIssued event): docs/invoicing.md, *Credit notes*. What a
  correction credits is pure and lives in the core (`billing.core.credit_notes`,
  `billing.core.corrections`); the records in the store (`billing.store.credit_notes`).

May import the stages' services (the rating service, `billing.invoicing` for the PDF's
layout and the email's delivery), `billing.settings`, the store and the core; nothing
below imports it but the wiring."""
