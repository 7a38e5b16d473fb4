"""Webhooks on the local runtime, as the stack wires them (stacks/webhooks.py): a rule on
the local bus puts the subscribable domain events on a queue with the same redrive to a
dead-letter queue, and a poller delivers them with the deliverer's own code, so a receiver
on 127.0.0.1 sees what it would on AWS, retries and backoff included (docs/webhooks.md)."""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Final

import boto3

from billing.core.webhooks.payload import EVENT_TYPES, MAX_ATTEMPTS
from billing.store.events import SOURCE
from billing.store.webhook_endpoints import WebhookEndpoints, WebhookSecrets, secret_prefix
from billing.store.webhook_queue import WebhookQueue
from billing.webhooks.delivery import Deliverer, deliver_messages, http_post

POLL_SECONDS: Final = 1.0
_RULE: Final = "webhooks"


def provision_webhooks(region: str, prefix: str, bus: str) -> str:
    """The queue, its dead-letter queue and the bus's rule to it; the queue's URL."""
    sqs = boto3.client("sqs", region_name=region)
    dead = sqs.create_queue(QueueName=f"{prefix}-webhook-dead-letters")["QueueUrl"]
    dead_arn = _arn(sqs, dead)
    redrive = {"deadLetterTargetArn": dead_arn, "maxReceiveCount": MAX_ATTEMPTS}
    queue = sqs.create_queue(
        QueueName=f"{prefix}-webhooks", Attributes={"RedrivePolicy": json.dumps(redrive)}
    )["QueueUrl"]
    events = boto3.client("events", region_name=region)
    pattern = {"source": [SOURCE], "detail-type": list(EVENT_TYPES)}
    events.put_rule(Name=_RULE, EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(
        Rule=_RULE, EventBusName=bus, Targets=[{"Id": "webhooks", "Arn": _arn(sqs, queue)}]
    )
    return str(queue)


def _arn(sqs: Any, queue_url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


@dataclass
class WebhookPoller:
    """Lambda's SQS event source, locally: receive, deliver, delete what was delivered. It
    posts with http_post, the local runtime's, which may reach receivers on 127.0.0.1."""

    sqs: Any
    queue_url: str
    deliverer: Deliverer

    @classmethod
    def on(cls, region: str, queue_url: str, config_table: str) -> WebhookPoller:
        secrets = WebhookSecrets(
            boto3.client("secretsmanager", region_name=region), secret_prefix(config_table)
        )
        endpoints = WebhookEndpoints(boto3.client("dynamodb", region_name=region), config_table)
        return cls(
            boto3.client("sqs", region_name=region),
            queue_url,
            Deliverer(endpoints, secrets, post=http_post),
        )

    def poll(self) -> int:
        """One receive and its deliveries (or fan-out); how many messages it received."""
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", [])
        records = [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m["Attributes"],
            }
            for m in messages
        ]
        queue = WebhookQueue(self.sqs, self.queue_url)
        failed = set(deliver_messages(records, self.deliverer, int(time.time()), queue))
        for message in messages:
            if message["MessageId"] not in failed:
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
        return len(messages)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                received = self.poll()
            except Exception as error:  # whatever it is, the next poll is the retry
                # As Lambda's event source after a failed invocation: the poll's messages
                # were not deleted, so they come back once their visibility timeout ends.
                print(f"webhooks: a poll failed ({type(error).__name__})", file=sys.stderr)
                received = 0
            if not received:
                stop.wait(POLL_SECONDS)
