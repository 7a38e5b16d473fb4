"""A customer's spend alerts, pure parts and the claim's steps on fakes: crossings of the
customer's thresholds beside the operator's, their claim keys, the email, and what an
attempt does with the claim an earlier one left."""

from __future__ import annotations

import email
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from email.message import EmailMessage
from email.policy import default
from typing import Any

import pytest

from billing.core.customer_thresholds import CustomerThresholds
from billing.core.seller import Issuer
from billing.core.spend import Crossing, SpendThresholds, crossings
from billing.customer.alert_email import ALERT_HEADER, alert_email, subject
from billing.customer.customer_alerts import CustomerAlerts, Notice
from billing.customer.spend_alerts import SpendAlerts
from billing.store.alert_claims import claim_key
from billing.store.alert_notices import (
    PENDING,
    PUBLISHING,
    SENDING,
    SENT,
    UNDELIVERABLE,
    UNKNOWN,
    Held,
)
from billing.store.customer_thresholds import StoredThresholds
from billing.store.errors import StoreError
from billing.store.mailer import DeliveryUnknown, SendThrottled, Undeliverable
from tests.unit.test_spend import ACCOUNT, FakeBus, FakeClaims, FakeConfig, image

D = Decimal
AT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
ISSUER = Issuer(name="Example Cloud Ltd", email="billing@cloud.example")
AMOUNT = Crossing("acct-1", "2026-11", "USD", D("100.00"), D("104.20"), "amount:100.00")
PERCENT = Crossing("acct-1", "2026-11", "USD", D("400.00"), D("401.00"), "percent:80")


def by_period(**lines: str) -> dict[str, dict[str, Decimal]]:
    return {"2026-11": {key: D(value) for key, value in lines.items()}}


def test_customer_thresholds_cross_beside_the_operators_each_as_its_own() -> None:
    # GIVEN the operator's 100 and the customer's 100.00 and 50% of a budget of 300 (150.00)
    operator = SpendThresholds.parse('{"USD": ["100"]}')
    customer = CustomerThresholds.of("USD", D(300), [(D(100), None), (None, D(50))])
    amounts = [(key, money.amount) for key, money in customer.amounts()]

    # WHEN a write takes November's charges from 99.99 to 150.00
    found = crossings(
        "acct-1", "USD", by_period(api="99.99"), by_period(api="150.00"), set(), operator, amounts
    )

    # THEN three alerts: the same amount set by both is two, 150.00 reached exactly is one
    assert [(c.set_by, c.threshold_id, str(c.threshold)) for c in found] == [
        ("operator", None, "100.00"),
        ("customer", "amount:100.00", "100.00"),
        ("customer", "percent:50", "150.00"),
    ]
    assert found[2].detail() == {
        "account_id": "acct-1",
        "period": "2026-11",
        "currency": "USD",
        "threshold": "150.00",
        "subtotal": "150.00",
        "set_by": "customer",
        "threshold_id": "percent:50",
    }


def test_operator_claim_keys_are_as_before_and_customer_keys_never_meet_them() -> None:
    operator = Crossing("acct-1", "2026-11", "USD", D("100.00"), D("101.00"))
    assert claim_key(operator)["sk"] == {"S": "ALERT#2026-11#USD#100.00"}
    assert claim_key(AMOUNT)["sk"] == {"S": "ALERT#2026-11#USD#customer:amount:100.00@100.00"}
    assert claim_key(PERCENT)["sk"] == {"S": "ALERT#2026-11#USD#customer:percent:80@400.00"}
    assert claim_key(AMOUNT)["pk"] == {"S": "ACCOUNT#acct-1"}


def parsed(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=default)  # type: ignore[return-value]


def plain_text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())  # type: ignore[attr-defined]


def test_the_email_says_the_spend_and_the_threshold_in_the_accounts_locale() -> None:
    # GIVEN a French-speaking account crossing 80% of its budget of 500.00 EUR
    account = ACCOUNT.model_copy(update={"locale": "fr_FR", "name": "Société Océane"})
    crossing = Crossing("acct-1", "2026-11", "EUR", D("400.00"), D("1234.50"), "percent:80")

    # WHEN its email is made
    message = parsed(alert_email(crossing, account, ISSUER, AT))

    # THEN the subject writes the amount as the JSON does, the body as the invoice does
    assert str(message["Subject"]) == "Your spend reached 400.00 EUR for 2026-11"
    assert subject(crossing) == str(message["Subject"])
    assert str(message["To"]) == "Société Océane <billing@acme.example>"
    assert str(message["From"]) == "Example Cloud Ltd <billing@cloud.example>"
    assert str(message[ALERT_HEADER]) == "acct-1 2026-11 percent:80"
    text = plain_text(message)
    assert "Hello Société Océane," in text
    assert "reached 1\u202f234,50\xa0€, at or above" in text
    assert "the threshold you set: 80\xa0% of your budget (400,00\xa0€)." in text
    html = message.get_body(preferencelist=("html",))
    assert html is not None
    assert "1\u202f234,50\xa0€" in str(html.get_content())  # type: ignore[attr-defined]


