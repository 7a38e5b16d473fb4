"""The local runtime served on 127.0.0.1, as `billing local` serves it: the operator
commands reach it over HTTP with --endpoint-url, and usage put on its stream is rated by
the shard poller within the batching window."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from billing_cli.local.esm import MappingSettings, ShardPoller
from billing_cli.local.runtime import LocalAws, local_aws
from billing_cli.main import app
from functions.rate_usage import app as rate_usage

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DECEMBER = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[LocalAws, list[ShardPoller]]]:
    with local_aws(server_port=0) as aws:
        rate_usage.service()._clock = lambda: DECEMBER  # every example event is in the past
        pollers = aws.pollers(MappingSettings(batch_size=1000, batching_window_seconds=0.2))
        stop = threading.Event()
        threads = [threading.Thread(target=poller.run, args=(stop,)) for poller in pollers]
        for thread in threads:
            thread.start()
        try:
            yield aws, pollers
        finally:
            stop.set()
            for thread in threads:
                thread.join()


def billing(aws: LocalAws, *args: str) -> str:
    assert aws.endpoint_url is not None
    result = CliRunner().invoke(app, ["--endpoint-url", aws.endpoint_url, *args])
    assert result.exit_code in (0, 1), result.output
    return result.output


def test_commands_reach_the_served_runtime_and_usage_is_rated_as_it_arrives(
    served: tuple[LocalAws, list[ShardPoller]],
) -> None:
    aws, pollers = served
    assert aws.endpoint_url is not None
    assert aws.endpoint_url.startswith("http://127.0.0.1:")
    billing(aws, "catalog", "push", str(EXAMPLES / "catalog.yaml"))
    billing(aws, "accounts", "push", str(EXAMPLES / "accounts.yaml"))

    sent = json.loads(billing(aws, "send", str(EXAMPLES / "events.jsonl"), "--json"))
    deadline = time.monotonic() + 30
    while sum(poller.delivered for poller in pollers) < sent["sent"]:
        assert time.monotonic() < deadline, "the poller did not deliver the records"
        time.sleep(0.05)
    usage = json.loads(billing(aws, "usage", "acct-1", "--period", "2026-11", "--json"))

    assert sent["sent"] == 32
    (poller,) = pollers
    assert (poller.log.invocations, poller.log.errors, poller.log.sent_to_destination) == (
        1,
        0,
        [],
    )
    assert usage["invoice_preview"]["total"] == "236.72"
