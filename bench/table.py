"""Every benchmark's headline figures in one table. `python bench/table.py` (`make bench`).

Runs bench/rater.py, bench/rerate.py, bench/invoicing.py (without its 5,000-account run),
bench/e2e.py and bench/stream_cost.py, each `--runs` times (default 1), keeps each run's
JSON under bench/results/last/, and prints one table. A figure run several times is the
median of its runs; a comparison (a ratio) is taken within each run, then its median. The
soak (bench/soak.py, 10 minutes and more) is not run again unless `--soak` is given: its
figures come from its last saved JSON (bench/results/soak.json), with the date it was
measured. `--from-saved` prints the table from the JSON under bench/results/last/ without
running anything.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
LAST = RESULTS / "last"
SOAK = RESULTS / "soak.json"
# Each benchmark and its arguments for the table.
BENCHMARKS: dict[str, list[str]] = {
    "rater": ["rater.py", "--json"],
    "rerate": ["rerate.py", "--json"],
    "invoicing": ["invoicing.py", "--json", "--large-run", "0"],
    "e2e": ["e2e.py", "--json"],
    "stream_cost": ["stream_cost.py", "--json"],
}
WORKLOADS = (
    "skewed_b100",
    "skewed_b1000",
    "skewed_b10000",
    "single_account_b1000",
    "uniform_b1000",
    "unique_b1000",
)


@dataclass(frozen=True)
class Row:
    figure: str
    value: str
    compared: str = ""  # against what, or how it compares
    goal: str = ""


def run_benchmark(name: str) -> dict[str, Any]:
    """One run of a benchmark in a process of its own; its JSON."""
    command = [sys.executable, str(BENCH / BENCHMARKS[name][0]), *BENCHMARKS[name][1:]]
    started = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, check=True, text=True)
    print(f"{name}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    result: dict[str, Any] = json.loads(finished.stdout.strip().splitlines()[-1])
    return result


def with_ratios(name: str, result: dict[str, Any]) -> dict[str, Any]:
    """The run's comparisons, taken within the run, added under "ratios"."""
    ratios: dict[str, float] = {}
    if name == "rater":
        for workload, units in result["write_units_per_event"].items():
            naive = result["naive_write_units_per_event"].get(workload)
            if naive and units:
                ratios[f"naive_to_design_{workload}"] = naive / units
    if name == "stream_cost":
        on_demand = result["cost_per_million_events_usd"]["on_demand"]
        ratios["on_demand_to_provisioned"] = (
            on_demand / result["cost_per_million_events_usd"]["provisioned"]
        )
    return {**result, "ratios": ratios} if ratios else result


def median_of(runs: Sequence[Any]) -> Any:
    """The runs' median, figure by figure: numbers by their median, mappings key by key
    (keys of the first run), anything else as the first run has it."""
    first = runs[0]
    if isinstance(first, bool) or first is None:
        return first
    if isinstance(first, int | float):
        numbers = [run for run in runs if isinstance(run, int | float)]
        return statistics.median(numbers)
    if isinstance(first, dict):
        return {
            key: median_of([run[key] for run in runs if isinstance(run, dict) and key in run])
            for key in first
        }
    return first


