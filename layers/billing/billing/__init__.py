"""Usage billing, deployed as the functions' layer. The folders follow the flow:

- `core/`: the pure domain (money, periods, validated fields, usage events, catalog and
  accounts, pricing, usage aggregates, invoice building, running charges). No AWS.
- `rating/`: from stream records to the account ledger (intake, the batch rater, the
  ledger item, the rating service, the raw archive's framing).
- `invoicing/`: the invoice run's steps, the PDF, the email and its feedback, the
  workflow's definition.
- `customer/`: what customers see: usage views for the API and spend alerts.
- `store/`: every AWS call (DynamoDB, S3, SES, EventBridge, Step Functions).
- `settings.py` (names, and each function's settings read from its environment),
  `wiring.py` (builds the services for a handler), `fonts/` (the invoice fonts, data only).

What may import what is checked by import-linter (`make lint`, contracts in
pyproject.toml): see docs/architecture.md.
"""
