"""Streamed summaries of perf_analyzer's profile export (--profile-export-file).

The export holds every request of every experiment (hundreds of MB for long runs), so it is never
loaded whole: one event-level pass over it with ijson keeps a fixed-size latency histogram and a
bounded timeline per experiment.

Latency histogram resolution: exact 1 µs buckets below 16.384 ms; above, log-spaced buckets of
relative width below 1/8192 (0.0122 %). Percentiles use perf_analyzer's own rule (sorted latencies,
index ``int(p/100·(n−1)+0.5)``, value truncated to µs), so below 16 ms they equal a brute-force
computation exactly, and above it they agree within 0.0122 % + 1 µs.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import ijson

from composer.errors import AnalyzerError
from composer.utf8_stream import RepairedUtf8

try:
    _ijson: Any = ijson.get_backend("yajl2_c")
except ImportError:  # pragma: no cover - the C backend ships in ijson's wheels
    _ijson = ijson

LINEAR_LIMIT_US = 16_384  # exact 1 µs buckets below this
_SUB_BITS = 14  # log buckets keep the top 14 bits of the µs value
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

    ``window_count`` follows perf_analyzer: requests whose last response arrived between the first
    and last window boundary. Without boundaries every answered request counts (windowed=False).
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


class _Accumulator:
    """Bounded per-experiment state: counts, exact latency sum, histogram, timeline."""

    def __init__(self, window: tuple[int, int] | None) -> None:
        self.window = window
        self.requests = 0
        self.answered = 0
        self.count = 0
        self.total_ns = 0
        self.first_ns = math.inf
        self.last_ns = -math.inf
        self.linear = [0] * LINEAR_LIMIT_US
        self.log: dict[int, int] = {}
        self.timeline = _Timeline()

    def add(self, start_ns: int | None, end_ns: int | None) -> None:
        self.requests += 1
        if start_ns is None or end_ns is None or end_ns < start_ns:
            return
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
        self.count += 1
        self.total_ns += latency
        micros = latency // 1000
        if micros < LINEAR_LIMIT_US:
            self.linear[micros] += 1
        else:
            shift = micros.bit_length() - _SUB_BITS
            low = (micros >> shift) << shift
            self.log[low] = self.log.get(low, 0) + 1

    def histogram(self) -> tuple[tuple[int, int], ...]:
        exact = ((us, n) for us, n in enumerate(self.linear) if n)
        return tuple(exact) + tuple(sorted(self.log.items()))

    def finish(self, mode: str, value: float) -> ExperimentSummary:
        histogram = self.histogram()
        pcts = percentiles_from_histogram(histogram, self.count)
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
            window_count=self.count,
            windowed=self.window is not None,
            window_start_ns=start,
            window_end_ns=end,
            throughput_infer_per_sec=self.count / seconds if seconds > 0 else 0.0,
            avg_latency_us=self.total_ns / self.count / 1000 if self.count else 0.0,
            p50_latency_us=pcts[50],
            p90_latency_us=pcts[90],
            p95_latency_us=pcts[95],
            p99_latency_us=pcts[99],
            histogram=histogram,
            timeline=self.timeline.points(),
        )


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


def _window(bounds: Sequence[int]) -> tuple[int, int] | None:
    return (min(bounds), max(bounds)) if len(bounds) >= 2 else None


def scan_window_hints(stream: IO[bytes], chunk_size: int = 1 << 20) -> list[tuple[int, int] | None]:
    """Each experiment's window, read by a byte scan for the ``"window_boundaries":`` key.

    perf_analyzer writes the boundaries after the requests, so the streaming pass needs them
    beforehand. A JSON string cannot contain that key unescaped, but an input *named*
    window_boundaries could fool the scan: the streaming pass checks every hint against the
    boundaries it parses and redoes the pass when one was wrong, so results are always exact.
    """
    key = b'"window_boundaries":'
    hints: list[tuple[int, int] | None] = []
    buffer = b""
    while chunk := stream.read(chunk_size):
        buffer += chunk
        start = 0
        while (at := buffer.find(key, start)) >= 0:
            close = buffer.find(b"]", at)
            if close < 0:
                break
            try:
                bounds = json.loads(buffer[at + len(key) : close + 1])
                hints.append(_window([int(b) for b in bounds]))
            except (ValueError, TypeError):
                hints.append(None)
            start = close + 1
        else:
            start = max(start, len(buffer) - len(key))
        buffer = buffer[start:]
    return hints


def _walk(
    stream: IO[bytes], hints: Sequence[tuple[int, int] | None]
) -> tuple[list[ExperimentSummary], list[tuple[int, int] | None]]:
    """One event-level pass; returns the summaries and each experiment's parsed window.

    Requests are filtered with ``hints`` (or with boundaries already parsed, when they precede
    the requests); the caller redoes the pass when a hint differs from the parsed window.

    Depths: 1 root · 3 experiment · 4 its "experiment"/"requests"/"window_boundaries" values ·
    5 one request · 6 a request's arrays (response_timestamps).
    """
    summaries: list[ExperimentSummary] = []
    observed: list[tuple[int, int] | None] = []
    depth = 0
    k1 = k3 = k4 = k5 = ""
    mode, value = "", 0.0
    bounds: list[int] = []
    acc: _Accumulator | None = None
    start: int | None = None
    end: int | None = None
    for event, val in _ijson.basic_parse(stream, use_float=True, buf_size=1 << 16):
        if event == "map_key":
            if depth == 5:
                k5 = val
            elif depth == 3:
                k3 = val
            elif depth == 4:
                k4 = val
            elif depth == 1:
                k1 = val
        elif event == "number":
            if depth == 6:
                if k5 == "response_timestamps":
                    end = val
            elif depth == 5:
                if k5 == "timestamp":
                    start = val
            elif depth == 4:
                if k3 == "window_boundaries":
                    bounds.append(int(val))
                elif k3 == "experiment" and k4 == "value":
                    value = val
        elif event == "start_map":
            depth += 1
            if depth == 5:
                start = end = None
            elif depth == 3 and k1 == "experiments":
                mode, value, bounds, acc, k3 = "", 0.0, [], None, ""
        elif event == "end_map":
            depth -= 1
            if depth == 4:
                if k3 == "requests" and acc is not None:
                    acc.add(start, end)
            elif depth == 2 and k1 == "experiments":
                observed.append(_window(bounds))
                summaries.append((acc or _Accumulator(observed[-1])).finish(mode, value))
        elif event == "start_array":
            depth += 1
            if depth == 4 and k3 == "requests" and k1 == "experiments":
                index = len(summaries)
                hint = hints[index] if index < len(hints) else None
                acc = _Accumulator(_window(bounds) if bounds else hint)
        elif event == "end_array":
            depth -= 1
        elif event == "string" and depth == 4 and k3 == "experiment" and k4 == "mode":
            mode = val
    return summaries, observed


def summarize_profile_export(path: Path) -> list[ExperimentSummary]:
    """Per-experiment summary of a perf_analyzer profile export, in bounded memory.

    One run reads its export several times (server-metrics cross-check, reports): the pass is
    made once per file version (path, size, mtime)."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise AnalyzerError(f"{path}: cannot read profile export ({exc.strerror})") from None
    return list(_summarize(path.resolve(), stat.st_size, stat.st_mtime_ns))


