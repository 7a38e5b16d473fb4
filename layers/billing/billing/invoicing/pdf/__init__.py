"""The invoice PDF's parts, put together by `billing.invoicing.document`.

`text` (text as drawn: cleaned, its emoji runs counted against the budget), `font_plan`
(which fonts a document uses), `canvas` (the fpdf2 document that wraps, measures and
places text, with the fpdf2 fix it needs), `page` (every text the invoice prints, for the
account's locale), `layout` (the sections drawn in page order)."""
