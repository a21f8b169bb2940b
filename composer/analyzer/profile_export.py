"""Streamed summaries of perf_analyzer's profile export (--profile-export-file).

The export holds every request of every experiment (hundreds of MB for long runs), so it is never
loaded whole: one event-level pass over it with ijson keeps a fixed-size latency histogram and a
bounded timeline per experiment.

Percentiles come from composer.analyzer.histogram (perf_analyzer's own rule, exact below 16.384 ms).

Responses follow perf_analyzer too: a decoupled model's final flag-only response (a *null*
response: every output exported as ``""``) is no response; a request ends at its last real one.
perf_analyzer ≤ 2.51 exports a null response's numeric outputs as a number read past an empty
buffer (its RecordData copies a zero-length buffer, so its exporter never sees nullptr), which
no reader can tell from a real one. Each experiment therefore also carries ``if_last_null``: the
same statistics with every request's last response taken as null, and the CSV's own response
count (its Response Throughput, which perf_analyzer computes without null responses) picks one.
First-response latency is that response's timestamp minus the request's, inter-response gaps are
the differences between consecutive responses of one request (genai-perf's time to first token and
chunked inter-token latency), both over the requests counted in the measurement windows.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import ijson

from composer.analyzer.histogram import LINEAR_LIMIT_US, Histogram, percentiles_from_histogram
from composer.core.errors import AnalyzerError

__all__ = ["LINEAR_LIMIT_US", "ExperimentSummary", "TimelinePoint", "percentiles_from_histogram"]
from composer.analyzer.utf8_stream import RepairedUtf8

try:
    _ijson: Any = ijson.get_backend("yajl2_c")
except ImportError:  # pragma: no cover - the C backend ships in ijson's wheels
    _ijson = ijson

_TIMELINE_START_NS = 10_000_000  # 10 ms buckets, doubled whenever there are too many
_TIMELINE_MAX_BUCKETS = 2_048
_PERCENTILES = (50, 90, 95, 99)
_REPORTED_WINDOWS = 3


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


class _Accumulator:
    """Bounded per-experiment state: counts, exact latency sum, histograms, timeline."""

    def __init__(self, window: tuple[int, int] | None) -> None:
        self.window = window
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
            timeline=self.timeline.points(),
            response_count=responses.response_count,
            responses_per_request=responses.responses_per_request,
            first_response_p50_us=responses.first_response_p50_us,
            first_response_p99_us=responses.first_response_p99_us,
            inter_response_p50_us=responses.inter_response_p50_us,
            inter_response_p99_us=responses.inter_response_p99_us,
            if_last_null=self.last_null.stats() if self.last_null.requests else None,
        )


def _window(bounds: Sequence[int]) -> tuple[int, int] | None:
    """perf_analyzer reports the merge of its last 3 windows (its stability window): earlier trials
    of a point that took more are not part of its measurement."""
    if len(bounds) < 2:
        return None
    last = sorted(bounds)[-(_REPORTED_WINDOWS + 1) :]
    return (last[0], last[-1])


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
    5 one request · 6 a request's arrays (response_timestamps, response_outputs) · 7 one response's
    outputs. ``shown`` tracks the latest response: 0 no output yet, 1 only "" (null), 2 content.
    """
    summaries: list[ExperimentSummary] = []
    observed: list[tuple[int, int] | None] = []
    depth = 0
    k1 = k3 = k4 = k5 = ""
    mode, value = "", 0.0
    bounds: list[int] = []
    acc: _Accumulator | None = None
    start: int | None = None
    stamps: list[int] = []
    shown = 0
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
                    stamps.append(val)
            elif depth == 7:
                if k5 == "response_outputs":
                    shown = 2
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
            if depth == 7:
                shown = 0
            elif depth == 5:
                start, stamps, shown = None, [], 0
            elif depth == 3 and k1 == "experiments":
                mode, value, bounds, acc, k3 = "", 0.0, [], None, ""
            elif depth == 8 and k5 == "response_outputs":
                shown = 2
        elif event == "end_map":
            depth -= 1
            if depth == 4:
                if k3 == "requests" and acc is not None:
                    acc.add(start, stamps, shown == 1)
            elif depth == 2 and k1 == "experiments":
                observed.append(_window(bounds))
                summaries.append((acc or _Accumulator(observed[-1])).finish(mode, value))
        elif event == "start_array":
            depth += 1
            if depth == 4 and k3 == "requests" and k1 == "experiments":
                index = len(summaries)
                hint = hints[index] if index < len(hints) else None
                acc = _Accumulator(_window(bounds) if bounds else hint)
            elif depth == 8 and k5 == "response_outputs":
                shown = 2
        elif event == "end_array":
            depth -= 1
        elif event == "string":
            if depth == 7:
                if k5 == "response_outputs":
                    shown = 1 if val == "" and shown != 2 else 2
            elif depth == 4 and k3 == "experiment" and k4 == "mode":
                mode = val
        elif depth == 7 and k5 == "response_outputs":  # boolean, null
            shown = 2
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
