"""What the lab benchmarks share: a private copy of the stack, timed child processes whose
output lines carry arrival times, exec spans from Docker's event stream, a readiness poll, and
cleanup that removes every container and network of that private stack.

Everything here touches only labs whose compose project starts with ``bench-`` and whose
``tisbench.stack`` label names the private stack directory.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import docker
import docker.errors

ROOT = Path(__file__).resolve().parent.parent
PYTHON = Path(sys.executable)
TISBENCH = PYTHON.parent / "tisbench"
SEED_STACK = ROOT / "stacks" / "quickstart"
PREFIX = "bench-"


def copy_stack(work: Path, name: str = "bench-tb") -> Path:
    """The quickstart stack copied to WORK/NAME: lab names become NAME-xxxx, run areas stay private."""
    target = work / name
    target.mkdir(parents=True)
    for part in ("models", "dataset"):
        shutil.copytree(SEED_STACK / part, target / part)
    shutil.copy2(SEED_STACK / "stack.yaml", target / "stack.yaml")
    return target.resolve()


# --- child processes whose output lines are timestamped as they arrive ---------------------------


@dataclass(frozen=True)
class Line:
    wall: float  # time.time() when the line arrived
    mono: float  # time.monotonic() when the line arrived
    stream: str
    text: str


@dataclass
class Timed:
    argv: list[str]
    started_mono: float
    started_wall: float
    ended_mono: float
    returncode: int
    lines: list[Line] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.ended_mono - self.started_mono

    def output(self) -> str:
        return "".join(line.text for line in self.lines)

    def first(self, pattern: str, stream: str | None = None) -> Line | None:
        regex = re.compile(pattern)
        return next((line for line in self.lines if regex.search(line.text) and stream in (None, line.stream)), None)

    def check(self) -> Timed:
        if self.returncode != 0:
            tail = " | ".join(line.text.strip() for line in self.lines[-8:])
            raise RuntimeError(f"{' '.join(self.argv[:4])} … exited {self.returncode}: {tail}")
        return self


OnLine = Callable[[Line], None]


def _reader(stream: Any, name: str, sink: list[Line], lock: threading.Lock, on_line: OnLine | None) -> None:
    for raw in iter(stream.readline, b""):
        line = Line(time.time(), time.monotonic(), name, raw.decode("utf-8", errors="replace"))
        with lock:
            sink.append(line)
        if on_line is not None:
            on_line(line)
    stream.close()


def run_timed(
    argv: Sequence[str],
    timeout_s: float,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    on_line: OnLine | None = None,
) -> Timed:
    """Run argv (no shell), stamping each stdout/stderr line on arrival; SIGTERM then SIGKILL at the deadline."""
    lines: list[Line] = []
    lock = threading.Lock()
    started_wall, started = time.time(), time.monotonic()
    proc = subprocess.Popen(
        list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=cwd, env=env
    )
    readers = [
        threading.Thread(target=_reader, args=(proc.stdout, "stdout", lines, lock, on_line), daemon=True),
        threading.Thread(target=_reader, args=(proc.stderr, "stderr", lines, lock, on_line), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        returncode = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # tisbench removes what it created on SIGTERM
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise RuntimeError(f"{' '.join(argv[:4])} … still running after {timeout_s:g} s") from None
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    ended = time.monotonic()
    for reader in readers:
        reader.join(timeout=5)
    return Timed(list(argv), started, started_wall, ended, returncode, sorted(lines, key=lambda x: x.mono))


def run_quiet(argv: Sequence[str], timeout_s: float, cwd: Path | None = None) -> float:
    """Run argv to completion, raising on failure; its wall time in seconds."""
    started = time.monotonic()
    done = subprocess.run(list(argv), capture_output=True, timeout=timeout_s, cwd=cwd, stdin=subprocess.DEVNULL)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"{' '.join(argv[:5])} … exited {done.returncode}: {' | '.join(message)}")
    return seconds


# --- Docker: exec spans from the event stream, host ports, logs, cleanup ----------------------------


@dataclass
class ExecSpan:
    container: str
    command: str
    start_ns: int | None = None
    die_ns: int | None = None
    exit_code: str | None = None

    @property
    def seconds(self) -> float:
        assert self.start_ns is not None and self.die_ns is not None
        return (self.die_ns - self.start_ns) / 1e9


class ExecEvents:
    """Docker's exec_start / exec_die events for the private stack's containers, collected live.

    The engine stamps both events itself, so a workflow's exec time is measured the same way
    whether the exec came from tisbench (docker SDK) or from ``docker compose exec``.
    """

    def __init__(self, client: docker.DockerClient, stack_dir: Path) -> None:
        self._spans: dict[str, ExecSpan] = {}
        self._lock = threading.Lock()
        self._stream = client.events(
            decode=True,
            filters={"type": "container", "event": ["exec_start", "exec_die"], "label": f"tisbench.stack={stack_dir}"},
        )
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _collect(self) -> None:
        try:
            for event in self._stream:
                attrs = event.get("Actor", {}).get("Attributes", {})
                exec_id = attrs.get("execID")
                if not exec_id:
                    continue
                action = str(event.get("Action", ""))
                with self._lock:
                    span = self._spans.setdefault(exec_id, ExecSpan(attrs.get("name", "?"), ""))
                    if action.startswith("exec_start"):
                        span.start_ns = int(event["timeNano"])
                        span.command = action.partition(": ")[2]
                    elif action == "exec_die":
                        span.die_ns = int(event["timeNano"])
                        span.exit_code = attrs.get("exitCode")
        except Exception:  # the stream is closed on purpose at the end
            return

    def perf_analyzer_span(self, container_prefix: str, timeout_s: float = 10.0) -> ExecSpan:
        """The one finished perf_analyzer exec in containers named PREFIX…; waits for its die event."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                found = [
                    s
                    for s in self._spans.values()
                    if s.container.startswith(container_prefix) and "perf_analyzer" in s.command
                ]
            done = [s for s in found if s.start_ns is not None and s.die_ns is not None]
            if len(done) == 1 and len(found) == 1:
                return done[0]
            if len(found) > 1:
                raise RuntimeError(f"{len(found)} perf_analyzer execs in {container_prefix}*; expected one")
            if time.monotonic() >= deadline:
                raise RuntimeError(f"no finished perf_analyzer exec seen in {container_prefix}* (docker events)")
            time.sleep(0.02)

    def close(self) -> None:
        self._stream.close()


