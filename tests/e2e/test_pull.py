"""Images as users get them: pulled from a registry (a mirror of NGC's tag scheme), refused plainly.

The registries are real (distribution 2.8) on 127.0.0.1, started and removed by these tests. The
lab images are pushed under a repository name this engine does not hold, so tisbench must pull.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from .conftest import MakeStack, Tisbench
from .registry import LocalRegistry
from .support import LAB_IMAGES, QUICKSTART, RELEASE, STEADY, LabRegistry, leftovers

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def mirror(docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A registry holding the lab images as ``<mirror>/<unique>/tritonserver:<R>-py3[-sdk]``."""
    registry = LocalRegistry(tmp_path_factory.mktemp("mirror"))
    repository = f"e2e{secrets.token_hex(3)}/tritonserver"
    try:
        registry.push(docker_client, LAB_IMAGES[0], repository, f"{RELEASE}-py3")
        registry.push(docker_client, LAB_IMAGES[1], repository, f"{RELEASE}-py3-sdk")
        yield registry.address, f"{registry.address}/{repository}"
    finally:
        registry.close()
        for suffix in ("", "-sdk"):
            try:
                docker_client.api.remove_image(f"{registry.address}/{repository}:{RELEASE}-py3{suffix}")
            except docker.errors.ImageNotFound:
                pass


def test_lab_pulls_both_images_from_a_mirror_and_records_their_digests(
    mirror: tuple[str, str],
    make_stack: MakeStack,
    tisbench: Tisbench,
    run_root: Path,
    docker_client: docker.DockerClient,
) -> None:
    _, repo = mirror
    stack = make_stack(QUICKSTART, "pull")
    run = run_root / "RUN"

    result = tisbench(
        "lab",
        stack,
        "--release",
        RELEASE,
        "--images",
        "ngc",
        "--image-repo",
        repo,
        "--pull",
        "missing",
        "--out",
        run,
        *STEADY,
        timeout=300,
    )

    assert result.exit_code == 0, result.stderr
    for suffix in ("", "-sdk"):
        assert f"pulled {repo}:{RELEASE}-py3{suffix}" in result.stderr
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["images"] == {"server": f"{repo}:{RELEASE}-py3", "sdk": f"{repo}:{RELEASE}-py3-sdk"}
    for service in ("server", "sdk"):
        digests = manifest["repo_digests"][service]
        assert any(d.startswith(f"{repo}@sha256:") for d in digests), digests


def test_a_registry_that_wants_a_login_is_exit_3_naming_it(
    tmp_path: Path, tisbench: Tisbench, labs: LabRegistry, docker_client: docker.DockerClient
) -> None:
    registry = LocalRegistry(tmp_path / "auth", auth=True)
    name = labs.name("pull-auth")
    try:
        result = tisbench(
            "up",
            QUICKSTART,
            "--images",
            "ngc",
            "--image-repo",
            f"{registry.address}/nvidia/tritonserver",
            "--pull",
            "missing",
            "--name",
            name,
        )
    finally:
        registry.close()

    assert result.exit_code == 3, result.stderr
    assert len(result.error_lines) == 1, result.stderr
    assert f"registry {registry.address} refused" in result.error
    assert f"docker login {registry.address}" in result.error
    assert leftovers(docker_client, name) == []


def test_pull_never_with_the_image_absent_creates_nothing(
    mirror: tuple[str, str], tisbench: Tisbench, labs: LabRegistry, docker_client: docker.DockerClient
) -> None:
    _, repo = mirror
    absent = f"{repo}-absent"
    name = labs.name("pull-never")

    result = tisbench("up", QUICKSTART, "--images", "ngc", "--image-repo", absent, "--pull", "never", "--name", name)

    assert result.exit_code == 3, result.stderr
    assert result.error_lines == [
        f"tisbench: error: image {absent}:{RELEASE}-py3 is not on this Docker engine and --pull is never — pull it "
        f"(docker pull {absent}:{RELEASE}-py3, or tisbench images pull) or use --pull missing"
    ]
    assert leftovers(docker_client, name) == []


def test_a_tag_the_registry_never_had_is_exit_3_naming_the_reference(
    mirror: tuple[str, str], tisbench: Tisbench, labs: LabRegistry
) -> None:
    _, repo = mirror

    result = tisbench("images", "pull", QUICKSTART, "--release", "23.05", "--image-repo", repo, "-q")

    assert result.exit_code == 3, result.stderr
    assert f"{repo}:23.05-py3 does not exist on registry" in result.error
