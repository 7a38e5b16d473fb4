"""A re-rate judges again what the rater judged against the configuration of its moment
(UNKNOWN_ACCOUNT): an account added after its first events were quarantined makes a
re-rate under the unchanged catalog differ from what the rater counted."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from billing_cli.main import app
from functions.rate_usage import app as rate_usage
from tests.support.corrections_runs import billing, local_run, rate

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
# bad-2: acct-99's api_requests, quantity 1, rejected UNKNOWN_ACCOUNT when rated.
EVENTS = (EXAMPLES / "events.jsonl").read_text().splitlines()
LATE_ACCOUNT = (
    "  - id: acct-99\n    name: Late Co\n    email: ap@late.example\n    plan: pro\n"
    "    timezone: UTC\n"
)


def _add_acct_99(folder: Path) -> None:
    accounts = folder / "more-accounts.yaml"
    accounts.write_text((EXAMPLES / "accounts.yaml").read_text() + LATE_ACCOUNT)
    result = CliRunner().invoke(app, ["accounts", "push", str(accounts)])
    assert result.exit_code == 0, result.output
    rate_usage.service.cache_clear()


def test_rerate_unchanged_catalog_after_an_account_is_added_finds_no_difference(
    tmp_path: Path,
) -> None:
    # GIVEN November rated (open) with bad-2 quarantined as UNKNOWN_ACCOUNT, then acct-99
    # added (the catalog untouched; bad-2 not replayed)
    catalog = (EXAMPLES / "catalog.yaml").read_text()
    accounts = (EXAMPLES / "accounts.yaml").read_text()
    with local_run(tmp_path, catalog, accounts, EVENTS):
        _add_acct_99(tmp_path)
        live = billing("usage", "acct-99", "--period", "2026-11")

        # WHEN November is re-rated under the unchanged catalog
        document = billing("rerate", "--period", "2026-11", "--account", "acct-99")

    # THEN the rater counted nothing for acct-99, and neither does the re-rate
    assert all(m["events"] == 0 for m in live["meters"]), live["meters"]
    assert document["accounts_changed"] == 0, document["changes"]


def test_open_period_apply_does_not_count_a_quarantined_record_nobody_replayed(
    tmp_path: Path,
) -> None:
    # GIVEN the same, then an apply to November (as after a price fix)
    catalog = (EXAMPLES / "catalog.yaml").read_text()
    accounts = (EXAMPLES / "accounts.yaml").read_text()
    with local_run(tmp_path, catalog, accounts, EVENTS):
        _add_acct_99(tmp_path)
        applied = billing("rerate", "--period", "2026-11", "--account", "acct-99", "--apply")
        usage = billing("usage", "acct-99", "--period", "2026-11")

    # THEN bad-2 is still a quarantined record to replay (or correct with a fix file,
    # whose corrected record would then be a duplicate): the apply leaves usage as rated
    assert [a["outcome"] for a in applied["applied"]] == ["unchanged"], applied
    assert all(m["events"] == 0 for m in usage["meters"]), usage["meters"]


@pytest.mark.parametrize("quantity", [1, 5], ids=["as-is", "corrected"])
def test_a_resend_of_the_quarantined_record_after_an_apply_counts_once(
    tmp_path: Path, quantity: int
) -> None:
    # GIVEN acct-99 added and November applied (which took bad-2 in, as rejected: quantity 1)
    catalog = (EXAMPLES / "catalog.yaml").read_text()
    accounts = (EXAMPLES / "accounts.yaml").read_text()
    resent = (
        '{"event_id":"bad-2","account_id":"acct-99","meter":"api_requests",'
        f'"quantity":{quantity},"timestamp":"2026-11-05T10:00:00Z"}}'
    )
    with local_run(tmp_path, catalog, accounts, EVENTS) as aws:
        _add_acct_99(tmp_path)
        billing("rerate", "--period", "2026-11", "--account", "acct-99", "--apply")

        # WHEN the operator resends bad-2, as `billing rejected replay` does after adding
        # the account (as-is) or with a fix file (corrected: quantity 5)
        rate(aws, [resent.encode()])
        usage = billing("usage", "acct-99", "--period", "2026-11")

    # THEN November counts bad-2 once (as-is: 1; corrected: 5), never 1 + the resend
    [meter] = [m for m in usage["meters"] if m["meter"] == "api_requests"]
    assert (meter["quantity"], meter["events"]) == (str(quantity), 1)
