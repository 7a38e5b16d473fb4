"""Each deployed function's environment, as the stack sets it, holds every setting its
handler reads (billing.settings): a variable the stack forgot would otherwise first stop
the function on AWS, at its cold start."""

from __future__ import annotations

from typing import Any

import pytest

from billing.rating.rejection_summaries import RaterSettings
from billing.settings import (
    AccountViewSettings,
    CustomerApiSettings,
    CustomerAuthorizerSettings,
    EmailFeedbackSettings,
    HandlerSettings,
    InvoicingSettings,
    ReportSettings,
    SpendAlertSettings,
    StarterSettings,
)
from billing.webhooks.settings import WebhookSettings
from tests.infra.test_stack import function_id

SETTINGS: dict[str, type[HandlerSettings]] = {
    "rate_usage": RaterSettings,
    "list_due": InvoicingSettings,
    "issue_invoices": InvoicingSettings,
    "send_invoices": InvoicingSettings,
    "report_run": ReportSettings,
    "email_events": EmailFeedbackSettings,
    "usage_api": AccountViewSettings,
    "customer_api": CustomerApiSettings,
    "customer_authorizer": CustomerAuthorizerSettings,
    "spend_alerts": SpendAlertSettings,
    "start_invoice_run": StarterSettings,
    "deliver_webhooks": WebhookSettings,
}


@pytest.mark.parametrize("function", sorted(SETTINGS))
def test_the_stack_sets_every_variable_the_functions_settings_need(
    resources: dict[str, Any], function: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (settings read this process's environment too: none of it may stand in for the stack)
    model = SETTINGS[function]
    for field in model.model_fields.values():
        monkeypatch.delenv(str(field.validation_alias), raising=False)
    # GIVEN the function's environment in the template (references stand for their values)
    variables = resources[function_id(resources, function)]["Properties"]["Environment"]
    environment = {
        name: value if isinstance(value, str) else "resolved at deploy"
        for name, value in variables["Variables"].items()
    }

    # WHEN its handler's settings are validated from it THEN nothing is missing or bad
    model.model_validate(environment)
