"""Many clients → one summary: throughput adds, latency percentiles come from the pooled requests."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from composer.analyzer.results import ExperimentSummary, SummaryRow, load_summary, percentiles_from_histogram
from composer.runs.merge import HISTOGRAMS, MAX_ACROSS_CLIENTS, ClientRun, merge_clients, merge_histograms


def _brute_percentile(latencies: list[int], p: int) -> float:
    """perf_analyzer's rule on sorted latencies, for checking the histogram path."""
    ordered = sorted(latencies)
    return float(ordered[int(p / 100.0 * (len(ordered) - 1) + 0.5)])


def _experiment(value: float, latencies_us: list[int], start_ns: int = 0, end_ns: int = 10**9) -> ExperimentSummary:
    histogram = tuple(sorted(Counter(latencies_us).items()))
    pcts = percentiles_from_histogram(histogram, len(latencies_us))
    return ExperimentSummary(
        mode="concurrency",
        value=value,
        request_count=len(latencies_us),
        answered_count=len(latencies_us),
        window_count=len(latencies_us),
        windowed=True,
        window_start_ns=start_ns,
        window_end_ns=end_ns,
        throughput_infer_per_sec=len(latencies_us) / ((end_ns - start_ns) / 1e9),
        avg_latency_us=sum(latencies_us) / len(latencies_us),
        p50_latency_us=pcts[50],
        p90_latency_us=pcts[90],
        p95_latency_us=pcts[95],
        p99_latency_us=pcts[99],
        histogram=histogram,
        timeline=(),
    )


def _row(value: float, throughput: float, p99: float, queue: float = 10.0) -> SummaryRow:
    return SummaryRow(
        "concurrency", value, throughput, avg_latency_us=p99 / 2, p50_latency_us=p99 / 3,
        p90_latency_us=p99 * 0.8, p95_latency_us=p99 * 0.9, p99_latency_us=p99, server_queue_us=queue,
    )  # fmt: skip


def _latencies(seed: int, count: int, low: int, high: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(low, high) for _ in range(count)]


def test_throughput_is_summed_per_sweep_point() -> None:
    a = ClientRun(1, (_row(1, 1000.0, 900), _row(2, 1500.0, 1200)))
    b = ClientRun(2, (_row(1, 800.0, 1100), _row(2, 1400.0, 1300)))
    summary = merge_clients("m", "24.10", [a, b])
    assert [r["throughput_infer_per_sec"] for r in summary["rows"]] == [1800.0, 2900.0]
    assert [r["concurrency"] for r in summary["rows"]] == [1, 2]
    assert summary["clients"] == 2


def test_histograms_merge_to_the_percentiles_of_all_requests_together() -> None:
    fast, slow = _latencies(1, 3000, 200, 900), _latencies(2, 1000, 800, 15000)
    a = ClientRun(1, (_row(1, 3000.0, 880),), (_experiment(1, fast),))
    b = ClientRun(2, (_row(1, 1000.0, 14000),), (_experiment(1, slow),))
    row = merge_clients("m", "24.10", [a, b])["rows"][0]
    pooled = fast + slow
    for p in (50, 90, 95, 99):
        assert row[f"p{p}_latency_us"] == _brute_percentile(pooled, p)
    assert row["avg_latency_us"] == pytest.approx(sum(pooled) / len(pooled))
    assert row["requests_in_windows"] == 4000


def test_merged_p99_is_neither_a_client_p99_nor_their_max() -> None:
    """The pooled p99 of a fast and a slow client differs from the max of their p99s: no shortcut."""
    fast, slow = [100] * 990 + [5000] * 10, [3000] * 100
    a = ClientRun(1, (_row(1, 990.0, 5000),), (_experiment(1, fast),))
    b = ClientRun(2, (_row(1, 100.0, 3000),), (_experiment(1, slow),))
    row = merge_clients("m", "24.10", [a, b])["rows"][0]
    assert row["p99_latency_us"] == _brute_percentile(fast + slow, 99) == 3000.0
    assert row["p90_latency_us"] == _brute_percentile(fast + slow, 90) == 100.0


def test_without_every_profile_export_latency_is_the_max_across_clients() -> None:
    a = ClientRun(1, (_row(1, 1000.0, 900),), (_experiment(1, [500] * 100),))
    b = ClientRun(2, (_row(1, 800.0, 1100),))
    summary = merge_clients("m", "24.10", [a, b])
    row = summary["rows"][0]
    assert summary["latency_source"] == MAX_ACROSS_CLIENTS
    assert row["p99_latency_us"] == 1100
    assert row["p50_latency_us"] == pytest.approx(1100 / 3)
    assert "requests_in_windows" not in row


