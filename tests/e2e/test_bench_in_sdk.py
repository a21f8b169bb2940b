"""Benchmark inside the sdk container: run directory, sweeps, derived shapes, input-data errors."""

from __future__ import annotations

import csv
import io
import json
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from .conftest import MakeStack, Tisbench
from .support import (
    BATCHED_STACK,
    LAB_IMAGES,
    QUICKSTART,
    SERVER_VERSION,
    STEADY,
    LabRegistry,
    SharedLab,
    copy_stack,
    leftovers,
    read_json,
    shared_lab,
)

pytestmark = pytest.mark.docker

REQUESTS = "500"


@pytest.fixture(scope="module")
def bench_lab(docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedLab]:
    """One lab, from a tmp copy of quickstart (so tests may add files to its dataset/), for bench runs."""
    stack = copy_stack(QUICKSTART, tmp_path_factory.mktemp("bench") / "quickstart")
    with shared_lab(docker_client, "bench", stack, "--images", "lab") as lab:
        yield lab


def _csv_rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def _argv_value(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == flag]


def test_lab_writes_a_complete_run_directory(
    make_stack: MakeStack, tisbench: Tisbench, run_root: Path, labs: LabRegistry, docker_client: docker.DockerClient
) -> None:
    stack = make_stack(QUICKSTART, "lab")
    run = run_root / "RUN"
    result = tisbench("lab", stack, "--images", "lab", "--measurement-requests", REQUESTS, "--out", run, *STEADY)
    assert result.exit_code == 0, result

    for name in ("perf_analyzer.csv", "summary.json", "manifest.json", "profile_export.json",
                 "logs/perf_analyzer.log", "logs/triton_server.log"):
        assert (run / name).is_file(), f"{name} missing from {sorted(p.name for p in run.rglob('*'))}"

    rows = read_json(run / "summary.json")["rows"]
    assert len(rows) == 1
    assert rows[0]["throughput_infer_per_sec"] > 0
    assert rows[0]["p99_latency_us"] >= rows[0]["p50_latency_us"] > 0

    manifest = read_json(run / "manifest.json")
    assert manifest["status"] == "ok"
    assert manifest["server_version"] == SERVER_VERSION
    argv = manifest["perf_analyzer_argv"]
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv) and argv[0] == "perf_analyzer"
    assert _argv_value(argv, "--measurement-request-count") == [REQUESTS]
    server_image, sdk_image = (docker_client.api.inspect_image(ref)["Id"] for ref in LAB_IMAGES)
    assert manifest["image_ids"] == {"server": server_image, "sdk": sdk_image}

    assert "Request concurrency: 1" in (run / "logs" / "perf_analyzer.log").read_text()
    assert "successfully loaded 'seed_model'" in (run / "logs" / "triton_server.log").read_text()

    csv_rows = _csv_rows(run / "perf_analyzer.csv")
    assert [r["Concurrency"] for r in csv_rows] == ["1"]
    export = read_json(run / "profile_export.json")
    (experiment,) = export["experiments"]
    requests = experiment["requests"]
    bounds = experiment["window_boundaries"]
    ends = [r["response_timestamps"][-1] for r in requests if r["response_timestamps"]]
    in_windows = sum(1 for end in ends if bounds[0] <= end <= bounds[-1])
    # The CSV's throughput covers the measurement windows; the export holds every request of them.
    csv_window_requests = float(csv_rows[0]["Inferences/Second"]) * (bounds[-1] - bounds[0]) / 1e9
    assert len(requests) >= in_windows >= int(REQUESTS)
    assert len(requests) >= 0.9 * csv_window_requests, (len(requests), csv_window_requests)

    (created,) = _labs_named_in(result.stderr)
    assert created.startswith(labs.prefixes[-1])
    assert leftovers(docker_client, created) == [], "tisbench lab removes its lab"


def _labs_named_in(stderr: str) -> list[str]:
    return re.findall(r"creating lab (\S+?):", stderr)


def test_concurrency_sweep_gives_one_row_per_point_in_order(
    bench_lab: SharedLab, tisbench: Tisbench, run_root: Path
) -> None:
    run = run_root / "RUN"
    result = tisbench("bench", bench_lab.name, "--concurrency", "1:2", "--measurement-requests", REQUESTS,
                      "--out", run, *STEADY)
    assert result.exit_code == 0, result
    summary = read_json(run / "summary.json")
    assert summary["sweep"] == "concurrency"
    assert [row["concurrency"] for row in summary["rows"]] == [1, 2]
    assert [r["Concurrency"] for r in _csv_rows(run / "perf_analyzer.csv")] == ["1", "2"]
    assert all(row["throughput_infer_per_sec"] > 0 for row in summary["rows"])


