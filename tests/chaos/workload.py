"""A seeded chaos workload: a catalog and accounts with plan changes, discounts, prepaid
credits and unique_count / latest meters (CONTRACT.md 2a), and a stream of records over
October and November 2026: valid events, producer resends of them (new records, same
event id), poison pills and other bad records, and corrected resends of bad ones.

Every record carries what it was generated to be (`Sent.meant`), so the oracle's own
judgement of the bytes can be checked against the generator's intent.
"""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

# The rater's clock: after every account's November has ended (New York's ends at 05:00
# UTC), before the invoice run's clock (the latest end plus the hour of grace).
RATE_CLOCK = datetime(2026, 12, 1, 5, 30, tzinfo=UTC)
# Accounts are pushed on 1 October: their first due period is October.
PUSHED_AT = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
FIRST_DAY, AFTER_LAST_DAY = date(2026, 10, 1), date(2026, 12, 1)
PERIODS = ("2026-10", "2026-11")
ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo", "Asia/Kolkata")
REGIONS = ("eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-south-1")
METERS = ("api_requests", "storage_gb_hours", "seats", "exports", "active_users", "seats_now")
USD_PLANS, EUR_PLANS = ("team", "pro"), ("starter-eur", "growth-eur")
PRODUCER_DUPLICATES = 0.05
# How many accounts get two `latest` events at one instant on either side of the reshard.
RESHARD_TIES = 12
BAD_RECORDS = 0.02


def catalog() -> dict[str, Any]:
    return {
        "meters": [
            {"name": "api_requests", "unit": "request", "aggregation": "sum"},
            {"name": "storage_gb_hours", "unit": "GB-hour", "aggregation": "sum"},
            {"name": "seats", "unit": "seat", "aggregation": "max"},
            {"name": "exports", "unit": "export", "aggregation": "count"},
            {
                "name": "active_users",
                "unit": "user",
                "aggregation": "unique_count",
                "field": "user_id",
            },
            {"name": "seats_now", "unit": "seat", "aggregation": "latest"},
        ],
        "plans": [_team(), _pro(), _starter_eur(), _growth_eur()],
    }


def _team() -> dict[str, Any]:
    return {
        "id": "team",
        "name": "Team",
        "currency": "USD",
        "fixed_fee": "19.00",
        "charges": [
            {"meter": "api_requests", "model": "per_unit", "unit_price": "0.000004"},
            {"meter": "seats", "model": "per_unit", "unit_price": "15.00"},
            {
                "meter": "active_users",
                "model": "graduated",
                "tiers": [{"up_to": 10, "unit_price": "0"}, {"up_to": None, "unit_price": "0.50"}],
            },
            {"meter": "seats_now", "model": "per_unit", "unit_price": "2.25"},
        ],
    }


def _pro() -> dict[str, Any]:
    return {
        "id": "pro",
        "name": "Pro",
        "currency": "USD",
        "fixed_fee": "49.00",
        "minimum_commitment": "100.00",
        "charges": [
            {
                "meter": "api_requests",
                "model": "graduated",
                "tiers": [
                    {"up_to": 20000, "unit_price": "0"},
                    {"up_to": 200000, "unit_price": "0.0002", "flat_fee": "5.00"},
                    {"up_to": None, "unit_price": "0.0001"},
                ],
            },
            {
                "meter": "storage_gb_hours",
                "model": "per_unit",
                "unit_price": "0.00012",
                "filters": {"region": ["eu-west-1", "eu-central-1"]},
            },
            {
                "meter": "storage_gb_hours",
                "model": "per_unit",
                "unit_price": "0.00010",
                "filters": {"region": ["us-east-1", "us-west-2"]},
            },
            {
                "meter": "seats",
                "model": "volume",
                "tiers": [
                    {"up_to": 1000, "unit_price": "1.20"},
                    {"up_to": 3000, "unit_price": "1.00", "flat_fee": "20.00"},
                    {"up_to": None, "unit_price": "0.80", "flat_fee": "50.00"},
                ],
            },
            {"meter": "exports", "model": "package", "package_size": 10, "package_price": "0.50"},
            {"meter": "active_users", "model": "per_unit", "unit_price": "0.35"},
            {
                "meter": "seats_now",
                "model": "volume",
                "tiers": [
                    {"up_to": 2000, "unit_price": "0.10"},
                    {"up_to": None, "unit_price": "0.07", "flat_fee": "3.00"},
                ],
            },
        ],
    }


