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
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, cast

import ijson

from composer.analyzer.experiment import Accumulator, ExperimentSummary
from composer.analyzer.utf8_stream import RepairedUtf8
from composer.core.errors import AnalyzerError

try:
    _ijson: Any = ijson.get_backend("yajl2_c")
except ImportError:  # pragma: no cover - the C backend ships in ijson's wheels
    _ijson = ijson

_REPORTED_WINDOWS = 3


def _window(bounds: Sequence[int]) -> tuple[int, ...] | None:
    """The boundaries of the windows perf_analyzer reports, merged (its last 3: its stability
    window); earlier trials of a point that took more are not part of its measurement."""
    if len(bounds) < 2:
        return None
    return tuple(sorted(bounds)[-(_REPORTED_WINDOWS + 1) :])


def scan_window_hints(stream: IO[bytes], chunk_size: int = 1 << 20) -> list[tuple[int, ...] | None]:
    """Each experiment's window, read by a byte scan for the ``"window_boundaries":`` key.

    perf_analyzer writes the boundaries after the requests, so the streaming pass needs them
    beforehand. A JSON string cannot contain that key unescaped, but an input *named*
    window_boundaries could fool the scan: the streaming pass checks every hint against the
    boundaries it parses and redoes the pass when one was wrong, so results are always exact.
    """
    key = b'"window_boundaries":'
    hints: list[tuple[int, ...] | None] = []
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


# What _layout yields: the start of an experiment's requests (with the boundaries already parsed,
# when they precede them), each request (its timestamp, response timestamps, whether its last
# response was a null one), and each experiment's end (its mode, value and window boundaries).
_REQUESTS, _REQUEST, _EXPERIMENT = 0, 1, 2


def _layout(stream: IO[bytes]) -> Iterator[tuple[Any, ...]]:
    """perf_analyzer's export layout, event by event. Depths: 1 root · 3 experiment · 4 its values ·
    5 one request · 6 its arrays (response_timestamps, response_outputs) · 7 one response's outputs.
    ``shown`` tracks the latest response: 0 no output yet, 1 only "" (null), 2 content."""
    depth = 0
    k1 = k3 = k4 = k5 = mode = ""
    value, bounds, start, stamps, shown = 0.0, [], None, [], 0
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
        elif event == "number":  # the depths of one chain exclude each other: the first match is the only one
            if depth == 6 and k5 == "response_timestamps":
                stamps.append(val)
            elif depth == 7 and k5 == "response_outputs":
                shown = 2
            elif depth == 5 and k5 == "timestamp":
                start = val
            elif depth == 4 and k3 == "window_boundaries":
                bounds.append(int(val))
            elif depth == 4 and k3 == "experiment" and k4 == "value":
                value = val
        elif event == "start_map":
            depth += 1
            if depth == 7:
                shown = 0
            elif depth == 5:
                start, stamps, shown = None, [], 0
            elif depth == 3 and k1 == "experiments":
                mode, value, bounds, k3 = "", 0.0, [], ""
            elif depth == 8 and k5 == "response_outputs":
                shown = 2
        elif event == "end_map":
            depth -= 1
            if depth == 4 and k3 == "requests":
                yield _REQUEST, start, stamps, shown == 1
            elif depth == 2 and k1 == "experiments":
                yield _EXPERIMENT, mode, value, bounds
        elif event == "start_array":
            depth += 1
            if depth == 4 and k3 == "requests" and k1 == "experiments":
                yield _REQUESTS, bounds
            elif depth == 8 and k5 == "response_outputs":
                shown = 2
        elif event == "end_array":
            depth -= 1
        elif event == "string":
            if depth == 7 and k5 == "response_outputs":
                shown = 1 if val == "" and shown != 2 else 2
            elif depth == 4 and k3 == "experiment" and k4 == "mode":
                mode = val
        elif depth == 7 and k5 == "response_outputs":  # boolean, null
            shown = 2


def _walk(
    stream: IO[bytes], hints: Sequence[tuple[int, ...] | None]
) -> tuple[list[ExperimentSummary], list[tuple[int, ...] | None]]:
    """One pass; returns the summaries and each experiment's parsed window.

    Requests are filtered with ``hints`` (or with boundaries already parsed, when they precede
    the requests); the caller redoes the pass when a hint differs from the parsed window."""
    summaries: list[ExperimentSummary] = []
    observed: list[tuple[int, ...] | None] = []
    acc: Accumulator | None = None
    for item in _layout(stream):
        kind = item[0]
        if kind == _REQUEST:
            if acc is not None:
                acc.add(item[1], item[2], item[3])
        elif kind == _REQUESTS:
            index = len(summaries)
            hint = hints[index] if index < len(hints) else None
            acc = Accumulator(_window(item[1]) if item[1] else hint)
        else:
            _, mode, value, bounds = item
            observed.append(_window(bounds))
            summaries.append((acc or Accumulator(observed[-1])).finish(mode, value))
            acc = None
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
    path: Path, hints: Sequence[tuple[int, ...] | None], *, repair: bool
) -> tuple[list[ExperimentSummary], list[tuple[int, ...] | None]]:
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