@dataclass
class FakeNotices:
    """The claim items, with AlertNotices' conditions."""

    items: dict[str, Held] = field(default_factory=dict)
    settled: dict[str, tuple[str, str]] = field(default_factory=dict)

    def claim(self, crossing: Crossing, token: str, at: datetime) -> Held:
        return self.items.setdefault(str(crossing.threshold_id), Held(PUBLISHING, token))

    def release(self, crossing: Crossing, token: str) -> None:
        if self.items.get(str(crossing.threshold_id)) == Held(PUBLISHING, token):
            del self.items[str(crossing.threshold_id)]

    def start_sending(self, crossing: Crossing, held: Held, token: str, at: datetime) -> bool:
        key = str(crossing.threshold_id)
        if self.items.get(key) not in (held, Held(SENDING, token)):
            return False
        self.items[key] = Held(SENDING, token)
        return True

    def settle(
        self, crossing: Crossing, token: str, state: str, *, message_id: str = "", reason: str = ""
    ) -> bool:
        key = str(crossing.threshold_id)
        if self.items.get(key) not in (Held(SENDING, token), Held(state, token)):
            return False
        self.items[key] = Held(state, token)
        self.settled[key] = (message_id, reason)
        return True


@dataclass
class FakeMailer:
    answers: list[Exception] = field(default_factory=list)
    sent: list[tuple[bytes, str]] = field(default_factory=list)

    def send_raw(self, raw: bytes, to: str) -> str:
        if self.answers:
            raise self.answers.pop(0)
        self.sent.append((raw, to))
        return f"message-{len(self.sent)}"


@dataclass
class FakeThresholds:
    stored: StoredThresholds | None = None
    reads: int = 0

    def get(self, account_id: str) -> StoredThresholds | None:
        self.reads += 1
        return self.stored


@dataclass
class Customer:
    notices: FakeNotices = field(default_factory=FakeNotices)
    bus: FakeBus = field(default_factory=FakeBus)
    mailer: FakeMailer = field(default_factory=FakeMailer)
    thresholds: FakeThresholds = field(default_factory=FakeThresholds)

    def alerts(self) -> CustomerAlerts:
        tokens = iter(f"token-{n}" for n in range(100))
        return CustomerAlerts(
            thresholds=self.thresholds,
            claims=self.notices,
            events=self.bus,
            mailer=self.mailer,
            issuer=ISSUER,
            clock=lambda: AT,
            token=lambda: next(tokens),
        )


def test_a_new_alert_is_published_then_emailed_and_a_redelivery_does_nothing() -> None:
    customer = Customer()
    service = customer.alerts()
    assert service.deliver(AMOUNT, ACCOUNT) == Notice(AMOUNT, True, SENT)
    assert service.deliver(AMOUNT, ACCOUNT) is None
    assert [to for _, to in customer.mailer.sent] == ["billing@acme.example"]
    assert len(customer.bus.sent) == 1
    assert customer.notices.items["amount:100.00"] == Held(SENT, "token-0")
    assert customer.notices.settled["amount:100.00"] == ("message-1", "")


def test_a_publish_the_bus_refused_gives_the_claim_back_and_sends_nothing() -> None:
    customer = Customer(bus=FakeBus(down=True))
    with pytest.raises(StoreError):
        customer.alerts().deliver(AMOUNT, ACCOUNT)
    assert (customer.notices.items, customer.mailer.sent) == ({}, [])


def test_a_send_ses_did_not_take_is_pending_and_the_next_attempt_only_emails() -> None:
    customer = Customer(mailer=FakeMailer([SendThrottled("send spend alert email: throttled")]))
    service = customer.alerts()
    with pytest.raises(SendThrottled):
        service.deliver(AMOUNT, ACCOUNT)
    assert customer.notices.items["amount:100.00"] == Held(PENDING, "token-0")

    assert service.deliver(AMOUNT, ACCOUNT) == Notice(AMOUNT, False, SENT)
    assert (len(customer.bus.sent), len(customer.mailer.sent)) == (1, 1)


