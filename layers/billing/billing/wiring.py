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
from billing.corrections.credit_notes import CreditNotes
from billing.customer.account_views import AccountViews
from billing.customer.authorizer import KeyAuthorizer
from billing.customer.customer_alerts import CustomerAlerts
from billing.customer.customer_views import CustomerViews
from billing.customer.spend_alerts import SpendAlerts
from billing.invoicing.delivery import Delivery
from billing.invoicing.due import DEFAULT_GRACE, ListDue
from billing.invoicing.due_index import DueIndex
from billing.invoicing.feedback import EmailFeedback
from billing.invoicing.issue import IssueInvoices
from billing.invoicing.pacing import Pacing, SharedRate
from billing.invoicing.report import ReportRun
from billing.invoicing.send import SendInvoices
from billing.operator.config_api import OperatorConfig
from billing.rating.rejection_summaries import RaterSettings, RejectionSummaries
from billing.rating.service import RatingService
from billing.settings import (
    AccountViewSettings,
    CustomerApiSettings,
    CustomerAuthorizerSettings,
    EmailFeedbackSettings,
    InvoicingSettings,
    OperatorApiSettings,
    RatingSettings,
    ReportSettings,
    SpendAlertSettings,
    StarterSettings,
    WarehouseFeedSettings,
)
from billing.store.alert_claims import AlertClaims
from billing.store.alert_notices import AlertNotices
from billing.store.api_keys import ApiKeys
from billing.store.bucket_objects import BucketObjects
from billing.store.config_store import ConfigStore
from billing.store.credit_notes import CreditNoteStore
from billing.store.customer_thresholds import ThresholdsStore
from billing.store.documents import DocumentStore
from billing.store.due_hints import DueHints
from billing.store.events import EventPublisher
from billing.store.invoice_store import InvoiceStore
from billing.store.ledger_store import LedgerStore
from billing.store.mailer import NO_RETRIES, Mailer, SendQuota
from billing.store.quarantine import Quarantine
from billing.store.row_streams import RowStreams
from billing.store.run_files import RunFiles
from billing.store.webhook_endpoints import WebhookEndpoints, WebhookSecrets, secret_prefix
from billing.store.webhook_queue import WebhookQueue
from billing.store.workflows import WorkflowStarter
from billing.warehouse.feed import WarehouseFeed
from billing.webhooks.delivery import Deliverer, public_http_post
from billing.webhooks.settings import WebhookSettings

# Throttling is retried with backoff by the SDK first; what still fails is reported.
RETRIES = Config(retries={"mode": "adaptive", "max_attempts": 10})


def _client(service: str) -> Any:
    return boto3.client(service, config=RETRIES)


