"""`billing credits grant`: add a prepaid credit grant to a stored account, through the
same validation and history check as `billing accounts push` (CONTRACT.md 2a)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import typer

from billing.core.catalog import Account, CatalogError
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

    def entry_for(account: Account) -> dict[str, Any]:
        return {
            "id": grant_id or _next_id(account),
            "amount": amount,
            "granted": granted or str(_today(deployment, account)),
            **({"expires": expires} if expires else {}),
        }

    stored = operations.amend_account(
        deployment, account_id, "credits", entry_for, "billing credits grant"
    )
    return stored.credits[-1].model_dump(mode="json", exclude_none=True)


def _next_id(account: Account) -> str:
    taken = {grant.id for grant in account.credits}
    number = len(account.credits) + 1
    while f"grant-{number}" in taken:
        number += 1
    return f"grant-{number}"


def _today(deployment: Deployment, account: Account) -> date:
    now = operations.run_clock(deployment)
    return now.astimezone(account.zone).date()
