"""The soak's figures (bench/soak.py), from fixed samples: percentiles, the latency's
slope and the rate it implies, memory per process. Nothing is run or timed."""

from __future__ import annotations

from bench import soak


def test_slope_is_least_squares() -> None:
    assert soak.slope([(0, 0.0), (1, 2.0), (2, 4.0)]) == 2.0
    # mean x 1, mean y 2: ((-1)(-2) + 0 + (1)(1)) / 2 = 1.5
    assert soak.slope([(0, 0.0), (1, 3.0), (2, 3.0)]) == 1.5
    assert soak.slope([(5, 1.0)]) == 0.0


def test_latency_growing_means_a_backlog() -> None:
    # Probes put at 10, 11, 12, 13 s (the run started at 10), seen 1.0, 1.5, 2.0 and 2.5 s
    # later: latency grows 0.5 s a second, 30 s a minute; at 1,000/s offered that is a
    # backlog growing by half a second's worth a second: rated 1,000 / 1.5 = 667/s. The
    # fifth probe was never seen.
    put = [10.0, 11.0, 12.0, 13.0, 14.0]
    seen: list[float | None] = [11.0, 12.5, 14.0, 15.5, None]
    figures = soak.latency_figures(put, seen, 10.0, 1000, width=2.0)
    assert figures["p50_s"] == 1.75  # the median of 1.0, 1.5, 2.0, 2.5
    assert figures["p99_s"] == 2.5  # nearest rank: index round(0.99 x 3) = 3
    assert figures["slope_s_per_minute"] == 30.0
    assert figures["rated_per_second_estimate"] == 667
    assert figures["probes_never_visible"] == 1
    # Windows of 2 s: probes at 0 and 1 s, then at 2 and 3 s.
    assert figures["first_window"] == {"from_s": 0.0, "p50_s": 1.25, "p99_s": 1.5, "probes": 2}
    assert figures["last_window"] == {"from_s": 2.0, "p50_s": 2.25, "p99_s": 2.5, "probes": 2}


def test_a_steady_latency_keeps_the_offered_rate() -> None:
    put = [0.0, 1.0, 2.0, 3.0]
    seen: list[float | None] = [1.0, 2.0, 3.0, 4.0]
    figures = soak.latency_figures(put, seen, 0.0, 150, width=60.0)
    assert figures["slope_s_per_minute"] == 0.0
    assert figures["rated_per_second_estimate"] == 150


def test_memory_per_process() -> None:
    rows = [
        {"t": 0.0, "load_1m": 1.0, "server": {"rss_mib": 100.0, "cpu_s": 10.0}},
        {"t": 60.0, "load_1m": 1.0, "server": {"rss_mib": 150.0, "cpu_s": 40.0}},
        {"t": 120.0, "load_1m": 1.0, "server": {"rss_mib": 160.0, "cpu_s": 70.0}},
    ]
    # Past the first 60 s: 150 -> 160 MiB in 60 s, 10 MiB a minute; CPU 60 s in 120 s.
    figures = soak.memory_figures(rows, skip_s=60.0)["server"]
    assert figures["rss_first_mib"] == 100.0
    assert figures["rss_last_mib"] == 160.0
    assert figures["rss_slope_mib_per_minute"] == 10.0
    assert figures["cpu_cores_used"] == 0.5
