"""The values a `unique_count` meter has seen, remembered as digests (pure).

A value counts once per period (or phase begun inside it: the meter's stored name in the
phase), meter and share (every event of the meter, "", the events passing one filtered
charge of the phase's plan, its filter key, or those passing none of a meter the plan
charges only through filters, `UNPRICED_SHARE`). Its digest is claimed exactly as an
event id is: in the same set of the account's digests, inline in the ledger by period,
then in content-named chunks or, for a keyed account, one claim item each. So the claim
commits in the one ledger write that adds the 1 to the aggregate, and a retry or a second
writer finds it claimed (docs/table-design.md, "Distinct values").

The digest is keyed apart from event ids (BLAKE2b's personalisation), so a value can never
be taken for an event id or the other way round, and its fields are written as a JSON
list, so no two different (period, meter, field, share, value) write the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Final

from billing.core.catalog import Account, Catalog, CatalogError
from billing.core.events import UsageEvent
from billing.core.periods import Period, PeriodError
from billing.core.phases import Phases
from billing.core.unpriced import UNPRICED_SHARE, unpriced_dimension
from billing.rating.ledger import DIGEST_BYTES

_PERSON: Final = b"unique-value"
ALL_EVENTS: Final = ""  # the share of every event of the meter


def value_digest(period: str, meter: str, field: str, share: str, value: str) -> bytes:
    """The digest under which `value` (of the dimension `field`) is remembered as seen in
    one share of a period. With the field in it, a catalog that makes a meter count another
    dimension starts that dimension's values from none."""
    content = json.dumps([period, meter, field, share, value], ensure_ascii=False).encode()
    return hashlib.blake2b(content, digest_size=DIGEST_BYTES, person=_PERSON).digest()


def value_candidates(
    events: Iterable[UsageEvent], accounts: dict[str, Account], catalog: Catalog
) -> list[bytes]:
    """Every value digest these events could claim (a superset: an event the rater rejects
    or finds a duplicate claims none), for a keyed account's look-up of its claim items."""
    found: list[bytes] = []
    meters = catalog.meters_by_name
    phases: dict[str, Phases] = {}
    for event in events:
        meter = meters.get(event.meter)
        account = accounts.get(event.account_id)
        if meter is None or meter.aggregation != "unique_count" or account is None:
            continue
        field = meter.field or ""
        value = event.dimensions.get(field)
        plan = catalog.plans_by_id.get(account.plan)
        if value is None or plan is None:
            continue
        try:
            period = Period.containing(event.timestamp.at, account.zone)
            key = meter.name
            if account.changes:  # kept and priced in its phase, as the rater does
                if account.id not in phases:
                    phases[account.id] = Phases(account, catalog)
                key, plan = phases[account.id].placed(key, event.timestamp.at, period)
        except (PeriodError, CatalogError):
            continue
        shares = [ALL_EVENTS] + [
            charge.filter_key
            for charge in plan.filtered_charges.get(meter.name, ())
            if charge.accepts(event.dimensions)
        ]
        if len(shares) == 1 and unpriced_dimension(plan, meter.name) is not None:
            shares.append(UNPRICED_SHARE)  # no charge takes it: its value counts as unpriced
        found += [value_digest(str(period), key, field, share, value) for share in shares]
    return found
