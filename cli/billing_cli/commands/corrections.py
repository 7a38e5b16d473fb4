"""`billing rerate` and `billing explain`: where every cent came from, from the raw archive
(billing.corrections)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from billing.core.catalog import Catalog, CatalogError, load_catalog
from billing.core.invoice import utc_text
from billing.core.periods import Period
from billing.corrections.explain import Explain
from billing.corrections.open_period import OpenPeriodApply
from billing.corrections.rerate import AccountRerate, Rerate
from billing.rating.archive import ArchiveCorrupt
from billing.settings import STACK_OUTPUTS
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
    parsed_period,
)
from billing_cli.deployment import Deployment, DeploymentError
from billing_cli.quarantine import QuarantineBrowser


def rerate(
    ctx: typer.Context,
    period: Annotated[str, typer.Option("--period", help="the period to re-rate, YYYY-MM")],
    account: Annotated[
        str | None, typer.Option("--account", help="only this account; default: every one")
    ] = None,
    catalog: Annotated[
        Path | None,
        typer.Option("--catalog", help="rate with this catalog file; default: the stored one"),
    ] = None,
    apply: Annotated[
        bool,
        typer.Option(
            "--apply",
            help="replace the aggregates of an open period with the re-rated ones (with "
            "the stored catalog); default: a dry run",
        ),
    ] = False,
    reason: Annotated[
        str | None,
        typer.Option(
            "--reason",
            help="why an invoiced period is corrected (printed on its credit note); "
            "--apply on an invoiced period needs it",
        ),
    ] = None,
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Rate a period's usage again from the raw archive and show what would change, per
    account and invoice line (a dry run: nothing is written); with --apply, replace an
    open period's aggregates with the re-rated ones while the rater keeps running, and
    credit what an invoiced period's invoice charged above its re-rated self (--reason)."""
    billing_period = parsed_period(period)
    assert billing_period is not None
    if apply and catalog is not None:
        raise fail(
            "--apply re-rates with the stored catalog: push the corrected one first "
            "(billing catalog push F), then apply"
        )
    _catalog_file(catalog)  # a bad file is refused before anything is read
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    try:
        document = _rerated(deployment, billing_period, account, catalog, (apply, reason))
    except LookupError as error:
        raise fail(str(error.args[0])) from None
    except (StoreError, ArchiveCorrupt) as error:
        raise fail(f"cannot read the archive: {error}") from None
    if as_json:
        console.print_json(json.dumps(document))
    else:
        print_rerate(document, applied=apply)
    if any("warning" in result for result in document.get("applied", [])):
        raise typer.Exit(code=1)  # corrected, but a late event may be resent: run it again


def _rerated(
    deployment: Deployment,
    period: Period,
    account: str | None,
    catalog: Path | None,
    applying: tuple[bool, str | None],
) -> dict[str, Any]:
    """The dry run's report; when applying (with its reason), what the apply did to each
    account: an open period's aggregates replaced, an invoiced one's invoice credited."""
    apply, reason = applying
    sources = deployment.corrections()
    chosen = _catalog_file(catalog)
    report = Rerate(sources).dry_run(
        period,
        account_id=account,
        catalog=chosen,
        catalog_name=catalog.name if catalog is not None else "current",
    )
    document = report.to_json()
    if apply:
        invoiced = [each for each in report.accounts if each.invoice_number is not None]
        if invoiced and not (reason or "").strip():
            raise fail(
                f"{period} is invoiced for {len(invoiced)} account(s): a correction of it is a "
                "credit note, which needs a reason (--reason TEXT)"
            )
        # Every open account: aggregates may differ where no line does (a filter's share
        # under its new name, say), and the apply says which it left unchanged.
        names = {each.account_id for each in invoiced}
        open_accounts = [each for each in sources.accounts(period, account) if each.id not in names]
        applied = OpenPeriodApply(sources, deployment.ledgers()).apply(
            period, open_accounts, datetime.now(UTC)
        )
        results = [result.to_json() for result in applied]
        billed = BilledMarks(deployment, datetime.now(UTC))
        results += [_corrected(deployment, each, reason or "", billed) for each in invoiced]
        document["applied"] = sorted(results, key=lambda result: str(result["account_id"]))
    return document


