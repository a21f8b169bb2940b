"""A decoupled model's responses: detection, perf_analyzer's argv, and the per-response statistics
read from a profile export (time to first response, gaps between responses)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from bench_settings import bench_settings
from paths import REPO

from composer.analyzer.perf_analyzer import (
    BenchSettings,
    Outputs,
    decoupled_note,
    for_model_config,
    is_decoupled,
    perf_analyzer_argv,
)
from composer.analyzer.results import (
    RESPONSE_KEYS,
    load_summary,
    parse_perf_csv,
    summarize_profile_export,
    summary_dict,
    summary_rows,
    with_response_stats,
)
from composer.core.errors import UsageError
from composer.core.modelconfig import parse_model_config
from composer.core.sweep import Sweep
from composer.reports.run_report import render_report

DECOUPLED_STACK = REPO / "tests" / "e2e" / "stacks" / "decoupled"
MS = 1_000_000  # ns


def _settings(**changes: Any) -> BenchSettings:
    decoupled = {"model": "repeat_int32", "sweep": Sweep("concurrency", 1, 2, 1), "shapes": {"IN": [4], "DELAY": [4]}}
    return bench_settings(**{**decoupled, "profile_export": True, **changes})


# ------------------------------------------------------------------------------------ detection


def test_the_repeat_models_own_config_is_decoupled() -> None:
    text = (DECOUPLED_STACK / "models" / "repeat_int32" / "config.pbtxt").read_text()
    assert is_decoupled(parse_model_config(text, "config.pbtxt", "repeat_int32"))


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"model_transaction_policy": {"decoupled": True}}, True),  # the server's JSON
        ({"model_transaction_policy": {"decoupled": "true"}}, True),
        ({"model_transaction_policy": {"decoupled": False}}, False),
        ({"model_transaction_policy": {}}, False),
        ({"model_transaction_policy": None}, False),
        ({"name": "seed_model"}, False),
    ],
)
def test_decoupled_is_read_from_model_transaction_policy(config: dict[str, Any], expected: bool) -> None:
    assert is_decoupled(config) is expected


def test_a_decoupled_model_is_benchmarked_over_grpc_streaming_unasked() -> None:
    settings = for_model_config(_settings(), {"model_transaction_policy": {"decoupled": True}}, None)
    argv = perf_analyzer_argv(settings, Outputs("/tmp/x.csv", "/tmp/x.json"))
    assert argv[argv.index("-u") + 1] == "triton_server:8001"
    assert argv[argv.index("-i") + 1] == "grpc"
    assert "--streaming" in argv and "--async" in argv
    assert decoupled_note(settings)["flags"] == ["-i", "grpc", "--streaming", "--async"]


def test_grpc_asked_for_a_decoupled_model_is_kept_and_streams() -> None:
    settings = for_model_config(_settings(protocol="grpc"), {"model_transaction_policy": {"decoupled": True}}, "grpc")
    assert (settings.protocol, settings.streaming) == ("grpc", True)


def test_explicit_http_for_a_decoupled_model_is_refused_naming_the_field() -> None:
    with pytest.raises(UsageError) as caught:
        for_model_config(_settings(), {"model_transaction_policy": {"decoupled": True}}, "http")
    assert caught.value.exit_code == 2
    assert "--protocol http" in caught.value.one_line()
    assert "model_transaction_policy.decoupled" in caught.value.one_line()


def test_other_models_keep_their_protocol_and_do_not_stream() -> None:
    settings = for_model_config(_settings(), {"name": "seed_model"}, None)
    argv = perf_analyzer_argv(settings, Outputs("/tmp/x.csv", None))
    assert argv[argv.index("-i") + 1] == "http" and "--streaming" not in argv


# ------------------------------------------------------------------------- response statistics


def _request(start: int, gaps_ms: list[float], *, null_final: bool = True) -> dict[str, Any]:
    """One request answered after each gap in turn; perf_analyzer records the decoupled model's
    flag-only final response as a response whose outputs are all ""."""
    stamps, at = [], start
    for gap in gaps_ms:
        at += int(gap * MS)
        stamps.append(at)
    outputs: list[dict[str, Any]] = [{"OUT": i, "IDX": i} for i in range(len(stamps))]
    if null_final:
        stamps.append(at + 100_000)
        outputs.append({"OUT": "", "IDX": ""})
    return {
        "timestamp": start,
        "request_inputs": {"WAIT": 0, "IN": [1, 2, 3], "DELAY": [2, 2, 2]},
        "response_timestamps": stamps,
        "response_outputs": outputs,
    }


def _export(path: Path, requests: list[dict[str, Any]], bounds: list[int]) -> Path:
    experiment = {"experiment": {"mode": "concurrency", "value": 1}, "requests": requests, "window_boundaries": bounds}
    doc = {"experiments": [experiment], "version": "0.0.0", "service_kind": "triton", "endpoint": ""}
    path.write_text(json.dumps(doc, separators=(",", ":")))
    return path


T0 = 1_800_000_000_000_000_000


def test_first_response_and_gaps_follow_perf_analyzers_definitions(tmp_path: Path) -> None:
    # Three requests of 4 responses each: the first after 5, 6, 7 ms, then gaps of 2, 2, 3 ms.
    requests = [_request(T0 + i * 20 * MS, [5 + i, 2, 2, 3]) for i in range(3)]
    (exp,) = summarize_profile_export(_export(tmp_path / "pe.json", requests, [T0, T0 + 100 * MS]))
    assert exp.window_count == 3
    assert exp.response_count == 12
    assert exp.responses_per_request == 4.0  # the null final response is no response
    assert (exp.first_response_p50_us, exp.first_response_p99_us) == (6000.0, 7000.0)
    # nine gaps, six of 2 ms and three of 3 ms: perf_analyzer's rule picks index 4 and 8
    assert (exp.inter_response_p50_us, exp.inter_response_p99_us) == (2000.0, 3000.0)
    # A request ends at its last real response, as perf_analyzer measures latency: 12, 13, 14 ms.
    assert exp.p50_latency_us == 13000.0
    assert exp.avg_latency_us == pytest.approx(13000.0)


def test_only_requests_ending_in_the_reported_windows_count(tmp_path: Path) -> None:
    before = [_request(T0, [40, 40])]  # ends at 80 ms, before the windows
    # Five boundaries (four trials): perf_analyzer reports the last three windows, 100-400 ms.
    bounds = [T0, T0 + 100 * MS, T0 + 200 * MS, T0 + 300 * MS, T0 + 400 * MS]
    inside = [_request(T0 + 150 * MS, [1, 1])]
    (exp,) = summarize_profile_export(_export(tmp_path / "pe.json", before + inside, bounds))
    assert (exp.request_count, exp.answered_count, exp.window_count) == (2, 2, 1)
    assert exp.window_start_ns == T0 + 100 * MS
    assert exp.first_response_p99_us == 1000.0 and exp.inter_response_p99_us == 1000.0


def test_a_request_answered_only_by_the_null_response_is_unanswered(tmp_path: Path) -> None:
    requests = [_request(T0, [], null_final=True), _request(T0 + MS, [1, 1, 1])]
    (exp,) = summarize_profile_export(_export(tmp_path / "pe.json", requests, [T0, T0 + 100 * MS]))
    assert (exp.request_count, exp.answered_count, exp.window_count) == (2, 1, 1)
    assert exp.responses_per_request == 3.0


def test_single_response_models_have_no_gaps(tmp_path: Path) -> None:
    requests = [_request(T0 + i * MS, [0.5], null_final=False) for i in range(4)]
    (exp,) = summarize_profile_export(_export(tmp_path / "pe.json", requests, [T0, T0 + 100 * MS]))
    assert exp.responses_per_request == 1.0
    assert exp.first_response_p50_us == exp.p50_latency_us == 500.0
    assert exp.inter_response_p50_us is None and exp.inter_response_p99_us is None


def test_empty_string_outputs_among_real_ones_are_not_a_null_response(tmp_path: Path) -> None:
    request = _request(T0, [1, 1], null_final=False)
    request["response_outputs"][-1] = {"OUT": "", "IDX": 1}
    (exp,) = summarize_profile_export(_export(tmp_path / "pe.json", [request], [T0, T0 + 100 * MS]))
    assert exp.responses_per_request == 2.0


# ------------------------------------------------------------------------- summary and reports

CSV = (
    "Concurrency,Inferences/Second,Response Throughput,Client Send,Network+Server Send/Recv,Server Queue,"
    "Server Compute Input,Server Compute Infer,Server Compute Output,Client Recv,p50 latency,p90 latency,"
    "p95 latency,p99 latency,Avg latency,request/response,response wait\n"
    "1,92.5,370.1,0,9796,67,27,537,10,0,10063,11539,12727,15057,10440,0,0\n"
)


def test_summary_rows_carry_the_five_response_fields_and_round_trip(tmp_path: Path) -> None:
    export = _export(tmp_path / "profile_export.json", [_request(T0, [3, 2, 2])], [T0, T0 + 100 * MS])
    rows = summary_rows(CSV, export, with_responses=True)
    doc = summary_dict("repeat_int32", "24.10", rows)
    row = doc["rows"][0]
    assert {k: row[k] for k in RESPONSE_KEYS} == {
        "responses_per_request": 3.0,
        "first_response_p50_us": 3000.0,
        "first_response_p99_us": 3000.0,
        "inter_response_p50_us": 2000.0,
        "inter_response_p99_us": 2000.0,
    }
    (tmp_path / "summary.json").write_text(json.dumps(doc))
    assert load_summary(tmp_path).rows == tuple(rows)


def test_rows_of_other_models_have_no_response_fields(tmp_path: Path) -> None:
    export = _export(tmp_path / "profile_export.json", [_request(T0, [3, 2, 2])], [T0, T0 + 100 * MS])
    row = summary_dict("m", "24.10", summary_rows(CSV, export, with_responses=False))["rows"][0]
    assert not set(RESPONSE_KEYS) & set(row)


def test_a_row_without_its_experiment_keeps_no_response_fields(tmp_path: Path) -> None:
    export = _export(tmp_path / "profile_export.json", [_request(T0, [3])], [T0, T0 + 100 * MS])
    rows = parse_perf_csv(CSV.replace("\n1,", "\n2,"))
    (row,) = with_response_stats(rows, summarize_profile_export(export))
    assert row.responses_per_request is None


def test_reports_show_the_response_table_when_present(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    export = _export(run / "profile_export.json", [_request(T0, [3, 2, 2])], [T0, T0 + 100 * MS])
    (run / "perf_analyzer.csv").write_text(CSV)
    (run / "manifest.json").write_text(json.dumps({"model": {"name": "repeat_int32"}, "status": "ok"}))
    (run / "summary.json").write_text(
        json.dumps(summary_dict("repeat_int32", "24.10", summary_rows(CSV, export, with_responses=True)))
    )
    md = render_report(run, "md")
    assert "## Responses (decoupled model)" in md
    assert "| 1 | 3.00 | 3.000 | 3.000 | 2.000 | 2.000 |" in md
    assert "inter-response p99" in render_report(run, "html")


def test_a_sequence_model_gets_ids_of_its_own_per_run_and_attempt() -> None:
    from dataclasses import replace

    from composer.analyzer.attempts import Attempt, first_attempt, settings_for_attempt
    from composer.analyzer.perf_analyzer import SEQUENCE_ID_SPAN, for_model_config, outputs_for, perf_analyzer_argv

    settings = for_model_config(_settings(), {"sequence_batching": {"oldest": {}}}, None)
    assert settings.sequence_ids is not None
    first = perf_analyzer_argv(settings, outputs_for("r", False))
    start = settings.sequence_ids
    assert first[first.index("--sequence-id-range") + 1] == f"{start}:{start + SEQUENCE_ID_SPAN - 1}"
    retry = settings_for_attempt(settings, Attempt(2, settings.sweep, first_attempt(settings).window))
    assert retry.sequence_ids == start + SEQUENCE_ID_SPAN
    own = replace(_settings(), extra_args=("--sequence-id-range=5:9",))
    assert for_model_config(own, {"sequence_batching": {}}, None).sequence_ids is None
    assert for_model_config(_settings(), {"dynamic_batching": {}}, None).sequence_ids is None


def _as_perf_analyzer_2_51_exports(request: dict[str, Any]) -> dict[str, Any]:
    """perf_analyzer ≤ 2.51 copies a null response's empty buffer into a new zero-length array and
    exports the number it then reads past it: the null response looks like a real one."""
    request["response_outputs"][-1] = {"OUT": 21845, "IDX": -1391489}
    return request


def test_a_null_response_exported_as_numbers_is_found_by_perf_analyzers_own_count(tmp_path: Path) -> None:
    requests = [_as_perf_analyzer_2_51_exports(_request(T0 + i * 20 * MS, [5 + i, 2, 2, 3])) for i in range(3)]
    (exp,) = summarize_profile_export(_export(tmp_path / "pe.json", requests, [T0, T0 + 100 * MS]))
    assert exp.responses_per_request == 5.0  # the export alone cannot tell
    assert exp.if_last_null is not None and exp.if_last_null.responses_per_request == 4.0
    # its CSV: 3 requests, 12 responses (perf_analyzer leaves its own null responses out)
    csv_text = CSV.replace("1,92.5,370.1,", "1,92.5,370.0,")
    (row,) = with_response_stats(parse_perf_csv(csv_text), [exp])
    assert row.responses_per_request == 4.0
    assert (row.first_response_p50_us, row.first_response_p99_us) == (6000.0, 7000.0)
    assert (row.inter_response_p50_us, row.inter_response_p99_us) == (2000.0, 3000.0)


def test_a_model_whose_responses_are_all_real_keeps_them(tmp_path: Path) -> None:
    requests = [_request(T0 + i * 20 * MS, [5, 2, 2, 3], null_final=False) for i in range(3)]
    (exp,) = summarize_profile_export(_export(tmp_path / "pe.json", requests, [T0, T0 + 100 * MS]))
    (row,) = with_response_stats(parse_perf_csv(CSV.replace("1,92.5,370.1,", "1,92.5,370.0,")), [exp])
    assert row.responses_per_request == 4.0  # the CSV agrees with the export as it is
    assert row.inter_response_p99_us == 3000.0
