"""customer_authorizer: the customer API's Lambda REQUEST authorizer (identity source: the
Authorization header, `Bearer <credential>`).

Thin on purpose: `billing.customer.authorizer` judges the credential and writes the policy.
A refusal (missing, malformed, unknown, revoked, expired, a wrong secret) is the exception
whose message is exactly "Unauthorized", which API Gateway answers with 401; any other
failure (the key table unavailable) answers 500 and is not cached. The log names the
reason and the key id, never the credential nor its hash. See docs/customer-access.md.
"""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from billing import wiring
from billing.customer.authorizer import KeyAuthorizer, Unauthorized

logger = Logger(service="customer_authorizer")
tracer = Tracer(service="customer_authorizer")


@functools.cache
def service() -> KeyAuthorizer:
    return wiring.customer_authorizer()


# No `log_event`: the event holds the Authorization header.
@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        answer = service().authorize(event)
    except Unauthorized as refused:
        logger.info("key refused", extra={"reason": refused.reason, "key_id": refused.key_id})
        raise Exception("Unauthorized") from None  # API Gateway's word for 401
    logger.info("key accepted", extra={k: answer["context"][k] for k in ("key_id", "kind")})
    return answer
