"""tisbench tune on real lab images: one lab, candidates loaded as config overrides, tune.json, the
report with its frontier chart, best/config.pbtxt that a normal lab loads; Ctrl-C mid-search."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import docker
import pytest

from composer.core.modelconfig import parse_model_config
from composer.tuning.space import baseline_of

from .conftest import MakeStack, Tisbench
from .support import QUICKSTART, CliProcess, LabRegistry, leftovers

pytestmark = pytest.mark.docker

SMALL = ("--release", "24.10", "--instances", "1:2", "--concurrency", "1:2", "--measurement-requests", "300")


def test_tune_quickstart_leaves_tune_json_a_report_and_a_best_config_that_loads(
    tisbench: Tisbench, make_stack: MakeStack, labs: LabRegistry, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    stack = make_stack(QUICKSTART, "tune")
    out = tmp_path / "tune"
    done = tisbench("tune", stack, "--images", "lab", "--latency-budget-ms", "5", *SMALL, "--out", out, timeout=300)
    assert done.exit_code == 0, str(done)
    doc = json.loads((out / "tune.json").read_text())
    assert doc["status"] == "ok" and doc["model"] == "seed_model"
    assert doc["measurements"] >= 2 and doc["wall_s"] > 0
    assert doc["candidates"][0]["baseline"] and doc["candidates"][0]["config"]["instances"] == 1
    assert {c["config"]["max_batch_size"] for c in doc["candidates"]} == {0}  # seed_model does not batch
    best = doc["best"]
    assert set(best) >= {"config", "concurrency", "throughput_infer_per_sec", "throughput_interval", "p99_latency_us"}
    assert best["meets_constraints"] and best["p99_latency_us"] <= 5000
    low, high = best["throughput_interval"]
    assert 0 < low <= high
    assert doc["baseline"]["config"] == {"instances": 1, "max_batch_size": 0, "dynamic_batching": False}
    assert set(doc["gain_over_baseline"]) >= {"value", "low", "high"}
    for candidate in doc["candidates"]:  # each measurement is a run directory with its windows
        for row in candidate["rows"]:
            (run_dir,) = row["run_dirs"]
            assert (out / run_dir / "perf_analyzer.csv").exists() and (out / run_dir / "summary.json").exists()
            assert json.loads((out / run_dir / "windows.json").read_text())["windows"]
    assert (out / "charts" / "frontier.png").stat().st_size > 1000
    assert "## Top 5" in (out / "report.md").read_text()
    assert "data:image/png;base64," in (out / "report.html").read_text()
    assert "tuning seed_model: quick search from 1 inst" in done.stderr
    assert done.stderr.count(" meets") >= 2  # a progress line per candidate

    text = (out / "best" / "config.pbtxt").read_text()
    assert baseline_of(parse_model_config(text, "best/config.pbtxt", "seed_model")) == (
        baseline_of({"max_batch_size": 0, "instance_group": [{"count": best["config"]["instances"]}]})
    )
    (stack / "models" / "seed_model" / "config.pbtxt").write_text(text)  # drop it in: a normal lab loads it
    lab = tisbench("lab", stack, "--images", "lab", "--concurrency", str(best["concurrency"]),
                   "--measurement-requests", "300", "--out", tmp_path / "after", timeout=180)
    assert lab.exit_code == 0, str(lab)
    assert not leftovers(docker_client, doc["lab"])


def test_ctrl_c_mid_search_removes_the_lab_and_leaves_a_partial_tune_json(
    make_stack: MakeStack, labs: LabRegistry, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    stack = make_stack(QUICKSTART, "tunec")
    out = tmp_path / "tune"
    proc = CliProcess(["tune", stack, "--images", "lab", *SMALL, "--out", out], cwd=tmp_path)
    line = proc.wait_for_stderr(r"^tisbench: 1 inst .* infer/s", timeout=120)  # the baseline is measured
    proc.send_signal(signal.SIGINT)
    done = proc.wait(60)
    assert done.exit_code == 130, str(done)
    doc = json.loads((out / "tune.json").read_text())
    assert doc["status"] == "interrupted" and doc["measurements"] >= 1, line
    assert doc["candidates"][0]["rows"]
    assert (out / "report.md").exists()
    assert not leftovers(docker_client, doc["lab"])