def _corrected(
    deployment: Deployment, change: AccountRerate, reason: str, billed: BilledMarks
) -> dict[str, Any]:
    """An invoiced account's apply: its invoice taken to the re-rated one by the Send
    function, with a credit note (`credited`), an adjustment invoice (`adjusted`) or both
    (`corrected`), each named with its total and email; `unchanged` (nothing differs, or
    this very correction was issued before: the documents are named) or `refused` with
    why. Once the invoice stands at the re-rated one (anything but `refused`), the late
    events the re-rate counted are marked billed in the quarantine (BilledMarks)."""
    account_id = change.account_id
    if not change.changed:
        return {"account_id": account_id, "outcome": "unchanged", **billed.mark(change, ())}
    try:
        issued = operations.correct_invoice(
            deployment, account_id, change.period, reason, dict(change.document), change.after
        )
    except operations.OperationError as error:
        return {"account_id": account_id, "outcome": "refused", "reason": str(error)}
    result = _issued(account_id, issued)
    numbers = [result[kind]["number"] for kind in ("credit_note", "adjustment") if kind in result]
    return {**result, **billed.mark(change, numbers)}


def _issued(account_id: str, issued: dict[str, Any]) -> dict[str, Any]:
    """The Send function's answer to a correction, as the apply reports it."""
    documents = {
        kind: {
            "number": issued[kind][f"{kind}_number"],
            "total": issued[kind]["total"],
            "email": issued[kind]["email"],
        }
        for kind in ("credit_note", "adjustment")
        if issued.get(kind)
    }
    new = {kind for kind in documents if issued[kind]["new"]}
    result: dict[str, Any] = {"account_id": account_id, **documents}
    if not documents:
        return {**result, "outcome": "unchanged", "reason": "the invoice stands corrected"}
    if not new:
        numbers = " and ".join(each["number"] for each in documents.values())
        return {**result, "outcome": "unchanged", "reason": f"{numbers}: issued before"}
    outcomes = {"credit_note": "credited", "adjustment": "adjusted"}
    result["outcome"] = outcomes[new.pop()] if len(new) == 1 else "corrected"
    return result


class BilledMarks:
    """The billed markers of one apply (`billed/<id>.json` in the quarantine bucket, read
    by `billing rejected list` and `replay`, docs/corrections.md): one per late event a
    correction counted, written only once the Send function answered (a refused
    correction leaves its records to work on), under the same key each time, so that an
    apply run again after a stop between the answer and the markers writes them."""

    def __init__(self, deployment: Deployment, now: datetime) -> None:
        self._deployment, self._now = deployment, now
        self._browser: QuarantineBrowser | None = None

    def mark(self, change: AccountRerate, numbers: Sequence[str]) -> dict[str, Any]:
        """Mark the account's counted late events billed by the documents `numbers` (or,
        none issued now, those the invoice stands after); the result's `warning` when S3
        refused a marker."""
        if not change.late_positions:
            return {}
        marker = {
            "account_id": change.account_id,
            "period": change.period,
            "invoice_number": change.invoice_number,
            "documents": list(numbers) or list(change.after),
            "at": utc_text(self._now),
        }
        try:
            for shard_id, sequence_number in change.late_positions:
                self.browser().mark_billed(f"{shard_id}/{sequence_number}", marker)
        except (StoreError, DeploymentError) as error:
            return {
                "warning": f"the late events were not all marked billed ({error}): run "
                "this apply again, or `billing rejected replay` may send them again"
            }
        return {}

    def browser(self) -> QuarantineBrowser:
        if self._browser is None:
            bucket = self._deployment.output(STACK_OUTPUTS.quarantine_bucket)
            self._browser = QuarantineBrowser(self._deployment.client("s3"), bucket)
        return self._browser


def _catalog_file(path: Path | None) -> Catalog | None:
    try:
        return load_catalog(path) if path is not None else None
    except CatalogError as error:
        raise fail(str(error)) from None


