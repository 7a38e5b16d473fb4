"""How SES's answers to a send are read: the customer's address, our sending account, or
not known. Only the first is the customer's problem."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

from billing.store.errors import StoreError
from billing.store.mailer import (
    NO_RETRIES,
    DailyQuotaReached,
    DeliveryUnknown,
    Mailer,
    NotSent,
    SendingUnavailable,
    SendQuota,
    SendThrottled,
    Undeliverable,
)


class FailingSes:
    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def send_email(self, **request: Any) -> dict[str, Any]:
        self.calls += 1
        raise self.error


def answered(code: str, status: int = 400, message: str = "...") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
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
    # every send would be refused alike, but a sandbox's MessageRejected may name only
    # this recipient (not verified): the step goes on with the others
    assert caught.value.every_send == (code != "MessageRejected")


def test_an_address_ses_cannot_take_is_the_customers() -> None:
    ses = FailingSes(answered("BadRequestException"))
    with pytest.raises(Undeliverable, match="BadRequestException"):
        Mailer(ses, "invoices@billing.example").send_raw(b"raw", "ap@customer.example")


@pytest.mark.parametrize(
    "code", ["TooManyRequestsException", "ThrottlingException", "LimitExceededException"]
)
def test_throttling_is_not_sent_and_worth_sending_again_soon(code: str) -> None:
    error = answered(code, message="Maximum sending rate exceeded.")
    with pytest.raises(SendThrottled) as caught:
        Mailer(FailingSes(error), "a@b.example").send_raw(b"raw", "c@d.example")
    assert isinstance(caught.value, NotSent)
    assert not caught.value.every_send  # the rate frees up: the step goes on, paced
    assert not isinstance(caught.value, SendingUnavailable)


def test_the_daily_quota_is_not_sent_and_not_worth_a_quick_retry() -> None:
    # SES says which limit in the message of the same throttling answer
    error = answered("ThrottlingException", message="Daily message quota exceeded.")
    with pytest.raises(DailyQuotaReached) as caught:
        Mailer(FailingSes(error), "a@b.example").send_raw(b"raw", "c@d.example")
    assert isinstance(caught.value, NotSent)
    assert not isinstance(caught.value, SendThrottled)
    assert caught.value.every_send


def test_the_ses_client_neither_retries_nor_waits_long_for_an_answer() -> None:
    assert NO_RETRIES.retries == {"mode": "standard", "total_max_attempts": 1}
    assert (NO_RETRIES.connect_timeout, NO_RETRIES.read_timeout) == (5, 15)


class Account:
    def __init__(self, answer: dict[str, Any] | Exception) -> None:
        self.answer = answer

    def get_account(self) -> dict[str, Any]:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_the_send_quota_is_the_accounts_maximum_send_rate() -> None:
    answer = {"SendQuota": {"Max24HourSend": 50000.0, "MaxSendRate": 14.0}}
    assert SendQuota(Account(answer)).max_send_rate() == 14.0


@pytest.mark.parametrize(
    "answer",
    [answered("AccessDeniedException", 403), {"SendQuota": {}}, {"SendQuota": {"MaxSendRate": 0}}],
)
def test_a_send_quota_not_read_is_a_store_error(answer: dict[str, Any] | Exception) -> None:
    with pytest.raises(StoreError, match="read the SES sending quota"):
        SendQuota(Account(answer)).max_send_rate()


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
