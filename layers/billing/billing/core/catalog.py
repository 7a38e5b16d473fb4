"""The catalog (meters and plans) and the accounts, with their loading and validation.

A bad file is refused whole: `load_catalog` and `load_accounts` either return a complete,
cross-checked value or raise `CatalogError` naming the file, the entry and the field.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any, Final, Self, TypeVar
from zoneinfo import ZoneInfo

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from billing.core.credits import GRANTS_MAX, Grant, GrantProblem, check_grants
from billing.core.discounts import Discount, decimals
from billing.core.fields import (
    AccountId,
    AddressLine,
    Email,
    LocalDate,
    Price,
    Rate,
    TaxId,
    Text,
    readable,
)
from billing.core.locales import DEFAULT_LOCALE, canonical_locale
from billing.core.meters import Meter
from billing.core.money import is_currency, minor_units
from billing.core.periods import Period, PeriodError, zone
from billing.core.plan_changes import PlanChange, PlanId, change_problem
from billing.core.pricing import Charge


class CatalogError(Exception):
    """A catalog or accounts document that cannot be used, and where the problem is."""

    def __init__(self, message: str, *, source: str = "", entry: str = "", field: str = ""):
        self.source, self.entry, self.field, self.reason = source, entry, field, message
        super().__init__(": ".join(part for part in (source, entry, field, message) if part))


# What one account's usage in one period may hold, so that its ledger item stays bounded
# (docs/table-design.md, "Item sizes"): every meter of the catalog (an event for a meter its
# plan does not price still counts), and the share of each filtered charge of its plan.
METERS_MAX: Final = 200
DISCOUNTS_MAX: Final = 100
CHANGES_MAX: Final = 120
CHARGES_PER_PLAN_MAX: Final = 100
FILTER_KEY_MAX: Final = 256


class _Entry(Exception):
    """A cross-reference problem at a location, raised from validators and located later.

    Not a ValueError on purpose: pydantic lets it through untouched, with its location."""

    def __init__(self, location: Sequence[str | int], message: str):
        super().__init__(message)
        self.location, self.message = tuple(location), message


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Plan(_Model):
    id: PlanId
    name: Text
    currency: str
    fixed_fee: Price | None = None
    minimum_commitment: Price | None = None
    charges: list[Charge] = Field(default_factory=list, max_length=CHARGES_PER_PLAN_MAX)

    @cached_property
    def charges_by_meter(self) -> dict[str, tuple[Charge, ...]]:
        """The plan's charges on each meter."""
        grouped: dict[str, list[Charge]] = {}
        for charge in self.charges:
            grouped.setdefault(charge.meter, []).append(charge)
        return {meter: tuple(charges) for meter, charges in grouped.items()}

    @cached_property
    def filtered_charges(self) -> dict[str, tuple[Charge, ...]]:
        """The charges on each meter that only count events passing their filters."""
        return {
            meter: tuple(charge for charge in charges if charge.filters)
            for meter, charges in self.charges_by_meter.items()
        }

    @field_validator("currency")
    @classmethod
    def _iso_4217(cls, value: str) -> str:
        if not is_currency(value):
            raise ValueError(f"{value!r} is not an ISO 4217 currency code")
        return value


class Catalog(_Model):
    meters: list[Meter] = Field(max_length=METERS_MAX)
    plans: list[Plan]

    @model_validator(mode="after")
    def _cross_check(self) -> Self:
        _unique("meters", (meter.name for meter in self.meters), "name")
        _unique("plans", (plan.id for plan in self.plans), "id")
        names = {meter.name for meter in self.meters}
        for p, plan in enumerate(self.plans):
            seen: set[tuple[str, str]] = set()
            for c, charge in enumerate(plan.charges):
                where = ("plans", p, "charges", c)
                if charge.meter not in names:
                    raise _Entry((*where, "meter"), f"unknown meter {charge.meter!r}")
                if len(charge.filter_key) > FILTER_KEY_MAX:
                    raise _Entry(
                        (*where, "filters"),
                        f"filters are {len(charge.filter_key)} characters written out "
                        f"(key=value,value&...); at most {FILTER_KEY_MAX}",
                    )
                if (charge.meter, charge.filter_key) in seen:
                    raise _Entry(where, "a plan prices each meter and filter only once")
                seen.add((charge.meter, charge.filter_key))
        return self

    @cached_property
    def meters_by_name(self) -> dict[str, Meter]:
        return {meter.name: meter for meter in self.meters}

    @cached_property
    def plans_by_id(self) -> dict[str, Plan]:
        return {plan.id: plan for plan in self.plans}


