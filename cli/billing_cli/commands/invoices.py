"""`billing invoices`: start an invoice run, list, show, resend and void invoices; list and
show their credit notes."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from billing.core.credit_notes import ADJUSTMENT, CREDIT_NOTE, NUMBER_KEYS
from billing.core.invoice import utc_text
from billing.core.money import plain
from billing.corrections.credit_note_pdf import owed_effect
from billing.store.invoice_store import InvoiceRecord
from billing_cli import credit_note_lookup, operations
from billing_cli.commands.common import (
    EndpointOption,
    JsonOption,
    RegionOption,
    StackOption,
    Target,
    console,
    errors,
    exit_if_unfinished,
    fail,
    invoice_document_table,
    parse_clock,
    parsed_period,
    say,
)

app = typer.Typer(help="Invoice runs.", no_args_is_help=True)


@app.command("run")
def invoices_run(
    ctx: typer.Context,
    period: Annotated[
        str | None,
        typer.Option("--period", help="only this period, YYYY-MM; default: every one due"),
    ] = None,
    now: Annotated[
        str | None,
        typer.Option(
            "--now",
            help="the run's clock (RFC 3339); default: now, or the local runtime's test clock",
        ),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="wait for its counts")] = True,
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start the invoice workflow now (it invoices only what is due and not yet invoiced)."""
    billing_period = parsed_period(period)
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    try:
        clock = parse_clock(now, operations.run_clock(deployment))
        early = operations.not_due(deployment, billing_period, clock) if billing_period else None
        if early is not None:
            say_not_due(early, clock, as_json)
            raise typer.Exit(code=1)
        run = operations.start_invoice_run(deployment, billing_period, clock)
        if not as_json:
            console.print(f"invoice run {run.name} started")
        if wait:
            run = operations.wait_for(deployment, run)
    except operations.OperationError as error:
        raise fail(str(error)) from None
    print_invoice_run(run, as_json)
    if run.status not in {"RUNNING", "SUCCEEDED"}:
        raise typer.Exit(code=1)
    exit_if_unfinished(run.report)


