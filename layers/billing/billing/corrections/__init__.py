"""Corrections: where every cent came from, and mistakes fixed without rewriting history.

`replay` (the raw archive rated again by the rater's own rules, into ledgers held in
memory), `rerate` (what a period's aggregates and invoice would be from the archive, with
the current or another catalog, against what is stored), `explain` (the events, aggregate
and price steps behind each line of an invoice or preview).

May import the stages' services (the rating service), the store and the core."""
