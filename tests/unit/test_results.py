"""Parsing perf_analyzer's CSV, summary.json, and the streamed profile export summary."""

from __future__ import annotations

import json
import random
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from paths import FIXTURES

from composer.analyzer.results import (
    SUMMARY_KEYS,
    load_summary,
    parse_perf_csv,
    read_csv_file,
    summarize_profile_export,
    summary_dict,
)
from composer.core.errors import AnalyzerError

SYNTHETIC = FIXTURES / "synthetic"
HEADER = (
    "Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,"
    "Server Compute Input,Server Compute Infer,Server Compute Output,Client Recv,p50 latency,"
    "p90 latency,p95 latency,p99 latency,Avg latency,request/response,response wait"
)
# Percentiles agree with a brute-force computation exactly below 16.384 ms and within this
# relative error above it (log buckets keep 14 significant bits), plus 1 µs of truncation.
REL_TOLERANCE = 1 / 8192


def test_csv_rows_come_back_in_sweep_order_not_throughput_order() -> None:
    rows = parse_perf_csv((SYNTHETIC / "perf_analyzer.csv").read_text())
    assert [r.value for r in rows] == [1, 2, 4]
    assert rows[0].sweep == "concurrency"
    assert rows[0].throughput_infer_per_sec == pytest.approx(3650.2)
    assert rows[0].p99_latency_us == 402
    assert rows[2].server_queue_us == 390
    assert rows[0].request_response_us == 270


def test_csv_keeps_unknown_columns_in_extra() -> None:
    text = "Request Rate,Inferences/Second,p99 latency,GPU Utilization,Avg GPU Memory\n"
    text += "200,199.5,900,gpu0:0.5;,gpu0:1024;\n100,99.8,800,gpu0:0.25;,gpu0:1000;\n"
    rows = parse_perf_csv(text)
    assert [r.value for r in rows] == [100, 200]
    assert rows[0].sweep == "request_rate"
    assert rows[0].extra == {"GPU Utilization": "gpu0:0.25;", "Avg GPU Memory": "gpu0:1000;"}
    assert rows[0].server_queue_us is None


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty"),
        ("hello,world\n1,2\n", "not a perf_analyzer CSV header"),
        (HEADER + "\n", "no rows"),
        (HEADER + "\n1,2,3\n", "line 2 has 3 fields"),
        (HEADER + "\n1,abc" + ",1" * 14 + "\n", "'Inferences/Second'"),
    ],
)
def test_garbled_csv_raises_analyzer_error_naming_the_file(text: str, needle: str) -> None:
    with pytest.raises(AnalyzerError) as info:
        parse_perf_csv(text, "/runs/x/perf_analyzer.csv")
    assert "/runs/x/perf_analyzer.csv" in info.value.message
    assert needle in info.value.message


def test_summary_dict_has_the_documented_shape_and_round_trips(tmp_path: Path) -> None:
    rows = parse_perf_csv((SYNTHETIC / "perf_analyzer.csv").read_text())
    doc = summary_dict("seed", "24.10", rows)
    assert doc["sweep"] == "concurrency"
    assert list(doc["rows"][0])[: 1 + len(SUMMARY_KEYS)] == ["concurrency", *SUMMARY_KEYS]
    assert doc["rows"][0]["concurrency"] == 1
    (tmp_path / "summary.json").write_text(json.dumps(doc))
    loaded = load_summary(tmp_path)
    assert (loaded.model, loaded.release, loaded.sweep) == ("seed", "24.10", "concurrency")
    assert loaded.rows == tuple(rows)


def test_load_summary_falls_back_to_the_csv_and_manifest(tmp_path: Path) -> None:
    for name in ("perf_analyzer.csv", "manifest.json"):
        (tmp_path / name).write_bytes((SYNTHETIC / name).read_bytes())
    summary = load_summary(tmp_path)
    assert (summary.model, summary.release, len(summary.rows)) == ("seed", "24.10", 3)


