"""The customer API's part of the local runtime: its key table and usage plan on moto, the
authorizer's environment, and the local gateway (billing_cli.local.customer_gateway),
served on 127.0.0.1 on a port of its own when asked.

The command line finds them as it finds a deployed stack's, by the outputs
`CustomerKeysTableName`, `CustomerUsagePlanId` and `CustomerApiUrl`, so `billing
--endpoint-url ... keys create` and `portal-link` work against it unchanged.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from unittest import mock

import boto3

from billing import wiring
from billing.customer.access import Accounts, CustomerAccess
from billing.settings import (
    AUTHORIZER_CACHE_ENV,
    CUSTOMER_KEYS_TABLE,
    MAX_AUTHORIZER_CACHE_SECONDS,
    STACK_OUTPUTS,
)
from billing.store.api_keys import ApiKeys
from billing.store.throttle_keys import ThrottleKeys
from billing_cli.local.customer_gateway import CustomerGateway
from billing_cli.local.lambdas import CURRENT_STDERR
from billing_cli.local.provision import create_table
from billing_cli.local.server import LocalServer
from functions.customer_api import app as routes_app
from functions.customer_authorizer import app as authorizer_app

# The URL a test's WSGI client reaches the gateway by when it is not served on a port.
UNSERVED_URL: Final = "http://localhost/live/"


@dataclass
class LocalCustomerApi:
    keys_table: str
    usage_plan: str
    gateway: CustomerGateway
    url: str  # the base URL with the stage, as the stack's CustomerApiUrl output
    region: str

    def portal_link(self, accounts: Accounts, account_id: str, hours: int) -> str:
        """A portal link for an account, made as `billing portal-link` makes one."""
        dynamodb = boto3.client("dynamodb", region_name=self.region)
        apigateway = boto3.client("apigateway", region_name=self.region)
        access = CustomerAccess(
            keys=ApiKeys(dynamodb, self.keys_table),
            throttle=ThrottleKeys(apigateway, self.usage_plan),
            accounts=accounts,
            api_url=self.url,
        )
        link, _ = access.create_portal_link(account_id, hours)
        return link

    def outputs(self) -> dict[str, str]:
        return {
            STACK_OUTPUTS.customer_api_url: self.url,
            STACK_OUTPUTS.customer_keys_table: self.keys_table,
            STACK_OUTPUTS.customer_usage_plan: self.usage_plan,
        }


def _provision(region: str, prefix: str, apigateway: Any) -> tuple[str, str]:
    """The key table and the usage plan (no throttle: not emulated locally)."""
    table = f"{prefix}-{CUSTOMER_KEYS_TABLE.construct_id.lower()}"
    create_table(boto3.client("dynamodb", region_name=region), CUSTOMER_KEYS_TABLE, table)
    plan = apigateway.create_usage_plan(
        name=f"{prefix}-customer-keys", description="Each customer key's requests"
    )["id"]
    return table, str(plan)


@contextmanager
def local_customer_api(
    region: str,
    prefix: str,
    *,
    port: int | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Iterator[LocalCustomerApi]:
    """For the time of the block: the key table, the usage plan, the authorizer's
    environment (and, given `clock`, the authorizer on it) and the gateway, served on
    127.0.0.1:`port` if a port is given (0: a free one)."""
    apigateway = boto3.client("apigateway", region_name=region)
    table, plan = _provision(region, prefix, apigateway)
    os.environ.update(
        {
            CUSTOMER_KEYS_TABLE.env_var: table,
            AUTHORIZER_CACHE_ENV: str(MAX_AUTHORIZER_CACHE_SECONDS),
        }
    )
    now = clock or (lambda: datetime.now(UTC))
    throttle = ThrottleKeys(apigateway, plan)
    # As the other handlers locally: stdout is the user's, so only what is wrong, on stderr.
    for logger in (authorizer_app.logger, routes_app.logger):
        logger.setLevel(logging.WARNING)
        handler = logger.registered_handler
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(CURRENT_STDERR)
    with ExitStack() as stack:
        # A fresh service per runtime: it reads this runtime's environment (and clock).
        service = functools.cache(functools.partial(wiring.customer_authorizer, clock=now))
        stack.enter_context(mock.patch.object(authorizer_app, "service", service))
        views = functools.cache(functools.partial(wiring.customer_views, clock=now))
        stack.enter_context(mock.patch.object(routes_app, "service", views))
        gateway = CustomerGateway(
            authorizer=authorizer_app.handler,
            cache_seconds=MAX_AUTHORIZER_CACHE_SECONDS,
            clock=now,
            usage_key_enabled=throttle.counts,
            hosts={"localhost"},
        )
        url = UNSERVED_URL
        if port is not None:
            server = LocalServer(port, gateway)  # 127.0.0.1 only; a taken port: OSError
            gateway.hosts = server.hosts
            server.start()
            stack.callback(server.stop)
            url = f"{server.endpoint_url}/{gateway.stage.stage}/"
        yield LocalCustomerApi(table, plan, gateway, url, region)
