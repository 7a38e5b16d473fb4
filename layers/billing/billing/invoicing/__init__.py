"""Invoicing: a closed period becomes one numbered invoice, stored, announced and emailed.

`run` (the workflow's steps: due, issue, send, report), `document` (the PDF), `message`
(the email), `feedback` (SES bounces and complaints), `workflow` (the Amazon States
Language definition, `invoice_run.asl.json`).
The PDF's parts (texts, fonts, drawing, layout) are in the `pdf` package.

May import `billing.core`, `billing.store` and `billing.settings`; never rating's service
or customer code."""
