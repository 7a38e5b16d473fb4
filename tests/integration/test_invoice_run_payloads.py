"""The invoice run whatever the number of accounts: the parent execution's history and the
size of every state it passes do not grow with the accounts due (the due pairs, the
batches' results and the full report live in the run bucket)."""

from __future__ import annotations

import json
from typing import Any

from billing.core.catalog import Accounts
from billing.settings import CONFIG_TABLE
from billing.store.config_store import ConfigStore
from tests.integration.test_invoice_workflow import (  # noqa: F401  (the fixture)
    RUN_BUCKET,
    Stack,
    run_clock,
    stack,
)

# Step Functions refuses a state's input or output over 256 KB.
STATE_LIMIT = 256 * 1024


def parent_history(run_stack: Stack, name: str) -> list[dict[str, Any]]:
    execution = f"{run_stack.state_machine.replace(':stateMachine:', ':execution:')}:{name}"
    events: list[dict[str, Any]] = []
    request: dict[str, Any] = {"executionArn": execution, "maxResults": 1000}
    while True:
        page = run_stack.sfn.get_execution_history(**request)
        events.extend(page["events"])
        if "nextToken" not in page:
            return events
        request["nextToken"] = page["nextToken"]


def payload_sizes(events: list[dict[str, Any]]) -> list[int]:
    """The size of every input and output the parent's history records."""
    sizes = []
    for event in events:
        for details in event.values():
            if isinstance(details, dict):
                sizes += [
                    len(details[k]) for k in ("input", "output") if isinstance(details.get(k), str)
                ]
    return sizes


def more_accounts(example: Accounts, count: int) -> Accounts:
    """`count` accounts like the first example one, subscribed from 1 November."""
    model = example.accounts[0]
    return Accounts(
        accounts=[
            model.model_copy(
                update={"id": f"scale-{n:04d}", "start": model.start.__class__(2026, 11, 1)}
            )
            for n in range(count)
        ]
    )


def test_the_parent_execution_is_the_same_size_for_6_accounts_and_for_206(
    stack: Stack,  # noqa: F811  (the fixture)
    example_accounts: Accounts,
) -> None:
    # GIVEN a run of the six example accounts (one batch)
    stack.aws.rate_examples()
    now = run_clock(example_accounts)
    small = stack.run("small", period="2026-11", now=now)
    assert (small["issued"], small["failed"]) == (6, 0)

    # AND a run after 200 more accounts were pushed (three batches: 99, 99, 2)
    config = ConfigStore(stack.aws.dynamodb, stack.aws.tables[CONFIG_TABLE.env_var])
    config.put_accounts(more_accounts(example_accounts, 200))
    large = stack.run("large", period="2026-11", now=now)
    assert (large["issued"], large["skipped"], large["failed"]) == (200, 6, 0)

    # THEN both parent executions have the same events, and no state passed more than the
    # same few hundred bytes: the 200 accounts are in the run bucket, not in the states
    small_events, large_events = parent_history(stack, "small"), parent_history(stack, "large")
    assert [e["type"] for e in large_events] == [e["type"] for e in small_events]
    assert max(payload_sizes(large_events)) < 2048
    assert max(payload_sizes(large_events)) - max(payload_sizes(small_events)) < 16
    # AND the run's files are there: the manifest of 3 batches, 3 results and the report
    keys = [
        o["Key"]
        for o in stack.aws.s3.list_objects_v2(Bucket=RUN_BUCKET, Prefix="runs/")["Contents"]
    ]
    large_folder = large["report"]["key"].removesuffix("report.json")
    mine = sorted(k.removeprefix(large_folder) for k in keys if k.startswith(large_folder))
    assert mine == [
        "manifest.json",
        "report.json",
        "results/0.json",
        "results/1.json",
        "results/2.json",
    ]
    manifest = json.loads(
        stack.aws.s3.get_object(Bucket=RUN_BUCKET, Key=large_folder + "manifest.json")[
            "Body"
        ].read()
    )
    assert [len(batch["items"]) for batch in manifest] == [99, 99, 2]
    assert 100 * max(payload_sizes(large_events)) < STATE_LIMIT
