"""The pure domain: money, periods, validated fields, usage events, the catalog and
accounts, pricing, usage aggregates, discounts, prepaid credits and their draw, invoice
building and running charges; customer credentials (`credentials`: their form, hash and
judgement).

Imports only itself, `billing.fonts` (data) and libraries (pydantic, Babel): never boto3,
the store, the services above it, a handler or the command line. Everything here is a
function of its arguments, so the local preview, the rater and the tests share it."""