def test_latency_source_names_the_histograms_when_every_client_exported() -> None:
    a = ClientRun(1, (_row(1, 1.0, 9),), (_experiment(1, [5]),))
    assert merge_clients("m", "24.10", [a])["latency_source"] == HISTOGRAMS


def test_components_are_throughput_weighted_means() -> None:
    a = ClientRun(1, (_row(1, 3000.0, 900, queue=10.0),))
    b = ClientRun(2, (_row(1, 1000.0, 900, queue=50.0),))
    assert merge_clients("m", "24.10", [a, b])["rows"][0]["server_queue_us"] == pytest.approx(20.0)


def test_window_overlap_says_how_concurrently_the_clients_measured() -> None:
    a = ClientRun(1, (_row(1, 1.0, 9),), (_experiment(1, [5], 0, 10 * 10**9),))
    b = ClientRun(2, (_row(1, 1.0, 9),), (_experiment(1, [5], 5 * 10**9, 15 * 10**9),))
    assert merge_clients("m", "24.10", [a, b])["rows"][0]["window_overlap"] == pytest.approx(5 / 15, abs=1e-4)


def test_a_point_only_some_clients_reached_counts_those_clients() -> None:
    a = ClientRun(1, (_row(1, 100.0, 9), _row(2, 150.0, 9)))
    b = ClientRun(2, (_row(1, 100.0, 9),))
    rows = merge_clients("m", "24.10", [a, b])["rows"]
    assert [(r["concurrency"], r["clients"], r["throughput_infer_per_sec"]) for r in rows] == [
        (1, 2, 200.0),
        (2, 1, 150.0),
    ]


def test_client_rows_list_every_client_at_every_point() -> None:
    a = ClientRun(2, (_row(1, 100.0, 9),), (_experiment(1, [5]),))
    b = ClientRun(1, (_row(1, 120.0, 8),))
    client_rows = merge_clients("m", "24.10", [a, b])["client_rows"]
    assert [
        (r["client"], r["concurrency"], r["throughput_infer_per_sec"], r["profile_export"]) for r in client_rows
    ] == [
        (1, 1, 120.0, False),
        (2, 1, 100.0, True),
    ]


def test_merge_histograms_adds_counts_bucket_by_bucket() -> None:
    assert merge_histograms([((1, 2), (5, 1)), ((1, 1), (3, 4))]) == ((1, 3), (3, 4), (5, 1))


def test_merged_summary_reads_back_as_a_summary(tmp_path: Path) -> None:
    """compare, report and runs read summary.json with results.load_summary: the merged one works too."""
    a = ClientRun(1, (_row(1, 1000.0, 900),), (_experiment(1, _latencies(3, 200, 100, 900)),))
    b = ClientRun(2, (_row(1, 800.0, 1100),), (_experiment(1, _latencies(4, 200, 100, 900)),))
    (tmp_path / "summary.json").write_text(json.dumps(merge_clients("seed_model", "24.10", [a, b])))
    summary = load_summary(tmp_path)
    assert summary.model == "seed_model" and summary.sweep == "concurrency"
    assert summary.rows[0].throughput_infer_per_sec == 1800.0


def test_no_clients_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        merge_clients("m", "24.10", [])


def test_the_aggregate_row_has_the_clients_window_intervals() -> None:
    from dataclasses import replace

    one = replace(_experiment(1, [500] * 300), windows=((100, 1.0, 900.0), (110, 1.0, 950.0), (90, 1.0, 1000.0)))
    two = replace(_experiment(1, [700] * 300), windows=((200, 1.0, 1200.0), (190, 1.0, 1100.0), (210, 1.0, 1300.0)))
    clients = [ClientRun(1, (_row(1, 100.0, 950),), (one,)), ClientRun(2, (_row(1, 200.0, 1200),), (two,))]
    row = merge_clients("m", "24.10", clients)["rows"][0]
    assert row["throughput_interval"] == [280.0, 320.0]  # the sums of each client's slowest and fastest window
    assert row["p99_latency_interval"] == [900.0, 1300.0] and row["interval"] == {"from": "windows", "n": 3}
