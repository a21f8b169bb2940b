"""The lab side of tune without Docker: loads go through the repository API with the override,
a refused load is Triton's reason, a measurement is read from its run directory's windows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from composer.labs import tune as lab_tune
from composer.labs.request import BenchRequest
from composer.tuning.search import LoadFailed
from composer.tuning.space import Candidate

SERVED = {"name": "m", "max_batch_size": 8, "instance_group": [{"count": 1, "kind": "KIND_CPU"}]}
S = 1_000_000_000


class FakeTriton:
    loads: list[tuple[str, dict[str, Any]]] = []
    refuse: str | None = None
    serves: dict[str, Any] = {}  # fields the server sets on load, whatever the override said

    def load_model(self, name: str, config: str) -> None:
        if self.refuse:
            raise RuntimeError(self.refuse)
        FakeTriton.loads.append((name, json.loads(config)))

    def get_model_config(self, name: str) -> dict[str, Any]:
        return {**FakeTriton.loads[-1][1], **FakeTriton.serves}

    def close(self) -> None:
        pass


class FakeLab:
    class stack:  # noqa: N801 - stands in for a Stack
        model = "m"

        class analyzer:  # noqa: N801
            args: tuple[str, ...] = ()


def _fake_bench(requests: list[BenchRequest]) -> Any:
    def run_bench(lab: Any, request: BenchRequest, say: Any) -> None:
        requests.append(request)
        assert request.out is not None
        request.out.mkdir(parents=True)
        row = {"concurrency": 4, "throughput_infer_per_sec": 2000.0, "p99_latency_us": 1500.0}
        (request.out / "summary.json").write_text(json.dumps({"model": "m", "release": "24.10",
                                                              "sweep": "concurrency", "rows": [row]}))
        reqs = [{"timestamp": S + i * 1000, "response_timestamps": [S + i * 1000 + 1_000_000]} for i in range(50)]
        reqs += [{"timestamp": 2 * S + i, "response_timestamps": [2 * S + i + 2_000_000]} for i in range(70)]
        export = {"experiments": [{"experiment": {"mode": "concurrency", "value": 4}, "requests": reqs,
                                   "window_boundaries": [S, 2 * S, 3 * S]}]}
        (request.out / "profile_export.json").write_text(json.dumps(export))

    return run_bench


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[lab_tune.LabBench, list[BenchRequest]]:
    FakeTriton.loads, FakeTriton.refuse, FakeTriton.serves = [], None, {}
    requests: list[BenchRequest] = []
    monkeypatch.setattr(lab_tune, "_triton", lambda lab, timeout_s=600: FakeTriton())
    monkeypatch.setattr(lab_tune, "run_bench", _fake_bench(requests))
    return lab_tune.LabBench(FakeLab(), SERVED, BenchRequest(), tmp_path, 99, lambda m: None), requests  # type: ignore[arg-type]


def test_a_candidate_is_loaded_once_with_its_override_and_measured_from_its_windows(bench: Any) -> None:
    lab_bench, requests = bench
    first = lab_bench.measure(Candidate(2, 4, True), 4)
    lab_bench.measure(Candidate(2, 4, True), 8)
    assert len(FakeTriton.loads) == 1
    name, config = FakeTriton.loads[0]
    assert name == "m" and config["instance_group"][0]["count"] == 2 and "dynamic_batching" in config
    assert [w.requests for w in first.windows] == [50, 70]
    assert first.throughput == 2000.0 and first.throughput_interval == (50.0, 70.0)
    assert requests[0].sweep.start == 4 and requests[1].sweep.start == 8
    assert requests[0].extra_args[:2] == lab_tune.TUNE_STABILITY
    run_dir = lab_bench.out / first.run_dirs[0]
    assert (run_dir / "windows.json").exists() and not (run_dir / "profile_export.json").exists()


def test_a_refused_load_carries_tritons_reason(bench: Any) -> None:
    lab_bench, _ = bench
    FakeTriton.refuse = "load failed for model 'm': instance_group count must be positive"
    with pytest.raises(LoadFailed, match="instance_group count must be positive"):
        lab_bench.measure(Candidate(0, 4, True), 1)


def test_a_candidate_the_server_loads_as_another_configuration_is_not_measured(bench: Any) -> None:
    lab_bench, requests = bench
    FakeTriton.serves = {"max_batch_size": 4}  # as NVIDIA's auto_complete example does for batch 1 or 2
    with pytest.raises(LoadFailed, match="changed the configuration while loading it and serves 1 inst batch 4 dyn"):
        lab_bench.measure(Candidate(1, 2, True), 1)
    assert not requests and lab_bench.loaded is None
