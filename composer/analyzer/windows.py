"""Per-window statistics of a profile export: requests, length and latency percentile of each of
perf_analyzer's reported measurement windows (its last three), per experiment.

perf_analyzer's CSV gives one average per sweep point; its export's ``window_boundaries`` let a
reader see the spread inside it. A request belongs to the window in which its last response
arrived (perf_analyzer's own rule). Streamed with ijson: requests are reduced to (end, latency)
pairs as they pass.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ijson

from composer.analyzer.histogram import Histogram
from composer.core.errors import AnalyzerError

try:
    _ijson: Any = ijson.get_backend("yajl2_c")
except ImportError:  # pragma: no cover - the C backend ships in ijson's wheels
    _ijson = ijson

REPORTED_WINDOWS = 3
_REQUEST = "experiments.item.requests.item"


@dataclass(frozen=True)
class WindowStats:
    requests: int
    seconds: float
    latency_us: float  # the asked percentile of the requests that ended in the window


@dataclass(frozen=True)
class ExperimentWindows:
    value: float
    windows: tuple[WindowStats, ...]
    latency_us: float  # the percentile over all reported windows together (perf_analyzer's figure)


def _split(ends: list[tuple[int, int]], bounds: list[int], percentile: int) -> ExperimentWindows | None:
    last = sorted(bounds)[-(REPORTED_WINDOWS + 1) :]
    if len(last) < 2:
        return None
    per = [Histogram() for _ in last[:-1]]
    merged = Histogram()
    for end_ns, latency_us in ends:
        index = bisect_right(last, end_ns) - 1
        if 0 <= index < len(per) or end_ns == last[-1]:
            per[min(index, len(per) - 1)].add(latency_us)
            merged.add(latency_us)
    windows = tuple(
        WindowStats(h.count, (b - a) / 1e9, h.percentiles((percentile,))[percentile])
        for h, a, b in zip(per, last[:-1], last[1:], strict=True)
    )
    return ExperimentWindows(0.0, windows, merged.percentiles((percentile,))[percentile])


def experiment_windows(path: Path, percentile: int = 99) -> list[ExperimentWindows]:
    """Each experiment's reported windows; an experiment without boundaries is left out."""
    out: list[ExperimentWindows] = []
    ends: list[tuple[int, int]] = []
    bounds: list[int] = []
    start: int | None = None
    last: int | None = None
    value = 0.0
    try:
        with path.open("rb") as stream:
            for prefix, event, val in _ijson.parse(stream, use_float=True):
                if prefix == _REQUEST and event == "start_map":
                    start = last = None
                elif prefix == f"{_REQUEST}.timestamp":
                    start = int(val)
                elif prefix == f"{_REQUEST}.response_timestamps.item":
                    last = int(val)
                elif prefix == _REQUEST and event == "end_map" and start is not None and last is not None:
                    ends.append((last, (last - start) // 1000))
                elif prefix == "experiments.item.window_boundaries.item":
                    bounds.append(int(val))
                elif prefix == "experiments.item.experiment.value":
                    value = float(val)
                elif prefix == "experiments.item" and event == "end_map":
                    found = _split(ends, bounds, percentile)
                    if found is not None:
                        out.append(ExperimentWindows(value, found.windows, found.latency_us))
                    ends, bounds = [], []
    except OSError as exc:
        raise AnalyzerError(f"{path}: cannot read profile export ({exc.strerror})") from None
    except ijson.JSONError as exc:
        raise AnalyzerError(f"{path}: profile export is not valid JSON ({exc})") from None
    return out
