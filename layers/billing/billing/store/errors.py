"""The store layer's own exceptions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError

_THROTTLING = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "SlowDown",
        "TooManyRequestsException",
    }
)


class StoreError(Exception):
    """A store operation failed; the caller may retry it later."""


class Throttled(StoreError):
    """The service kept throttling after the client's own retries."""


class VersionConflict(StoreError):
    """Another writer changed the item since it was read."""


@contextmanager
def translated(operation: str) -> Iterator[None]:
    """Turn botocore's errors into the store's own, naming the operation (never the data)."""
    try:
        yield
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "ConditionalCheckFailedException":
            raise VersionConflict(operation) from error
        if code == "TransactionCanceledException":
            reasons = {r.get("Code") for r in error.response.get("CancellationReasons", [])}
            if reasons & {"ThrottlingError", "ProvisionedThroughputExceeded"}:
                raise Throttled(f"{operation}: transaction throttled") from error
            raise VersionConflict(f"{operation}: transaction cancelled") from error
        if code in _THROTTLING:
            raise Throttled(f"{operation}: {code}") from error
        raise StoreError(f"{operation}: {code or 'error'}") from error
    except BotoCoreError as error:
        raise StoreError(f"{operation}: {type(error).__name__}") from error
