"""Batched store calls within the services' limits: BatchGetItem (100 keys, unprocessed
keys asked again), the invoice records read in batches, PutEvents (10 entries, refused
entries sent again or reported)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from billing.core.invoice import invoice_number
from billing.settings import INVOICES_TABLE
from billing.store.batches import batch_get
from billing.store.errors import Throttled
from billing.store.events import EventPublisher
from billing.store.invoice_store import InvoiceStore, record_key
from tests.integration.conftest import REGION, Aws

ISSUED_AT = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


class Recorder:
    """Wraps a client: records each call's arguments, answers from `answers` first."""

    def __init__(self, client: Any = None, answers: list[dict[str, Any]] | None = None) -> None:
        self.client, self.answers = client, list(answers or [])
        self.calls: list[dict[str, Any]] = []

    def _call(self, name: str, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.answers:
            return self.answers.pop(0)
        result: dict[str, Any] = getattr(self.client, name)(**kwargs)
        return result

    def batch_get_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("batch_get_item", **kwargs)

    def put_events(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("put_events", **kwargs)


def test_more_than_100_records_are_read_100_keys_a_call(aws: Aws) -> None:
    table = aws.tables[INVOICES_TABLE.env_var]
    store = InvoiceStore(aws.dynamodb, table)
    keys = [(f"acct-{i:03d}", "2026-11") for i in range(250)]
    for start in range(0, 250, 99):
        store.number(keys[start : start + 99], ISSUED_AT, invoice_number)
    recorder = Recorder(aws.dynamodb)

    records = InvoiceStore(recorder, table).get_many([*keys, ("acct-999", "2026-11")])

    assert [len(call["RequestItems"][table]["Keys"]) for call in recorder.calls] == [100, 100, 51]
    assert set(records) == set(keys)  # one with no record is simply absent
    assert sorted(r.sequence for r in records.values()) == list(range(1, 251))


def test_unprocessed_keys_are_asked_for_again() -> None:
    keys = [record_key(f"acct-{i}", "2026-11") for i in range(3)]
    items = [{**key, "n": {"N": str(i)}} for i, key in enumerate(keys)]
    recorder = Recorder(
        answers=[
            {"Responses": {"t": items[:1]}, "UnprocessedKeys": {"t": {"Keys": keys[1:]}}},
            {"Responses": {"t": items[1:]}, "UnprocessedKeys": {}},
        ]
    )
    pauses: list[float] = []

    found = batch_get(recorder, "t", keys, "load", sleep=pauses.append)

    assert found == items
    assert recorder.calls[1]["RequestItems"] == {"t": {"Keys": keys[1:]}}
    assert len(pauses) == 1


def test_keys_left_unprocessed_every_time_are_an_error() -> None:
    keys = [record_key("acct-1", "2026-11")]
    stuck = {"Responses": {}, "UnprocessedKeys": {"t": {"Keys": keys}}}
    recorder = Recorder(answers=[stuck] * 8)

    with pytest.raises(Throttled):
        batch_get(recorder, "t", keys, "load", sleep=lambda _: None)


def _bus(aws: Aws) -> Any:
    events = boto3.client("events", region_name=REGION)
    events.create_event_bus(Name="bus")
    return events


def test_more_than_10_events_go_10_to_a_call(aws: Aws) -> None:
    recorder = Recorder(_bus(aws))
    events = [("InvoiceIssued", {"invoice_number": str(i)}) for i in range(23)]

    failed = EventPublisher(recorder, "bus").publish_all(events)

    assert failed == {}
    assert [len(call["Entries"]) for call in recorder.calls] == [10, 10, 3]


def _answer(*codes: str | None) -> dict[str, Any]:
    entries = [
        {"ErrorCode": code, "ErrorMessage": "x"} if code else {"EventId": "e"} for code in codes
    ]
    return {"FailedEntryCount": sum(1 for c in codes if c), "Entries": entries}


def test_a_refused_entry_is_sent_again_alone() -> None:
    recorder = Recorder(answers=[_answer(None, "InternalFailure", None), _answer(None)])
    events = [("InvoiceIssued", {"n": i}) for i in range(3)]

    failed = EventPublisher(recorder, "bus", sleep=lambda _: None).publish_all(events)

    assert failed == {}
    assert [e["Detail"] for e in recorder.calls[1]["Entries"]] == ['{"n": 1}']


def test_an_entry_refused_every_time_is_reported_by_position() -> None:
    refusing = _answer("ThrottlingException")
    recorder = Recorder(answers=[_answer(None, "ThrottlingException"), *[refusing] * 3])
    events = [("InvoiceIssued", {"n": i}) for i in range(2)]

    failed = EventPublisher(recorder, "bus", sleep=lambda _: None).publish_all(events)

    assert list(failed) == [1]
    assert "ThrottlingException" in failed[1]
    assert len(recorder.calls) == 4
