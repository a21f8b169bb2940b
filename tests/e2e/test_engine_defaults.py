"""Defaults that hold on every engine: NGC's ulimits are advice, a stack's own ulimits are not.

This machine's engine (like CI's, rootless Docker and many hosted runners) cannot raise
RLIMIT_MEMLOCK, so it refuses NGC's ``memlock: -1``. The quickstart carries no workaround for it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import docker
import docker.errors
import pytest

from .conftest import MakeStack, Tisbench
from .support import LAB_IMAGES, QUICKSTART, LabRegistry, leftovers, once_more_if_noisy, write_stack_yaml

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def grants_memlock(docker_client: docker.DockerClient) -> bool:
    """Whether this engine can start a container with memlock unlimited (a probe container, removed)."""
    api = docker_client.api
    created = api.create_container(
        LAB_IMAGES[1],
        command=["true"],
        labels={"tisbench.e2e-probe": "memlock"},
        host_config=api.create_host_config(ulimits=[docker.types.Ulimit(name="memlock", soft=-1, hard=-1)]),
    )
    try:
        api.start(created["Id"])
        return True
    except docker.errors.APIError:
        return False
    finally:
        api.remove_container(created["Id"], force=True)


def test_quickstart_runs_on_the_defaults_and_records_refused_advice(
    make_stack: MakeStack, tisbench: Tisbench, run_root: Path, grants_memlock: bool
) -> None:
    stack = make_stack(QUICKSTART, "defaults")

    result = once_more_if_noisy(
        lambda: tisbench("lab", stack, "--images", "lab", "--out", run_root / "RUN", timeout=240),
        lambda: shutil.rmtree(run_root / "RUN"),
    )

    assert result.exit_code == 0, result.stderr
    manifest = json.loads((run_root / "RUN" / "manifest.json").read_text())
    if grants_memlock:
        assert manifest["server_ulimits"] == {"granted": {"memlock": -1, "stack": 67108864}, "dropped": []}
    else:
        assert manifest["server_ulimits"] == {"granted": {"stack": 67108864}, "dropped": ["memlock"]}
        said = [line for line in result.stderr.splitlines() if "memlock" in line]
        assert len(said) == 1 and "cannot grant ulimit memlock=-1" in said[0] and "starting without it" in said[0]


def test_a_ulimit_the_stack_sets_is_never_dropped_silently(
    make_stack: MakeStack,
    tisbench: Tisbench,
    docker_client: docker.DockerClient,
    grants_memlock: bool,
    labs: LabRegistry,
) -> None:
    if grants_memlock:
        pytest.skip("this engine grants memlock -1, so nothing is refused")
    stack = make_stack(QUICKSTART, "own-ulimit")
    write_stack_yaml(stack, {"server": {"ulimits": {"memlock": -1}}})

    name = labs.name("own-ulimit")
    result = tisbench("up", stack, "--images", "lab", "--name", name)

    assert result.exit_code == 4, result.stderr
    assert result.error_lines == [
        "tisbench: error: server.ulimits.memlock: this Docker engine cannot grant memlock=-1, which stack.yaml "
        "asks for — lower it, or set server.ulimits.memlock: null to keep the engine's default"
    ]
    assert leftovers(docker_client, name) == []
