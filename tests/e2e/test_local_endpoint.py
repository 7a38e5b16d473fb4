"""The local runtime served on 127.0.0.1, as `billing local` serves it: the operator
commands reach it over HTTP with --endpoint-url, and usage put on its stream is rated by
the shard poller.

The test polls the shard itself, where `billing local` has a thread do it: a thread would
leave the test waiting, against a deadline, for records to be delivered within a batching
window of real time. How the poller gathers a batch over its window is tested on a clock
of the test's own in test_local_kinesis.py."""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from billing_cli.local.esm import MappingSettings, ShardPoller
from billing_cli.local.runtime import LocalAws, local_aws
from billing_cli.main import app
from functions.rate_usage import app as rate_usage
from tests.support.examples import EXAMPLE_INVOICES

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DECEMBER = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[LocalAws, list[ShardPoller]]]:
    with local_aws(server_port=0) as aws:
        rate_usage.service()._clock = lambda: DECEMBER  # every example event is in the past
        # No batching window: a poll delivers at once whatever it finds on the shard.
        yield aws, aws.pollers(MappingSettings(batch_size=1000))


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
    (poller,) = pollers
    delivered = poller.poll()  # `send` has returned: every record it put is on the shard
    usage = json.loads(billing(aws, "usage", "acct-1", "--period", "2026-11", "--json"))

    # events.jsonl has 34 lines; `send` validates first and leaves out the malformed one
    # (line 30) and the one whose quantity is negative (line 33)
    assert [refused["line"] for refused in sent["refused"]] == [30, 33]
    assert (sent["sent"], delivered, poller.poll()) == (32, 32, 0)
    assert (poller.log.invocations, poller.log.errors, poller.log.sent_to_destination) == (
        1,
        0,
        [],
    )
    assert usage["invoice_preview"]["total"] == EXAMPLE_INVOICES["acct-1"]["totals"][2]


def request(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    """A GET with these headers, as a web page or a DNS-rebound name would send it."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.putrequest("GET", "/", skip_host="Host" in headers)  # S3 ListBuckets
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.endheaders()
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}


def test_the_served_runtime_listens_on_127_0_0_1_and_refuses_web_pages_and_other_hosts(
    served: tuple[LocalAws, list[ShardPoller]],
) -> None:
    aws, _ = served
    assert aws.endpoint_url is not None
    host = urllib.parse.urlsplit(aws.endpoint_url).netloc
    # GIVEN the endpoint's own address: answered
    status, _ = request(aws.endpoint_url, {"Host": host})
    assert status != 403
    # WHEN a web page asks (its browser sends an Origin) THEN it is refused, with no CORS
    status, headers = request(aws.endpoint_url, {"Host": host, "Origin": "https://evil.example"})
    assert status == 403
    assert "access-control-allow-origin" not in headers
    # WHEN a rebound name reaches it THEN it is refused too
    status, _ = request(aws.endpoint_url, {"Host": f"evil.example:{host.split(':')[1]}"})
    assert status == 403


def test_billing_local_on_a_taken_port_stops_at_once_with_a_clear_error() -> None:
    # GIVEN a port something else listens on
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # WHEN `billing local` is asked to serve there
        started = time.monotonic()
        result = CliRunner().invoke(app, ["local", "--port", str(port)])
    # THEN it exits with an error naming the address, instead of hanging
    assert time.monotonic() - started < 30
    assert result.exit_code != 0
    assert f"cannot serve on 127.0.0.1:{port}" in result.output
