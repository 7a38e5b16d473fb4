"""The local runtime's Kinesis: moto's shard, patched to read by position and to take puts
and reads from several threads at once. These tests fail loudly if moto's shard changes
under the patches (see runtime.py)."""

from __future__ import annotations

import base64
import inspect
import threading
from typing import Any

import boto3
from moto.kinesis.models import Shard

from billing_cli.local.esm import MappingSettings, ShardPoller
from billing_cli.local.runtime import REGION, USAGE_STREAM, local_aws


def test_moto_shard_has_what_the_patches_stand_on() -> None:
    assert list(inspect.signature(Shard.get_records).parameters) == [
        "self",
        "last_sequence_id",
        "limit",
    ]
    assert list(inspect.signature(Shard.put_record).parameters) == [
        "self",
        "partition_key",
        "data",
        "explicit_hash_key",
    ]


def test_reads_page_through_every_record_in_order_while_puts_go_on() -> None:
    with local_aws() as aws:
        kinesis = boto3.client("kinesis", region_name=REGION)
        delivered: list[bytes] = []

        def keep(event: dict[str, Any]) -> None:
            delivered.extend(_data(record) for record in event["Records"])

        (shard,) = kinesis.list_shards(StreamName=aws.stream)["Shards"]
        poller = ShardPoller(kinesis, USAGE_STREAM, shard["ShardId"], keep, MappingSettings(250))
        sent = [f"record-{n:05d}".encode() for n in range(3000)]

        def put_all() -> None:
            for start in range(0, len(sent), 500):
                entries = [{"Data": d, "PartitionKey": "a"} for d in sent[start : start + 500]]
                kinesis.put_records(StreamName=USAGE_STREAM, Records=entries)

        putter = threading.Thread(target=put_all)
        putter.start()
        while putter.is_alive() or poller.delivered < len(sent):
            poller.poll()
        putter.join()

    assert delivered == sent
    assert poller.log.invocations >= 12  # batches of at most 250


def _data(record: dict[str, Any]) -> bytes:
    return base64.b64decode(record["kinesis"]["data"])
