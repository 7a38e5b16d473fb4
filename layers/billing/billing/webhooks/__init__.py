"""Signed webhooks: the domain events operators subscribe an HTTPS endpoint to, signed the
Standard Webhooks way, each with an id that stays the same across retries so receivers
dedupe. See docs/webhooks.md."""
