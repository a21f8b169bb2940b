"""The user's own server data: a model that opens files from a volume the stack mounts (the origin
story), run on this engine, rendered and run by real `docker compose`, and without the volume."""

from __future__ import annotations

import json
from pathlib import Path

import docker
import pytest
import yaml

from .conftest import MakeStack, Tisbench
from .support import ERROR_PREFIX, LAB_IMAGES, ORIGIN_STACK, STEADY, LabRegistry, leftovers

pytestmark = pytest.mark.docker


def test_the_origin_stack_reads_its_data_volume_and_the_manifest_names_the_mount(
    make_stack: MakeStack, tisbench: Tisbench, tmp_path: Path
) -> None:
    stack = make_stack(ORIGIN_STACK, "origin", {"model": "profile_model", "server": {"volumes": ["./data:/data:ro"]}})
    out = tmp_path / "run"

    result = tisbench("lab", stack, "--images", "lab", "--out", out, *STEADY, timeout=300)

    assert result.exit_code == 0, result
    assert json.loads((out / "summary.json").read_text())["rows"][0]["throughput_infer_per_sec"] > 0
    mounts = json.loads((out / "manifest.json").read_text())["lab_design"]["services"]["triton_server"]["mounts"]
    (data,) = [m for m in mounts if m["target"] == "/data"]
    assert data["type"] == "bind" and data["read_only"] is True
    assert data["host_path"] == str((stack / "data").resolve()) and data["fingerprint"].startswith("sha256:")


def test_without_the_volume_the_error_is_the_models_own(
    make_stack: MakeStack, tisbench: Tisbench, labs: LabRegistry, docker_client: docker.DockerClient
) -> None:
    stack = make_stack(ORIGIN_STACK, "novolume")
    config = yaml.safe_load((stack / "stack.yaml").read_text())
    del config["server"]  # the origin story's first attempt: the data volume cannot be said
    (stack / "stack.yaml").write_text(yaml.safe_dump(config))

    result = tisbench("lab", stack, "--images", "lab", *STEADY, timeout=300)

    assert result.exit_code == 5, result
    errors = [line for line in result.stderr.splitlines() if line.startswith(ERROR_PREFIX)]
    assert len(errors) == 1, result.stderr
    assert "the model answered with an error" in errors[0]
    assert "No such file or directory: '/data/people/kim.json'" in errors[0]
    assert "server.volumes" in errors[0]


def test_a_named_volume_the_engine_lacks_is_refused_before_anything_starts(
    make_stack: MakeStack, tisbench: Tisbench, labs: LabRegistry, docker_client: docker.DockerClient
) -> None:
    stack = make_stack(ORIGIN_STACK, "novol", {"server": {"volumes": ["e2e-absent-vol:/data"]}})
    name = labs.name("novol")

    result = tisbench("up", stack, "--images", "lab", "--name", name)

    assert result.exit_code == 2, result
    assert "server.volumes: named volume 'e2e-absent-vol' is not on the Docker engine" in result.stderr
    assert leftovers(docker_client, name) == []


def test_an_image_built_here_is_the_server_under_lab_images(
    make_stack: MakeStack, tisbench: Tisbench, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    """A user's Dockerfile FROM the lab server image, built here (no network: FROM a local image),
    named by server.image under --images lab: that server runs beside the lab's sdk image."""
    import io
    import secrets

    tag = f"e2e-derived/triton:{secrets.token_hex(3)}"
    dockerfile = f"FROM {LAB_IMAGES[0]}\nLABEL e2e.derived=yes\n"
    image, _ = docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    try:
        stack = make_stack(ORIGIN_STACK, "derived", {"server": {"image": tag}})
        out = tmp_path / "run"

        result = tisbench("lab", stack, "--images", "lab", "--out", out, *STEADY, timeout=300)

        assert result.exit_code == 0, result
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["images"] == {"server": tag, "sdk": LAB_IMAGES[1]}
        assert manifest["image_ids"]["server"] == image.id
    finally:
        docker_client.images.remove(tag, force=True)
