"""The perf_analyzer command line tisbench runs: the server address per protocol, shapes, load and
measurement flags, outputs, streaming for decoupled models, and the argv fitted to the version of
the perf_analyzer in the lab (flags.py's option tables)."""

from __future__ import annotations

from typing import Any

import pytest
from bench_settings import bench_settings

from composer.analyzer.perf_analyzer import (
    PROTOCOL_PORTS,
    SERVER_HOST,
    BenchSettings,
    Outputs,
    for_model_config,
    outputs_for,
    perf_analyzer_argv,
    with_deadline,
)
from composer.core.errors import UsageError
from composer.core.sweep import Sweep

DECOUPLED = {"model_transaction_policy": {"decoupled": True}}
CSV_ONLY = Outputs("/tmp/tisbench-r1.csv", None)
WITH_EXPORT = Outputs("/tmp/tisbench-r1.csv", "/tmp/tisbench-r1.profile_export.json")


def _settings(**changes: Any) -> BenchSettings:
    return bench_settings(**changes)


def _value(argv: list[str], option: str) -> str:
    return argv[argv.index(option) + 1]


def test_the_quickstart_argv_in_full() -> None:
    assert perf_analyzer_argv(_settings(), CSV_ONLY) == [
        "perf_analyzer",
        "-m", "seed_model",
        "-u", "triton_server:8000",
        "-i", "http",
        "--input-data", "dataset/input.json",
        "--concurrency-range", "1:4:1",
        "--measurement-mode", "count_windows",
        "--measurement-request-count", "200",
        "-f", "/tmp/tisbench-r1.csv",
        "--verbose-csv",
        "-v",
    ]  # fmt: skip


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_the_server_is_reached_by_its_service_name_on_the_protocols_port(protocol: str) -> None:
    argv = perf_analyzer_argv(_settings(protocol=protocol), CSV_ONLY)

    assert _value(argv, "-u") == f"{SERVER_HOST}:{PROTOCOL_PORTS[protocol]}"
    assert _value(argv, "-i") == protocol


def test_each_shape_is_one_shape_flag_in_order() -> None:
    argv = perf_analyzer_argv(_settings(shapes={"age": [1], "IN": [2, 3]}), CSV_ONLY)

    shapes = [argv[i + 1] for i, token in enumerate(argv) if token == "--shape"]
    assert shapes == ["age:1", "IN:2,3"]


def test_a_request_rate_sweep_uses_its_own_flag() -> None:
    argv = perf_analyzer_argv(_settings(sweep=Sweep("request_rate", 100, 300, 100)), CSV_ONLY)

    assert _value(argv, "--request-rate-range") == "100:300:100"
    assert "--concurrency-range" not in argv


def test_a_measurement_interval_measures_time_windows_instead_of_counts() -> None:
    argv = perf_analyzer_argv(_settings(measurement_interval_ms=2000, measurement_requests=None), CSV_ONLY)

    assert _value(argv, "--measurement-mode") == "time_windows"
    assert _value(argv, "--measurement-interval") == "2000"
    assert "--measurement-request-count" not in argv


def test_the_profile_export_is_asked_only_with_a_path() -> None:
    assert "--profile-export-file" not in perf_analyzer_argv(_settings(), CSV_ONLY)
    argv = perf_analyzer_argv(_settings(), WITH_EXPORT)
    assert _value(argv, "--profile-export-file") == "/tmp/tisbench-r1.profile_export.json"


def test_outputs_are_named_by_the_run_in_the_analyzers_tmp() -> None:
    assert outputs_for("r1", False) == CSV_ONLY
    assert outputs_for("r1", True) == WITH_EXPORT


def test_a_decoupled_model_runs_over_grpc_streaming_asynchronously() -> None:
    settings = for_model_config(_settings(), DECOUPLED, None)
    argv = perf_analyzer_argv(settings, CSV_ONLY)

    assert _value(argv, "-i") == "grpc" and _value(argv, "-u") == "triton_server:8001"
    assert argv[argv.index("--streaming") + 1] == "--async"


def test_a_decoupled_model_with_http_asked_is_refused_before_any_argv() -> None:
    with pytest.raises(UsageError) as caught:
        for_model_config(_settings(), DECOUPLED, "http")

    assert "model_transaction_policy.decoupled" in caught.value.message


def test_a_model_that_is_not_decoupled_keeps_the_asked_transport() -> None:
    argv = perf_analyzer_argv(for_model_config(_settings(), {"max_batch_size": 8}, None), CSV_ONLY)

    assert _value(argv, "-i") == "http" and "--streaming" not in argv


def test_the_users_args_come_last_after_the_gpu_metric_args() -> None:
    settings = _settings(metric_args=("--collect-metrics",), extra_args=("--percentile", "95"))

    assert perf_analyzer_argv(settings, CSV_ONLY)[-3:] == ["--collect-metrics", "--percentile", "95"]


def test_the_deadline_wraps_the_argv_in_coreutils_timeout_with_sigkill() -> None:
    argv = perf_analyzer_argv(_settings(), CSV_ONLY)

    assert with_deadline(argv, 600) == ["timeout", "-s", "KILL", "600", *argv]
    assert with_deadline(argv, 2.5)[:4] == ["timeout", "-s", "KILL", "2.5"]


# ------------------------------------------------------------------------- fitted to the version


def test_an_old_perf_analyzer_gets_no_profile_export_flag() -> None:
    argv = perf_analyzer_argv(_settings(analyzer_version="2.37.0"), WITH_EXPORT)

    assert "--profile-export-file" not in argv and "/tmp/tisbench-r1.profile_export.json" not in argv
    assert argv == perf_analyzer_argv(_settings(), CSV_ONLY)


def test_the_first_perf_analyzer_with_profile_export_gets_it() -> None:
    argv = perf_analyzer_argv(_settings(analyzer_version="2.38.0"), WITH_EXPORT)

    assert _value(argv, "--profile-export-file") == "/tmp/tisbench-r1.profile_export.json"


def test_an_unknown_version_is_given_every_option() -> None:
    assert perf_analyzer_argv(_settings(analyzer_version=None), WITH_EXPORT) == perf_analyzer_argv(
        _settings(analyzer_version="2.51.0"), WITH_EXPORT
    )


def test_a_user_option_the_lab_perf_analyzer_lacks_is_refused() -> None:
    settings = _settings(analyzer_version="2.45.0", extra_args=("--request-count", "100"))

    with pytest.raises(UsageError) as caught:
        perf_analyzer_argv(settings, CSV_ONLY)

    assert caught.value.message.startswith("--request-count: perf_analyzer 2.45.0 has no --request-count")


def test_a_user_option_removed_from_the_lab_perf_analyzer_says_when() -> None:
    settings = _settings(analyzer_version="2.46.0", extra_args=("--trace-file", "/tmp/t.json"))

    with pytest.raises(UsageError) as caught:
        perf_analyzer_argv(settings, CSV_ONLY)

    assert "removed in 2.46.0" in caught.value.message
