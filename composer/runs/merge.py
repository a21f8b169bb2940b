"""Many load clients → one summary. Pure.

Throughput adds up across clients at each sweep point. Latency percentiles do not: when every
client left a profile export, their per-request histograms (``ExperimentSummary.histogram``) are
added bucket by bucket and the percentiles are read from the sum with perf_analyzer's own rule,
so they are the percentiles of all requests together. Without an export from every client the
only safe statement is an upper bound: the worst client's value. ``latency_source`` says which.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from composer.analyzer.intervals import WINDOWS, spread
from composer.analyzer.results import (
    ExperimentSummary,
    SummaryRow,
    Uncertainty,
    percentiles_from_histogram,
    summary_dict,
)

HISTOGRAMS = "merged per-request histograms of every client's profile export"
MAX_ACROSS_CLIENTS = "max across clients (an upper bound: not every client left a profile export)"
_PERCENTILE_KEYS = {50: "p50_latency_us", 90: "p90_latency_us", 95: "p95_latency_us", 99: "p99_latency_us"}
_LATENCY_KEYS = ("avg_latency_us", *_PERCENTILE_KEYS.values())
# Per-request averages of a latency component: weighted by each client's throughput.
_COMPONENT_KEYS = (
    "client_send_us",
    "network_server_send_recv_us",
    "server_queue_us",
    "server_compute_input_us",
    "server_compute_infer_us",
    "server_compute_output_us",
    "client_recv_us",
    "request_response_us",
    "response_wait_us",
)


@dataclass(frozen=True)
class ClientRun:
    """One client's results: its CSV rows and, when collected, its profile export's experiments."""

    index: int
    rows: tuple[SummaryRow, ...]
    experiments: tuple[ExperimentSummary, ...] | None = None

    def experiment_at(self, value: float) -> ExperimentSummary | None:
        for experiment in self.experiments or ():
            if experiment.value == value:
                return experiment
        return None


def merge_histograms(histograms: Sequence[Sequence[tuple[int, int]]]) -> tuple[tuple[int, int], ...]:
    """Bucket-wise sum of (bucket µs, count) histograms; all use results.py's fixed buckets."""
    total: Counter[int] = Counter()
    for histogram in histograms:
        for bucket, count in histogram:
            total[bucket] += count
    return tuple(sorted(total.items()))


def _weighted(rows: Sequence[SummaryRow], key: str) -> float | None:
    pairs = [(getattr(r, key), r.throughput_infer_per_sec) for r in rows if getattr(r, key) is not None]
    if not pairs:
        return None
    weight = sum(w for _, w in pairs)
    return round(float(sum(v * w for v, w in pairs) / weight if weight > 0 else max(v for v, _ in pairs)), 3)


def _overlap(experiments: Sequence[ExperimentSummary]) -> float | None:
    """Share of the measurement span during which every client was measuring (1.0: fully concurrent)."""
    if not all(e.windowed for e in experiments):
        return None
    start = max(e.window_start_ns for e in experiments)
    end = min(e.window_end_ns for e in experiments)
    span = max(e.window_end_ns for e in experiments) - min(e.window_start_ns for e in experiments)
    return round(max(0, end - start) / span, 4) if span > 0 else None


def _merge_point(rows: Sequence[SummaryRow], experiments: Sequence[ExperimentSummary] | None) -> dict[str, Any]:
    """The aggregate row's numbers for one sweep point."""
    # Rounded like perf_analyzer's own CSV, so sums do not print float noise.
    merged: dict[str, Any] = {"throughput_infer_per_sec": round(sum(r.throughput_infer_per_sec for r in rows), 3)}
    for key in _COMPONENT_KEYS:
        merged[key] = _weighted(rows, key)
    if experiments is not None:
        count = sum(e.window_count for e in experiments)
        pcts = percentiles_from_histogram(merge_histograms([e.histogram for e in experiments]), count)
        merged["avg_latency_us"] = sum(e.avg_latency_us * e.window_count for e in experiments) / count if count else 0.0
        merged.update({key: pcts[p] for p, key in _PERCENTILE_KEYS.items()})
    else:
        for key in _LATENCY_KEYS:
            values = [getattr(r, key) for r in rows if getattr(r, key) is not None]
            merged[key] = max(values) if values else None
    return merged


def _uncertainty(experiments: Sequence[ExperimentSummary]) -> Uncertainty | None:
    """The aggregate's intervals from the clients' windows: throughput between the sums of each
    client's slowest and fastest window, p99 between the lowest and highest window p99 of any client."""
    if not experiments or any(len(e.windows) < 2 for e in experiments):
        return None
    rates = [[count / seconds for count, seconds, _ in e.windows if seconds > 0] for e in experiments]
    if any(not r for r in rates):
        return None
    p99s = [p99 for e in experiments for _, _, p99 in e.windows]
    n = min(len(e.windows) for e in experiments)
    return Uncertainty(WINDOWS, n, (sum(min(r) for r in rates), sum(max(r) for r in rates)), spread(p99s))


def merge_clients(model: str, release: str, clients: Sequence[ClientRun]) -> dict[str, Any]:
    """The summary.json of a many-client run: aggregate rows, ``clients``, ``latency_source``,
    and ``client_rows`` (one row per client and sweep point)."""
    if not clients:
        raise ValueError("merge_clients needs at least one client")
    sweep = clients[0].rows[0].sweep if clients[0].rows else "concurrency"
    values = sorted({row.value for c in clients for row in c.rows})
    use_histograms = all(c.experiment_at(v) is not None for c in clients for v in values if _row(c, v))
    aggregate: list[SummaryRow] = []
    per_point: list[dict[str, Any]] = []
    for value in values:
        present = [c for c in clients if _row(c, value) is not None]
        rows = [r for c in present if (r := _row(c, value)) is not None]
        experiments = [e for c in present if (e := c.experiment_at(value)) is not None]
        merged = _merge_point(rows, experiments if use_histograms else None)
        uncertainty = _uncertainty(experiments) if use_histograms else None
        aggregate.append(replace(SummaryRow(sweep, value, 0.0, uncertainty=uncertainty), **merged))
        point: dict[str, Any] = {"clients": len(present)}
        if use_histograms:
            point["requests_in_windows"] = sum(e.window_count for e in experiments)
            overlap = _overlap(experiments)
            if overlap is not None:
                point["window_overlap"] = overlap
        per_point.append(point)
    summary = summary_dict(model, release, aggregate)
    for row, point in zip(summary["rows"], per_point, strict=True):
        row.update(point)
    summary["clients"] = len(clients)
    summary["latency_source"] = HISTOGRAMS if use_histograms else MAX_ACROSS_CLIENTS
    summary["throughput_source"] = "sum over clients of each client's perf_analyzer throughput"
    summary["client_rows"] = [
        _client_row(c, row, sweep) for c in sorted(clients, key=lambda c: c.index) for row in c.rows
    ]
    return summary


def _row(client: ClientRun, value: float) -> SummaryRow | None:
    return next((r for r in client.rows if r.value == value), None)


def _client_row(client: ClientRun, row: SummaryRow, sweep: str) -> dict[str, Any]:
    value = float(row.value)
    out: dict[str, Any] = {"client": client.index, sweep: int(value) if value.is_integer() else value}
    out["throughput_infer_per_sec"] = row.throughput_infer_per_sec
    for key in _LATENCY_KEYS:
        out[key] = getattr(row, key)
    out["profile_export"] = client.experiment_at(row.value) is not None
    return out
