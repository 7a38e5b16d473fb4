"""Building the services from a handler's settings: one place for names and clients.

Handlers call these once per container (lazily, not at import), so tests and the local
runtime can set the environment first or pass their own collaborators instead. Each reads
its function's settings (billing.settings) from the environment unless given them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from botocore.config import Config

from billing.core.seller import SellerSettings
from billing.core.spend import SpendThresholds
from billing.customer.account_views import AccountViews
from billing.customer.spend_alerts import SpendAlerts
from billing.invoicing.feedback import EmailFeedback
from billing.invoicing.run import DEFAULT_GRACE, InvoiceRun
from billing.rating.service import RatingService
from billing.settings import (
    AccountViewSettings,
    EmailFeedbackSettings,
    InvoicingSettings,
    RatingSettings,
    SpendAlertSettings,
    StarterSettings,
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


def _client(service: str) -> Any:
    return boto3.client(service, config=RETRIES)


def rating_service(settings: RatingSettings | None = None) -> RatingService:
    settings = settings or RatingSettings.read()
    dynamodb = _client("dynamodb")
    return RatingService(
        config=ConfigStore(dynamodb, settings.config_table),
        ledgers=LedgerStore(dynamodb, settings.ledger_table),
        quarantine=Quarantine(_client("s3"), settings.quarantine_bucket),
    )


def invoice_step(step: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The handler of one invoice-workflow task: `InvoiceRun.<step>` on the event, with the
    service built once per container and Powertools logging and tracing around it."""
    logger = Logger(service=step)
    tracer = Tracer(service=step)
    run = functools.cache(invoice_run)

    @logger.inject_lambda_context
    @tracer.capture_lambda_handler
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        result: dict[str, Any] = getattr(run(), step)(event)
        return result

    handler.service = run  # type: ignore[attr-defined]  # tests and the local runtime reset it
    handler.logger = logger  # type: ignore[attr-defined]
    return handler


def invoice_run(settings: InvoicingSettings | None = None) -> InvoiceRun:
    settings = settings or InvoicingSettings.read()
    dynamodb = _client("dynamodb")
    sender = settings.sender_email
    grace = settings.grace_seconds
    return InvoiceRun(
        config=ConfigStore(dynamodb, settings.config_table),
        ledgers=LedgerStore(dynamodb, settings.ledger_table),
        invoices=InvoiceStore(dynamodb, settings.invoices_table),
        documents=DocumentStore(
            _client("s3"), settings.invoice_bucket, settings.invoice_kms_key_id
        ),
        events=EventPublisher(_client("events"), settings.event_bus_name),
        mailer=Mailer(
            boto3.client("sesv2", config=NO_RETRIES), sender, settings.ses_configuration_set
        ),
        issuer=SellerSettings.parse(settings.seller).issuer(sender),
        grace=DEFAULT_GRACE if grace is None else timedelta(seconds=grace),
    )


def email_feedback(settings: EmailFeedbackSettings | None = None) -> EmailFeedback:
    """The email_events service: SES's bounces and complaints onto invoice records."""
    settings = settings or EmailFeedbackSettings.read()
    return EmailFeedback(
        invoices=InvoiceStore(_client("dynamodb"), settings.invoices_table),
        events=EventPublisher(_client("events"), settings.event_bus_name),
    )


def account_views(
    settings: AccountViewSettings | None = None, clock: Callable[[], datetime] | None = None
) -> AccountViews:
    """The usage API's service: reads only (config, ledger, invoice records and documents)."""
    settings = settings or AccountViewSettings.read()
    dynamodb = _client("dynamodb")
    return AccountViews(
        config=ConfigStore(dynamodb, settings.config_table),
        ledgers=LedgerStore(dynamodb, settings.ledger_table),
        invoices=InvoiceStore(dynamodb, settings.invoices_table),
        documents=DocumentStore(_client("s3"), settings.invoice_bucket),
        clock=clock or (lambda: datetime.now(UTC)),
    )


def workflow_starter(settings: StarterSettings | None = None) -> WorkflowStarter:
    """The invoice workflow's starter: all the schedule's target needs."""
    settings = settings or StarterSettings.read()
    return WorkflowStarter(_client("stepfunctions"), settings.state_machine_arn)


def spend_alerts(settings: SpendAlertSettings | None = None) -> SpendAlerts:
    """The spend-alerts service; refuses to start on a thresholds setting it cannot read."""
    settings = settings or SpendAlertSettings.read()
    dynamodb = _client("dynamodb")
    return SpendAlerts(
        config=ConfigStore(dynamodb, settings.config_table),
        claims=AlertClaims(dynamodb, settings.ledger_table),
        events=EventPublisher(_client("events"), settings.event_bus_name),
        thresholds=SpendThresholds.parse(settings.spend_alert_thresholds),
    )
