"""Scrape Triton's /metrics around each sweep point and turn the scrapes into server_metrics.json;
while perf_analyzer runs, ask the model's answered-request counter each second for the live view.

Scrapes go to the lab's metrics port on the host's loopback; a failed scrape becomes a warning,
never a failed benchmark, and a failed live ask shows nothing. Raw scrapes are kept beside the document.
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from composer.core.errors import AnalyzerError
from composer.core.fsutil import write_atomic, write_json
from composer.core.run_dir import RunDir
from composer.runs.metrics import cross_check, gpus_seen, parse_scrape, point_deltas, server_metrics_document

TIMEOUT_S = 5.0
POLL_TIMEOUT_S = 1.0  # a live ask: the next one comes in a second anyway
SUCCESS = "nv_inference_request_success"


def _read(url: str, timeout_s: float) -> str:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - loopback only
        return str(response.read().decode("utf-8", errors="replace"))


def _completed(first: str | None, now: str | None, model: str) -> float | None:
    """The model's answered requests between two scrapes; None when they cannot say."""
    if first is None or now is None:
        return None
    try:
        before = parse_scrape(first).model_total(SUCCESS, model)
        after = parse_scrape(now).model_total(SUCCESS, model)
    except AnalyzerError:
        return None
    return None if after is None else after - (before or 0.0)


@dataclass(frozen=True)
class ClientCount:
    """perf_analyzer's side of one sweep point, from its profile export."""

    requests: int
    window_s: float  # from the first to the last window boundary
    throughput: float


@dataclass
class _Mark:
    label: str  # "start", or the sweep point perf_analyzer announced, e.g. "request concurrency 2"
    at: float
    text: str | None


@dataclass
class MetricsRecorder:
    url: str
    model: str
    sweep: str
    marks: list[_Mark] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def _fetch(self, label: str) -> str | None:
        try:
            return _read(self.url, TIMEOUT_S)
        except (OSError, urllib.error.URLError) as exc:
            self.warnings.append(f"metrics scrape at {label} failed ({exc})")
            return None

    def scrape(self, label: str) -> None:
        self.marks.append(_Mark(label, time.monotonic(), self._fetch(label)))

    def completed_since_start(self) -> float | None:
        """Requests the server has answered for the model since the first scrape, asked now (no
        mark is kept: the points' intervals stay as they are); None when its metrics cannot say."""
        first = self._first_text()
        return _completed(first, self._fetch("a failure") if first is not None else None, self.model)

    def completed_now(self, timeout_s: float = POLL_TIMEOUT_S) -> float | None:
        """completed_since_start for the live view: a failed ask warns of nothing, it is just None."""
        first = self._first_text()
        if first is None:
            return None
        try:
            return _completed(first, _read(self.url, timeout_s), self.model)
        except (OSError, ValueError, http.client.HTTPException):
            return None

    def _first_text(self) -> str | None:
        return next((mark.text for mark in list(self.marks) if mark.text), None)

    def points(self, values: list[float | None]) -> list[dict[str, Any]]:
        """Per-point deltas: scrape i and i+1 bracket the i-th sweep point perf_analyzer ran
        (None: a measurement that was discarded, such as an unstable point measured again)."""
        out = []
        for index, value in enumerate(values):
            if index + 1 >= len(self.marks):
                if value is not None:
                    self.warnings.append(f"no closing metrics scrape for {self.sweep} {value:g}")
                break
            before, after = self.marks[index], self.marks[index + 1]
            if value is None or before.text is None or after.text is None:
                continue
            try:
                out.append(
                    point_deltas(
                        before.text,
                        after.text,
                        self.model,
                        sweep=self.sweep,
                        value=value,
                        elapsed_s=after.at - before.at,
                    )
                )
            except AnalyzerError as exc:
                self.warnings.append(exc.one_line())
        return out

    def write(self, run_dir: Path, values: list[float | None], clients: dict[float, ClientCount]) -> dict[str, Any]:
        """Write metrics/scrape-N.txt and server_metrics.json; cross-check counts where known."""
        for index, mark in enumerate(self.marks):
            if mark.text is not None:
                write_atomic(RunDir(run_dir).metrics / f"scrape-{index}-{mark.label.replace(' ', '_')}.txt", mark.text)
        points = self.points(values)
        for point in points:
            value = point.get(self.sweep)
            served = point["counters"].get("nv_inference_request_success")
            client = clients.get(float(value)) if value is not None else None
            if value is None or served is None or client is None:
                continue
            point["client_request_count"] = client.requests
            # perf_analyzer keeps the load on between and after its windows: what the server may
            # also have served is the client's rate over the part of our interval outside them.
            outside_s = max(0.0, float(point.get("elapsed_s", 0.0)) - client.window_s)
            expected_max = client.requests + int(client.throughput * outside_s)
            point["client_request_count_max"] = expected_max
            warning = cross_check(
                int(served),
                client.requests,
                expected_max,
                slack=int(value) if self.sweep == "concurrency" else 0,
                what=f"{self.sweep} {value:g}",
            )
            if warning:
                point["warnings"].append(warning)
        last = next((m.text for m in reversed(self.marks) if m.text), None)
        document = server_metrics_document(points, gpus_seen(last) if last else [], self.warnings)
        write_json(RunDir(run_dir).server_metrics, document)
        return document


@dataclass(frozen=True)
class Completed:
    """The server's count of the model's answered requests since perf_analyzer started, asked live."""

    model: str
    requests: float
    elapsed_s: float  # since the first exec of the run began
    per_s: float | None  # over the last ask's interval; None for the first, and for the last
    ended: bool = False  # asked once the exec ended


class CompletedPoll:
    """While one perf_analyzer exec runs, a daemon thread asks the counter each second and hands
    each answer to ``show``; the exec's end stops and joins it (one last ask), so it never outlives
    the run. One GET to the metrics port a second, nothing on the measurement's path; an ask or a
    show that fails shows nothing."""

    def __init__(
        self, recorder: MetricsRecorder, show: Callable[[Completed], None], began: float, every_s: float = 1.0
    ) -> None:
        self.recorder, self.show, self.began, self.every_s = recorder, show, began, every_s
        self._stop = threading.Event()
        self._last_ask = True
        self._thread = threading.Thread(target=self._run, name="tisbench-completed-poll", daemon=True)

    def __enter__(self) -> CompletedPoll:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self._last_ask = kind is None  # an interrupted exec: no last ask to wait on
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        last: tuple[float, float] | None = None
        while not self._stop.wait(self.every_s):
            last = self._ask(last, ended=False)
        if self._last_ask:
            self._ask(last, ended=True)

    def _ask(self, last: tuple[float, float] | None, *, ended: bool) -> tuple[float, float] | None:
        """Show one answer; the (time, count) it was, for the next one's rate."""
        try:
            count = self.recorder.completed_now()
            if count is None:
                return last
            at = time.monotonic()
            per_s = (count - last[1]) / (at - last[0]) if last and at > last[0] and not ended else None
            self.show(Completed(self.recorder.model, count, at - self.began, per_s, ended))
            return at, count
        except Exception:  # the poll only shows: it never fails a run, nor prints a traceback
            return last
