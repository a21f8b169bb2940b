"""Reliability and isolation on real Docker: four labs at once, `down --all` among other
containers, a read-only model repository, unprivileged containers, `--gpus all` without the
NVIDIA runtime, and a `dataset skeleton` that `check` and `bench` accept.

Every failing command here must end with exactly one `tisbench: error:` line and no traceback.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from .conftest import MakeStack, Tisbench
from .support import (
    LAB_IMAGES,
    LAB_LABEL,
    PREFIX,
    QUICKSTART,
    STEADY,
    CliProcess,
    CliResult,
    LabRegistry,
    copy_stack,
    e2e_lab_names,
    leftovers,
    patch_initialize,
    service_container,
    unavailable,
)

pytestmark = pytest.mark.docker

SEED_INPUTS = ("data_path", "age", "gender", "name")
SERVICES = ("triton_server", "perf_analyzer")
BYSTANDER_LABEL = "tisbench-e2e-bystander"


def failed_cleanly(result: CliResult, exit_code: int) -> str:
    """A failing command: the expected exit code, no traceback, and its one error line (returned)."""
    assert result.exit_code == exit_code, result
    assert "Traceback" not in result.stderr, result
    return result.error


def lab_created(result: CliResult) -> str:
    """The lab name `tisbench up/lab` announced on stderr ("creating lab NAME: ...")."""
    match = re.search(r"creating lab (\S+):", result.stderr)
    assert match, f"no 'creating lab' line:\n{result}"
    return match.group(1)


def run_dir_of(result: CliResult, cwd: Path) -> Path:
    match = re.search(r"^run directory: (.+)$", result.stdout, re.MULTILINE)
    assert match, f"no 'run directory:' line:\n{result}"
    path = Path(match.group(1).strip())
    return path if path.is_absolute() else cwd / path


# ---------------------------------------------------------------------------------------- 1


def test_four_labs_at_once_all_succeed_and_leave_nothing(
    make_stack: MakeStack, labs: LabRegistry, run_root: Path, docker_client: docker.DockerClient
) -> None:
    stacks = [make_stack(QUICKSTART, f"four{i}") for i in range(4)]
    procs = [CliProcess(["lab", stack, "--images", "lab", "--measurement-requests", "300", *STEADY], cwd=run_root)
             for stack in stacks]
    try:
        results = [p.wait(timeout=150) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for result in results:
        assert result.exit_code == 0, result
        assert "Traceback" not in result.stderr, result
    names = [lab_created(r) for r in results]
    assert len(set(names)) == 4, names
    for name, prefix in zip(names, labs.prefixes, strict=True):
        assert name.startswith(prefix), f"{name} is not named after its stack ({prefix}…)"

    run_dirs = [run_dir_of(r, run_root).resolve() for r in results]
    assert len(set(run_dirs)) == 4, f"labs shared a run directory: {run_dirs}"
    for run_dir, name in zip(run_dirs, names, strict=True):
        assert name in run_dir.name, f"{run_dir} does not name its lab {name}"
        summary = json.loads((run_dir / "summary.json").read_text())
        rows = summary["rows"]
        assert rows, f"{run_dir}/summary.json has no rows"
        assert all(row["throughput_infer_per_sec"] > 0 for row in rows), rows
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["lab"] == name and manifest["status"] == "ok", manifest.get("status")

    for name in names:
        assert leftovers(docker_client, name) == [], f"lab {name} left objects behind"
    assert not {n for n in e2e_lab_names(docker_client) if n.startswith(tuple(labs.prefixes))}
    for stack, name in zip(stacks, names, strict=True):
        assert not (stack / ".tisbench" / name).exists(), "the run area is removed with the lab"


# ---------------------------------------------------------------------------------------- 2


def _tisbench_labs_on_engine(client: docker.DockerClient) -> set[str]:
    """Every lab `down --all` would find: labelled containers, networks and swarm services."""
    found = {c["Labels"].get(LAB_LABEL, "") for c in client.api.containers(all=True, filters={"label": LAB_LABEL})}
    found |= {n["Labels"].get(LAB_LABEL, "") for n in client.api.networks(filters={"label": LAB_LABEL})}
    try:
        services = client.api.services(filters={"label": LAB_LABEL})
    except docker.errors.APIError:  # not a swarm manager: no services
        services = []
    found |= {(s["Spec"].get("Labels") or {}).get(LAB_LABEL, "") for s in services}
    return found


def test_down_all_removes_only_tisbench_labs(
    tisbench: Tisbench, lab_name: str, docker_client: docker.DockerClient
) -> None:
    foreign = sorted(n for n in _tisbench_labs_on_engine(docker_client) if not n.startswith(PREFIX))
    if foreign:
        message = (f"tisbench labs that are not the tests' own are on this engine ({', '.join(foreign)}); "
                   "`tisbench down --all` would remove them")
        unavailable(message, ci_says="CI=true: the engine must be clean")

    api = docker_client.api
    bystander = api.create_container(
        image=LAB_IMAGES[1],
        entrypoint=["sleep", "infinity"],
        name=f"e2e-bystander-{secrets.token_hex(3)}",
        labels={BYSTANDER_LABEL: "1"},
        host_config=api.create_host_config(network_mode="none"),
    )["Id"]
    try:
        api.start(bystander)
        up = tisbench("up", QUICKSTART, "--images", "lab", "--name", lab_name)
        assert up.exit_code == 0, up
        assert leftovers(docker_client, lab_name), "the lab exists before down --all"

        down = tisbench("down", "--all")
        assert down.exit_code == 0, down
        assert lab_name in down.stderr, down
        assert leftovers(docker_client, lab_name) == []
        assert not (QUICKSTART / ".tisbench" / lab_name).exists(), "down --all removes the run area"
        state = api.inspect_container(bystander)["State"]
        assert state["Running"], f"down --all touched the bystander container: {state}"
    finally:
        try:
            api.remove_container(bystander, force=True)
        except docker.errors.NotFound:
            pass


# ---------------------------------------------------------------------------------------- 3


WRITING_INITIALIZE = '''
    def initialize(self, args):
        try:
            with open("/models/seed_model/1/written_by_model.txt", "w") as handle:
                handle.write("e2e: the model repository should be read-only")
        except OSError as exc:
            raise RuntimeError(f"write refused: {exc}")
'''


def test_model_repository_is_read_only_inside_the_server(
    make_stack: MakeStack, tisbench: Tisbench, lab_name: str, docker_client: docker.DockerClient
) -> None:
    stack = make_stack(QUICKSTART, "readonly")
    patch_initialize(stack, WRITING_INITIALIZE)

    result = tisbench("up", stack, "--images", "lab", "--name", lab_name, "--timeout", "60")
    error = failed_cleanly(result, 4)
    assert "Read-only file system" in error
    assert "write refused" in error
    assert not (stack / "models" / "seed_model" / "1" / "written_by_model.txt").exists()
    assert leftovers(docker_client, lab_name) == []
    assert not (stack / ".tisbench" / lab_name).exists()


# ---------------------------------------------------------------------------------------- 4


def test_lab_containers_are_not_privileged(
    make_stack: MakeStack, tisbench: Tisbench, lab_name: str, docker_client: docker.DockerClient
) -> None:
    stack = make_stack(QUICKSTART, "unpriv")
    up = tisbench("up", stack, "--images", "lab", "--name", lab_name)
    assert up.exit_code == 0, up
    network = f"{lab_name}_tis_net"
    inspected: dict[str, dict[str, Any]] = {
        service: docker_client.api.inspect_container(service_container(docker_client, lab_name, service)["Id"])
        for service in SERVICES
    }
    for service, c in inspected.items():
        host = c["HostConfig"]
        assert host["Privileged"] is False, f"{service} is privileged"
        assert host["NetworkMode"] == network, f"{service} network mode {host['NetworkMode']!r}"
        assert set(c["NetworkSettings"]["Networks"]) == {network}, f"{service} networks {c['NetworkSettings']}"
        assert not host.get("CapAdd"), f"{service} adds capabilities {host['CapAdd']}"
        assert not host.get("Devices"), f"{service} maps devices {host['Devices']}"
        for mode in ("PidMode", "IpcMode", "UsernsMode"):
            assert host.get(mode) != "host", f"{service} {mode}=host"
        sockets = [m for m in c["Mounts"] if "docker.sock" in str(m.get("Source", ""))]
        sockets += [b for b in host.get("Binds") or [] if "docker.sock" in b]
        assert not sockets, f"{service} mounts the Docker socket: {sockets}"
        bindings = [b for bs in (host.get("PortBindings") or {}).values() for b in bs or []]
        bindings += [b for bs in (c["NetworkSettings"].get("Ports") or {}).values() for b in bs or []]
        assert all(b["HostIp"] == "127.0.0.1" for b in bindings), f"{service} publishes beyond loopback: {bindings}"

    server, analyzer = inspected["triton_server"], inspected["perf_analyzer"]
    published = server["NetworkSettings"]["Ports"] or {}
    assert {k for k, v in published.items() if v} == {"8000/tcp", "8001/tcp", "8002/tcp"}, published
    assert not [v for v in (analyzer["NetworkSettings"]["Ports"] or {}).values() if v], "the analyzer publishes ports"
    mounts = {m["Destination"]: m for m in server["Mounts"]}
    assert mounts["/models"]["RW"] is False, mounts["/models"]
    assert Path(mounts["/models"]["Source"]) == (stack / "models").resolve()
    mounts = {m["Destination"]: m for m in analyzer["Mounts"]}
    assert mounts["/workspace/dataset"]["RW"] is False, mounts["/workspace/dataset"]
    assert Path(mounts["/workspace/dataset"]["Source"]) == (stack / "dataset").resolve()


# ---------------------------------------------------------------------------------------- 5


def test_gpus_all_without_the_nvidia_runtime_is_exit_3_at_once(
    make_stack: MakeStack, tisbench: Tisbench, lab_name: str, docker_client: docker.DockerClient
) -> None:
    runtimes = docker_client.api.info().get("Runtimes") or {}
    if "nvidia" in runtimes:
        pytest.skip(f"this engine has the nvidia runtime ({sorted(runtimes)}): --gpus all would be granted")
    stack = make_stack(QUICKSTART, "nogpu")
    result = tisbench("up", stack, "--images", "lab", "--name", lab_name, "--gpus", "all", timeout=60)
    error = failed_cleanly(result, 3)
    assert "NVIDIA Container Toolkit" in error or "nvidia-ctk" in error
    assert "--gpus all" in error
    assert result.seconds < 10, f"took {result.seconds:.1f} s"
    assert leftovers(docker_client, lab_name) == []
    assert not (stack / ".tisbench" / lab_name).exists()


# ---------------------------------------------------------------------------------------- 6


def test_dataset_skeleton_is_accepted_by_check_and_bench(
    make_stack: MakeStack, tisbench: Tisbench, lab_name: str, run_root: Path, tmp_path: Path,
    docker_client: docker.DockerClient,
) -> None:
    stack = make_stack(QUICKSTART, "skeleton")
    up = tisbench("up", stack, "--images", "lab", "--name", lab_name)
    assert up.exit_code == 0, up

    out = tmp_path / "OUT.json"
    made = tisbench("dataset", "skeleton", lab_name, "-o", out)
    assert made.exit_code == 0, made
    skeleton = json.loads(out.read_text())
    assert set(skeleton["data"][0]) == set(SEED_INPUTS), skeleton

    # A fresh copy of the stack whose input.json is the skeleton: check accepts it without Docker.
    fresh = copy_stack(stack, tmp_path / "fresh")
    shutil.copyfile(out, fresh / "dataset" / "input.json")
    check = tisbench("check", fresh)
    assert check.exit_code == 0, check
    shapes = [line for line in check.stdout.splitlines() if line.startswith("shapes")]
    assert len(shapes) == 1, check.stdout
    for name in SEED_INPUTS:
        assert re.search(rf"\b{name}:\d", shapes[0]), f"{name} missing from {shapes[0]!r}"

    # The fresh copy's dataset/ is not mounted in this lab: bench refuses it, in one line.
    refused = tisbench("bench", lab_name, "--input-data", fresh / "dataset" / "input.json",
                       "--measurement-requests", "300", "--out", run_root / "REFUSED", *STEADY)
    error = failed_cleanly(refused, 2)
    assert "outside" in error and str((stack / "dataset").resolve()) in error
    assert not (run_root / "REFUSED").exists()

    # In the lab's own stack copy the skeleton is benchmarked.
    shutil.copyfile(out, stack / "dataset" / "skeleton.json")
    run = run_root / "RUN"
    bench = tisbench("bench", lab_name, "--input-data", stack / "dataset" / "skeleton.json",
                     "--measurement-requests", "300", "--out", run, *STEADY)
    assert bench.exit_code == 0, bench
    assert "--input-data dataset/skeleton.json" in bench.stderr, bench
    rows = json.loads((run / "summary.json").read_text())["rows"]
    assert rows and all(row["throughput_infer_per_sec"] > 0 for row in rows), rows