def _starter_eur() -> dict[str, Any]:
    return {
        "id": "starter-eur",
        "name": "Starter",
        "currency": "EUR",
        "fixed_fee": "9.00",
        "charges": [
            {"meter": "api_requests", "model": "per_unit", "unit_price": "0.000015"},
            {"meter": "exports", "model": "package", "package_size": 3, "package_price": "0.20"},
            {"meter": "active_users", "model": "per_unit", "unit_price": "0.25"},
        ],
    }


def _growth_eur() -> dict[str, Any]:
    return {
        "id": "growth-eur",
        "name": "Growth",
        "currency": "EUR",
        "fixed_fee": "29.00",
        "minimum_commitment": "60.00",
        "charges": [
            {"meter": "api_requests", "model": "per_unit", "unit_price": "0.00001"},
            {
                "meter": "storage_gb_hours",
                "model": "per_unit",
                "unit_price": "0.00011",
                "filters": {"region": ["eu-west-1", "eu-central-1"]},
            },
            {"meter": "seats_now", "model": "per_unit", "unit_price": "1.10"},
            {"meter": "active_users", "model": "per_unit", "unit_price": "0.20"},
        ],
    }


def account_id(n: int) -> str:
    return f"acct-{n:05d}"


def _day(rng: random.Random, low: date, high: date) -> date:
    """A day in [low, high)."""
    return low + timedelta(days=rng.randrange((high - low).days))


def accounts(rng: random.Random, count: int) -> dict[str, Any]:
    return {"accounts": [_account(rng, n) for n in range(count)]}


def _account(rng: random.Random, n: int) -> dict[str, Any]:
    plans = EUR_PLANS if n % 10 == 9 else USD_PLANS
    account: dict[str, Any] = {
        "id": account_id(n),
        "name": f"Customer {n}",
        "email": f"billing{n}@example.com",
        "plan": rng.choice(plans),
        "timezone": ZONES[n % len(ZONES)],
        "tax_rate": rng.choice(["0", "0.20", "0.075"]),
    }
    # Every subscription starts in October at the earliest: an account with no start
    # would be subscribed (and invoiced) for September as well.
    low, high = FIRST_DAY, AFTER_LAST_DAY
    roll = rng.random()
    if roll < 0.10:
        low = _day(rng, date(2026, 10, 2), date(2026, 11, 20))
    elif roll < 0.16:
        high = _day(rng, date(2026, 10, 20), date(2026, 11, 29))
        account["end"] = high.isoformat()
    account["start"] = low.isoformat()
    if rng.random() < 0.3 and (high - low).days > 3:
        effective = _day(rng, low + timedelta(days=1), high)
        other = plans[1] if account["plan"] == plans[0] else plans[0]
        account["changes"] = [{"effective": effective.isoformat(), "plan": other}]
    account.update(_discounts_and_credits(rng))
    return account


def _discounts_and_credits(rng: random.Random) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    discounts = []
    if rng.random() < 0.2:
        percent = rng.choice(["10", "12.5", "33.3", "100"])
        periods = rng.randint(1, 3)
        discounts.append(
            {"id": "launch", "percent": percent, "from": "2026-10", "periods": periods}
        )
    if rng.random() < 0.1:
        discounts.append(
            {
                "id": "goodwill",
                "amount": rng.choice(["20.00", "250.00"]),
                "from": "2026-11",
                "periods": 1,
            }
        )
    if discounts:
        extra["discounts"] = discounts
    credits = []
    if rng.random() < 0.25:
        credits.append(
            {
                "id": "prepay",
                "amount": rng.choice(["40.00", "150.00", "900.00"]),
                "granted": "2026-10-01",
            }
        )
    if rng.random() < 0.15:
        grant = {
            "id": "promo",
            "amount": "25.00",
            "granted": rng.choice(["2026-10-20", "2026-11-05"]),
        }
        if rng.random() < 0.5:
            grant["expires"] = rng.choice(["2026-11-15", "2027-01-01"])
        credits.append(grant)
    if credits:
        extra["credits"] = credits
    return extra


