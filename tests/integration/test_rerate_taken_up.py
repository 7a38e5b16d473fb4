"""`billing rerate --apply` on an invoiced period (the local runtime): a re-rate
that the minimum commitment takes up whole, usage going up, issues no document."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from billing.core.catalog import load_catalog
from tests.integration.test_archive_replay import EXAMPLES, Run, examples_run
from tests.integration.test_rerate_credit import REASON, by_account, rerate

pytestmark = pytest.mark.integration

# The pro plan's free API tier: acct-2's 750,000 requests (500,000 + 250,000 + 100 before
# it joined, not billed) are all in it.
FREE_TIER = '{up_to: 1000000, unit_price: "0"}'


@pytest.fixture(scope="module")
def free_tier_priced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """November invoiced, then the free tier pushed at 0.000001 a request."""
    with examples_run() as run:
        text = (EXAMPLES / "catalog.yaml").read_text()
        assert text.count(FREE_TIER) == 1
        changed = tmp_path_factory.mktemp("catalogs") / "catalog.yaml"
        changed.write_text(text.replace(FREE_TIER, FREE_TIER.replace('"0"', '"0.000001"')))
        run.aws.config.put_catalog(load_catalog(changed))
        yield run


def test_usage_up_that_the_minimum_commitment_takes_up_issues_no_document(
    free_tier_priced: Run,
) -> None:
    # GIVEN acct-2 (pro, joined 16 November: fee and minimum prorated, no tax) under its
    # minimum commitment: its 750,000 requests now cost 0.75, and its top-up is 0.75 less
    (dry,) = [each for each in rerate()["changes"] if each["account_id"] == "acct-2"]
    assert dry["difference"] == "0.00"
    # WHEN the period is applied
    applied = by_account(rerate("--apply", "--reason", REASON))
    # THEN acct-2's invoice stands: no credit note of 0.75 (the top-up) and adjustment of
    # 0.75 (the requests) that cancel (docs/corrections.md, *No document that owes nothing*)
    assert applied["acct-2"]["outcome"] == "unchanged", applied["acct-2"]
    assert "credit_note" not in applied["acct-2"]
    assert "adjustment" not in applied["acct-2"]
