"""`billing accounts list` and `billing accounts show` against the local runtime: read
through the operator API's own function (invoked through Lambda, with the event API
Gateway would give it), found by the local stack's outputs; and writes through that
function judged at the runtime's test clock, as a push is."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from billing_cli.deployment import connect
from billing_cli.local.runtime import LocalAws, local_aws
from billing_cli.main import app
from billing_cli.operator_client import operator_api

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
IDS = [f"acct-{n}" for n in range(1, 7)]


def billing(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def push_examples() -> None:
    assert billing("catalog", "push", str(EXAMPLES / "catalog.yaml")).exit_code == 0
    assert billing("accounts", "push", str(EXAMPLES / "accounts.yaml")).exit_code == 0


def stored(local: LocalAws, account_id: str) -> str:
    item = local.dynamodb.get_item(
        TableName=local.config._table,
        Key={"pk": {"S": f"ACCOUNT#{account_id}"}, "sk": {"S": "PROFILE"}},
    )
    return str(item["Item"]["document"]["S"])


@pytest.fixture
def local() -> Iterator[LocalAws]:
    with local_aws() as aws:
        push_examples()
        yield aws


def test_list_gives_every_account_as_stored(local: LocalAws) -> None:
    result = billing("accounts", "list", "--json")

    assert result.exit_code == 0, result.output
    accounts = json.loads(result.output)["accounts"]
    assert [account["id"] for account in accounts] == IDS
    assert accounts == [json.loads(stored(local, account_id)) for account_id in IDS]


def test_list_prints_a_table_of_the_accounts(local: LocalAws) -> None:
    result = billing("accounts", "list")

    assert result.exit_code == 0, result.output
    assert "6 accounts in UsageBilling-local" in result.output
    assert "Acme Ltd" in result.output
    assert "acct-6" in result.output


def test_show_gives_the_account_and_its_version(local: LocalAws) -> None:
    result = billing("accounts", "show", "acct-1", "--json")

    assert result.exit_code == 0, result.output
    document = stored(local, "acct-1")
    assert json.loads(result.output) == {
        "account": json.loads(document),
        "version": hashlib.sha256(document.encode()).hexdigest()[:32],
    }


def test_show_of_an_unknown_account_says_so(local: LocalAws) -> None:
    result = billing("accounts", "show", "acct-404")

    assert result.exit_code == 2
    assert "account 'acct-404' is not stored" in result.output


def test_writes_through_the_function_are_judged_at_the_test_clock() -> None:
    # GIVEN the local runtime on a test clock of 10 November 2026 (the real clock is later)
    with local_aws(clock=datetime(2026, 11, 10, 12, tzinfo=UTC)):
        push_examples()
        api = operator_api(connect())
        read = api.request("GET", "/operator/accounts/acct-1")
        etag = read.headers["etag"]

        # WHEN acct-1 is ended on 25 November (a later midnight on the test clock)
        ended = api.request(
            "POST",
            "/operator/accounts/acct-1/end",
            headers={"If-Match": etag},
            body={"end": "2026-11-25"},
        )

        # THEN it is taken; AND ending it again on the version read is a conflict
        assert (ended.status, ended.body["end"]) == (200, "2026-11-25")
        again = api.request(
            "POST",
            "/operator/accounts/acct-1/end",
            headers={"If-Match": etag},
            body={"end": "2026-11-26"},
        )
        assert again.status == 409


def test_list_and_show_reach_a_served_runtime_over_its_endpoint() -> None:
    # GIVEN `billing local` as it serves other processes: moto over HTTP on 127.0.0.1
    with local_aws(server_port=0) as aws:
        assert aws.endpoint_url is not None
        endpoint = ["--endpoint-url", aws.endpoint_url]
        for kind, path in (("catalog", "catalog.yaml"), ("accounts", "accounts.yaml")):
            assert billing(*endpoint, kind, "push", str(EXAMPLES / path)).exit_code == 0

        # WHEN the accounts are listed and one shown through the endpoint
        listed = billing(*endpoint, "accounts", "list", "--json")
        shown = billing(*endpoint, "accounts", "show", "acct-3", "--json")

    # THEN the operator function answered both, through Lambda on the served runtime
    assert listed.exit_code == 0, listed.output
    assert [a["id"] for a in json.loads(listed.output)["accounts"]] == IDS
    assert json.loads(shown.output)["account"]["name"] == "Müller Maschinenbau GmbH"


@pytest.mark.parametrize(
    "change",
    [
        {"plan": "team"},
        {"end": "2026-11-05"},  # reaching back before the test clock
        {"timezone": "UTC"},
    ],
)
def test_the_api_refuses_a_history_rewrite_in_the_push_s_own_words(
    tmp_path: Path, change: dict[str, str]
) -> None:
    # GIVEN the examples on a test clock of 10 November 2026
    with local_aws(clock=datetime(2026, 11, 10, 12, tzinfo=UTC)) as aws:
        push_examples()
        api = operator_api(connect())
        read = api.request("GET", "/operator/accounts/acct-1")
        changed = {**read.body, **change}
        # WHEN the same change is pushed as a file holding the account, and put through the API
        file = tmp_path / "acct-1.json"
        file.write_text(json.dumps({"accounts": [changed]}))
        pushed = billing("accounts", "push", str(file))
        put = api.request(
            "PUT",
            "/operator/accounts/acct-1",
            headers={"If-Match": read.headers["etag"]},
            body=changed,
        )
        after = stored(aws, "acct-1")

    # THEN both refuse it with the same words (the push names its file first)
    assert pushed.exit_code == 2
    assert put.status == 409
    assert " ".join(pushed.output.split()) == f"error: {file.name}: {put.message}"
    assert json.loads(after) == read.body
