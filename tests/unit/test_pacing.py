"""Email at SES's pace (billing.invoicing.pacing): a batch's share of the account's send
rate, its sends spaced at exactly that rate, and no send started past its step's deadline.
Every wait is asserted on a fake clock; nothing sleeps."""

from __future__ import annotations

import math

import pytest

from billing.invoicing.delivery import PENDING_EMAIL_ERRORS
from billing.invoicing.pacing import (
    QUOTA_REFRESH_SECONDS,
    NoTimeToSend,
    Pacer,
    Pacing,
    SharedRate,
)
from billing.settings import SES_FALLBACK_SEND_RATE
from billing.store.errors import StoreError
from billing.store.mailer import NotSent, SendingUnavailable
from tests.support.fake_time import FakeClock


def paced(rate: float, clock: FakeClock, deadline: float = math.inf) -> Pacer:
    return Pacer(lambda: rate, clock=clock.now, sleep=clock.sleep, deadline=deadline)


def test_sends_are_spaced_exactly_one_interval_apart_start_to_start() -> None:
    # GIVEN a batch's share of 14 emails/s among 10 batches: 1.4/s, one every 1/1.4 s
    clock = FakeClock()
    pacer = paced(14 / 10, clock)

    # WHEN it takes four turns, each send taking 0.2 s of work
    starts = []
    for _ in range(4):
        assert pacer.take_turn()
        starts.append(clock.now())
        clock.advance(0.2)

    # THEN the first goes at once and each next one waits what is left of the interval
    interval = 1 / 1.4
    assert starts == pytest.approx([0, interval, 2 * interval, 3 * interval])
    assert clock.sleeps == pytest.approx([interval - 0.2] * 3)


def test_a_send_slower_than_the_interval_is_followed_at_once() -> None:
    clock = FakeClock()
    pacer = paced(2.0, clock)  # every 0.5 s
    assert pacer.take_turn()
    clock.advance(0.8)  # SES took longer than the interval
    assert pacer.take_turn()
    assert clock.sleeps == []


def test_a_batch_of_99_at_14_per_second_among_10_batches_sends_for_70_seconds() -> None:
    # GIVEN the default model: 14 emails/s shared by 10 batches
    clock = FakeClock()
    pacer = paced(SharedRate(lambda: 14.0, concurrency=10)(), clock)

    # WHEN a batch's 99 emails take their turns (the sends themselves take no time here)
    for _ in range(99):
        assert pacer.take_turn()

    # THEN the last one starts 98 intervals of 1/1.4 s after the first: 70 s, well inside
    # the step's 300 s less its 30 s margin
    assert clock.now() == pytest.approx(70.0)
    assert len(clock.sleeps) == 98


def test_no_turn_is_taken_past_the_deadline_and_none_is_waited_for() -> None:
    # GIVEN one email a second and a deadline 2.5 s away
    clock = FakeClock()
    pacer = paced(1.0, clock, deadline=2.5)

    # WHEN turns are taken until one is refused
    taken = 0
    while pacer.take_turn():
        taken += 1

    # THEN the turns at 0, 1 and 2 s went; the one at 3 s is refused without waiting for it
    assert taken == 3
    assert clock.sleeps == [1.0, 1.0]
    assert clock.now() == 2.0
    assert not pacer.in_time()


def test_in_time_says_whether_the_next_turn_comes_by_the_deadline() -> None:
    clock = FakeClock()
    pacer = paced(1.0, clock, deadline=1.0)
    assert pacer.in_time()
    assert pacer.take_turn()  # at 0: the next is at 1.0, still by the deadline
    assert pacer.in_time()
    assert pacer.take_turn()  # waits until 1.0
    assert not pacer.in_time()  # the next would be at 2.0


def test_a_backoff_is_allowed_only_if_the_next_turn_still_comes_by_the_deadline() -> None:
    clock = FakeClock()
    pacer = paced(1.0, clock, deadline=10.0)
    assert pacer.take_turn()
    assert pacer.can_wait(9.5)
    assert not pacer.can_wait(10.5)
    clock.advance(9.8)
    assert not pacer.can_wait(0.5)


def test_the_deadline_is_the_time_left_less_the_margin_for_the_email_in_flight() -> None:
    # GIVEN a function with 100 s left, one email a second and a 30 s margin
    clock = FakeClock(start=1000.0)
    pacing = Pacing(rate=lambda: 1.0, clock=clock.now, sleep=clock.sleep, margin=30)
    pacer = pacing.pacer(seconds_left=100)

    taken = 0
    while pacer.take_turn():
        taken += 1

    # THEN it sends from 1000 s to 1070 s: 71 emails, none started in the last 30 s
    assert taken == 71
    assert clock.now() == 1070.0


