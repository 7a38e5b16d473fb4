"""The webhooks' infrastructure (stacks/webhooks.py): the bus's rule to an encrypted queue,
the deliverer on it with its backoff's dead-letter queue (alarmed), its role held to its
rows of the permissions table, secrets the template never holds, and the rater's
UsageRejected summaries on the bus."""

from __future__ import annotations

import json
from typing import Any

from billing.core.webhooks.payload import EVENT_TYPES, MAX_ATTEMPTS, retry_delay
from billing.settings import CONFIG_TABLE, EVENT_BUS_ENV, STACK_OUTPUTS
from billing.store.events import SOURCE
from billing.webhooks.settings import WEBHOOK_QUEUE_ENV
from billing_cli.deployment import LOCAL_RUNTIME_OUTPUT
from tests.infra.conftest import actions_of, logical_id, of_type, resources_of, role_statements
from tests.infra.test_stack import function_id, role_id, table_id

Resources = dict[str, Any]
DAY_SECONDS = 24 * 60 * 60


def queue_id(resources: Resources, prefix: str) -> str:
    return logical_id(resources, "AWS::SQS::Queue", f"Webhooks{prefix}")


def test_the_domain_events_go_to_the_webhook_queue(resources: Resources) -> None:
    rule = resources[logical_id(resources, "AWS::Events::Rule", "WebhooksDomainEventsTo")]
    props = rule["Properties"]
    assert props["EventPattern"] == {"source": [SOURCE], "detail-type": list(EVENT_TYPES)}
    bus = logical_id(resources, "AWS::Events::EventBus", "InvoicingDomainEvents")
    assert props["EventBusName"] == {"Ref": bus}
    [target] = props["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [queue_id(resources, "WebhookEvents"), "Arn"]}
    # what EventBridge cannot hand the queue goes to the dead-letter queue too
    dead = queue_id(resources, "WebhookDeadLetters")
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dead, "Arn"]}}


def test_the_queue_dead_letters_after_more_than_a_day_of_retries(
    resources: Resources, key_arn: dict[str, Any]
) -> None:
    queue = resources[queue_id(resources, "WebhookEvents")]["Properties"]
    dead = queue_id(resources, "WebhookDeadLetters")
    assert queue["KmsMasterKeyId"] == key_arn
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dead, "Arn"]},
        "maxReceiveCount": MAX_ATTEMPTS,
    }
    span = sum(retry_delay(n) for n in range(1, MAX_ATTEMPTS + 1))
    assert span > DAY_SECONDS
    # kept longer than the retries take, so none expires before its last attempt
    assert queue["MessageRetentionPeriod"] > span
    assert resources[dead]["Properties"]["KmsMasterKeyId"] == key_arn


