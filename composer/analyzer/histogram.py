"""Latency histograms of fixed size, and percentiles by perf_analyzer's own rule.

Resolution: exact 1 µs buckets below 16.384 ms; above, log-spaced buckets of relative width below
1/8192 (0.0122 %). Percentiles use perf_analyzer's rule (sorted latencies, index
``int(p/100·(n−1)+0.5)``, value truncated to µs), so below 16 ms they equal a brute-force
computation exactly, and above it they agree within 0.0122 % + 1 µs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

LINEAR_LIMIT_US = 16_384  # exact 1 µs buckets below this
_SUB_BITS = 14  # log buckets keep the top 14 bits of the µs value
_PERCENTILES = (50, 90, 95, 99)


class Histogram:
    """Latencies in µs: exact buckets below LINEAR_LIMIT_US, log-spaced ones above."""

    def __init__(self) -> None:
        self.count = 0
        self.linear = [0] * LINEAR_LIMIT_US
        self.log: dict[int, int] = {}

    def add(self, micros: int) -> None:
        self.count += 1
        if micros < LINEAR_LIMIT_US:
            self.linear[micros] += 1
        else:
            shift = micros.bit_length() - _SUB_BITS
            low = (micros >> shift) << shift
            self.log[low] = self.log.get(low, 0) + 1

    def buckets(self) -> tuple[tuple[int, int], ...]:
        exact = ((us, n) for us, n in enumerate(self.linear) if n)
        return tuple(exact) + tuple(sorted(self.log.items()))

    def percentiles(self, wanted: Sequence[int]) -> dict[int, float]:
        return percentiles_from_histogram(self.buckets(), self.count, wanted)


class SparseHistogram:
    """The same buckets in a dict: for the many small histograms of one experiment (its windows),
    whose latencies take few distinct values, without a 16,384-slot array each."""

    def __init__(self) -> None:
        self.count = 0
        self.counts: dict[int, int] = {}

    def add(self, micros: int) -> None:
        self.count += 1
        if micros >= LINEAR_LIMIT_US:
            shift = micros.bit_length() - _SUB_BITS
            micros = (micros >> shift) << shift
        self.counts[micros] = self.counts.get(micros, 0) + 1

    def percentiles(self, wanted: Sequence[int]) -> dict[int, float]:
        return percentiles_from_histogram(sorted(self.counts.items()), self.count, wanted)


def percentiles_from_histogram(
    histogram: Iterable[tuple[int, int]], count: int, wanted: Sequence[int] = _PERCENTILES
) -> dict[int, float]:
    """perf_analyzer's percentile rule applied to (bucket µs, count) pairs in ascending order."""
    if count == 0:
        return {p: 0.0 for p in wanted}
    targets = sorted((int(p / 100.0 * (count - 1) + 0.5), p) for p in wanted)
    found: dict[int, float] = {}
    seen = 0
    pending = iter(targets)
    target = next(pending)
    for bucket, n in histogram:
        seen += n
        while target[0] < seen:
            found[target[1]] = float(bucket)
            next_target = next(pending, None)
            if next_target is None:
                return found
            target = next_target
    raise ValueError(f"histogram holds {seen} latencies, expected {count}")