def test_unpaced_never_waits_and_has_no_deadline() -> None:
    clock = FakeClock()
    pacer = Pacing(clock=clock.now, sleep=clock.sleep).pacer()
    for _ in range(1000):
        assert pacer.take_turn()
    assert clock.sleeps == []


def test_the_rate_is_read_when_the_first_email_goes_not_before() -> None:
    # GIVEN a rate that counts its reads
    reads = []

    def rate() -> float:
        reads.append(1)
        return 5.0

    clock = FakeClock()
    pacer = Pacing(rate=rate, clock=clock.now, sleep=clock.sleep).pacer(seconds_left=300)

    # WHEN the step asks whether it has time, then sends twice
    assert pacer.in_time()
    assert reads == []
    assert pacer.take_turn()
    assert pacer.take_turn()

    # THEN the rate was read once, for the first send
    assert reads == [1]
    assert clock.sleeps == [0.2]


# --- the batch's share of the account's rate ------------------------------------------------


class Quota:
    """SES's GetAccount as the store reads it: a rate per read, or StoreError."""

    def __init__(self, *answers: float | StoreError) -> None:
        self.answers, self.reads = list(answers), 0

    def __call__(self) -> float:
        answer = self.answers[min(self.reads, len(self.answers) - 1)]
        self.reads += 1
        if isinstance(answer, StoreError):
            raise answer
        return answer


def test_a_configured_rate_is_shared_and_ses_is_not_asked() -> None:
    quota = Quota(14.0)
    shared = SharedRate(quota, concurrency=40, configured=50.0)
    assert shared() == 50.0 / 40
    assert quota.reads == 0


def test_the_quota_is_read_once_and_kept_in_the_warm_function_until_its_refresh() -> None:
    # GIVEN SES's quota, raised from 14/s to 28/s meanwhile
    clock = FakeClock()
    quota = Quota(14.0, 28.0)
    shared = SharedRate(quota, concurrency=10, clock=clock.now)

    # WHEN invocations ask for it now and again just before the refresh
    first = shared()
    clock.advance(QUOTA_REFRESH_SECONDS - 1)
    kept = shared()
    clock.advance(1)
    refreshed = shared()

    # THEN SES was asked twice: at the first invocation and once the refresh was due
    assert (first, kept, refreshed) == (1.4, 1.4, 2.8)
    assert quota.reads == 2


def test_a_quota_that_cannot_be_read_paces_at_the_lowest_rate_and_is_read_again() -> None:
    # GIVEN GetAccount refused once (a permission missing, say), then answered
    quota = Quota(StoreError("read the SES sending quota: AccessDeniedException"), 14.0)
    shared = SharedRate(quota, concurrency=10)

    # THEN the batches share SES's lowest rate for now, and the next invocation reads again
    assert shared() == SES_FALLBACK_SEND_RATE / 10
    assert shared() == 1.4
    assert quota.reads == 2


def test_a_concurrency_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one batch"):
        SharedRate(Quota(14.0), concurrency=0)


def every_subclass(kind: type) -> set[type]:
    found = set()
    for sub in kind.__subclasses__():
        found |= {sub, *every_subclass(sub)}
    return found


def test_every_email_certainly_not_sent_is_reported_under_a_pending_name() -> None:
    # A step reports a NotSent (of any kind) by its class name in `failed`: the report
    # counts exactly those names as pending
    assert {kind.__name__ for kind in {NotSent, *every_subclass(NotSent)}} == PENDING_EMAIL_ERRORS
    assert "DeliveryUnknown" not in PENDING_EMAIL_ERRORS  # may have left: not pending


def test_a_step_stopped_by_a_refusal_of_the_account_sends_nothing_more_and_says_why() -> None:
    clock = FakeClock()
    pacer = paced(1.0, clock, deadline=100.0)
    assert pacer.may_send()
    assert isinstance(pacer.not_sent(), NoTimeToSend)

    refusal = SendingUnavailable("send invoice email: our sending account: SendingPausedException")
    pacer.stop(refusal)

    assert pacer.in_time()  # time is left, but SES would refuse every send alike
    assert not pacer.may_send()
    assert pacer.not_sent() is refusal
