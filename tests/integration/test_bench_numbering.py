"""bench/numbering.py's simulated invoice table answers InvoiceNumbers as DynamoDB (moto)
does, and its simulation of concurrent batches keeps the numbers gap-free, the same on
every run."""

from __future__ import annotations

import random
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bench.numbering import (
    ISSUED_AT,
    TABLE,
    Model,
    Scenario,
    SimulatedInvoiceTable,
    simulate,
)
from bench.virtual_time import VirtualTime
from billing.core.invoice import invoice_number
from billing.settings import INVOICES_TABLE
from billing.store.invoice_numbers import SEQUENCE_KEY, InvoiceNumbers
from tests.integration.conftest import Aws

KEYS = [(f"acct-{n}", "2026-11") for n in range(3)]


def stale_update(table: str) -> dict[str, Any]:
    """The sequence's update as InvoiceNumbers writes it when it read the sequence unset."""
    return {
        "Update": {
            "TableName": table,
            "Key": SEQUENCE_KEY,
            "UpdateExpression": "SET #last = :next",
            "ConditionExpression": "attribute_not_exists(#last)",
            "ExpressionAttributeNames": {"#last": "last"},
            "ExpressionAttributeValues": {":next": {"N": "1"}},
        }
    }


def number_then_write_stale(client: Any, table: str) -> tuple[list[int], tuple[str, str]]:
    """Three invoices numbered through the real code, then a write over the sequence as
    first read: the numbers, and how the write was refused."""
    records = InvoiceNumbers(client, table).number(KEYS, ISSUED_AT, invoice_number)
    with pytest.raises(ClientError) as refused:
        client.transact_write_items(TransactItems=[stale_update(table)])
    error: Any = refused.value.response
    return [r.sequence for r in records.values()], (
        error["Error"]["Code"],
        error["CancellationReasons"][0]["Code"],
    )


def test_the_simulated_table_numbers_and_refuses_a_stale_sequence_as_dynamodb_does(
    aws: Aws,
) -> None:
    # GIVEN moto's invoice table and the simulation's (alone on its virtual clock)
    simulated = SimulatedInvoiceTable(VirtualTime(), random.Random(1), Model(), size=10)

    # WHEN each numbers three invoices, then takes a write over a stale sequence
    moto = number_then_write_stale(aws.dynamodb, aws.tables[INVOICES_TABLE.env_var])
    memory = number_then_write_stale(simulated, TABLE)

    # THEN both number 1..3 and cancel the stale write for its condition
    assert moto == memory == ([1, 2, 3], ("TransactionCanceledException", "ConditionalCheckFailed"))


def test_concurrent_batches_number_without_gaps_and_the_same_on_every_run() -> None:
    # GIVEN ten batches at once numbering 5,000 invoices, unpaced
    scenario = Scenario(concurrency=10, ses_rate=None, invoices=5_000)

    # WHEN it is simulated twice
    first, second = simulate(scenario), simulate(scenario)

    # THEN every number 1..5,000 is taken once, by 51 allocations, and nothing depends on
    # the host's speed
    assert first["gap_free"]
    assert first["allocations"] == 51
    assert first["max_conflicts_in_one_allocation"] < first["retries_allowed"]
    assert first == second
