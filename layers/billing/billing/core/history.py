"""What a push of the accounts file may change on a running deployment (CONTRACT.md 2a,
"History is never rewritten"): nothing that would price again time already rated or
invoiced. Every period up to the current one, in the account's zone, holds rated time (the
current one is open and rating), so a discount added, removed or changed may reach only
later periods, and an account's plan is changed only through its future phases, never by
editing `plan`: a plan change added, removed or edited must take effect at a local midnight
later than the push by more than `lead` (the events' future tolerance plus the raters'
configuration cache time: until then a rater may still price events after that midnight
under the accounts it read before the push). A credit grant once stored is never removed or
edited, and a new one is granted from the current period on. A fresh deployment's first
load has no history and takes anything.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from billing.core.catalog import Account, Accounts
from billing.core.periods import Period, start_of_day
from billing.core.plan_changes import PlanChange


class HistoryRewrite(ValueError):
    """A push that would price again time already rated or invoiced."""


def check_push(
    stored: Accounts | None, pushed: Accounts, now: datetime, *, lead: timedelta = timedelta(0)
) -> None:
    """Refuse, naming the account and the field, a push that rewrites history; a plan
    change must take effect later than `now` + `lead`."""
    if stored is None:
        return
    before = stored.by_id
    for index, account in enumerate(pushed.accounts):
        old = before.get(account.id)
        if old is not None and not _not_started(old, account, now + lead):
            _check_account(index, old, account, Period.containing(now, account.zone))
            _check_subscription(index, old, account, now + lead)
            _check_changes(index, old, account, now + lead)


def _not_started(old: Account, new: Account, earliest: datetime) -> bool:
    """Whether the account starts, as stored and as pushed, later than `earliest`: no time
    of it is rated yet, so nothing it is priced with can reach back (its plan and zone
    included)."""
    return all(a.start is not None and start_of_day(a.start, a.zone) > earliest for a in (old, new))


def _check_changes(index: int, old: Account, new: Account, earliest: datetime) -> None:
    """A change added, removed or edited (its old and its new form) takes effect after
    `earliest`, in the zone of the account as pushed and as stored."""
    kept = set(old.changes) & set(new.changes)
    touched: list[tuple[str, PlanChange, Account]] = [
        *(("removing", c, old) for c in old.changes if c not in kept),
        *(("adding", c, new) for c in new.changes if c not in kept),
    ]
    for action, change, account in sorted(touched, key=lambda t: t[1].effective):
        takes_effect = start_of_day(change.effective, account.zone)
        if takes_effect <= earliest:
            raise HistoryRewrite(
                f"accounts[{index}] ({new.id}): changes: {action} the change to "
                f"{change.plan!r} effective {change.effective} reaches back to "
                f"{takes_effect.isoformat()}, not later than {earliest.isoformat()} (the push "
                "plus the 5-minute future tolerance and the raters' configuration cache "
                "time); a plan change takes effect from a later local midnight"
            )


def _check_subscription(index: int, old: Account, new: Account, earliest: datetime) -> None:
    """The account's zone is kept (its periods, days and phases are cut in it); its `start`
    or `end` moves only between local midnights both later than `earliest`: one at or
    before it would move time already rated (or invoiced) into or out of the
    subscription, and price it again."""
    where = f"accounts[{index}] ({new.id})"
    if new.timezone != old.timezone:
        raise HistoryRewrite(
            f"{where}: timezone: moving the account from {old.timezone} to {new.timezone} "
            "would cut its rated periods and days again; an account keeps its time zone"
        )
    for name in ("start", "end"):
        was, now = getattr(old, name), getattr(new, name)
        if was == now:
            continue
        for day in (was, now):
            if day is None and name == "end":
                continue  # no end: the subscription runs on, nothing is reached
            # No start: from the beginning, so every rated period is reached.
            if day is None or start_of_day(day, old.zone) <= earliest:
                raise HistoryRewrite(
                    f"{where}: {name}: moving it from {was or 'none'} to {now or 'none'} "
                    f"reaches back to {day or 'the beginning'}, not later than "
                    f"{earliest.isoformat()} (the push plus the 5-minute future tolerance "
                    "and the raters' configuration cache time); "
                    f"{name} moves only to and from later local midnights"
                )


def _check_discount_order(where: str, old: Account, new: Account, current: Period) -> None:
    """Discounts apply in their listed order, so those reaching rated time keep theirs
    (a discount only for later periods may go anywhere)."""

    def reaching(account: Account) -> list[str]:
        return [d.id for d in account.discounts if Period.parse(d.first) <= current]

    if reaching(old) != reaching(new):
        raise HistoryRewrite(
            f"{where}: discounts: reordering {', '.join(map(repr, reaching(old)))} would "
            f"price again time already rated (they apply in order; the current period is "
            f"{current}); keep their order"
        )


def _check_account(index: int, old: Account, new: Account, current: Period) -> None:
    where = f"accounts[{index}] ({new.id})"
    if new.plan != old.plan:
        raise HistoryRewrite(
            f"{where}: plan: changing {old.plan!r} to {new.plan!r} would price again the "
            "time already rated; a plan change takes effect from a future date"
        )
    _check_credits(where, old, new, current)
    old_discounts = {d.id: d for d in old.discounts}
    new_discounts = {d.id: d for d in new.discounts}
    for discount_id in sorted(old_discounts.keys() | new_discounts.keys()):
        was, now = old_discounts.get(discount_id), new_discounts.get(discount_id)
        if was == now:
            continue
        touched = [d for d in (was, now) if d is not None]
        first = min(Period.parse(d.first) for d in touched)
        if first <= current:
            action = "removing" if now is None else "adding" if was is None else "changing"
            raise HistoryRewrite(
                f"{where}: discounts: {action} {discount_id!r} reaches back to {first}, "
                f"already rated (the current period is {current}); a discount may start "
                f"from {current.next()} on"
            )
    _check_discount_order(where, old, new, current)


def _check_credits(where: str, old: Account, new: Account, current: Period) -> None:
    """A stored grant is never removed or edited (invoices may have drawn on it, and its
    balance is kept by id); a new one may be granted from the current period's first day
    on. The current period is open (its invoice run starts only after it ends), so a
    grant dated in it pays only invoices not issued yet; one dated earlier could pay a
    period already invoiced, or closed and waiting for its run (docs/contract-notes.md)."""
    pushed = {grant.id: grant for grant in new.credits}
    for grant in old.credits:
        now = pushed.get(grant.id)
        if now != grant:
            action = "removing" if now is None else "changing"
            raise HistoryRewrite(
                f"{where}: credits: {action} {grant.id!r} would change what invoices drew; "
                "a grant once pushed stays as it is (add another to give more credit)"
            )
    stored = {grant.id for grant in old.credits}
    for position, grant in enumerate(new.credits):
        if grant.id not in stored and grant.granted < current.first_day:
            raise HistoryRewrite(
                f"{where}: credits[{position}].granted: adding {grant.id!r} granted "
                f"{grant.granted} reaches back before the current period {current}; a new "
                f"grant may be granted from {current.first_day} on"
            )
