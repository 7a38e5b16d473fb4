"""The due hint's rules (billing.core.owed): where each writer puts an account's hint, so
that it is never later than the earliest period the account owes and has not finished."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

import pytest

from billing.core.catalog import Account
from billing.core.owed import (
    DUE_SHARDS,
    DueHint,
    advanced,
    due_shard,
    first_period,
    instant_text,
    latest_ended,
    needs_earliest_invoice,
    owed,
    pushed,
)
from billing.core.periods import Period, zone

pytestmark = pytest.mark.unit

OCT, NOV, DEC = Period(2026, 10), Period(2026, 11), Period(2026, 12)


def account(**fields: Any) -> Account:
    return Account.model_validate(
        {
            "id": "acct-9",
            "name": "Nine",
            "email": "ap@nine.example",
            "plan": "pro",
            "timezone": "Europe/Paris",
            **fields,
        }
    )


def test_a_hint_is_due_at_its_periods_end_in_the_accounts_zone_written_as_sortable_utc() -> None:
    # November ends at local midnight on 1 December: 23:00 UTC in Paris, 05:00 in New York.
    paris = DueHint.of(NOV, zone("Europe/Paris"))
    new_york = DueHint.of(NOV, zone("America/New_York"))
    assert (paris.due_text, new_york.due_text) == ("2026-11-30T23:00:00Z", "2026-12-01T05:00:00Z")
    assert paris < new_york
    # fixed width: text order is time order, fractions of a second dropped
    assert instant_text(datetime(2026, 12, 1, 1, 0, 0, 999, tzinfo=UTC)) == "2026-12-01T01:00:00Z"


def test_a_hint_before_year_1000_is_written_with_four_digits() -> None:
    # Found by fuzzing the rater: an event of year 500 gave a hint written "500-07-01...",
    # which the due step could not read back (and which sorted before year 2026's).
    hint = DueHint.of(Period(500, 6), zone("UTC"))
    assert hint.due_text == "0500-07-01T00:00:00Z"
    assert instant_text(datetime(1, 2, 3, 4, 5, 6, tzinfo=UTC)) == "0001-02-03T04:05:06Z"
    assert hint.due_text < DueHint.of(NOV, zone("UTC")).due_text


def test_the_shard_is_stable_two_digits_and_spreads_accounts_evenly() -> None:
    shards = Counter(due_shard(f"acct-{n}") for n in range(16_000))
    assert sorted(shards) == [f"{n:02d}" for n in range(DUE_SHARDS)]
    assert min(shards.values()) > 850
    assert max(shards.values()) < 1150
    assert due_shard("acct-1") == due_shard("acct-1")


def test_the_latest_ended_period_waits_for_the_grace_time_in_the_accounts_zone() -> None:
    paris = zone("Europe/Paris")
    # 1 December 00:30 in Paris less an hour's grace is still November there
    assert latest_ended(datetime(2026, 11, 30, 22, 30, tzinfo=UTC), paris) == OCT
    assert latest_ended(datetime(2026, 11, 30, 23, 0, tzinfo=UTC), paris) == NOV


def test_the_first_period_is_the_starts_else_the_earliest_shown_else_the_latest() -> None:
    assert first_period(account(start="2026-10-10"), [Period(2026, 8)], NOV) == OCT
    assert first_period(account(), [Period(2026, 9), OCT], NOV) == Period(2026, 9)
    assert first_period(account(), [], NOV) == NOV


def test_owed_periods_are_those_the_subscription_overlaps() -> None:
    ended = account(start="2026-09-15", end="2026-11-01")
    assert owed(ended, Period(2026, 8), DEC) == [Period(2026, 9), OCT]


def test_a_run_moves_the_hint_to_the_earliest_period_it_left_unfinished() -> None:
    assert advanced(account(), [NOV, OCT], NOV) == DueHint.of(OCT, zone("Europe/Paris"))


def test_with_all_done_the_hint_moves_to_the_next_period_or_the_start() -> None:
    assert advanced(account(), [], NOV) == DueHint.of(DEC, zone("Europe/Paris"))
    later = account(start="2027-03-01")
    assert advanced(later, [], NOV) == DueHint.of(Period(2027, 3), zone("Europe/Paris"))


def test_with_all_done_and_the_subscription_over_the_hint_goes() -> None:
    assert advanced(account(end="2026-12-01"), [], NOV) is None
    # a day of December still owed: the hint stays for it
    assert advanced(account(end="2026-12-02"), [], NOV) == DueHint.of(DEC, zone("Europe/Paris"))


def test_a_new_account_is_hinted_at_its_start_or_without_one_the_latest_ended_period() -> None:
    new = {"before": None, "stored": None, "earliest_invoice": None, "latest": NOV}
    assert pushed(account(start="2026-06-10"), **new) == DueHint.of(
        Period(2026, 6), zone("Europe/Paris")
    )
    assert pushed(account(), **new) == DueHint.of(NOV, zone("Europe/Paris"))


def test_a_push_that_changes_neither_start_end_nor_zone_writes_nothing() -> None:
    before = account(start="2026-06-10", name="Old name")
    stored = DueHint.of(NOV, before.zone)
    same = account(start="2026-06-10", name="New name")
    assert pushed(same, before=before, stored=stored, earliest_invoice=None, latest=NOV) is None
    assert not needs_earliest_invoice(same, before, stored=False)


def test_a_start_moved_earlier_lowers_the_hint_and_one_moved_later_leaves_it() -> None:
    before = account(start="2026-06-10")
    stored = DueHint.of(NOV, before.zone)
    earlier = account(start="2026-03-01")
    assert pushed(earlier, before=before, stored=stored, earliest_invoice=None, latest=NOV) == (
        DueHint.of(Period(2026, 3), earlier.zone)
    )
    later = account(start="2026-08-01")
    assert pushed(later, before=before, stored=stored, earliest_invoice=None, latest=NOV) is None


def test_a_zone_change_keeps_the_period_due_at_the_earlier_of_the_two_ends() -> None:
    # Until the new profile is stored the old zone may hold. November ends in Tokyo 14
    # hours before it ends in New York: moving to New York keeps Tokyo's end (nothing to
    # write; the run moves the hint on in New York's), moving to Tokyo takes Tokyo's.
    tokyo, new_york = account(timezone="Asia/Tokyo"), account(timezone="America/New_York")
    to_new_york = pushed(
        new_york,
        before=tokyo,
        stored=DueHint.of(NOV, tokyo.zone),
        earliest_invoice=None,
        latest=NOV,
    )
    assert to_new_york is None
    to_tokyo = pushed(
        tokyo,
        before=new_york,
        stored=DueHint.of(NOV, new_york.zone),
        earliest_invoice=None,
        latest=NOV,
    )
    assert to_tokyo == DueHint.of(NOV, tokyo.zone)


def test_an_account_the_index_dropped_is_hinted_again_from_its_first_period() -> None:
    # Its subscription had ended and everything was invoiced: no hint. Its end is moved on.
    before = account(start="2026-02-01", end="2026-06-01")
    extended = account(start="2026-02-01", end="2027-01-01")
    assert pushed(extended, before=before, stored=None, earliest_invoice=None, latest=NOV) == (
        DueHint.of(Period(2026, 2), extended.zone)
    )
    # Without a start: from its earliest invoice, which the push reads for it.
    before, extended = account(end="2026-06-01"), account(end="2027-01-01")
    assert needs_earliest_invoice(extended, before, stored=False)
    hint = pushed(
        extended, before=before, stored=None, earliest_invoice=Period(2026, 4), latest=NOV
    )
    assert hint == DueHint.of(Period(2026, 4), extended.zone)
    assert pushed(extended, before=before, stored=None, earliest_invoice=None, latest=NOV) == (
        DueHint.of(NOV, extended.zone)
    )


def test_a_pushed_account_whose_profile_was_gone_keeps_the_earlier_of_both() -> None:
    stored = DueHint.of(Period(2026, 3), zone("Europe/Paris"))
    again = account(start=date(2026, 9, 1).isoformat())
    assert pushed(again, before=None, stored=stored, earliest_invoice=None, latest=NOV) is None
