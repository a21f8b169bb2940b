"""Real labs on Docker: up, status, compose's view, logs, down, load failures, parallel labs, signals."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from .conftest import MakeStack, Tisbench
from .support import (
    BROKEN_STACK,
    ORIGIN_STACK,
    QUICKSTART,
    REPO,
    CliProcess,
    LabRegistry,
    SharedLab,
    http_status,
    leftovers,
    run_cli,
    service_container,
    unavailable,
    wait_gone,
)

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def quickstart_lab(docker_client: docker.DockerClient) -> Iterator[SharedLab]:
    """One quickstart lab shared by the read-only tests of this module."""
    registry = LabRegistry(docker_client)
    name = registry.name("up")
    try:
        # As a user types it in the repo: a relative stack path.
        result = run_cli(["up", QUICKSTART.relative_to(REPO), "--images", "lab", "--name", name], cwd=REPO)
        yield SharedLab(name, QUICKSTART, result)
    finally:
        registry.cleanup()


def _status_of(tisbench: Tisbench, name: str) -> dict[str, Any]:
    result = tisbench("status", "--json")
    assert result.exit_code == 0, result
    labs: dict[str, dict[str, Any]] = {lab["name"]: lab for lab in json.loads(result.stdout)}
    assert name in labs, f"status --json does not list {name}: {sorted(labs)}"
    return labs[name]


def test_up_returns_0_once_the_model_is_ready(quickstart_lab: SharedLab, tisbench: Tisbench) -> None:
    assert quickstart_lab.up.exit_code == 0, quickstart_lab.up
    assert quickstart_lab.up.stdout.strip() == quickstart_lab.name, "up prints the lab name on stdout"
    port = _status_of(tisbench, quickstart_lab.name)["ports"]["http"]
    # Checked right after up returned, with no waiting of our own: ready means the model too.
    assert http_status(f"http://127.0.0.1:{port}/v2/models/seed_model/ready") == 200


def test_status_json_port_answers_health_ready(quickstart_lab: SharedLab, tisbench: Tisbench) -> None:
    quickstart_lab.require_up()
    lab = _status_of(tisbench, quickstart_lab.name)
    assert lab["services"] == {"triton_server": "running", "perf_analyzer": "running"}
    assert lab["release"] == "24.10" and lab["model"] == "seed_model"
    ports = lab["ports"]
    assert isinstance(ports, dict) and set(ports) >= {"http", "grpc", "metrics"}
    assert http_status(f"http://127.0.0.1:{ports['http']}/v2/health/ready") == 200


def _compose_ps(name: str) -> list[dict[str, object]]:
    """docker compose ps --format json: one JSON object per line (v2.21+) or one array (older)."""
    docker_cli = shutil.which("docker")
    if docker_cli is None or subprocess.run([docker_cli, "compose", "version"], capture_output=True).returncode:
        unavailable("the docker compose v2 CLI is not installed")
    assert docker_cli is not None
    done = subprocess.run([docker_cli, "compose", "-p", name, "ps", "--all", "--format", "json"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    text = done.stdout.strip()
    if text.startswith("["):
        return list(json.loads(text))
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_docker_compose_ps_sees_both_services(quickstart_lab: SharedLab) -> None:
    quickstart_lab.require_up()
    rows = _compose_ps(quickstart_lab.name)
    assert {row["Service"]: row["State"] for row in rows} == {"triton_server": "running", "perf_analyzer": "running"}
    assert {row["Name"] for row in rows} == {f"{quickstart_lab.name}-triton_server-1",
                                             f"{quickstart_lab.name}-perf_analyzer-1"}


def test_logs_shows_the_server_log(quickstart_lab: SharedLab, tisbench: Tisbench) -> None:
    quickstart_lab.require_up()
    result = tisbench("logs", quickstart_lab.name)
    assert result.exit_code == 0, result
    assert "successfully loaded 'seed_model'" in result.stdout, result.stdout[-2000:]
    assert "Started HTTPService at 0.0.0.0:8000" in result.stdout


def test_down_leaves_no_container_network_or_run_area(
    tisbench: Tisbench, lab_name: str, docker_client: docker.DockerClient
) -> None:
    up = tisbench("up", QUICKSTART, "--images", "lab", "--name", lab_name)
    assert up.exit_code == 0, up
    assert (QUICKSTART / ".tisbench" / lab_name / "docker-compose.yml").is_file()
    down = tisbench("down", lab_name)
    assert down.exit_code == 0, down
    assert leftovers(docker_client, lab_name) == []
    assert not (QUICKSTART / ".tisbench" / lab_name).exists(), "down removes the lab's run area"


def test_down_cleans_a_half_removed_lab(tisbench: Tisbench, lab_name: str, docker_client: docker.DockerClient) -> None:
    up = tisbench("up", QUICKSTART, "--images", "lab", "--name", lab_name)
    assert up.exit_code == 0, up
    analyzer = service_container(docker_client, lab_name, "perf_analyzer")
    docker_client.api.remove_container(analyzer["Id"], force=True)  # the first, partial "down", by hand
    down = tisbench("down", lab_name)
    assert down.exit_code == 0, down
    assert leftovers(docker_client, lab_name) == []


def test_broken_model_fails_fast_with_the_model_error(
    tisbench: Tisbench, lab_name: str, docker_client: docker.DockerClient
) -> None:
    result = tisbench("up", BROKEN_STACK, "--images", "lab", "--name", lab_name, "--timeout", "60")
    assert result.exit_code == 4, result
    assert "broken model refuses to load" in result.error
    assert result.seconds < 15, f"load failure reported after {result.seconds:.1f} s, not at once"
    assert leftovers(docker_client, lab_name) == []


def test_two_labs_from_one_stack_run_side_by_side(
    labs: LabRegistry, run_root: Path, tisbench: Tisbench, docker_client: docker.DockerClient
) -> None:
    names = [labs.name("twin"), labs.name("twin")]
    procs = [CliProcess(["up", QUICKSTART, "--images", "lab", "--name", n], cwd=run_root) for n in names]
    results = [p.wait(timeout=120) for p in procs]
    for result in results:
        assert result.exit_code == 0, result
    ports = [_status_of(tisbench, n)["ports"]["http"] for n in names]
    assert ports[0] != ports[1]
    for port in ports:
        assert http_status(f"http://127.0.0.1:{port}/v2/health/ready") == 200
    for name in names:
        down = tisbench("down", name)
        assert down.exit_code == 0, down
        assert leftovers(docker_client, name) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_while_waiting_removes_everything(
    signum: signal.Signals, slow_stack: Path, lab_name: str, run_root: Path, docker_client: docker.DockerClient
) -> None:
    proc = CliProcess(["up", slow_stack, "--images", "lab", "--name", lab_name], cwd=run_root)
    try:
        proc.wait_for_stderr(r"waiting for", timeout=60)
        server = service_container(docker_client, lab_name, "triton_server")
        assert server["State"] == "running"
        time.sleep(1.0)  # well inside the 20 s model load
        sent = time.monotonic()
        proc.send_signal(signum)
        result = proc.wait(timeout=30)
        exited_in = time.monotonic() - sent
        left = wait_gone(docker_client, lab_name, timeout=max(0.0, sent + 3 - time.monotonic()))
    finally:
        proc.kill()
    assert result.exit_code == 130, result
    assert "interrupted" in result.error
    assert exited_in <= 3, f"tisbench up took {exited_in:.1f} s to end after {signum.name}"
    assert left == [], f"still there 3 s after {signum.name}: {left}"
    assert not (slow_stack / ".tisbench" / lab_name).exists(), "the run area is removed too"


def test_sigterm_while_a_probe_waits_on_the_server_is_not_lost(
    make_stack: MakeStack, lab_name: str, run_root: Path, docker_client: docker.DockerClient
) -> None:
    # Explicit model control: HTTP is up at once but seed_model never loads, so up keeps probing.
    stack = make_stack(QUICKSTART, "stalled", {"server": {"args": ["--model-control-mode=explicit"]}})
    proc = CliProcess(["up", stack, "--images", "lab", "--name", lab_name, "--timeout", "12"], cwd=run_root)
    server_id = ""
    try:
        proc.wait_for_stderr(r"waiting for model seed_model", timeout=60)
        server_id = service_container(docker_client, lab_name, "triton_server")["Id"]
        docker_client.api.pause(server_id)  # connections are accepted, never answered: each probe waits 1 s
        time.sleep(1.5)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        result = proc.wait(timeout=60)
        exited_in = time.monotonic() - sent
        left = wait_gone(docker_client, lab_name, timeout=max(0.0, sent + 3 - time.monotonic()))
    finally:
        proc.kill()
        _unpause(docker_client, server_id)
    assert result.exit_code == 130, result
    assert exited_in <= 3, f"tisbench up took {exited_in:.1f} s to end after SIGTERM"
    assert left == [], f"still there 3 s after SIGTERM: {left}"


def _unpause(client: docker.DockerClient, container_id: str) -> None:
    """So that the finalizer's forced removal never meets a frozen container."""
    if not container_id:
        return
    try:
        if client.api.inspect_container(container_id)["State"].get("Paused"):
            client.api.unpause(container_id)
    except docker.errors.NotFound:
        pass


