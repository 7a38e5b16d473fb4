"""Invoicing: a closed period becomes one numbered invoice, stored, announced and emailed.

The invoice workflow's steps, one module each: `due` (what is due, found by the accounts'
due hints; `due_index` keeps them on a push and rebuilds them), `issue` (close,
render, number, store, announce and email a batch; `closed` the invoice a closed period
makes, before and after numbering, with its prepaid credits), `send` (email what Issue could not,
and an operator's resend), `report` (the run's counts). `steps` holds what each step takes
and returns (pydantic models, the JSON between the states); `delivery` the email path
Issue and Send share, `pacing` its pace (each batch's share of SES's send rate);
`failures` an account's failure record; `ports` what the steps need of the stores.
`document` (the PDF), `message` (the email), `feedback` (SES bounces and complaints),
`workflow` (the Amazon States Language definition, `invoice_run.asl.json`).
The PDF's parts (texts, fonts, drawing, layout) are in the `pdf` package.

May import `billing.core`, `billing.store` and `billing.settings`; never rating's service
or customer code."""
