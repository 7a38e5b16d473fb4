"""issue_invoices: close, number, build, store and announce one batch's invoices."""

from billing.wiring import invoice_step

handler = invoice_step("issue")