def _walk_file(
    path: Path, hints: Sequence[tuple[int, int] | None], *, repair: bool
) -> tuple[list[ExperimentSummary], list[tuple[int, int] | None]]:
    with path.open("rb") as stream:
        return _walk(cast(IO[bytes], RepairedUtf8(stream)) if repair else stream, hints)


@functools.lru_cache(maxsize=8)
def _summarize(path: Path, size: int, mtime_ns: int) -> tuple[ExperimentSummary, ...]:
    try:
        with path.open("rb") as stream:
            hints = scan_window_hints(stream)
        repair = False
        try:
            summaries, observed = _walk_file(path, hints, repair=repair)
        except (ijson.JSONError, UnicodeDecodeError):  # raw bytes in strings (perf_analyzer 2.44): repair, retry
            repair = True
            summaries, observed = _walk_file(path, hints, repair=repair)
        if observed != hints:
            summaries, _ = _walk_file(path, observed, repair=repair)
    except OSError as exc:
        raise AnalyzerError(f"{path}: cannot read profile export ({exc.strerror})") from None
    except ijson.JSONError as exc:
        raise AnalyzerError(
            f"{path}: profile export is not valid JSON ({exc})",
            hint="perf_analyzer may have been interrupted while writing it; rerun the benchmark",
        ) from None
    return tuple(summaries)
