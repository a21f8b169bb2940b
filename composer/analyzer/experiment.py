"""One experiment (sweep point) of a profile export, summarized as its requests stream past: a
fixed-size latency histogram, a bounded timeline and the response statistics, in bounded memory.
composer.analyzer.profile_export feeds it; the rules for null responses are described there."""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass

from composer.analyzer.histogram import LINEAR_LIMIT_US, Histogram, SparseHistogram

_TIMELINE_START_NS = 10_000_000  # 10 ms buckets, doubled whenever there are too many
_TIMELINE_MAX_BUCKETS = 2_048
_PERCENTILES = (50, 90, 95, 99)


@dataclass(frozen=True)
class TimelinePoint:
    """Requests that completed in [start_ns, start_ns + width_ns)."""

    start_ns: int
    width_ns: int
    count: int
    mean_latency_us: float
    max_latency_us: float


@dataclass(frozen=True)
class ExperimentSummary:
    """One experiment of a profile export.

    ``window_count`` follows perf_analyzer: requests whose last response arrived within the windows
    it reports (its last three). Without boundaries every answered request counts (windowed=False).
    """

    mode: str
    value: float
    request_count: int
    answered_count: int
    window_count: int
    windowed: bool
    window_start_ns: int
    window_end_ns: int
    throughput_infer_per_sec: float
    avg_latency_us: float
    p50_latency_us: float
    p90_latency_us: float
    p95_latency_us: float
    p99_latency_us: float
    histogram: tuple[tuple[int, int], ...]  # (bucket lower bound µs, count), ascending
    timeline: tuple[TimelinePoint, ...]
    windows: tuple[tuple[int, float, float], ...] = ()  # each reported window: (requests, seconds, p99 µs)
    response_count: int = 0  # real responses of the requests in the windows
    responses_per_request: float = 0.0
    first_response_p50_us: float = 0.0
    first_response_p99_us: float = 0.0
    inter_response_p50_us: float | None = None  # None: no request had two responses
    inter_response_p99_us: float | None = None
    if_last_null: ResponseStats | None = None  # the same, every request's last response taken as null

    def response_stats(self) -> ResponseStats:
        return ResponseStats(
            self.response_count,
            self.responses_per_request,
            self.first_response_p50_us,
            self.first_response_p99_us,
            self.inter_response_p50_us,
            self.inter_response_p99_us,
        )


@dataclass(frozen=True)
class ResponseStats:
    """Per-response statistics of one experiment's requests in the windows."""

    response_count: int
    responses_per_request: float
    first_response_p50_us: float
    first_response_p99_us: float
    inter_response_p50_us: float | None
    inter_response_p99_us: float | None


