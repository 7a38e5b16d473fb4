"""The warehouse (docs/warehouse.md): the usage and invoice tables in the Glue Data Catalog,
their Parquet files in a bucket of their own, and an Athena workgroup whose results are
encrypted whatever a query asks.

The tables are declared once (billing.warehouse.tables): the same columns the local writer
gives its Parquet files (billing_cli.warehouse). Their partitions are projected (`dt`, one
a day), so no crawler and no `MSCK REPAIR` is ever needed: a day's files are found as soon
as they are written under `warehouse/<table>/dt=YYYY-MM-DD/`.
"""

from __future__ import annotations

from aws_cdk import (
    ArnFormat,
    Duration,
    Stack,
    aws_athena,
    aws_glue,
    aws_iam,
    aws_kinesis,
    aws_kinesisfirehose,
    aws_kms,
    aws_lambda,
    aws_logs,
    aws_s3,
)
from constructs import Construct

from billing.warehouse.tables import (
    GLUE_DATABASE,
    PARTITION_KEY,
    RAW_USAGE,
    TABLES,
    WAREHOUSE_PREFIX,
    WarehouseTable,
)
from stacks.common import (
    HandlerFunction,
    acknowledge,
    encrypted_log_group,
    logical_id,
    secure_bucket,
)
from stacks.settings import (
    WAREHOUSE_BUFFER_MB,
    WAREHOUSE_BUFFER_SECONDS,
    WAREHOUSE_RECORDS,
    Stage,
)

