"""What customers see: an account's usage and running charges for the usage API
(`usage_view`, `account_views`, `credit_view` for prepaid grants) and spend alerts (`spend_alerts`).

May import `billing.core`, `billing.rating.ledger` (to read ledgers), `billing.store`;
never invoicing's run or the rating service."""
