"""The one lab lifecycle: what LabSession does on success, failure, interrupt, keep and early removal."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest

from composer.core.errors import AnalyzerError, SignalReceived
from composer.labs.session import LabSession, failure_record


@dataclass
class FakeBackend:
    events: list[str] = field(default_factory=list)
    fail_up: BaseException | None = None
    fail_down: BaseException | None = None
    down_thread: str | None = None
    kind: str = "lab"

    def up(self) -> str:
        self.events.append("up")
        if self.fail_up:
            raise self.fail_up
        return "lab-1"

    def name_of(self, lab: str) -> str:
        return lab

    def collect(self, lab: str) -> None:
        self.events.append("collect")

    def down(self, lab: str) -> None:
        self.events.append("down")
        self.down_thread = threading.current_thread().name
        if self.fail_down:
            raise self.fail_down


def test_success_collects_then_removes() -> None:
    backend, said = FakeBackend(), []
    with LabSession(backend, say=said.append) as lab:
        assert lab == "lab-1"
        backend.events.append("bench")
    assert backend.events == ["up", "bench", "collect", "down"]
    assert said == ["lab lab-1 removed"]


@pytest.mark.parametrize("error", [AnalyzerError("perf_analyzer failed"), SignalReceived("SIGTERM"), RuntimeError()])
def test_a_failure_or_an_interrupt_still_collects_and_removes(error: BaseException) -> None:
    backend = FakeBackend()
    with pytest.raises(type(error)), LabSession(backend, say=lambda m: None):
        raise error
    assert backend.events == ["up", "collect", "down"]


def test_keep_leaves_the_lab_and_says_how_to_remove_it() -> None:
    backend, said = FakeBackend(), []
    with pytest.raises(AnalyzerError), LabSession(backend, say=said.append, keep=True):
        raise AnalyzerError("perf_analyzer failed")
    assert backend.events == ["up", "collect"]
    assert said == ["lab lab-1 kept: tisbench down lab-1 removes it"]


def test_keep_does_not_survive_an_interrupt() -> None:
    backend = FakeBackend()
    with pytest.raises(SignalReceived), LabSession(backend, say=lambda m: None, keep=True):
        raise SignalReceived("SIGINT")
    assert backend.events == ["up", "collect", "down"]


def test_a_failed_up_is_the_backend_s_to_clean_and_nothing_more_runs() -> None:
    backend = FakeBackend(fail_up=AnalyzerError("no"))
    with pytest.raises(AnalyzerError), LabSession(backend, say=lambda m: None):
        pytest.fail("the block must not run")
    assert backend.events == ["up"]


def test_remove_early_removes_on_a_thread_and_exit_waits_for_it() -> None:
    backend, said = FakeBackend(), []
    session = LabSession(backend, say=said.append)
    with session:
        session.remove_early()
        backend.events.append("reports")  # drawn while the lab goes
    assert backend.events[:2] == ["up", "collect"] and sorted(backend.events[2:]) == ["down", "reports"]
    assert backend.down_thread not in (None, threading.current_thread().name)
    assert said == ["lab lab-1 removed"]


@dataclass
class ReadingBackend(FakeBackend):
    """Its down() keeps the analyzer while the run still reads from it, as the local backend does."""

    def down(self, lab: str, reading: threading.Event | None = None) -> None:
        if reading is not None:
            self.events.append("waits for reading")
            assert reading.wait(timeout=5), "the session never let the analyzer go"
        super().down(lab)


def test_an_early_removal_keeps_the_analyzer_until_the_run_has_read_it() -> None:
    backend, reading = ReadingBackend(), threading.Event()
    session = LabSession(backend, say=lambda m: None)
    with session:
        session.remove_early(reading)
        backend.events.append("reads")
        reading.set()
    assert backend.events[:2] == ["up", "collect"] and backend.events[-1] == "down"
    assert backend.events.index("waits for reading") < backend.events.index("down")
    assert backend.events.index("reads") < backend.events.index("down")


def test_a_run_that_fails_while_reading_still_lets_the_removal_finish() -> None:
    backend, reading = ReadingBackend(), threading.Event()
    session = LabSession(backend, say=lambda m: None)
    with pytest.raises(AnalyzerError), session:
        session.remove_early(reading)
        raise AnalyzerError("perf_analyzer's export could not be read")
    assert reading.is_set() and backend.events[-1] == "down"


def test_a_failed_early_removal_is_raised_at_exit() -> None:
    backend = FakeBackend(fail_down=RuntimeError("engine gone"))
    session = LabSession(backend, say=lambda m: None)
    with pytest.raises(RuntimeError, match="engine gone"), session:
        session.remove_early()


def test_failures_are_recorded_alike_on_every_path() -> None:
    assert failure_record(SignalReceived("SIGTERM")) == {"exit_code": 130, "error": "interrupted by SIGTERM"}
    assert failure_record(KeyboardInterrupt()) == {"exit_code": 130, "error": "interrupted by SIGINT"}
    record = failure_record(AnalyzerError("perf_analyzer failed", "see the log"))
    assert record["exit_code"] == 5 and "perf_analyzer failed" in record["error"]
    assert failure_record(ValueError("x")) == {"exit_code": None, "error": "ValueError: x"}