def test_load_summary_names_a_broken_summary_file(tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_text('{"model": "m", "rows": [')
    with pytest.raises(AnalyzerError, match="summary.json"):
        load_summary(tmp_path)


# ------------------------------------------------------------------------------ profile export


def _request(start: int, latency: int | None, name: str = "x") -> dict[str, Any]:
    return {
        "timestamp": start,
        "request_inputs": {"name": name, "age": [1.0]},
        "response_timestamps": [] if latency is None else [start + latency // 2, start + latency],
        "response_outputs": [{"out": "y"}],
    }


def _experiment(rnd: random.Random, value: int, t0: int, n: int, **inputs: str) -> dict[str, Any]:
    requests = []
    for i in range(n):
        # mostly sub-ms latencies, a tail past the 16 ms exact range
        latency = rnd.randint(80_000, 2_000_000) if i % 10 else rnd.randint(1_000_000, 90_000_000)
        requests.append(_request(t0 + i * 250_000, latency, **inputs))
    rnd.shuffle(requests)  # perf_analyzer does not promise order
    requests.append(_request(t0 + n * 250_000, None))  # a request that never got an answer
    bounds = [t0 + n * 50_000, t0 + n * 120_000, t0 + n * 200_000]
    return {"experiment": {"mode": "concurrency", "value": value}, "requests": requests, "window_boundaries": bounds}


def _brute_force(exp: dict[str, Any]) -> dict[str, float]:
    lo, hi = exp["window_boundaries"][0], exp["window_boundaries"][-1]
    latencies = sorted(
        r["response_timestamps"][-1] - r["timestamp"]
        for r in exp["requests"]
        if r["response_timestamps"] and lo <= r["response_timestamps"][-1] <= hi
    )
    out = {f"p{p}": float(latencies[int(p / 100 * (len(latencies) - 1) + 0.5)] // 1000) for p in (50, 90, 95, 99)}
    out["count"] = len(latencies)
    out["avg"] = sum(latencies) / len(latencies) / 1000
    out["throughput"] = len(latencies) / ((hi - lo) / 1e9)
    return out


def _write_export(path: Path, experiments: list[dict[str, Any]]) -> None:
    doc = {"experiments": experiments, "version": "0.0.0", "service_kind": "triton", "endpoint": ""}
    path.write_text(json.dumps(doc, separators=(",", ":")))


@pytest.mark.parametrize("input_name", ["x", '"window_boundaries":[1,2]'])
def test_profile_export_summary_matches_brute_force(tmp_path: Path, input_name: str) -> None:
    # The second case plants the key's bytes inside a string value: the scan must not be fooled.
    rnd = random.Random(3)
    t0 = 1_700_000_000_000_000_000
    experiments = [_experiment(rnd, c, t0 + c * 10**10, 4_000, name=input_name) for c in (1, 2)]
    path = tmp_path / "pe.json"
    _write_export(path, experiments)
    summaries = summarize_profile_export(path)
    assert [(s.mode, s.value) for s in summaries] == [("concurrency", 1), ("concurrency", 2)]
    for summary, exp in zip(summaries, experiments, strict=True):
        expected = _brute_force(exp)
        assert summary.request_count == 4_001
        assert summary.answered_count == 4_000
        assert summary.windowed
        assert summary.window_count == expected["count"]
        assert summary.avg_latency_us == pytest.approx(expected["avg"])
        assert summary.throughput_infer_per_sec == pytest.approx(expected["throughput"])
        for p in (50, 90, 95, 99):
            got, want = getattr(summary, f"p{p}_latency_us"), expected[f"p{p}"]
            assert abs(got - want) <= want * REL_TOLERANCE + 1, (p, got, want)
        assert sum(n for _, n in summary.histogram) == summary.window_count
        assert sum(p.count for p in summary.timeline) == summary.answered_count


def test_wrong_window_hint_is_detected_and_the_pass_redone(tmp_path: Path) -> None:
    # An input *named* window_boundaries puts the key's exact bytes before the real one.
    rnd = random.Random(5)
    exp = _experiment(rnd, 1, 1_700_000_000_000_000_000, 500)
    for request in exp["requests"]:
        request["request_inputs"] = {"window_boundaries": [1, 2]}
    path = tmp_path / "pe.json"
    _write_export(path, [exp])
    (summary,) = summarize_profile_export(path)
    assert summary.window_count == _brute_force(exp)["count"]


def test_boundaries_before_requests_are_used_directly(tmp_path: Path) -> None:
    rnd = random.Random(9)
    exp = _experiment(rnd, 4, 1_700_000_000_000_000_000, 300)
    reordered = {k: exp[k] for k in ("window_boundaries", "experiment", "requests")}
    path = tmp_path / "pe.json"
    _write_export(path, [reordered])
    (summary,) = summarize_profile_export(path)
    assert summary.value == 4
    assert summary.window_count == _brute_force(exp)["count"]


def test_experiment_without_boundaries_counts_every_answered_request(tmp_path: Path) -> None:
    exp = _experiment(random.Random(1), 1, 1_700_000_000_000_000_000, 200)
    exp["window_boundaries"] = []
    path = tmp_path / "pe.json"
    _write_export(path, [exp])
    (summary,) = summarize_profile_export(path)
    assert not summary.windowed
    assert summary.window_count == 200


def test_synthetic_fixture_summary() -> None:
    summaries = summarize_profile_export(SYNTHETIC / "profile_export.json")
    doc = json.loads((SYNTHETIC / "profile_export.json").read_text())
    for summary, exp in zip(summaries, doc["experiments"], strict=True):
        expected = _brute_force(exp)
        assert summary.window_count == expected["count"]
        assert summary.p99_latency_us == expected["p99"]


@pytest.mark.parametrize("content", ['{"experiments":[{"experiment":', "not json"])
def test_truncated_export_raises_analyzer_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "profile_export.json"
    path.write_text(content)
    with pytest.raises(AnalyzerError, match="profile_export.json"):
        summarize_profile_export(path)


def _write_big_export(path: Path, n: int) -> None:
    """~230 bytes per request, written in chunks so the test itself stays small."""
    t = 1_700_000_000_000_000_000
    template = (
        '{"timestamp":%d,"request_inputs":{"data_path":"/data/img_%07d.jpg","age":[34.0],'
        '"gender":[1.0],"name":"Alice"},"response_timestamps":[%d],'
        '"response_outputs":[{"greeting":"Hello Alice, age 34"}]}'
    )
    with path.open("w") as out:
        out.write('{"experiments":[{"experiment":{"mode":"concurrency","value":1},"requests":[')
        for chunk in range(0, n, 10_000):
            size = min(10_000, n - chunk)
            out.write(
                ("," if chunk else "")
                + ",".join(
                    template % (t + i * 270_000, i, t + i * 270_000 + 200_000 + (i * 7919) % 150_000)
                    for i in range(chunk, chunk + size)
                )
            )
        bounds = [t + n * 270_000 // 4 * k for k in (1, 2, 3)]
        out.write(f'],"window_boundaries":{json.dumps(bounds)}}}],"version":"0.0.0"}}')


def test_large_export_is_summarized_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    _write_big_export(path, 200_000)
    size = path.stat().st_size
    tracemalloc.start()
    try:
        (summary,) = summarize_profile_export(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary.request_count == 200_000
    assert summary.window_count == pytest.approx(100_000, abs=2)
    assert peak < size / 20, f"peak {peak:,} B for a {size:,} B file"


REAL_CSV = FIXTURES / "quickstart_pa.csv"
REAL_EXPORT = FIXTURES / "quickstart_profile_export.json"


@pytest.mark.skipif(not REAL_CSV.exists(), reason="real perf_analyzer fixture not dropped yet")
def test_real_perf_analyzer_csv_parses() -> None:
    rows = parse_perf_csv(REAL_CSV.read_text(), str(REAL_CSV))
    assert rows and all(r.throughput_infer_per_sec > 0 for r in rows)
    assert [r.value for r in rows] == sorted(r.value for r in rows)


@pytest.mark.skipif(not (REAL_CSV.exists() and REAL_EXPORT.exists()), reason="real perf_analyzer fixtures absent")
def test_real_export_agrees_with_perf_analyzer_csv() -> None:
    # perf_analyzer merges its windows; we take [first, last] boundary: within 2 % or 5 µs.
    rows = {r.value: r for r in parse_perf_csv(REAL_CSV.read_text(), str(REAL_CSV))}
    for summary in summarize_profile_export(REAL_EXPORT):
        row = rows[summary.value]
        for p in ("p50", "p90", "p95", "p99"):
            want = getattr(row, f"{p}_latency_us")
            got = getattr(summary, f"{p}_latency_us")
            assert abs(got - want) <= max(0.02 * want, 5), (summary.value, p, got, want)
        assert summary.throughput_infer_per_sec == pytest.approx(row.throughput_infer_per_sec, rel=0.02)


def test_export_with_raw_output_bytes_as_perf_analyzer_2_44_writes_them(tmp_path: Path) -> None:
    # 2.44 writes an FP32 output's four bytes into the JSON string as they are (here 16.0 = 00 00 80 41):
    # not UTF-8, so strict parsers refuse it. Later versions write the numbers.
    request = b'{"timestamp":%d,"response_timestamps":[%d],"response_outputs":[{"score":"\\u0000\\u0000\x80A"}]}'
    requests = b",".join(request % (1_000 + i * 1_000, 1_500 + i * 1_000) for i in range(10))
    path = tmp_path / "profile_export.json"
    path.write_bytes(
        b'{"experiments":[{"experiment":{"mode":"concurrency","value":1},"requests":[' + requests
        + b'],"window_boundaries":[0,100000]}],"version":"0.0.0"}'
    )
    (summary,) = summarize_profile_export(path)
    assert summary.request_count == summary.window_count == 10
    assert summary.p50_latency_us == 0.0  # 500 ns each, truncated to µs as perf_analyzer does


def test_repaired_stream_replaces_only_what_is_not_utf8() -> None:
    import io

    from composer.analyzer.utf8_stream import RepairedUtf8

    stream = RepairedUtf8(io.BytesIO("é".encode() + b"\x80" + b"A" * 3))
    out = b""
    while chunk := stream.read(1):  # one byte at a time splits the two-byte é
        out += chunk
    assert out.decode() == "é\ufffdAAA"


PA_VERSIONS = FIXTURES / "pa_versions"


@pytest.mark.parametrize("path", sorted(PA_VERSIONS.glob("*.csv")), ids=lambda p: p.name)
def test_each_perf_analyzer_versions_csv_parses_to_the_same_fields(path: Path) -> None:
    # real files of the lab's perf_analyzer builds (2.36 ends every line with a comma)
    (row,) = read_csv_file(path)
    assert row.sweep == "concurrency" and row.value == 1
    assert row.throughput_infer_per_sec > 0 and row.p99_latency_us and row.response_wait_us is not None
    assert not row.extra
