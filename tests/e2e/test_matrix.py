"""The release matrix on real lab images: two releases benchmarked, one release without images."""

from __future__ import annotations

import json
from pathlib import Path

import docker
import docker.errors
import pytest

from .support import QUICKSTART, STEADY, copy_stack, run_cli, unavailable

pytestmark = pytest.mark.docker

OLD_RELEASE_IMAGES = ("tisbench-lab/tritonserver:23.07-py3", "tisbench-lab/tritonserver:23.07-py3-sdk")
NO_RECIPE_RELEASE = "23.08"  # no nvidia-pytriton wheel bundles its server


def test_matrix_over_two_lab_releases_and_one_without_a_recipe(docker_client: docker.DockerClient,
                                                             tmp_path: Path) -> None:
    for image in OLD_RELEASE_IMAGES:
        try:
            docker_client.api.inspect_image(image)
        except docker.errors.ImageNotFound:
            unavailable(f"{image} is missing (make test builds it: tisbench images build --release 23.07)")
    stack = copy_stack(QUICKSTART, tmp_path / "stack", {"name": "e2e-matrix"})
    out = tmp_path / "matrix"
    done = run_cli(
        ["matrix", stack, "--releases", f"23.07,{NO_RECIPE_RELEASE},24.10", "--images", "lab", "--out", out,
         "--measurement-requests", "300", *STEADY],
        cwd=tmp_path, timeout=400,
    )
    assert done.exit_code == 0, str(done)
    doc = json.loads((out / "matrix.json").read_text())
    by_release = {r["release"]: r for r in doc["releases"]}
    for release, version in (("23.07", "2.36.0"), ("24.10", "2.51.0")):  # each release's own pair
        assert by_release[release]["status"] == "ok", by_release[release]
        assert by_release[release]["server_version"] == by_release[release]["perf_analyzer_version"] == version
    missing = by_release[NO_RECIPE_RELEASE]
    assert missing["status"] == "failed" and "no lab image" in missing["reason"]
    assert (out / "23.07" / "summary.json").exists() and (out / "24.10" / "summary.json").exists()
    assert doc["baseline"] == "23.07" and by_release["24.10"]["deltas"]
    text = (out / "matrix.md").read_text()
    assert "2.36.0" in text and "2.51.0" in text
    assert (out / "charts" / "matrix.png").stat().st_size > 1000
    assert "data:image/png;base64," in (out / "matrix.html").read_text()
    compare = run_cli(["compare", out / "23.07", out / "24.10"], cwd=tmp_path)
    assert compare.exit_code == 0, str(compare)
    assert not docker_client.api.containers(all=True, filters={"label": "tisbench.lab"}) or all(
        not c["Labels"]["tisbench.lab"].startswith("e2e-matrix")
        for c in docker_client.api.containers(all=True, filters={"label": "tisbench.lab"})
    )
