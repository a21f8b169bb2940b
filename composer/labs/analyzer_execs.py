"""perf_analyzer's runs in a lab's sdk container for one benchmark: output into the run's log,
each sweep point it announces to the metrics recorder and the live view, each attempt its files;
while each runs, the server's count of answered requests to the live view (a model that never
answers shows within seconds, not at the timeout)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from composer.analyzer.attempts import Attempt
from composer.analyzer.perf_analyzer import (
    Outputs,
    explain_failure,
    sweep_points,
    with_deadline,
)
from composer.analyzer.validation import MISMATCH
from composer.analyzer.verdict import Verdict
from composer.core.errors import AnalyzerError
from composer.core.sweep import same_point
from composer.engine.exec import ExecResult, fetch_file, run_in_container
from composer.runs.scraper import Completed, CompletedPoll, MetricsRecorder

if TYPE_CHECKING:
    import docker

Progress = Callable[[Completed], None]
Output = Callable[[str], None]


class Analyzer(Protocol):
    """Where perf_analyzer runs: an sdk container on an engine, or an analyzer pod on a cluster."""

    def run(self, argv: list[str], on_output: Output) -> ExecResult: ...

    def fetch(self, path: str) -> bytes | None: ...


@dataclass(frozen=True)
class ContainerAnalyzer:
    """The lab's sdk container, through the engine's exec and archive APIs."""

    client: docker.DockerClient
    container_id: str

    def run(self, argv: list[str], on_output: Output) -> ExecResult:
        return run_in_container(self.client, self.container_id, argv, on_output)

    def fetch(self, path: str) -> bytes | None:
        return fetch_file(self.client, self.container_id, path)


def mark_points(text: str, recorder: MetricsRecorder, started: list[float | None], on_point: Output) -> None:
    """Each sweep point perf_analyzer announces in its output: the server's metrics scraped where one
    point ends and the next begins, the point appended to ``started`` and shown."""
    for value in sweep_points(text):
        if started:
            recorder.scrape(f"{recorder.sweep} {value:g}")
        started.append(value)
        on_point(f"{recorder.sweep.replace('_', ' ')} {value:g}")


class AnalyzerExecs:
    """The side of composer.analyzer.attempts.run_attempts that touches the engine."""

    def __init__(
        self,
        analyzer: Analyzer,
        log_path: Path,
        recorder: MetricsRecorder,
        on_point: Callable[[str], None],
        first: Outputs,
        *,
        check_lab: Callable[[int], None],  # raises when the lab lost a container (its failure, not perf_analyzer's)
        on_progress: Progress | None = None,  # the live view's count of requests answered
        mismatch: Callable[[], str | None] | None = None,  # which output and step differ (validation_data)
    ) -> None:
        self.analyzer, self.recorder, self.on_point = analyzer, recorder, on_point
        self.first, self.check_lab = first, check_lab
        self.on_progress = on_progress
        self.mismatch = mismatch
        self.poll_every_s = 1.0
        self.began: float | None = None  # when the first exec started: "since perf_analyzer started"
        self.log = log_path.open("w", encoding="utf-8")
        self.started: list[float | None] = []  # points in the order run; None: measured again later

    def outputs_of(self, attempt: Attempt) -> Outputs:
        """Each attempt its own files: perf_analyzer refuses to overwrite a profile export."""
        if attempt.number == 1:
            return self.first
        tag = f".attempt-{attempt.number}"
        export = self.first.profile_export
        return Outputs(self.first.csv.replace(".csv", f"{tag}.csv"), export and export.replace(".json", f"{tag}.json"))

    def output(self, text: str) -> None:
        self.log.write(text)
        self.log.flush()
        mark_points(text, self.recorder, self.started, self.on_point)

    def execute(self, attempt: Attempt, argv: list[str], timeout_s: float) -> ExecResult:
        """Run one attempt's argv; composer.analyzer.attempts judges what it left."""
        if attempt.number > 1:
            last = self.started[-1] if self.started else None
            if attempt.remeasures and last is not None and same_point(last, attempt.sweep.start):
                self.started[-1] = None  # the unstable measurement: its metrics interval is no point
            self.log.write(f"\n--- tisbench: attempt {attempt.number}: {' '.join(argv)}\n")
        with self._polling():
            return self.analyzer.run(with_deadline(argv, timeout_s), self.output)

    @contextlib.contextmanager
    def _polling(self) -> Iterator[None]:
        """The server's count to the live view for as long as one exec runs (none without a view)."""
        self.began = time.monotonic() if self.began is None else self.began
        if self.on_progress is None:
            yield
            return
        with CompletedPoll(self.recorder, self.on_progress, self.began, self.poll_every_s):
            yield

    def failure(self, verdict: Verdict, output: str, timeout_s: float, elapsed_s: float) -> AnalyzerError:
        """A failed run is the lab's failure when the lab lost a container (raised), else perf_analyzer's."""
        self.check_lab(verdict.reported)
        found = self.mismatch() if self.mismatch is not None and MISMATCH in output else None
        if found:  # perf_analyzer says only that an output differs: the replay says which, and where
            return AnalyzerError(
                f"perf_analyzer: {found}",
                "the model's answer differs from the input data's validation_data: fix the model or what is expected",
            )
        error = explain_failure(verdict.exit_code, output, timeout_s, elapsed_s)
        if verdict.exit_code == 137 and elapsed_s >= timeout_s * 0.95 and self.recorder.completed_since_start() == 0:
            return AnalyzerError(  # not a slow measurement: the model never answered
                f"perf_analyzer: no request completed in {elapsed_s:.0f} s (the server answered none for "
                f"{self.recorder.model}; its nv_inference_request_success did not move)",
                "the model does not answer: see logs/triton_server.log in the run dir (a hang, a deadlock, "
                "a request it waits on forever); raise --bench-timeout only for a model that is merely slow",
            )
        return error

    def fetch(self, path: str) -> bytes | None:
        return self.analyzer.fetch(path)
