"""The rater's record decoding fuzzed (docs/fuzzing.md): whatever bytes a record holds,
`decode_record` (the common-shape fast path first) and `decode_fully` (the pydantic model)
answer with the same valid event or the same rejection, whose reason is one of the three a
record's bytes alone decide and whose message is text (no stack trace); never an exception.
Then the rater itself (`rate_batch`, over ledgers in memory) gives every record, however
odd, a final outcome: rated, a duplicate, or a reason code.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from hypothesis import event, example, given
from hypothesis import strategies as st

from billing.core.catalog import Accounts, load_accounts, load_catalog
from billing.core.events import (
    KPL_AGGREGATE_MAGIC,
    MAX_DIMENSIONS,
    MAX_QUANTITY,
    MAX_QUANTITY_DECIMALS,
    MAX_RECORD_BYTES,
    Reason,
    Rejection,
    UsageEvent,
    decode_fully,
    decode_record,
)
from billing.core.owed import DueHint
from billing.core.periods import Period
from billing.rating.rater import StreamRecord
from tests.conftest import EXAMPLES
from tests.fuzz.fuzz_inputs import deep, dumps, fuzz_settings, mostly, mutated, odd_text, spelt
from tests.support.rater_memory import MemoryRater

BYTE_REASONS: Final = {Reason.TOO_LARGE, Reason.MALFORMED_JSON, Reason.SCHEMA_INVALID}
EVENT: Final[dict[str, Any]] = {
    "event_id": "evt-0001",
    "account_id": "acct-1",
    "meter": "api_requests",
    "quantity": 12,
    "timestamp": "2026-11-05T14:30:00Z",
    "dimensions": {"region": "eu-west-1"},
}
CLOUDEVENT: Final[dict[str, Any]] = {
    "specversion": "1.0",
    "id": "ce-1",
    "source": "/gateway",
    "subject": "acct-1",
    "type": "api_requests",
    "time": "2026-11-05T14:30:00Z",
    "data": {"quantity": "0.25", "dimensions": {"region": "us-east-1"}},
}

# Timestamps at the edges: of the calendar, of the range an event may hold, leap seconds
# and days, offsets at their limits, nanoseconds, and forms RFC 3339 does not allow.
EDGE_TIMESTAMPS: Final = [
    "0001-01-01T00:00:00Z",
    "0001-01-02T00:00:00Z",
    "0001-01-02T00:00:00+14:00",
    "0001-02-01T23:59:59Z",
    "0001-02-02T00:00:00Z",
    "0500-06-15T00:00:00Z",
    "9999-12-29T23:59:59.999999999Z",
    "9999-12-30T00:00:00Z",
    "9999-12-31T23:59:60Z",
    "9999-12-31T23:59:59-23:59",
    "2026-12-31T23:59:60Z",
    "2026-06-30T23:59:60+23:59",
    "2024-02-29T12:00:00Z",
    "2026-02-29T12:00:00Z",
    "2026-03-29T02:30:00+01:00",
    "2026-11-05T14:30:00.000000001Z",
    "2026-11-05T14:30:00.1234567890Z",
    "2026-11-05T14:30:00+24:00",
    "2026-11-05T14:30:00-00:00",
    "2026-11-05 14:30:00Z",
    "2026-11-05T14:30:00",
    "2026-11-05T14:30Z",
    "２０２６-11-05T14:30:00Z",
    "2026-11-05T14:30:00Z\n",
]


def assert_decided(data: bytes) -> UsageEvent | Rejection:
    """The promise: both decoders give the same answer, an event within the contract's
    bounds or a rejection with a byte-level reason and a message."""
    full = decode_record(data)
    if len(data) <= MAX_RECORD_BYTES:  # decode_fully's domain: the size is checked before
        assert repr(decode_fully(data)) == repr(full), (data, full)
    if isinstance(full, Rejection):
        assert full.reason in BYTE_REASONS, full
        assert full.message, full
        assert "Traceback" not in full.message, full
        event(str(full.reason))
        return full
    assert isinstance(full, UsageEvent), full
    assert full.quantity.is_finite(), full
    assert 0 <= full.quantity <= MAX_QUANTITY, full
    assert -full.quantity.normalize().as_tuple().exponent <= MAX_QUANTITY_DECIMALS  # type: ignore[operator]
    assert full.timestamp.at.tzinfo is UTC, full
    assert 0 <= full.timestamp.nanos < 1000, full
    assert len(full.dimensions) <= MAX_DIMENSIONS
    assert all(isinstance(v, str) for v in (*full.dimensions, *full.dimensions.values()))
    event("event")
    return full


# Inputs earlier runs found interesting, replayed on every run.
@example(b"")
@example(b"\xef\xbb\xbf{}")
@example(KPL_AGGREGATE_MAGIC + b"{}")
@example(b"[" * 20_000)
@example(b"[" * 16_000)
@example(b'{"a":' * 2_000 + b"0" + b"}" * 2_000)
@example(b"1e999999999999999999999")
@example(b"-0")
@example(b'"\\ud800"')
@example(b"\xed\xa0\x80")
@example(b"{" + b" " * MAX_RECORD_BYTES + b"}")
@given(st.binary(max_size=2048))
@fuzz_settings(scale=2)
def test_any_bytes_are_an_event_or_a_reason(data: bytes) -> None:
    assert_decided(data)


@example(dict(EVENT, quantity=Decimal("1E+999999")))
@example(dict(EVENT, quantity=float("nan")))
@example(dict(EVENT, quantity=float("-inf")))
@example(dict(EVENT, quantity=-0.0))
@example(dict(EVENT, quantity=Decimal("0E-30")))
@example(dict(EVENT, quantity=2**64))
@example(dict(EVENT, dimensions=deep(400)))
@example(dict(EVENT, dimensions={f"k{i}": "v" for i in range(11)}))
@example(dict(EVENT, event_id="\u00e9" * 10))
@example(dict(EVENT, meter="api_requests\u200b"))
@example({**CLOUDEVENT, "data": deep(300)})
@example({**CLOUDEVENT, "specversion": 1.0})
# Found by the long run: a dimension key's own line break shows in the message's location
# (left as it is: the message is the record's own text, docs/fuzzing.md).
@example({**CLOUDEVENT, "data": {"quantity": 1, "dimensions": {"\r\n": 1}}})
@given(
    st.one_of(
        mutated(EVENT),
        mutated(CLOUDEVENT),
        st.builds(lambda t: dict(EVENT, timestamp=t), st.sampled_from(EDGE_TIMESTAMPS)),
        st.builds(lambda t: {**CLOUDEVENT, "time": t}, st.sampled_from(EDGE_TIMESTAMPS)),
    )
)
@fuzz_settings()
def test_events_mutated_field_by_field_are_an_event_or_a_reason(document: Any) -> None:
    assert_decided(dumps(document).encode("utf-8"))


@given(st.one_of(mutated(EVENT), mutated(CLOUDEVENT)).flatmap(spelt))
@fuzz_settings()
def test_events_spelt_oddly_are_an_event_or_a_reason(data: bytes) -> None:
    assert_decided(data)


def test_a_valid_event_spelt_with_escapes_is_the_same_event() -> None:
    # The one document written with \u escapes and written raw is one event.
    escaped = decode_record(json.dumps(EVENT, ensure_ascii=True).encode())
    raw = decode_record(dumps(EVENT).encode())
    assert isinstance(escaped, UsageEvent)
    assert escaped == raw


# --- the rater: every record ends in an outcome ----------------------------------------------

CATALOG: Final = load_catalog(EXAMPLES / "catalog.yaml")
# The examples' accounts and the subscriptions' (plan changes, discounts and credits).
ACCOUNTS: Final = Accounts(
    accounts=[
        *load_accounts(EXAMPLES / "accounts.yaml", CATALOG).accounts,
        *load_accounts(EXAMPLES / "subscriptions" / "accounts.yaml", CATALOG).accounts,
    ]
)
NOW: Final = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
FINAL: Final = {"rated", "duplicate", *(str(reason) for reason in Reason)}

# Mostly known accounts and meters, so that most records reach the checks after decoding.
account_ids = mostly(st.sampled_from([*(a.id for a in ACCOUNTS.accounts), "acct-404"]), odd_text)
meters = mostly(st.sampled_from([*(m.name for m in CATALOG.meters), "unknown_meter"]), odd_text)
timestamps = mostly(
    # Around the clock, in any zone: several periods and local days, DST changes, the future.
    st.datetimes(
        min_value=datetime(2026, 9, 1), max_value=datetime(2027, 1, 1), timezones=st.timezones()
    ).map(lambda at: at.isoformat()),
    st.sampled_from(EDGE_TIMESTAMPS)
    | st.datetimes(
        min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.timezones()
    ).map(lambda at: at.isoformat()),
)
near_valid = st.fixed_dictionaries(
    {
        "event_id": st.sampled_from(["e1", "e2", "e3"]),
        "account_id": account_ids,
        "meter": meters,
        "quantity": mostly(st.integers(0, 10**6), st.sampled_from(["0.5", "1e3", "-1", 1e400])),
        "timestamp": timestamps,
    },
    optional={
        "dimensions": st.dictionaries(
            st.sampled_from(["region", "k"]),
            mostly(st.sampled_from(["eu-west-1", "us-east-1"]), odd_text),
        )
    },
)
records = st.lists(
    mostly(
        near_valid.map(lambda d: dumps(d).encode()),
        near_valid.flatmap(spelt) | st.binary(max_size=64),
    ),
    min_size=1,
    max_size=12,
)


def ancient(timestamp: str) -> bytes:
    return dumps({**EVENT, "account_id": "acct-3", "timestamp": timestamp}).encode()


# Found by fuzzing: an event of January of year 1 went into a period that starts before
# year 1 in zones east of UTC, and one of year 500 into a period whose due hint was written
# "500-07-01..." (the invoice run could not read it back). The first is now refused.
@example([ancient("0001-01-02T00:00:00Z")])
@example([ancient("0500-06-15T00:00:00Z"), ancient("0001-02-02T00:00:00+00:00")])
@given(records)
@fuzz_settings(scale=0.5)
def test_the_rater_gives_every_record_an_outcome(datas: list[bytes]) -> None:
    rater = MemoryRater(CATALOG, ACCOUNTS.by_id, NOW)
    pending = [StreamRecord("shard-0", str(100 + i), data) for i, data in enumerate(datas)]
    for _ in range(len(pending) + 1):  # a deferred record waits one invocation at most
        if not pending:
            break
        pending = rater.deliver(pending)
    assert not pending
    assert len(rater.final) == len(datas)
    assert set(rater.final.values()) <= FINAL, rater.final
    assert not rater.applied_twice
    assert_periods_are_placed(rater)
    for outcome in set(rater.final.values()):
        event(outcome)


def assert_periods_are_placed(rater: MemoryRater) -> None:
    """Every period a rated event went into can be invoiced: its bounds are instants in the
    account's zone, and its due hint reads back as written (a period of year 1's January,
    or of a year before 1000, could not be, before the fuzzer found them)."""
    for account_id, ledger in rater.ledgers.items():
        if account_id not in ACCOUNTS.by_id:  # an unknown account's: nothing rated
            continue
        tz = ACCOUNTS.by_id[account_id].zone
        for key in ledger.usage:
            period = Period.parse(key)
            assert period.start(tz) < period.end(tz)
            hint = DueHint.of(period, tz)
            assert datetime.strptime(hint.due_text, "%Y-%m-%dT%H:%M:%SZ") == hint.due_at.replace(
                tzinfo=None
            )
