"""`billing rejected`: the quarantine as a work queue (list, show, replay, reindex), and
`billing backfill` (late events through the stream, each one's outcome reported)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from billing.core.events import Reason, parse_timestamp
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
    read_records,
)
from billing_cli.deployment import Deployment, DeploymentError
from billing_cli.outcomes import Outcomes
from billing_cli.quarantine import BadId, QuarantineBrowser, RejectedRow, parse_id
from billing_cli.replay import FixFileError, ReplayResult, read_fixes, replay
from billing_cli.sending import Waiting, put_tagged

rejected_app = typer.Typer(
    help="The quarantine: rejected records, to look at, correct and replay.",
    no_args_is_help=True,
)

ReasonOption = Annotated[
    list[str] | None,
    typer.Option("--reason", help="only this reason (repeatable): UNKNOWN_ACCOUNT, ..."),
]
AccountOption = Annotated[str | None, typer.Option("--account", help="only this account's")]
WaitOption = Annotated[
    float | None,
    typer.Option(
        "--wait",
        help="then wait up to this many seconds for what the service did with each record: "
        "rated, duplicate, rejected by reason (0: look once)",
        show_default=False,
    ),
]


def _browser(deployment: Deployment) -> QuarantineBrowser:
    with reported():
        bucket = deployment.output(STACK_OUTPUTS.quarantine_bucket)
    return QuarantineBrowser(deployment.client("s3"), bucket)


@contextmanager
def reported() -> Iterator[None]:
    """A store that cannot be read or written, or a stack without an output the command
    needs: said plainly, exit 2."""
    try:
        yield
    except (StoreError, DeploymentError, operations.OperationError) as error:
        raise fail(str(error)) from None


def _reasons(given: list[str] | None) -> list[str]:
    known = {str(reason) for reason in Reason}
    for reason in given or []:
        if reason not in known:
            raise fail(f"--reason {reason}: one of {', '.join(str(r) for r in Reason)}")
    return list(dict.fromkeys(given or []))


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_timestamp(text).at
    except ValueError as error:
        raise fail(f"--since {error}") from None


@rejected_app.command("list")
def rejected_list(
    ctx: typer.Context,
    reason: ReasonOption = None,
    account: AccountOption = None,
    since: Annotated[
        str | None, typer.Option("--since", help="rejected at or after (RFC 3339)")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="at most this many rows", min=1)] = 100,
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """The quarantined records, newest first, filtered by listing the quarantine's index
    (docs/quarantine.md): one row per record, `replayed` once it was sent again, `billed`
    once a correction of its invoiced period billed it (a late record: not to be resent)."""
    reasons = _reasons(reason)
    start = _since(since)
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    browser = _browser(deployment)
    with reported():
        entries = browser.entries(reasons=reasons, since=start, account=account)
        rows = browser.rows(entries, limit=limit)
    if as_json:
        document = {
            "rejected": [row.to_json() for row in rows],
            "matched": len(entries),
            "s3_requests": browser.requests.to_json(),
        }
        console.print_json(json.dumps(document))
        return
    console.print(_rows_text(rows, len(entries)), highlight=False, markup=False, soft_wrap=True)


def _rows_text(rows: list[RejectedRow], matched: int) -> str:
    """A few lines per record, its id alone on the first (an id is long, and copied into
    `show` or a fix file: a table would cut or fold it)."""
    shown = f"{len(rows)} of {matched}" if matched > len(rows) else f"{len(rows)}"
    lines = [f"{shown} rejected records, newest first"]
    for row in rows:
        line = row.to_json()
        about = [f"{line['reason']} at {line['rejected_at']}"]
        about += [f"account {line['account']}"] if line["account"] else []
        about += [f"event {line['event_id']}"] if line["event_id"] else []
        lines += ["", line["id"], "  " + " · ".join(about), f"  {line['message']}"]
        if row.replayed:
            lines.append(f"  replayed as {row.replayed['as']} at {row.replayed['replayed_at']}")
        if row.billed:
            lines.append(f"  {row.billed_note} at {row.billed.get('at')}: not to be resent")
    return "\n".join(lines)


@rejected_app.command("show")
def rejected_show(
    ctx: typer.Context,
    rejection_id: Annotated[str, typer.Argument(metavar="ID", help="<shard>/<sequence>")],
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """One rejected record's whole quarantine document, its raw record as text (or
    base64 when it is not UTF-8)."""
    try:
        parse_id(rejection_id)
    except BadId as error:
        raise fail(str(error)) from None
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    browser = _browser(deployment)
    with reported():
        row = browser.row(rejection_id)
    if row is None:
        raise fail(f"no rejected record {rejection_id} in {deployment.stack}'s quarantine")
    document = {"id": row.id, **row.document, "replayed": row.replayed}
    if row.billed is not None:
        document["billed"] = row.billed
    if as_json:
        console.print_json(json.dumps(document))
        return
    for key, value in document.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        console.print(f"{key}: {text}", highlight=False, markup=False, soft_wrap=True)


@rejected_app.command("replay")
def rejected_replay(
    ctx: typer.Context,
    reason: ReasonOption = None,
    account: AccountOption = None,
    fix_file: Annotated[
        Path | None,
        typer.Option(
            "--fix-file",
            help='JSON lines {"id": "<shard>/<sequence>", "record": {...}}: send these '
            "entries, corrected",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="say what would be sent")] = False,
    wait: WaitOption = None,
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Send quarantined records through the stream again (after adding a missing account
    or meter), or corrected ones from a fix file; each entry is marked replayed once the
    stream took it, and never sent again by a later replay."""
    reasons = _reasons(reason)
    if fix_file is not None and (reasons or account):
        raise fail("--fix-file names the entries to send: drop --reason and --account")
    try:
        fixes = read_fixes(fix_file) if fix_file is not None else None
    except FixFileError as error:
        raise fail(str(error)) from None
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    browser = _browser(deployment)
    with reported():
        now = operations.run_clock(deployment)
        result = replay(
            deployment,
            browser,
            reasons=reasons,
            account=account,
            fixes=fixes,
            dry_run=dry_run,
            now=now,
            waiting=Waiting(wait, now) if wait is not None else None,
        )
    document = result.to_json(browser.requests.to_json())
    if as_json:
        console.print_json(json.dumps(document))
    else:
        _print_replay(result, document)
    if result.sent is not None and (result.sent.refused or result.sent.not_sent):
        raise typer.Exit(code=1)


