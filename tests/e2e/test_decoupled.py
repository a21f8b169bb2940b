"""NVIDIA's decoupled example model (python_backend examples/decoupled, the repeat model, copied
verbatim): tisbench chooses gRPC streaming unasked, and every summary row carries the
per-response statistics that perf_analyzer's profile export makes possible."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from .conftest import MakeStack, Tisbench
from .support import E2E_STACKS, STEADY, read_json

pytestmark = pytest.mark.docker

DECOUPLED_STACK = E2E_STACKS / "decoupled"
RESPONSE_FIELDS = (
    "responses_per_request",
    "first_response_p50_us",
    "first_response_p99_us",
    "inter_response_p50_us",
    "inter_response_p99_us",
)


@pytest.fixture(scope="module")
def repeats() -> int:
    """How many responses each request asks for: the length of IN in the stack's data."""
    (step,) = read_json(DECOUPLED_STACK / "dataset" / "input.json")["data"]
    assert len(step["DELAY"]) == len(step["IN"])
    return len(step["IN"])


def test_a_decoupled_model_runs_over_grpc_streaming_and_reports_its_responses(
    make_stack: MakeStack, tisbench: Tisbench, run_root: Path, repeats: int
) -> None:
    stack = make_stack(DECOUPLED_STACK, "decoupled")
    run = run_root / "RUN"
    result = tisbench("lab", stack, "--release", "24.10", "--images", "lab", "--concurrency", "1:2", "--out", run,
                      *STEADY, timeout=400)
    assert result.exit_code == 0, result
    chosen = [line for line in result.stderr.splitlines() if "is decoupled" in line]
    assert len(chosen) == 1 and "model_transaction_policy.decoupled" in chosen[0] and "gRPC" in chosen[0], result

    manifest = read_json(run / "manifest.json")
    argv = manifest["perf_analyzer_argv"]
    assert argv[argv.index("-i") + 1] == "grpc" and argv[argv.index("-u") + 1] == "triton_server:8001"
    assert "--streaming" in argv
    assert manifest["decoupled"]["field"] == "model_transaction_policy.decoupled"
    assert manifest["model"]["config"]["model_transaction_policy"]["decoupled"] is True

    rows = read_json(run / "summary.json")["rows"]
    assert [r["concurrency"] for r in rows] == [1, 2]
    delay_us = 2_000  # the data's DELAY: each response waits 2 ms
    csv_rows = {int(r["Concurrency"]): r for r in csv.DictReader((run / "perf_analyzer.csv").open())}
    for row in rows:
        assert all(isinstance(row[f], float) for f in RESPONSE_FIELDS), row
        assert row["responses_per_request"] == repeats
        # perf_analyzer's own count agrees: its response throughput over its request throughput
        theirs = csv_rows[row["concurrency"]]
        ratio = float(theirs["Response Throughput"]) / float(theirs["Inferences/Second"])
        assert ratio == pytest.approx(repeats, rel=0.01)
        assert delay_us <= row["first_response_p50_us"] <= row["first_response_p99_us"] < row["p99_latency_us"]
        assert delay_us <= row["inter_response_p50_us"] <= row["inter_response_p99_us"] < 200_000
        # a request's latency spans its first response and the gaps after it
        assert row["p50_latency_us"] >= row["first_response_p50_us"] + (repeats - 1) * delay_us

    report = (run / "report.md").read_text()
    assert "## Responses (decoupled model)" in report
    assert f"| 1 | {repeats:.2f} |" in report and f"| 2 | {repeats:.2f} |" in report


def test_http_asked_for_a_decoupled_model_is_refused_naming_the_field(
    make_stack: MakeStack, tisbench: Tisbench, run_root: Path
) -> None:
    stack = make_stack(DECOUPLED_STACK, "decoupled-http")
    result = tisbench("lab", stack, "--images", "lab", "--protocol", "http", "--out", run_root / "RUN", timeout=300)
    assert result.exit_code == 2, result
    assert "--protocol http" in result.error and "model_transaction_policy.decoupled" in result.error
