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


def test_the_poller_waits_out_the_batching_window_unless_the_batch_is_full() -> None:
    with local_aws() as aws:
        kinesis = boto3.client("kinesis", region_name=REGION)
        batches: list[int] = []
        now = [100.0]
        (shard,) = kinesis.list_shards(StreamName=aws.stream)["Shards"]
        settings = MappingSettings(batch_size=5, batching_window_seconds=1.0)
        poller = ShardPoller(
            kinesis,
            USAGE_STREAM,
            shard["ShardId"],
            lambda event: batches.append(len(event["Records"])),
            settings,
            clock=lambda: now[0],
        )

        def put(count: int) -> None:
            entries = [{"Data": b"x", "PartitionKey": "a"} for _ in range(count)]
            kinesis.put_records(StreamName=USAGE_STREAM, Records=entries)

        put(3)
        assert poller.poll() == 0  # three records seen at t=100: the window runs to 101
        now[0] = 100.9
        assert poller.poll() == 0
        now[0] = 101.0
        assert poller.poll() == 3
        put(7)
        assert poller.poll() == 5  # a full batch goes at once
        assert poller.poll() == 0  # the other two wait for their window
        now[0] = 102.5
        assert poller.poll() == 2

    assert batches == [3, 5, 2]
