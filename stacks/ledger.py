"""The DynamoDB tables, from the declarations in billing.settings (the local runtime
provisions the same ones)."""

from __future__ import annotations

from aws_cdk import aws_dynamodb, aws_kms
from constructs import Construct

from billing.settings import CONFIG_TABLE, INVOICES_TABLE, LEDGER_TABLE, TABLES, TableSpec
from stacks.security import DataKeys
from stacks.settings import Stage

# What the ledger's stream carries to its consumers: a ledger before and after each write,
# so a consumer sees what changed (cli/billing_cli/local/provision.py provisions the same).
STREAM_VIEW: aws_dynamodb.StreamViewType = aws_dynamodb.StreamViewType.NEW_AND_OLD_IMAGES


def table(
    scope: Construct, spec: TableSpec, *, key: aws_kms.IKey, stage: Stage
) -> aws_dynamodb.Table:
    string = aws_dynamodb.AttributeType.STRING
    created = aws_dynamodb.Table(
        scope,
        spec.construct_id,
        partition_key=aws_dynamodb.Attribute(name=spec.partition_key, type=string),
        sort_key=aws_dynamodb.Attribute(name=spec.sort_key, type=string),
        billing_mode=aws_dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption=aws_dynamodb.TableEncryption.CUSTOMER_MANAGED,
        encryption_key=key,
        point_in_time_recovery_specification=aws_dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        time_to_live_attribute=spec.ttl_attribute,
        stream=STREAM_VIEW if spec.stream else None,
        deletion_protection=stage.is_production,
        removal_policy=stage.removal_policy,
    )
    for index in spec.indexes:
        created.add_global_secondary_index(
            index_name=index.name,
            partition_key=aws_dynamodb.Attribute(name=index.partition_key, type=string),
            sort_key=aws_dynamodb.Attribute(name=index.sort_key, type=string),
            projection_type=aws_dynamodb.ProjectionType.INCLUDE
            if index.projected
            else aws_dynamodb.ProjectionType.KEYS_ONLY,
            non_key_attributes=list(index.projected) or None,
        )
    return created


class Ledger(Construct):
    """The ledger (aggregates, running charges, dedupe state), the configuration (catalog and
    accounts) and the invoices with their number sequence."""

    def __init__(
        self, scope: Construct, construct_id: str, *, keys: DataKeys, stage: Stage
    ) -> None:
        super().__init__(scope, construct_id)
        # Invoice records under the invoice key; ledgers and configuration are state.
        key_of = {INVOICES_TABLE.construct_id: keys.invoices}
        tables = {
            spec.construct_id: table(
                self, spec, key=key_of.get(spec.construct_id, keys.state), stage=stage
            )
            for spec in TABLES
        }
        self.ledger = tables[LEDGER_TABLE.construct_id]
        self.config = tables[CONFIG_TABLE.construct_id]
        self.invoices = tables[INVOICES_TABLE.construct_id]

    def environment(self) -> dict[str, str]:
        """Every handler finds the tables through these variables (billing.wiring)."""
        return {
            LEDGER_TABLE.env_var: self.ledger.table_name,
            CONFIG_TABLE.env_var: self.config.table_name,
            INVOICES_TABLE.env_var: self.invoices.table_name,
        }