def _num(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def rating_rows(rater: dict[str, Any]) -> list[Row]:
    goals = rater.get("goals", {})
    rows = [
        Row(
            "rater events/s per core",
            _num(rater["events_per_second_per_core"]),
            "pure work, median of 7",
            f">= {_num(goals.get('events_per_second_per_core', 0))}",
        )
    ]
    ratios = rater.get("ratios", {})
    for workload in WORKLOADS:
        units = rater["write_units_per_event"].get(workload)
        if units is None:
            continue
        naive = rater["naive_write_units_per_event"].get(workload)
        ratio = ratios.get(f"naive_to_design_{workload}")
        compared = f"naive {naive:.1f}, {ratio:.1f}x fewer" if naive and ratio else ""
        goal = goals.get("write_units_per_event", {}).get(workload)
        rows.append(
            Row(f"write units / event, {workload}", f"{units:.4f}", compared, _goal("<=", goal))
        )
    return rows


def _goal(sign: str, goal: float | None) -> str:
    return f"{sign} {goal:g}" if goal is not None else ""


def cost_rows(rater: dict[str, Any], stream_cost: dict[str, Any]) -> list[Row]:
    goals = rater.get("goals", {}).get("cost_per_million_events_usd", {})
    rows = [
        Row(
            f"$ / million events, {workload} (shard at full load)",
            f"{cost:.4f}",
            f"naive {rater['naive_cost_per_million_events_usd'][workload]:.4f}",
            _goal("<=", goals.get(workload)),
        )
        for workload, cost in rater["cost_per_million_events_usd"].items()
    ]
    deployed = stream_cost["cost_per_million_events_usd"]
    ratio = stream_cost.get("ratios", {}).get("on_demand_to_provisioned")
    rows.append(
        Row(
            "$ / million events at 1,000/s, on-demand stream",
            f"{deployed['on_demand']:.4f}",
            f"{ratio:.2f}x provisioned" if ratio else "",
            _goal("<=", goals.get("skewed_b1000")),
        )
    )
    rows.append(
        Row(
            "$ / million events at 1,000/s, provisioned (1 shard)",
            f"{deployed['provisioned']:.4f}",
            "7-day retention included",
            _goal("<=", goals.get("skewed_b1000")),
        )
    )
    return rows


def local_rows(e2e: dict[str, Any], invoicing: dict[str, Any], rerate: dict[str, Any]) -> list[Row]:
    return [
        Row(
            "local latency p50 / p99 (s)",
            f"{e2e['latency_p50_s']:.2f} / {e2e['latency_p99_s']:.2f}",
            f"{e2e.get('latency_probes', '?')} probes, billing local",
            _goal("p99 <=", e2e.get("goals", {}).get("latency_p99_s")),
        ),
        Row(
            "PDF render (ms)",
            f"{invoicing['pdf_render_ms']:.1f}",
            "median, one invoice",
            _goal("<=", invoicing.get("goals", {}).get("pdf_render_ms")),
        ),
        Row(
            "invoices / s",
            f"{invoicing['invoices_per_second']:.1f}",
            f"{invoicing.get('workflow_run', {}).get('invoices', 0):,} accounts, local workflow",
            _goal(">=", invoicing.get("goals", {}).get("invoices_per_second")),
        ),
        Row(
            "re-rate events/s",
            _num(rerate["rerate_events_per_second"]),
            f"rater {_num(rerate['rater_events_per_second'])}, "
            f"{rerate['rerate_to_rater_ratio']:.2f}x",
            _goal("ratio >=", rerate.get("goals", {}).get("rerate_to_rater_ratio")),
        ),
    ]


def soak_rows(soak: dict[str, Any] | None) -> list[Row]:
    if soak is None:
        return [Row("soak", "not measured", "python bench/soak.py")]
    latency = soak["latency"]
    server = soak["processes"]["billing-local"]
    when = f"{soak['measured_at'][:16]}, load {soak['machine']['load_1m_start']:.1f}"
    offered = f"{_num(soak['rate_per_second'])}/s for {soak['minutes']:g} min"
    return [
        Row(
            "soak latency p50 / p99 (s)",
            f"{latency['p50_s']:.2f} / {latency['p99_s']:.2f}",
            f"{offered}, {when}",
        ),
        Row(
            "soak latency growth (s / min)",
            f"{latency['slope_s_per_minute']:+.2f}",
            f"rated about {_num(latency['rated_per_second_estimate'])}/s",
        ),
        Row(
            "soak server RSS (MiB)",
            f"{server['rss_first_mib']:.0f} -> {server['rss_last_mib']:.0f}",
            f"{server['rss_slope_mib_per_minute']:+.1f} MiB/min, "
            f"{server['cpu_cores_used']:.2f} cores",
        ),
    ]


def table_rows(results: dict[str, Any]) -> list[Row]:
    return [
        *rating_rows(results["rater"]),
        *cost_rows(results["rater"], results["stream_cost"]),
        *local_rows(results["e2e"], results["invoicing"], results["rerate"]),
        *soak_rows(results.get("soak")),
    ]


def render(rows: Sequence[Row]) -> str:
    """A plain-text table, columns padded to their widest cell, numbers right-aligned."""
    header = Row("figure", "value", "compared with", "goal")
    cells = [[row.figure, row.value, row.compared, row.goal] for row in [header, *rows]]
    widths = [max(len(line[column]) for line in cells) for column in range(4)]
    lines = []
    for number, line in enumerate(cells):
        padded = [
            line[0].ljust(widths[0]),
            line[1].rjust(widths[1]) if number else line[1].ljust(widths[1]),
            line[2].ljust(widths[2]),
            line[3].ljust(widths[3]),
        ]
        lines.append(" | ".join(padded).rstrip(" |"))  # no trailing empty cells
        if number == 0:
            lines.append("-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def collect(runs: int, run: Callable[[str], dict[str, Any]] = run_benchmark) -> dict[str, Any]:
    """Every benchmark `runs` times, each run's JSON saved; the medians."""
    LAST.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in BENCHMARKS:
        each = [with_ratios(name, run(name)) for _ in range(runs)]
        (LAST / f"{name}.json").write_text(json.dumps(each, indent=1) + "\n")
        results[name] = median_of(each)
    return results


def saved() -> dict[str, Any]:
    return {name: median_of(json.loads((LAST / f"{name}.json").read_text())) for name in BENCHMARKS}


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="runs of each benchmark (median)")
    parser.add_argument("--soak", action="store_true", help="run the 10-minute soak too")
    parser.add_argument("--from-saved", action="store_true", help="print the last results")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = saved() if args.from_saved else collect(args.runs)
    if args.soak:
        subprocess.run([sys.executable, str(BENCH / "soak.py"), "--json"], check=True)
    results["soak"] = json.loads(SOAK.read_text()) if SOAK.exists() else None
    table = render(table_rows(results))
    print(table)
    minutes = (time.perf_counter() - started) / 60
    print(f"\n{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, {minutes:.1f} min")
    return table


if __name__ == "__main__":
    main()