class _Responses:
    """Response counts and histograms of the requests that end in the windows."""

    def __init__(self) -> None:
        self.requests = 0
        self.responses = 0
        self.first = Histogram()
        self.gaps = Histogram()

    def add(self, start_ns: int, stamps: list[int], real: int) -> None:
        self.requests += 1
        self.responses += real
        self.first.add((stamps[0] - start_ns) // 1000)
        for index in range(1, real):
            self.gaps.add((stamps[index] - stamps[index - 1]) // 1000)

    def stats(self) -> ResponseStats:
        first = self.first.percentiles((50, 99))
        gaps = self.gaps.percentiles((50, 99)) if self.gaps.count else {50: None, 99: None}
        per_request = self.responses / self.requests if self.requests else 0.0
        return ResponseStats(self.responses, per_request, first[50], first[99], gaps[50], gaps[99])


class _Timeline:
    """Completions per time bucket; the bucket width doubles so at most 2,048 buckets are kept."""

    def __init__(self) -> None:
        self.width = _TIMELINE_START_NS
        self.cells: dict[int, list[int]] = {}  # bucket → [count, latency sum ns, latency max ns]
        self.key = -1  # completions arrive mostly in time order: cache the current bucket
        self.cell = [0, 0, 0]

    def add(self, end_ns: int, latency_ns: int) -> None:
        key = end_ns // self.width
        if key != self.key:
            cell = self.cells.get(key)
            if cell is None:
                cell = self.cells[key] = [0, 0, 0]
                if len(self.cells) > _TIMELINE_MAX_BUCKETS:
                    self._coarsen()
                    self.add(end_ns, latency_ns)
                    return
            self.key, self.cell = key, cell
        cell = self.cell
        cell[0] += 1
        cell[1] += latency_ns
        if latency_ns > cell[2]:
            cell[2] = latency_ns

    def _coarsen(self) -> None:
        merged: dict[int, list[int]] = {}
        for key, (count, total, peak) in self.cells.items():
            cell = merged.setdefault(key // 2, [0, 0, 0])
            cell[0] += count
            cell[1] += total
            cell[2] = max(cell[2], peak)
        self.width *= 2
        self.cells = {k: c for k, c in merged.items() if c[0]}
        self.key = -1

    def points(self) -> tuple[TimelinePoint, ...]:
        return tuple(
            TimelinePoint(key * self.width, self.width, c, total / c / 1000, peak / 1000)
            for key, (c, total, peak) in sorted(self.cells.items())
            if c
        )


class Accumulator:
    """Bounded per-experiment state: counts, exact latency sum, histograms, timeline."""

    def __init__(self, bounds: tuple[int, ...] | None) -> None:
        """``bounds``: the reported windows' boundaries (the first opens them, the last closes them)."""
        self.window = (bounds[0], bounds[-1]) if bounds else None
        self.bounds = bounds or ()
        self.per_window = [SparseHistogram() for _ in self.bounds[1:]]  # each window's latencies
        self.requests = 0
        self.answered = 0
        self.total_ns = 0
        self.first_ns = math.inf
        self.last_ns = -math.inf
        self.latency = Histogram()
        self.exported = _Responses()  # responses as the export shows them
        self.timeline = _Timeline()
        self.last_null = _Responses()  # every request's last response taken as null

    def add(self, start_ns: int | None, stamps: list[int], last_is_null: bool) -> None:
        """One request: its timestamp and response timestamps, the last one maybe a null response."""
        self.requests += 1
        real = len(stamps) - 1 if last_is_null else len(stamps)
        if start_ns is None:
            return
        if not last_is_null and real > 1:  # the reading perf_analyzer ≤ 2.51's exports may need
            self._add_last_null(start_ns, stamps, real - 1)
        if real < 1 or stamps[real - 1] < start_ns:
            return
        end_ns = stamps[real - 1]
        self.answered += 1
        latency = end_ns - start_ns
        self.timeline.add(end_ns, latency)
        if start_ns < self.first_ns:
            self.first_ns = start_ns
        if end_ns > self.last_ns:
            self.last_ns = end_ns
        window = self.window
        if window is not None and not window[0] <= end_ns <= window[1]:
            return
        self.total_ns += latency
        if last_is_null:
            self.last_null.add(start_ns, stamps, real)
        micros = latency // 1000
        if window is not None:
            self.per_window[min(max(bisect_right(self.bounds, end_ns) - 1, 0), len(self.per_window) - 1)].add(micros)
        if real == 1 and micros < LINEAR_LIMIT_US:  # the common case, inlined: one response, under 16 ms
            self.latency.count += 1
            self.latency.linear[micros] += 1
            exported = self.exported
            exported.requests += 1
            exported.responses += 1
            exported.first.count += 1
            exported.first.linear[micros] += 1
            return
        self.latency.add(micros)
        self.exported.add(start_ns, stamps, real)

    def _add_last_null(self, start_ns: int, stamps: list[int], real: int) -> None:
        end_ns = stamps[real - 1]
        window = self.window
        if end_ns >= start_ns and (window is None or window[0] <= end_ns <= window[1]):
            self.last_null.add(start_ns, stamps, real)

    def finish(self, mode: str, value: float) -> ExperimentSummary:
        count = self.latency.count
        pcts = self.latency.percentiles(_PERCENTILES)
        responses = self.exported.stats()
        if self.window is not None:
            start, end = self.window
        elif self.answered:
            start, end = int(self.first_ns), int(self.last_ns)
        else:
            start = end = 0
        seconds = (end - start) / 1e9
        return ExperimentSummary(
            mode=mode,
            value=value,
            request_count=self.requests,
            answered_count=self.answered,
            window_count=count,
            windowed=self.window is not None,
            window_start_ns=start,
            window_end_ns=end,
            throughput_infer_per_sec=count / seconds if seconds > 0 else 0.0,
            avg_latency_us=self.total_ns / count / 1000 if count else 0.0,
            p50_latency_us=pcts[50],
            p90_latency_us=pcts[90],
            p95_latency_us=pcts[95],
            p99_latency_us=pcts[99],
            histogram=self.latency.buckets(),
            windows=tuple(
                (h.count, (b - a) / 1e9, h.percentiles((99,))[99])
                for h, a, b in zip(self.per_window, self.bounds, self.bounds[1:], strict=False)
            ),
            timeline=self.timeline.points(),
            response_count=responses.response_count,
            responses_per_request=responses.responses_per_request,
            first_response_p50_us=responses.first_response_p50_us,
            first_response_p99_us=responses.first_response_p99_us,
            inter_response_p50_us=responses.inter_response_p50_us,
            inter_response_p99_us=responses.inter_response_p99_us,
            if_last_null=self.last_null.stats() if self.last_null.requests else None,
        )
