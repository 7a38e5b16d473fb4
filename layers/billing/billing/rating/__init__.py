"""Rating: stream records become usage in the account ledger, exactly once.

`intake` (records to accepted events or rejections), `rater` (a batch judged against the
ledger: pure), `account_batch` (one account's part of a batch, record by record), `records`
(a stream record, its outcome, the ledger write), `ledger` (the ledger item's model),
`archive` (the raw archive's framing), `service` (the rating service: reads and writes
through `billing.store`).

May import `billing.core` and, for `service` only, `billing.store`; never invoicing or
customer code."""
