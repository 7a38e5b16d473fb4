"""Webhooks' pure parts: Standard Webhooks signatures (`signing`), and what a delivery
carries, its stable id and the retries' backoff (`payload`). Delivering is
billing.webhooks'; docs/webhooks.md."""
