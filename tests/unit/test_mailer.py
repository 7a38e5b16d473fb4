"""How SES's answers to a send are read: the customer's address, our sending account, or
not known. Only the first is the customer's problem."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

from billing.store.mailer import (
    DeliveryUnknown,
    Mailer,
    NotSent,
    SendingUnavailable,
    Undeliverable,
)


class FailingSes:
    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def send_email(self, **request: Any) -> dict[str, Any]:
        self.calls += 1
        raise self.error


def answered(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "..."}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "SendEmail",
    )


@pytest.mark.parametrize(
    "code",
    [
        "SendingPausedException",
        "AccountSuspendedException",
        "MailFromDomainNotVerifiedException",
        "MessageRejected",
        "NotFoundException",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "ExpiredTokenException",
    ],
)
def test_our_sending_account_refusing_is_not_sent_and_never_the_customers_address(
    code: str,
) -> None:
    # GIVEN SES refuses the send for a reason of our account (paused, identity, permissions)
    ses = FailingSes(answered(code, 403 if "Denied" in code else 400))

    # WHEN the invoice is sent THEN nothing left: retrying later is safe, and it is ours
    with pytest.raises(SendingUnavailable) as caught:
        Mailer(ses, "invoices@billing.example").send_raw(b"raw", "ap@customer.example")
    assert isinstance(caught.value, NotSent)
    assert not isinstance(caught.value, Undeliverable)
    assert str(caught.value) == f"send invoice email: our sending account: {code}"
    assert ses.calls == 1


def test_an_address_ses_cannot_take_is_the_customers() -> None:
    ses = FailingSes(answered("BadRequestException"))
    with pytest.raises(Undeliverable, match="BadRequestException"):
        Mailer(ses, "invoices@billing.example").send_raw(b"raw", "ap@customer.example")


@pytest.mark.parametrize("code", ["TooManyRequestsException", "LimitExceededException"])
def test_throttling_is_not_sent(code: str) -> None:
    with pytest.raises(NotSent) as caught:
        Mailer(FailingSes(answered(code)), "a@b.example").send_raw(b"raw", "c@d.example")
    assert not isinstance(caught.value, SendingUnavailable)


@pytest.mark.parametrize(
    "error",
    [
        answered("InternalFailure", 500),
        ReadTimeoutError(endpoint_url="https://email.us-east-1.amazonaws.com"),
    ],
)
def test_a_server_error_or_a_timeout_may_have_sent_it(error: Exception) -> None:
    with pytest.raises(DeliveryUnknown):
        Mailer(FailingSes(error), "a@b.example").send_raw(b"raw", "c@d.example")


def test_an_unreachable_endpoint_sent_nothing() -> None:
    error = ConnectTimeoutError(endpoint_url="https://email.us-east-1.amazonaws.com")
    with pytest.raises(NotSent):
        Mailer(FailingSes(error), "a@b.example").send_raw(b"raw", "c@d.example")
