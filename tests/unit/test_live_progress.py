"""The live view's count of requests the server answered: the line's words, the note for a model
that answered nothing in 5 s (said once), and off a terminal few lines (a count as a point ends or
every ~10 s, never each second)."""

from __future__ import annotations

import pytest

from composer.cli import live
from composer.cli.live import LiveView, count_text, stalled_note
from composer.runs.scraper import Completed


def _count(requests: float, elapsed_s: float, per_s: float | None = None, ended: bool = False) -> Completed:
    return Completed("m", requests, elapsed_s, per_s, ended)


def test_the_count_reads_with_thousands_and_a_rate() -> None:
    assert count_text(_count(12345, 3.0, 812.4)) == "12,345 requests completed (812/s)"
    assert count_text(_count(3, 3.0, 0.5)) == "3 requests completed (0.5/s)"
    assert count_text(_count(0, 6.0, 0.0)) == "0 requests completed (0/s)"
    assert count_text(_count(0, 1.0)) == "0 requests completed"


def test_nothing_answered_in_5_s_is_a_note_naming_the_counter_and_model() -> None:
    assert stalled_note(_count(0, 4.9)) is None
    assert stalled_note(_count(1, 30.0)) is None
    note = stalled_note(_count(0, 5.0))
    assert note == "no request completed in 5 s yet (the server's nv_inference_request_success for m has not moved)"


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    fake = _Clock()
    monkeypatch.setattr(live.time, "monotonic", fake)
    return fake


def _plain_view(monkeypatch: pytest.MonkeyPatch) -> LiveView:
    monkeypatch.setattr(live.sys.stderr, "isatty", lambda: False, raising=False)
    return LiveView("lab-x")


def test_off_a_terminal_a_count_each_10_s_and_as_a_point_ends(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], clock: _Clock
) -> None:
    with _plain_view(monkeypatch) as view:
        view.point("concurrency 1")
        for second in range(1, 10):  # each second a count: none printed yet
            clock.now += 1
            view.progress(_count(100 * second, second, 100.0))
        assert capsys.readouterr().err == "tisbench: measuring at concurrency 1\n"
        clock.now += 1
        view.progress(_count(1000, 10, 100.0))  # ~10 s since the last line
        clock.now += 1
        view.progress(_count(1100, 11, 100.0))
        assert capsys.readouterr().err == "tisbench: concurrency 1 · 1,000 requests completed (100/s)\n"
        view.point("concurrency 2")  # the point that ended: its last count first
        clock.now += 1
        view.progress(_count(1300, 12, 200.0, ended=True))  # perf_analyzer's exec ended
    assert capsys.readouterr().err.splitlines() == [
        "tisbench: concurrency 1 · 1,100 requests completed (100/s)",
        "tisbench: measuring at concurrency 2",
        "tisbench: concurrency 2 · 1,300 requests completed (200/s)",
    ]


def test_a_model_that_answers_nothing_is_said_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], clock: _Clock
) -> None:
    with _plain_view(monkeypatch) as view:
        view.point("concurrency 1")
        for second in range(1, 9):
            clock.now += 1
            view.progress(_count(0, second, 0.0))
    lines = capsys.readouterr().err.splitlines()
    stalls = [line for line in lines if "no request completed" in line]
    assert stalls == [
        "tisbench: no request completed in 5 s yet (the server's nv_inference_request_success for m has not moved)"
    ]
    assert len(lines) == 2  # the point, the note: no count each second


def test_on_a_terminal_the_status_line_carries_the_count(monkeypatch: pytest.MonkeyPatch) -> None:
    class _Status:
        def __init__(self) -> None:
            self.lines: list[str] = []

        def update(self, line: str) -> None:
            self.lines.append(line)

    view = LiveView("lab-x")
    status = _Status()
    view._status = status
    view.progress(_count(0, 0.5))
    view.point("concurrency 2")
    view.progress(_count(12345, 3.0, 812.0))
    assert status.lines == [
        "lab-x: starting perf_analyzer · 0 requests completed",
        "lab-x: measuring at concurrency 2 · 0 requests completed",
        "lab-x: measuring at concurrency 2 · 12,345 requests completed (812/s)",
    ]
