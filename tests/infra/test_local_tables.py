"""The local runtime's tables are the deployed tables: same keys, TTL and stream."""

from __future__ import annotations

from typing import Any

from billing.settings import CUSTOMER_KEYS_TABLE, TABLES
from billing_cli.local.provision import create_table, create_tables
from tests.infra.conftest import logical_id


class RecordingDynamoDB:
    """Stands in for the DynamoDB client: keeps what provisioning asked for."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, Any]] = {}
        self.ttl: dict[str, dict[str, Any]] = {}

    def create_table(self, **request: Any) -> None:
        self.tables[request["TableName"]] = request

    def update_time_to_live(self, **request: Any) -> None:
        self.ttl[request["TableName"]] = request["TimeToLiveSpecification"]


def test_local_tables_match_the_stacks_keys_ttl_and_stream(resources: dict[str, Any]) -> None:
    # GIVEN the requests the local runtime sends to provision its tables
    client = RecordingDynamoDB()
    names = create_tables(client, "billing")

    for spec in TABLES:
        local = client.tables[names[spec.env_var]]
        deployed = resources[
            logical_id(resources, "AWS::DynamoDB::Table", f"Tables{spec.construct_id}")
        ]
        props = deployed["Properties"]
        # THEN keys, attribute types, billing mode, stream and TTL agree with the stack's
        assert local["KeySchema"] == props["KeySchema"]
        assert sorted(local["AttributeDefinitions"], key=str) == sorted(
            props["AttributeDefinitions"], key=str
        )
        assert local["BillingMode"] == props["BillingMode"]
        if spec.stream:
            assert local["StreamSpecification"]["StreamEnabled"] is True
            assert (
                local["StreamSpecification"]["StreamViewType"]
                == props["StreamSpecification"]["StreamViewType"]
            )
        else:
            assert "StreamSpecification" not in local
            assert "StreamSpecification" not in props
        local_ttl = client.ttl.get(names[spec.env_var])
        assert local_ttl == props.get("TimeToLiveSpecification"), spec.construct_id
    assert any(spec.stream for spec in TABLES)
    assert any(spec.ttl_attribute for spec in TABLES)


def test_the_local_customer_key_table_matches_the_stacks(resources: dict[str, Any]) -> None:
    # GIVEN the request the local runtime sends for the customer keys table
    client = RecordingDynamoDB()
    create_table(client, CUSTOMER_KEYS_TABLE, "keys")
    local = client.tables["keys"]
    props = resources[logical_id(resources, "AWS::DynamoDB::Table", "CustomerApiCustomerKeys")][
        "Properties"
    ]

    # THEN keys, the account index and the TTL agree with the stack's
    assert local["KeySchema"] == props["KeySchema"]
    assert sorted(local["AttributeDefinitions"], key=str) == sorted(
        props["AttributeDefinitions"], key=str
    )
    [index] = local["GlobalSecondaryIndexes"]
    [deployed] = props["GlobalSecondaryIndexes"]
    assert index["IndexName"] == deployed["IndexName"]
    assert index["KeySchema"] == deployed["KeySchema"]
    assert index["Projection"]["ProjectionType"] == deployed["Projection"]["ProjectionType"]
    assert sorted(index["Projection"]["NonKeyAttributes"]) == sorted(
        deployed["Projection"]["NonKeyAttributes"]
    )
    assert client.ttl["keys"] == props["TimeToLiveSpecification"]
