"""warehouse_rows: a new invoice document or quarantine document (S3's Object Created,
through EventBridge) as rows of the warehouse's tables, put to their delivery streams
(docs/warehouse.md).

Thin on purpose: `billing.warehouse.feed` does the work. An error fails the invocation;
EventBridge's asynchronous invoke retries it, then keeps it in the failure queue (alarmed).
Handling the same event twice puts the same rows twice, which readers take once by key.
"""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from billing import wiring
from billing.warehouse.feed import WarehouseFeed

logger = Logger(service="warehouse_rows")


@functools.cache
def service() -> WarehouseFeed:
    return wiring.warehouse_feed()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    detail = event.get("detail") or {}
    bucket = str(detail.get("bucket", {}).get("name", ""))
    key = str(detail.get("object", {}).get("key", ""))
    rows = service().object_created(bucket, key)
    # Counts per table, never the rows (amounts, accounts).
    logger.info("warehouse rows put", extra={"rows": rows})
    return {"rows": rows}
