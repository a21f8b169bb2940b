"""Pull policy, references and the registry's refusals, read as the engine words them (dockerd 20.10)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bad_inputs import make_stack

from composer.core.errors import UsageError
from composer.engine.pull import LayerTally, pull_failure, registry_of, split_ref
from composer.labs.plan import plan_lab


@pytest.mark.parametrize(
    ("ref", "registry", "split"),
    [
        ("nvcr.io/nvidia/tritonserver:24.10-py3", "nvcr.io", ("nvcr.io/nvidia/tritonserver", "24.10-py3")),
        (
            "127.0.0.1:5000/nvidia/tritonserver:24.10-py3",
            "127.0.0.1:5000",
            ("127.0.0.1:5000/nvidia/tritonserver", "24.10-py3"),
        ),
        ("localhost/triton:1", "localhost", ("localhost/triton", "1")),
        ("library/ubuntu", "docker.io", ("library/ubuntu", "latest")),
        ("registry:5000/t", "registry:5000", ("registry:5000/t", "latest")),
        ("r.example/t@sha256:" + "a" * 64, "r.example", ("r.example/t", "sha256:" + "a" * 64)),
    ],
)
def test_references_split_as_docker_reads_them(ref: str, registry: str, split: tuple[str, str]) -> None:
    assert registry_of(ref) == registry
    assert split_ref(ref) == split


NOT_FOUND = "manifest for 127.0.0.1:5101/nvidia/tritonserver:99.99-py3 not found: manifest unknown: manifest unknown"
NO_AUTH = 'Head "http://127.0.0.1:5102/v2/nvidia/tritonserver/manifests/24.10-py3": no basic auth credentials'
REFUSED = 'Get "http://127.0.0.1:5199/v2/": dial tcp 127.0.0.1:5199: connect: connection refused'
NGC_AUTH = 'Head "https://nvcr.io/v2/nvidia/tritonserver/manifests/24.10-py3": unauthorized: authentication required'


@pytest.mark.parametrize(
    ("ref", "message", "says", "hint"),
    [
        (
            "127.0.0.1:5101/nvidia/tritonserver:99.99-py3",
            NOT_FOUND,
            "does not exist on registry 127.0.0.1:5101",
            "release",
        ),
        (
            "127.0.0.1:5102/nvidia/tritonserver:24.10-py3",
            NO_AUTH,
            "registry 127.0.0.1:5102 refused",
            "docker login 127.0.0.1:5102",
        ),
        ("nvcr.io/nvidia/tritonserver:24.10-py3", NGC_AUTH, "registry nvcr.io refused", "$oauthtoken"),
        (
            "127.0.0.1:5199/nvidia/tritonserver:24.10-py3",
            REFUSED,
            "registry 127.0.0.1:5199 cannot be reached",
            "--images lab",
        ),
    ],
)
def test_registry_refusals_name_the_registry_and_the_way_out(ref: str, message: str, says: str, hint: str) -> None:
    error = pull_failure(ref, message)

    assert error.exit_code == 3
    assert says in error.message and ref in error.message
    assert hint in (error.hint or "")
    assert "\n" not in error.one_line()


def test_layer_tally_counts_bytes_and_finished_layers() -> None:
    tally = LayerTally()
    for event in [
        {"status": "Pulling from nvidia/tritonserver", "id": "24.10-py3"},
        {"status": "Pulling fs layer", "id": "a"},
        {"status": "Already exists", "id": "b"},
        {"status": "Downloading", "id": "a", "progressDetail": {"current": 50, "total": 200}},
        {"status": "Downloading", "id": "a", "progressDetail": {"current": 150, "total": 200}},
        {"status": "Download complete", "id": "a"},
        {"status": "Pull complete", "id": "a"},
        {"status": "Digest: sha256:00"},
    ]:
        tally.add(event)

    assert set(tally.layers) == {"a", "b"}
    assert tally.finished == {"a", "b"}
    assert (tally.bytes_done, tally.bytes_total) == (200, 200)


def test_image_repo_keeps_ngc_tags_and_exact_references_win(tmp_path: Path) -> None:
    stack = make_stack(tmp_path, 'model: seed_model\nanalyzer:\n  image: "mirror.example/sdk:custom"\n')

    plan = plan_lab(stack, release="24.03", images=None, image_repo="mirror.example:5000/nvidia/tritonserver")

    assert plan.images.server == "mirror.example:5000/nvidia/tritonserver:24.03-py3"
    assert plan.images.sdk == "mirror.example/sdk:custom"
    assert plan.pull == "missing"
    assert 'pull_policy: "missing"' in plan.render("p")


def test_pull_policy_flag_over_stack_yaml(tmp_path: Path) -> None:
    stack = make_stack(tmp_path, "model: seed_model\npull: always\n")

    assert plan_lab(stack, release=None, images=None).pull == "always"
    assert plan_lab(stack, release=None, images=None, pull="never").pull == "never"
    assert 'pull_policy: "never"' in plan_lab(stack, release=None, images="lab").render("p")


def test_image_repo_with_lab_images_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--image-repo names registry images"):
        plan_lab(make_stack(tmp_path), release=None, images="lab", image_repo="mirror.example/t")


def test_an_image_built_here_serves_under_lab_images_with_the_labs_sdk(tmp_path: Path) -> None:
    stack = make_stack(tmp_path, "model: seed_model\nserver:\n  image: my/triton-pil:24.10\n")

    plan = plan_lab(stack, release="24.10", images="lab")

    assert plan.images.server == "my/triton-pil:24.10"
    assert plan.images.sdk == "tisbench-lab/tritonserver:24.10-py3-sdk"
    assert plan.design("p").service("triton_server").pull_policy == "never"
