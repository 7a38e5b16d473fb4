"""The warehouse in the synthesized stack (docs/warehouse.md): a Glue database and one table
per declared table (billing.warehouse.tables), Parquet, partitioned by `dt` with projected
partitions, over a KMS-encrypted bucket; and an Athena workgroup that enforces encrypted
results in an encrypted bucket."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from billing.warehouse.tables import TABLES

pytestmark = pytest.mark.infra


def one(template: Template, kind: str) -> tuple[str, dict[str, Any]]:
    found = template.find_resources(kind)
    assert len(found) == 1, sorted(found)
    ((name, resource),) = found.items()
    return name, resource["Properties"]


def warehouse_key(template: Template) -> str:
    keys = [
        name
        for name in template.find_resources("AWS::KMS::Key")
        if name.startswith("SecurityWarehouseKey")
    ]
    assert len(keys) == 1, keys
    return keys[0]


def bucket_of(resources: dict[str, Any], reference: Any) -> str:
    """The bucket a `Fn::Join` of an `s3://` URL names."""
    parts = reference["Fn::Join"][1]
    [bucket] = [part["Ref"] for part in parts if isinstance(part, dict) and "Ref" in part]
    assert resources[bucket]["Type"] == "AWS::S3::Bucket"
    return str(bucket)


def assert_encrypted_with(resources: dict[str, Any], bucket: str, key: str) -> None:
    encryption = resources[bucket]["Properties"]["BucketEncryption"]
    [rule] = encryption["ServerSideEncryptionConfiguration"]
    default = rule["ServerSideEncryptionByDefault"]
    assert default["SSEAlgorithm"] == "aws:kms"
    assert default["KMSMasterKeyID"] == {"Fn::GetAtt": [key, "Arn"]}
    assert rule["BucketKeyEnabled"] is True


def test_the_database_is_the_stages(template: Template) -> None:
    _, database = one(template, "AWS::Glue::Database")
    assert database["DatabaseInput"]["Name"] == "usage_billing_dev"


def test_every_declared_table_is_a_parquet_table_partitioned_by_day(template: Template) -> None:
    tables = {
        props["TableInput"]["Name"]: props
        for props in (r["Properties"] for r in template.find_resources("AWS::Glue::Table").values())
    }
    assert set(tables) == {table.name for table in TABLES}
    for declared in TABLES:
        table = tables[declared.name]
        assert table["DatabaseName"] == "usage_billing_dev"
        body = table["TableInput"]
        assert body["PartitionKeys"] == [
            {"Name": "dt", "Type": "string", "Comment": declared.partition_comment}
        ]
        storage = body["StorageDescriptor"]
        assert storage["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
        assert [(c["Name"], c["Type"]) for c in storage["Columns"]] == [
            (c.name, c.glue_type()) for c in declared.columns
        ]
        parameters = body["Parameters"]
        assert parameters["classification"] == "parquet"
        assert parameters["projection.enabled"] == "true"
        assert parameters["projection.dt.type"] == "date"
        assert parameters["projection.dt.format"] == "yyyy-MM-dd"


def test_money_and_quantities_are_decimal_never_floating_point(template: Template) -> None:
    types = {
        column["Type"]
        for resource in template.find_resources("AWS::Glue::Table").values()
        for column in resource["Properties"]["TableInput"]["StorageDescriptor"]["Columns"]
    }
    assert types == {"string", "bigint", "timestamp", "decimal(38,12)"}


def test_the_tables_files_lie_in_a_kms_encrypted_bucket(
    template: Template, resources: dict[str, Any]
) -> None:
    key = warehouse_key(template)
    buckets = set()
    for resource in template.find_resources("AWS::Glue::Table").values():
        body = resource["Properties"]["TableInput"]
        location = body["StorageDescriptor"]["Location"]
        buckets.add(bucket_of(resources, location))
        name = body["Name"]
        assert location["Fn::Join"][1][-1] == f"/warehouse/{name}/"
        template_parts = body["Parameters"]["storage.location.template"]["Fn::Join"][1]
        assert template_parts[-1] == f"/warehouse/{name}/dt=${{dt}}/"
    [bucket] = buckets
    assert_encrypted_with(resources, bucket, key)


def test_the_workgroup_enforces_kms_encrypted_results_in_an_encrypted_bucket(
    template: Template, resources: dict[str, Any]
) -> None:
    key = warehouse_key(template)
    _, workgroup = one(template, "AWS::Athena::WorkGroup")
    configuration = workgroup["WorkGroupConfiguration"]
    assert configuration["EnforceWorkGroupConfiguration"] is True
    results = configuration["ResultConfiguration"]
    assert results["EncryptionConfiguration"] == {
        "EncryptionOption": "SSE_KMS",
        "KmsKey": {"Fn::GetAtt": [key, "Arn"]},
    }
    assert_encrypted_with(resources, bucket_of(resources, results["OutputLocation"]), key)
    assert configuration["BytesScannedCutoffPerQuery"] > 0


def test_the_warehouse_key_rotates(template: Template, resources: dict[str, Any]) -> None:
    assert resources[warehouse_key(template)]["Properties"]["EnableKeyRotation"] is True


def test_raw_usage_is_written_by_firehose_converting_rows_with_the_glue_schema(
    template: Template, resources: dict[str, Any]
) -> None:
    streams = template.find_resources("AWS::KinesisFirehose::DeliveryStream")
    [props] = [r["Properties"] for n, r in streams.items() if n.startswith("WarehouseRawUsage")]
    destination = props["ExtendedS3DestinationConfiguration"]
    assert destination["BucketARN"]["Fn::GetAtt"][0].startswith("WarehouseTables")
    assert destination["Prefix"] == "warehouse/raw_usage/dt=!{timestamp:yyyy-MM-dd}/"
    assert destination["ErrorOutputPrefix"].startswith("warehouse-errors/raw_usage/")
    assert destination["EncryptionConfiguration"] == {
        "KMSEncryptionConfig": {"AWSKMSKeyARN": {"Fn::GetAtt": [warehouse_key(template), "Arn"]}}
    }
    # Parquet compresses itself; conversion needs a buffer of at least 64 MB
    assert destination["CompressionFormat"] == "UNCOMPRESSED"
    assert destination["BufferingHints"]["SizeInMBs"] >= 64
    conversion = destination["DataFormatConversionConfiguration"]
    assert conversion["Enabled"] is True
    # no timestamp formats: java.sql.Timestamp.valueOf's, which rows.conversion_line writes
    assert conversion["InputFormatConfiguration"]["Deserializer"] == {"HiveJsonSerDe": {}}
    assert conversion["OutputFormatConfiguration"]["Serializer"] == {
        "ParquetSerDe": {"Compression": "SNAPPY"}
    }
    schema = conversion["SchemaConfiguration"]
    assert (schema["DatabaseName"], schema["TableName"]) == ("usage_billing_dev", "raw_usage")
    [processor] = destination["ProcessingConfiguration"]["Processors"]
    [arn] = [
        p["ParameterValue"] for p in processor["Parameters"] if p["ParameterName"] == "LambdaArn"
    ]
    assert arn["Fn::GetAtt"][0].startswith("WarehouseWarehouseRecordsFunction")
    assert resources[arn["Fn::GetAtt"][0]]["Properties"]["Handler"] == "app.handler"


FED = {
    "invoices": "Invoices",
    "invoice_lines": "InvoiceLines",
    "daily_usage": "DailyUsage",
    "rejected_records": "RejectedRecords",
}


def test_the_other_tables_are_written_by_direct_put_streams_partitioned_by_the_rows_day(
    template: Template,
) -> None:
    streams = template.find_resources("AWS::KinesisFirehose::DeliveryStream")
    for table, construct in FED.items():
        [props] = [
            r["Properties"] for n, r in streams.items() if n.startswith(f"WarehouseFeed{construct}")
        ]
        assert props["DeliveryStreamType"] == "DirectPut"
        assert props["DeliveryStreamEncryptionConfigurationInput"] == {"KeyType": "AWS_OWNED_CMK"}
        destination = props["ExtendedS3DestinationConfiguration"]
        assert destination["Prefix"] == f"warehouse/{table}/dt=!{{partitionKeyFromQuery:dt}}/"
        assert destination["DynamicPartitioningConfiguration"]["Enabled"] is True
        [extraction] = destination["ProcessingConfiguration"]["Processors"]
        assert extraction["Type"] == "MetadataExtraction"
        assert {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{dt: .dt}"} in (
            extraction["Parameters"]
        )
        assert destination["EncryptionConfiguration"] == {
            "KMSEncryptionConfig": {
                "AWSKMSKeyARN": {"Fn::GetAtt": [warehouse_key(template), "Arn"]}
            }
        }
        schema = destination["DataFormatConversionConfiguration"]["SchemaConfiguration"]
        assert (schema["DatabaseName"], schema["TableName"]) == ("usage_billing_dev", table)


def test_new_invoice_and_quarantine_documents_reach_warehouse_rows_through_eventbridge(
    template: Template, resources: dict[str, Any]
) -> None:
    buckets = template.find_resources("AWS::S3::Bucket")
    for prefix in ("InvoicingInvoices", "IngestQuarantine"):
        [(name, bucket)] = [
            (n, b)
            for n, b in buckets.items()
            if n.startswith(prefix) and not n.startswith("InvoicingInvoiceRuns")
        ]
        notifications = bucket["Properties"]["NotificationConfiguration"]
        assert notifications == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}, name
    rules = template.find_resources("AWS::Events::Rule")
    [rule] = [
        r["Properties"] for n, r in rules.items() if n.startswith("WarehouseFeedNewDocuments")
    ]
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["object"]["key"] == [{"prefix": "invoices/"}, {"prefix": "rejected/"}]
    [target] = rule["Targets"]
    assert target["Arn"]["Fn::GetAtt"][0].startswith("WarehouseFeedWarehouseRowsFunction")
    # what the function still fails on after Lambda's retries is kept, never dropped
    configs = template.find_resources("AWS::Lambda::EventInvokeConfig")
    [config] = [
        c["Properties"]
        for c in configs.values()
        if c["Properties"]["FunctionName"]["Ref"].startswith("WarehouseFeedWarehouseRows")
    ]
    failure_queue = config["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
    assert failure_queue.startswith("WarehouseFeedWarehouseRowFailures")
    assert resources[failure_queue]["Type"] == "AWS::SQS::Queue"


def test_a_row_the_schema_refuses_alarms_for_every_warehouse_stream(template: Template) -> None:
    streams = {
        name
        for name in template.find_resources("AWS::KinesisFirehose::DeliveryStream")
        if name.startswith("Warehouse")
    }
    assert len(streams) == 7  # raw_usage and the six fed tables
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    watched = {
        alarm["Properties"]["Dimensions"][0]["Value"]["Ref"]
        for alarm in alarms.values()
        if alarm["Properties"].get("MetricName") == "FailedConversion.Records"
    }
    assert watched == streams
    for alarm in alarms.values():
        if alarm["Properties"].get("MetricName") == "FailedConversion.Records":
            assert alarm["Properties"]["Namespace"] == "AWS/Firehose"
            assert alarm["Properties"]["AlarmActions"], "an alarm nobody hears"


def test_a_managed_policy_lets_a_principal_query_and_nothing_else(
    template: Template, resources: dict[str, Any]
) -> None:
    name, policy = one(template, "AWS::IAM::ManagedPolicy")
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    every: set[str] = set()
    for statement in statements.values():
        action = statement["Action"]
        every |= set(action if isinstance(action, list) else [action])
    assert every == {
        "athena:GetWorkGroup",
        "athena:StartQueryExecution",
        "athena:GetQueryExecution",
        "athena:GetQueryResults",
        "athena:StopQueryExecution",
        "glue:GetDatabase",
        "glue:GetTable",
        "glue:GetTables",
        "s3:GetObject",
        "s3:ListBucket",
        "s3:GetBucketLocation",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "kms:Decrypt",
        "kms:GenerateDataKey",
    }
    # no write to the tables: objects written are the results' only
    writes = statements["WriteAndReadResults"]["Resource"]["Fn::Join"][1]
    assert writes[0]["Fn::GetAtt"][0].startswith("WarehouseQueryResults")
    assert writes[-1] == "/athena-results/*"
    key = statements["UseTheWarehouseKeyThroughS3"]
    assert key["Resource"] == {"Fn::GetAtt": [warehouse_key(template), "Arn"]}
    assert "kms:ViaService" in key["Condition"]["StringEquals"]
    outputs = template.to_json()["Outputs"]
    assert outputs["WarehouseQueryPolicyArn"]["Value"] == {"Ref": name}
    assert outputs["WarehouseDatabaseName"]["Value"] == "usage_billing_dev"
    workgroup, _ = one(template, "AWS::Athena::WorkGroup")
    assert outputs["WarehouseWorkGroupName"]["Value"] == {"Ref": workgroup}
