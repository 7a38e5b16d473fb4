"""A customer's own spend thresholds through the real path on moto: events rated by the real
rater, the ledger table's stream records through the spend_alerts handler, the thresholds
read from the config table, the events on the bus and the emails in moto's SES. Each
crossing is published and emailed once, however often the stream delivers it, and an
email SES did not take is sent by the redelivery, once."""

from __future__ import annotations

import email
import json
from dataclasses import dataclass, field
from decimal import Decimal
from email.message import EmailMessage
from email.policy import default
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError, ReadTimeoutError
from moto.ses.models import ses_backends

from billing import wiring
from billing.core.customer_thresholds import CustomerThresholds
from billing.core.seller import DEFAULT_SELLER_NAME
from billing.core.spend import Crossing
from billing.customer.customer_alerts import SendInFlight
from billing.settings import SPEND_ALERT_THRESHOLDS_ENV
from billing.store.alert_claims import claim_key
from billing.store.customer_thresholds import ThresholdsStore
from billing.store.mailer import Mailer
from functions.spend_alerts import app as spend_alerts
from tests.integration.conftest import NOW, REGION
from tests.integration.test_rater_exactly_once import event
from tests.integration.test_spend_alerts import SENDER, Alerts, alerts
from tests.support.kinesis import FIRST_SEQUENCE, shard

__all__ = ["alerts"]  # the fixture, used by name

D = Decimal
ACCOUNT = "acct-3"  # Müller Maschinenbau GmbH, on starter-eur: 0.000015 EUR an API request
ADDRESS = "rechnungen@mueller.example"


@dataclass
class Ses:
    """SES as the alerts' Mailer sees it: each send takes the next scripted answer (an
    error), or goes to moto's SES when none is left."""

    script: list[Exception] = field(default_factory=list)
    attempts: int = 0

    def client(self, real: Any) -> Any:
        ses = self

        class Scripted:
            def send_email(self, **request: Any) -> Any:
                ses.attempts += 1
                if ses.script:
                    raise ses.script.pop(0)
                return real.send_email(**request)

        return Scripted()


def refused(code: str) -> ClientError:
    error = {"Code": code, "Message": "Email address is not verified."}
    meta = {"HTTPStatusCode": 400}
    return ClientError({"Error": error, "ResponseMetadata": meta}, "SendEmail")  # type: ignore[typeddict-item]


@pytest.fixture
def ses(alerts: Alerts, monkeypatch: pytest.MonkeyPatch) -> Ses:
    """The alerts' service rebuilt on scripted SES, with the operator's EUR threshold of
    10.00 (the same amount as one of the customer's: two alerts, never one)."""
    scripted = Ses()
    original = Mailer.__init__

    def on_script(self: Mailer, client: Any, *args: Any, **kwargs: Any) -> None:
        original(self, scripted.client(client), *args, **kwargs)

    monkeypatch.setattr(Mailer, "__init__", on_script)
    monkeypatch.setenv(SPEND_ALERT_THRESHOLDS_ENV, json.dumps({"EUR": ["10.00"]}))
    service = wiring.spend_alerts()
    monkeypatch.setattr(spend_alerts, "service", lambda: service)
    return scripted


def set_thresholds(alerts: Alerts, currency: str = "EUR") -> None:
    """The customer's own: 10.00, 50% and 100% of a budget of 40.00 (20.00 and 40.00)."""
    thresholds = CustomerThresholds.of(
        currency, D("40.00"), [(D("10.00"), None), (None, D("50")), (None, D("100"))]
    )
    ThresholdsStore(alerts.aws.dynamodb, alerts.aws.config_table).put(ACCOUNT, thresholds, NOW)


def rate_one_batch(alerts: Alerts) -> list[dict[str, Any]]:
    """Two events of a million API requests each, rated in one batch (15.00 EUR each: one
    ledger write from 0 to 30.00); the ledger's stream records it made."""
    records = shard(
        [
            event("big-1", ACCOUNT, quantity=1_000_000),
            event("big-2", ACCOUNT, quantity=1_000_000),
        ]
    )
    alerts.aws.service().process(records)
    written = alerts.new_records()
    assert len(written) == 1
    return written


def emails() -> list[EmailMessage]:
    sent = ses_backends["123456789012"][REGION].sent_messages
    return [email.message_from_string(m.raw_data, policy=default) for m in sent]  # type: ignore[misc]


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())  # type: ignore[attr-defined]


