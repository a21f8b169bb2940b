"""A perf_analyzer run killed at its timeout: when the server's own counter says the model answered
no request at all, the error says so instead of advising fewer requests. The metrics come from a
server on 127.0.0.1 that this test starts and stops."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_metrics import FakeMetrics, serving

from composer.analyzer.verdict import Verdict
from composer.labs.analyzer_execs import AnalyzerExecs, ContainerAnalyzer
from composer.runs.scraper import MetricsRecorder


@pytest.fixture
def metrics() -> Iterator[tuple[str, type[FakeMetrics]]]:
    with serving() as served:
        yield served


def _failure(tmp_path: Path, url: str, completed: int, handler: type[FakeMetrics], elapsed: float = 10.0) -> str:
    recorder = MetricsRecorder(url, "m", "concurrency")
    recorder.scrape("start")
    handler.count = completed
    execs = AnalyzerExecs(
        ContainerAnalyzer(None, "c"),  # type: ignore[arg-type]  # no engine: failure() asks only the metrics
        tmp_path / "log", recorder, lambda p: None, None,  # type: ignore[arg-type]
        check_lab=lambda code: None,
    )  # fmt: skip
    try:
        return execs.failure(Verdict(137, 137), "Request concurrency: 1\n", 10.0, elapsed).one_line()
    finally:
        execs.log.close()


def test_a_timeout_with_no_request_answered_says_so(tmp_path: Path, metrics: tuple[str, type[FakeMetrics]]) -> None:
    line = _failure(tmp_path, metrics[0], 0, metrics[1])

    assert line.startswith("perf_analyzer: no request completed in 10 s")
    assert "triton_server.log" in line and "fewer requests" not in line


def test_a_slow_model_that_answered_keeps_the_timeout_advice(
    tmp_path: Path, metrics: tuple[str, type[FakeMetrics]]
) -> None:
    line = _failure(tmp_path, metrics[0], 5, metrics[1])

    assert "killed after the 10 s timeout" in line and "fewer requests" in line


def test_without_metrics_the_timeout_advice_stands(tmp_path: Path) -> None:
    line = _failure(tmp_path, "http://127.0.0.1:9/metrics", 0, FakeMetrics)

    assert "killed after the 10 s timeout" in line
