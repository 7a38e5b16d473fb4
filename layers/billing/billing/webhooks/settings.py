"""deliver_webhooks' settings, read from its environment (as billing.settings' are)."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field

from billing.settings import ConfigTable, HandlerSettings

WEBHOOK_QUEUE_ENV: Final = "WEBHOOK_QUEUE_URL"
WebhookQueue = Annotated[str, Field(validation_alias=WEBHOOK_QUEUE_ENV, min_length=1)]


class WebhookSettings(HandlerSettings):
    """deliver_webhooks: the endpoints (config table), their secrets (Secrets Manager) and
    the queue whose messages it delays between attempts."""

    config_table: ConfigTable
    webhook_queue_url: WebhookQueue
