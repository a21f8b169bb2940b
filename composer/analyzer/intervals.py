"""How uncertain a number is: the intervals every summary row, tune's search and compare share. Pure.

Two sources, one rule each:

- **windows** (one run): perf_analyzer reports a point as the average of its last three measurement
  windows (read from its profile export's window boundaries, or its last trial lines where no export
  was written). The interval is the range of those windows: what one run itself saw.
- **repeats** (``--repeat N``, tune's finalist rounds): the 95 % confidence interval of the mean of the
  rounds (Student's t), which widens with drift between rounds, not only with the jitter of
  one-second windows.

``standard_error`` turns either back into the standard error of the figure, which is what a
comparison of two runs needs: from a range of n windows through the expected range of n normal
samples (d2: 1.128, 1.693, 2.059 … for n = 2, 3, 4), from a t interval through its t.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

Interval = tuple[float, float]

WINDOWS, TRIALS, REPEATS = "windows", "trials", "repeats"

# Student's t, two-sided 95 %, by degrees of freedom 1…14 (beyond the table: the normal's 1.96)
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145)
# d2: the expected range of n standard normal samples, n = 2…10
_D2 = (1.128, 1.693, 2.059, 2.326, 2.534, 2.704, 2.847, 2.970, 3.078)


def t975(df: int) -> float:
    """Student's t quantile for a two-sided 95 % interval with ``df`` degrees of freedom."""
    if df < 1:
        return math.inf
    return _T975[df - 1] if df <= len(_T975) else 1.96


@dataclass(frozen=True)
class Window:
    """One perf_analyzer measurement window: requests completed in it, its length, its latency percentile."""

    requests: int
    seconds: float
    latency_us: float

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def spread(values: Sequence[float]) -> Interval:
    """The range of one run's windows (or trials)."""
    return (min(values), max(values))


def mean_interval(values: Sequence[float]) -> Interval:
    """The 95 % confidence interval of the mean of ``values`` (at least two), not below zero:
    throughputs and latencies are not negative, and three spread-out rounds (±4.3 standard errors)
    would put a t interval's low end there (a real tune reported p99 -1580 µs … 4246 µs)."""
    mean = statistics.fmean(values)
    half = t975(len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return (max(mean - half, 0.0), max(mean + half, 0.0))


def standard_error(interval: Interval, basis: str, n: int) -> float | None:
    """The standard error of a figure from its interval: None when it cannot be told (one sample)."""
    low, high = interval
    if n < 2 or high < low:
        return None
    if basis == REPEATS:
        return (high - low) / 2 / t975(n - 1)
    d2 = _D2[n - 2] if n - 2 < len(_D2) else 3.078 + 0.1 * (n - 10)  # beyond 10 windows: a mild underestimate
    return float((high - low) / d2 / n**0.5)


@dataclass(frozen=True)
class Change:
    """The relative change from a to b, in %, with its 95 % interval."""

    pct: float
    low: float
    high: float
    n: int  # the smaller sample behind either side (windows or repeats)


def change(a: float, se_a: float, n_a: int, b: float, se_b: float, n_b: int) -> Change | None:
    """b against a as a relative change with a Welch interval (the two runs' standard errors
    combined, Welch–Satterthwaite degrees of freedom); None when a is 0."""
    if a == 0:
        return None
    se = math.hypot(se_a, se_b)
    if se == 0:
        df = max(min(n_a, n_b) - 1, 1)
    else:
        parts = [v**4 / (n - 1) for v, n in ((se_a, n_a), (se_b, n_b)) if v > 0 and n > 1]
        df = int(se**4 / sum(parts)) if parts else max(min(n_a, n_b) - 1, 1)
    half = t975(max(df, 1)) * se
    pct = (b - a) / a * 100
    return Change(pct, (b - a - half) / a * 100, (b - a + half) / a * 100, min(n_a, n_b))