def test_readiness_timeout_is_exit_4_with_the_server_log_and_removes_the_lab(
    slow_stack: Path, tisbench: Tisbench, lab_name: str, docker_client: docker.DockerClient
) -> None:
    result = tisbench("up", slow_stack, "--images", "lab", "--name", lab_name, "--timeout", "3")
    assert result.exit_code == 4, result
    assert "not ready after 3 s" in result.error
    assert "seed_model" in result.error, "the last server log lines say what it was doing"
    assert result.seconds < 15
    assert leftovers(docker_client, lab_name) == []


def test_the_environment_stack_yaml_sets_reaches_each_container(
    make_stack: MakeStack, labs: LabRegistry, tisbench: Tisbench, docker_client: docker.DockerClient
) -> None:
    tricky = 'a: b $HOME "q" 日本'
    stack = make_stack(
        QUICKSTART,
        "env",
        {"server": {"environment": {"OMP_NUM_THREADS": "1", "TRICKY": tricky}},
         "analyzer": {"environment": {"PA_NOTE": "${X}"}}},
    )  # fmt: skip
    name = labs.name("env")

    up = tisbench("up", stack, "--images", "lab", "--name", name)

    assert up.exit_code == 0, up
    env = {
        service: docker_client.api.inspect_container(service_container(docker_client, name, service)["Id"])["Config"][
            "Env"
        ]
        for service in ("triton_server", "perf_analyzer")
    }
    assert {"OMP_NUM_THREADS=1", f"TRICKY={tricky}"} <= set(env["triton_server"])
    assert "PA_NOTE=${X}" in env["perf_analyzer"] and not any(e.startswith("OMP_") for e in env["perf_analyzer"])
    assert tisbench("down", name).exit_code == 0


