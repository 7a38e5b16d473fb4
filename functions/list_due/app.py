"""list_due: the invoice run's first step, the (account, period) pairs that are due, in batches."""

from billing.wiring import invoice_step

handler = invoice_step("due")
