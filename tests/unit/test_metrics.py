"""Triton's Prometheus metrics: parsing, per-model deltas, gauges, GPUs seen, the count cross-check."""

from __future__ import annotations

import json

import pytest
from paths import FIXTURES

from composer.analyzer.results import summarize_profile_export
from composer.core.errors import AnalyzerError
from composer.runs.metrics import (
    MODEL_COUNTERS,
    SCHEMA,
    cross_check,
    gpus_seen,
    parse_scrape,
    point_deltas,
    server_metrics_document,
)

BEFORE = (FIXTURES / "triton_metrics_before.txt").read_text()  # the CPU lab server, before load
AFTER = (FIXTURES / "triton_metrics_after.txt").read_text()  # … after perf_analyzer at concurrency 1 and 2
GPU = (FIXTURES / "triton_metrics_gpu.txt").read_text()  # synthetic: two GPUs, two versions, two models
UUID_A, UUID_B = "GPU-1d8c0e2a-5b6f-4c3d-9e8f-0a1b2c3d4e5f", "GPU-7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2910"


# ---------------------------------------------------------------------------------------- parsing


def test_counters_are_keyed_by_the_name_triton_writes_not_prometheus_clients_total() -> None:
    scrape = parse_scrape(AFTER)
    key = ("nv_inference_count", frozenset({("model", "seed_model"), ("version", "1")}))
    assert scrape.samples[key] == 10034
    assert scrape.types["nv_inference_count"] == "counter"
    assert not any(name.endswith("_total") for name, _ in scrape.samples if scrape.types.get(name) == "counter")


def test_model_total_sums_every_label_set_of_the_model() -> None:
    scrape = parse_scrape(GPU)
    assert scrape.model_total("nv_inference_request_failure", "seed_model") == 3  # reasons × versions
    assert scrape.model_total("nv_inference_count", "seed_model") == 20000  # versions 1 and 2
    assert scrape.model_total("nv_inference_count", "absent_model") is None


@pytest.mark.parametrize(
    "text", ["<html><body>502 Bad Gateway</body></html>", "garbage line here", '# TYPE x counter\nx{a="1} 3']
)
def test_text_that_is_not_prometheus_is_an_analyzer_error_naming_the_source(text: str) -> None:
    with pytest.raises(AnalyzerError, match=r"^triton_server:8002/metrics: not Prometheus text") as caught:
        parse_scrape(text)
    assert caught.value.exit_code == 5
    assert "--allow-metrics" in (caught.value.hint or "")


def test_an_empty_scrape_has_no_samples() -> None:
    assert not parse_scrape("").samples


# ------------------------------------------------------------------------------------ deltas: real


def test_real_scrapes_give_seed_model_deltas_and_triton_style_averages() -> None:
    point = point_deltas(BEFORE, AFTER, "seed_model", sweep="concurrency", value=1.0, elapsed_s=6.2)
    counters = point["counters"]
    assert counters["nv_inference_count"] > 0
    assert counters == {
        "nv_inference_request_success": 10034,
        "nv_inference_request_failure": 0,
        "nv_inference_count": 10034,
        "nv_inference_exec_count": 10034,
        "nv_inference_request_duration_us": 5161562,
        "nv_inference_queue_duration_us": 1177324,
        "nv_inference_compute_input_duration_us": 147810,
        "nv_inference_compute_infer_duration_us": 3304658,
        "nv_inference_compute_output_duration_us": 506817,
    }
    derived = point["derived"]
    assert derived["avg_queue_us"] == pytest.approx(1177324 / 10034, abs=1e-3)
    assert derived["avg_compute_infer_us"] == pytest.approx(3304658 / 10034, abs=1e-3)
    assert derived["avg_request_us"] == pytest.approx(5161562 / 10034, abs=1e-3)
    assert derived["avg_batch_size"] == 1
    assert derived["server_infer_per_sec"] == pytest.approx(10034 / 6.2, abs=1e-3)
    assert point["concurrency"] == 1 and point["model"] == "seed_model" and point["elapsed_s"] == 6.2
    assert point["warnings"] == []