@pytest.mark.parametrize(
    ("answer", "state"),
    [
        (DeliveryUnknown("send spend alert email: ReadTimeoutError"), UNKNOWN),
        (Undeliverable("send spend alert email: BadRequestException"), UNDELIVERABLE),
    ],
)
def test_a_send_that_may_have_left_or_never_can_is_settled_and_never_tried_again(
    answer: Exception, state: str
) -> None:
    customer = Customer(mailer=FakeMailer([answer]))
    service = customer.alerts()
    assert service.deliver(AMOUNT, ACCOUNT) == Notice(AMOUNT, True, state)
    assert service.deliver(AMOUNT, ACCOUNT) is None
    assert customer.mailer.sent == []
    assert customer.notices.settled["amount:100.00"] == ("", str(answer))


def test_an_attempt_that_stopped_before_recording_its_publish_leaves_the_email_to_send() -> None:
    # GIVEN a claim an attempt made, which stopped before it recorded its event published
    customer = Customer()
    customer.notices.items["amount:100.00"] = Held(PUBLISHING, "stopped")

    # WHEN the record is delivered again
    notice = customer.alerts().deliver(AMOUNT, ACCOUNT)

    # THEN the event is not published again (at most once), the email is sent
    assert notice == Notice(AMOUNT, False, SENT)
    assert (customer.bus.sent, len(customer.mailer.sent)) == ([], 1)


def test_an_attempt_that_stopped_while_ses_had_the_email_leaves_it_unknown() -> None:
    customer = Customer()
    customer.notices.items["amount:100.00"] = Held(SENDING, "stopped")
    assert customer.alerts().deliver(AMOUNT, ACCOUNT) == Notice(AMOUNT, False, UNKNOWN)
    assert customer.notices.items["amount:100.00"] == Held(UNKNOWN, "stopped")
    assert (customer.bus.sent, customer.mailer.sent) == ([], [])


def stored(thresholds: CustomerThresholds) -> StoredThresholds:
    return StoredThresholds(thresholds, 1, AT)


def test_thresholds_in_another_currency_than_the_accounts_are_ignored() -> None:
    customer = Customer()
    customer.thresholds.stored = stored(CustomerThresholds.of("EUR", None, [(D(10), None)]))
    assert customer.alerts().amounts("acct-1", "USD") == []
    customer.thresholds.stored = stored(CustomerThresholds.of("USD", D(50), [(None, D(10))]))
    assert customer.alerts().amounts("acct-1", "USD") == [("percent:10", D("5.00"))]


def spend_alerts(customer: Customer, config: FakeConfig | None = None) -> SpendAlerts:
    return SpendAlerts(
        config=config or FakeConfig(),
        claims=FakeClaims(),
        events=customer.bus,
        thresholds=SpendThresholds.parse(None),
        customer=customer.alerts(),
        clock=lambda: AT,
    )


def test_the_thresholds_are_read_only_for_a_write_that_raised_open_charges() -> None:
    # GIVEN the customer's 10.00 (CATALOG: 0.01 a request), and no operator thresholds
    customer = Customer()
    customer.thresholds.stored = stored(CustomerThresholds.of("USD", None, [(D(10), None)]))
    service = spend_alerts(customer)

    # WHEN writes change nothing, lower the charges, then raise them past 10.00
    assert (
        service.handle(image(1, p2026_11={"api": "5.00"}), image(2, p2026_11={"api": "5.00"})) == []
    )
    assert (
        service.handle(image(2, p2026_11={"api": "9.00"}), image(3, p2026_11={"api": "8.00"})) == []
    )
    reads_before = customer.thresholds.reads
    done = service.handle(image(3, p2026_11={"api": "8.00"}), image(4, p2026_11={"api": "12.00"}))

    # THEN only the last read them, once, and emailed the customer
    assert reads_before == 0
    assert customer.thresholds.reads == 1
    assert [(a.crossing.threshold_id, a.published, a.email) for a in done] == [
        ("amount:10.00", True, SENT)
    ]


def test_one_alert_failing_does_not_keep_the_others_of_the_record_from_going() -> None:
    # GIVEN two customer thresholds crossed by one write, SES refusing the first send
    customer = Customer(mailer=FakeMailer([SendThrottled("send spend alert email: throttled")]))
    customer.thresholds.stored = stored(
        CustomerThresholds.of("USD", None, [(D(10), None), (D(11), None)])
    )
    service = spend_alerts(customer)
    old, new = image(1, p2026_11={"api": "9.00"}), image(2, p2026_11={"api": "12.00"})

    # WHEN the record is handled, THEN it fails, after the second alert was emailed
    with pytest.raises(SendThrottled):
        service.handle(old, new)
    assert customer.notices.items["amount:10.00"].state == PENDING
    assert customer.notices.items["amount:11.00"].state == SENT
    # AND its redelivery emails the first only
    done: list[Any] = service.handle(old, new)
    assert [(a.crossing.threshold_id, a.published, a.email) for a in done] == [
        ("amount:10.00", False, SENT)
    ]
    assert len(customer.mailer.sent) == 2