@dataclass
class Sent:
    """One record as the producer puts it: its bytes and partition key, and what it was
    generated to be: "rated", "duplicate" or a rejection reason."""

    data: bytes
    partition_key: str
    meant: str


def _stamp(rng: random.Random, account: dict[str, Any]) -> str:
    """An instant within the account's subscription in October or November, written in
    its local offset or in UTC, sometimes with a fraction of up to 9 digits."""
    zone = ZoneInfo(account["timezone"])
    low = date.fromisoformat(account["start"])
    high = date.fromisoformat(account["end"]) if "end" in account else AFTER_LAST_DAY
    day = _day(rng, low, high)
    local = datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(
        seconds=rng.randrange(86_400)
    )
    # A local midnight plus seconds may cross a DST change: keep the local day.
    local = local.astimezone(zone)
    if local.date() != day:
        local = datetime(day.year, day.month, day.day, 12, tzinfo=zone)
    text = local.astimezone(UTC if rng.random() < 0.5 else zone).isoformat()
    if rng.random() < 0.2:
        digits = rng.choice([3, 6, 9])
        fraction = "." + str(rng.randrange(10**digits)).zfill(digits)
        text = text[:19] + fraction + text[19:]
    return text.replace("+00:00", "Z")


def _event(rng: random.Random, account: dict[str, Any], event_id: str) -> dict[str, Any]:
    meter = rng.choice(METERS)
    event: dict[str, Any] = {
        "event_id": event_id,
        "account_id": account["id"],
        "meter": meter,
        "timestamp": _stamp(rng, account),
    }
    roll = rng.random()
    if roll < 0.6:
        event["quantity"] = rng.randint(0, 5000)
    elif roll < 0.85:
        event["quantity"] = f"{rng.randint(0, 999)}.{rng.randint(0, 99):02d}"
    else:
        event["quantity"] = f"{rng.randint(0, 9)}.{rng.randrange(10**12):012d}"
    if meter == "storage_gb_hours":
        event["dimensions"] = {"region": rng.choice(REGIONS)}
    elif meter == "active_users" and rng.random() < 0.95:
        event["dimensions"] = {"user_id": f"user-{rng.randrange(40)}"}
    return event


def _encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


class Stream:
    """The records in the order the producer puts them, built up one by one."""

    def __init__(self, rng: random.Random, book: dict[str, Any]) -> None:
        self.rng = rng
        self.accounts = book["accounts"]
        weights = [1 / (rank**0.7) for rank in range(1, len(self.accounts) + 1)]
        self.cumulative = list(itertools.accumulate(weights))
        self.records: list[Sent] = []
        self.resends: list[tuple[int, Sent]] = []  # (put after this many records, resend)
        self.last_seats_now: dict[str, str] = {}
        self.serial = 0

    def pick(self) -> dict[str, Any]:
        """An account, skewed (Zipf 0.7): a few busy accounts, a long tail."""
        account: dict[str, Any] = self.rng.choices(self.accounts, cum_weights=self.cumulative)[0]
        return account

    def _new_id(self) -> str:
        self.serial += 1
        return f"evt-{self.serial:09d}"

    def valid(self) -> None:
        account = self.pick()
        event = _event(self.rng, account, self._new_id())
        if event["meter"] == "seats_now":
            # Ties for `latest`: the later record on the stream wins.
            if account["id"] in self.last_seats_now and self.rng.random() < 0.1:
                event["timestamp"] = self.last_seats_now[account["id"]]
            self.last_seats_now[account["id"]] = event["timestamp"]
        self.records.append(Sent(_encode(event), account["id"], "rated"))
        if self.rng.random() < PRODUCER_DUPLICATES:
            self._resend_later(event, account)

    def _resend_later(self, event: dict[str, Any], account: dict[str, Any]) -> None:
        """The producer sends the event again (a retry it could not tell had landed):
        same event id, sometimes with another quantity or timestamp (the first wins)."""
        again = dict(event)
        if self.rng.random() < 0.3:
            again["quantity"] = self.rng.randint(1, 99)
        if self.rng.random() < 0.2:
            again["timestamp"] = _stamp(self.rng, account)
        delay = self.rng.randint(0, 3000)
        self.resends.append(
            (len(self.records) + delay, Sent(_encode(again), account["id"], "duplicate"))
        )

    def flush_resends(self, final: bool = False) -> None:
        due = [(at, sent) for at, sent in self.resends if final or at <= len(self.records)]
        self.resends = [
            (at, sent) for at, sent in self.resends if not final and at > len(self.records)
        ]
        self.records.extend(sent for _, sent in due)


