"""Create the project's tables and buckets on any AWS-compatible endpoint (moto locally),
from the same declarations the CDK stack uses."""

from __future__ import annotations

from typing import Any

from billing.settings import TABLES, TableSpec


def create_table(client: Any, spec: TableSpec, name: str) -> None:
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": [
            {"AttributeName": spec.partition_key, "KeyType": "HASH"},
            {"AttributeName": spec.sort_key, "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": spec.partition_key, "AttributeType": "S"},
            {"AttributeName": spec.sort_key, "AttributeType": "S"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }
    for index in spec.indexes:
        request["AttributeDefinitions"] += [
            {"AttributeName": index.partition_key, "AttributeType": "S"},
            {"AttributeName": index.sort_key, "AttributeType": "S"},
        ]
        request.setdefault("GlobalSecondaryIndexes", []).append(
            {
                "IndexName": index.name,
                "KeySchema": [
                    {"AttributeName": index.partition_key, "KeyType": "HASH"},
                    {"AttributeName": index.sort_key, "KeyType": "RANGE"},
                ],
                "Projection": {
                    "ProjectionType": "INCLUDE",
                    "NonKeyAttributes": list(index.projected),
                }
                if index.projected
                else {"ProjectionType": "KEYS_ONLY"},
            }
        )
    if spec.stream:
        request["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
    client.create_table(**request)
    if spec.ttl_attribute:
        client.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
        )


def table_names(prefix: str) -> dict[str, str]:
    """Local table names by environment variable, e.g. LEDGER_TABLE -> billing-ledger."""
    return {spec.env_var: f"{prefix}-{spec.construct_id.lower()}" for spec in TABLES}


def create_tables(client: Any, prefix: str) -> dict[str, str]:
    names = table_names(prefix)
    for spec in TABLES:
        create_table(client, spec, names[spec.env_var])
    return names