def print_rerate(document: dict[str, Any], *, applied: bool) -> None:
    console.print(
        f"re-rated {document['period']} from {document['records_read']} archived records "
        f"with the {document['catalog']} catalog: {document['accounts_changed']} of "
        f"{document['accounts']} accounts "
        + ("differ" if applied else "would change (dry run, nothing written)"),
        highlight=False,
    )
    for change in document["changes"]:
        console.print(rerate_table(change))
    for result in document.get("applied", []):
        note = "".join(
            f" {result[kind]['number']} ({result[kind]['total']})"
            for kind in ("credit_note", "adjustment")
            if kind in result
        )
        console.print(
            f"{result['account_id']}: {result['outcome']}{note}"
            + (f" ({result['reason']})" if "reason" in result else ""),
            highlight=False,
        )
        if "warning" in result:
            errors.print(f"{result['account_id']}: {result['warning']}", highlight=False)


def rerate_table(change: dict[str, Any]) -> Table:
    currency = change["currency"]
    invoiced = change["invoice_number"] or "not invoiced"
    table = Table(
        title=f"{change['account_id']} · {change['period']} ({invoiced})",
        caption=(
            f"total {change['stored']['total']}"
            + (f" (stands at {change['stands_at']})" if "stands_at" in change else "")
            + f" → {change['rerated']['total']} {currency} "
            f"(difference {change['difference']})"
            + (f"; {change['late_events']} late events counted" if change["late_events"] else "")
        ),
        title_justify="left",
    )
    for column in ("line", "quantity", "rerated quantity", "amount", "rerated amount"):
        table.add_column(column, justify="left" if column == "line" else "right")
    for line in change["lines"]:
        stored, rerated = line["stored"] or {}, line["rerated"] or {}
        table.add_row(
            line["description"],
            stored.get("quantity", "—"),
            rerated.get("quantity", "—"),
            stored.get("amount", "—"),
            rerated.get("amount", "—"),
        )
    return table


def explain(
    ctx: typer.Context,
    account: Annotated[str, typer.Argument(help="the account's id")],
    period: Annotated[str, typer.Option("--period", help="the period, YYYY-MM")],
    meter: Annotated[str | None, typer.Option("--meter", help="only this meter's lines")] = None,
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Where each line of the account's invoice (or of its preview, for an open period)
    came from: the events behind it, the aggregate, the price step by step, and the
    records left out (duplicates, rejections) with why."""
    billing_period = parsed_period(period)
    assert billing_period is not None
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    try:
        explanation = Explain(deployment.corrections()).account(account, billing_period)
    except LookupError as error:
        raise fail(str(error.args[0])) from None
    except (StoreError, ArchiveCorrupt) as error:
        raise fail(f"cannot read the archive: {error}") from None
    document = explanation.to_json(meter)
    if as_json:
        console.print_json(json.dumps(document))
        return
    number = document["invoice_number"] or "preview: not invoiced yet"
    console.print(
        f"[bold]{document['account_id']} · {document['period']}[/] ({number}): "
        f"total {document['total']} {document['currency']}",
        highlight=False,
    )
    for line in document["lines"]:
        console.print(explained_line(line))
    for name, events in document["unpriced"].items():
        console.print(f"unpriced {name}: {_events_text(events)} (no charge of the plan takes them)")
    left = document["left_out"]
    if left["duplicates"] or left["rejected"]:
        console.print(f"left out, of no line: {_left_out_text(left)}")


def explained_line(line: dict[str, Any]) -> Table:
    caption = ""
    if line["kind"] == "usage":
        caption = (
            f"{line['aggregation']} over {_events_text(line['events'])}; "
            f"left out: {_left_out_text(line['left_out']) or 'nothing'}"
        )
    table = Table(
        title=f"{line['description']}: {line['quantity']} → {line['amount']}",
        caption=caption,
        title_justify="left",
        caption_justify="left",
    )
    for column in ("step", "quantity", "unit price", "amount"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for step in line["steps"]:
        table.add_row(
            step["description"], step["quantity"], step.get("unit_price", "—"), step["amount"]
        )
    return table


def _events_text(events: dict[str, Any]) -> str:
    if not events["count"]:
        return "no events"
    first, last, biggest = events["first"], events["last"], events["biggest"]
    return (
        f"{events['count']} events (first {first['event_id']} at {first['timestamp']}, "
        f"last {last['event_id']} at {last['timestamp']}, "
        f"biggest {biggest['event_id']}: {biggest['quantity']})"
    )


def _left_out_text(left: dict[str, Any]) -> str:
    parts = [f"{left['duplicates']} duplicates"] if left["duplicates"] else []
    parts += [f"{count} {reason}" for reason, count in left["rejected"].items()]
    return ", ".join(parts)
