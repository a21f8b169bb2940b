"""tisbench's argv and parsing on every perf_analyzer the lab holds: the quickstart and a batched
model with variable dims, on the oldest and newest lab release (built by make test; required under
CI=true) and on every release between whose images are built here (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from composer.analyzer.flags import has_option
from composer.analyzer.identity import observe
from composer.analyzer.results import read_csv_file, summarize_profile_export
from composer.core.lab_releases import LAB_RECIPES, version_tuple
from composer.engine.images import image_labels
from composer.images.lab_images import image_specs, image_state

from .conftest import MakeStack, Tisbench
from .support import BATCHED_STACK, QUICKSTART, STEADY, LabRegistry, read_json, run_cli, service_container, unavailable

pytestmark = pytest.mark.docker

BY_ANALYZER = sorted(LAB_RECIPES, key=lambda r: version_tuple(LAB_RECIPES[r].analyzer.version))
OLDEST, NEWEST = BY_ANALYZER[0], BY_ANALYZER[-1]  # make test builds both (TEST_RELEASES)


def _require_images(client: docker.DockerClient, release: str) -> None:
    specs = image_specs(release)
    stale = [spec.tag for spec in specs if image_state(image_labels(client, spec.tag), spec) != "current"]
    if not stale:
        return
    message = f"{', '.join(stale)} missing or stale (tisbench images build --release {release})"
    if release in (OLDEST, NEWEST):
        unavailable(message)
    pytest.skip(message)


@pytest.mark.parametrize("stack_source", [QUICKSTART, BATCHED_STACK], ids=["quickstart", "batched"])
@pytest.mark.parametrize("release", BY_ANALYZER)
def test_each_perf_analyzer_runs_tisbenchs_argv_and_its_outputs_parse(
    docker_client: docker.DockerClient,
    make_stack: MakeStack,
    tisbench: Tisbench,
    run_root: Path,
    release: str,
    stack_source: Path,
) -> None:
    _require_images(docker_client, release)
    recipe = LAB_RECIPES[release]
    version = recipe.analyzer.version
    stack = make_stack(stack_source, f"pa{release.replace('.', '')}")
    run = run_root / "RUN"
    result = tisbench(
        "lab", stack, "--release", release, "--images", "lab", "--measurement-requests", "300", "--out", run, *STEADY
    )
    assert result.exit_code == 0, result
    manifest = read_json(run / "manifest.json")
    assert manifest["server_version"] == recipe.server.version
    assert manifest["perf_analyzer_version"] == version
    assert manifest["perf_analyzer_version_source"].startswith("lab image label")
    argv = manifest["perf_analyzer_argv"]
    assert all(has_option(version, arg.split("=")[0]) for arg in argv if arg.startswith("--"))
    if stack_source == BATCHED_STACK:
        assert argv[argv.index("--shape") + 1] == "x:3", "the variable dim's shape is derived, not given"
    (row,) = read_csv_file(run / "perf_analyzer.csv")
    assert row.throughput_infer_per_sec > 0 and row.p99_latency_us and row.response_wait_us is not None
    assert not row.extra, f"perf_analyzer {version} wrote columns tisbench does not know: {row.extra}"
    assert read_json(run / "summary.json")["rows"][0]["throughput_infer_per_sec"] == pytest.approx(
        row.throughput_infer_per_sec
    )
    if has_option(version, "--profile-export-file"):
        (experiment,) = summarize_profile_export(run / "profile_export.json")
        assert experiment.window_count > 0 and experiment.p99_latency_us > 0
        assert manifest["perf_analyzer_left_out"] == []
    else:
        assert not (run / "profile_export.json").exists() and "--profile-export-file" not in argv
        assert "--profile-export-file" in manifest["perf_analyzer_left_out"][0]
        assert "--profile-export-file" in result.stderr


@pytest.mark.parametrize("release", [OLDEST, NEWEST])
def test_a_running_sdk_container_names_the_same_perf_analyzer_as_its_label(
    docker_client: docker.DockerClient, tmp_path: Path, release: str
) -> None:
    _require_images(docker_client, release)
    registry = LabRegistry(docker_client)
    name = registry.name(f"pa-ask-{release.replace('.', '')}")
    try:
        up = run_cli(["up", QUICKSTART, "--release", release, "--images", "lab", "--name", name], cwd=tmp_path)
        assert up.exit_code == 0, up
        container = service_container(docker_client, name, "perf_analyzer")
        asked = observe(docker_client, container["Id"], {}, release)  # no labels: ask the container itself
        assert asked.version == LAB_RECIPES[release].analyzer.version
        assert asked.source == "perf_analyzer --version in the sdk container"
        assert asked.reported and asked.reported.startswith("Perf Analyzer Version")
    finally:
        registry.cleanup()