def test_real_cpu_server_reports_cpu_gauges_and_no_gpus() -> None:
    point = point_deltas(BEFORE, AFTER, "seed_model")
    gauges = {g["name"]: g for g in point["gauges"]}
    assert set(gauges) == {"nv_cpu_utilization", "nv_cpu_memory_total_bytes", "nv_cpu_memory_used_bytes"}
    assert gauges["nv_cpu_utilization"] == {"name": "nv_cpu_utilization", "labels": {}, "value": 0.995}
    assert point["device_counters"] == []
    assert gpus_seen(AFTER) == []


def test_server_average_agrees_with_perf_analyzers_server_columns() -> None:
    """The fixtures' run is quickstart_pa.csv: its queue/compute columns bracket the server's averages."""
    derived = point_deltas(BEFORE, AFTER, "seed_model")["derived"]
    assert 40 <= derived["avg_queue_us"] <= 166  # CSV Server Queue at concurrency 1 and 2
    assert 319 <= derived["avg_compute_infer_us"] <= 335  # CSV Server Compute Infer


def test_no_load_between_scrapes_gives_zero_deltas_and_no_averages() -> None:
    point = point_deltas(AFTER, AFTER, "seed_model")
    assert set(point["counters"].values()) == {0}
    assert all(v is None for v in point["derived"].values())


def test_a_model_the_server_does_not_export_is_a_warning_not_an_error() -> None:
    point = point_deltas(BEFORE, AFTER, "sead_model")
    assert point["counters"] == {}
    assert point["warnings"] == [
        "the server exports no per-model counters for 'sead_model': wrong model name, or metrics off"
    ]


def test_a_counter_that_went_down_counts_from_the_restart_and_warns() -> None:
    restarted = AFTER.replace(
        'nv_inference_count{model="seed_model",version="1"} 10034',
        'nv_inference_count{model="seed_model",version="1"} 12',
    )
    point = point_deltas(AFTER, restarted, "seed_model")
    assert point["counters"]["nv_inference_count"] == 12
    assert any("restarted" in w for w in point["warnings"])


# ------------------------------------------------------------------------------------- deltas: GPU


def test_gpu_scrape_sums_versions_and_ignores_other_models() -> None:
    point = point_deltas("", GPU, "seed_model")  # before: nothing yet, every series counts from 0
    assert point["counters"]["nv_inference_request_success"] == 5000
    assert point["counters"]["nv_inference_request_failure"] == 3
    assert point["derived"] == {
        "avg_request_us": 2000,
        "avg_queue_us": 500,
        "avg_compute_input_us": 100,
        "avg_compute_infer_us": 1200,
        "avg_compute_output_us": 200,
        "avg_batch_size": 8,
    }


def test_gpu_gauges_carry_their_gpu_uuid() -> None:
    gauges = point_deltas(GPU, GPU, "seed_model")["gauges"]
    utilization = {g["labels"]["gpu_uuid"]: g["value"] for g in gauges if g["name"] == "nv_gpu_utilization"}
    assert utilization == {UUID_A: 0.93, UUID_B: 0.12}
    names = {g["name"] for g in gauges}
    assert {
        "nv_gpu_memory_used_bytes",
        "nv_gpu_memory_total_bytes",
        "nv_gpu_power_usage",
        "nv_gpu_power_limit",
        "nv_cpu_utilization",
        "nv_cpu_memory_used_bytes",
    } <= names
    assert not names & {"nv_inference_pending_request_count", "nv_pinned_memory_pool_used_bytes"}


def test_gpu_energy_is_a_per_gpu_counter_delta() -> None:
    later = GPU.replace(
        f'nv_energy_consumption{{gpu_uuid="{UUID_A}"}} 3594017.400000',
        f'nv_energy_consumption{{gpu_uuid="{UUID_A}"}} 3594829.900000',
    )
    energy = point_deltas(GPU, later, "seed_model")["device_counters"]
    assert energy == [
        {"name": "nv_energy_consumption", "labels": {"gpu_uuid": UUID_A}, "delta": pytest.approx(812.5)},
        {"name": "nv_energy_consumption", "labels": {"gpu_uuid": UUID_B}, "delta": 0},
    ]


def test_gpus_seen_lists_each_gpu_uuid_once() -> None:
    assert gpus_seen(GPU) == [UUID_A, UUID_B]


