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

# SES's answers that mean this address will not get this email: retrying will not help.
_UNDELIVERABLE: Final = frozenset(
    {
        "MessageRejected",
        "MailFromDomainNotVerifiedException",
        "AccountSuspendedException",
        "SendingPausedException",
        "BadRequestException",
    }
)


class Undeliverable(StoreError):
    """SES refused the message for good (a rejected address, an unverified sender)."""


class NotSent(StoreError):
    """SES certainly did not take the message (throttled, unreachable): sending again is safe."""


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
            if code in _NOT_SENT:
                raise NotSent(f"send invoice email: {code}") from error
            raise DeliveryUnknown(f"send invoice email: {code or 'error'}") from error
        except (EndpointConnectionError, ConnectTimeoutError) as error:
            raise NotSent(f"send invoice email: {type(error).__name__}") from error
        except BotoCoreError as error:
            raise DeliveryUnknown(f"send invoice email: {type(error).__name__}") from error
        return str(response["MessageId"])
