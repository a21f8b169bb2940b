"""perf_analyzer's trial lines (``-v``), per sweep point: what a point's last windows measured where
its CSV or profile export cannot say (a point it gave up on as unstable, a run without an export).

    Request concurrency: 2
      Pass [1] throughput: 3317.8 infer/sec. Avg latency: 295 usec (std 61 usec).
      Pass [2] throughput: 3290.1 infer/sec. p99 latency: 611 usec (std 70 usec).

The latency of a trial is the one perf_analyzer stabilizes on: the average, or the percentile asked
with --percentile. Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

STABILITY_WINDOW = 3  # perf_analyzer judges stability on (and reports) its last 3 trials

_PASS = re.compile(r"Pass \[\d+\] throughput: ([\d.eE+-]+) infer/sec\. (Avg|p\d+) latency: (\d+) usec")
_ANNOUNCE = re.compile(r"^(?:Request concurrency|Request Rate): ([\d.eE+-]+)", re.MULTILINE)


@dataclass(frozen=True)
class Trial:
    throughput: float
    latency_us: int
    latency_kind: str  # "Avg" or "p99", as perf_analyzer printed it


def last_trials(output: str) -> dict[float, tuple[Trial, ...]]:
    """Each announced point's last trials (at most three); a point announced again (a retry, a
    repeat) keeps its last announcement's."""
    announcements = list(_ANNOUNCE.finditer(output))
    points: dict[float, tuple[Trial, ...]] = {}
    for index, match in enumerate(announcements):
        end = announcements[index + 1].start() if index + 1 < len(announcements) else len(output)
        trials = [Trial(float(t), int(lat), kind) for t, kind, lat in _PASS.findall(output, match.end(), end)]
        points[float(match.group(1))] = tuple(trials[-STABILITY_WINDOW:])
    return points


def final_trials(output: str) -> tuple[Trial, ...]:
    """The last trials of the last point perf_analyzer measured (the whole text where it announced none)."""
    announcements = list(_ANNOUNCE.finditer(output))
    start = announcements[-1].start() if announcements else 0
    trials = [Trial(float(t), int(lat), kind) for t, kind, lat in _PASS.findall(output, start)]
    return tuple(trials[-STABILITY_WINDOW:])


def settled(trials: tuple[Trial, ...], percent: float) -> bool:
    """perf_analyzer's own rule on its last three trials: every trial's throughput and latency
    within ±percent of their averages."""
    if len(trials) < STABILITY_WINDOW:
        return False
    for values in ([t.throughput for t in trials], [float(t.latency_us) for t in trials]):
        mean = sum(values) / len(values)
        if mean > 0 and any(abs(v - mean) / mean * 100 > percent for v in values):
            return False
    return True


def spread_pct(trials: tuple[Trial, ...]) -> float | None:
    """Their throughputs' max/min − 1, in %."""
    low = min((t.throughput for t in trials), default=0.0)
    return None if low <= 0 else round((max(t.throughput for t in trials) / low - 1) * 100, 2)