class Account(_Model):
    id: AccountId
    name: Text
    email: Email
    plan: PlanId
    timezone: str
    tax_rate: Rate = Decimal(0)
    start: LocalDate | None = None
    end: LocalDate | None = None
    # How the invoice writes amounts and dates (a Babel/CLDR locale: en, fr_FR, ja).
    locale: str = DEFAULT_LOCALE
    # Printed under the customer's name on invoices: one line per entry.
    billing_address: list[AddressLine] | None = Field(default=None, min_length=1, max_length=8)
    tax_id: TaxId | None = None
    # Applied in this order to the invoices of the periods each names (CONTRACT 2a).
    discounts: list[Discount] = Field(default_factory=list, max_length=DISCOUNTS_MAX)
    # Later plans, each in force from its local date on (CONTRACT 2a, "Phases").
    # Left out of the stored document when there are none: such an account's item is as before.
    changes: list[PlanChange] = Field(
        default_factory=list, max_length=CHANGES_MAX, exclude_if=lambda changes: not changes
    )
    credits: list[Grant] = Field(default_factory=list, max_length=GRANTS_MAX)  # prepaid (2a)

    @field_validator("locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        if not isinstance(value, str):
            raise ValueError("must be a locale name like en or fr_FR")
        return canonical_locale(value)

    @field_validator("timezone")
    @classmethod
    def _iana(cls, value: str) -> str:
        try:
            zone(value)
        except PeriodError as error:
            raise ValueError(str(error)) from None
        return value

    @field_validator("end")
    @classmethod
    def _after_start(cls, end: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("start")
        if start and end and end <= start:
            raise ValueError("must be after start (end is exclusive)")
        return end

    @property
    def zone(self) -> ZoneInfo:
        return zone(self.timezone)

    def overlaps(self, period: Period) -> bool:
        """Whether the subscription has any active day in `period`."""
        return period.active_days(self.start, self.end) > 0

    def subscribed_at(self, day: date) -> bool:
        return (self.start is None or self.start <= day) and (self.end is None or day < self.end)


class Accounts(_Model):
    accounts: list[Account]

    @model_validator(mode="after")
    def _cross_check(self, info: ValidationInfo) -> Self:
        _unique("accounts", (account.id for account in self.accounts), "id")
        catalog = (info.context or {}).get("catalog")
        if isinstance(catalog, Catalog):
            for a, account in enumerate(self.accounts):
                if account.plan not in catalog.plans_by_id:
                    raise _Entry(("accounts", a, "plan"), f"unknown plan {account.plan!r}")
                _check_discounts(a, account, catalog.plans_by_id[account.plan].currency)
                if problem := change_problem(account, catalog.plans_by_id) or _sized(
                    account, catalog
                ):
                    raise _Entry(("accounts", a, "changes", *problem[:2]), problem[2])
                check_grants(a, account.credits, catalog.plans_by_id[account.plan].currency)
        return self

    @cached_property
    def by_id(self) -> dict[str, Account]:
        return {account.id: account for account in self.accounts}


def _check_discounts(index: int, account: Account, currency: str) -> None:
    _unique_within(("accounts", index, "discounts"), (d.id for d in account.discounts), "id")
    digits = minor_units(currency)
    for d, discount in enumerate(account.discounts):
        amount = discount.amount
        if amount is not None and decimals(amount) > digits:
            raise _Entry(
                ("accounts", index, "discounts", d, "amount"),
                f"has more decimals than {currency}'s minor unit ({digits})",
            )


def _sized(account: Account, catalog: Catalog) -> tuple[int, str, str] | None:
    # Imported here: phases builds on this module (a period's phases, their usage's size).
    from billing.core.phases import size_problem  # noqa: PLC0415

    return size_problem(account, catalog)


def _unique_within(location: tuple[str | int, ...], keys: Iterable[str], field: str) -> None:
    seen: set[str] = set()
    for position, key in enumerate(keys):
        if key in seen:
            raise _Entry((*location, position, field), f"{key!r} appears twice")
        seen.add(key)


def _unique(kind: str, keys: Iterable[str], field: str) -> None:
    seen: set[str] = set()
    for index, key in enumerate(keys):
        if key in seen:
            raise _Entry((kind, index, field), f"{key!r} appears twice")
        seen.add(key)


# --- loading -------------------------------------------------------------------------------

_CHARGE_MODELS = frozenset({"per_unit", "graduated", "volume", "package"})


def _located(
    source: str, document: Any, location: Sequence[str | int], message: str
) -> CatalogError:
    parts = list(location)
    # pydantic puts a discriminated union's tag in the location; a reader never wrote it.
    parts = [
        part
        for i, part in enumerate(parts)
        if not (part in _CHARGE_MODELS and i >= 1 and isinstance(parts[i - 1], int))
    ]
    entry, rest = "", parts
    if len(parts) >= 2 and isinstance(parts[0], str) and isinstance(parts[1], int):
        entry = f"{parts[0]}[{parts[1]}]"
        try:
            item = document[parts[0]][parts[1]]
            name = item.get("id", item.get("name")) if isinstance(item, dict) else None
        except (KeyError, IndexError, TypeError):
            name = None
        if isinstance(name, str):
            entry += f" ({name})"
        rest = parts[2:]
    field = "".join(_field_part(part) for part in rest)
    return CatalogError(message, source=source, entry=entry, field=field.lstrip("."))


def _field_part(part: str | int) -> str:
    """One step of a field's location; a key that would print as nothing or not at all
    (empty, blank, a control or format character) is quoted, so the message still names it."""
    if isinstance(part, int):
        return f"[{part}]"
    if not part.strip() or not part.isprintable():
        return f"[{part!r}]"
    return f".{part}"


_M = TypeVar("_M", bound=BaseModel)


def _validate(
    model: type[_M], document: Any, source: str, context: dict[str, Any] | None = None
) -> _M:
    try:
        return model.model_validate(document, context=context)
    except (_Entry, GrantProblem) as problem:
        raise _located(source, document, problem.location, problem.message) from None
    except ValidationError as error:
        raise _explained(source, document, error.errors(include_url=False)) from None


def _explained(source: str, document: Any, errors: list[ErrorDetails]) -> CatalogError:
    # A misspelt field is both unknown and missing: name it as the file spells it.
    unknown = [e for e in errors if e["type"] == "extra_forbidden"]
    first = unknown[0] if unknown else errors[0]
    location = list(first["loc"])
    if first["type"] == "extra_forbidden":
        missing = [str(e["loc"][-1]) for e in errors if e["type"] == "missing"]
        guess = difflib.get_close_matches(str(location[-1]), missing, n=1)
        message = "is not a known field" + (f" (did you mean {guess[0]!r}?)" if guess else "")
    elif first["type"] == "missing":
        message = "is required"
    elif first["type"] in {"union_tag_invalid", "union_tag_not_found"}:
        location.append("model")
        tag = (first.get("ctx") or {}).get("tag")
        models = ", ".join(sorted(_CHARGE_MODELS))
        message = (
            f"{tag!r} is not a charge model (use one of {models})"
            if tag
            else f"must be one of {models}"
        )
    else:
        message = readable(first)
    return _located(source, document, location, message)


class _PlainDatesLoader(yaml.SafeLoader):
    """YAML's safe loader, leaving dates as text so they are validated (and located) like
    every other field instead of failing inside the parser."""


_PlainDatesLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_document(path: Path) -> Any:
    """A YAML or JSON file's content; JSON for `.json`, YAML otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CatalogError(f"cannot be read ({error})", source=str(path)) from None
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.load(text, Loader=_PlainDatesLoader)  # a SafeLoader subclass
    except (ValueError, yaml.YAMLError) as error:
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        raise CatalogError(f"is not valid {kind}: {error}", source=str(path)) from None
    except RecursionError:  # nested deeper than the parser's stack: no catalog is
        raise CatalogError(
            "is nested too deeply to be a catalog or accounts file", source=str(path)
        ) from None


def parse_catalog(document: Any, source: str = "catalog") -> Catalog:
    return _validate(Catalog, document, source)


def parse_accounts(document: Any, catalog: Catalog, source: str = "accounts") -> Accounts:
    return _validate(Accounts, document, source, {"catalog": catalog})


def load_catalog(path: Path | str) -> Catalog:
    path = Path(path)
    return parse_catalog(read_document(path), str(path))


def load_accounts(path: Path | str, catalog: Catalog) -> Accounts:
    path = Path(path)
    return parse_accounts(read_document(path), catalog, str(path))