def test_the_deliverer_reads_the_queue_with_partial_failures(resources: Resources) -> None:
    function = function_id(resources, "deliver_webhooks")
    [mapping] = [
        m["Properties"]
        for m in of_type(resources, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": function}
    ]
    queue = queue_id(resources, "WebhookEvents")
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [queue, "Arn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    variables = resources[function]["Properties"]["Environment"]["Variables"]
    assert variables[WEBHOOK_QUEUE_ENV] == {"Ref": queue}
    assert variables[CONFIG_TABLE.env_var] == {"Ref": table_id(resources, "Config")}
    timeout = resources[function]["Properties"]["Timeout"]
    assert resources[queue]["Properties"]["VisibilityTimeout"] >= timeout


def test_the_deliverer_reads_only_its_deployments_secrets_through_secrets_manager(
    resources: Resources,
) -> None:
    statements = role_statements(resources, role_id(resources, "deliver_webhooks"))
    [calls] = [s for s in statements if s["Sid"] == "WebhookSecretsCalls"]
    assert calls["Action"] == "secretsmanager:GetSecretValue"
    secret_arn = json.dumps(calls["Resource"])
    config = table_id(resources, "Config")
    assert ":secret:billing-webhooks/" in secret_arn
    assert config in secret_arn
    assert secret_arn.endswith('/*"]]}')
    [key] = [s for s in statements if s["Sid"] == "WebhookSecretsKey"]
    assert key["Action"] == "kms:Decrypt"
    conditions = json.dumps(key["Condition"])
    assert "secretsmanager." in conditions
    assert "kms:EncryptionContext:SecretARN" in conditions
    [items] = [s for s in statements if s["Sid"] == "ConfigWebhooksCalls"]
    assert items["Action"] == "dynamodb:Query"
    assert items["Condition"] == {
        "ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["WEBHOOKS"]}
    }


def test_no_secret_is_in_the_template(resources: Resources, template: Any) -> None:
    assert of_type(resources, "AWS::SecretsManager::Secret") == {}
    assert "whsec_" not in json.dumps(template.to_json())


def test_operators_find_the_key_secrets_are_created_under(
    template: Any, key_arn: dict[str, Any]
) -> None:
    outputs = template.to_json()["Outputs"]
    assert outputs[STACK_OUTPUTS.webhook_secrets_key]["Value"] == key_arn


def test_only_this_accounts_rules_may_use_the_key_for_the_queues(resources: Resources) -> None:
    # (the target's grant, under CDK's eventsTargetQueueSameAccount flag; the bus's own
    # statement is the other one for EventBridge)
    [key] = [
        k
        for n, k in of_type(resources, "AWS::KMS::Key").items()
        if n.startswith("SecurityStateKey")
    ]
    events = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Principal") == {"Service": "events.amazonaws.com"}
    ]
    [target_grant] = [s for s in events if "kms:Encrypt" in s["Action"]]
    assert target_grant["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    }
    assert all("aws:SourceAccount" in s["Condition"]["StringEquals"] for s in events)


def test_the_deliverers_role_holds_its_rows_and_nothing_more(
    resources: Resources, key_arn: dict[str, Any]
) -> None:
    statements = {
        s["Sid"]: s for s in role_statements(resources, role_id(resources, "deliver_webhooks"))
    }
    queue = queue_id(resources, "WebhookEvents")
    # the queue: its event source's three actions, the fan-out's SendMessage and the
    # backoff's ChangeMessageVisibility, on the webhook queue alone (not its dead letters)
    calls = statements["WebhookEventsCalls"]
    assert sorted(actions_of(calls)) == [
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
        "sqs:SendMessage",
    ]
    assert resources_of(calls) == [{"Fn::GetAtt": [queue, "Arn"]}]
    # what SQS does with the state key for them, through SQS only
    queue_key = statements["WebhookEventsKey"]
    assert sorted(actions_of(queue_key)) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert resources_of(queue_key) == [key_arn]
    assert "sqs." in json.dumps(queue_key["Condition"])
    # and no more than the log group, tracing, the queue, the endpoints and their secrets
    assert set(statements) == {
        "OwnLogGroup",
        "ActiveTracing",
        "WebhookEventsCalls",
        "WebhookEventsKey",
        "ConfigWebhooksCalls",
        "ConfigWebhooksKey",
        "WebhookSecretsCalls",
        "WebhookSecretsKey",
    }
    assert actions_of(statements["ConfigWebhooksKey"]) == ["kms:Decrypt"]
    wildcards = [s for s in statements.values() if "*" in resources_of(s)]
    assert [s["Sid"] for s in wildcards] == ["ActiveTracing"]


def test_the_webhook_dead_letters_are_kept_a_fortnight_and_alarmed(resources: Resources) -> None:
    dead = queue_id(resources, "WebhookDeadLetters")
    assert resources[dead]["Properties"]["MessageRetentionPeriod"] == 14 * DAY_SECONDS
    [alarm] = [
        a["Properties"]
        for a in of_type(resources, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Dimensions")
        == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dead, "QueueName"]}}]
    ]
    assert (alarm["MetricName"], alarm["Threshold"]) == ("ApproximateNumberOfMessagesVisible", 1)
    assert alarm["AlarmActions"], "the alarm notifies someone"


def test_the_rater_publishes_its_usage_rejected_summaries_on_the_bus(
    resources: Resources,
) -> None:
    bus = logical_id(resources, "AWS::Events::EventBus", "InvoicingDomainEvents")
    rater = resources[function_id(resources, "rate_usage")]["Properties"]
    assert rater["Environment"]["Variables"][EVENT_BUS_ENV] == {"Ref": bus}
    statements = role_statements(resources, role_id(resources, "rate_usage"))
    [publish] = [s for s in statements if s["Sid"] == "DomainEventsCalls"]
    assert publish["Action"] == "events:PutEvents"
    assert resources_of(publish) == [{"Fn::GetAtt": [bus, "Arn"]}]
    # and the webhook rule takes them to endpoints subscribed to UsageRejected
    rule = resources[logical_id(resources, "AWS::Events::Rule", "WebhooksDomainEventsTo")]
    assert "UsageRejected" in rule["Properties"]["EventPattern"]["detail-type"]


def test_no_deployed_stack_passes_for_the_local_runtime(template: Any) -> None:
    # Loopback webhook URLs are allowed on `billing local` by its stand-in stack's marker
    # output (billing_cli.deployment), never by a stack's name: a stack deployed with
    # `-c stage=local` is named UsageBilling-local too, and must not have the marker.
    assert LOCAL_RUNTIME_OUTPUT not in template.to_json().get("Outputs", {})
