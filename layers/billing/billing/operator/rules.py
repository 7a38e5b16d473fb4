"""The rules a write of the catalog or the accounts keeps, wherever it comes from: the
command line's pushes (a file) and the operator API (one account, or the catalog whole)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Final

from billing.core.catalog import Account, Catalog
from billing.rating.intake import FUTURE_TOLERANCE
from billing.settings import CONFIG_CACHE_SECONDS

# How much later than a push a plan change it adds, removes or edits must take effect: until
# then a rater may price events after it under the accounts it read before the push.
PUSH_LEAD: Final = FUTURE_TOLERANCE + timedelta(seconds=CONFIG_CACHE_SECONDS)


def catalog_orphans(catalog: Catalog, stored: Iterable[Account]) -> list[str]:
    """The stored accounts whose plans (now or from a change on) `catalog` no longer has,
    as `id (plan)`, sorted: such a catalog is refused, or the accounts would no longer
    validate."""
    return sorted(
        f"{account.id} ({plan})"
        for account in stored
        for plan in dict.fromkeys([account.plan, *(c.plan for c in account.changes)])
        if plan not in catalog.plans_by_id
    )


def orphans_message(orphans: list[str]) -> str:
    return f"stored accounts use plans this catalog no longer has: {', '.join(orphans)}"