def _answers_200(url: str) -> bool:
    try:
        return http_status(url, timeout=2) == 200
    except OSError:  # docker-proxy accepts, then drops, until Triton listens
        return False


def test_the_rendered_file_runs_with_docker_compose_as_the_lab_tisbench_makes(
    make_stack: MakeStack, labs: LabRegistry, tisbench: Tisbench, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    """A user's path: render, `docker compose up -d`, bench it with tisbench, `docker compose down`:
    the same lab, its data volume and environment included.
    A lab run first teaches tisbench what this engine refuses (memlock -1 on CI's engine), and the
    rendered file leaves that out, so compose's own start does not fail on it."""
    docker_cli = shutil.which("docker")
    if docker_cli is None or subprocess.run([docker_cli, "compose", "version"], capture_output=True).returncode:
        unavailable("docker compose is not installed")
    # the origin stack: its model opens files from the data volume, so the bench proves compose mounted it
    stack = make_stack(ORIGIN_STACK, "composed", {"server": {"environment": {"OMP_NUM_THREADS": "1"}}})
    first = labs.name("learn")
    assert tisbench("up", stack, "--images", "lab", "--name", first).exit_code == 0
    assert tisbench("down", first).exit_code == 0
    name = labs.name("composed")
    file = tmp_path / "docker-compose.yml"
    assert tisbench("render", stack, "--images", "lab", "--name", name, "-o", file).exit_code == 0

    compose = [docker_cli, "compose", "-p", name, "-f", str(file)]
    try:
        done = subprocess.run([*compose, "up", "-d"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        port = subprocess.run([*compose, "port", "triton_server", "8000"], capture_output=True, text=True).stdout
        url = f"http://127.0.0.1:{port.strip().rpartition(':')[2]}/v2/health/ready"
        deadline = time.monotonic() + 60
        while not _answers_200(url):
            assert time.monotonic() < deadline, "the compose-made server never got ready"
            time.sleep(0.2)
        bench = tisbench("bench", name, "--out", tmp_path / "run", timeout=300)
        assert bench.exit_code == 0, bench
        manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
        assert manifest["status"] == "ok" and manifest["lab"] == name
    finally:
        down = subprocess.run([*compose, "down", "-t", "0"], capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert leftovers(docker_client, name) == []
