"""The soak: `billing local` under steady usage for a long run. `python bench/soak.py --json`.

`billing local` is started as its own process (as a user starts it); this process is the
producer and the observer. For `--minutes` (10) it puts `--rate` (1,000) usage events a
second on the local stream, a PutRecords every 100 ms, from `--accounts` (200) customers
with skewed usage (a few large, a long tail; the demo's catalog). Once a second one of
the events is a probe: an `exports` event of one more unit for an account no other event
touches. Measured:

- latency (event to visible charge): from just before the PutRecords call that carries a
  probe until the probe account's usage report, read as `billing usage` reads it (the
  account views over the endpoint: its ledger read fresh, the charges priced on read),
  counts the probe among the meter's events. Counted means the rater's ledger write that
  holds the event has landed, so the running charge every reader sees includes it. The
  report is polled every `--poll` seconds (0.1), so figures are that coarse.
- memory: the resident set (RSS, /proc) of every process, the server (and any children)
  and this one, every 5 s.
- CPU: each process's CPU time over the run, per minute in use of one core.
- growth: per minute, the probes' p50 and p99 and each process's RSS; the first full
  minute against the last, and least-squares slopes (seconds of latency per minute, MiB
  per minute). A rater that cannot keep up shows as latency rising steadily: with a
  backlog growing at `rate - rated`, latency grows by `rate / rated - 1` seconds per
  second, so `rated_per_second` is estimated as `rate / (1 + slope)`.

`--short` runs 1 minute at the same rate (for trying). The result is printed as JSON and
saved to `--save` (bench/results/soak.json), which `bench/table.py` reads when the soak is
not run again.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from billing.settings import STACK_OUTPUTS
from billing_cli.deployment import connect
from billing_cli.producer import SendReport, UsageProducer

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BILLING = Path(sys.executable).with_name("billing")
RESULTS = BENCH / "results" / "soak.json"
PROBE_ACCOUNT = "soak-probe"
PROBE_METER = "exports"
TICK_SECONDS = 0.1
SAMPLE_SECONDS = 5.0
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PLANS = {  # the demo's plans, weights and zones
    "pro": (6, "America/New_York"),
    "team": (3, "Europe/Dublin"),
    "starter-eur": (3, "Europe/Berlin"),
    "business-jpy": (1, "Asia/Tokyo"),
    "gulf-kwd": (1, "Asia/Kuwait"),
}
_REGIONS = ["eu-west-1", "us-east-1", "us-west-2", "ap-south-1"]


def accounts_document(count: int, rng: random.Random) -> dict[str, Any]:
    """`count` background customers and the probe account, as `billing local --accounts`
    reads them."""
    plans = list(_PLANS)
    weights = [_PLANS[plan][0] for plan in plans]
    accounts = []
    for n in range(count):
        plan = rng.choices(plans, weights)[0]
        accounts.append(_account(f"soak-{n:04d}", plan))
    accounts.append(_account(PROBE_ACCOUNT, "pro"))
    return {"accounts": accounts}


def _account(account_id: str, plan: str) -> dict[str, Any]:
    return {
        "id": account_id,
        "name": f"Soak {account_id}",
        "email": f"billing+{account_id}@customer.example",
        "plan": plan,
        "timezone": _PLANS[plan][1],
    }


def background_event(rng: random.Random, ids: list[str], weights: list[float]) -> dict[str, Any]:
    meter = rng.choice(["api_requests", "api_requests", "storage_gb_hours", "seats", "exports"])
    event: dict[str, Any] = {
        "account_id": rng.choices(ids, weights)[0],
        "meter": meter,
        "quantity": {
            "api_requests": rng.randint(100, 20_000),
            "storage_gb_hours": f"{rng.randint(1, 500)}.{rng.randint(0, 99):02d}",
            "seats": rng.randint(1, 60),
        }.get(meter, 1),
    }
    if meter == "storage_gb_hours":
        event["dimensions"] = {"region": rng.choice(_REGIONS)}
    return event


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextmanager
def served(accounts: int, folder: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`billing local` in a process of its own, on a free port, until the block ends
    (stopped as Ctrl-C stops it)."""
    accounts_file = folder / "accounts.yaml"
    accounts_file.write_text(json.dumps(accounts_document(accounts, random.Random(19))))
    port = free_port()
    command = [str(BILLING), "local", "--port", str(port), "--customer-api-port", "0"]
    command += ["--catalog", str(ROOT / "examples" / "catalog.yaml")]
    command += ["--accounts", str(accounts_file)]
    log = folder / "server.log"
    with log.open("wb") as output:
        # With the soak's own SIGINT handler installed (main), the server starts with
        # SIGINT at its default, even when the soak runs as a shell's background job
        # (which ignores it, and an ignored SIGINT would stay ignored).
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_until_serving(server, log)
        yield server, f"http://127.0.0.1:{port}"
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _stop(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # the run's `finally` stops the server


def _wait_until_serving(server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while b"Ctrl-C stops it" not in log.read_bytes():
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"billing local did not start:\n{log.read_text()}")
        time.sleep(0.2)


# --- measuring processes -------------------------------------------------------------


def process_tree(root: int) -> list[int]:
    """`root` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def rss_and_cpu(pid: int) -> tuple[float, float] | None:
    """The process's resident set in MiB and its CPU time (user + system) in seconds."""
    try:
        fields = (Path(f"/proc/{pid}/stat")).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the command's closing parenthesis: utime and stime are the 12th and 13th
    # fields, rss (in pages) the 22nd (proc(5), counted from state as the 1st).
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return int(fields[21]) * PAGE_BYTES / 2**20, cpu


@dataclass
class Samples:
    """Every process's RSS and CPU time, every SAMPLE_SECONDS of the run."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def take(self, at: float, roots: dict[str, int]) -> None:
        row: dict[str, Any] = {"t": round(at, 1), "load_1m": os.getloadavg()[0]}
        counted: set[int] = set()
        for name, root in roots.items():  # the server's tree first: the soak is its parent
            for number, pid in enumerate(process_tree(root)):
                if pid in counted:
                    continue
                counted.add(pid)
                label = name if number == 0 else f"{name}-child-{pid}"
                measured = rss_and_cpu(pid)
                if measured is not None:
                    row[label] = {"rss_mib": round(measured[0], 1), "cpu_s": measured[1]}
        self.rows.append(row)


# --- the run ---------------------------------------------------------------------------


@dataclass
class Probes:
    put_at: list[float] = field(default_factory=list)  # monotonic, before the PutRecords
    visible_at: list[float | None] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, at: float) -> int:
        with self.lock:
            self.put_at.append(at)
            self.visible_at.append(None)
            return len(self.put_at)

    def seen(self, counted: int, at: float) -> None:
        """The first `counted` probes are visible (one account, one shard: in order)."""
        with self.lock:
            for index in range(min(counted, len(self.visible_at))):
                if self.visible_at[index] is None:
                    self.visible_at[index] = at

    def outstanding(self) -> int:
        with self.lock:
            return sum(1 for at in self.visible_at if at is None)


@dataclass
class Sent:
    events: int = 0
    calls: int = 0
    late_ticks: int = 0  # ticks started after their time had passed (the producer behind)


@dataclass(frozen=True)
class Load:
    rate: int  # events a second
    seconds: float
    accounts: int  # background accounts


def produce(producer: Any, load: Load, probes: Probes, started: float, sent: Sent) -> None:
    """`rate` events a second in a PutRecords every TICK_SECONDS, one of them a probe every
    second, on a fixed schedule from `started` (a late tick sends at once)."""
    rng = random.Random(20261204)
    ids = [f"soak-{n:04d}" for n in range(load.accounts)]
    weights = [1 / (rank**1.1) for rank in range(1, len(ids) + 1)]
    per_tick = max(1, round(load.rate * TICK_SECONDS))
    ticks = int(load.seconds / TICK_SECONDS)
    probe_every = max(1, round(1 / TICK_SECONDS))
    for tick in range(ticks):
        due = started + tick * TICK_SECONDS
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        elif wait < -TICK_SECONDS:
            sent.late_ticks += 1
        events = [background_event(rng, ids, weights) for _ in range(per_tick)]
        probe = tick % probe_every == 0
        if probe:
            events[0] = {"account_id": PROBE_ACCOUNT, "meter": PROBE_METER, "quantity": 1}
        for event in events:
            producer.record(
                event["account_id"],
                event["meter"],
                event["quantity"],
                dimensions=event.get("dimensions"),
            )
        if probe:
            probes.add(time.monotonic())
        producer.flush()
        # The producer's report keeps every record's sequence number (about 230 bytes an
        # event): start it afresh, so the soak's own memory is the soak's.
        producer.report = SendReport()
        sent.events += per_tick
        sent.calls += 1


def watch(views: Any, probes: Probes, poll: float, stop: threading.Event) -> None:
    """Read the probe account's usage as `billing usage` does, every `poll` seconds."""
    while not stop.is_set():
        report = views.usage(PROBE_ACCOUNT)
        counted = sum(meter.events for meter in report.meters if meter.meter == PROBE_METER)
        probes.seen(counted, time.monotonic())
        stop.wait(poll)


def sample(samples: Samples, roots: dict[str, int], started: float, stop: threading.Event) -> None:
    while not stop.is_set():
        samples.take(time.monotonic() - started, roots)
        stop.wait(SAMPLE_SECONDS)


def run(args: argparse.Namespace) -> dict[str, Any]:
    load = Load(args.rate, 60.0 if args.short else args.minutes * 60, args.accounts)
    with tempfile.TemporaryDirectory() as folder, served(args.accounts, Path(folder)) as serving:
        server, endpoint = serving
        deployment = connect(endpoint)
        stream = deployment.output(STACK_OUTPUTS.usage_stream_name)
        producer = UsageProducer(stream, client=deployment.client("kinesis"))
        roots = {"billing-local": server.pid, "soak-producer": os.getpid()}
        samples, probes, sent = Samples(), Probes(), Sent()
        stop = threading.Event()
        started = time.monotonic()
        threads = [
            threading.Thread(target=watch, args=(deployment.views(), probes, args.poll, stop)),
            threading.Thread(target=sample, args=(samples, roots, started, stop)),
        ]
        for thread in threads:
            thread.start()
        try:
            produce(producer, load, probes, started, sent)
            sent_seconds = time.monotonic() - started
            drain_deadline = time.monotonic() + args.drain
            while probes.outstanding() and time.monotonic() < drain_deadline:
                time.sleep(0.2)
            drained_seconds = time.monotonic() - started - sent_seconds
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
        samples.take(time.monotonic() - started, roots)
    return summarize(load, samples, probes, sent, sent_seconds, drained_seconds, started)


# --- the figures -----------------------------------------------------------------------


def percentile(samples: list[float], fraction: float) -> float:
    """The nearest-rank percentile (as bench/e2e.py takes it)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def slope(points: list[tuple[float, float]]) -> float:
    """The least-squares slope of y on x; 0 for fewer than two distinct x."""
    if len(points) < 2:
        return 0.0
    mean_x = statistics.fmean(x for x, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def windows(points: list[tuple[float, float]], width: float) -> list[dict[str, Any]]:
    """p50, p99 and count of the y of each `width`-second window of x, in order."""
    grouped: dict[int, list[float]] = {}
    for x, y in points:
        grouped.setdefault(int(x // width), []).append(y)
    return [
        {
            "from_s": index * width,
            "p50_s": round(statistics.median(ys), 3),
            "p99_s": round(percentile(ys, 0.99), 3),
            "probes": len(ys),
        }
        for index, ys in sorted(grouped.items())
    ]


def latency_figures(
    put_at: list[float], visible_at: list[float | None], started: float, rate: int, width: float
) -> dict[str, Any]:
    """Latency over the run: overall, per window, first window against last, and slope."""
    points = [
        (put - started, seen - put)
        for put, seen in zip(put_at, visible_at, strict=True)
        if seen is not None
    ]
    if not points:
        return {"probes": len(put_at), "probes_never_visible": len(put_at)}
    latencies = [latency for _, latency in points]
    per_window = windows(points, width)
    per_second = slope(points)  # seconds of latency per second of the run
    return {
        "p50_s": round(statistics.median(latencies), 3),
        "p99_s": round(percentile(latencies, 0.99), 3),
        "max_s": round(max(latencies), 3),
        "probes": len(put_at),
        "probes_never_visible": len(put_at) - len(points),
        "first_window": per_window[0],
        "last_window": per_window[-1],
        "slope_s_per_minute": round(per_second * 60, 4),
        # A backlog growing at rate - rated adds rate / rated - 1 seconds a second.
        "rated_per_second_estimate": round(rate / (1 + per_second)) if per_second > 0 else rate,
        "per_window": per_window,
    }


def memory_figures(rows: list[dict[str, Any]], skip_s: float) -> dict[str, Any]:
    """Per process: RSS at the first and last sample, its peak, and its slope after the
    first `skip_s` seconds (the start-up); CPU in use of one core over the run."""
    labels = sorted({key for row in rows for key, value in row.items() if isinstance(value, dict)})
    figures: dict[str, Any] = {}
    for label in labels:
        series = [(row["t"], row[label]) for row in rows if label in row]
        rss = [(t, value["rss_mib"]) for t, value in series]
        steady = [(t, mib) for t, mib in rss if t >= skip_s] or rss
        elapsed = series[-1][0] - series[0][0]
        cpu = series[-1][1]["cpu_s"] - series[0][1]["cpu_s"]
        figures[label] = {
            "rss_first_mib": rss[0][1],
            "rss_last_mib": rss[-1][1],
            "rss_max_mib": max(mib for _, mib in rss),
            "rss_slope_mib_per_minute": round(slope(steady) * 60, 2),
            "cpu_cores_used": round(cpu / elapsed, 3) if elapsed else 0.0,
            "rss_mib_every_sample": [mib for _, mib in rss],
        }
    return figures


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "processor": platform.machine(),
    }


def summarize(
    load: Load,
    samples: Samples,
    probes: Probes,
    sent: Sent,
    sent_seconds: float,
    drained_seconds: float,
    started: float,
) -> dict[str, Any]:
    width = min(60.0, load.seconds / 4)
    loads = [row["load_1m"] for row in samples.rows]
    latency = latency_figures(probes.put_at, probes.visible_at, started, load.rate, width)
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            **machine(),
            "load_1m_start": loads[0],
            "load_1m_end": loads[-1],
            "load_1m_max": max(loads),
        },
        "rate_per_second": load.rate,
        "minutes": round(load.seconds / 60, 2),
        "accounts": load.accounts,
        "events_sent": sent.events,
        "sent_per_second": round(sent.events / sent_seconds, 1),
        "late_ticks": sent.late_ticks,
        "drain_seconds": round(drained_seconds, 1),
        "window_s": width,
        "load_1m_every_sample": [round(load_1m, 1) for load_1m in loads],
        "latency": latency,
        "processes": memory_figures(samples.rows, width),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--minutes", type=float, default=10, help="how long to send")
    parser.add_argument("--rate", type=int, default=1000, help="events a second")
    parser.add_argument("--accounts", type=int, default=200, help="background accounts")
    parser.add_argument("--short", action="store_true", help="1 minute, to try it")
    parser.add_argument("--poll", type=float, default=0.1, help="seconds between reads")
    parser.add_argument("--drain", type=float, default=120, help="seconds to wait at the end")
    parser.add_argument("--save", type=Path, default=RESULTS, help="where to keep the JSON")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    result = run(args)
    args.save.parent.mkdir(parents=True, exist_ok=True)
    args.save.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=None if args.json else 2))
    return result


if __name__ == "__main__":
    main()
