"""How far each summary row can be trusted: its throughput and p99 intervals, the rows of points
perf_analyzer never called stable (kept with their numbers, marked), and the rows of repeated
sweeps pooled into means with confidence intervals. Pure: files in, rows out.

Where a row's numbers come from, in order: perf_analyzer's CSV (stable points); for a point kept
unstable, its experiment in the profile export (the export still holds the point perf_analyzer gave
up on when it had measured earlier ones) or else its last trial lines in the analyzer log.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from composer.analyzer.intervals import REPEATS, TRIALS, WINDOWS, mean_interval, spread
from composer.analyzer.results import NUMBER_KEYS, SummaryRow, Uncertainty, summarize_profile_export
from composer.analyzer.trials import Trial, last_trials

FROM_KEPT = "a last measurement that accepted any spread"
FROM_EXPORT = "the profile export's windows"
FROM_TRIALS = "perf_analyzer's last trials"
_LATENCIES = ("avg_latency_us", "p50_latency_us", "p90_latency_us", "p95_latency_us", "p99_latency_us")


def kept_rows(
    rows: Sequence[SummaryRow], kept: Mapping[float, Mapping[str, Any]], sweep: str, export: Path, log: str
) -> list[SummaryRow]:
    """``rows`` with each point kept unstable (``kept``: point → its record) marked, and a row for
    each such point perf_analyzer's CSV has none for, in sweep order."""
    if not kept:
        return list(rows)
    measured = {float(r.value) for r in rows}
    out = [replace(r, unstable={**kept[r.value], "numbers_from": FROM_KEPT}) if r.value in kept else r for r in rows]
    missing = {p: record for p, record in kept.items() if float(p) not in measured}
    exported = {float(e.value): e for e in summarize_profile_export(export)} if missing and export.exists() else {}
    trials = last_trials(log)
    for point, record in missing.items():
        experiment = exported.get(float(point))
        if experiment is not None and experiment.window_count:
            latencies: dict[str, Any] = {key: getattr(experiment, key) for key in _LATENCIES}
            row = SummaryRow(sweep, point, experiment.throughput_infer_per_sec, **latencies)
            source = FROM_EXPORT
        elif trials.get(float(point)):
            row, source = _from_trials(sweep, point, trials[float(point)]), FROM_TRIALS
        else:
            continue  # nothing was measured: the manifest's unstable_points still names it
        out.append(replace(row, unstable={**record, "numbers_from": source}))
    return sorted(out, key=lambda r: r.value)


def _from_trials(sweep: str, point: float, trials: Sequence[Trial]) -> SummaryRow:
    latency = statistics.fmean(t.latency_us for t in trials)
    key = "avg_latency_us" if trials[-1].latency_kind == "Avg" else f"{trials[-1].latency_kind}_latency_us"
    numbers: dict[str, Any] = {key: latency} if key in _LATENCIES else {}
    return SummaryRow(sweep, point, statistics.fmean(t.throughput for t in trials), **numbers)


def with_intervals(rows: Sequence[SummaryRow], export: Path, log: str) -> list[SummaryRow]:
    """Each row with its within-run intervals: from its windows in the profile export, else from
    perf_analyzer's trial lines (throughput; p99 only where the trials were timed on p99)."""
    windows = {float(e.value): e.windows for e in summarize_profile_export(export)} if export.exists() else {}
    trials = last_trials(log)
    out = []
    for row in rows:
        found = windows.get(float(row.value), ())
        uncertainty = None
        if len(found) >= 2 and all(seconds > 0 for _, seconds, _ in found):
            rates = [count / seconds for count, seconds, _ in found]
            uncertainty = Uncertainty(WINDOWS, len(rates), spread(rates), spread([p99 for _, _, p99 in found]))
        elif len(trials.get(float(row.value), ())) >= 2:
            seen = trials[float(row.value)]
            p99 = spread([float(t.latency_us) for t in seen]) if seen[-1].latency_kind == "p99" else None
            uncertainty = Uncertainty(TRIALS, len(seen), spread([t.throughput for t in seen]), p99)
        out.append(replace(row, uncertainty=uncertainty) if uncertainty else row)
    return out


def pooled_rows(repeats: Sequence[Sequence[SummaryRow]]) -> list[SummaryRow]:
    """The rows of N repeats of one sweep as one row per point: each number the mean of the repeats
    that measured the point, throughput and p99 with the 95 % confidence interval of their mean; a
    point unstable in any repeat stays marked."""
    by_point: dict[float, list[SummaryRow]] = {}
    for rows in repeats:
        for row in rows:
            by_point.setdefault(float(row.value), []).append(row)
    out = []
    for seen in by_point.values():
        first = seen[0]
        numbers: dict[str, Any] = {key: _mean([getattr(r, key) for r in seen]) for key in NUMBER_KEYS}
        throughputs = [r.throughput_infer_per_sec for r in seen]
        row = replace(first, **{**numbers, "throughput_infer_per_sec": statistics.fmean(throughputs)})
        p99s = [r.p99_latency_us for r in seen if r.p99_latency_us is not None]
        if len(seen) >= 2:
            p99 = mean_interval(p99s) if len(p99s) == len(seen) else None
            row = replace(row, uncertainty=Uncertainty(REPEATS, len(seen), mean_interval(throughputs), p99))
        unstable = [r.unstable for r in seen if r.unstable is not None]
        if unstable:
            row = replace(row, unstable={**unstable[0], "repeats_unstable": len(unstable)})
        out.append(row)
    return sorted(out, key=lambda r: r.value)


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.fmean(known) if known and len(known) == len(values) else None
