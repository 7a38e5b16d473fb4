"""archive_records: Firehose's Lambda processor for the raw archive. Each record of the usage
stream becomes one unambiguous line (`billing.rating.archive`): JSON with the record's bytes in
base64 and its shard and sequence number, so a record holding line breaks cannot pass for
several records when the archive is read back."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from billing.rating.archive import frame_firehose_records

logger = Logger(service="archive_records")


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = frame_firehose_records(event)
    failed = sum(1 for record in response["records"] if record["result"] != "Ok")
    logger.info("records framed", extra={"records": len(response["records"]), "failed": failed})
    return response