def rating_service(settings: RatingSettings | None = None) -> RatingService:
    settings = settings or RaterSettings.read()
    bus = settings.event_bus_name if isinstance(settings, RaterSettings) else None
    dynamodb = _client("dynamodb")
    return RatingService(
        config=ConfigStore(dynamodb, settings.config_table),
        ledgers=LedgerStore(dynamodb, settings.ledger_table),
        quarantine=Quarantine(_client("s3"), settings.quarantine_bucket),
        hints=DueHints(dynamodb, settings.ledger_table),
        summaries=RejectionSummaries(EventPublisher(_client("events"), bus)) if bus else None,
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
        step_service = service()
        if isinstance(step_service, IssueInvoices | SendInvoices):  # they pace to a deadline
            return step_service.handle(event, seconds_left(context))
        return step_service.handle(event)

    handler.service = service  # type: ignore[attr-defined]  # tests and the local runtime reset it
    handler.logger = logger  # type: ignore[attr-defined]
    return handler


def seconds_left(context: Any) -> float | None:
    """The time Lambda leaves this invocation, in seconds; None where the context does not
    say (the local runtime's)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return None if remaining is None else remaining() / 1000


def email_pacing(settings: InvoicingSettings) -> Pacing:
    """The pace of a batch's emails: its share of the account's SES send rate."""
    quota = SendQuota(_client("sesv2"))  # a read: the SDK may retry it
    return Pacing(
        rate=SharedRate(
            quota.max_send_rate,
            concurrency=settings.run_concurrency,
            configured=settings.ses_max_send_rate,
        )
    )


def invoice_run(
    step: str, settings: InvoicingSettings | None = None, logger: Logger | None = None
) -> ListDue | IssueInvoices | SendInvoices:
    """The service of one step of the invoice run, on the stores that step calls."""
    settings = settings or InvoicingSettings.read()
    dynamodb = _client("dynamodb")
    config = ConfigStore(dynamodb, settings.config_table)
    invoices = InvoiceStore(dynamodb, settings.invoices_table)
    if step == "due":
        hints = DueHints(dynamodb, settings.ledger_table)
        seconds = settings.grace_seconds
        grace = DEFAULT_GRACE if seconds is None else timedelta(seconds=seconds)
        return ListDue(
            config=config,
            invoices=invoices,
            hints=hints,
            files=RunFiles(_client("s3"), settings.run_bucket),
            grace=grace,
            max_concurrency=settings.run_concurrency,
        )
    log = logger or Logger(service=step)
    delivery = _delivery(settings, invoices)
    if step == "issue":
        ledgers = LedgerStore(dynamodb, settings.ledger_table)
        return IssueInvoices(config=config, ledgers=ledgers, delivery=delivery, log=log)
    if step == "send":
        notes = CreditNotes(
            config=config,
            invoices=invoices,
            notes=CreditNoteStore(dynamodb, settings.invoices_table),
            delivery=delivery,
        )
        return SendInvoices(config=config, delivery=delivery, log=log, corrections=notes.handle)
    raise ValueError(f"the invoice run has no step {step!r}")


def _delivery(settings: InvoicingSettings, invoices: InvoiceStore) -> Delivery:
    """How Issue and Send (and a credit note) store, announce and email a document."""
    sender = settings.sender_email
    return Delivery(
        invoices=invoices,
        documents=DocumentStore(
            _client("s3"), settings.invoice_bucket, settings.invoice_kms_key_id
        ),
        events=EventPublisher(_client("events"), settings.event_bus_name),
        mailer=Mailer(
            boto3.client("sesv2", config=NO_RETRIES), sender, settings.ses_configuration_set
        ),
        issuer=SellerSettings.parse(settings.seller).issuer(sender),
        pacing=email_pacing(settings),
    )


def run_report(settings: ReportSettings | None = None, logger: Logger | None = None) -> ReportRun:
    """The invoice run's Report step, on the run bucket."""
    settings = settings or ReportSettings.read()
    files = RunFiles(_client("s3"), settings.run_bucket)
    return ReportRun(files=files, log=logger or Logger(service="report_run"))


def email_feedback(settings: EmailFeedbackSettings | None = None) -> EmailFeedback:
    """The email_events service: SES's deliveries, bounces and complaints onto the records
    of invoices and of correction documents (credit notes, adjustment invoices)."""
    settings = settings or EmailFeedbackSettings.read()
    dynamodb = _client("dynamodb")
    return EmailFeedback(
        invoices=InvoiceStore(dynamodb, settings.invoices_table),
        documents=CreditNoteStore(dynamodb, settings.invoices_table),
        events=EventPublisher(_client("events"), settings.event_bus_name),
    )


def account_views(
    settings: AccountViewSettings | None = None, clock: Callable[[], datetime] | None = None
) -> AccountViews:
    """The usage API's service: reads only (config, ledger, invoice records and documents,
    credit notes)."""
    settings = settings or AccountViewSettings.read()
    dynamodb = _client("dynamodb")
    return AccountViews(
        config=ConfigStore(dynamodb, settings.config_table),
        ledgers=LedgerStore(dynamodb, settings.ledger_table),
        invoices=InvoiceStore(dynamodb, settings.invoices_table),
        documents=DocumentStore(_client("s3"), settings.invoice_bucket),
        clock=clock or (lambda: datetime.now(UTC)),
        credit_notes=CreditNoteStore(dynamodb, settings.invoices_table),
    )


def operator_config(
    settings: OperatorApiSettings | None = None, clock: Callable[[], datetime] | None = None
) -> OperatorConfig:
    """The operator API's service: the catalog and the accounts, and the accounts' due
    hints a write keeps as a push does."""
    settings = settings or OperatorApiSettings.read()
    dynamodb = _client("dynamodb")
    return OperatorConfig(
        config=ConfigStore(dynamodb, settings.config_table),
        due_index=DueIndex(
            hints=DueHints(dynamodb, settings.ledger_table),
            invoices=InvoiceStore(dynamodb, settings.invoices_table),
        ),
        clock=clock or (lambda: datetime.now(UTC)),
    )


def customer_views(
    settings: CustomerApiSettings | None = None, clock: Callable[[], datetime] | None = None
) -> CustomerViews:
    """The customer API's service: the account views' reads, the customer's thresholds, and
    links to invoice PDFs (signed with SigV4, which S3 needs for KMS-encrypted objects)."""
    settings = settings or CustomerApiSettings.read()
    dynamodb = _client("dynamodb")
    s3 = boto3.client("s3", config=RETRIES.merge(Config(signature_version="s3v4")))
    now = clock or (lambda: datetime.now(UTC))
    documents = DocumentStore(s3, settings.invoice_bucket)
    views = AccountViews(
        config=ConfigStore(dynamodb, settings.config_table),
        ledgers=LedgerStore(dynamodb, settings.ledger_table),
        invoices=InvoiceStore(dynamodb, settings.invoices_table),
        documents=documents,
        clock=now,
        credit_notes=CreditNoteStore(dynamodb, settings.invoices_table),
    )
    return CustomerViews(
        views=views,
        thresholds=ThresholdsStore(dynamodb, settings.config_table),
        links=documents,
        clock=now,
    )


def workflow_starter(settings: StarterSettings | None = None) -> WorkflowStarter:
    """The invoice workflow's starter: all the schedule's target needs."""
    settings = settings or StarterSettings.read()
    return WorkflowStarter(_client("stepfunctions"), settings.state_machine_arn)


def spend_alerts(settings: SpendAlertSettings | None = None) -> SpendAlerts:
    """The spend-alerts service; refuses to start on a thresholds setting it cannot read.
    Customers' alerts are emailed as invoices are: from the sender, through the
    configuration set, on an SES client that never retries a send by itself."""
    settings = settings or SpendAlertSettings.read()
    dynamodb = _client("dynamodb")
    events = EventPublisher(_client("events"), settings.event_bus_name)
    sender = settings.sender_email
    customer = CustomerAlerts(
        thresholds=ThresholdsStore(dynamodb, settings.config_table),
        claims=AlertNotices(dynamodb, settings.ledger_table),
        events=events,
        mailer=Mailer(
            boto3.client("sesv2", config=NO_RETRIES),
            sender,
            settings.ses_configuration_set,
            what="spend alert email",
        ),
        issuer=SellerSettings.parse(settings.seller).issuer(sender),
    )
    return SpendAlerts(
        config=ConfigStore(dynamodb, settings.config_table),
        claims=AlertClaims(dynamodb, settings.ledger_table),
        events=events,
        thresholds=SpendThresholds.parse(settings.spend_alert_thresholds),
        customer=customer,
    )


def customer_authorizer(
    settings: CustomerAuthorizerSettings | None = None,
    clock: Callable[[], datetime] | None = None,
) -> KeyAuthorizer:
    """The customer API's authorizer: one read of the key table per credential judged."""
    settings = settings or CustomerAuthorizerSettings.read()
    return KeyAuthorizer(
        keys=ApiKeys(_client("dynamodb"), settings.customer_keys_table),
        cache_seconds=settings.authorizer_cache_seconds,
        **({"clock": clock} if clock is not None else {}),
    )


def warehouse_feed(settings: WarehouseFeedSettings | None = None) -> WarehouseFeed:
    """The warehouse_rows service: new invoice and quarantine documents as rows put to the
    warehouse's delivery streams (docs/warehouse.md)."""
    settings = settings or WarehouseFeedSettings.read()
    s3, dynamodb = _client("s3"), _client("dynamodb")
    return WarehouseFeed(
        invoice_bucket=settings.invoice_bucket,
        invoices=BucketObjects(s3, settings.invoice_bucket),
        quarantine_bucket=settings.quarantine_bucket,
        quarantine=BucketObjects(s3, settings.quarantine_bucket),
        ledgers=LedgerStore(dynamodb, settings.ledger_table),
        config=ConfigStore(dynamodb, settings.config_table),
        streams=RowStreams(_client("firehose"), settings.streams()),
    )


def webhook_deliverer(settings: WebhookSettings | None = None) -> tuple[Deliverer, WebhookQueue]:
    """The webhook deliverer and its queue: endpoints from the config table, secrets from
    Secrets Manager (only those under the deployment's prefix, which its role is limited
    to), and POSTs to https URLs on public addresses only (checked before each one)."""
    settings = settings or WebhookSettings.read()
    secrets = WebhookSecrets(_client("secretsmanager"), secret_prefix(settings.config_table))
    endpoints = WebhookEndpoints(_client("dynamodb"), settings.config_table)
    queue = WebhookQueue(_client("sqs"), settings.webhook_queue_url)
    return Deliverer(endpoints=endpoints, secrets=secrets, post=public_http_post), queue
