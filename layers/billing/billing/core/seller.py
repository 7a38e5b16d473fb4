"""Who issues the invoices: one deployment is one seller (CONTRACT.md section 4).

Its legal name, address, tax ID, payment instructions and payment terms are deployment
settings: CDK context `seller` (an object) becomes the invoice functions' `INVOICE_SELLER`
environment variable (JSON), read and checked here when a function starts. The sender
address is the deployment's verified SES sender.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic import ValidationError as _ValidationError

from billing.core.fields import Text, printable, readable

DEFAULT_SELLER_NAME = "Usage Billing"
DEFAULT_PAYMENT_TERMS_DAYS = 30
# What becomes of an amount a credit note credits that the customer already paid: paid
# back, or taken off the next invoice. The seller's policy, printed on every credit note.
CreditSettlement = Literal["refund", "next_invoice"]
DEFAULT_CREDIT_SETTLEMENT: Final[CreditSettlement] = "refund"

_Line = Annotated[str, StringConstraints(min_length=1, max_length=128), AfterValidator(printable)]
_Long = Annotated[str, StringConstraints(min_length=1, max_length=256), AfterValidator(printable)]


@dataclass(frozen=True)
class Issuer:
    """The seller as printed on invoices and named in their emails."""

    name: str = DEFAULT_SELLER_NAME
    address: tuple[str, ...] = ()
    tax_id: str | None = None
    email: str = "billing@example.com"
    payment_instructions: tuple[str, ...] = ()
    payment_terms_days: int = DEFAULT_PAYMENT_TERMS_DAYS
    credit_settlement: CreditSettlement = DEFAULT_CREDIT_SETTLEMENT


class SellerSettingsError(ValueError):
    """The seller setting cannot be used; the message names the field."""


class SellerSettings(BaseModel):
    """The `seller` setting, as written in cdk.json's context:

    {"legal_name": "Example Cloud Ltd", "address": ["1 Main Street", "London EC1A 1AA"],
     "tax_id": "GB123456789", "payment_instructions": ["Bank transfer to IBAN GB00 ..."],
     "payment_terms_days": 30, "credit_settlement": "refund"}"""

    model_config = ConfigDict(frozen=True, extra="forbid")

    legal_name: Text = DEFAULT_SELLER_NAME
    address: tuple[_Line, ...] = Field(default=(), max_length=8)
    tax_id: Annotated[str, StringConstraints(max_length=64), AfterValidator(printable)] | None = (
        None
    )
    payment_instructions: tuple[_Long, ...] = Field(default=(), max_length=8)
    payment_terms_days: int = Field(default=DEFAULT_PAYMENT_TERMS_DAYS, ge=0, le=365)
    credit_settlement: CreditSettlement = DEFAULT_CREDIT_SETTLEMENT

    @classmethod
    def parse(cls, text: str | None) -> SellerSettings:
        """The setting from its JSON text (the defaults when unset)."""
        if not text:
            return cls()
        try:
            return cls.model_validate(json.loads(text))
        except json.JSONDecodeError as error:
            raise SellerSettingsError(f"seller: is not valid JSON ({error})") from None
        except _ValidationError as error:
            first = error.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"])
            message = readable(first)
            if first["type"] == "extra_forbidden":
                message = "is not a known field"
            raise SellerSettingsError(f"seller: {where}: {message}") from None

    def issuer(self, email: str) -> Issuer:
        return Issuer(
            name=self.legal_name,
            address=self.address,
            tax_id=self.tax_id,
            email=email,
            payment_instructions=self.payment_instructions,
            payment_terms_days=self.payment_terms_days,
            credit_settlement=self.credit_settlement,
        )
