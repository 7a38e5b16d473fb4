"""Webhooks' pure parts: Standard Webhooks signatures (`signing`), what a delivery
carries, its stable id and the retries' backoff (`payload`), and which addresses a webhook
may go to (`addresses`). Delivering is billing.webhooks'; docs/webhooks.md."""
