"""Deadline-based waiting for a lab: ready, not yet, or dead — never "50 tries".

Every round probes Triton's health endpoints; the server container's state is checked often
enough that a dead server is reported within a fraction of a second, with its reason.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from composer.core import interrupts
from composer.core.errors import ModelLoadError, ReadinessTimeout, ServerDied
from composer.engine.containers import ContainerState

POLL_INTERVAL_S = 0.01
STATE_CHECK_INTERVAL_S = 0.25
LOG_TAIL_LINES = 20

_LOAD_FAILURE = re.compile(r"failed to load '(?P<model>[^']+)'(?: version \d+)?: (?P<reason>.*)")


class Probe(Protocol):
    def server_ready(self) -> bool: ...

    def model_ready(self, model: str) -> bool: ...


@dataclass(frozen=True)
class Ready:
    seconds: float


def load_failure(logs: str, model: str | None = None) -> str | None:
    """Triton's own reason for a model that failed to load, from its log text."""
    for line in logs.splitlines():
        match = _LOAD_FAILURE.search(line)
        if match and (model is None or match.group("model") == model):
            reason = match.group("reason").replace("\\n", " ").strip().strip('"')
            return f"{match.group('model')}: {' '.join(reason.split())}"
    return None


def _tail(logs: str, lines: int = LOG_TAIL_LINES) -> str:
    return " | ".join(line.strip() for line in logs.strip().splitlines()[-lines:] if line.strip())


def wait_until_ready(
    probe: Probe,
    state: Callable[[], ContainerState],
    logs: Callable[[], str],
    model: str,
    timeout_s: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_wait: Callable[[str], None] = lambda what: None,
) -> Ready:
    """Wait until the server and ``model`` are ready, the container dies, or the deadline passes."""
    start = clock()
    deadline = start + timeout_s
    next_state_check = start
    waiting_for = ""
    while True:
        interrupts.checkpoint()  # a Ctrl-C that a client library swallowed still ends the wait
        now = clock()
        if now >= next_state_check:
            current = state()
            if not current.running:
                _raise_dead(current, logs(), model)
            next_state_check = now + STATE_CHECK_INTERVAL_S
        if probe.server_ready():
            if probe.model_ready(model):
                return Ready(clock() - start)
            what = f"model {model}"
        else:
            what = "server /v2/health/ready"
        if what != waiting_for:
            waiting_for = what
            on_wait(what)
        if clock() >= deadline:
            failure = load_failure(logs(), model)
            if failure:
                raise ModelLoadError(f"Triton could not load {failure}", "fix the model, then run again")
            raise ReadinessTimeout(
                f"{waiting_for} not ready after {timeout_s:g} s; last server log lines: {_tail(logs())}",
                "raise --timeout, or read tisbench logs NAME",
            )
        sleep(POLL_INTERVAL_S)


def _raise_dead(current: ContainerState, logs: str, model: str) -> None:
    failure = load_failure(logs, model) or load_failure(logs)
    if failure:
        raise ModelLoadError(f"Triton could not load {failure}", "fix the model, then run again")
    raise ServerDied(
        f"triton_server exited ({current.status}, exit code {current.exit_code}); last log lines: {_tail(logs)}",
        "fix the cause shown in the log and run again",
    )


class TritonHttpProbe:
    """Health probes over one reused tritonclient HTTP connection, with short timeouts."""

    def __init__(self, url: str, timeout_s: float = 1.0) -> None:
        from composer.engine.tritonhttp import http_module

        httpclient = http_module()
        self._client = httpclient.InferenceServerClient(
            url=url, connection_timeout=timeout_s, network_timeout=timeout_s
        )

    def server_ready(self) -> bool:
        try:
            return bool(self._client.is_server_ready())
        except Exception:  # connection refused, reset, timeout: all mean "not yet"
            return False

    def model_ready(self, model: str) -> bool:
        try:
            return bool(self._client.is_model_ready(model))
        except Exception:
            return False

    @property
    def client(self) -> object:
        return self._client

    def close(self) -> None:
        self._client.close()
