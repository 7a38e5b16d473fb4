"""email_events: SES's deliveries, bounces and complaints of invoice, credit note and
adjustment invoice emails, from the configuration set's event destination (EventBridge),
recorded on the document's record and published.

Thin on purpose: `billing.invoicing.feedback` does the work. An error fails the invocation;
EventBridge's asynchronous invoke retries it, then keeps it in the failure queue
(alarmed). Handling the same event twice records and publishes it once.
"""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from billing import wiring
from billing.invoicing.feedback import EmailFeedback

logger = Logger(service="email_events")


@functools.cache
def service() -> EmailFeedback:
    return wiring.email_feedback()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    recorded = service().handle(event.get("detail") or {})
    # Which document and what happened, never the address.
    logger.info("email feedback", extra={"recorded": recorded})
    return {"recorded": recorded}
