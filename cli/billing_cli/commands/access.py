"""Customers' access to the customer API: `billing keys create|list|revoke` and `billing
portal-link` (docs/customer-access.md). A key's secret is printed once, when it is
created, and is kept nowhere: only its hash is stored."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from billing.core.credentials import DEFAULT_PORTAL_HOURS, KeySummary, stored_instant
from billing.customer.access import AccessRefused, CustomerAccess
from billing.settings import MAX_AUTHORIZER_CACHE_SECONDS, STACK_OUTPUTS
from billing.store.errors import StoreError
from billing_cli import operations
from billing_cli.commands.common import (
    EndpointOption,
    JsonOption,
    RegionOption,
    StackOption,
    Target,
    console,
    errors,
    fail,
    say,
)
from billing_cli.deployment import DeploymentError

keys_app = typer.Typer(help="Customers' API keys for the customer API.", no_args_is_help=True)

AccountArgument = Annotated[str, typer.Argument(metavar="ACCOUNT", help="the account's id")]


def _access(
    ctx: typer.Context, endpoint_url: str | None, stack: str | None, region: str | None
) -> tuple[str, CustomerAccess]:
    """The deployment's name and the key service on it (on its test clock, if it has one)."""
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    try:
        access = CustomerAccess(
            keys=deployment.customer_keys(),
            throttle=deployment.throttle_keys(),
            accounts=deployment.config(),
            api_url=deployment.output(STACK_OUTPUTS.customer_api_url),
            clock=lambda: operations.run_clock(deployment),
        )
    except DeploymentError as error:
        raise fail(str(error)) from None
    return deployment.stack, access


def _refused(error: Exception) -> typer.Exit:
    if isinstance(error, StoreError):
        return fail(f"AWS refused or could not be reached: {error}")
    return fail(str(error))


@keys_app.command("create")
def create(
    ctx: typer.Context,
    account_id: AccountArgument,
    name: Annotated[
        str | None, typer.Option("--name", help="what the key is for, to tell keys apart")
    ] = None,
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API key for an account: printed once, never shown again."""
    deployment, access = _access(ctx, endpoint_url, stack, region)
    try:
        issued = access.create_key(account_id, name)
    except (AccessRefused, StoreError) as error:
        raise _refused(error) from None
    record = issued.record
    warning = "This is the only time the key is shown: it is not stored, only its hash is."
    if as_json:
        say(
            {
                "stack": deployment,
                "account_id": account_id,
                "key_id": record.key_id,
                "name": record.name,
                "created_at": stored_instant(record.created_at),
                "key": str(issued.credential),
                "warning": warning,
            },
            "",
            as_json=True,
        )
        return
    # The key alone on stdout (`billing keys create A > key.txt`); the rest on stderr.
    errors.print(
        f"key {record.key_id} for {account_id}"
        + (f" ({record.name})" if record.name else "")
        + f" in {deployment}. {warning} Keep it as a secret; if it is lost, revoke it "
        "(billing keys revoke) and create another. Send it as 'Authorization: Bearer <key>'.",
        highlight=False,
        markup=False,
    )
    console.print(str(issued.credential), highlight=False, markup=False, soft_wrap=True)


_COLUMNS = {
    "key id": "key_id",
    "kind": "kind",
    "name": "name",
    "created": "created_at",
    "expires": "expires_at",
    "revoked": "revoked_at",
    "status": "status",
}


def _keys_table(account_id: str, keys: list[KeySummary], now: datetime) -> Table:
    table = Table(title=f"keys of {account_id}", title_justify="left")
    for column in _COLUMNS:
        table.add_column(column, no_wrap=column == "key id")
    for summary in keys:
        shown = summary.to_json(now)
        table.add_row(*(shown[field] or "" for field in _COLUMNS.values()))
    return table


@keys_app.command("list")
def list_keys(
    ctx: typer.Context,
    account_id: AccountArgument,
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """An account's API keys and portal links (never their secrets)."""
    deployment, access = _access(ctx, endpoint_url, stack, region)
    try:
        keys = access.list_keys(account_id)
    except (AccessRefused, StoreError) as error:
        raise _refused(error) from None
    now = access.now()
    if as_json:
        document: dict[str, Any] = {
            "stack": deployment,
            "account_id": account_id,
            "keys": [summary.to_json(now) for summary in keys],
        }
        say(document, "", as_json=True)
    else:
        console.print(_keys_table(account_id, keys, now))


@keys_app.command("revoke")
def revoke(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(metavar="KEY_ID", help="as `billing keys list` shows")],
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke an API key or portal link: refused within the authorizer's cache time."""
    deployment, access = _access(ctx, endpoint_url, stack, region)
    try:
        revocation = access.revoke(key_id)
    except (AccessRefused, StoreError) as error:
        raise _refused(error) from None
    record = revocation.record
    assert record.revoked_at is not None
    at = stored_instant(record.revoked_at)
    text = (
        f"{record.kind} {key_id} of {record.account_id} revoked at {at}: refused from now "
        f"on, at the latest once the API's cached answer for it ends "
        f"(at most {MAX_AUTHORIZER_CACHE_SECONDS} s)"
        if revocation.revoked_now
        else f"{record.kind} {key_id} of {record.account_id} was revoked already, at {at}"
    )
    document = {
        "stack": deployment,
        "key_id": key_id,
        "account_id": record.account_id,
        "kind": str(record.kind),
        "revoked_at": at,
        "revoked_now": revocation.revoked_now,
    }
    say(document, text, as_json)


def portal_link(
    ctx: typer.Context,
    account_id: AccountArgument,
    hours: Annotated[
        int, typer.Option("--hours", help="how long the link lasts, 1 to 168 hours")
    ] = DEFAULT_PORTAL_HOURS,
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """A signed link to the customer portal for an account, expiring after --hours."""
    deployment, access = _access(ctx, endpoint_url, stack, region)
    try:
        link, issued = access.create_portal_link(account_id, hours)
    except (AccessRefused, StoreError) as error:
        raise _refused(error) from None
    record = issued.record
    assert record.expires_at is not None
    expires = stored_instant(record.expires_at)
    if as_json:
        document = {
            "stack": deployment,
            "account_id": account_id,
            "key_id": record.key_id,
            "expires_at": expires,
            "link": link,
        }
        say(document, "", as_json=True)
        return
    errors.print(
        f"portal link {record.key_id} for {account_id} in {deployment}, valid until {expires}: "
        "whoever holds it reads the account's data until then (billing keys revoke "
        f"{record.key_id} ends it sooner).",
        highlight=False,
        markup=False,
    )
    console.print(link, highlight=False, markup=False, soft_wrap=True)
