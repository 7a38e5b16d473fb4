"""A custom EventBridge bus whose events land in an SQS queue, so a test can read back
what was published."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

from billing.store.events import SOURCE


@dataclass
class EventSink:
    events: Any
    sqs: Any
    bus: str
    queue_url: str

    @classmethod
    def create(cls, bus: str, region: str) -> EventSink:
        """The bus, and a rule sending all of the project's events on it to a new queue."""
        sink = cls(
            boto3.client("events", region_name=region),
            boto3.client("sqs", region_name=region),
            bus,
            boto3.client("sqs", region_name=region).create_queue(QueueName=f"{bus}-sink")[
                "QueueUrl"
            ],
        )
        sink.connect()
        return sink

    def connect(self) -> None:
        """Create the bus and its rule (again, after a test deleted them)."""
        self.events.create_event_bus(Name=self.bus)
        queue_arn = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        self.events.put_rule(
            Name="all", EventBusName=self.bus, EventPattern=json.dumps({"source": [SOURCE]})
        )
        self.events.put_targets(
            Rule="all", EventBusName=self.bus, Targets=[{"Id": "q", "Arn": queue_arn}]
        )

    def received(self) -> list[dict[str, Any]]:
        """The events delivered since the last call, in the order the queue gives them."""
        found = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            if not batch.get("Messages"):
                return found
            for message in batch["Messages"]:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
