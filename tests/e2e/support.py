"""Helpers for the Docker tests: run the real CLI, copy stacks, find and remove e2e labs.

Every lab these tests create is named ``e2e-…`` and removed by that name through the docker SDK
(by the ``tisbench.lab`` label), so cleanup never depends on the code under test.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import yaml
from paths import E2E_STACKS as E2E_STACKS
from paths import REPO as REPO
from paths import unavailable as unavailable  # the e2e tests take it from here, with their other helpers

from composer.core.labels import LAB_LABEL as LAB_LABEL
from composer.core.shipped import quickstart_stack

QUICKSTART = quickstart_stack()  # the checkout's stacks/quickstart, in the editable install tests run from
BROKEN_STACK = E2E_STACKS / "broken_model"
BATCHED_STACK = E2E_STACKS / "batched"
PILLOW_STACK = E2E_STACKS / "pillow"  # a python model that imports Pillow, which no server image has
ORIGIN_STACK = E2E_STACKS / "origin"  # the blog's model: opens the file each request names, from /data

# The console script of the venv running pytest; `python -m composer.cli.app` has no __main__ entry.
TISBENCH = Path(sys.executable).parent / "tisbench"
RELEASE = "24.10"
SERVER_VERSION = "2.51.0"
LAB_IMAGES = (f"tisbench-lab/tritonserver:{RELEASE}-py3", f"tisbench-lab/tritonserver:{RELEASE}-py3-sdk")
SERVICE_LABEL = "com.docker.compose.service"
PREFIX = "e2e-"
ERROR_PREFIX = "tisbench: error: "
# perf_analyzer's 10 % stability rule fails often on a busy 2-core runner; the tests check what
# tisbench records, not the machine's steadiness, so they accept any three windows.
STEADY = ("--", "--stability-percentage", "999")


# What tisbench says when perf_analyzer could not settle a point within its 10 % on any window
# tisbench's retries tried: on a loaded 2-core runner that is the machine's noise (seen in CI: +19 %
# at 8-s windows), whatever the model or the stack. The point is kept with its numbers (exit 7), or
# fails the run under --require-stable (exit 5).
NOT_STABLE = f"{ERROR_PREFIX}perf_analyzer: measurement not stable at "
KEPT_UNSTABLE = "never met perf_analyzer's stability rule"


def once_more_if_noisy(run: Callable[[], CliResult], before_rerun: Callable[[], None]) -> CliResult:
    """A run on perf_analyzer's own stability rule (a test of defaults, where STEADY would change what
    is tested): run again, once, when the only failure was the machine's noise, saying so.
    ``before_rerun`` removes what the failed run left (its run directory)."""
    result = run()
    noisy = (result.exit_code == 5 and NOT_STABLE in result.stderr) or (
        result.exit_code == 7 and KEPT_UNSTABLE in result.stderr
    )
    if noisy:
        warnings.warn(f"too noisy to settle, running once more: {result.error}", stacklevel=2)
        before_rerun()
        result = run()
    return result


class KnownBug(AssertionError):
    """The symptom of a reported product bug; strict xfails expect exactly this, so other failures still fail."""


@dataclass
class CliResult:
    argv: list[str]
    exit_code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith(ERROR_PREFIX)]

    @property
    def error(self) -> str:
        """The single error line (asserts there is exactly one)."""
        lines = self.error_lines
        assert len(lines) == 1, f"expected one error line, got {len(lines)}:\n{self.stderr}"
        return lines[0]

    def __str__(self) -> str:
        return (
            f"$ {' '.join(self.argv)}\nexit {self.exit_code} after {self.seconds:.1f} s\n"
            f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"
        )


def cli_env(overrides: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """The test's environment without any TISBENCH_* setting of the developer, plus overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TISBENCH_")}
    env["TISBENCH_PULL"] = "never"  # a pull of NGC's images would leave this machine; a test that pulls says so
    for key, value in (overrides or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _argv(args: Sequence[object], tisbench: Path = TISBENCH) -> list[str]:
    return [str(tisbench), *(str(a) for a in args)]


def run_cli(
    args: Sequence[object],
    *,
    cwd: Path,
    env: Mapping[str, str | None] | None = None,
    timeout: float = 120,
    tisbench: Path = TISBENCH,
) -> CliResult:
    """Run ``tisbench ARGS`` to completion; a timeout kills it and fails the test with its output.

    ``tisbench`` is the console script to run: the project venv's, or another install's.
    """
    argv = _argv(args, tisbench)
    start = time.monotonic()
    try:
        done = subprocess.run(argv, cwd=cwd, env=cli_env(env), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
        raise AssertionError(
            f"$ {' '.join(argv)} did not end within {timeout} s\n--- stdout\n{out}\n--- stderr\n{err}"
        ) from None
    return CliResult(argv, done.returncode, done.stdout, done.stderr, time.monotonic() - start)


class CliProcess:
    """``tisbench ARGS`` in the background, its output collected line by line as it comes."""

    def __init__(self, args: Sequence[object], *, cwd: Path, env: Mapping[str, str | None] | None = None) -> None:
        self.argv = _argv(args)
        self.start = time.monotonic()
        self.proc = subprocess.Popen(
            self.argv, cwd=cwd, env=cli_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(s, b), daemon=True)
            for s, b in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Any, lines: list[str]) -> None:
        for line in stream:
            with self._changed:
                lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_stderr(self, pattern: str, timeout: float) -> str:
        """The first stderr line matching ``pattern``; fails if the process ends or time runs out."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        with self._changed:
            while True:
                for line in self.err:
                    if regex.search(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not any(r.is_alive() for r in self._readers)):
                    raise AssertionError(
                        f"no stderr line matched {pattern!r} within {timeout} s (exit "
                        f"{self.proc.poll()}):\n{''.join(self.err)}"
                    )
                self._changed.wait(min(left, 0.1))

    def send_signal(self, signum: signal.Signals) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float) -> CliResult:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"$ {' '.join(self.argv)} did not end within {timeout} s:\n{''.join(self.err)}"
            ) from None
        for reader in self._readers:
            reader.join(5)
        return CliResult(self.argv, code, "".join(self.out), "".join(self.err), time.monotonic() - self.start)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


# ---------------------------------------------------------------------------------------- Docker


def lab_objects(client: docker.DockerClient, name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Containers (stopped ones too) and networks labelled ``tisbench.lab=NAME``."""
    label = {"label": f"{LAB_LABEL}={name}"}
    return client.api.containers(all=True, filters=label), client.api.networks(filters=label)


def leftovers(client: docker.DockerClient, name: str) -> list[str]:
    """Human-readable names of whatever is still labelled with the lab."""
    containers, networks = lab_objects(client, name)
    return [f"container {c['Names'][0].lstrip('/')}" for c in containers] + [f"network {n['Name']}" for n in networks]


def e2e_lab_names(client: docker.DockerClient) -> set[str]:
    """Every lab name with the e2e- prefix that has a container, network or volume on the engine."""
    label = {"label": LAB_LABEL}
    found = [c["Labels"].get(LAB_LABEL, "") for c in client.api.containers(all=True, filters=label)]
    found += [n["Labels"].get(LAB_LABEL, "") for n in client.api.networks(filters=label)]
    found += [
        (v.get("Labels") or {}).get(LAB_LABEL, "") for v in client.api.volumes(filters=label).get("Volumes") or []
    ]
    return {name for name in found if name.startswith(PREFIX)}


def remove_lab_objects(client: docker.DockerClient, name: str) -> None:
    """Force-remove one e2e lab by its label; touches nothing else."""
    assert name.startswith(PREFIX), f"refusing to remove {name!r}: not an e2e lab"
    containers, _ = lab_objects(client, name)
    for c in containers:
        try:
            client.api.remove_container(c["Id"], force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if "already in progress" not in str(exc):
                raise
    _, networks = lab_objects(client, name)
    for n in networks:
        try:
            client.api.remove_network(n["Id"])
        except docker.errors.NotFound:
            pass
    for v in client.api.volumes(filters={"label": f"{LAB_LABEL}={name}"}).get("Volumes") or []:
        try:
            client.api.remove_volume(v["Name"], force=True)
        except docker.errors.NotFound:
            pass


def wait_gone(client: docker.DockerClient, name: str, timeout: float) -> list[str]:
    """Poll until nothing of the lab is left or time runs out; what is still there."""
    deadline = time.monotonic() + timeout
    while True:
        left = leftovers(client, name)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.1)


def service_container(client: docker.DockerClient, name: str, service: str) -> dict[str, Any]:
    containers, _ = lab_objects(client, name)
    for c in containers:
        if c["Labels"].get(SERVICE_LABEL) == service:
            return c
    raise AssertionError(f"lab {name} has no {service} container (has: {[c['Names'] for c in containers]})")


# Every name and prefix this test process handed out: the session's leftover check judges only
# these, so test runs side by side on one engine never remove each other's labs.
ISSUED_NAMES: set[str] = set()
ISSUED_PREFIXES: set[str] = set()


def issued_here(names: set[str]) -> set[str]:
    """The lab names among ``names`` that this test process handed out (or that start with its prefixes)."""
    return {n for n in names if n in ISSUED_NAMES or n.startswith(tuple(ISSUED_PREFIXES))}


class LabRegistry:
    """Hands out e2e lab names (or name prefixes, for `tisbench lab`) and removes them all at the end."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client
        self.names: list[str] = []
        self.prefixes: list[str] = []
        self.run_areas: list[Path] = []

    def name(self, purpose: str) -> str:
        name = f"{PREFIX}{purpose}-{secrets.token_hex(3)}"[:40]
        self.names.append(name)
        ISSUED_NAMES.add(name)
        self.run_areas.append(QUICKSTART / ".tisbench" / name)
        return name

    def stack_name(self, purpose: str) -> str:
        """A stack.yaml name; `tisbench lab` names its lab STACKNAME-<4 hex>."""
        name = f"{PREFIX}{purpose[:16]}-{secrets.token_hex(3)}"
        self.prefixes.append(f"{name}-")
        ISSUED_PREFIXES.add(f"{name}-")
        return name

    def cleanup(self) -> None:
        names = set(self.names)
        if self.prefixes:
            names |= {n for n in e2e_lab_names(self.client) if n.startswith(tuple(self.prefixes))}
        for name in sorted(names):
            remove_lab_objects(self.client, name)
        for area in self.run_areas:  # only our own lab's run area under the repo's quickstart
            shutil.rmtree(area, ignore_errors=True)


# ---------------------------------------------------------------------------------------- stacks


def _merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def copy_stack(source: Path, dest: Path, stack_yaml: Mapping[str, Any] | None = None) -> Path:
    """Copy a stack directory (without its run area) and merge ``stack_yaml`` into its stack.yaml."""
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(".tisbench", "__pycache__"))
    if stack_yaml:
        write_stack_yaml(dest, stack_yaml)
    return dest


def write_stack_yaml(stack: Path, update: Mapping[str, Any]) -> None:
    file = stack / "stack.yaml"
    data = (yaml.safe_load(file.read_text()) or {}) if file.exists() else {}
    file.write_text(yaml.safe_dump(_merge(data, update), sort_keys=False))


# ---------------------------------------------------------------------------------------- HTTP


def http_status(url: str, timeout: float = 5) -> int:
    """Status code of a GET, 4xx/5xx included (curl -s -o /dev/null -w '%{http_code}')."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


# ---------------------------------------------------------------------------------------- faults


class EngineProxy:
    """A pass-through unix socket to the local engine that can hold, or answer itself, chosen requests.

    Point a tisbench process at it with DOCKER_HOST=unix://<path>. It makes races deterministic
    (hold a request until the test says go) and injects answers the engine gives in a narrow window.
    Request lines are matched per chunk: the docker SDK sends each small request in one write.
    """

    def __init__(self, path: Path, upstream: str = "/var/run/docker.sock") -> None:
        self.path, self.upstream = path, upstream
        self.hold: bytes | None = None  # hold requests whose first line contains this
        self.held = threading.Event()
        self.release = threading.Event()
        # Answers the proxy gives itself, in order, each once: (first-line part, HTTP status, JSON body).
        self.answers: list[tuple[bytes, int, object]] = []
        self.answered = threading.Event()  # set when the last answer has been given
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(16)
        self._sockets: list[socket.socket] = [self._server]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def docker_host(self) -> str:
        return f"unix://{self.path}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            engine.connect(self.upstream)
            self._sockets += [client, engine]
            threading.Thread(target=self._pump, args=(engine, client, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(client, engine, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        try:
            while chunk := source.recv(65536):
                first_line = chunk.split(b"\r\n", 1)[0]
                if from_client and self.hold and self.hold in first_line:
                    self.held.set()
                    self.release.wait(120)
                if from_client and self.answers and self.answers[0][0] in first_line:
                    _, status, document = self.answers.pop(0)
                    body = json.dumps(document).encode()
                    source.sendall(
                        b"HTTP/1.1 %d Injected\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (status, len(body), body)
                    )
                    if not self.answers:
                        self.answered.set()
                    continue
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.release.set()
        for s in self._sockets:
            try:
                s.close()
            except OSError:
                pass


@dataclass
class SharedLab:
    """A lab brought up once for a module's read-only tests."""

    name: str
    stack: Path
    up: CliResult

    def require_up(self) -> None:
        if self.up.exit_code != 0:
            pytest.fail(f"the shared lab did not come up:\n{self.up}", pytrace=False)


@contextlib.contextmanager
def shared_lab(docker_client: docker.DockerClient, what: str, stack: Path, *args: str) -> Iterator[SharedLab]:
    """``tisbench up STACK ARGS --name e2e-WHAT-…`` for a module's tests to share; it must come up,
    and it is removed (with anything else the registry named) when the module is done."""
    registry = LabRegistry(docker_client)
    name = registry.name(what)
    try:
        lab = SharedLab(name, stack, run_cli(["up", stack, *args, "--name", name], cwd=stack.parent))
        lab.require_up()
        yield lab
    finally:
        registry.cleanup()


def patch_initialize(stack: Path, code: str, model: str = "seed_model") -> None:
    """Insert ``code`` (an ``initialize`` method) at the top of the model's TritonPythonModel."""
    path = stack / "models" / model / "1" / "model.py"
    text = path.read_text()
    marker = "class TritonPythonModel:\n"
    assert marker in text
    path.write_text(text.replace(marker, marker + code, 1))