@app.command("reindex")
def invoices_reindex(
    ctx: typer.Context,
    now: Annotated[
        str | None,
        typer.Option(
            "--now", help="the clock (RFC 3339); default: now, or the local runtime's test clock"
        ),
    ] = None,
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Build the accounts' due hints from their ledgers and invoices: once, after upgrading
    a deployment whose accounts were pushed before hourly runs found them by the index.
    Safe to run again (it only adds hints or moves them earlier)."""
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    try:
        clock = parse_clock(now, operations.run_clock(deployment))
        looked, written = operations.reindex(deployment, clock)
    except operations.OperationError as error:
        raise fail(str(error)) from None
    say(
        {"stack": deployment.stack, "accounts": looked, "hints_written": written},
        f"{looked} accounts looked at, {written} due hints written",
        as_json,
    )


def say_not_due(early: operations.NotDue, clock: datetime, as_json: bool) -> None:
    say(
        {
            "period": str(early.period),
            "now": utc_text(clock),
            "due": False,
            "first_due_at": utc_text(early.first),
            "all_due_at": utc_text(early.last),
        },
        f"nothing started: {early}",
        as_json,
    )


def print_invoice_run(run: operations.InvoiceRunStarted, as_json: bool) -> None:
    """The run as it is: started, or ended with its counts or its error."""
    if as_json:
        console.print_json(json.dumps(run.to_json()))
    elif run.report is not None:
        counts = ", ".join(
            f"{count} {name}"
            for name, count in run.report.items()
            if isinstance(count, int) and not isinstance(count, bool)
        )
        console.print(f"invoice run {run.status.lower()}: {counts}")
    elif run.error is not None:
        errors.print(f"[bold red]invoice run {run.status.lower()}:[/] {run.error}", highlight=False)


StatusOption = Annotated[
    str | None,
    typer.Option(
        "--status",
        help="numbered, stored, sending, sent, undelivered, unknown, bounced or complained",
    ),
]


@app.command("list")
def invoices_list(
    ctx: typer.Context,
    account: Annotated[str | None, typer.Option("--account", help="only this account")] = None,
    period: Annotated[str | None, typer.Option("--period", help="only this period")] = None,
    status: StatusOption = None,
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """The invoices issued, by number, with their totals and where each one is; under each,
    the credit notes issued against it (filtered alike)."""
    billing_period = parsed_period(period)
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    try:
        rows = operations.list_invoices(deployment, account, billing_period, status)
        notes, adjustments = (
            credit_note_lookup.list_credit_notes(deployment, account, billing_period, status, kind)
            for kind in (CREDIT_NOTE, ADJUSTMENT)
        )
    except operations.OperationError as error:
        raise fail(str(error)) from None
    if as_json:
        listed = {"invoices": rows, "credit_notes": notes, "adjustments": adjustments}
        console.print_json(json.dumps(listed))
        return
    console.print(invoices_table(deployment.stack, rows, [*notes, *adjustments]))


def invoices_table(stack: str, rows: list[dict[str, Any]], notes: list[dict[str, Any]]) -> Table:
    """A row per invoice and, under it, a row per credit note or adjustment invoice against
    it (signed by its effect on what is owed: credited negative, charged positive); one
    whose invoice is not listed comes last."""
    table = Table(title=f"invoices in {stack}", title_justify="left")
    for column in ("invoice", "account", "period", "total", "status"):
        table.add_column(column, justify="right" if column == "total" else "left")
    by_invoice: dict[str, list[dict[str, Any]]] = {}
    for note in sorted(notes, key=lambda note: note["issued_at"]):
        by_invoice.setdefault(note["invoice_number"], []).append(note)

    def add_notes(invoice_number: str) -> None:
        for note in by_invoice.pop(invoice_number, []):
            kind = note["kind"]
            signed = f"{plain(owed_effect(Decimal(note['total']), kind))} {note['currency']}"
            number = f"└ {note[NUMBER_KEYS[kind]]} ({note['correction']})"
            table.add_row(number, note["account_id"], note["period"], signed, note["status"])

    for row in rows:
        total_text = f"{row['total']} {row['currency']}" if row["total"] else ""
        table.add_row(
            row["invoice_number"], row["account_id"], row["period"], total_text, row["status"]
        )
        add_notes(row["invoice_number"])
    for invoice_number in list(by_invoice):
        add_notes(invoice_number)
    return table


@app.command("show")
def invoices_show(
    ctx: typer.Context,
    number: Annotated[
        str,
        typer.Argument(
            help="the invoice, credit note or adjustment invoice number, e.g. INV-2026-000042, "
            "CN-2026-000001, ADJ-2026-000001"
        ),
    ],
    pdf: Annotated[
        Path | None, typer.Option("--pdf", help="write the stored PDF to this file")
    ] = None,
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """One invoice, credit note or adjustment invoice as it was stored (its JSON document),
    where it is, and its PDF."""
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    kind = credit_note_lookup.correction_kind(number)
    note = kind is not None
    try:
        if note:
            found = credit_note_lookup.find_credit_note(deployment, number)
            record: InvoiceRecord = found
            row = credit_note_lookup.credit_note_row(found)
        else:
            record = operations.find_invoice(deployment, number)
            row = operations.invoice_row(record)
        document, pdf_bytes = operations.invoice_documents(deployment, record)
        corrections = (
            None if note else credit_note_lookup.invoice_corrections(deployment, record, document)
        )
    except operations.OperationError as error:
        raise fail(str(error)) from None
    if pdf is not None:
        try:
            pdf.write_bytes(pdf_bytes)
        except OSError as error:
            raise fail(f"{pdf}: cannot be written ({error.strerror})") from None
    if as_json:
        shown = {"record": row, kind or "invoice": document}
        if corrections is not None:
            shown["corrections"] = corrections
        console.print_json(json.dumps(shown))
        return
    console.print(credit_note_table(document) if note else invoice_document_table(document))
    console.print(f"status: {operations.invoice_state(record)}", highlight=False)
    if corrections is not None:
        show_corrections(document, corrections)
    if pdf is not None:
        console.print(f"PDF written to {pdf}", highlight=False)


def show_corrections(invoice: dict[str, Any], corrections: dict[str, Any]) -> None:
    """The invoice's credit notes and adjustments, each total signed by its effect on what
    the customer owes (as their PDFs show it: credited negative, charged positive), and
    what the invoice stands at after them."""
    currency, documents = invoice["currency"], corrections["documents"]
    if not documents:
        console.print(
            f"corrections: none; stands at its total, {invoice['total']} {currency}",
            highlight=False,
        )
        return
    table = Table(title=f"corrections of {invoice['invoice_number']}", title_justify="left")
    table.add_column("document", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("correction", overflow="fold")
    table.add_column(f"amount ({currency})", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for each in documents:
        signed = plain(owed_effect(Decimal(each["total"]), each["kind"]))
        kind = "credit note" if each["kind"] == CREDIT_NOTE else "adjustment"
        table.add_row(each["number"], kind, each["correction"], signed, each["status"])
    console.print(table)
    console.print(
        f"stands at: {corrections['stands_at']} {currency} after {len(documents)} "
        f"correction(s) (issued at {invoice['total']} {currency})",
        highlight=False,
    )


def credit_note_table(document: dict[str, Any]) -> Table:
    """A credit note's (or adjustment invoice's) document: what it corrects and why, its
    lines and what it credits (or charges), as stored."""
    adjustment = NUMBER_KEYS[ADJUSTMENT] in document
    number = document[NUMBER_KEYS[ADJUSTMENT if adjustment else CREDIT_NOTE]]
    done = "charged" if adjustment else "credited"
    table = Table(
        title=f"{number} · {document['account_id']} · "
        f"{document['period']} · corrects {document['invoice_number']}",
        caption=f"{document['correction']}: {document['reason']} · issued {document['issued_at']}",
        title_justify="left",
    )
    table.add_column("line")
    table.add_column("quantity", justify="right")
    table.add_column(f"{done} ({document['currency']})", justify="right")
    for line in document["lines"]:
        table.add_row(line["description"], line["quantity"], line["amount"])
    table.add_section()
    table.add_row("subtotal", "", document["subtotal"])
    table.add_row("tax", "", document["tax"])
    table.add_row(f"[bold]total {done}[/]", "", f"[bold]{document['total']}[/]")
    table.add_row("invoice total after", "", document["invoice_total_after"])
    return table


@app.command("resend")
def invoices_resend(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="the invoice number, e.g. INV-2026-000042")],
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Email a stored invoice again (after its address was mended, a bounce, or an email
    not known to have left): the stored PDF, to the account's address as it is now."""
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    try:
        result = operations.resend_invoice(deployment, number)
    except operations.OperationError as error:
        raise fail(str(error)) from None
    detail = result.get("message_id") or result.get("reason") or ""
    say(result, f"{number}: {result['status']} {detail}".rstrip(), as_json)
    if result["status"] != "sent":
        raise typer.Exit(code=1)


@app.command("void")
def invoices_void(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="the invoice number, e.g. INV-2026-000042")],
    reason: Annotated[
        str, typer.Option("--reason", help="why it is voided: printed on the credit note")
    ],
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Void an issued invoice: issue the credit note for all of it not credited yet, stored
    beside the invoice, announced and emailed once. Voiding again issues nothing new: it
    prints the same credit note (and finishes it if an earlier attempt stopped)."""
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    try:
        note = operations.void_invoice(deployment, number, reason)
    except operations.OperationError as error:
        raise fail(str(error)) from None
    already = "" if note["new"] else " (voided before: the same credit note)"
    say(
        note,
        f"{note['credit_note_number']} credits {note['total']} {note['currency']} of "
        f"{note['invoice_number']}{already}; stored in s3://{note['bucket']}/ at "
        f"{note['json_key']} and {note['pdf_key']}; email: {note['email']}",
        as_json,
    )
