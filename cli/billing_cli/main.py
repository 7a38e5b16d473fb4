"""`billing`: the command line (CONTRACT.md section 5).

The commands live by what they work on: `billing_cli.commands.pipeline` runs the pipeline
here (`run`, `demo`, `preview`, `local`), `billing_cli.commands.deployed` works on a stack
(`send`, `usage`, `catalog push`, `accounts push`, `clock`),
`billing_cli.commands.accounts` reads its accounts through the operator API (`accounts
list`, `accounts show`), `billing_cli.commands.invoices` works on its invoices and
`billing_cli.commands.rejected` on its quarantine (and `backfill`),
`billing_cli.commands.webhooks` on its webhook endpoints. This module puts them
together, in the order `billing --help` lists them.
"""

from __future__ import annotations

import typer

from billing_cli.commands import (  # accounts: its commands join deployed.accounts_app
    access,
    accounts,  # noqa: F401
    corrections,
    credits,
    deployed,
    discounts,
    invoices,
    pipeline,
    rejected,
    warehouse,
    webhooks,
)
from billing_cli.commands.common import EndpointOption, RegionOption, StackOption, Target

app = typer.Typer(
    help="Real-time usage billing: rate usage events and issue invoices.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
) -> None:
    """Real-time usage billing: rate usage events and issue invoices."""
    ctx.obj = Target(endpoint_url, stack, region)


for command in (
    pipeline.run,
    pipeline.demo,
    pipeline.preview,
    pipeline.local,
    # operator commands: they work on a deployed stack, or on `billing local`
    deployed.send,
    deployed.usage,
    rejected.backfill,
    corrections.explain,
    corrections.rerate,
    warehouse.query,
):
    app.command()(command)
app.command("portal-link")(access.portal_link)
app.add_typer(invoices.app, name="invoices")
app.add_typer(rejected.rejected_app, name="rejected")
app.add_typer(deployed.clock_app, name="clock")
app.add_typer(deployed.catalog_app, name="catalog")
app.add_typer(deployed.accounts_app, name="accounts")
app.add_typer(credits.credits_app, name="credits")
app.add_typer(discounts.discounts_app, name="discounts")
app.add_typer(access.keys_app, name="keys")
app.add_typer(webhooks.webhooks_app, name="webhooks")


if __name__ == "__main__":
    app()
