"""Scrape Triton's /metrics around each sweep point and turn the scrapes into server_metrics.json.

Scrapes go to the lab's metrics port on the host's loopback; a failed scrape becomes a warning,
never a failed benchmark. Raw scrapes are kept beside the document.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from composer.core.errors import AnalyzerError
from composer.core.fsutil import write_atomic, write_json
from composer.core.run_dir import RunDir
from composer.runs.metrics import cross_check, gpus_seen, parse_scrape, point_deltas, server_metrics_document

TIMEOUT_S = 5.0
SUCCESS = "nv_inference_request_success"


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
            with urllib.request.urlopen(self.url, timeout=TIMEOUT_S) as response:  # noqa: S310 - loopback only
                return str(response.read().decode("utf-8", errors="replace"))
        except (OSError, urllib.error.URLError) as exc:
            self.warnings.append(f"metrics scrape at {label} failed ({exc})")
            return None

    def scrape(self, label: str) -> None:
        self.marks.append(_Mark(label, time.monotonic(), self._fetch(label)))

    def completed_since_start(self) -> float | None:
        """Requests the server has answered for the model since the first scrape, asked now (no
        mark is kept: the points' intervals stay as they are); None when its metrics cannot say."""
        first = next((mark.text for mark in self.marks if mark.text), None)
        now = self._fetch("a failure") if first is not None else None
        if first is None or now is None:
            return None
        try:
            before = parse_scrape(first).model_total(SUCCESS, self.model)
            after = parse_scrape(now).model_total(SUCCESS, self.model)
        except AnalyzerError:
            return None
        return None if after is None else after - (before or 0.0)

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
