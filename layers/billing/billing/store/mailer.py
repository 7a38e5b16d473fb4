"""Sending raw MIME through SES v2."""

from __future__ import annotations

from typing import Any, Final

from botocore.exceptions import ClientError

from billing.store.errors import StoreError, translated

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


class Mailer:
    def __init__(self, client: Any, sender: str, configuration_set: str | None = None) -> None:
        self._client = client
        self._sender = sender
        self._configuration_set = configuration_set

    @property
    def sender(self) -> str:
        return self._sender

    def send_raw(self, raw: bytes, to: str) -> str:
        """Send the message; its SES message id. Undeliverable or StoreError otherwise."""
        request: dict[str, Any] = {
            "FromEmailAddress": self._sender,
            "Destination": {"ToAddresses": [to]},
            "Content": {"Raw": {"Data": raw}},
        }
        if self._configuration_set:
            request["ConfigurationSetName"] = self._configuration_set
        try:
            response = self._client.send_email(**request)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in _UNDELIVERABLE:
                raise Undeliverable(f"send invoice email: {code}") from error
            with translated("send invoice email"):
                raise
        return str(response["MessageId"])
