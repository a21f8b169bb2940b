"""A lab on real GPUs: --gpus reaches the server container, GPU metrics reach the run directory.

Only a host with an NVIDIA GPU (and an engine with the NVIDIA Container Toolkit) runs these.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import docker
import pytest

from composer.core.gpus import host_has_gpu

from .conftest import MakeStack, Tisbench
from .support import QUICKSTART, STEADY, service_container

pytestmark = [
    pytest.mark.docker,
    pytest.mark.gpu,
    pytest.mark.skipif(not host_has_gpu(), reason="no NVIDIA GPU on this host (/dev/nvidia0 absent, nvidia-smi -L "
                                                  "lists none): GPU labs run only where one is"),
]


@pytest.fixture
def engine_with_nvidia(docker_client: docker.DockerClient) -> docker.DockerClient:
    """A GPU host whose engine cannot hand GPUs out is a setup error worth failing on, not skipping."""
    runtimes = docker_client.api.info().get("Runtimes") or {}
    assert "nvidia" in runtimes, (f"this host has a GPU but the engine's runtimes are {sorted(runtimes)}: "
                                  "sudo nvidia-ctk runtime configure --runtime=docker, then restart dockerd")
    return docker_client


def _read(path: Path) -> dict[str, Any]:
    assert path.exists(), f"{path.name} missing from the run directory: {sorted(p.name for p in path.parent.iterdir())}"
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data


def test_lab_with_all_gpus_records_the_gpus_and_their_utilization(
    engine_with_nvidia: docker.DockerClient, make_stack: MakeStack, tisbench: Tisbench, tmp_path: Path
) -> None:
    stack = make_stack(QUICKSTART, "gpu-all")
    out = tmp_path / "run"
    result = tisbench("lab", stack, "--images", "lab", "--gpus", "all", "--concurrency", "1:2",
                      "--out", out, *STEADY, timeout=600)
    assert result.exit_code == 0, result

    manifest = _read(out / "manifest.json")
    gpus = manifest["gpus"]
    assert gpus["request"] == "all" and gpus["resolved"] == "all", gpus
    assert gpus["devices"] and all(uuid.startswith("GPU-") for uuid in gpus["devices"]), gpus

    metrics = _read(out / "server_metrics.json")
    assert metrics["gpus"] == gpus["devices"]
    assert [p["concurrency"] for p in metrics["points"]] == [1, 2]
    for point in metrics["points"]:
        assert point["counters"]["nv_inference_request_success"] > 0, point
        utilization = {g["labels"]["gpu_uuid"] for g in point["gauges"] if g["name"] == "nv_gpu_utilization"}
        assert utilization == set(gpus["devices"]), point["gauges"]

    header = (out / "perf_analyzer.csv").read_text().splitlines()[0]
    assert "Avg GPU Utilization" in header, "perf_analyzer ran without --collect-metrics"
    assert "--collect-metrics" in manifest["perf_analyzer_argv"]


def test_lab_with_one_device_sees_only_that_gpu(
    engine_with_nvidia: docker.DockerClient, make_stack: MakeStack, tisbench: Tisbench, tmp_path: Path
) -> None:
    stack = make_stack(QUICKSTART, "gpu-dev0")
    out = tmp_path / "run"
    result = tisbench("lab", stack, "--images", "lab", "--gpus", "device=0", "--out", out, *STEADY, timeout=600)
    assert result.exit_code == 0, result
    manifest = _read(out / "manifest.json")
    assert manifest["gpus"]["request"] == "device=0"
    assert len(manifest["gpus"]["devices"]) == 1, manifest["gpus"]
    assert _read(out / "server_metrics.json")["gpus"] == manifest["gpus"]["devices"]


def test_up_gives_the_server_the_device_request_the_compose_file_names(
    engine_with_nvidia: docker.DockerClient, tisbench: Tisbench, lab_name: str
) -> None:
    result = tisbench("up", QUICKSTART, "--images", "lab", "--name", lab_name, "--gpus", "all", timeout=300)
    assert result.exit_code == 0, result
    server = service_container(engine_with_nvidia, lab_name, "triton_server")
    requests = engine_with_nvidia.api.inspect_container(server["Id"])["HostConfig"]["DeviceRequests"]
    assert [(r["Driver"], r["Count"], r["Capabilities"]) for r in requests] == [("nvidia", -1, [["gpu"]])]
    analyzer = service_container(engine_with_nvidia, lab_name, "perf_analyzer")
    assert not engine_with_nvidia.api.inspect_container(analyzer["Id"])["HostConfig"].get("DeviceRequests")