def server_container(client: docker.DockerClient, project: str) -> dict[str, Any]:
    found = client.api.containers(
        all=True,
        filters={"label": [f"com.docker.compose.project={project}", "com.docker.compose.service=triton_server"]},
    )
    if len(found) != 1:
        raise RuntimeError(f"expected one triton_server in project {project}, found {len(found)}")
    return dict(found[0])


def http_port(client: docker.DockerClient, project: str) -> int:
    for port in server_container(client, project).get("Ports", []):
        if port.get("PrivatePort") == 8000 and port.get("PublicPort"):
            return int(port["PublicPort"])
    raise RuntimeError(f"{project}: triton_server publishes no port for 8000")


def server_logs(client: docker.DockerClient, project: str) -> str:
    raw = client.api.logs(server_container(client, project)["Id"], stdout=True, stderr=True)
    return bytes(raw).decode("utf-8", errors="replace")


def wait_ready(port: int, timeout_s: float) -> float:
    """Tight poll of /v2/health/ready on 127.0.0.1 until 200; the monotonic time it first answered."""
    url = f"http://127.0.0.1:{port}/v2/health/ready"
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=0.5) as response:
                if response.status == 200:
                    return time.monotonic()
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if time.monotonic() >= deadline:
            raise RuntimeError(f"{url} not ready after {timeout_s:g} s")
        time.sleep(0.002)


class ReadyProbe:
    """An independent, tight /v2/health/ready probe (1 ms between tries) on the port tisbench announces
    in its "waiting for server /v2/health/ready on 127.0.0.1:PORT" line: the moment the server first
    answers 200, seen from the host, without tisbench's own polling in between."""

    _WAITING = re.compile(r"waiting for server /v2/health/ready on 127\.0\.0\.1:(\d+)")

    def __init__(self, timeout_s: float = 120.0) -> None:
        self.first_ok: float | None = None  # time.time() at the start of the first request answered 200
        self._timeout_s = timeout_s
        self._thread: threading.Thread | None = None

    def on_line(self, line: Line) -> None:
        match = self._WAITING.search(line.text)
        if match and self._thread is None:
            self._thread = threading.Thread(target=self._probe, args=(int(match.group(1)),), daemon=True)
            self._thread.start()

    def _probe(self, port: int) -> None:
        url = f"http://127.0.0.1:{port}/v2/health/ready"
        deadline = time.monotonic() + self._timeout_s
        while time.monotonic() < deadline:
            sent = time.time()
            try:
                with urllib.request.urlopen(url, timeout=0.5) as response:
                    if response.status == 200:
                        self.first_ok = sent
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.001)

    def result(self) -> float:
        if self._thread is None:
            raise RuntimeError("tisbench never printed the 'waiting for server … on 127.0.0.1:PORT' line")
        self._thread.join(timeout=5)
        if self.first_ok is None:
            raise RuntimeError("the independent readiness probe never got a 200")
        return self.first_ok


def remove_stack_labs(client: docker.DockerClient, stack_dir: Path) -> list[str]:
    """Remove every container and network of the private stack (all are bench-… projects)."""
    label = f"tisbench.stack={stack_dir}"
    removed = []
    for c in client.api.containers(all=True, filters={"label": label}):
        if not c["Labels"].get("com.docker.compose.project", "").startswith(PREFIX):
            continue
        try:
            client.api.remove_container(c["Id"], force=True)
            removed.append(c["Names"][0].lstrip("/"))
        except docker.errors.NotFound:
            pass
    for n in client.api.networks(filters={"label": label}):
        if not n["Name"].startswith(PREFIX):
            continue
        try:
            client.api.remove_network(n["Id"])
            removed.append(n["Name"])
        except docker.errors.NotFound:
            pass
    return removed


# --- Triton's own clock --------------------------------------------------------------------------

_TRITON_TIME = re.compile(r"^[IWE](\d\d)(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{6}) .*Started HTTPService", re.MULTILINE)


def http_started_at(logs: str, near: float) -> float:
    """Epoch seconds of Triton's ``Started HTTPService`` line (its clock is UTC, the host's clock).

    Triton's prefix has no year: take the one that puts the moment closest to ``near``.
    """
    match = _TRITON_TIME.search(logs)
    if not match:
        raise RuntimeError("no 'Started HTTPService' line in the server log")
    month, day, hour, minute, second, micro = (int(g) for g in match.groups())
    year = datetime.fromtimestamp(near, timezone.utc).year
    candidates = [
        datetime(y, month, day, hour, minute, second, micro, tzinfo=timezone.utc).timestamp()
        for y in (year - 1, year, year + 1)
    ]
    return min(candidates, key=lambda t: abs(t - near))


# --- numbers -------------------------------------------------------------------------------------


def throughput_from_csv(text: str) -> float:
    """Inferences/Second of the first row of perf_analyzer's CSV (one sweep point here)."""
    rows = [line.split(",") for line in text.strip().splitlines() if line.strip()]
    column = rows[0].index("Inferences/Second")
    return float(rows[1][column])


def manifest(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_dir / "manifest.json").read_text())
    return data
