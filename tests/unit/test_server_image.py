"""The user's own server image, as stack.yaml says it (server.requirements, server.build), and what
tisbench asks pip and the engine for: pure parts, no Docker."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from bad_inputs import make_stack

from composer.core.config import load_stack
from composer.core.errors import ConfigError
from composer.images.derived import ImagePython, dockerfile, pip_download_argv
from composer.labs.plan import plan_lab


def _stack(tmp_path: Path, server: str) -> Path:
    stack = make_stack(tmp_path, f"model: seed_model\nserver:\n{server}")
    (stack / "docker").mkdir()
    (stack / "docker" / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM $BASE_IMAGE\n")
    (stack / "requirements.txt").write_text("# the model's needs\npillow==11.0.0  # images\n\nnumpy<3\n")
    return stack


def test_requirements_are_a_list_or_a_requirements_file(tmp_path: Path) -> None:
    listed = load_stack(_stack(tmp_path / "a", "  requirements: [pillow, 'numpy<3']\n")).server.own_image
    filed = load_stack(_stack(tmp_path / "b", "  requirements: requirements.txt\n")).server.own_image

    assert listed.requirements == ("pillow", "numpy<3") and listed.requirements_source is None
    assert filed.requirements == ("pillow==11.0.0", "numpy<3")
    assert filed.requirements_source == str((tmp_path / "b" / "stack" / "requirements.txt").resolve())
    assert listed.requirements_hash("sha256:a") != listed.requirements_hash("sha256:b")


def test_build_takes_a_context_a_dockerfile_and_args(tmp_path: Path) -> None:
    own = load_stack(_stack(tmp_path, "  build: {context: docker, args: {EXTRA: 1}}\n")).server.own_image

    assert own.build is not None and own.build.dockerfile == "Dockerfile" and own.build.args == (("EXTRA", "1"),)
    assert own.build.context == str((tmp_path / "stack" / "docker").resolve())


@pytest.mark.parametrize(
    ("server", "says"),
    [
        ("  requirements: missing.txt\n", "server.requirements: 'missing.txt' is not valid (missing.txt: no such"),
        ("  requirements: [pillow, '']\n", "expected a requirements.txt path or a list"),
        ("  requirements: ['--index-url http://x']\n", "pip options are not taken"),
        ("  build: {context: nowhere}\n", "server.build: {'context': 'nowhere'} is not valid (context nowhere"),
        ("  build: {context: docker, dockerfile: Other}\n", "dockerfile 'Other': no such file"),
        ("  build: {context: docker, target: x}\n", "unknown key 'target'"),
        ("  build: {context: docker, args: {BASE_IMAGE: x}}\n", "BASE_IMAGE is tisbench's to pass"),
        ("  build: docker\n", "expected a mapping"),
        ("  build: {context: docker}\n  requirements: [pillow]\n", "server.build: and requirements are both set"),
    ],
)
def test_a_wrong_own_image_is_one_line_naming_the_field(tmp_path: Path, server: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_stack(_stack(tmp_path, server))

    assert says in caught.value.one_line() and caught.value.exit_code == 2


def test_pip_fetches_wheels_for_the_images_python_and_every_manylinux_it_runs() -> None:
    python = ImagePython("3.11", "2.36", "x86_64", True)

    argv = pip_download_argv(python, ("pillow",), Path("/tmp/w"))

    assert argv[:4] == [sys.executable, "-m", "pip", "download"]
    assert "--only-binary=:all:" in argv and argv[argv.index("--python-version") + 1] == "3.11"
    platforms = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--platform"]
    assert platforms[0] == "manylinux_2_36_x86_64" and "manylinux_2_5_x86_64" in platforms
    assert {"manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"} <= set(platforms)
    assert argv[-2:] == ["--", "pillow"]  # a requirement is never read as an option


def test_the_derived_image_installs_only_the_fetched_wheels_with_no_index() -> None:
    text = dockerfile("sha256:abc")

    assert text.startswith("FROM sha256:abc\n") and "--no-index" in text and "PIP_BREAK_SYSTEM_PACKAGES=1" in text


def test_a_build_starts_from_the_releases_server_and_server_image_names_its_tag(tmp_path: Path) -> None:
    stack = _stack(tmp_path, "  build: {context: docker}\n  image: my/triton-pil:24.10\n")

    plan = plan_lab(stack, release="24.10", images="lab")

    assert plan.server_base == "tisbench-lab/tritonserver:24.10-py3"
    assert plan.fetched_images == ["tisbench-lab/tritonserver:24.10-py3", "tisbench-lab/tritonserver:24.10-py3-sdk"]
    assert plan.images.server == "my/triton-pil:24.10"


def test_a_build_on_a_mirror_starts_from_the_mirrors_server(tmp_path: Path) -> None:
    stack = _stack(tmp_path, "  build: {context: docker}\n")

    plan = plan_lab(stack, release="24.10", images="ngc", image_repo="mirror.example/nvidia/tritonserver")

    assert plan.server_base == "mirror.example/nvidia/tritonserver:24.10-py3"
