"""Sending raw MIME through SES v2."""

from __future__ import annotations

from typing import Any, Final

from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
)

from billing.store.errors import StoreError

# The SES client's configuration: one attempt per send; retrying is the workflow's call.
NO_RETRIES: Final = Config(retries={"mode": "standard", "total_max_attempts": 1})

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


class Undeliverable(StoreError):
    """SES refused the message for good because of the recipient's address."""


class NotSent(StoreError):
    """SES certainly did not take the message (throttled, unreachable): sending again is safe."""


class SendingUnavailable(NotSent):
    """SES refused every send for a reason of our own sending account (paused, an identity
    or permission missing): certainly not sent, to be sent again once the account is mended,
    and alarmed on. Never reported as the customer's problem."""


class DeliveryUnknown(StoreError):
    """SES may or may not have taken the message (a timeout, a server error): sending again
    could send it twice, so it is left for an operator."""


# Answers that prove nothing was sent.
_NOT_SENT: Final = frozenset(
    {"TooManyRequestsException", "ThrottlingException", "LimitExceededException"}
)


class Mailer:
    def __init__(self, client: Any, sender: str, configuration_set: str | None = None) -> None:
        self._client = client
        self._sender = sender
        self._configuration_set = configuration_set

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
            if code in _UNDELIVERABLE:
                raise Undeliverable(f"send invoice email: {code}") from error
            if code in _SENDING_ACCOUNT:
                raise SendingUnavailable(
                    f"send invoice email: our sending account: {code}"
                ) from error
            if code in _NOT_SENT:
                raise NotSent(f"send invoice email: {code}") from error
            raise DeliveryUnknown(f"send invoice email: {code or 'error'}") from error
        except (EndpointConnectionError, ConnectTimeoutError) as error:
            raise NotSent(f"send invoice email: {type(error).__name__}") from error
        except BotoCoreError as error:
            raise DeliveryUnknown(f"send invoice email: {type(error).__name__}") from error
        return str(response["MessageId"])