def test_cache_hits_leave_compute_averages_per_computed_request() -> None:
    cached = GPU + (
        "# HELP nv_cache_num_hits_per_model Number of cache hits per model\n"
        "# TYPE nv_cache_num_hits_per_model counter\n"
        'nv_cache_num_hits_per_model{model="seed_model",version="1"} 1000\n'
    )
    derived = point_deltas("", cached, "seed_model")["derived"]
    assert derived["avg_queue_us"] == 500  # queue time counts every request
    assert derived["avg_compute_infer_us"] == 1500  # 6 000 000 µs over 4 000 computed requests


def test_non_finite_gauges_become_null_so_the_document_is_valid_json() -> None:
    text = (
        "# HELP nv_gpu_power_usage GPU power usage in watts\n# TYPE nv_gpu_power_usage gauge\n"
        f'nv_gpu_power_usage{{gpu_uuid="{UUID_A}"}} NaN\n'
    )
    gauges = point_deltas("", text, "seed_model")["gauges"]
    assert gauges == [{"name": "nv_gpu_power_usage", "labels": {"gpu_uuid": UUID_A}, "value": None}]
    json.dumps(gauges, allow_nan=False)


def test_every_listed_counter_is_one_triton_exports() -> None:
    exported = set(parse_scrape(AFTER).types) | {"nv_cache_num_hits_per_model"}
    assert set(MODEL_COUNTERS) <= exported


# ----------------------------------------------------------------------------------- cross-check


def test_cross_check_is_quiet_when_the_counts_agree_within_tolerance() -> None:
    exported = sum(e.request_count for e in summarize_profile_export(FIXTURES / "quickstart_profile_export.json"))
    server = point_deltas(BEFORE, AFTER, "seed_model")["counters"]["nv_inference_request_success"]
    assert (server, exported) == (10034, 9887)  # the same run: the server also saw perf_analyzer's warm-up
    assert cross_check(server, exported, exported) is None


def test_cross_check_warns_when_the_server_saw_fewer_requests_than_the_client_sent() -> None:
    warning = cross_check(900, 1000, 1000, what="concurrency 2")
    assert warning is not None
    assert warning.startswith(
        "Triton counted 900 successful requests (concurrency 2), perf_analyzer 1000, beyond the 5% tolerance"
    )


def test_cross_check_warns_when_another_client_added_requests() -> None:
    warning = cross_check(1200, 1000, 1000)
    assert warning is not None and "another client" in warning and "sent 1000" in warning


def test_a_lower_bound_only_accepts_any_larger_server_count() -> None:
    assert cross_check(50_000, 1000) is None  # CSV windows: warm-up and unstable windows are not in them
    warning = cross_check(800, 1000)
    assert warning is not None and "perf_analyzer at least 1000" in warning


def test_slack_absorbs_requests_in_flight_at_a_scrape() -> None:
    assert cross_check(92, 100, 100, tolerance=0.0) is not None
    assert cross_check(92, 100, 100, tolerance=0.0, slack=8) is None


@pytest.mark.parametrize(("kwargs", "message"), [({"tolerance": 1.5}, "tolerance"), ({"client_max": 5}, "client_max")])
def test_cross_check_rejects_meaningless_bounds(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cross_check(10, 10, **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------- document


def test_server_metrics_document_collects_points_gpus_and_every_warning_once() -> None:
    first = point_deltas("", GPU, "seed_model", sweep="concurrency", value=1)
    second = point_deltas(GPU, GPU, "nope", sweep="concurrency", value=2)
    doc = server_metrics_document([first, second], [UUID_B, UUID_A, UUID_B], ["count differs", "count differs"])
    assert doc["schema"] == SCHEMA
    assert doc["source"] == "triton_server:8002/metrics"
    assert doc["gpus"] == [UUID_A, UUID_B]
    assert [p["concurrency"] for p in doc["points"]] == [1, 2]
    assert doc["warnings"] == [
        "count differs",
        "the server exports no per-model counters for 'nope': wrong model name, or metrics off",
    ]
    assert json.loads(json.dumps(doc, allow_nan=False)) == doc
