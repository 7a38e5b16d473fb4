"""Standard Webhooks signatures, the webhook id and body, and the retry schedule."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from billing.core.spend import Crossing
from billing.core.webhooks.payload import MAX_ATTEMPTS, DomainEvent, retry_delay, webhook_id
from billing.core.webhooks.signing import SignatureError, new_secret, sign, signed_headers, verify
from billing.store.alert_claims import claim_key
from billing.store.webhook_endpoints import EndpointError, checked_types, checked_url

# The test vector the Standard Webhooks reference libraries share.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_signature_is_the_specifications_example() -> None:
    assert sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_the_specifications_example_verifies_among_several_signatures() -> None:
    headers = {
        "Webhook-Id": SPEC_ID,
        "Webhook-Timestamp": str(SPEC_TIMESTAMP),
        "Webhook-Signature": f"v1,bm9wZQ== {SPEC_SIGNATURE}",
    }
    assert verify(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TIMESTAMP + 300) == SPEC_ID


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"body": b'{"test": 2432232315}'}, "no signature matches"),
        ({"secret": "whsec_" + "A" * 32}, "no signature matches"),
        ({"now": SPEC_TIMESTAMP + 301}, "outside the tolerance"),
        ({"now": SPEC_TIMESTAMP - 301}, "outside the tolerance"),
        ({"drop": "webhook-signature"}, "missing header webhook-signature"),
    ],
)
def test_a_changed_delivery_does_not_verify(change: dict[str, object], reason: str) -> None:
    headers = signed_headers(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    headers.pop(str(change.get("drop", "")), None)
    with pytest.raises(SignatureError, match=reason):
        verify(
            str(change.get("secret", SPEC_SECRET)),
            headers,
            change.get("body", SPEC_BODY),  # type: ignore[arg-type]
            now=int(change.get("now", SPEC_TIMESTAMP)),  # type: ignore[call-overload]
        )


def test_a_new_secret_signs_and_verifies() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    headers = signed_headers(secret, "msg_1", 100, b"{}")
    assert verify(secret, headers, b"{}", now=100) == "msg_1"


def _event(detail: dict[str, object], envelope_id: str = "env-1") -> DomainEvent:
    return DomainEvent.from_eventbridge(
        {"id": envelope_id, "detail-type": "InvoiceIssued", "detail": detail, "time": "T"}
    )


def test_the_webhook_id_is_the_events_own_id_and_endpoints() -> None:
    # The same event published twice (two envelopes) keeps its webhook id per endpoint.
    first = _event({"event_id": "InvoiceIssued:INV-1"}, "env-1")
    again = _event({"event_id": "InvoiceIssued:INV-1"}, "env-2")
    assert first.key == again.key == "InvoiceIssued:INV-1"
    assert webhook_id(first.key, "we_a") == webhook_id(again.key, "we_a")
    assert webhook_id(first.key, "we_a") != webhook_id(first.key, "we_b")
    assert webhook_id(first.key, "we_a").startswith("msg_")


def test_a_spend_crossing_is_named_by_what_it_is_published_once_for() -> None:
    crossing = DomainEvent.from_eventbridge(
        {
            "id": "env-9",
            "detail-type": "SpendThresholdCrossed",
            "detail": {
                "account_id": "a",
                "period": "2026-11",
                "currency": "EUR",
                "threshold": "100",
            },
        }
    )
    assert crossing.key == "SpendThresholdCrossed:a:2026-11:EUR:100"


def test_the_body_is_the_event_in_the_standard_payload_shape() -> None:
    body = _event({"event_id": "E", "total": "1.00"}).body()
    assert json.loads(body) == {
        "type": "InvoiceIssued",
        "timestamp": "T",
        "data": {"event_id": "E", "total": "1.00"},
    }


def test_retries_back_off_for_more_than_a_day() -> None:
    delays = [retry_delay(n) for n in range(1, MAX_ATTEMPTS + 1)]
    assert delays[:8] == [60, 120, 240, 480, 960, 1920, 3840, 7200]
    assert delays[-1] == 7200
    # 60 * (2**7 - 1) = 7620 for the first seven, then 13 * 7200 = 93600: 101220 s > 86400.
    assert sum(delays) == 101220


def test_urls_are_https_and_loopback_only_locally() -> None:
    assert checked_url("https://erp.example.com/hook", allow_loopback=False)
    assert checked_url("http://127.0.0.1:9000/hook", allow_loopback=True)
    for url, loopback in [
        ("http://127.0.0.1:9000/hook", False),
        ("http://erp.example.com/hook", True),
        ("ftp://erp.example.com", True),
    ]:
        with pytest.raises(EndpointError):
            checked_url(url, allow_loopback=loopback)


def test_event_types_are_the_domain_events() -> None:
    assert checked_types(["InvoiceIssued", "InvoiceIssued"]) == ("InvoiceIssued",)
    with pytest.raises(EndpointError, match="unknown event type Nope"):
        checked_types(["Nope"])
    with pytest.raises(EndpointError, match="at least one"):
        checked_types([])


def test_a_customers_crossing_is_named_by_its_threshold_and_the_amount_it_came_to() -> None:
    # 80% of a 500.00 budget: 400.00; the claim that publishes it once is keyed the same way
    crossing = Crossing("a", "2026-11", "USD", Decimal("400.00"), Decimal("412.50"), "percent:80")
    event = DomainEvent("SpendThresholdCrossed", crossing.detail(), "env-9", "")
    assert event.key == "SpendThresholdCrossed:a:2026-11:USD:customer:percent:80@400.00"
    assert claim_key(crossing)["sk"]["S"] == "ALERT#2026-11#USD#customer:percent:80@400.00"
