"""Usage billing: the pure core (events, catalog, pricing, periods, invoices) and, later,
the store layer that persists it. Nothing in the core calls AWS."""