def test_no_auto_shape_fails_with_a_shape_hint(bench_lab: SharedLab, tisbench: Tisbench, run_root: Path) -> None:
    run = run_root / "RUN"
    result = tisbench("bench", bench_lab.name, "--no-auto-shape", "--measurement-requests", REQUESTS, "--out", run)
    assert result.exit_code == 5, result
    line = result.error  # exactly one error line
    assert "needs to have its shape fully defined" in line
    assert "--shape" in line
    assert read_json(run / "manifest.json")["status"] == "failed"


def test_unknown_lab_is_bad_input(tisbench: Tisbench) -> None:
    result = tisbench("bench", "e2e-unknown")
    assert result.exit_code == 2, result
    assert "e2e-unknown" in result.error


BAD_INPUTS = {
    # name: (file text, the input the error must name, what else the error must say)
    "string_for_fp32": (
        '{"data":[{"data_path":["file_path"],"age":["thirty-two"],"gender":[0.0],"name":["kim"]}]}', "age", "value 0"
    ),
    "missing_input": ('{"data":[{"data_path":["file_path"],"age":[32.0],"name":["kim"]}]}', "gender", "missing"),
    "malformed_json": ('{"data":[{"data_path":["file_path"],"age":[32.0],"gender":[0.0],"name":["kim"]}', None,
                       "not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_data_is_refused_before_anything_runs(
    case: str, bench_lab: SharedLab, tisbench: Tisbench, run_root: Path
) -> None:
    text, input_name, words = BAD_INPUTS[case]
    data = bench_lab.stack / "dataset" / f"bad_{case}.json"
    data.write_text(text)
    run = run_root / "RUN"
    result = tisbench("bench", bench_lab.name, "--input-data", data, "--measurement-requests", REQUESTS, "--out", run)
    assert result.exit_code == 2, result
    line = result.error
    assert data.name in line, "the error names the file"
    if input_name:
        assert repr(input_name) in line or f'"{input_name}"' in line, "the error names the input"
    assert words in line
    assert not run.exists(), "no run directory for input refused up front"
    assert not (run_root / "runs").exists()


def test_batched_model_runs_with_derived_shapes(
    make_stack: MakeStack, tisbench: Tisbench, run_root: Path
) -> None:
    stack = make_stack(BATCHED_STACK, "batched")
    run = run_root / "RUN"
    result = tisbench("lab", stack, "--images", "lab", "--measurement-requests", REQUESTS, "--out", run, *STEADY)
    assert result.exit_code == 0, result
    argv = read_json(run / "manifest.json")["perf_analyzer_argv"]
    assert _argv_value(argv, "--shape") == ["x:3"], "only the variable input gets a shape, from the data"
    assert read_json(run / "summary.json")["rows"][0]["throughput_infer_per_sec"] > 0


PAIR_CONFIG = """\
name: "pair_model"
backend: "python"
max_batch_size: 0
input [
  { name: "ids", data_type: TYPE_INT32, dims: [ -1 ] },
  { name: "tags", data_type: TYPE_STRING, dims: [ 2 ] }
]
output [
  { name: "total", data_type: TYPE_INT32, dims: [ 1 ] }
]
instance_group [ { count: 1, kind: KIND_CPU } ]
"""

PAIR_MODEL = '''\
"""Never-seen model: total = sum(ids); the two tags only travel with the request."""

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            ids = pb_utils.get_input_tensor_by_name(request, "ids").as_numpy()
            total = np.array([ids.sum()], dtype=np.int32)
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("total", total)]))
        return responses
'''

PAIR_DATA = {"data": [{"ids": [1, 2, 3], "tags": ["red", "blue"]}, {"ids": [4, 5, 6], "tags": ["x", "y"]}]}


@pytest.fixture
def new_model_stack(tmp_path: Path, labs: LabRegistry) -> Path:
    stack = tmp_path / "pairs"
    (stack / "models" / "pair_model" / "1").mkdir(parents=True)
    (stack / "dataset").mkdir()
    (stack / "models" / "pair_model" / "config.pbtxt").write_text(PAIR_CONFIG)
    (stack / "models" / "pair_model" / "1" / "model.py").write_text(PAIR_MODEL)
    (stack / "dataset" / "input.json").write_text(json.dumps(PAIR_DATA))
    (stack / "stack.yaml").write_text(textwrap.dedent(f"""\
        name: {labs.stack_name("pairs")}
        analyzer:
          measurement_requests: {REQUESTS}
        """))
    return stack


def test_a_never_seen_stack_runs_without_any_shape(new_model_stack: Path, tisbench: Tisbench, run_root: Path) -> None:
    run = run_root / "RUN"
    result = tisbench("lab", new_model_stack, "--images", "lab", "--out", run, *STEADY)
    assert result.exit_code == 0, result
    argv = read_json(run / "manifest.json")["perf_analyzer_argv"]
    assert _argv_value(argv, "--shape") == ["ids:3"]
    summary = read_json(run / "summary.json")
    assert summary["model"] == "pair_model"
    assert summary["rows"][0]["throughput_infer_per_sec"] > 0
