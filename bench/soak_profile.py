"""Where `billing local`'s time goes under the soak: a py-spy profile, grouped.
`python bench/soak_profile.py PROFILE.txt`.

The local runtime is one Python process: moto's server threads, the event source
mapping's poller, the archive's Firehose, the ledger stream's poller and the handlers they
invoke through moto's Lambda all share one interpreter lock, so the process can use at
most one core. Record which thread holds the lock while the soak runs, with py-spy (not a
project dependency; install it anywhere, e.g. `pip install --target /tmp/pyspy py-spy`):

    py-spy record --pid <billing local's pid> --duration 30 --gil --format raw -o PROFILE.txt

and this prints the share of the lock-holding samples by what the thread was doing. A
rule is the first that matches a stack; the handlers' own calls to moto show twice, once
as the client's side (botocore, in the handler's stack) and once as the server's (moto
parsing, acting and serializing, on a server thread).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

Rule = tuple[str, Callable[[str], bool]]
RULES: list[Rule] = [
    ("rate_usage: calls to moto, client side", lambda s: "_rate_usage" in s and "botocore/" in s),
    ("rate_usage: the rating itself", lambda s: "_rate_usage" in s),
    ("spend_alerts handler", lambda s: "_spend_alerts" in s),
    ("other handlers (archive_records)", lambda s: "bridge.<locals>.run" in s),
    ("Lambda invoke plumbing (moto: payloads)", lambda s: "LambdaFunction.invoke" in s),
    ("archive's Firehose thread, client side", lambda s: "LocalFirehose" in s),
    ("event source mapping poller, client side", lambda s: "ShardPoller" in s),
    ("ledger stream poller, client side", lambda s: "LedgerStreamPoller" in s),
    ("webhook poller", lambda s: "WebhookPoller" in s),
    ("moto: Kinesis PutRecords", lambda s: "KinesisResponse.put_records" in s),
    ("moto: DynamoDB", lambda s: "moto/dynamodb/" in s or "DynamoHandler" in s),
    ("moto: DynamoDB Streams", lambda s: "moto/dynamodbstreams" in s),
    ("moto: Kinesis other", lambda s: "moto/kinesis/" in s),
    ("moto: S3", lambda s: "moto/s3/" in s),
    # moto serializes an answer after its action returned: only the shape tells whose.
    (
        "moto: serializing DynamoDB Streams records (the ledgers' images)",
        lambda s: "serialize" in s and "_serialize_type_map" in s,
    ),
    ("moto: serializing Kinesis answers (records, put results)", lambda s: "serialize" in s),
    ("moto / Flask / HTTP server, per request", lambda s: "process_request_thread" in s),
    ("HTTP server, accepting", lambda s: "serve_forever" in s),
]


def shares(profile: str) -> dict[str, float]:
    """Each rule's share of the samples of a py-spy raw profile (lines `stack count`)."""
    counts: Counter[str] = Counter()
    for line in profile.splitlines():
        if not line.strip():
            continue
        stack, count = line.rsplit(" ", 1)
        label = next((name for name, matches in RULES if matches(stack)), "other")
        counts[label] += int(count)
    total = sum(counts.values())
    return {label: round(count / total, 3) for label, count in counts.most_common()}


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path, help="py-spy record --format raw output")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = shares(args.profile.read_text())
    if args.json:
        print(json.dumps(result))
    else:
        for label, share in result.items():
            print(f"{share:6.1%}  {label}")
    return result


if __name__ == "__main__":
    main()
