"""The live count while perf_analyzer runs: a poll asks the server's counter each tick, hands each
answer on, and stops with the exec (its thread joined); an ask that fails shows nothing and warns of
nothing. The metrics come from a server on 127.0.0.1 that this test starts and stops."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_metrics import FakeMetrics, serving

from composer.analyzer.attempts import Attempt, Window
from composer.core.sweep import Sweep
from composer.engine.exec import ExecResult
from composer.labs import analyzer_execs
from composer.labs.analyzer_execs import AnalyzerExecs, ContainerAnalyzer
from composer.runs.scraper import Completed, CompletedPoll, MetricsRecorder

CLOSED = "http://127.0.0.1:9/metrics"  # the discard port: nothing listens


@pytest.fixture
def metrics() -> Iterator[tuple[str, type[FakeMetrics]]]:
    with serving() as served:
        yield served


def _started(url: str) -> MetricsRecorder:
    recorder = MetricsRecorder(url, "m", "concurrency")
    recorder.scrape("start")
    return recorder


def test_the_poll_counts_since_the_start_scrape_and_stops_with_the_exec(
    metrics: tuple[str, type[FakeMetrics]],
) -> None:
    url, handler = metrics
    handler.count = 40
    recorder = _started(url)
    seen: list[Completed] = []
    poll = CompletedPoll(recorder, seen.append, time.monotonic(), every_s=0.02)
    with poll:
        for count in (50, 70, 100):
            handler.count = count
            time.sleep(0.1)
    assert not poll._thread.is_alive()
    asked = handler.asks
    time.sleep(0.1)
    assert handler.asks == asked  # nothing asks after the exec
    assert seen and seen[-1].ended and seen[-1].requests == 60 and seen[-1].per_s is None
    assert all(c.model == "m" and c.elapsed_s >= 0 for c in seen)
    assert {c.requests for c in seen} <= {10, 30, 60}
    assert any(c.per_s is not None and c.per_s > 0 for c in seen)
    assert recorder.warnings == [] and len(recorder.marks) == 1  # the poll keeps no scrape


def test_a_poll_that_cannot_ask_shows_nothing_and_warns_of_nothing(
    metrics: tuple[str, type[FakeMetrics]], capsys: pytest.CaptureFixture[str]
) -> None:
    recorder = _started(metrics[0])
    recorder.url = CLOSED  # the server's metrics went away after the start scrape
    seen: list[Completed] = []
    with CompletedPoll(recorder, seen.append, time.monotonic(), every_s=0.02):
        time.sleep(0.1)
    assert seen == [] and recorder.warnings == []
    assert capsys.readouterr().err == ""


def test_a_show_that_fails_is_no_traceback(
    metrics: tuple[str, type[FakeMetrics]], capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(completed: Completed) -> None:
        raise RuntimeError("a view that broke")

    with CompletedPoll(_started(metrics[0]), broken, time.monotonic(), every_s=0.02):
        time.sleep(0.1)
    assert capsys.readouterr().err == ""


def test_without_a_start_scrape_the_poll_asks_nothing(metrics: tuple[str, type[FakeMetrics]]) -> None:
    url, handler = metrics
    seen: list[Completed] = []
    with CompletedPoll(MetricsRecorder(url, "m", "concurrency"), seen.append, time.monotonic(), every_s=0.02):
        time.sleep(0.1)
    assert seen == [] and handler.asks == 0


class _View:
    def __init__(self) -> None:
        self.points: list[str] = []
        self.counts: list[Completed] = []

    def point(self, point: str) -> None:
        self.points.append(point)

    def progress(self, completed: Completed) -> None:
        self.counts.append(completed)


def test_analyzer_execs_count_while_perf_analyzer_runs(
    tmp_path: Path, metrics: tuple[str, type[FakeMetrics]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, handler = metrics
    view = _View()

    def perf_analyzer(client: Any, container: str, argv: list[str], on_output: Any) -> ExecResult:
        on_output("Request concurrency: 1\n")
        for count in (5, 25):
            handler.count = count
            time.sleep(0.1)
        return ExecResult(0, "")

    monkeypatch.setattr(analyzer_execs, "run_in_container", perf_analyzer)
    execs = AnalyzerExecs(
        ContainerAnalyzer(None, "c"),  # type: ignore[arg-type]  # no engine: run_in_container is the fake above
        tmp_path / "log", _started(url), view.point, None,  # type: ignore[arg-type]
        check_lab=lambda code: None, on_progress=view.progress,
    )  # fmt: skip
    execs.poll_every_s = 0.02
    try:
        execs.execute(Attempt(1, Sweep("concurrency", 1, 1, 1), Window("count_windows", 200)), ["perf_analyzer"], 10.0)
    finally:
        execs.log.close()
    assert view.points == ["concurrency 1"]
    assert view.counts and view.counts[-1].ended and view.counts[-1].requests == 25
    assert not [t for t in threading.enumerate() if t.name == "tisbench-completed-poll"]  # none outlives its exec