def _print_replay(result: ReplayResult, document: dict[str, Any]) -> None:
    for skipped in result.skipped:
        errors.print(f"{skipped['id']}: skipped, {skipped['why']}", highlight=False)
    for refused in document["refused"]:
        errors.print(
            f"{refused['id']}: {refused['reason']}: {refused['message']}",
            highlight=False,
            markup=False,
        )
    verb = "would send" if result.dry_run else "sent"
    count = len(result.selected) if result.dry_run else len(result.marked)
    console.print(f"{verb} {count} of {len(result.selected)} selected records", highlight=False)
    if result.sent is not None and result.sent.outcomes is not None:
        console.print(outcome_lines(result.sent.outcomes), highlight=False)


@rejected_app.command("reindex")
def rejected_reindex(
    ctx: typer.Context,
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Once, after upgrading a deployment from before the quarantine's index: index every
    kept document (reads each once), so `list` and `replay` find it."""
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    browser = _browser(deployment)
    count = 0
    with reported():
        for rejection_id in list(browser.kept_ids()):
            row = browser.row(rejection_id)
            if row is not None:
                browser.index(row)
                count += 1
    document = {"indexed": count, "s3_requests": browser.requests.to_json()}
    if as_json:
        console.print_json(json.dumps(document))
    else:
        console.print(f"{count} rejected records indexed", highlight=False)


def outcome_lines(outcomes: Outcomes, *, closed_note: bool = False) -> str:
    """What the service did with the records sent, one line per outcome."""
    counts = outcomes.counts()
    lines = [f"rated: {counts['rated']}", f"duplicates: {counts['duplicates']}"]
    for reason, count in counts["rejected"].items():
        note = (
            " (kept in the quarantine for a re-rate)"
            if closed_note and reason == str(Reason.PERIOD_CLOSED)
            else ""
        )
        lines.append(f"rejected {reason}: {count}{note}")
    if counts["pending"]:
        lines.append(f"still pending: {counts['pending']} (not rated yet when the wait ended)")
    return "\n".join(lines)


def backfill(
    ctx: typer.Context,
    events: Annotated[Path, typer.Argument(help="late usage events, one JSON per line")],
    wait: Annotated[
        float, typer.Option("--wait", help="wait up to this many seconds for the outcomes")
    ] = 60.0,
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import late events through the stream and the rater (the same validation and
    dedupe as any event), and report each one's outcome: new (rated), duplicate, in a
    closed period (kept in the quarantine for a re-rate), or rejected, by reason."""
    records = read_records(events)
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    with reported():
        now = operations.run_clock(deployment)
        sent = put_tagged(deployment, list(enumerate(records, start=1)), waiting=Waiting(wait, now))
    report = backfill_report(len(records), sent.outcomes or Outcomes(), sent.refused)
    report.update({"not_sent": sent.not_sent, **({"error": sent.error} if sent.error else {})})
    if as_json:
        console.print_json(json.dumps(report))
    else:
        for line, reason, message in sent.refused:
            errors.print(f"{events}:{line}: {reason}: {message}", highlight=False, markup=False)
        console.print(_backfill_text(report), highlight=False)
        if sent.error:
            errors.print(f"[bold red]error:[/] {sent.error}", highlight=False)
    if sent.refused or sent.not_sent or report["pending"]:
        raise typer.Exit(code=1)


def backfill_report(
    records: int, outcomes: Outcomes, refused: list[tuple[object, str, str]]
) -> dict[str, Any]:
    """Each event in exactly one place: new, duplicate, closed period, rejected (by the
    service, by reason), refused before sending (by reason), pending, or not sent."""
    counts = outcomes.counts()
    closed = counts["rejected"].pop(str(Reason.PERIOD_CLOSED), 0)
    by_reason: dict[str, int] = {}
    for _, reason, _ in refused:
        by_reason[reason] = by_reason.get(reason, 0) + 1
    return {
        "records": records,
        "new": counts["rated"],
        "duplicates": counts["duplicates"],
        "closed_period": closed,
        "rejected": counts["rejected"],
        "refused": dict(sorted(by_reason.items())),
        "pending": counts["pending"],
    }


def _backfill_text(report: dict[str, Any]) -> str:
    lines = [
        f"{report['records']} events: {report['new']} new (rated), "
        f"{report['duplicates']} duplicates",
        f"closed period: {report['closed_period']} (PERIOD_CLOSED, kept in the quarantine "
        "for a re-rate)",
    ]
    for reason, count in report["rejected"].items():
        lines.append(f"rejected {reason}: {count}")
    for reason, count in report["refused"].items():
        lines.append(f"refused before sending, {reason}: {count}")
    if report["pending"]:
        lines.append(f"still pending: {report['pending']} (not rated when the wait ended)")
    return "\n".join(lines)
