"""Noise-aware numbers for the search: per-window throughput and latency → intervals, ties, the
recommendation. Pure.

A measurement is perf_analyzer's measurement windows, not only its average. Its interval is the
one every summary row carries (composer.analyzer.intervals): the range of its windows for one run;
finalists are re-measured interleaved (A B C A B C), so drift hits all alike, and a finalist's
interval is the 95 % confidence interval of the mean of its rounds. Two candidates whose intervals
overlap are tied: neither is better beyond noise.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from composer.analyzer.intervals import Interval, Window, mean_interval, spread
from composer.tuning.space import Candidate, TuneSettings

__all__ = ["Interval", "Measurement", "Window", "mean_interval", "measurement", "pooled"]


@dataclass(frozen=True)
class Measurement:
    """One perf_analyzer run of one candidate at one concurrency (or several, pooled)."""

    concurrency: int
    throughput: float
    throughput_interval: Interval
    latency_us: float
    latency_interval: Interval
    windows: tuple[Window, ...] = ()
    run_dirs: tuple[str, ...] = ()

    def as_dict(self, percentile: int) -> dict[str, object]:
        return {
            "concurrency": self.concurrency,
            "throughput_infer_per_sec": round(self.throughput, 3),
            "throughput_interval": [round(v, 3) for v in self.throughput_interval],
            f"p{percentile}_latency_us": round(self.latency_us, 1),
            f"p{percentile}_latency_interval": [round(v, 1) for v in self.latency_interval],
            "windows": len(self.windows),
            "run_dirs": list(self.run_dirs),
        }


def measurement(
    concurrency: int,
    windows: Sequence[Window],
    *,
    throughput: float | None = None,
    latency_us: float | None = None,
    run_dir: str | None = None,
) -> Measurement:
    """A measurement from its windows; ``throughput``/``latency_us`` are perf_analyzer's own values
    over them when known (else: requests over seconds of all windows, the windows' median latency)."""
    if not windows:
        raise ValueError("a measurement needs at least one window")
    rates = [w.throughput for w in windows]
    latencies = [w.latency_us for w in windows]
    seconds = sum(w.seconds for w in windows)
    overall = sum(w.requests for w in windows) / seconds if seconds > 0 else 0.0
    return Measurement(
        concurrency,
        overall if throughput is None else throughput,
        spread(rates),
        statistics.median(latencies) if latency_us is None else latency_us,
        spread(latencies),
        tuple(windows),
        (run_dir,) if run_dir else (),
    )


def pooled(measurements: Sequence[Measurement]) -> Measurement:
    """Several rounds of one candidate at one concurrency as one measurement: the mean of the rounds
    with its confidence interval (one round: that round as it is)."""
    if not measurements:
        raise ValueError("nothing to pool")
    if len(measurements) == 1:
        return measurements[0]
    throughputs = [m.throughput for m in measurements]
    latencies = [m.latency_us for m in measurements]
    return Measurement(
        measurements[0].concurrency,
        statistics.fmean(throughputs),
        mean_interval(throughputs),
        statistics.fmean(latencies),
        mean_interval(latencies),
        tuple(w for m in measurements for w in m.windows),
        tuple(d for m in measurements for d in m.run_dirs),
    )


def overlap(a: Interval, b: Interval) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def meets(m: Measurement, settings: TuneSettings) -> bool:
    budget = settings.budget_us
    if budget is not None and m.latency_us > budget:
        return False
    return settings.min_throughput is None or m.throughput >= settings.min_throughput


def violation(m: Measurement, settings: TuneSettings) -> float:
    """How far a measurement is from meeting the constraints (0: it meets them), relative."""
    budget = settings.budget_us
    over = max(m.latency_us / budget - 1, 0.0) if budget else 0.0
    under = max(1 - m.throughput / settings.min_throughput, 0.0) if settings.min_throughput else 0.0
    return over + under


def tied(a: Measurement, b: Measurement, objective: str) -> bool:
    """Neither is better than the other beyond noise on the objective."""
    if objective == "latency":
        return overlap(a.latency_interval, b.latency_interval)
    return overlap(a.throughput_interval, b.throughput_interval)


def better(a: Measurement, b: Measurement, objective: str) -> bool:
    """``a`` beats ``b`` beyond noise: their intervals do not overlap, and a's is on the good side."""
    if objective == "latency":
        return a.latency_interval[1] < b.latency_interval[0]
    return a.throughput_interval[0] > b.throughput_interval[1]


def rank_key(m: Measurement, objective: str) -> float:
    """Larger is better."""
    return -m.latency_us if objective == "latency" else m.throughput


def choose_point(points: Iterable[Measurement], settings: TuneSettings) -> Measurement | None:
    """A candidate's operating point: the best point that meets the constraints, or among the points
    tied with it the lowest concurrency (the same result at less load); None when none meets them."""
    eligible = [p for p in points if meets(p, settings)]
    if not eligible:
        return None
    top = max(eligible, key=lambda p: rank_key(p, settings.objective))
    return min((p for p in eligible if tied(p, top, settings.objective)), key=lambda p: p.concurrency)


def tie_set(results: dict[Candidate, Measurement], settings: TuneSettings) -> tuple[Candidate | None, list[Candidate]]:
    """The best candidate that meets the constraints and every candidate tied with it (best first)."""
    eligible = {c: m for c, m in results.items() if meets(m, settings)}
    if not eligible:
        return None, []
    top = max(eligible, key=lambda c: (rank_key(eligible[c], settings.objective), [-x for x in _order(c)]))
    ties = [c for c, m in eligible.items() if c != top and tied(m, eligible[top], settings.objective)]
    return top, [top, *sorted(ties, key=lambda c: -rank_key(eligible[c], settings.objective))]


def _order(c: Candidate) -> tuple[int, int, int]:
    return (c.instances, c.max_batch_size, int(c.dynamic_batching))


def recommend(ties: Sequence[Candidate], baseline: Candidate) -> Candidate | None:
    """The simplest configuration of the tie set (fewest instances, then smallest batch, then no
    dynamic batching); the baseline itself when it is tied: nothing beats it beyond noise."""
    if not ties:
        return None
    if baseline in ties:
        return baseline
    return min(ties, key=_order)


def gain(best: Measurement, baseline: Measurement, objective: str) -> dict[str, float | str]:
    """best over baseline on the objective, as a fraction, with its interval (worst and best case)."""
    if objective == "latency":  # lower is better: the baseline's latency over the best's, minus one
        b, base = best.latency_interval, baseline.latency_interval
        value = baseline.latency_us / best.latency_us - 1 if best.latency_us else 0.0
        low, high = base[0] / b[1] - 1 if b[1] else 0.0, base[1] / b[0] - 1 if b[0] else 0.0
        metric = "latency"
    else:
        b, base = best.throughput_interval, baseline.throughput_interval
        value = best.throughput / baseline.throughput - 1 if baseline.throughput else 0.0
        low, high = b[0] / base[1] - 1 if base[1] else 0.0, b[1] / base[0] - 1 if base[0] else 0.0
        metric = "throughput"
    return {"metric": metric, "value": round(value, 4), "low": round(low, 4), "high": round(high, 4)}
