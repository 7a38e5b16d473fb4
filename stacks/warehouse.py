"""The warehouse (docs/warehouse.md): the usage and invoice tables in the Glue Data Catalog,
their Parquet files in a bucket of their own, and an Athena workgroup whose results are
encrypted whatever a query asks.

The tables are declared once (billing.warehouse.tables): the same columns the local writer
gives its Parquet files (billing_cli.warehouse). Their partitions are projected (`dt`, one
a day), so no crawler and no `MSCK REPAIR` is ever needed: a day's files are found as soon
as they are written under `warehouse/<table>/dt=YYYY-MM-DD/`.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack, aws_athena, aws_glue, aws_kms, aws_s3
from constructs import Construct

from billing.warehouse.tables import (
    GLUE_DATABASE,
    PARTITION_KEY,
    TABLES,
    WAREHOUSE_PREFIX,
    WarehouseTable,
)
from stacks.common import secure_bucket
from stacks.settings import Stage

# Partitions are projected from this day on (the project's first period) to today.
PROJECTION_START = "2026-01-01"
RESULTS_PREFIX = "athena-results/"
# A runaway query stops after scanning this much (the workgroup's per-query cutoff).
BYTES_SCANNED_CUTOFF = 100 * 1024**3
_PARQUET = {
    "input": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "output": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "serde": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
}


def database_name(stage: Stage) -> str:
    """One database per stage, so a dev and a prod stack share an account's catalog."""
    return f"{GLUE_DATABASE}_{stage.name}"


def workgroup_name(stage: Stage) -> str:
    return f"usage-billing-{stage.name}"


class Warehouse(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: aws_kms.IKey,
        access_logs: aws_s3.IBucket,
        stage: Stage,
    ) -> None:
        super().__init__(scope, construct_id)
        # Raw usage and invoice amounts side by side: a key of their own (DataKeys.warehouse).
        self.key = key
        self.bucket = secure_bucket(
            self,
            "Tables",
            key=self.key,
            access_logs=access_logs,
            stage=stage,
            lifecycle_rules=[
                aws_s3.LifecycleRule(
                    id="ForgetReplacedFiles",
                    prefix=WAREHOUSE_PREFIX,
                    noncurrent_version_expiration=Duration.days(30),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
        )
        self.results = secure_bucket(
            self,
            "QueryResults",
            key=self.key,
            access_logs=access_logs,
            stage=stage,
            lifecycle_rules=[
                aws_s3.LifecycleRule(
                    id="ExpireQueryResults",
                    expiration=Duration.days(30),
                    noncurrent_version_expiration=Duration.days(1),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
        )
        account = Stack.of(self).account
        self.database = aws_glue.CfnDatabase(
            self,
            "Database",
            catalog_id=account,
            database_input=aws_glue.CfnDatabase.DatabaseInputProperty(
                name=database_name(stage),
                description="Usage billing: raw usage, daily usage, invoices, rejected records",
            ),
        )
        self.tables = {table.name: self._table(table, stage) for table in TABLES}
        self.workgroup = aws_athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=workgroup_name(stage),
            description="Usage billing: the warehouse's queries, results encrypted",
            recursive_delete_option=not stage.is_production,
            work_group_configuration=aws_athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                # A query cannot choose another result location or no encryption.
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=BYTES_SCANNED_CUTOFF,
                engine_version=aws_athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="Athena engine version 3"
                ),
                result_configuration=aws_athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=self.results.s3_url_for_object(RESULTS_PREFIX),
                    expected_bucket_owner=account,
                    encryption_configuration=aws_athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=self.key.key_arn
                    ),
                ),
            ),
        )

    def _table(self, table: WarehouseTable, stage: Stage) -> aws_glue.CfnTable:
        location = self.bucket.s3_url_for_object(table.prefix)
        glue = aws_glue.CfnTable
        resource = glue(
            self,
            "".join(part.title() for part in table.name.split("_")) + "Table",
            catalog_id=Stack.of(self).account,
            database_name=database_name(stage),
            table_input=glue.TableInputProperty(
                name=table.name,
                description=table.description,
                table_type="EXTERNAL_TABLE",
                parameters={
                    "classification": "parquet",
                    "EXTERNAL": "TRUE",
                    "parquet.compression": "SNAPPY",
                    "projection.enabled": "true",
                    f"projection.{PARTITION_KEY}.type": "date",
                    f"projection.{PARTITION_KEY}.format": "yyyy-MM-dd",
                    f"projection.{PARTITION_KEY}.range": f"{PROJECTION_START},NOW",
                    f"projection.{PARTITION_KEY}.interval": "1",
                    f"projection.{PARTITION_KEY}.interval.unit": "DAYS",
                    "storage.location.template": f"{location}{PARTITION_KEY}=${{{PARTITION_KEY}}}/",
                },
                partition_keys=[
                    glue.ColumnProperty(
                        name=PARTITION_KEY, type="string", comment=table.partition_comment
                    )
                ],
                storage_descriptor=glue.StorageDescriptorProperty(
                    location=location,
                    input_format=_PARQUET["input"],
                    output_format=_PARQUET["output"],
                    serde_info=glue.SerdeInfoProperty(
                        serialization_library=_PARQUET["serde"],
                        parameters={"serialization.format": "1"},
                    ),
                    columns=[
                        glue.ColumnProperty(
                            name=column.name, type=column.glue_type(), comment=column.comment
                        )
                        for column in table.columns
                    ],
                ),
            ),
        )
        resource.add_dependency(self.database)
        return resource
