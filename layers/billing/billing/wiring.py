"""Building the services from a handler's environment: one place for names and clients.

Handlers call these once per container (lazily, not at import), so tests and the local
runtime can set the environment first or pass their own collaborators instead.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from botocore.config import Config
from pydantic import BaseModel

from billing.core.seller import SellerSettings
from billing.core.spend import SpendThresholds
from billing.customer.account_views import AccountViews
from billing.customer.spend_alerts import SpendAlerts
from billing.invoicing.delivery import Delivery
from billing.invoicing.due import DEFAULT_GRACE, ListDue
from billing.invoicing.feedback import EmailFeedback
from billing.invoicing.issue import IssueInvoices
from billing.invoicing.send import SendInvoices
from billing.rating.service import RatingService
from billing.settings import (
    CONFIG_TABLE,
    EVENT_BUS_ENV,
    GRACE_ENV,
    INVOICE_BUCKET_ENV,
    INVOICE_KEY_ENV,
    INVOICES_TABLE,
    LEDGER_TABLE,
    QUARANTINE_BUCKET_ENV,
    SELLER_ENV,
    SENDER_ENV,
    SES_CONFIGURATION_SET_ENV,
    SPEND_ALERT_THRESHOLDS_ENV,
    STATE_MACHINE_ENV,
)
from billing.store.alert_claims import AlertClaims
from billing.store.config_store import ConfigStore
from billing.store.documents import DocumentStore
from billing.store.events import EventPublisher
from billing.store.invoice_store import InvoiceStore
from billing.store.ledger_store import LedgerStore
from billing.store.mailer import NO_RETRIES, Mailer
from billing.store.quarantine import Quarantine
from billing.store.workflows import WorkflowStarter

# Throttling is retried with backoff by the SDK first; what still fails is reported.
RETRIES = Config(retries={"mode": "adaptive", "max_attempts": 10})


class Environment(BaseModel):
    """The handlers' settings, checked when a container starts."""

    ledger_table: str
    config_table: str
    invoices_table: str | None = None
    quarantine_bucket: str | None = None
    invoice_bucket: str | None = None
    invoice_kms_key_id: str | None = None
    event_bus_name: str | None = None
    sender_email: str | None = None
    seller: str | None = None  # JSON, see billing.core.seller
    ses_configuration_set: str | None = None
    grace_seconds: int = int(DEFAULT_GRACE.total_seconds())
    spend_alert_thresholds: str | None = None

    @classmethod
    def read(cls) -> Environment:
        env = os.environ
        return cls(
            ledger_table=env[LEDGER_TABLE.env_var],
            config_table=env[CONFIG_TABLE.env_var],
            invoices_table=env.get(INVOICES_TABLE.env_var),
            quarantine_bucket=env.get(QUARANTINE_BUCKET_ENV),
            invoice_bucket=env.get(INVOICE_BUCKET_ENV),
            invoice_kms_key_id=env.get(INVOICE_KEY_ENV),
            event_bus_name=env.get(EVENT_BUS_ENV),
            sender_email=env.get(SENDER_ENV),
            seller=env.get(SELLER_ENV),
            ses_configuration_set=env.get(SES_CONFIGURATION_SET_ENV),
            grace_seconds=int(env.get(GRACE_ENV, int(DEFAULT_GRACE.total_seconds()))),
            spend_alert_thresholds=env.get(SPEND_ALERT_THRESHOLDS_ENV),
        )

    def need(self, name: str) -> str:
        value = getattr(self, name)
        if not value:
            raise RuntimeError(f"this function needs {name.upper()} in its environment")
        return str(value)


def _client(service: str) -> Any:
    return boto3.client(service, config=RETRIES)


def rating_service(env: Environment | None = None) -> RatingService:
    env = env or Environment.read()
    dynamodb = _client("dynamodb")
    return RatingService(
        config=ConfigStore(dynamodb, env.config_table),
        ledgers=LedgerStore(dynamodb, env.ledger_table),
        quarantine=Quarantine(_client("s3"), env.need("quarantine_bucket")),
    )


