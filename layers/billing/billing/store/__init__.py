"""The store layer: DynamoDB and S3 behind classes that speak the domain's language, and the
other AWS calls the project makes (Step Functions, EventBridge, SES; for the command line,
a deployed function and the local runtime's test clock in SSM).

Nothing outside this package sees a botocore ClientError: conflicts, throttling and
outages become the exceptions in `billing.store.errors`. What the SDK's own retries do not
cover (a batch left partly undone, a lost race on a conditional write, S3's 409) is tried
again under the named policies of `billing.store.retry`, and nowhere else.

- Ledgers: `ledger_store` (read, write, close; the public face), `ledger_items` (item
  shapes and keys), `id_chunks` (deduplication state at hand), `period_items` (periods
  kept outside a ledger, and archives).
- Invoices: `invoice_store` (the public face), `invoice_records` (the record),
  `invoice_numbers` (the gap-free sequence, and the prepaid credits drawn with it),
  `credit_balances` (what each account's grants gave), `invoice_emails` (the email's states);
  `documents` (JSON and PDF in S3), `mailer` (SES), `events` (EventBridge).
- `due_hints` (each account's due hint and the ledger table's index of them, by due time);
  `run_files` (an invoice run's manifest, its batches' results and its report, in S3).
- `api_keys` (customer keys and portal links, by hash), `throttle_keys` (their API Gateway
  keys in the customer API's usage plan).
- `config_store` (catalog and accounts), `quarantine`, `alert_claims` (and `alert_notices`:
  a customer's alert's claim with its email's state), `customer_thresholds`, `workflows`,
  `batches` (BatchGetItem / BatchWriteItem within limits), `capacity` (units used).
"""
