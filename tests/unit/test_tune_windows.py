"""Per-window throughput and latency from a profile export's window boundaries."""

from __future__ import annotations

import json
from pathlib import Path

from composer.analyzer.windows import experiment_windows


def _export(path: Path, requests: list[tuple[int, int]], bounds: list[int]) -> Path:
    doc = {
        "experiments": [
            {
                "experiment": {"mode": "concurrency", "value": 4},
                "requests": [
                    {"timestamp": s, "request_inputs": {}, "response_timestamps": [e], "response_outputs": [{}]}
                    for s, e in requests
                ],
                "window_boundaries": bounds,
            }
        ],
        "version": "0.0.0",
    }
    path.write_text(json.dumps(doc))
    return path


def test_each_reported_window_counts_the_requests_that_ended_in_it(tmp_path: Path) -> None:
    s = 1_000_000_000
    # a stabilization window (0–1 s) and three reported ones (1–2, 2–3, 3–4 s)
    requests = [(s // 2, s // 2 + 1000_000)] * 5
    requests += [(s + i, s + i + 1_000_000) for i in range(10)]
    requests += [(2 * s + i, 2 * s + i + 2_000_000) for i in range(20)]
    requests += [(3 * s + i, 3 * s + i + 3_000_000) for i in range(30)]
    (exp,) = experiment_windows(_export(tmp_path / "pe.json", requests, [0, s, 2 * s, 3 * s, 4 * s]))
    assert exp.value == 4
    assert [w.requests for w in exp.windows] == [10, 20, 30]
    assert [w.seconds for w in exp.windows] == [1.0, 1.0, 1.0]
    assert [w.latency_us for w in exp.windows] == [1000, 2000, 3000]
    assert exp.latency_us == 3000


def test_an_experiment_without_boundaries_is_left_out(tmp_path: Path) -> None:
    assert experiment_windows(_export(tmp_path / "pe.json", [(1, 2)], [])) == []
