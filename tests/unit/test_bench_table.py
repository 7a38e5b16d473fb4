"""`make bench`'s one table (bench/table.py): medians across runs, ratios within a run,
and the table's layout, from fixed benchmark results (nothing is run or timed)."""

from __future__ import annotations

from typing import Any

from bench import table
from bench.table import Row


def test_median_of_runs_figure_by_figure() -> None:
    runs = [
        {"rate": 10, "nested": {"p99": 3.0}, "note": "first", "flag": True},
        {"rate": 30, "nested": {"p99": 1.0}, "note": "second", "flag": False},
        {"rate": 20, "nested": {"p99": 2.0}, "note": "third", "flag": False},
    ]
    assert table.median_of(runs) == {
        "rate": 20,
        "nested": {"p99": 2.0},
        "note": "first",
        "flag": True,
    }
    assert table.median_of([{"a": 1}, {"a": 4}]) == {"a": 2.5}  # even count: the mean of two


def test_ratios_are_taken_within_each_run_before_the_median() -> None:
    runs = [
        {"write_units_per_event": {"w": 0.5}, "naive_write_units_per_event": {"w": 2.0}},
        {"write_units_per_event": {"w": 0.25}, "naive_write_units_per_event": {"w": 1.0}},
        {"write_units_per_event": {"w": 1.0}, "naive_write_units_per_event": {"w": 2.0}},
    ]
    merged = table.median_of([table.with_ratios("rater", run) for run in runs])
    # Per run 4.0, 4.0 and 2.0: median 4.0; the medians' ratio would be 2.0 / 0.5 = 4.0 too
    # here, but 2.0 / 0.5 is not what any run measured.
    assert merged["ratios"] == {"naive_to_design_w": 4.0}
    assert merged["write_units_per_event"] == {"w": 0.5}


def test_render_pads_columns_and_right_aligns_values() -> None:
    rows = [Row("rater events/s", "36,000", "median of 7", ">= 100,000"), Row("pdf", "3.6")]
    assert table.render(rows).splitlines() == [
        "figure         | value  | compared with | goal",
        "---------------+--------+---------------+-----------",
        "rater events/s | 36,000 | median of 7   | >= 100,000",
        "pdf            |    3.6",
    ]


def _results() -> dict[str, Any]:
    return {
        "rater": {
            "events_per_second_per_core": 36053.4,
            "write_units_per_event": {"skewed_b1000": 0.2968},
            "naive_write_units_per_event": {"skewed_b1000": 2.0},
            "cost_per_million_events_usd": {"skewed_b1000": 0.2028},
            "naive_cost_per_million_events_usd": {"skewed_b1000": 1.278},
            "ratios": {"naive_to_design_skewed_b1000": 2.0 / 0.2968},
            "goals": {
                "events_per_second_per_core": 100_000,
                "write_units_per_event": {"skewed_b1000": 0.5},
                "cost_per_million_events_usd": {"skewed_b1000": 0.4},
            },
        },
        "stream_cost": {
            "cost_per_million_events_usd": {"on_demand": 0.3664, "provisioned": 0.2076},
            "ratios": {"on_demand_to_provisioned": 0.3664 / 0.2076},
        },
        "e2e": {"latency_p50_s": 1.374, "latency_p99_s": 1.667, "latency_probes": 60},
        "invoicing": {
            "pdf_render_ms": 3.61,
            "invoices_per_second": 20.4,
            "workflow_run": {"invoices": 1000},
            "goals": {"pdf_render_ms": 10, "invoices_per_second": 50},
        },
        "rerate": {
            "rater_events_per_second": 6372,
            "rerate_events_per_second": 10912,
            "rerate_to_rater_ratio": 1.71,
        },
        "soak": None,
    }


def test_table_rows_from_the_benchmarks_results() -> None:
    rows = {row.figure: row for row in table.table_rows(_results())}
    assert rows["rater events/s per core"] == Row(
        "rater events/s per core", "36,053", "pure work, median of 7", ">= 100,000"
    )
    # 2.0 / 0.2968 = 6.74: "6.7x fewer"
    assert rows["write units / event, skewed_b1000"] == Row(
        "write units / event, skewed_b1000", "0.2968", "naive 2.0, 6.7x fewer", "<= 0.5"
    )
    # 0.3664 / 0.2076 = 1.765
    on_demand = rows["$ / million events at 1,000/s, on-demand stream"]
    assert on_demand.compared == "1.76x provisioned"
    assert rows["local latency p50 / p99 (s)"].value == "1.37 / 1.67"
    assert rows["re-rate events/s"].compared == "rater 6,372, 1.71x"
    assert rows["soak"] == Row("soak", "not measured", "python bench/soak.py")


def test_soak_rows_say_when_and_at_what_load() -> None:
    soak = {
        "measured_at": "2026-12-04T10:45:00+00:00",
        "machine": {"load_1m_start": 6.5},
        "rate_per_second": 1000,
        "minutes": 10,
        "latency": {
            "p50_s": 120.5,
            "p99_s": 300.25,
            "slope_s_per_minute": 45.0,
            "rated_per_second_estimate": 571,
        },
        "processes": {
            "billing-local": {
                "rss_first_mib": 370.0,
                "rss_last_mib": 1500.4,
                "rss_slope_mib_per_minute": 110.0,
                "cpu_cores_used": 0.8,
            }
        },
    }
    assert table.soak_rows(soak) == [
        Row(
            "soak latency p50 / p99 (s)",
            "120.50 / 300.25",
            "1,000/s for 10 min, 2026-12-04T10:45, load 6.5",
        ),
        Row("soak latency growth (s / min)", "+45.00", "rated about 571/s"),
        Row("soak server RSS (MiB)", "370 -> 1500", "+110.0 MiB/min, 0.80 cores"),
    ]
