"""`billing webhooks add|list|test|rotate|remove`: the HTTPS endpoints domain events are delivered
to, signed (docs/webhooks.md), on public addresses only. On `billing local` (its runtime,
known by its stack's marker output, not by the stack's name) an endpoint may also be plain
HTTP on 127.0.0.1, so a receiver can be tried without AWS."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from billing.core.webhooks.payload import (
    EVENT_TYPES,
    ROTATION_GRACE_SECONDS,
    TEST_EVENT,
    DomainEvent,
)
from billing.store.errors import StoreError
from billing.store.webhook_endpoints import EndpointError, checked_url
from billing.webhooks.addresses import checked_url_addresses
from billing.webhooks.delivery import Deliverer, http_post, public_http_post
from billing_cli.commands.common import (
    EndpointOption,
    JsonOption,
    RegionOption,
    StackOption,
    Target,
    console,
    fail,
)

webhooks_app = typer.Typer(
    help="Endpoints that receive the domain events, signed (Standard Webhooks).",
    no_args_is_help=True,
)
EndpointIdArgument = Annotated[
    str, typer.Argument(metavar="ENDPOINT_ID", help="as `billing webhooks list` shows")
]


@webhooks_app.command("add")
def add(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="where to POST the events (https, a public address)")],
    event_types: Annotated[
        list[str],
        typer.Option(
            "--event", help=f"an event type to send, repeatable: {', '.join(EVENT_TYPES)}"
        ),
    ],
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register an endpoint and show its signing secret (`whsec_...`): the one time it is
    shown; the receiver verifies every delivery with it."""
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    secrets = deployment.webhook_secrets()
    local = deployment.local_runtime
    try:
        # where the host points, before anything is stored (the deliverer checks again)
        checked_url_addresses(checked_url(url, allow_loopback=local), allow_loopback=local)
        endpoint = deployment.webhook_endpoints().add(
            url, event_types, secrets, allow_loopback=local
        )
        secret = secrets.read(endpoint.secret_name)
    except (EndpointError, StoreError) as error:
        raise fail(str(error)) from None
    if as_json:
        console.print_json(json.dumps({**endpoint.to_json(), "secret": secret}))
        return
    console.print(f"endpoint {endpoint.endpoint_id}: {escape(url)}", highlight=False)
    console.print(f"secret (shown once): {secret}", highlight=False)


@webhooks_app.command("list")
def list_endpoints(
    ctx: typer.Context,
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """The registered endpoints and what each receives (never their secrets)."""
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    try:
        endpoints = deployment.webhook_endpoints().all()
    except StoreError as error:
        raise fail(str(error)) from None
    if as_json:
        console.print_json(json.dumps({"endpoints": [e.to_json() for e in endpoints]}))
        return
    table = Table(title=f"{len(endpoints)} webhook endpoints", title_justify="left")
    for column in ("id", "url", "events"):
        table.add_column(column)
    for endpoint in endpoints:
        table.add_row(endpoint.endpoint_id, escape(endpoint.url), ", ".join(endpoint.event_types))
    console.print(table)


@webhooks_app.command("test")
def send_test(
    ctx: typer.Context,
    endpoint_id: EndpointIdArgument,
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
) -> None:
    """Send the endpoint one signed WebhookTest event from here, once, and show its answer;
    exits 1 unless it answers 2xx."""
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    endpoints = deployment.webhook_endpoints()
    now = datetime.now(UTC)
    event = DomainEvent(
        detail_type=TEST_EVENT,
        detail={"event_id": f"{TEST_EVENT}:{now.isoformat()}", "endpoint_id": endpoint_id},
        envelope_id=f"test-{now.timestamp()}",
        time=now.isoformat().replace("+00:00", "Z"),
    )
    # from this machine, held to what the deliverer on AWS may reach, but locally
    post = http_post if deployment.local_runtime else public_http_post
    try:
        endpoint = endpoints.one(endpoint_id)
        deliverer = Deliverer(endpoints, deployment.webhook_secrets(), post)
        attempt = deliverer.attempt(endpoint, event, int(time.time()))
    except StoreError as error:
        raise fail(str(error)) from None
    answer = f"HTTP {attempt.status}" if attempt.status is not None else attempt.error
    console.print(f"{attempt.webhook_id}: {answer}", highlight=False)
    if not attempt.delivered:
        raise typer.Exit(1)


@webhooks_app.command("rotate")
def rotate(
    ctx: typer.Context,
    endpoint_id: EndpointIdArgument,
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replace the endpoint's signing secret and show the new one (the one time it is
    shown). For the next 24 hours each delivery carries a signature under the old secret
    too, so the receiver can switch when it likes."""
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    try:
        endpoint = deployment.webhook_endpoints().one(endpoint_id)
        secret = deployment.webhook_secrets().rotate(endpoint.secret_name)
    except StoreError as error:
        raise fail(str(error)) from None
    grace_hours = ROTATION_GRACE_SECONDS // 3600
    if as_json:
        document = {**endpoint.to_json(), "secret": secret, "previous_valid_hours": grace_hours}
        console.print_json(json.dumps(document))
        return
    console.print(f"endpoint {endpoint.endpoint_id}: {escape(endpoint.url)}", highlight=False)
    console.print(f"new secret (shown once): {secret}", highlight=False)
    console.print(
        f"deliveries are signed with the old secret too for {grace_hours} hours", highlight=False
    )


@webhooks_app.command("remove")
def remove(
    ctx: typer.Context,
    endpoint_id: EndpointIdArgument,
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
) -> None:
    """Stop sending to the endpoint and delete its secret."""
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    try:
        endpoint = deployment.webhook_endpoints().remove(endpoint_id, deployment.webhook_secrets())
    except StoreError as error:
        raise fail(str(error)) from None
    console.print(f"removed {endpoint.endpoint_id}: {escape(endpoint.url)}", highlight=False)
