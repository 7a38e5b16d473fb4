"""The usage event, schema v1 (CONTRACT.md section 1): decoding, the reject reasons and
their order, and the checks `admit` makes against the catalog, the accounts and the clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.core.catalog import Accounts, Catalog
from billing.core.events import (
    MAX_RECORD_BYTES,
    Reason,
    Rejection,
    Timestamp,
    UsageEvent,
    decode_record,
    parse_timestamp,
)
from billing.core.periods import Period
from billing.rating.intake import Accepted, admit, never_closed

# A moment after every example event below, so that none of them is in the future.
NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)

BASE: dict[str, object] = {
    "event_id": "evt-0001",
    "account_id": "acct-1",
    "meter": "api_requests",
    "quantity": "1",
    "timestamp": "2026-11-05T14:30:00Z",
}

MISSING = object()  # a field to leave out of the record


def record(**changes: object) -> bytes:
    """A schema v1 record: BASE with `changes` applied (MISSING drops a field)."""
    fields = {**BASE, **changes}
    return json.dumps({k: v for k, v in fields.items() if v is not MISSING}).encode()


def record_with_quantity(token: str) -> bytes:
    """A record whose quantity is the JSON text `token`, byte for byte (json.dumps would
    rewrite a number, so these are written by hand)."""
    return (
        '{"event_id": "evt-0001", "account_id": "acct-1", "meter": "api_requests", '
        f'"quantity": {token}, "timestamp": "2026-11-05T14:30:00Z"}}'
    ).encode()


def cloudevent(**changes: object) -> bytes:
    fields: dict[str, object] = {
        "specversion": "1.0",
        "id": "ce-0001",
        "source": "/gateway/eu-west-1",
        "type": "api_requests",
        "subject": "acct-3",
        "time": "2026-11-05T14:30:00.25+01:00",
        "datacontenttype": "application/json",
        "data": {"quantity": "12.5", "dimensions": {"region": "eu-west-1"}},
        **changes,
    }
    return json.dumps({k: v for k, v in fields.items() if v is not MISSING}).encode()


def decoded(data: bytes) -> UsageEvent:
    result = decode_record(data)
    assert isinstance(result, UsageEvent), f"expected an event, got {result!r}"
    return result


def assert_rejected(result: object, reason: Reason, *fragments: str) -> None:
    assert isinstance(result, Rejection), f"expected {reason}, got {result!r}"
    assert result.reason is reason, result
    for fragment in fragments:
        assert fragment in result.message, f"{fragment!r} not in {result.message!r}"


def admitted(
    catalog: Catalog,
    accounts: Accounts,
    *,
    now: datetime = NOW,
    is_closed: Callable[[str, Period], bool] = never_closed,
    **changes: object,
) -> Accepted | Rejection:
    return admit(decoded(record(**changes)), catalog, accounts.by_id, now, is_closed)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


# --- a well-formed event --------------------------------------------------------------------


def test_valid_record_decodes_to_exact_event() -> None:
    event = decoded(record(quantity="12.5", dimensions={"region": "eu-west-1"}))

    assert event.event_id == "evt-0001"
    assert event.account_id == "acct-1"
    assert event.meter == "api_requests"
    assert event.quantity == Decimal("12.5")
    assert event.timestamp == Timestamp(utc(2026, 11, 5, 14, 30), 0)
    assert event.dimensions == {"region": "eu-west-1"}


def test_reasons_are_declared_in_contract_check_order() -> None:
    assert [reason.value for reason in Reason] == [
        "TOO_LARGE",
        "MALFORMED_JSON",
        "SCHEMA_INVALID",
        "UNKNOWN_ACCOUNT",
        "UNKNOWN_METER",
        "FUTURE_TIMESTAMP",
        "NOT_SUBSCRIBED",
        "PERIOD_CLOSED",
    ]


@pytest.mark.parametrize("field", ["event_id", "account_id", "meter", "quantity", "timestamp"])
def test_record_missing_required_field_is_schema_invalid(field: str) -> None:
    assert_rejected(decode_record(record(**{field: MISSING})), Reason.SCHEMA_INVALID, field)


def test_unknown_extra_fields_are_ignored() -> None:
    event = decoded(record(source="gateway", tags=["a", 1], nested={"x": None}, version=2))

    assert event.event_id == "evt-0001"
    assert event.quantity == Decimal("1")


# --- event_id ---------------------------------------------------------------------------------

PRINTABLE_ASCII = "".join(chr(code) for code in range(0x21, 0x7F))


@pytest.mark.parametrize(
    "event_id",
    ["a", "x" * 128, PRINTABLE_ASCII, "evt:2026/11/05#1?q=~!"],
    ids=["one-char", "128-chars", "every-printable-ascii", "punctuation"],
)
def test_event_id_of_1_to_128_printable_ascii_is_accepted(event_id: str) -> None:
    assert decoded(record(event_id=event_id)).event_id == event_id


@pytest.mark.parametrize(
    "event_id",
    ["", "x" * 129, "evt 1", "evt\t1", "evt-1\n", "evt\x7f", "évt-1", "evt-\u00a0", "evt-☃"],
    ids=[
        "empty",
        "129-chars",
        "space",
        "tab",
        "trailing-newline",
        "del",
        "non-ascii-letter",
        "nbsp",
        "snowman",
    ],
)
def test_event_id_not_1_to_128_printable_ascii_is_schema_invalid(event_id: str) -> None:
    assert_rejected(decode_record(record(event_id=event_id)), Reason.SCHEMA_INVALID, "event_id")


@pytest.mark.parametrize("value", [42, None, True, ["evt"]], ids=["number", "null", "bool", "list"])
def test_event_id_that_is_not_a_string_is_schema_invalid(value: object) -> None:
    assert_rejected(decode_record(record(event_id=value)), Reason.SCHEMA_INVALID, "event_id")


# --- account_id -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "account_id",
    ["a", "a" * 64, "ABCxyz-0189._", "acct-1"],
    ids=["one-char", "64-chars", "full-charset", "example"],
)
def test_account_id_of_allowed_characters_and_length_is_accepted(account_id: str) -> None:
    assert decoded(record(account_id=account_id)).account_id == account_id


@pytest.mark.parametrize(
    "account_id",
    ["", "a" * 65, "acct 1", "acct/1", "acct@1", "acct:1", "acct-é", "acct-1\n"],
    ids=["empty", "65-chars", "space", "slash", "at", "colon", "non-ascii", "trailing-newline"],
)
def test_account_id_outside_charset_or_length_is_schema_invalid(account_id: str) -> None:
    result = decode_record(record(account_id=account_id))
    assert_rejected(result, Reason.SCHEMA_INVALID, "account_id")


# --- meter -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "meter",
    ["a", "m" * 64, "api_requests", "storage.gb-hours_2"],
    ids=["one-char", "64-chars", "example", "full-charset"],
)
def test_meter_of_allowed_characters_and_length_is_accepted(meter: str) -> None:
    assert decoded(record(meter=meter)).meter == meter


@pytest.mark.parametrize(
    "meter",
    ["", "m" * 65, "API_REQUESTS", "Api_requests", "api requests", "api/requests", "apí"],
    ids=["empty", "65-chars", "uppercase", "one-capital", "space", "slash", "non-ascii"],
)
def test_meter_outside_charset_or_length_is_schema_invalid(meter: str) -> None:
    assert_rejected(decode_record(record(meter=meter)), Reason.SCHEMA_INVALID, "meter")


# --- quantity ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("42", Decimal("42")),
        ("0", Decimal("0")),
        ("6e4", Decimal("60000")),
        ("6E+4", Decimal("60000")),
        ("2.5e-3", Decimal("0.0025")),
        ("1e15", Decimal("1000000000000000")),
        ("1000000000000000", Decimal("1000000000000000")),
        ("1e-12", Decimal("0.000000000001")),
        ("0.000000000001", Decimal("0.000000000001")),
        ("1.50000000000000", Decimal("1.5")),
        ("123456789012345.678901234567", Decimal("123456789012345.678901234567")),
        ('"12"', Decimal("12")),
        ('"0.25"', Decimal("0.25")),
        ('"007"', Decimal("7")),
        ('"0"', Decimal("0")),
        ('"1000000000000000"', Decimal("1000000000000000")),
        ('"0.000000000001"', Decimal("0.000000000001")),
        ('"1.50000000000000"', Decimal("1.5")),
    ],
)
def test_quantity_within_rules_is_decoded_exactly(token: str, expected: Decimal) -> None:
    assert decoded(record_with_quantity(token)).quantity == expected


@pytest.mark.parametrize("token", ["-0", "-0.0", "0.000", "0e-30", "-0e5"])
def test_quantity_of_negative_or_scaled_zero_is_plain_zero(token: str) -> None:
    quantity = decoded(record_with_quantity(token)).quantity

    assert quantity == Decimal(0)
    assert not quantity.is_signed()


def test_quantity_with_twelve_decimals_keeps_its_exact_digits() -> None:
    quantity = decoded(record_with_quantity("0.100000000000")).quantity

    assert quantity.as_tuple() == Decimal("0.100000000000").as_tuple()


def test_quantity_of_float_noise_digits_is_schema_invalid_not_rounded_through_float() -> None:
    # The exact binary value of 0.1: through float it would look like a harmless 0.1.
    result = decode_record(record_with_quantity("0.1000000000000000055511151231257827"))

    assert_rejected(result, Reason.SCHEMA_INVALID, "quantity", "12")


@pytest.mark.parametrize(
    "token",
    [
        "0.0000000000001",
        "1e-13",
        "1.0000000000001",
        '"0.0000000000001"',
        '"1.0000000000001"',
        # More significant digits than the default decimal context keeps (28):
        "1.0000000000000000000000000001",
        '"1.0000000000000000000000000001"',
        "100000000000000.00000000000001",
        # A tiny value whose normalisation underflows the default context:
        "1e-1000000000",
    ],
)
def test_quantity_with_thirteen_or_more_decimals_is_schema_invalid(token: str) -> None:
    assert_rejected(decode_record(record_with_quantity(token)), Reason.SCHEMA_INVALID, "quantity")


@pytest.mark.parametrize(
    "token",
    [
        "-1",
        "-0.000000000001",
        "1000000000000001",
        "1000000000000000.000000000001",
        "1.000000000000001e15",
        "1e16",
        "1e400",
        '"1000000000000001"',
        '"1000000000000000.000000000001"',
    ],
)
def test_quantity_negative_or_above_1e15_is_schema_invalid(token: str) -> None:
    assert_rejected(decode_record(record_with_quantity(token)), Reason.SCHEMA_INVALID, "quantity")


@pytest.mark.parametrize(
    "token",
    ["1e999999999999999999999", "1e-999999999999999999999"],
    ids=["huge-exponent", "huge-negative-exponent"],
)
def test_quantity_with_exponent_beyond_decimal_range_is_schema_invalid(token: str) -> None:
    # Valid JSON numbers; the value breaks the quantity rules, so it is a schema problem,
    # and decoding must not raise.
    assert_rejected(decode_record(record_with_quantity(token)), Reason.SCHEMA_INVALID, "quantity")


@pytest.mark.parametrize(
    "text",
    [
        *["5.", ".5", "+1", "1e3", "1E3", "-1", "-0", "", " 12", "12 ", "1,5", "0x10"],
        *["1_000", "١٢", "１２", "NaN", "Infinity", "12\n"],
    ],
)
def test_quantity_string_not_plain_digits_is_schema_invalid(text: str) -> None:
    assert_rejected(decode_record(record(quantity=text)), Reason.SCHEMA_INVALID, "quantity")


@pytest.mark.parametrize(
    "token",
    ["true", "false", "null", "{}", '{"value": 1}', "[]", "[1]"],
)
def test_quantity_that_is_not_a_number_or_string_is_schema_invalid(token: str) -> None:
    assert_rejected(decode_record(record_with_quantity(token)), Reason.SCHEMA_INVALID, "quantity")


# --- timestamp --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "at", "nanos"),
    [
        ("2026-11-05T14:30:00Z", utc(2026, 11, 5, 14, 30), 0),
        ("2026-11-05T14:30:00z", utc(2026, 11, 5, 14, 30), 0),
        ("2026-11-05t14:30:00Z", utc(2026, 11, 5, 14, 30), 0),
        ("2026-11-05T14:30:00+00:00", utc(2026, 11, 5, 14, 30), 0),
        ("2026-11-05T14:30:00+05:30", utc(2026, 11, 5, 9, 0), 0),
        ("2026-11-05T14:30:00-05:00", utc(2026, 11, 5, 19, 30), 0),
        ("2026-11-05T23:30:00-05:00", utc(2026, 11, 6, 4, 30), 0),
        ("2026-11-06T01:00:00+14:00", utc(2026, 11, 5, 11, 0), 0),
        ("2026-11-05T14:30:00.5Z", utc(2026, 11, 5, 14, 30, 0, 500000), 0),
        ("2026-11-05T14:30:00.123456Z", utc(2026, 11, 5, 14, 30, 0, 123456), 0),
        ("2026-11-05T14:30:00.123456789Z", utc(2026, 11, 5, 14, 30, 0, 123456), 789),
        ("2026-11-05T14:30:00.000000001Z", utc(2026, 11, 5, 14, 30), 1),
        ("2026-11-05T14:30:00.999999999-01:00", utc(2026, 11, 5, 15, 30, 0, 999999), 999),
    ],
)
def test_rfc3339_timestamp_with_offset_decodes_to_exact_utc_instant(
    text: str, at: datetime, nanos: int
) -> None:
    timestamp = decoded(record(timestamp=text)).timestamp

    assert timestamp == Timestamp(at, nanos)
    assert timestamp.at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-05T14:30:00.1234567890Z",
        "2026-11-05T14:30:00",
        "2026-11-05T14:30:00.123",
        "2026-11-05",
        "2026-02-30T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-11-05T24:00:00Z",
        "2026-11-05T14:60:00Z",
        "2026-11-05T14:30Z",
        "2026-11-05T14:30:00.Z",
        "2026-11-05T14:30:00+0500",
        "2026-11-05T14:30:00+05",
        "2026-11-05T14:30:00+24:00",
        "2026-11-05T14:30:00 Z",
        "2026-11-05T14:30:00Z ",
        "2026-11-05T14:30:00Z\n",
        "26-11-05T14:30:00Z",
        "2026-11-5T14:30:00Z",
        "",
        "Thu, 05 Nov 2026 14:30:00 GMT",
        "２０２６-11-05T14:30:00Z",
        "2026-11-05T14:30:00.١٢٣Z",
    ],
    ids=[
        "ten-fraction-digits",
        "no-offset",
        "fraction-no-offset",
        "date-only",
        "february-30",
        "month-13",
        "hour-24",
        "minute-60",
        "no-seconds",
        "empty-fraction",
        "offset-without-colon",
        "offset-hours-only",
        "offset-24-hours",
        "space-before-z",
        "trailing-space",
        "trailing-newline",
        "two-digit-year",
        "one-digit-day",
        "empty",
        "http-date",
        "fullwidth-digits",
        "arabic-indic-fraction-digits",
    ],
)
def test_timestamp_not_rfc3339_with_offset_is_schema_invalid(text: str) -> None:
    assert_rejected(decode_record(record(timestamp=text)), Reason.SCHEMA_INVALID, "timestamp")


@pytest.mark.parametrize("value", [1793975400, None, {"at": "2026-11-05T14:30:00Z"}])
def test_timestamp_that_is_not_a_string_is_schema_invalid(value: object) -> None:
    assert_rejected(decode_record(record(timestamp=value)), Reason.SCHEMA_INVALID, "timestamp")


def test_parse_timestamp_keeps_nanoseconds_beyond_the_microsecond() -> None:
    assert parse_timestamp("2026-11-05T15:30:00.000001001+01:00") == Timestamp(
        utc(2026, 11, 5, 14, 30, 0, 1), 1
    )


@pytest.mark.parametrize("text", ["2026-11-05T14:30:00", "2026-02-30T00:00:00Z", "nonsense"])
def test_parse_timestamp_raises_value_error_for_bad_text(text: str) -> None:
    with pytest.raises(ValueError, match=r"RFC 3339|valid date"):
        parse_timestamp(text)


# --- dimensions -------------------------------------------------------------------------------


def test_dimensions_are_optional() -> None:
    assert decoded(record(dimensions=MISSING)).dimensions == {}


@pytest.mark.parametrize(
    "dimensions",
    [
        {},
        {f"key{i}": f"value{i}" for i in range(10)},
        {"k" * 64: "v"},
        {"k": "v" * 256},
        {"region": "eu-west-1", "tier": "gold"},
    ],
    ids=["empty", "ten-keys", "key-64-chars", "value-256-chars", "two-keys"],
)
def test_dimensions_within_limits_are_kept(dimensions: dict[str, str]) -> None:
    assert decoded(record(dimensions=dimensions)).dimensions == dimensions


@pytest.mark.parametrize(
    "dimensions",
    [
        {f"key{i}": "v" for i in range(11)},
        {"k" * 65: "v"},
        {"": "v"},
        {"k": "v" * 257},
        {"k": ""},
        {"k": 1},
        {"k": True},
        {"k": ["v"]},
        {"k": {"v": "w"}},
        ["region", "eu-west-1"],
        "region=eu-west-1",
    ],
    ids=[
        "eleven-keys",
        "key-65-chars",
        "empty-key",
        "value-257-chars",
        "empty-value",
        "number-value",
        "bool-value",
        "list-value",
        "object-value",
        "list",
        "string",
    ],
)
def test_dimensions_beyond_limits_are_schema_invalid(dimensions: object) -> None:
    result = decode_record(record(dimensions=dimensions))
    assert_rejected(result, Reason.SCHEMA_INVALID, "dimensions")


def test_null_dimension_value_is_schema_invalid() -> None:
    result = decode_record(record(dimensions={"region": None}))
    assert_rejected(result, Reason.SCHEMA_INVALID, "dimensions")


# --- the record as a whole: size, encoding, JSON ---------------------------------------------


def padded_record(size: int) -> bytes:
    """A valid record of exactly `size` bytes, grown by an ignored extra field."""
    empty = record(padding="")
    data = record(padding="x" * (size - len(empty)))
    assert len(data) == size
    return data


def test_record_of_exactly_16384_bytes_is_decoded() -> None:
    assert MAX_RECORD_BYTES == 16384
    assert decoded(padded_record(16384)).event_id == "evt-0001"


def test_record_of_16385_bytes_is_too_large() -> None:
    assert_rejected(decode_record(padded_record(16385)), Reason.TOO_LARGE, "16385", "16384")


@pytest.mark.parametrize(
    "data",
    [b"{" * 16385, b"\xff" * 16385, b"[" * 16385, b" " * 16385],
    ids=["malformed-json", "not-utf8", "deep-nesting", "whitespace"],
)
def test_oversized_record_is_too_large_even_when_also_malformed(data: bytes) -> None:
    assert_rejected(decode_record(data), Reason.TOO_LARGE)


def test_malformed_record_of_exactly_16384_bytes_is_malformed_not_too_large() -> None:
    assert_rejected(decode_record(b"{" * 16384), Reason.MALFORMED_JSON)


@pytest.mark.parametrize(
    "data",
    [
        b'{"event_id": "\xff"}',
        b"\xc3\x28",
        record()[:-1] + b"\x80",
        "{}".encode("utf-16"),
        b'{"event_id": "\xed\xa0\x80"}',
    ],
    ids=["invalid-byte", "bad-continuation", "stray-continuation", "utf-16", "utf8-surrogate"],
)
def test_record_that_is_not_utf8_is_malformed_json(data: bytes) -> None:
    assert_rejected(decode_record(data), Reason.MALFORMED_JSON, "UTF-8")


@pytest.mark.parametrize(
    "data",
    [
        record()[:-1],
        record()[:20],
        b"",
        b"   ",
        b"{",
        b'{"event_id": "evt-1",}',
        b"{'event_id': 'evt-1'}",
        record() + b"{}",
        record() + b"\n" + record(),
    ],
    ids=[
        "missing-brace",
        "truncated",
        "empty",
        "blank",
        "open-brace",
        "trailing-comma",
        "single-quotes",
        "two-documents",
        "two-lines",
    ],
)
def test_record_that_is_not_json_is_malformed_json(data: bytes) -> None:
    assert_rejected(decode_record(data), Reason.MALFORMED_JSON, "JSON")


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_tokens_are_malformed_json(token: str) -> None:
    assert_rejected(decode_record(record_with_quantity(token)), Reason.MALFORMED_JSON, token)


@pytest.mark.parametrize(
    "data",
    [b"[]", b"[{}]", b"42", b'"evt-0001"', b"null", b"true", b"[" + record() + b"]"],
    ids=["empty-array", "array-of-object", "number", "string", "null", "bool", "wrapped-event"],
)
def test_json_that_is_not_an_object_is_schema_invalid(data: bytes) -> None:
    assert_rejected(decode_record(data), Reason.SCHEMA_INVALID, "object")


NASTY_RECORDS = [
    b"",
    b"\x00",
    b"\xff\xfe",
    b"[" * 16384,
    b'{"a":' * 2000 + b"1" + b"}" * 2000,
    b"{}",
    b'{"specversion": "1.0"}',
    b'{"specversion": "1.0", "data": []}',
    b'{"specversion": null, "data": {"quantity": 1}}',
    b'{"quantity": 1e999999999999999999999}',
    b'{"quantity": -1e999999999999999999999}',
    b'{"quantity": 1e-999999999999999999999}',
    b'{"quantity": ' + b"9" * 10000 + b"}",
    b'{"quantity": 0.' + b"0" * 10000 + b"1}",
    b'{"timestamp": "9999-12-31T23:59:59-23:59"}',
    b'{"timestamp": "0001-01-01T00:00:00+23:59"}',
    b'{"timestamp": "2026-11-05T14:30:60Z", "quantity": 1}',
    b'{"dimensions": {"k": "\\ud800"}}',
    b'{"event_id": "\\u0000"}',
]


@pytest.mark.parametrize(
    "data", NASTY_RECORDS, ids=[f"nasty-{i}" for i in range(len(NASTY_RECORDS))]
)
def test_hostile_record_never_raises(data: bytes) -> None:
    result = decode_record(data)

    assert isinstance(result, Rejection | UsageEvent)
    if isinstance(result, Rejection):
        assert result.message


# --- CloudEvents 1.0 structured mode ----------------------------------------------------------


def test_cloudevent_fields_map_to_schema_v1() -> None:
    event = decoded(cloudevent())

    assert event.event_id == "ce-0001"
    assert event.account_id == "acct-3"
    assert event.meter == "api_requests"
    assert event.quantity == Decimal("12.5")
    assert event.timestamp == Timestamp(utc(2026, 11, 5, 13, 30, 0, 250000), 0)
    assert event.dimensions == {"region": "eu-west-1"}


def test_cloudevent_without_dimensions_has_none() -> None:
    event = decoded(cloudevent(data={"quantity": 7}))

    assert event.quantity == Decimal("7")
    assert event.dimensions == {}


def test_cloudevent_json_number_quantity_is_exact() -> None:
    data = cloudevent(data={"quantity": "PLACEHOLDER"}).replace(b'"PLACEHOLDER"', b"0.100000000000")

    assert decoded(data).quantity.as_tuple() == Decimal("0.100000000000").as_tuple()


@pytest.mark.parametrize(
    "quantity",
    ["abc", "1e3", "-1", ".5", -1, True, None, "0.0000000000001"],
)
def test_cloudevent_bad_data_quantity_is_schema_invalid_naming_data_quantity(
    quantity: object,
) -> None:
    result = decode_record(cloudevent(data={"quantity": quantity}))
    assert_rejected(result, Reason.SCHEMA_INVALID, "data.quantity")


def test_cloudevent_bad_data_dimensions_is_schema_invalid_naming_data_dimensions() -> None:
    result = decode_record(cloudevent(data={"quantity": "1", "dimensions": {"k": 5}}))
    assert_rejected(result, Reason.SCHEMA_INVALID, "data.dimensions")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", ""),
        ("id", "ce 1"),
        ("subject", "acct/3"),
        ("type", "API_REQUESTS"),
        ("time", "2026-11-05T14:30:00"),
        ("id", MISSING),
        ("subject", MISSING),
        ("type", MISSING),
        ("time", MISSING),
    ],
)
def test_cloudevent_bad_attribute_is_schema_invalid_naming_the_cloudevent_attribute(
    field: str, value: object
) -> None:
    # The message names the attribute the producer wrote, not the schema v1 field.
    result = decode_record(cloudevent(**{field: value}))
    assert_rejected(result, Reason.SCHEMA_INVALID, f"{field}:")


@pytest.mark.parametrize(
    "data",
    [MISSING, None, "12", 12, ["quantity", 12]],
    ids=["absent", "null", "string", "n", "list"],
)
def test_cloudevent_without_data_object_is_schema_invalid(data: object) -> None:
    assert_rejected(decode_record(cloudevent(data=data)), Reason.SCHEMA_INVALID, "data")


@pytest.mark.parametrize("specversion", ["0.3", "1", "1.0.0", "2.0", "", 1.0, 1, None], ids=repr)
def test_cloudevent_specversion_other_than_1_0_is_schema_invalid(specversion: object) -> None:
    result = decode_record(cloudevent(specversion=specversion))
    assert_rejected(result, Reason.SCHEMA_INVALID, "specversion")


def test_cloudevent_ignores_schema_v1_field_names_at_top_level() -> None:
    event = decoded(cloudevent(event_id="other", account_id="acct-1", quantity="99"))

    assert (event.event_id, event.account_id, event.quantity) == (
        "ce-0001",
        "acct-3",
        Decimal("12.5"),
    )


# --- the order of the decode checks -----------------------------------------------------------


def test_schema_invalid_comes_before_unknown_account() -> None:
    # GIVEN an unknown account AND a bad quantity: decoding stops at the schema
    result = decode_record(record(account_id="acct-404", quantity="-1"))
    assert_rejected(result, Reason.SCHEMA_INVALID, "quantity")


def test_malformed_json_comes_before_schema_invalid() -> None:
    result = decode_record(b'{"event_id": "", "quantity": NaN}')
    assert_rejected(result, Reason.MALFORMED_JSON)


# --- admit: catalog, accounts, clock ----------------------------------------------------------


def test_known_account_and_meter_is_accepted_with_account_plan_and_period(
    example_catalog: Catalog, example_accounts: Accounts
) -> None:
    result = admitted(example_catalog, example_accounts, account_id="acct-1")

    assert isinstance(result, Accepted)
    assert result.event.event_id == "evt-0001"
    assert result.account.id == "acct-1"
    assert result.plan.id == "pro"
    assert result.period == Period(2026, 11)


def test_unknown_account_is_rejected(example_catalog: Catalog, example_accounts: Accounts) -> None:
    result = admitted(example_catalog, example_accounts, account_id="acct-404")
    assert_rejected(result, Reason.UNKNOWN_ACCOUNT, "acct-404")


def test_unknown_meter_is_rejected(example_catalog: Catalog, example_accounts: Accounts) -> None:
    result = admitted(example_catalog, example_accounts, meter="gpu_seconds")
    assert_rejected(result, Reason.UNKNOWN_METER, "gpu_seconds")


FUTURE_NOW = utc(2026, 11, 5, 14, 30)


@pytest.mark.parametrize(
    "timestamp",
    [
        "2026-11-05T14:30:00Z",
        "2026-11-05T14:34:59.999999999Z",
        "2026-11-05T14:35:00Z",
        "2026-11-05T15:35:00+01:00",
        "2026-11-05T14:35:00.000000000Z",
    ],
)
def test_timestamp_up_to_exactly_five_minutes_ahead_is_accepted(
    example_catalog: Catalog, example_accounts: Accounts, timestamp: str
) -> None:
    result = admitted(example_catalog, example_accounts, now=FUTURE_NOW, timestamp=timestamp)
    assert isinstance(result, Accepted), result


@pytest.mark.parametrize(
    "timestamp",
    [
        "2026-11-05T14:35:00.000000001Z",
        "2026-11-05T14:35:00.000001Z",
        "2026-11-05T15:35:00.000000001+01:00",
        "2026-11-05T14:35:01Z",
        "2027-01-01T00:00:00Z",
    ],
)
def test_timestamp_more_than_five_minutes_ahead_is_future_timestamp(
    example_catalog: Catalog, example_accounts: Accounts, timestamp: str
) -> None:
    result = admitted(example_catalog, example_accounts, now=FUTURE_NOW, timestamp=timestamp)
    assert_rejected(result, Reason.FUTURE_TIMESTAMP, "5 minutes")


@pytest.mark.parametrize(
    ("account_id", "timestamp", "accepted"),
    [
        # acct-2, America/New_York, starts 2026-11-16 (local)
        ("acct-2", "2026-11-16T00:00:00-05:00", True),
        ("acct-2", "2026-11-16T05:00:00Z", True),
        ("acct-2", "2026-11-15T23:59:59-05:00", False),
        ("acct-2", "2026-11-15T23:59:59.999999999-05:00", False),
        ("acct-2", "2026-11-16T04:59:59Z", False),
        # acct-6, Pacific/Kiritimati (+14:00), ends 2026-11-21 (local, exclusive)
        ("acct-6", "2026-11-20T23:59:59+14:00", True),
        ("acct-6", "2026-11-20T23:59:59.999999999+14:00", True),
        ("acct-6", "2026-11-20T09:59:59Z", True),
        ("acct-6", "2026-11-21T00:00:00+14:00", False),
        ("acct-6", "2026-11-20T10:00:00Z", False),
    ],
)
def test_subscription_bounds_are_local_days_in_the_account_zone(
    example_catalog: Catalog,
    example_accounts: Accounts,
    account_id: str,
    timestamp: str,
    accepted: bool,
) -> None:
    result = admitted(example_catalog, example_accounts, account_id=account_id, timestamp=timestamp)

    if accepted:
        assert isinstance(result, Accepted), result
    else:
        assert_rejected(result, Reason.NOT_SUBSCRIBED, account_id)


def test_not_subscribed_message_names_the_local_day(
    example_catalog: Catalog, example_accounts: Accounts
) -> None:
    result = admitted(
        example_catalog,
        example_accounts,
        account_id="acct-2",
        timestamp="2026-11-16T04:59:59Z",
    )
    assert_rejected(result, Reason.NOT_SUBSCRIBED, "acct-2", "2026-11-15")


def close_october(account_id: str, period: Period) -> bool:
    return str(period) == "2026-10"


def test_event_in_invoiced_period_is_period_closed(
    example_catalog: Catalog, example_accounts: Accounts
) -> None:
    result = admitted(
        example_catalog,
        example_accounts,
        is_closed=close_october,
        timestamp="2026-10-20T12:00:00Z",
    )
    assert_rejected(result, Reason.PERIOD_CLOSED, "2026-10", "acct-1")


def test_event_in_open_period_is_accepted_when_another_period_is_closed(
    example_catalog: Catalog, example_accounts: Accounts
) -> None:
    result = admitted(example_catalog, example_accounts, is_closed=close_october)

    assert isinstance(result, Accepted)
    assert result.period == Period(2026, 11)


def test_is_closed_is_asked_about_the_account_and_its_local_period(
    example_catalog: Catalog, example_accounts: Accounts
) -> None:
    asked: list[tuple[str, Period]] = []

    def is_closed(account_id: str, period: Period) -> bool:
        asked.append((account_id, period))
        return False

    admitted(
        example_catalog,
        example_accounts,
        is_closed=is_closed,
        account_id="acct-2",
        timestamp="2026-11-30T23:30:00-05:00",
    )

    assert asked == [("acct-2", Period(2026, 11))]


@pytest.mark.parametrize(
    ("account_id", "timestamp", "period"),
    [
        # December in UTC, still November in New York
        ("acct-2", "2026-11-30T23:30:00-05:00", Period(2026, 11)),
        ("acct-2", "2026-12-01T04:30:00Z", Period(2026, 11)),
        ("acct-2", "2026-12-01T05:00:00Z", Period(2026, 12)),
        # October in UTC, already November in Kiritimati (+14:00)
        ("acct-6", "2026-10-31T11:00:00Z", Period(2026, 11)),
        ("acct-6", "2026-10-31T09:59:59Z", Period(2026, 10)),
        # Europe/Paris, +01:00 in November
        ("acct-1", "2026-10-31T23:30:00Z", Period(2026, 11)),
    ],
)
def test_accepted_event_carries_the_period_of_its_account_zone(
    example_catalog: Catalog,
    example_accounts: Accounts,
    account_id: str,
    timestamp: str,
    period: Period,
) -> None:
    result = admitted(example_catalog, example_accounts, account_id=account_id, timestamp=timestamp)

    assert isinstance(result, Accepted), result
    assert result.period == period


@pytest.mark.parametrize(
    ("changes", "now", "is_closed", "reason", "fragment"),
    [
        pytest.param(
            {"account_id": "acct-404", "meter": "gpu_seconds"},
            NOW,
            never_closed,
            Reason.UNKNOWN_ACCOUNT,
            "acct-404",
            id="unknown-account-and-meter",
        ),
        pytest.param(
            {"account_id": "acct-404", "timestamp": "2027-01-01T00:00:00Z"},
            NOW,
            lambda account, period: True,
            Reason.UNKNOWN_ACCOUNT,
            "acct-404",
            id="unknown-account-future-closed",
        ),
        pytest.param(
            {"meter": "gpu_seconds", "timestamp": "2027-01-01T00:00:00Z"},
            NOW,
            never_closed,
            Reason.UNKNOWN_METER,
            "gpu_seconds",
            id="unknown-meter-and-future",
        ),
        pytest.param(
            {"account_id": "acct-6", "timestamp": "2026-12-05T00:00:00Z"},
            utc(2026, 11, 25),
            never_closed,
            Reason.FUTURE_TIMESTAMP,
            "5 minutes",
            id="future-and-not-subscribed",
        ),
        pytest.param(
            {"account_id": "acct-2", "timestamp": "2026-11-10T12:00:00Z"},
            NOW,
            lambda account, period: True,
            Reason.NOT_SUBSCRIBED,
            "acct-2",
            id="not-subscribed-and-closed",
        ),
        pytest.param(
            {"account_id": "acct-2", "timestamp": "2026-11-20T12:00:00Z"},
            NOW,
            lambda account, period: str(period) == "2026-11",
            Reason.PERIOD_CLOSED,
            "2026-11",
            id="closed-only",
        ),
    ],
)
def test_record_failing_several_checks_gets_the_first_reason(
    example_catalog: Catalog,
    example_accounts: Accounts,
    changes: dict[str, object],
    now: datetime,
    is_closed: Callable[[str, Period], bool],
    reason: Reason,
    fragment: str,
) -> None:
    result = admitted(example_catalog, example_accounts, now=now, is_closed=is_closed, **changes)
    assert_rejected(result, reason, fragment)


def test_cloudevent_is_admitted_like_a_schema_v1_event(
    example_catalog: Catalog, example_accounts: Accounts
) -> None:
    event = decoded(cloudevent())

    result = admit(event, example_catalog, example_accounts.by_id, NOW, never_closed)

    assert isinstance(result, Accepted)
    assert result.account.id == "acct-3"
    assert result.plan.id == "starter-eur"
    assert result.period == Period(2026, 11)
