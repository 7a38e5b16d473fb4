"""An account's failure in a step: reported in the step's outcome for that account only,
and logged, with its traceback when it is not an error the run expects."""

from __future__ import annotations

import re
from typing import Final

from billing.core.catalog import CatalogError
from billing.invoicing.ports import Log
from billing.invoicing.steps import Failure, Item, Numbered
from billing.store.errors import StoreError


class UnknownAccount(KeyError):
    """An invoice's account is not in the stored accounts (its profile was deleted)."""

    def __init__(self, account_id: str) -> None:
        super().__init__(account_id)
        self.account_id = account_id

    def __str__(self) -> str:
        return f"account {self.account_id!r} is not known"


# Errors the run raises or expects of its stores: their text says all there is to say.
# Anything else is a fault in the code or its data, and its traceback is what finds it.
class EarlierPeriodPending(Exception):
    """An invoice held back because an earlier period of its account, which draws on the
    same prepaid credits first, was not issued in this attempt (CONTRACT.md 2a: credits are
    drawn in period order)."""

    def __init__(self, period: str, earlier: str) -> None:
        super().__init__(
            f"{period} waits for {earlier}, not issued yet: prepaid credits are drawn in "
            "period order; a later run issues both"
        )


class PricedAgain(Exception):
    """A numbered invoice that would not be finished as it was numbered: a total other than
    the one its credits were drawn for, or documents other than those stored for its
    number. It is reported, and left numbered (never finished wrong)."""


EXPECTED: Final = (StoreError, UnknownAccount, CatalogError, EarlierPeriodPending, PricedAgain)


# A match starts only where a word does (the lookbehind): without it, a long run of word
# characters with no '@' was scanned again from each of its positions (quadratic: 4 ms for
# a 900-character reason, an hour for a million failures).
_EMAIL_ADDRESS: Final = re.compile(
    r"(?<![^\s<>()\[\]\"',;:@])[^\s<>()\[\]\"',;:@]+@[^\s<>()\[\]\"',;:@]+"
)


def masked(text: str) -> str:
    """`text` with any email address in it masked: no personal data in logs."""
    return _EMAIL_ADDRESS.sub("<email address>", text)


def failed(log: Log, item: Item, error: Exception, doing: str) -> Failure:
    """`item`'s failure record for `error`, raised while `doing` (close, render, ...). Call
    it in the `except` block: an unexpected error is logged with its traceback."""
    fields = {"account_id": item.account_id, "period": item.period}
    if isinstance(item, Numbered):
        fields["invoice_number"] = item.invoice_number
    fields |= {"doing": doing, "error": type(error).__name__}
    if isinstance(error, EXPECTED):
        log.warning(
            f"invoice not finished: {doing} failed", extra={**fields, "reason": masked(str(error))}
        )
    else:
        log.exception(f"invoice not finished: unexpected error in {doing}", extra=fields)
    return Failure.of(item, error)
