"""Transport and load shapes on real labs: system shared memory between the lab's containers (with
tisbench's lab and with the file it renders, run by docker compose), Poisson and interval-file
arrivals."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import docker
import pytest
from paths import E2E_STACKS

from .conftest import MakeStack, Tisbench
from .support import QUICKSTART, LabRegistry, leftovers, read_json, unavailable

pytestmark = pytest.mark.docker

IDENTITY = E2E_STACKS / "nvidia" / "identity_fp32"  # NVIDIA's qa identity_fp32, 16,384 FP32 values a request


def _argv_value(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv else None


def test_system_shared_memory_runs_on_the_quickstart(make_stack: MakeStack, tisbench: Tisbench, run_root: Path) -> None:
    stack = make_stack(QUICKSTART, "shm-quickstart")
    result = tisbench("lab", stack, "--images", "lab", "--shared-memory", "system", "--out", run_root / "Q")
    assert result.exit_code == 0, result
    manifest = read_json(run_root / "Q" / "manifest.json")
    # its BYTES outputs: sized from the model's answer to the data's one step
    assert _argv_value(manifest["perf_analyzer_argv"], "--shared-memory") == "system"
    assert manifest["shared_memory"]["probed_steps"] == 1 and manifest["shared_memory"]["output_region_bytes"] >= 4096


def test_one_lab_compares_transports_on_a_large_tensor_model_side_by_side(
    make_stack: MakeStack, tisbench: Tisbench, run_root: Path
) -> None:
    """NVIDIA's identity_fp32 with 16,384 FP32 values a request: HTTP, gRPC, each with and without
    system shared memory, at the same point, in one lab; one report with all of them."""
    stack = make_stack(IDENTITY, "transports", {"model": "identity_fp32"})
    run = run_root / "T"
    result = tisbench("lab", stack, "--images", "lab", "--protocol", "http,grpc", "--shared-memory", "none,system",
                      "--concurrency", "2", "--out", run, timeout=600)  # fmt: skip
    assert result.exit_code in (0, 7), result
    summary, manifest = read_json(run / "summary.json"), read_json(run / "manifest.json")
    labels = ["http", "http+system shm", "grpc", "grpc+system shm"]
    assert manifest["transports"] == labels
    assert [t["transport"] for t in summary["transports"]] == labels
    speeds = {t["transport"]: t["rows"][0]["throughput_infer_per_sec"] for t in summary["transports"]}
    assert all(v > 0 for v in speeds.values())
    assert manifest["shared_memory"]["output_region_bytes"] == 65536  # the -1 output: 16,384 floats
    shm_argv = [a["argv"] for a in manifest["attempts"] if "--shared-memory" in a["argv"]]
    assert shm_argv and all(_argv_value(a, "--output-shared-memory-size") == "65536" for a in shm_argv)
    report = (run / "report.md").read_text()
    assert "## Transports compared" in report and "grpc+system shm" in report
    print(f"identity_fp32 at concurrency 2: {speeds}; grpc+system shm / grpc = "
          f"{speeds['grpc+system shm'] / speeds['grpc']:.2f}")  # fmt: skip


def test_the_rendered_file_with_shared_memory_runs_under_docker_compose(
    make_stack: MakeStack, labs: LabRegistry, tisbench: Tisbench, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    """The user's path: render with shared memory, `docker compose up -d`, then perf_analyzer by
    hand with --shared-memory system in the sdk container: it maps the server's regions."""
    docker_cli = shutil.which("docker")
    if docker_cli is None or subprocess.run([docker_cli, "compose", "version"], capture_output=True).returncode:
        unavailable("docker compose is not installed")
    stack = make_stack(IDENTITY, "shm-composed", {"model": "identity_fp32"})
    learn = labs.name("shm-learn")  # a lab first: what this engine refuses (memlock) is left out of the file
    assert tisbench("up", stack, "--images", "lab", "--name", learn).exit_code == 0
    assert tisbench("down", learn).exit_code == 0
    name, file = labs.name("shm-composed"), tmp_path / "docker-compose.yml"
    rendered = tisbench("render", stack, "--images", "lab", "--name", name, "--shared-memory", "system", "-o", file)
    assert rendered.exit_code == 0, rendered
    assert 'ipc: "service:triton_server"' in file.read_text()
    compose = [docker_cli, "compose", "-p", name, "-f", str(file)]
    try:
        done = subprocess.run([*compose, "up", "-d"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + 90
        argv = ["perf_analyzer", "-m", "identity_fp32", "-u", "triton_server:8000",
                "--input-data", "dataset/input.json", "--shape", "INPUT0:16384", "--shared-memory", "system",
                "--output-shared-memory-size", "65536", "--measurement-request-count", "50"]  # fmt: skip
        while True:  # until Triton is ready: perf_analyzer's own first call fails before that
            ran = subprocess.run([*compose, "exec", "-T", "perf_analyzer", *argv], capture_output=True, text=True)
            if ran.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
        assert "Throughput:" in ran.stdout
    finally:
        down = subprocess.run([*compose, "down", "-t", "0"], capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert leftovers(docker_client, name) == []


def test_poisson_and_interval_file_arrivals_complete_and_are_recorded(
    make_stack: MakeStack, tisbench: Tisbench, run_root: Path
) -> None:
    stack = make_stack(QUICKSTART, "arrivals")
    (stack / "dataset" / "intervals.txt").write_text("2000\n500\n4000\n1500\n")  # µs: 500 infer/s on average
    poisson = tisbench("lab", stack, "--images", "lab", "--request-rate", "200", "--request-distribution", "poisson",
                       "--out", run_root / "P", timeout=400)  # fmt: skip
    assert poisson.exit_code == 0, poisson
    manifest = read_json(run_root / "P" / "manifest.json")
    assert manifest["load_pattern"] == {"mode": "request_rate", "distribution": "poisson"}
    assert _argv_value(manifest["perf_analyzer_argv"], "--request-distribution") == "poisson"

    intervals = tisbench("lab", stack, "--images", "lab", "--request-intervals", stack / "dataset" / "intervals.txt",
                         "--out", run_root / "F", timeout=400)  # fmt: skip
    assert intervals.exit_code == 0, intervals
    manifest = read_json(run_root / "F" / "manifest.json")
    assert manifest["load_pattern"]["mode"] == "request_intervals" and manifest["load_pattern"]["intervals"] == 4
    assert _argv_value(manifest["perf_analyzer_argv"], "--request-intervals") == "dataset/intervals.txt"
    assert "--concurrency-range" not in manifest["perf_analyzer_argv"]
    assert read_json(run_root / "F" / "summary.json")["rows"][0]["throughput_infer_per_sec"] > 0


def test_validation_data_is_checked_and_a_mismatch_names_the_output_and_the_step(
    make_stack: MakeStack, tisbench: Tisbench, run_root: Path
) -> None:
    """NVIDIA's add_sub: OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1, over its two data steps."""
    stack = make_stack(E2E_STACKS / "nvidia" / "add_sub", "validated")
    data = stack / "dataset" / "input.json"
    doc = json.loads(data.read_text())
    doc["validation_data"] = [
        {"OUTPUT0": [1.5, 2.5, 3.5, 4.5], "OUTPUT1": [0.5, 1.5, 2.5, 3.5]},
        {"OUTPUT0": [5.0, 4.0, 3.0, 2.0], "OUTPUT1": [3.0, 2.0, 1.0, 0.0]},
    ]
    data.write_text(json.dumps(doc))
    right = tisbench("lab", stack, "--images", "lab", "--out", run_root / "R", timeout=400)
    assert right.exit_code == 0, right
    assert "validation_data" in read_json(run_root / "R" / "manifest.json")["outputs_checked"]

    doc["validation_data"][1]["OUTPUT1"] = [3.0, 2.0, 1.0, 1.0]
    data.write_text(json.dumps(doc))
    wrong = tisbench("lab", stack, "--images", "lab", "--out", run_root / "W", timeout=400)
    assert wrong.exit_code == 5, wrong
    assert "output 'OUTPUT1', step 1: expected [3, 2, 1, 1], got [3, 2, 1, 0]" in wrong.error
    assert read_json(run_root / "W" / "manifest.json")["status"] == "failed"
