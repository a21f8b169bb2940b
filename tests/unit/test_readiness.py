"""Waiting for a lab to be ready, on a fake clock: the deadline, the notes on what is awaited,
and which error a server that never gets ready (or dies, or cannot load its model) becomes."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from composer.core import interrupts
from composer.core.errors import ModelLoadError, ReadinessTimeout, ServerDied, SignalReceived
from composer.engine.containers import ContainerState
from composer.engine.readiness import POLL_INTERVAL_S, STATE_CHECK_INTERVAL_S, load_failure, wait_until_ready

RUNNING = ContainerState(True, "running", None)
MODEL = "seed_model"
# Triton 24.10's line for a python-backend model whose model.py raises at load time
LOAD_FAILED = (
    "I1202 10:00:00.000 1 model_lifecycle.cc:469] loading: seed_model:1\n"
    "E1202 10:00:01.000 1 model_lifecycle.cc:641] failed to load 'seed_model' version 1: "
    "Internal: ModuleNotFoundError: No module named 'numpyy'\\n\\nAt:\\n  /models/seed_model/1/model.py(3)\n"
)


class FakeClock:
    """time.monotonic and time.sleep for one test: sleeping moves the clock, nothing waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps = 0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds


@dataclass
class FakeProbe:
    """Triton's health answers: the server is ready from ``server_at``, the model from ``model_at``."""

    clock: FakeClock
    server_at: float = 0.0
    model_at: float = 0.0
    asked: list[str] = field(default_factory=list)

    def server_ready(self) -> bool:
        self.asked.append("server")
        return self.clock.now >= self.server_at

    def model_ready(self, model: str) -> bool:
        self.asked.append(f"model {model}")
        return self.clock.now >= self.model_at


def _wait(
    probe: FakeProbe,
    clock: FakeClock,
    *,
    timeout_s: float = 5.0,
    states: list[ContainerState] | None = None,
    logs: str = "",
    notes: list[str] | None = None,
) -> float:
    pending = list(states or [])

    def state() -> ContainerState:
        return pending.pop(0) if len(pending) > 1 else (pending[0] if pending else RUNNING)

    return wait_until_ready(
        probe,
        state,
        lambda: logs,
        MODEL,
        timeout_s,
        clock=clock,
        sleep=clock.sleep,
        on_wait=(notes if notes is not None else []).append,
    ).seconds


def test_a_ready_server_and_model_return_at_once_without_sleeping() -> None:
    clock = FakeClock()

    assert _wait(FakeProbe(clock), clock) == 0.0
    assert clock.sleeps == 0


def test_ready_reports_the_seconds_waited_on_the_injected_clock() -> None:
    clock = FakeClock()
    probe = FakeProbe(clock, server_at=clock.now + 1.0, model_at=clock.now + 2.0)

    seconds = _wait(probe, clock)

    assert 2.0 <= seconds < 2.0 + 2 * POLL_INTERVAL_S


def test_the_notes_say_what_is_awaited_once_each_in_order() -> None:
    clock = FakeClock()
    probe = FakeProbe(clock, server_at=clock.now + 0.5, model_at=clock.now + 1.0)
    notes: list[str] = []

    _wait(probe, clock, notes=notes)

    assert notes == ["server /v2/health/ready", f"model {MODEL}"]


def test_the_model_is_asked_only_once_the_server_is_ready() -> None:
    clock = FakeClock()
    probe = FakeProbe(clock, server_at=clock.now + 0.05, model_at=clock.now + 0.05)

    _wait(probe, clock)

    first_model = probe.asked.index(f"model {MODEL}")
    assert set(probe.asked[:first_model]) == {"server"} and first_model > 1


