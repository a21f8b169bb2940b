"""A lab on another Docker engine: data travels into volumes, nothing is bind-mounted from here."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import yaml

from .engine2 import copy_images, second_engine
from .support import LAB_IMAGES, QUICKSTART, STEADY, run_cli, unavailable

pytestmark = pytest.mark.docker



@pytest.fixture(scope="module")
def remote_url(docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = Path("/tmp") / f"tisbench-e2e-engine2-{tmp_path_factory.getbasetemp().name}"
    try:
        with second_engine(root) as url:
            remote = docker.DockerClient(base_url=url, timeout=300)
            copy_images(docker_client, remote, LAB_IMAGES)
            remote.close()
            yield url
    except RuntimeError as exc:
        unavailable(str(exc))


def _local_objects(client: docker.DockerClient) -> set[str]:
    names = {c["Names"][0] for c in client.api.containers(all=True, filters={"label": "tisbench.lab"})}
    names |= {n["Name"] for n in client.api.networks(filters={"label": "tisbench.lab"})}
    return names


def test_lab_runs_on_a_remote_engine_with_data_copied_into_volumes(
    remote_url: str, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    stack = tmp_path / "stack"
    shutil.copytree(QUICKSTART, stack)
    config = yaml.safe_load((stack / "stack.yaml").read_text())
    config.update({"name": "e2e-remote"})
    (stack / "stack.yaml").write_text(yaml.safe_dump(config))
    local_before = _local_objects(docker_client)
    remote = docker.DockerClient(base_url=remote_url, timeout=60)
    host = ("--docker-host", remote_url)

    up = run_cli([*host, "up", stack, "--images", "lab", "--name", "e2e-remote-1"], cwd=tmp_path, timeout=180)
    try:
        assert up.exit_code == 0, up.stderr
        containers = remote.api.containers(filters={"label": "tisbench.lab=e2e-remote-1"})
        assert {c["Labels"]["com.docker.compose.service"] for c in containers} == {"triton_server", "perf_analyzer"}
        for container in containers:
            mounts = remote.api.inspect_container(container["Id"])["Mounts"]
            assert mounts and all(m["Type"] == "volume" for m in mounts), mounts
        assert _local_objects(docker_client) == local_before  # nothing on this machine's engine

        out = tmp_path / "run"
        bench = run_cli(
            [*host, "bench", "e2e-remote-1", "--measurement-requests", "300", "--out", out, *STEADY],
            cwd=tmp_path,
            timeout=300,
        )
        assert bench.exit_code == 0, bench.stderr
        summary = json.loads((out / "summary.json").read_text())
        assert summary["rows"][0]["throughput_infer_per_sec"] > 0
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["server_version"] == "2.51.0"
    finally:
        down = run_cli([*host, "down", "e2e-remote-1"], cwd=tmp_path, timeout=120)
    assert down.exit_code == 0, down.stderr
    assert not remote.api.containers(all=True, filters={"label": "tisbench.lab=e2e-remote-1"})
    assert not remote.api.volumes(filters={"label": "tisbench.lab=e2e-remote-1"}).get("Volumes")
    assert not remote.api.networks(filters={"label": "tisbench.lab=e2e-remote-1"})
    remote.close()


def test_the_stacks_own_data_volume_travels_to_a_remote_engine(
    remote_url: str, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    from .support import ORIGIN_STACK, copy_stack

    stack = copy_stack(ORIGIN_STACK, tmp_path / "stack", {"name": "e2e-remote-origin"})
    local_before = _local_objects(docker_client)
    out = tmp_path / "run"

    result = run_cli(
        ["--docker-host", remote_url, "lab", stack, "--images", "lab", "--out", out, *STEADY], cwd=tmp_path, timeout=300
    )

    assert result.exit_code == 0, result.stderr
    assert "copying models/ and data/ and dataset/ into volumes on the engine at" in result.stderr
    assert json.loads((out / "summary.json").read_text())["rows"][0]["throughput_infer_per_sec"] > 0
    mounts = json.loads((out / "manifest.json").read_text())["lab_design"]["services"]["triton_server"]["mounts"]
    assert [(m["type"], m["target"]) for m in mounts] == [("volume", "/models"), ("volume", "/data")]
    assert mounts[1]["host_path"] == str((stack / "data").resolve()) and mounts[1]["fingerprint"]
    assert _local_objects(docker_client) == local_before
    remote = docker.DockerClient(base_url=remote_url, timeout=60)
    lab = {"label": f"tisbench.lab={json.loads((out / 'manifest.json').read_text())['lab']}"}
    assert not remote.api.containers(all=True, filters=lab) and not remote.api.volumes(filters=lab).get("Volumes")
    remote.close()
