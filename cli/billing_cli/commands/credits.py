"""`billing credits grant`: add a prepaid credit grant to a stored account, through the
same validation and history check as `billing accounts push` (CONTRACT.md 2a)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import typer

from billing.core.catalog import Account, CatalogError, parse_accounts
from billing.store.errors import StoreError
from billing_cli import operations
from billing_cli.commands.common import (
    EndpointOption,
    JsonOption,
    RegionOption,
    StackOption,
    Target,
    fail,
    say,
)
from billing_cli.deployment import Deployment

credits_app = typer.Typer(help="Prepaid credit grants.", no_args_is_help=True)


@credits_app.command("grant")
def grant(
    ctx: typer.Context,
    account_id: Annotated[str, typer.Argument(metavar="ACCOUNT", help="the account's id")],
    amount: Annotated[str, typer.Option(help="in the account's currency, e.g. 500.00")],
    grant_id: Annotated[
        str | None, typer.Option("--id", help="the grant's id (default: grant-N, N the next)")
    ] = None,
    granted: Annotated[
        str | None,
        typer.Option(help="local date YYYY-MM-DD (default: today in the account's zone)"),
    ] = None,
    expires: Annotated[
        str | None, typer.Option(help="local date YYYY-MM-DD, exclusive (default: never)")
    ] = None,
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Give an account a prepaid credit grant (dated from its current period on)."""
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    try:
        entry = add_grant(deployment, account_id, amount, grant_id, granted, expires)
    except (CatalogError, operations.OperationError) as error:
        raise fail(str(error)) from None
    say(
        {"stack": deployment.stack, "account_id": account_id, "grant": entry},
        f"{account_id}: grant {entry['id']} of {entry['amount']} from {entry['granted']}"
        + (f" until {entry['expires']}" if entry.get("expires") else "")
        + f" stored in {deployment.stack}",
        as_json,
    )


def add_grant(
    deployment: Deployment,
    account_id: str,
    amount: str,
    grant_id: str | None,
    granted: str | None,
    expires: str | None,
) -> dict[str, Any]:
    """Store the account with the grant added, validated as a pushed accounts file is
    (the account, entry and field named) and checked as a push is; the grant as stored."""
    catalog = operations.stored_catalog(deployment)
    try:
        account = deployment.config().accounts([account_id]).get(account_id)
    except StoreError as error:
        raise operations.OperationError(f"cannot read the stored account: {error}") from None
    if account is None:
        raise operations.OperationError(f"{account_id}: no such account is stored")
    entry = {
        "id": grant_id or _next_id(account),
        "amount": amount,
        "granted": granted or str(_today(deployment, account)),
        **({"expires": expires} if expires else {}),
    }
    document = account.model_dump(mode="json", by_alias=True)
    document["credits"] = [*document.get("credits", []), entry]
    accounts = parse_accounts({"accounts": [document]}, catalog, "billing credits grant")
    operations.store_accounts(deployment, accounts, "billing credits grant")
    return accounts.accounts[0].credits[-1].model_dump(mode="json", exclude_none=True)


def _next_id(account: Account) -> str:
    taken = {grant.id for grant in account.credits}
    number = len(account.credits) + 1
    while f"grant-{number}" in taken:
        number += 1
    return f"grant-{number}"


def _today(deployment: Deployment, account: Account) -> date:
    now = operations.run_clock(deployment)
    return now.astimezone(account.zone).date()
