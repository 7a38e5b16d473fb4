"""send_invoices: email one batch's stored invoices, at most once each."""

from billing.wiring import invoice_step

handler = invoice_step("send")
