"""`billing discounts add`: add a discount to a stored account, through the same
validation and history check as `billing accounts push` (CONTRACT.md 2a)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from billing.core.catalog import CatalogError
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

discounts_app = typer.Typer(help="Discounts on accounts' invoices.", no_args_is_help=True)


@discounts_app.command("add")
def add(
    ctx: typer.Context,
    account_id: Annotated[str, typer.Argument(metavar="ACCOUNT", help="the account's id")],
    discount_id: Annotated[str, typer.Option("--id", help="the discount's id, e.g. launch")],
    first: Annotated[str, typer.Option("--from", help="its first billing period, YYYY-MM")],
    periods: Annotated[int, typer.Option(help="how many periods from --from it applies to")] = 1,
    percent: Annotated[
        str | None, typer.Option(help="a percentage of the lines before it, e.g. 10")
    ] = None,
    amount: Annotated[
        str | None, typer.Option(help="an amount in the account's currency, e.g. 20.00")
    ] = None,
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Give an account a discount (a percentage or an amount) on future invoices; it comes
    after the account's other discounts."""
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    entry: dict[str, Any] = {"id": discount_id, "from": first, "periods": periods}
    entry.update({key: value for key, value in (("percent", percent), ("amount", amount)) if value})
    try:
        stored = operations.amend_account(
            deployment, account_id, "discounts", lambda _: entry, "billing discounts add"
        )
    except (CatalogError, operations.OperationError) as error:
        raise fail(str(error)) from None
    discount = stored.discounts[-1].model_dump(mode="json", by_alias=True, exclude_none=True)
    say(
        {"stack": deployment.stack, "account_id": account_id, "discount": discount},
        f"{account_id}: discount {discount_id} on {periods} period(s) from {first} stored in "
        f"{deployment.stack}",
        as_json,
    )