def test_a_server_never_ready_times_out_at_the_deadline_naming_the_health_endpoint() -> None:
    clock = FakeClock()
    start = clock.now
    probe = FakeProbe(clock, server_at=float("inf"))

    with pytest.raises(ReadinessTimeout) as caught:
        _wait(probe, clock, timeout_s=3.0, logs="I1202 started\nW1202 still loading\n")

    assert 3.0 <= clock.now - start < 3.0 + 2 * POLL_INTERVAL_S
    assert caught.value.message.startswith("server /v2/health/ready not ready after 3 s")
    assert caught.value.message.endswith("last server log lines: I1202 started | W1202 still loading")
    assert caught.value.hint is not None and "--timeout" in caught.value.hint


def test_a_model_never_ready_times_out_naming_the_model() -> None:
    clock = FakeClock()
    probe = FakeProbe(clock, model_at=float("inf"))

    with pytest.raises(ReadinessTimeout) as caught:
        _wait(probe, clock, timeout_s=2.5)

    assert caught.value.message.startswith(f"model {MODEL} not ready after 2.5 s")


def test_a_model_that_failed_to_load_is_a_model_load_error_with_tritons_reason() -> None:
    clock = FakeClock()
    probe = FakeProbe(clock, model_at=float("inf"))

    with pytest.raises(ModelLoadError) as caught:
        _wait(probe, clock, timeout_s=1.0, logs=LOAD_FAILED)

    assert caught.value.message.startswith(
        "Triton could not load seed_model: Internal: ModuleNotFoundError: No module named 'numpyy'"
    )


def test_a_dead_server_is_reported_at_once_with_its_exit_code_and_log_tail() -> None:
    clock = FakeClock()
    start = clock.now
    probe = FakeProbe(clock, server_at=float("inf"))
    dead = ContainerState(False, "exited", 1)

    with pytest.raises(ServerDied) as caught:
        _wait(probe, clock, timeout_s=60.0, states=[dead], logs="error: creating server: Invalid argument\n")

    assert clock.now == start  # before the first poll, not at the deadline
    assert caught.value.message == (
        "triton_server exited (exited, exit code 1); last log lines: error: creating server: Invalid argument"
    )


def test_a_server_that_dies_while_waiting_is_noticed_within_a_state_check_interval() -> None:
    clock = FakeClock()
    start = clock.now
    probe = FakeProbe(clock, server_at=float("inf"))

    with pytest.raises(ServerDied):
        _wait(probe, clock, timeout_s=60.0, states=[RUNNING, ContainerState(False, "exited", 137)])

    assert clock.now - start <= STATE_CHECK_INTERVAL_S + 2 * POLL_INTERVAL_S


def test_a_server_that_died_of_a_failed_model_load_names_the_model_not_the_exit() -> None:
    clock = FakeClock()
    probe = FakeProbe(clock, server_at=float("inf"))

    with pytest.raises(ModelLoadError) as caught:
        _wait(probe, clock, states=[ContainerState(False, "exited", 1)], logs=LOAD_FAILED)

    assert "seed_model: Internal: ModuleNotFoundError" in caught.value.message


def test_load_failure_picks_the_asked_model_and_joins_escaped_newlines() -> None:
    logs = "E1 failed to load 'other': Invalid: bad config\n" + LOAD_FAILED

    assert load_failure(logs, "other") == "other: Invalid: bad config"
    assert load_failure(logs) == "other: Invalid: bad config"
    failure = load_failure(logs, MODEL)
    assert failure is not None and "\\n" not in failure and failure.endswith("/models/seed_model/1/model.py(3)")
    assert load_failure(logs, "absent") is None


def test_an_interrupt_a_probe_library_swallowed_ends_the_wait_at_the_next_round(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeClock()
    probe = FakeProbe(clock, server_at=float("inf"))
    swallowed_at = clock.now + 0.5

    def server_ready() -> bool:
        if clock.now >= swallowed_at:  # the SIGINT landed in the library's `except: pass`
            monkeypatch.setattr(interrupts._State, "received", "SIGINT")
        return False

    monkeypatch.setattr(probe, "server_ready", server_ready)
    with pytest.raises(SignalReceived):
        _wait(probe, clock, timeout_s=5.0)
    assert clock.now - swallowed_at <= 2 * POLL_INTERVAL_S
