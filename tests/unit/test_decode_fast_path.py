"""The common-shape fast path of `decode_record` gives every record exactly the outcome of
the full `UsageEventSchema` path: the same event, or the same reason and message."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from billing.core.events import (
    MAX_RECORD_BYTES,
    Reason,
    Rejection,
    UsageEvent,
    _common_event,
    decode_fully,
    decode_record,
)

BASE: dict[str, Any] = {
    "event_id": "evt-0001",
    "account_id": "acct-1",
    "meter": "api_requests",
    "quantity": 12,
    "timestamp": "2026-11-05T14:30:00Z",
}


def record(*, ascii: bool = False, **changes: Any) -> bytes:
    fields = {**BASE, **changes}
    document = {k: v for k, v in fields.items() if v is not ...}
    return json.dumps(document, ensure_ascii=ascii).encode()


def assert_same_outcome(data: bytes) -> UsageEvent | Rejection:
    """decode_record (fast path first) and decode_fully agree exactly on `data`."""
    fast, full = decode_record(data), decode_fully(data)
    assert type(fast) is type(full), (data, fast, full)
    assert fast == full, (data, fast, full)
    assert repr(fast) == repr(full), (data, fast, full)  # Decimal digits and exponent too
    common = _common_event(data)
    if common is not None:
        assert repr(common) == repr(full), (data, common, full)
    return full


COMMON_RECORDS = [
    record(),
    record(quantity=0),
    record(quantity=-0),
    record(quantity=10**15),
    record(dimensions={"region": "eu-west-1"}),
    record(dimensions={}),
    record(dimensions={f"k{i}": "v" for i in range(10)}),
    record(dimensions={"k" * 64: "v" * 256}),
    record(timestamp="2026-11-05T14:30:00.123456Z"),
    record(timestamp="2026-11-05T14:30:00.5+05:30"),
    record(timestamp="2026-11-05T14:30:59-23:59"),
    record(timestamp="2026-02-28T23:59:59+00:00"),
    record(event_id="!" + "~" * 127, account_id="A" * 64, meter="a._-9" * 12),
    b'{"event_id":"e","account_id":"a","meter":"m","quantity":1,"timestamp":"2026-11-05T14:30:00Z"}',
    b' \n\t{"event\\u005fid":"\\u0065","account_id":"a","meter":"m","quantity":1,'
    b'"timestamp":"2026-11-05T14:30:00Z"} \r\n',
    # Duplicate keys: the last one wins, as in the full path.
    b'{"event_id":"e","event_id":"f","account_id":"a","meter":"m","quantity":1,'
    b'"timestamp":"2026-11-05T14:30:00Z"}',
    b'{"event_id":"e","account_id":"a","meter":"m","quantity":1,'
    b'"timestamp":"2026-11-05T14:30:00Z","dimensions":{"k":"1","k":"2"}}',
    # Escapes in keys and values; lengths in characters, not bytes.
    record(event_id="evt/1").replace(b"evt/1", b"evt\\/1"),
    record().replace(b'"meter"', b'"met\\u0065r"'),
    record(dimensions={"k": "\U0001f600" * 256}),
    record(dimensions={"k" * 63 + "\u00e9": "v"}),
    record(dimensions={"\U0001f600": "v"}, ascii=True),
]


@pytest.mark.parametrize("data", COMMON_RECORDS, ids=range(len(COMMON_RECORDS)))
def test_common_records_take_the_fast_path_to_the_same_event(data: bytes) -> None:
    assert _common_event(data) is not None
    assert isinstance(assert_same_outcome(data), UsageEvent)


UNUSUAL_RECORDS = [
    # Accepted by the full path only: fractions, strings, exponents, other timestamp forms,
    # null dimensions, extra fields, CloudEvents.
    record(quantity="12"),
    record(quantity="0.25"),
    b'{"event_id":"e","account_id":"a","meter":"m","quantity":1.50,'
    b'"timestamp":"2026-11-05T14:30:00Z"}',
    b'{"event_id":"e","account_id":"a","meter":"m","quantity":1e3,'
    b'"timestamp":"2026-11-05T14:30:00Z"}',
    b'{"event_id":"e","account_id":"a","meter":"m","quantity":-0.0,'
    b'"timestamp":"2026-11-05T14:30:00Z"}',
    record(timestamp="2026-11-05t14:30:00Z"),
    record(timestamp="2026-11-05T14:30:00z"),
    record(timestamp="2026-12-31T23:59:60Z"),
    record(timestamp="2026-11-05T14:30:00.123456789Z"),
    record(timestamp="2026-11-05T14:30:00.1234567+01:00"),
    record(dimensions=None),
    record(source="gateway"),
    json.dumps(
        {
            "specversion": "1.0",
            "id": "ce-1",
            "subject": "acct-1",
            "type": "api_requests",
            "time": "2026-11-05T14:30:00Z",
            "data": {"quantity": 3},
        }
    ).encode(),
    # Refused, each in its own way.
    b"",
    b"null",
    b"[]",
    b"12",
    b'"text"',
    b"{",
    b"\xef\xbb\xbf" + record(),
    record() + b" x",
    record() + b"\x00",
    record(event_id="café"),
    b'{"event_id":"\xff","account_id":"a","meter":"m","quantity":1,'
    b'"timestamp":"2026-11-05T14:30:00Z"}',
    b'{"event_id":"\\ud800","account_id":"a","meter":"m","quantity":1,'
    b'"timestamp":"2026-11-05T14:30:00Z"}',
    b'{"event_id":"e","account_id":"a","meter":"m","quantity":NaN,'
    b'"timestamp":"2026-11-05T14:30:00Z"}',
    b'{"event_id":"e","account_id":"a","meter":"m","quantity":1e999999999999999999999,'
    b'"timestamp":"2026-11-05T14:30:00Z"}',
    b'{"event_id":"e","account_id":"a","meter":"m","quantity":01,'
    b'"timestamp":"2026-11-05T14:30:00Z"}',
    record(event_id=...),
    record(account_id=...),
    record(meter=...),
    record(quantity=...),
    record(timestamp=...),
    record(event_id=""),
    record(event_id="has space"),
    record(event_id="e" * 129),
    record(event_id=42),
    record(event_id=None),
    record(account_id="acct/1"),
    record(account_id="a" * 65),
    record(account_id="acct-1\n"),
    record(meter="API_requests"),
    record(meter=["api_requests"]),
    record(quantity=-1),
    record(quantity=10**15 + 1),
    record(quantity=10**40),
    record(quantity=True),
    record(quantity=None),
    record(quantity=[1]),
    record(quantity="1.0000000000001"),
    record(quantity="-1"),
    record(quantity="1e3"),
    record(quantity=".5"),
    record(timestamp="2026-11-05T14:30:00"),
    record(timestamp="2026-11-05 14:30:00Z"),
    record(timestamp="2026-02-30T00:00:00Z"),
    record(timestamp="2026-11-05T24:00:00Z"),
    record(timestamp="2026-11-05T14:61:00Z"),
    record(timestamp="2026-11-05T14:30:61Z"),
    record(timestamp="2026-11-05T14:30:00+24:00"),
    record(timestamp="2026-11-05T14:30:00+05:60"),
    record(timestamp="2026-11-05T14:30:00.Z"),
    record(timestamp="0001-01-01T00:00:00Z"),
    record(timestamp="9999-12-31T23:59:59Z"),
    record(timestamp="0001-01-01T12:00:00+05:00"),
    record(timestamp="２０２６-11-05T14:30:00Z"),
    record(timestamp=1793975400),
    record(dimensions={f"k{i}": "v" for i in range(11)}),
    record(dimensions={"": "v"}),
    record(dimensions={"k" * 65: "v"}),
    record(dimensions={"k": ""}),
    record(dimensions={"k": "v" * 257}),
    record(dimensions={"k": None}),
    record(dimensions={"k": 1}),
    record(dimensions={"k": {"nested": "v"}}),
    record(dimensions=["region"]),
    record(dimensions="region"),
    # What the msgspec decoder of the fast path must not take where the full path differs:
    # whitespace JSON does not allow, numbers past 64 bits, a lone surrogate, bad UTF-8 in
    # a value, a NUL or a newline in an id, ids of too many characters, a duplicate
    # key taking another type, a dimension too long in characters.
    b"\x0c" + record(),
    record() + b"\x0b",
    b"\xc2\xa0" + record(),
    record(quantity=2**64),
    record(quantity=-(2**63) - 1),
    record(dimensions={"k": "\ud83d"}, ascii=True),
    record(dimensions={"k": "\udc00\ud800"}, ascii=True),
    record(dimensions={"k": "v"}).replace(b'"v"', b'"\xed\xa0\x80"'),
    record(dimensions={"k": "v"}).replace(b'"v"', b'"\xc0\xaf"'),
    record(event_id="e\u0000"),
    record(event_id="e\n"),
    record(timestamp="2026-11-05T14:30:00Z\n"),
    record(account_id="\u00e9" * 10),
    record(event_id="e" * 128 + "\u00e9"),
    record(dimensions={"k": "\U0001f600" * 257}),
    record(dimensions={"\u00e9" * 65: "v"}),
    record(quantity=1).replace(b'"quantity": 1', b'"quantity": 1, "quantity": "1"'),
    record(dimensions={}).replace(b'"dimensions": {}', b'"dimensions": null, "dimensions": {}'),
]


@pytest.mark.parametrize("data", UNUSUAL_RECORDS, ids=range(len(UNUSUAL_RECORDS)))
def test_unusual_and_bad_records_go_the_full_way(data: bytes) -> None:
    assert _common_event(data) is None
    assert_same_outcome(data)


def test_a_common_record_over_the_size_limit_is_too_large() -> None:
    data = b" " * (MAX_RECORD_BYTES + 1 - len(record())) + record()
    result = decode_record(data)
    assert isinstance(result, Rejection)
    assert result.reason is Reason.TOO_LARGE


# --- any record at all ------------------------------------------------------------------------

_TEXT = st.text(max_size=70) | st.sampled_from(["", "e", "acct-1", "api_requests", "a" * 64])
_TIMESTAMPS = st.sampled_from(
    [
        "2026-11-05T14:30:00Z",
        "2026-11-05T14:30:00.999999+14:00",
        "2026-11-05T14:30:00.1234567Z",
        "2026-11-05T14:30:60Z",
        "2026-11-31T00:00:00Z",
        "2026-11-05t14:30:00z",
        "9999-12-31T00:00:00Z",
        "0001-01-01T00:00:00-01:00",
    ]
) | st.datetimes(timezones=st.timezones()).map(lambda at: at.isoformat())
_VALUES: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=6,
)
_QUANTITIES = (
    st.integers(-5, 10**15 + 5) | st.sampled_from([0, 10**15, -(10**15), 10**30]) | _VALUES
)
_DIMENSIONS = st.dictionaries(st.text(max_size=66), st.text(max_size=3), max_size=12) | _VALUES
_FIELDS = {
    "event_id": _TEXT | _VALUES,
    "account_id": _TEXT | _VALUES,
    "meter": _TEXT | _VALUES,
    "quantity": _QUANTITIES,
    "timestamp": _TIMESTAMPS | _VALUES,
    "dimensions": _DIMENSIONS,
}


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """A schema v1 record with each field kept, dropped or replaced, and perhaps extras."""
    document: dict[str, Any] = {}
    for name, values in _FIELDS.items():
        choice = draw(st.sampled_from(["base", "base", "base", "base", "other", "missing"]))
        if choice == "base" and name in BASE:
            document[name] = BASE[name]
        elif choice == "other":
            document[name] = draw(values)
    document.update(draw(st.dictionaries(_TEXT, _VALUES, max_size=2)))
    return document


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=documents(), ascii_only=st.booleans())
@example(document={**BASE, "dimensions": {"k": "\ud800"}}, ascii_only=True)
@example(document={**BASE, "dimensions": {"k": "\ud800"}}, ascii_only=False)
def test_any_record_gets_the_same_outcome_on_both_paths(
    document: dict[str, Any], ascii_only: bool
) -> None:
    text = json.dumps(document, ensure_ascii=ascii_only)
    try:
        data = text.encode()
    except UnicodeEncodeError:  # a lone surrogate cannot be UTF-8: send its bytes anyway
        data = text.encode("utf-8", "surrogatepass")
    assert_same_outcome(data)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200))
def test_any_bytes_get_the_same_outcome_on_both_paths(data: bytes) -> None:
    assert_same_outcome(data)


@settings(max_examples=300, deadline=None)
@given(
    prefix=st.sampled_from([b"", b" ", b"\xef\xbb\xbf"]),
    cut=st.integers(0, 200),
    noise=st.binary(max_size=3),
)
def test_damaged_common_records_get_the_same_outcome_on_both_paths(
    prefix: bytes, cut: int, noise: bytes
) -> None:
    data = record(dimensions={"region": "eu-west-1"})
    assert_same_outcome(prefix + data[:cut] + noise + data[cut:])


# JSON's whitespace, and characters that only look like it (a fast decoder must refuse them).
_SPACING = st.text(alphabet=" \t\n\r\x0b\x0c\x85\xa0\u2028", max_size=2)


@settings(max_examples=300, deadline=None)
@given(
    dimensions=st.dictionaries(st.text(max_size=66), st.text(max_size=258), max_size=11),
    quantity=st.integers(-1, 2**65) | st.sampled_from([10**15, 10**15 + 1, 2**63, 2**64]),
    spacing=_SPACING,
    ascii_only=st.booleans(),
)
def test_common_records_of_any_dimensions_quantity_and_spacing_get_the_same_outcome(
    dimensions: dict[str, str], quantity: int, spacing: str, ascii_only: bool
) -> None:
    document = {**BASE, "quantity": quantity, "dimensions": dimensions}
    separators = (f"{spacing},{spacing}", f"{spacing}:{spacing}")
    text = spacing + json.dumps(document, ensure_ascii=ascii_only, separators=separators)
    assert_same_outcome(text.encode("utf-8", "surrogatepass"))
