"""The chaos run at CI size (`make chaos` runs it at full size): 2,500 records over 20
accounts, seed fixed, every fault injected at least once, and everything equal to the
independent oracle (tests/chaos/oracle.py)."""

from __future__ import annotations

from tests.chaos.runner import CI_ACCOUNTS, CI_EVENTS, Settings, report, run

CI_SEED = 20261219


def test_chaos_run_at_ci_size_matches_the_oracle_under_every_fault() -> None:
    # GIVEN a seeded workload (plan changes, discounts, credits, unique_count and latest
    # meters, producer duplicates, poison pills) on a stream resharded half-way
    # WHEN it is rated by two environments under throttling bursts, lost acknowledgements,
    # crashes after k writes, forced ledger races and batches delivered again, then
    # invoiced by a killed Issue step, two runs at once and restarts while SES and
    # EventBridge refuse some calls
    result = run(Settings(CI_EVENTS, CI_ACCOUNTS, CI_SEED, reshard_ties=0))

    # THEN every fault happened, and nothing differs from the oracle
    faults = result.faults
    injected = {
        "producer duplicates": faults["producer duplicates (new sequence numbers)"] > 0,
        "poison pills": faults["poison pills and bad records, by reason"].get("MALFORMED_JSON", 0)
        > 0,
        "reshard": len(faults["reshard"]) == 2,
        "redelivered batches": faults["batches delivered again after success"] > 0,
        "crashes": faults["crashed invocations"] > 0,
        "throttling": faults.get("throttled writes", 0) > 0,
        "races": faults.get("races (other environment first)", 0) > 0,
        "conditional checks failed": faults["conditional checks failed (ledger races)"] > 0,
        "invoice step killed": faults["invoice step killed after emails"] > 0,
        "SES refused": faults.get("SES sends refused (TooManyRequests)", 0) > 0,
        "bus refused": faults.get("InvoiceIssued entries refused by the bus", 0) > 0,
    }
    assert injected == dict.fromkeys(injected, True), report(result)
    assert result.conservation["in = rated + duplicates + rejected"], report(result)
    assert result.passed, report(result)


def test_latest_tied_across_the_reshard_takes_the_later_event_on_the_stream() -> None:
    # GIVEN the CI workload with 12 accounts each sending two seats_now events at the last
    # nanosecond of November, one just before the split of shard 0 (quantity 111) and one
    # just after it (222: on a child shard when the account's shard was split)
    # WHEN the rating half runs under the same faults
    result = run(Settings(CI_EVENTS, CI_ACCOUNTS, CI_SEED, reshard_ties=12, invoicing=False))

    # THEN November's seats_now is 222 for each of them, as the oracle says
    assert result.problems["aggregates differing from the oracle"] == 0, report(result)
