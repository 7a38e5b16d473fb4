"""warehouse_records: Firehose's Lambda processor for the warehouse's `raw_usage` table
(docs/warehouse.md). Each record of the usage stream becomes its row, one JSON object a
line, which Firehose converts to Parquet with the Glue table's schema: no Parquet library
runs here."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from billing.rating.archive import process_firehose_records
from billing.warehouse.rows import raw_usage_line

logger = Logger(service="warehouse_records")


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = process_firehose_records(event, raw_usage_line)
    failed = sum(1 for record in response["records"] if record["result"] != "Ok")
    logger.info("rows made", extra={"records": len(response["records"]), "failed": failed})
    return response