def crossed(events: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    return sorted(
        (
            e["detail"]["set_by"],
            e["detail"].get("threshold_id", ""),
            e["detail"]["threshold"],
            e["detail"]["subtotal"],
        )
        for e in events
    )


# 0 → 30.00 EUR in one write crosses the operator's 10.00 and the customer's 10.00 and 50%
# (20.00); 100% (40.00) is not reached.
EXPECTED_EVENTS = [
    ("customer", "amount:10.00", "10.00", "30.00"),
    ("customer", "percent:50", "20.00", "30.00"),
    ("operator", "", "10.00", "30.00"),
]
SUBJECTS = [
    "Your spend reached 10.00 EUR for 2026-11",
    "Your spend reached 20.00 EUR for 2026-11",
]


def claim_state(alerts: Alerts, threshold_id: str, threshold: str) -> str:
    crossing = Crossing(ACCOUNT, "2026-11", "EUR", D(threshold), D("30.00"), threshold_id)
    item = alerts.aws.dynamodb.get_item(
        TableName=alerts.aws.ledger_table, Key=claim_key(crossing), ConsistentRead=True
    )["Item"]
    return str(item["state"]["S"])


def test_two_thresholds_crossed_in_one_batch_send_two_emails_once_each(
    alerts: Alerts, ses: Ses
) -> None:
    # GIVEN the customer's thresholds, and one batch that crosses two of them
    set_thresholds(alerts)
    records = rate_one_batch(alerts)

    # WHEN its stream records are delivered
    assert alerts.deliver(records) == {"batchItemFailures": []}

    # THEN each crossing is one event, the customer's marked as theirs
    assert crossed(alerts.published()) == EXPECTED_EVENTS
    # AND two emails went to the account's address, one per customer threshold, the
    # amounts written as the invoice writes them (the account's locale: en)
    sent = sorted(emails(), key=lambda m: str(m["Subject"]))
    assert [str(m["Subject"]) for m in sent] == SUBJECTS
    assert {str(m["To"]) for m in sent} == {f"Müller Maschinenbau GmbH <{ADDRESS}>"}
    assert {str(m["From"]) for m in sent} == {f"{DEFAULT_SELLER_NAME} <{SENDER}>"}
    by_amount, by_percent = (text_of(m) for m in sent)
    assert "reached €30.00, at or above the threshold you set: €10.00." in by_amount
    assert "the threshold you set: 50% of your budget (€20.00)." in by_percent
    assert claim_state(alerts, "amount:10.00", "10.00") == "sent"

    # WHEN the same records are delivered again (a replay of the stream)
    assert alerts.deliver(records) == {"batchItemFailures": []}

    # THEN nothing new is published or sent
    assert alerts.published() == []
    assert len(emails()) == 2
    assert ses.attempts == 2


def test_an_email_ses_refused_is_pending_and_the_redelivery_sends_it_once(
    alerts: Alerts, ses: Ses
) -> None:
    # GIVEN SES refusing both sends before anything left (our sending account's
    # MessageRejected: certainly not sent)
    set_thresholds(alerts)
    records = rate_one_batch(alerts)
    ses.script = [refused("MessageRejected"), refused("MessageRejected")]

    # WHEN the record is delivered
    # THEN it fails (its batch's only record: the invocation fails, and Lambda delivers
    # it again), every event is published, no email left, and both claims wait as pending
    with pytest.raises(BatchProcessingError, match="All records failed"):
        alerts.deliver(records)
    assert crossed(alerts.published()) == EXPECTED_EVENTS
    assert emails() == []
    assert claim_state(alerts, "amount:10.00", "10.00") == "pending"
    assert claim_state(alerts, "percent:50", "20.00") == "pending"

    # WHEN Lambda delivers it again, SES taking them now, and then once more
    assert alerts.deliver(records) == {"batchItemFailures": []}
    assert alerts.deliver(records) == {"batchItemFailures": []}

    # THEN each email went once, and no event was published again
    assert sorted(str(m["Subject"]) for m in emails()) == SUBJECTS
    assert alerts.published() == []
    assert ses.attempts == 4


def test_an_email_whose_outcome_is_unknown_is_never_sent_again(alerts: Alerts, ses: Ses) -> None:
    # GIVEN SES's answer to the first send lost (a read timeout: it may have left)
    set_thresholds(alerts)
    records = rate_one_batch(alerts)
    ses.script = [ReadTimeoutError(endpoint_url="https://email.us-east-1.amazonaws.com")]

    # WHEN the record is delivered, and delivered again
    first = alerts.deliver(records)
    again = alerts.deliver(records)

    # THEN neither fails: the other email was sent, the unknown one recorded for an
    # operator and never tried again
    assert first == again == {"batchItemFailures": []}
    assert [str(m["Subject"]) for m in emails()] == [SUBJECTS[1]]
    assert claim_state(alerts, "amount:10.00", "10.00") == "unknown"
    assert claim_state(alerts, "percent:50", "20.00") == "sent"
    assert ses.attempts == 2
    assert crossed(alerts.published()) == EXPECTED_EVENTS


def test_thresholds_set_in_another_currency_alert_nothing(alerts: Alerts, ses: Ses) -> None:
    # GIVEN the customer's thresholds stored in USD, the account's plan being in EUR
    set_thresholds(alerts, currency="USD")
    records = rate_one_batch(alerts)

    # WHEN the record is delivered
    assert alerts.deliver(records) == {"batchItemFailures": []}

    # THEN only the operator's threshold alerts; no email
    assert crossed(alerts.published()) == [("operator", "", "10.00", "30.00")]
    assert emails() == []
    assert ses.attempts == 0


def test_a_percentage_of_a_changed_budget_alerts_again_at_its_new_amount(
    alerts: Alerts, ses: Ses
) -> None:
    def budget(amount: str) -> None:
        thresholds = CustomerThresholds.of("EUR", D(amount), [(None, D("50"))])
        ThresholdsStore(alerts.aws.dynamodb, alerts.aws.config_table).put(ACCOUNT, thresholds, NOW)

    def rate(first: int, *ids: str) -> None:  # a million API requests: 15.00 EUR each
        events = [event(i, ACCOUNT, quantity=1_000_000) for i in ids]
        alerts.aws.service().process(shard(events, first=FIRST_SEQUENCE + first))
        assert alerts.deliver(alerts.new_records()) == {"batchItemFailures": []}

    # GIVEN 50% of a 40.00 budget (20.00), crossed by 0 -> 30.00: one email
    budget("40.00")
    rate(0, "b-1", "b-2")
    # WHEN the customer raises the budget to 100.00 (50% is 50.00), and 30.00 -> 60.00
    budget("100.00")
    rate(1000, "b-3", "b-4")

    # THEN 50% at its new amount is a new threshold: emailed once too
    assert [str(m["Subject"]) for m in emails()] == [
        "Your spend reached 20.00 EUR for 2026-11",
        "Your spend reached 50.00 EUR for 2026-11",
    ]


def test_a_second_handling_of_a_record_while_ses_has_the_first_sends_nothing_twice(
    alerts: Alerts, ses: Ses, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two deliveries of one record at once should not happen (Lambda hands one partition's
    # records to one invocation at a time); if they did, the second finds the first's
    # recent `sending` claim and fails its record instead of calling it unknown.
    set_thresholds(alerts)
    [record] = rate_one_batch(alerts)
    change = record["dynamodb"]
    other = wiring.spend_alerts()  # the second invocation's own container
    second: list[Exception] = []
    real_client = ses.client

    def client(real: Any) -> Any:
        scripted = real_client(real)

        class WhileSesHasIt:
            def send_email(self, **request: Any) -> Any:
                if not second:  # during the first send, the other invocation runs
                    with pytest.raises(SendInFlight) as raised:
                        other.handle(change.get("OldImage"), change.get("NewImage"))
                    second.append(raised.value)
                return scripted.send_email(**request)

        return WhileSesHasIt()

    monkeypatch.setattr(ses, "client", client)
    first = wiring.spend_alerts()
    monkeypatch.setattr(spend_alerts, "service", lambda: first)

    assert alerts.deliver([record]) == {"batchItemFailures": []}
    assert alerts.deliver([record]) == {"batchItemFailures": []}  # the second's redelivery

    assert len(second) == 1
    assert sorted(str(m["Subject"]) for m in emails()) == [
        "Your spend reached 10.00 EUR for 2026-11",
        "Your spend reached 20.00 EUR for 2026-11",
    ]
    assert claim_state(alerts, "amount:10.00", "10.00") == "sent"
    assert claim_state(alerts, "percent:50", "20.00") == "sent"
