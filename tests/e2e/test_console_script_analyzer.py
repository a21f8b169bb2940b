"""perf_analyzer as NGC's sdk images ship it from 25.09: pip's ``perf-analyzer``, whose
``perf_analyzer`` console script runs the binary through subprocess.run and drops its status, so
every run exits 0. An sdk image built FROM the 24.10 lab one holds exactly that (the 2.60.0
wheel's own cli.py over the lab's 2.51.0 binary, tests/fixtures/perf_analyzer_wheel); tisbench,
pointed at it with stack.yaml's analyzer.image, must still fail a failed run, with
perf_analyzer's reason, retry an unstable point, and pass a good run."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from .support import (
    LAB_IMAGES,
    QUICKSTART,
    REPO,
    STEADY,
    SharedLab,
    copy_stack,
    read_json,
    run_cli,
    shared_lab,
)

pytestmark = pytest.mark.docker

CONTEXT = REPO / "tests" / "fixtures" / "perf_analyzer_wheel"
# perf_analyzer/cli.py in perf_analyzer-2.60.0-py3-none-manylinux_2_38_x86_64.whl, as its RECORD says
CLI_RECORD = "Y-VewuAhMEEiv4JOv7BhWzR1otCbxasghe9dRJ79S10"
OWNER = {"tisbench.e2e-image": "console-script-perf-analyzer"}
DROPPED = "(its console script drops the status: judged by its output)"


def _record_hash(path: Path) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def console_script_sdk(docker_client: docker.DockerClient) -> Iterator[str]:
    """The sdk image whose perf_analyzer always exits 0, under a name of this test's own; removed after."""
    assert _record_hash(CONTEXT / "cli.py") == CLI_RECORD, "cli.py is no longer the wheel's own"
    tag = f"tisbench-e2e/sdk-console-script:{secrets.token_hex(4)}"
    server, sdk = LAB_IMAGES
    try:
        docker_client.images.build(
            path=str(CONTEXT), tag=tag, labels=OWNER, buildargs={"SDK": sdk, "SERVER": server}, rm=True, forcerm=True
        )
    except docker.errors.BuildError as exc:
        pytest.fail(f"building {tag} failed: {exc.msg}\n" + "".join(str(c.get("stream", "")) for c in exc.build_log))
    try:
        yield tag
    finally:
        labels = docker_client.api.inspect_image(tag)["Config"].get("Labels") or {}
        if all(labels.get(k) == v for k, v in OWNER.items()):  # only the image this fixture built
            docker_client.images.remove(tag)


@pytest.fixture(scope="module")
def wrapped_lab(
    docker_client: docker.DockerClient, console_script_sdk: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SharedLab]:
    """The quickstart, its perf_analyzer container from that image (one retry for unstable points)."""
    stack_yaml = {
        "images": "ngc",  # exact references: tisbench knows nothing of this image but its name
        "server": {"image": LAB_IMAGES[0]},
        "analyzer": {"image": console_script_sdk, "stability_retries": 1},
    }
    stack = copy_stack(QUICKSTART, tmp_path_factory.mktemp("wrapped") / "quickstart", stack_yaml)
    with shared_lab(docker_client, "wrapped", stack) as lab:
        yield lab


def _exits(client: docker.DockerClient, image: str, argv: list[str]) -> tuple[int, str]:
    container = client.containers.create(image, argv, labels=OWNER)
    try:
        container.start()
        code = int(container.wait(timeout=30)["StatusCode"])
        return code, container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)


def test_the_images_perf_analyzer_exits_0_where_its_binary_does_not(
    docker_client: docker.DockerClient, console_script_sdk: str
) -> None:
    binary = "/usr/local/lib/python3.11/dist-packages/perf_analyzer/bin/perf_analyzer"
    assert _exits(docker_client, console_script_sdk, [binary, "--bogus"])[0] == 99
    code, output = _exits(docker_client, console_script_sdk, ["perf_analyzer", "--bogus"])
    assert code == 0 and "unrecognized option '--bogus'" in output


def test_a_failing_run_is_exit_5_with_perf_analyzers_reason(wrapped_lab: SharedLab, tmp_path: Path) -> None:
    run = tmp_path / "RUN"
    result = run_cli(["bench", wrapped_lab.name, "--no-auto-shape", "--measurement-requests", "200", "--out", run],
                     cwd=tmp_path)
    assert result.exit_code == 5, result
    assert "needs to have its shape fully defined" in result.error and "--shape" in result.error
    said = [line.removeprefix("tisbench: ") for line in result.stderr.splitlines() if DROPPED in line]
    assert said == [f"perf_analyzer exited 0 but wrote no CSV and printed an error {DROPPED}"], result
    manifest = read_json(run / "manifest.json")
    assert (manifest["status"], manifest["exit_code"]) == ("failed", 5)
    assert manifest["perf_analyzer_version"] == "2.51.0"
    assert manifest["perf_analyzer_version_source"] == "perf_analyzer --version in the sdk container"


def test_a_good_run_is_exit_0(wrapped_lab: SharedLab, tmp_path: Path) -> None:
    run = tmp_path / "RUN"
    result = run_cli(["bench", wrapped_lab.name, "--measurement-requests", "300", "--out", run, *STEADY],
                     cwd=tmp_path)
    assert result.exit_code == 0, result
    assert DROPPED not in result.stderr
    (row,) = read_json(run / "summary.json")["rows"]
    assert row["throughput_infer_per_sec"] > 0
    (attempt,) = read_json(run / "manifest.json")["attempts"]
    assert attempt["exit_code"] == 0 and "judged_exit_code" not in attempt


def test_an_unstable_point_is_still_retried_then_fails_with_its_spread(wrapped_lab: SharedLab, tmp_path: Path) -> None:
    run = tmp_path / "RUN"
    # No three windows agree within 0.01 %: perf_analyzer gives up on concurrency 1 each time; with
    # stability required the run fails there (without, the point is kept: test_stability_retries.py).
    result = run_cli(["bench", wrapped_lab.name, "--measurement-requests", "200", "--out", run, "--require-stable",
                      "--", "--stability-percentage", "0.01", "--max-trials", "3"], cwd=tmp_path, timeout=180)
    assert result.exit_code == 5, result
    assert "measurement not stable at concurrency 1 after 2 attempts" in result.error
    assert "its last 3 trials spread" in result.error
    assert len([ln for ln in result.stderr.splitlines() if "not stable with windows of" in ln]) == 1, result
    attempts = read_json(run / "manifest.json")["attempts"]
    assert [(a["exit_code"], a["judged_exit_code"], a["unstable"]) for a in attempts] == [(0, 2, 1), (0, 2, 1)]
    assert all(DROPPED in a["exit_status_note"] for a in attempts)
