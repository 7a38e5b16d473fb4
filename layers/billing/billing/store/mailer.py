"""Sending raw MIME through SES v2, and reading the account's send rate."""

from __future__ import annotations

from typing import Any, Final

from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
)

from billing.store.errors import StoreError, translated

# How long the SES client waits to connect, and then for SES's answer. SendEmail answers
# in well under a second; an answer this late is DeliveryUnknown. Together they bound one
# send, which the steps' deadline margin (EMAIL_DEADLINE_MARGIN_SECONDS) covers.
SES_CONNECT_TIMEOUT: Final = 5
SES_READ_TIMEOUT: Final = 15
# The SES client's configuration: one attempt per send; retrying what certainly did not
# leave (throttling) is the email path's call (billing.invoicing.delivery), never the SDK's.
NO_RETRIES: Final = Config(
    retries={"mode": "standard", "total_max_attempts": 1},
    connect_timeout=SES_CONNECT_TIMEOUT,
    read_timeout=SES_READ_TIMEOUT,
)

# SES's answer that means this address cannot take this email: the customer's (or the
# account record's) problem, which retrying will not mend. SendEmail's only other input from
# outside the project is the message, which the project builds itself.
_UNDELIVERABLE: Final = frozenset({"BadRequestException"})

# SES's answers about our own sending account: paused or suspended, an identity or a MAIL
# FROM domain not verified (MessageRejected is also what an unverified sender or a sandboxed
# account gets), a configuration set missing, or credentials and permissions refused. The
# request was refused before anything was sent, for every recipient alike: never the
# customer's problem, and sending again once the account is mended is safe.
_SENDING_ACCOUNT: Final = frozenset(
    {
        "SendingPausedException",
        "AccountSuspendedException",
        "MailFromDomainNotVerifiedException",
        "MessageRejected",
        "NotFoundException",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "SignatureDoesNotMatch",
    }
)


# Of those, the one that may concern this message only: in the SES sandbox, a recipient
# that is not verified (the account's other recipients may be).
_MAYBE_THIS_RECIPIENT: Final = frozenset({"MessageRejected"})


class Undeliverable(StoreError):
    """SES refused the message for good because of the recipient's address."""


class NotSent(StoreError):
    """SES certainly did not take the message (throttled, unreachable): sending again is safe.
    `every_send`: SES would refuse any other send now alike (the account's, not this
    message's)."""

    every_send: bool = False


class SendThrottled(NotSent):
    """SES refused the send for the account's maximum send rate: certainly not sent, and
    worth sending again after a short wait (billing.store.retry.SES_THROTTLED)."""


class DailyQuotaReached(NotSent):
    """SES refused the send for the account's 24-hour quota: certainly not sent, and not
    worth trying again for hours (a later run sends it)."""

    every_send = True


class SendingUnavailable(NotSent):
    """SES refused every send for a reason of our own sending account (paused, an identity
    or permission missing): certainly not sent, to be sent again once the account is mended,
    and alarmed on. Never reported as the customer's problem."""

    def __init__(self, message: str, *, every_send: bool = True) -> None:
        super().__init__(message)
        self.every_send = every_send


class DeliveryUnknown(StoreError):
    """SES may or may not have taken the message (a timeout, a server error): sending again
    could send it twice, so it is left for an operator."""


# Answers that prove nothing was sent: the account's send rate or its daily quota (SES
# says which in the message: "Maximum sending rate exceeded", "Daily message quota
# exceeded").
_THROTTLED: Final = frozenset(
    {"TooManyRequestsException", "ThrottlingException", "LimitExceededException"}
)


def _throttled(what: str, code: str, message: str) -> NotSent:
    if "daily" in message.lower():
        return DailyQuotaReached(f"{what}: {code}: daily quota")
    return SendThrottled(f"{what}: {code}")


class Mailer:
    """`what` names the emails in errors (an invoice's, a spend alert's): which sender
    failed, never the message or its recipient."""

    def __init__(
        self,
        client: Any,
        sender: str,
        configuration_set: str | None = None,
        *,
        what: str = "invoice email",
    ) -> None:
        self._client = client
        self._sender = sender
        self._configuration_set = configuration_set
        self._what = f"send {what}"

    def send_raw(self, raw: bytes, to: str) -> str:
        """Send the message; its SES message id. Undeliverable or StoreError otherwise."""
        request: dict[str, Any] = {
            "FromEmailAddress": self._sender,
            "Destination": {"ToAddresses": [to]},
            "Content": {"Raw": {"Data": raw}},
        }
        if self._configuration_set:
            request["ConfigurationSetName"] = self._configuration_set
        # The client must not retry by itself (see NO_RETRIES): a retried send after a lost
        # answer is a second email.
        try:
            response = self._client.send_email(**request)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            message = error.response.get("Error", {}).get("Message", "")
            if code in _UNDELIVERABLE:
                raise Undeliverable(f"{self._what}: {code}") from error
            if code in _SENDING_ACCOUNT:
                raise SendingUnavailable(
                    f"{self._what}: our sending account: {code}",
                    # A sandboxed account's MessageRejected names one unverified recipient.
                    every_send=code not in _MAYBE_THIS_RECIPIENT,
                ) from error
            if code in _THROTTLED:
                raise _throttled(self._what, code, message) from error
            raise DeliveryUnknown(f"{self._what}: {code or 'error'}") from error
        except (EndpointConnectionError, ConnectTimeoutError) as error:
            raise NotSent(f"{self._what}: {type(error).__name__}") from error
        except BotoCoreError as error:
            raise DeliveryUnknown(f"{self._what}: {type(error).__name__}") from error
        return str(response["MessageId"])


class SendQuota:
    """The account's SES sending quota (SES v2 GetAccount), on a client of its own (one
    that may retry: reading the quota twice sends nothing)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def max_send_rate(self) -> float:
        """Emails per second the account may send (SendQuota.MaxSendRate); StoreError if
        SES does not say."""
        with translated("read the SES sending quota"):
            response = self._client.get_account()
        rate = response.get("SendQuota", {}).get("MaxSendRate")
        if not rate or rate <= 0:
            raise StoreError("read the SES sending quota: no maximum send rate")
        return float(rate)