def invoice_step(step: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The handler of one invoice-workflow task ("due", "issue" or "send"): the step's
    service (`invoice_run`), built once per container, handles the event (read through the
    step's input model, its output returned as JSON), with Powertools logging and tracing
    around it; the service logs through the same Logger."""
    logger = Logger(service=step)
    tracer = Tracer(service=step)
    service = functools.cache(functools.partial(invoice_run, step, logger=logger))

    @logger.inject_lambda_context
    @tracer.capture_lambda_handler
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return service().handle(event)

    handler.service = service  # type: ignore[attr-defined]  # tests and the local runtime reset it
    handler.logger = logger  # type: ignore[attr-defined]
    return handler


def invoice_run(
    step: str, env: Environment | None = None, logger: Logger | None = None
) -> ListDue | IssueInvoices | SendInvoices:
    """The service of one step of the invoice run, on the stores that step calls."""
    env = env or Environment.read()
    dynamodb = _client("dynamodb")
    config = ConfigStore(dynamodb, env.config_table)
    invoices = InvoiceStore(dynamodb, env.need("invoices_table"))
    if step == "due":
        ledgers = LedgerStore(dynamodb, env.ledger_table)
        grace = timedelta(seconds=env.grace_seconds)
        return ListDue(config=config, ledgers=ledgers, invoices=invoices, grace=grace)
    log = logger or Logger(service=step)
    sender = env.need("sender_email")
    delivery = Delivery(
        invoices=invoices,
        documents=DocumentStore(_client("s3"), env.need("invoice_bucket"), env.invoice_kms_key_id),
        events=EventPublisher(_client("events"), env.need("event_bus_name")),
        mailer=Mailer(boto3.client("sesv2", config=NO_RETRIES), sender, env.ses_configuration_set),
        issuer=SellerSettings.parse(env.seller).issuer(sender),
    )
    if step == "issue":
        ledgers = LedgerStore(dynamodb, env.ledger_table)
        return IssueInvoices(config=config, ledgers=ledgers, delivery=delivery, log=log)
    if step == "send":
        return SendInvoices(config=config, delivery=delivery, log=log)
    raise ValueError(f"the invoice run has no step {step!r}")


def email_feedback(env: Environment | None = None) -> EmailFeedback:
    """The email_events service: SES's bounces and complaints onto invoice records."""
    env = env or Environment.read()
    return EmailFeedback(
        invoices=InvoiceStore(_client("dynamodb"), env.need("invoices_table")),
        events=EventPublisher(_client("events"), env.need("event_bus_name")),
    )


def account_views(
    env: Environment | None = None, clock: Callable[[], datetime] | None = None
) -> AccountViews:
    """The usage API's service: reads only (config, ledger, invoice records and documents)."""
    env = env or Environment.read()
    dynamodb = _client("dynamodb")
    return AccountViews(
        config=ConfigStore(dynamodb, env.config_table),
        ledgers=LedgerStore(dynamodb, env.ledger_table),
        invoices=InvoiceStore(dynamodb, env.need("invoices_table")),
        documents=DocumentStore(_client("s3"), env.need("invoice_bucket")),
        clock=clock or (lambda: datetime.now(UTC)),
    )


def workflow_starter() -> WorkflowStarter:
    """The invoice workflow's starter: all the schedule's target needs."""
    arn = os.environ.get(STATE_MACHINE_ENV)
    if not arn:
        raise RuntimeError(f"this function needs {STATE_MACHINE_ENV} in its environment")
    return WorkflowStarter(_client("stepfunctions"), arn)


def spend_alerts(env: Environment | None = None) -> SpendAlerts:
    """The spend-alerts service; refuses to start on a thresholds setting it cannot read."""
    env = env or Environment.read()
    dynamodb = _client("dynamodb")
    return SpendAlerts(
        config=ConfigStore(dynamodb, env.config_table),
        claims=AlertClaims(dynamodb, env.ledger_table),
        events=EventPublisher(_client("events"), env.need("event_bus_name")),
        thresholds=SpendThresholds.parse(env.spend_alert_thresholds),
    )
