"""The user's own server image: a python model that imports Pillow runs with server.requirements
(wheels fetched by this machine's pip, installed in a build without network) and with server.build
(a Dockerfile FROM $BASE_IMAGE); the second lab reuses the image; bad requirements and a failing
step are one line each, with nothing left behind."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from .conftest import MakeStack, Tisbench
from .support import ERROR_PREFIX, LAB_IMAGES, PILLOW_STACK, STEADY, LabRegistry, leftovers

pytestmark = pytest.mark.docker
PILLOW = "pillow==11.0.0"


@pytest.fixture
def own_images(docker_client: docker.DockerClient) -> Iterator[list[str]]:
    """Tags this test's labs made; removed after it (only those)."""
    made: list[str] = []
    yield made
    for tag in made:
        try:
            docker_client.images.remove(tag, force=True)
        except docker.errors.ImageNotFound:
            pass


def _lab(tisbench: Tisbench, stack: Path, out: Path) -> tuple[float, str]:
    started = time.monotonic()
    result = tisbench("lab", stack, "--images", "lab", "--out", out, *STEADY, timeout=600)
    assert result.exit_code == 0, result
    assert json.loads((out / "summary.json").read_text())["rows"][0]["throughput_infer_per_sec"] > 0
    return time.monotonic() - started, result.stderr


def test_requirements_make_a_server_image_once_and_the_next_lab_reuses_it(
    make_stack: MakeStack, tisbench: Tisbench, tmp_path: Path, own_images: list[str],
    docker_client: docker.DockerClient,
) -> None:  # fmt: skip
    stack = make_stack(PILLOW_STACK, "pillow", {"server": {"requirements": [PILLOW]}})

    first_s, first = _lab(tisbench, stack, tmp_path / "first")
    server = json.loads((tmp_path / "first" / "manifest.json").read_text())["images"]["server"]
    own_images.append(server)
    second_s, second = _lab(tisbench, stack, tmp_path / "second")

    assert server.startswith("tisbench-derived/tritonserver:24.10-")
    assert "fetching wheels for Python 3.11" in first and "no network inside the build" in first
    assert "reused" in second and "building" not in second
    labels = docker_client.api.inspect_image(server)["Config"]["Labels"]
    assert labels["tisbench.derived"] == "requirements" and labels["tisbench.base-image"] == LAB_IMAGES[0]
    listed = tisbench("images", "list", "--json")
    row = {"tag": server, "kind": "requirements", "base": LAB_IMAGES[0], "stack": str(stack.resolve())}
    assert {"derived": row} in json.loads(listed.stdout)
    print(f"server.requirements: first lab {first_s:.1f} s (fetch + build), second {second_s:.1f} s (reused)")
    assert tisbench("images", "rm", server).exit_code == 0
    assert docker_client.api.images(name=server) == []


def test_a_dockerfile_from_base_image_serves_the_same_model(
    make_stack: MakeStack, tisbench: Tisbench, tmp_path: Path, own_images: list[str],
    docker_client: docker.DockerClient,
) -> None:  # fmt: skip
    stack = make_stack(PILLOW_STACK, "pilbuild", {"server": {"requirements": None, "build": {"context": "docker"}}})
    wheels = stack / "docker" / "wheels"
    fetched = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.11",
         "--platform", "manylinux_2_28_x86_64", "--dest", str(wheels), PILLOW],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert fetched.returncode == 0, fetched.stderr

    _, said = _lab(tisbench, stack, tmp_path / "run")
    server = json.loads((tmp_path / "run" / "manifest.json").read_text())["images"]["server"]
    own_images.append(server)

    assert server.startswith("tisbench-built/tritonserver:e2e-pilbuild-") and server.endswith("-24.10")
    assert "server.build: building" in said and "Step 1/" in said
    assert docker_client.api.inspect_image(server)["Config"]["Labels"]["e2e.release"] == "24.10"
    again_s, again = _lab(tisbench, stack, tmp_path / "again")  # the engine's cache serves every step
    assert "built " + server + ": 6 steps, 4 of them from the engine's cache" in again, again
    print(f"server.build: second lab {again_s:.1f} s")


def test_a_requirement_pip_cannot_fetch_is_exit_2_naming_it_and_builds_nothing(
    make_stack: MakeStack, tisbench: Tisbench, docker_client: docker.DockerClient
) -> None:
    stack = make_stack(PILLOW_STACK, "badreq", {"server": {"requirements": ["pillow==0.0.404"]}})
    before = {t for i in docker_client.api.images(filters={"label": "tisbench.derived"}) for t in i["RepoTags"] or []}

    result = tisbench("lab", stack, "--images", "lab", timeout=300)

    assert result.exit_code == 2, result
    errors = [line for line in result.stderr.splitlines() if line.startswith(ERROR_PREFIX)]
    assert len(errors) == 1 and "server.requirements: no wheel of pillow==0.0.404" in errors[0], result.stderr
    after = {t for i in docker_client.api.images(filters={"label": "tisbench.derived"}) for t in i["RepoTags"] or []}
    assert after == before


def test_a_dockerfile_that_fails_at_a_step_is_exit_4_naming_the_step(
    make_stack: MakeStack, tisbench: Tisbench, labs: LabRegistry, docker_client: docker.DockerClient
) -> None:
    stack = make_stack(PILLOW_STACK, "badstep", {"server": {"requirements": None, "build": {"context": "docker"}}})
    (stack / "docker" / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM $BASE_IMAGE\nRUN exit 3\n")
    name = labs.name("badstep")

    result = tisbench("up", stack, "--images", "lab", "--name", name, timeout=300)

    assert result.exit_code == 4, result
    errors = [line for line in result.stderr.splitlines() if line.startswith(ERROR_PREFIX)]
    assert len(errors) == 1 and ": RUN exit 3 failed" in errors[0] and "server.build" in errors[0], result.stderr
    assert leftovers(docker_client, name) == []
