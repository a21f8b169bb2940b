"""tisbench tune on real lab images: one lab, candidates loaded as config overrides, tune.json, the
report with its frontier chart, best/config.pbtxt that a normal lab loads at the throughput tune
reported; a candidate the real server refuses; Ctrl-C mid-search."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import docker
import pytest

from composer.core.modelconfig import parse_model_config
from composer.labs.tune import TUNE_STABILITY
from composer.tuning.space import baseline_of

from .conftest import MakeStack, Tisbench
from .support import BATCHED_STACK, E2E_STACKS, QUICKSTART, CliProcess, LabRegistry, leftovers

pytestmark = pytest.mark.docker

REQUESTS = ("--measurement-requests", "300")
SMALL = ("--release", "24.10", "--instances", "1:2", "--concurrency", "1:2", *REQUESTS)
# NVIDIA's examples/auto_complete: no config.pbtxt; its auto_complete_config sets max_batch_size 4
# and refuses a configuration with a larger one.
AUTO_COMPLETE = E2E_STACKS / "nvidia" / "auto_complete"
WIDENED = 0.15  # acceptance: a normal lab's throughput lies within the reported interval widened by 15 %


def _checked_outputs(out: Path, doc: dict[str, Any]) -> None:
    """Each measurement is a run directory with its windows; the report has the frontier chart."""
    for candidate in doc["candidates"]:
        for row in candidate["rows"]:
            (run_dir,) = row["run_dirs"]
            assert (out / run_dir / "perf_analyzer.csv").exists() and (out / run_dir / "summary.json").exists()
            assert json.loads((out / run_dir / "windows.json").read_text())["windows"]
    assert (out / "charts" / "frontier.png").stat().st_size > 1000
    assert "## Top 5" in (out / "report.md").read_text()
    assert "data:image/png;base64," in (out / "report.html").read_text()


def _confirmed_by_a_normal_lab(tisbench: Tisbench, stack: Path, model: str, out: Path, doc: dict[str, Any]) -> None:
    """Drop best/config.pbtxt into the model directory and run a normal lab at the reported
    concurrency, measured as tune measured (same window size, tune's stability criterion): its
    throughput lies within the reported interval widened by 15 %.

    A fresh lab is one sample on a shared 2-core VM, and a burst of contention from outside drags
    one run, not the next (seen: tune's rounds at 2,466, 2,426, 2,140 infer/s, its last round of
    another candidate at 640, then the lab at 803): a run outside gets one more lab, and both numbers
    are in the failure. An interval that does not hold for this configuration fails both."""
    (stack / "models" / model / "config.pbtxt").write_text((out / "best" / "config.pbtxt").read_text())
    best = doc["best"]
    low, high = best["throughput_interval"]
    measured = []
    for attempt in (1, 2):
        lab_out = out.parent / f"after-{attempt}"
        lab = tisbench("lab", stack, "--images", "lab", "--release", "24.10", "--concurrency", str(best["concurrency"]),
                       *REQUESTS, "--out", lab_out, "--", *TUNE_STABILITY, timeout=180)
        assert lab.exit_code == 0, str(lab)
        (row,) = json.loads((lab_out / "summary.json").read_text())["rows"]
        assert row["concurrency"] == best["concurrency"]
        measured.append(row["throughput_infer_per_sec"])
        if low * (1 - WIDENED) <= measured[-1] <= high * (1 + WIDENED):
            return
    pytest.fail(
        f"normal labs measured {', '.join(f'{m:,.0f}' for m in measured)} infer/s at concurrency "
        f"{best['concurrency']}; tune reported {best['throughput_infer_per_sec']:,.0f} in [{low:,.0f}, {high:,.0f}] "
        f"(widened by 15 %: [{low * (1 - WIDENED):,.0f}, {high * (1 + WIDENED):,.0f}]) for {best['config']}"
    )


def _tuned(tisbench: Tisbench, stack: Path, out: Path, *args: str) -> tuple[Any, dict[str, Any]]:
    """`tisbench tune STACK --images lab ARGS --out OUT`, which must exit 0, and its tune.json."""
    done = tisbench("tune", stack, "--images", "lab", *args, "--out", out, timeout=300)
    assert done.exit_code == 0, str(done)
    return done, json.loads((out / "tune.json").read_text())


def test_tune_quickstart_leaves_tune_json_a_report_and_a_best_config_that_loads(
    tisbench: Tisbench, make_stack: MakeStack, labs: LabRegistry, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    stack = make_stack(QUICKSTART, "tune")
    out = tmp_path / "tune"
    done, doc = _tuned(tisbench, stack, out, "--latency-budget-ms", "5", *SMALL)
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
    _checked_outputs(out, doc)
    assert "tuning seed_model: quick search from 1 inst" in done.stderr
    assert done.stderr.count(" meets") >= 2  # a progress line per candidate

    text = (out / "best" / "config.pbtxt").read_text()
    assert baseline_of(parse_model_config(text, "best/config.pbtxt", "seed_model")) == (
        baseline_of({"max_batch_size": 0, "instance_group": [{"count": best["config"]["instances"]}]})
    )
    _confirmed_by_a_normal_lab(tisbench, stack, "seed_model", out, doc)
    assert not leftovers(docker_client, doc["lab"])


def test_tune_batched_model_with_variable_dims_leaves_a_report_and_a_best_config_a_normal_lab_confirms(
    tisbench: Tisbench, make_stack: MakeStack, labs: LabRegistry, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    stack = make_stack(BATCHED_STACK, "tuneb")
    own = parse_model_config((stack / "models" / "batched_model" / "config.pbtxt").read_text(), "own", "batched_model")
    assert [i["dims"] for i in own["input"]] == [[-1], [2]] and own["max_batch_size"] == 8  # variable x
    out = tmp_path / "tune"
    done, doc = _tuned(tisbench, stack, out, "--release", "24.10", "--latency-budget-ms", "5",
                       "--instances", "1:2", "--max-batch-size", "1:4", "--concurrency", "1:4", *REQUESTS)
    assert doc["status"] == "ok" and doc["model"] == "batched_model"
    assert doc["space"]["max_batch_size"] == [1, 2, 4] and doc["space"]["dynamic_batching"] == [False, True]
    assert doc["baseline"]["config"] == {"instances": 1, "max_batch_size": 8, "dynamic_batching": True}
    assert all(c["status"] == "measured" and c["rows"] for c in doc["candidates"]), doc["candidates"]
    assert len(doc["candidates"]) >= 3  # the baseline, then instances, batching, batch sizes
    best = doc["best"]
    assert best["meets_constraints"] and best["p99_latency_us"] <= 5000
    _checked_outputs(out, doc)
    assert "tuning batched_model: quick search from 1 inst batch 8 dyn" in done.stderr

    best_config = parse_model_config((out / "best" / "config.pbtxt").read_text(), "best/config.pbtxt", "batched_model")
    assert baseline_of(best_config).as_dict() == best["config"]
    assert best_config["input"] == own["input"] and best_config["output"] == own["output"]  # dims kept as the user's
    _confirmed_by_a_normal_lab(tisbench, stack, "batched_model", out, doc)
    assert not leftovers(docker_client, doc["lab"])


def test_a_candidate_the_server_refuses_is_recorded_with_tritons_reason_and_the_search_goes_on(
    tisbench: Tisbench, make_stack: MakeStack, labs: LabRegistry, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    stack = make_stack(AUTO_COMPLETE, "tunef")
    out = tmp_path / "tune"
    done, doc = _tuned(tisbench, stack, out, "--release", "24.10", "--mode", "brute", "--instances", "1:2",
                       "--max-batch-size", "2:8", "--dynamic-batching", "on", "--concurrency", "1:1", *REQUESTS)
    by = {(c["config"]["instances"], c["config"]["max_batch_size"]): c for c in doc["candidates"]}
    assert list(by) == [(1, 4), (1, 2), (1, 8), (2, 2), (2, 4), (2, 8)]  # the baseline, then the grid simplest first
    refused = ("configuration specified max_batch_size 8, but in auto-complete-config function for model "
               "'batch_auto_complete' specified max_batch_size 4")
    for instances in (1, 2):
        assert by[instances, 8]["status"] == "load_failed" and not by[instances, 8]["rows"], by[instances, 8]
        assert refused in by[instances, 8]["reason"], by[instances, 8]["reason"]
        # batch 2 loads, but auto_complete_config raises it to 4: never measured as batch 2
        assert by[instances, 2]["status"] == "load_failed" and not by[instances, 2]["rows"], by[instances, 2]
        assert f"serves {instances} inst batch 4 dyn" in by[instances, 2]["reason"], by[instances, 2]["reason"]
    after = by[2, 4]  # measured after the server refused three candidates
    assert after["status"] == "measured" and after["rows"][0]["throughput_infer_per_sec"] > 0
    assert done.stderr.count("not loaded: ") == 4 and refused in done.stderr
    assert doc["best"]["config"]["max_batch_size"] == 4
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