def _bad(stream: Stream) -> None:
    """A bad record: a poison pill (not UTF-8, not JSON, too large, not an event) or an event
    rejected for its content; some of the latter are resent corrected (same id: rated)."""
    rng = stream.rng
    account = stream.pick()
    event = _event(rng, account, stream._new_id())
    kind = rng.choice(
        [
            "binary",
            "truncated",
            "too_large",
            "array",
            "negative",
            "ghost",
            "meter",
            "future",
            "before",
        ]
    )
    key = account["id"]
    if kind == "binary":
        data, meant = bytes([0xFF, 0xFE, 0x00]) + rng.randbytes(20), "MALFORMED_JSON"
    elif kind == "truncated":
        data, meant = _encode(event)[: rng.randint(1, 30)], "MALFORMED_JSON"
    elif kind == "too_large":
        event["dimensions"] = {"pad": "x" * 200}
        data, meant = _encode(event) + b" " * 17_000, "TOO_LARGE"
    elif kind == "array":
        data, meant = b"[1,2,3]", "SCHEMA_INVALID"
    elif kind == "negative":
        data, meant = _encode(event | {"quantity": -1}), "SCHEMA_INVALID"
    elif kind == "ghost":
        data, meant = _encode(event | {"account_id": "acct-ghost"}), "UNKNOWN_ACCOUNT"
        key = "acct-ghost"
    elif kind == "meter":
        data, meant = _encode(event | {"meter": "bogus_meter"}), "UNKNOWN_METER"
    elif kind == "future":
        ahead = (RATE_CLOCK + timedelta(minutes=10)).isoformat().replace("+00:00", "Z")
        data, meant = _encode(event | {"timestamp": ahead}), "FUTURE_TIMESTAMP"
    else:
        data, meant = _encode(event | {"timestamp": "2026-09-15T12:00:00Z"}), "NOT_SUBSCRIBED"
    stream.records.append(Sent(data, key, meant))
    if kind in ("negative", "meter", "future", "before") and rng.random() < 0.5:
        stream.records.append(Sent(_encode(event), key, "rated"))  # corrected: same id


def records(
    rng: random.Random, book: dict[str, Any], count: int, ties: int = RESHARD_TIES
) -> list[Sent]:
    """About `count` records: valid events, 5% of them sent again later, 2% bad ones, and
    `ties` pairs of `latest` events tied across the reshard."""
    stream = Stream(rng, book)
    while len(stream.records) + len(stream.resends) < count:
        if rng.random() < BAD_RECORDS:
            _bad(stream)
        else:
            stream.valid()
        stream.flush_resends()
    stream.flush_resends(final=True)
    return _ties_across_the_reshard(stream, ties)


def _ties_across_the_reshard(stream: Stream, ties: int) -> list[Sent]:
    """The records with, around the middle (where the stream is resharded), pairs of
    seats_now events of one account at the same instant, the last nanosecond of its
    November: one just before the middle, the other just after (on a child shard when the
    account's shard was split). The second is later on the stream: it is November's latest."""
    middle = len(stream.records) // 2
    before: list[Sent] = []
    after: list[Sent] = []
    for account in [a for a in stream.accounts if "end" not in a][:ties]:
        zone = ZoneInfo(account["timezone"])
        last = datetime(2026, 12, 1, tzinfo=zone).astimezone(UTC) - timedelta(seconds=1)
        instant = last.isoformat()[:19] + ".999999999Z"
        for side, quantity in ((before, 111), (after, 222)):
            event = {
                "event_id": stream._new_id(),
                "account_id": account["id"],
                "meter": "seats_now",
                "quantity": quantity,
                "timestamp": instant,
            }
            side.append(Sent(_encode(event), account["id"], "rated"))
    # The stream is split at the middle of the whole list: right between the two halves.
    return stream.records[:middle] + before + after + stream.records[middle:]