# Partitions are projected from this day on (the project's first period) to today.
PROJECTION_START = "2026-01-01"
RESULTS_PREFIX = "athena-results/"
# What Firehose could not convert (a row the table's schema refuses) or deliver.
ERRORS_PREFIX = "warehouse-errors/"
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
        stream: aws_kinesis.IStream,
        stream_key: aws_kms.IKey,
        state_key: aws_kms.IKey,
        layer: aws_lambda.ILayerVersion,
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
        self.database_name = database_name(stage)
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

        self._raw_usage_delivery(
            stream=stream, stream_key=stream_key, state_key=state_key, layer=layer, stage=stage
        )
        self.query_policy = self._query_policy()

    def _query_policy(self) -> aws_iam.ManagedPolicy:
        """What a principal needs to query the tables in the workgroup, and nothing more:
        attach it to finance's and operators' roles (docs/warehouse.md, "Who may query")."""
        stack = Stack.of(self)
        workgroup = stack.format_arn(
            service="athena", resource="workgroup", resource_name=self.workgroup.ref
        )
        glue = [
            stack.format_arn(
                service="glue", resource="catalog", arn_format=ArnFormat.NO_RESOURCE_NAME
            ),
            stack.format_arn(service="glue", resource="database", resource_name=self.database_name),
            stack.format_arn(
                service="glue", resource="table", resource_name=f"{self.database_name}/*"
            ),
        ]
        results = self.results.arn_for_objects(f"{RESULTS_PREFIX}*")
        statement = aws_iam.PolicyStatement
        policy = aws_iam.ManagedPolicy(
            self,
            "QueryPolicy",
            description="Query the usage billing warehouse with Athena, in its workgroup",
            statements=[
                statement(
                    sid="QueryInTheWorkgroup",
                    actions=[
                        "athena:GetWorkGroup",
                        "athena:StartQueryExecution",
                        "athena:GetQueryExecution",
                        "athena:GetQueryResults",
                        "athena:StopQueryExecution",
                    ],
                    resources=[workgroup],
                ),
                statement(
                    sid="ReadTheTables",
                    actions=["glue:GetDatabase", "glue:GetTable", "glue:GetTables"],
                    resources=glue,
                ),
                statement(
                    sid="ReadTheTablesFiles",
                    actions=["s3:GetObject"],
                    resources=[self.bucket.arn_for_objects(f"{WAREHOUSE_PREFIX}*")],
                ),
                statement(
                    sid="ListTheTablesFiles",
                    actions=["s3:ListBucket", "s3:GetBucketLocation"],
                    resources=[self.bucket.bucket_arn],
                ),
                statement(
                    sid="WriteAndReadResults",
                    actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
                    resources=[results],
                ),
                statement(
                    sid="ListResults",
                    actions=["s3:ListBucket", "s3:GetBucketLocation"],
                    resources=[self.results.bucket_arn],
                ),
                statement(
                    sid="UseTheWarehouseKeyThroughS3",
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=[self.key.key_arn],
                    conditions={
                        "StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}
                    },
                ),
            ],
        )
        for resource in (
            f"Resource::<{logical_id(self.bucket)}.Arn>/{WAREHOUSE_PREFIX}*",
            f"Resource::<{logical_id(self.results)}.Arn>/{RESULTS_PREFIX}*",
            f"Resource::arn:<AWS::Partition>:glue:<AWS::Region>:<AWS::AccountId>:table/"
            f"{self.database_name}/*",
        ):
            acknowledge(
                policy,
                f"AwsSolutions::AwsSolutions-IAM5[{resource}]",
                "A query reads any of the warehouse's tables and files and writes results "
                "under prefixes Athena chooses: only this database, this bucket's tables and "
                "the results prefix",
            )
        return policy

    def _raw_usage_delivery(
        self,
        *,
        stream: aws_kinesis.IStream,
        stream_key: aws_kms.IKey,
        state_key: aws_kms.IKey,
        layer: aws_lambda.ILayerVersion,
        stage: Stage,
    ) -> None:
        """raw_usage's writer: a delivery stream reading the usage stream (beside the raw
        archive's), each record made its row by warehouse_records, converted to Parquet with
        the Glue table's schema and written under the table's prefix, a partition a day."""
        self.processor = HandlerFunction(
            self,
            "WarehouseRecords",
            settings=WAREHOUSE_RECORDS,
            layer=layer,
            key=state_key,
            stage=stage,
            environment={},
        )
        self.delivery_errors = encrypted_log_group(self, "DeliveryLogs", key=state_key, stage=stage)
        self.delivery_log = log_stream = aws_logs.LogStream(
            self,
            "RawUsageDeliveryLog",
            log_group=self.delivery_errors,
            removal_policy=stage.removal_policy,
        )
        self.delivery_role = aws_iam.Role(
            self,
            "DeliveryRole",
            assumed_by=aws_iam.ServicePrincipal(
                "firehose.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            ),
            description="Firehose writes the warehouse's raw_usage table with this role",
        )
        policy = aws_iam.Policy(
            self,
            "DeliveryPolicy",
            roles=[self.delivery_role],
            statements=self._delivery_statements(stream, stream_key, log_stream),
        )
        self.raw_usage_stream = self._delivery_stream(stream, stage)
        # Firehose checks its role when the delivery stream is created.
        self.raw_usage_stream.node.add_dependency(policy)
        acknowledge(
            self.raw_usage_stream,
            "AwsSolutions::AwsSolutions-KDF1",
            "A delivery stream reading a Kinesis stream cannot have server-side encryption "
            "of its own; records are encrypted with the raw-usage key in the stream and with "
            "the warehouse key in the warehouse bucket",
        )
        for prefix in (RAW_USAGE.prefix, ERRORS_PREFIX):
            acknowledge(
                policy,
                "AwsSolutions::AwsSolutions-IAM5"
                f"[Resource::<{logical_id(self.bucket)}.Arn>/{prefix}*]",
                "Firehose writes objects under prefixes of its own choosing (the day, the "
                "error type) below the table's prefix and the errors' prefix",
            )

    def _delivery_statements(
        self, stream: aws_kinesis.IStream, stream_key: aws_kms.IKey, log_stream: aws_logs.LogStream
    ) -> list[aws_iam.PolicyStatement]:
        """What Firehose's documentation lists for a Kinesis source, a Lambda processor,
        record format conversion (the Glue table) and an S3 destination; nothing more."""
        stack = Stack.of(self)
        function_arn = self.processor.function.function_arn
        statement = aws_iam.PolicyStatement
        return [
            statement(
                sid="ReadTheUsageStream",
                actions=[
                    "kinesis:DescribeStream",
                    "kinesis:GetShardIterator",
                    "kinesis:GetRecords",
                    "kinesis:ListShards",
                ],
                resources=[stream.stream_arn],
            ),
            statement(
                sid="DecryptTheUsageStream",
                actions=["kms:Decrypt"],
                resources=[stream_key.key_arn],
                conditions={
                    "StringEquals": {
                        "kms:ViaService": f"kinesis.{stack.region}.amazonaws.com",
                        "kms:EncryptionContext:aws:kinesis:arn": stream.stream_arn,
                    }
                },
            ),
            statement(
                sid="MakeEachRow",
                actions=["lambda:InvokeFunction", "lambda:GetFunctionConfiguration"],
                resources=[function_arn, f"{function_arn}:$LATEST"],
            ),
            *self.destination_statements(
                [RAW_USAGE], self.delivery_errors, log_stream, sid_prefix=""
            ),
        ]

    def destination_statements(
        self,
        tables: list[WarehouseTable],
        log_group: aws_logs.ILogGroup,
        log_stream: aws_logs.LogStream,
        *,
        sid_prefix: str,
    ) -> list[aws_iam.PolicyStatement]:
        """What a delivery stream's role needs to convert rows with these tables' schemas
        and write them, and its errors, to the warehouse bucket; nothing more."""
        stack = Stack.of(self)
        s3_via = f"s3.{stack.region}.amazonaws.com"
        glue = [
            stack.format_arn(
                service="glue", resource="catalog", arn_format=ArnFormat.NO_RESOURCE_NAME
            ),
            stack.format_arn(service="glue", resource="database", resource_name=self.database_name),
            *(
                stack.format_arn(
                    service="glue",
                    resource="table",
                    resource_name=f"{self.database_name}/{table.name}",
                )
                for table in tables
            ),
        ]
        statement = aws_iam.PolicyStatement
        return [
            statement(
                sid=sid_prefix + "ReadTheTableSchema",
                actions=["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"],
                resources=glue,
            ),
            statement(
                sid=sid_prefix + "FindTheWarehouseBucket",
                actions=[
                    "s3:GetBucketLocation",
                    "s3:ListBucket",
                    "s3:ListBucketMultipartUploads",
                ],
                resources=[self.bucket.bucket_arn],
            ),
            statement(
                sid=sid_prefix + "WriteTableFiles",
                actions=["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
                resources=[
                    *(self.bucket.arn_for_objects(f"{table.prefix}*") for table in tables),
                    self.bucket.arn_for_objects(f"{ERRORS_PREFIX}*"),
                ],
            ),
            statement(
                sid=sid_prefix + "EncryptTableFiles",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[self.key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": s3_via},
                    # With an S3 Bucket Key the context is the bucket's ARN.
                    "StringLike": {
                        "kms:EncryptionContext:aws:s3:arn": [
                            self.bucket.bucket_arn,
                            self.bucket.arn_for_objects("*"),
                        ]
                    },
                },
            ),
            statement(
                sid=sid_prefix + "LogDeliveryErrors",
                actions=["logs:PutLogEvents"],
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name=(
                            f"{log_group.log_group_name}:log-stream:{log_stream.log_stream_name}"
                        ),
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            ),
        ]

    def conversion(
        self, table: WarehouseTable, role_arn: str
    ) -> aws_kinesisfirehose.CfnDeliveryStream.DataFormatConversionConfigurationProperty:
        """Rows as JSON to Parquet (SNAPPY) with the Glue table's schema. The Hive JSON
        deserializer, without formats of its own, reads a timestamp as
        `java.sql.Timestamp.valueOf` does (`YYYY-MM-DD HH:MM:SS.fffffffff`), every value
        from its text (a decimal string never passes through a double), and skips a key
        that names no column (`dt`)."""
        cfn = aws_kinesisfirehose.CfnDeliveryStream
        stack = Stack.of(self)
        return cfn.DataFormatConversionConfigurationProperty(
            enabled=True,
            input_format_configuration=cfn.InputFormatConfigurationProperty(
                deserializer=cfn.DeserializerProperty(hive_json_ser_de=cfn.HiveJsonSerDeProperty())
            ),
            output_format_configuration=cfn.OutputFormatConfigurationProperty(
                serializer=cfn.SerializerProperty(
                    parquet_ser_de=cfn.ParquetSerDeProperty(compression="SNAPPY")
                )
            ),
            schema_configuration=cfn.SchemaConfigurationProperty(
                catalog_id=stack.account,
                database_name=self.database_name,
                table_name=table.name,
                region=stack.region,
                role_arn=role_arn,
                version_id="LATEST",
            ),
        )

    def _delivery_stream(
        self, stream: aws_kinesis.IStream, stage: Stage
    ) -> aws_kinesisfirehose.CfnDeliveryStream:
        cfn = aws_kinesisfirehose.CfnDeliveryStream
        role_arn = self.delivery_role.role_arn
        return cfn(
            self,
            "RawUsageDelivery",
            delivery_stream_type="KinesisStreamAsSource",
            kinesis_stream_source_configuration=cfn.KinesisStreamSourceConfigurationProperty(
                kinesis_stream_arn=stream.stream_arn, role_arn=role_arn
            ),
            extended_s3_destination_configuration=cfn.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=self.bucket.bucket_arn,
                role_arn=role_arn,
                # The record's arrival on the stream, as the raw archive's hours are.
                prefix=f"{RAW_USAGE.prefix}{PARTITION_KEY}=!{{timestamp:yyyy-MM-dd}}/",
                error_output_prefix=(
                    f"{ERRORS_PREFIX}{RAW_USAGE.name}/!{{firehose:error-output-type}}/"
                    "!{timestamp:yyyy/MM/dd}/"
                ),
                buffering_hints=cfn.BufferingHintsProperty(
                    interval_in_seconds=WAREHOUSE_BUFFER_SECONDS, size_in_m_bs=WAREHOUSE_BUFFER_MB
                ),
                # Parquet compresses its own pages (SNAPPY); Firehose adds none on top.
                compression_format="UNCOMPRESSED",
                encryption_configuration=cfn.EncryptionConfigurationProperty(
                    kms_encryption_config=cfn.KMSEncryptionConfigProperty(
                        awskms_key_arn=self.key.key_arn
                    )
                ),
                cloud_watch_logging_options=cfn.CloudWatchLoggingOptionsProperty(
                    enabled=True,
                    log_group_name=self.delivery_errors.log_group_name,
                    log_stream_name=self.delivery_log.log_stream_name,
                ),
                processing_configuration=cfn.ProcessingConfigurationProperty(
                    enabled=True,
                    processors=[
                        cfn.ProcessorProperty(
                            type="Lambda",
                            parameters=[
                                cfn.ProcessorParameterProperty(
                                    parameter_name="LambdaArn",
                                    parameter_value=self.processor.function.function_arn,
                                )
                            ],
                        )
                    ],
                ),
                data_format_conversion_configuration=self.conversion(RAW_USAGE, role_arn),
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
        resource.node.add_dependency(self.database)
        return resource
