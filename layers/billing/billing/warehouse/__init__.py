"""The warehouse: usage and invoices as tables for Athena and DuckDB (docs/warehouse.md).

`tables` (the tables declared once: the stack's Glue tables and the local Parquet schema
come from it), `rows` (pure: a table's rows from an archived record, a period's usage by
day, an invoice document, a quarantine document), `export` (what each table is read from,
through the store). May import the core, rating's pure model (`billing.rating.archive`,
`billing.rating.ledger`) and the store; never a service above it.
"""
