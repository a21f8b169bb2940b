"""Triton's Prometheus metrics: per-model counter deltas between two scrapes, gauges, a cross-check. Pure.

Scrapes are parsed with ``prometheus_client``; counters are keyed by their family name as Triton
writes it (``nv_inference_count``, without the ``_total`` prometheus_client adds). A counter that
went down between two scrapes was reset (the server restarted): its delta is its value at
``after``, as Prometheus' ``increase()`` counts it, and the point carries a warning.

``server_metrics.json`` (``server_metrics_document``)::

    {
      "schema": "tisbench.server_metrics/1",
      "source": "triton_server:8002/metrics",
      "gpus": ["GPU-…", …],                 # gpu_uuid labels seen; [] on a CPU-only server
      "points": [                           # in sweep order, one per scrape pair
        {
          "concurrency": 2,                 # the sweep key and value, as in summary.json rows
          "model": "seed_model",
          "elapsed_s": 3.1,                 # between the two scrapes, when the caller knows it
          "counters": {                     # per-model deltas, summed over version/reason/gpu_uuid;
            "nv_inference_request_success": 5938,   # only counters this server exports
            "nv_inference_request_failure": 0,
            "nv_inference_count": 5938, "nv_inference_exec_count": 5938,
            "nv_inference_request_duration_us": …, "nv_inference_queue_duration_us": …,
            "nv_inference_compute_input_duration_us": …, "nv_inference_compute_infer_duration_us": …,
            "nv_inference_compute_output_duration_us": …
          },
          "derived": {                      # null when the denominator is 0 or a counter is absent
            "avg_request_us": …, "avg_queue_us": …, "avg_compute_input_us": …,
            "avg_compute_infer_us": …, "avg_compute_output_us": …,
            "avg_batch_size": …,            # inferences / executions
            "server_infer_per_sec": …       # only with elapsed_s
          },
          "gauges": [                       # nv_gpu_* / nv_cpu_* at the second scrape
            {"name": "nv_gpu_utilization", "labels": {"gpu_uuid": "GPU-…"}, "value": 0.93}, …
          ],
          "device_counters": [              # per-device counters (nv_energy_consumption, joules)
            {"name": "nv_energy_consumption", "labels": {"gpu_uuid": "GPU-…"}, "delta": 812.5}
          ],
          "warnings": ["…"]
        }
      ],
      "warnings": ["…"]                     # the caller's, then every point's, each once
    }

Averages divide by successful requests, as perf_analyzer's server-side columns do; compute
times exclude cache hits (``nv_cache_num_hits_per_model``, when the response cache is on).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from composer.core.errors import AnalyzerError
from composer.core.triton import METRICS_URL

SCHEMA = "tisbench.server_metrics/1"
SOURCE = METRICS_URL
MODEL_COUNTERS = (
    "nv_inference_request_success",
    "nv_inference_request_failure",
    "nv_inference_count",
    "nv_inference_exec_count",
    "nv_inference_request_duration_us",
    "nv_inference_queue_duration_us",
    "nv_inference_compute_input_duration_us",
    "nv_inference_compute_infer_duration_us",
    "nv_inference_compute_output_duration_us",
    "nv_cache_num_hits_per_model",
)
DEVICE_PREFIXES = ("nv_gpu_", "nv_cpu_", "nv_energy_")
_GAUGE_TYPES = ("gauge", "untyped")

LabelSet = frozenset[tuple[str, str]]
SampleKey = tuple[str, LabelSet]


@dataclass(frozen=True)
class Scrape:
    """One scrape: sample values keyed by (name, frozenset of label pairs), and each family's type."""

    samples: Mapping[SampleKey, float]
    types: Mapping[str, str]

    def series(self, name: str) -> list[tuple[dict[str, str], float]]:
        return [(dict(labels), value) for (n, labels), value in self.samples.items() if n == name]

    def model_total(self, name: str, model: str) -> float | None:
        """The sum over every label set with ``model=model``; None when the server has no such series."""
        values = [v for labels, v in self.series(name) if labels.get("model") == model]
        return math.fsum(values) if values else None


def _sample_name(family_name: str, family_type: str, sample_name: str) -> str:
    if family_type == "counter" and sample_name == f"{family_name}_total":
        return family_name
    return sample_name


def parse_scrape(text: str, *, source: str = SOURCE) -> Scrape:
    """Prometheus text exposition → ``Scrape``; AnalyzerError naming the source when it is not that."""
    samples: dict[SampleKey, float] = {}
    types: dict[str, str] = {}
    try:
        for family in text_string_to_metric_families(text):
            types[family.name] = family.type
            for sample in family.samples:
                if family.type == "counter" and sample.name.endswith("_created"):
                    continue
                name = _sample_name(family.name, family.type, sample.name)
                samples[(name, frozenset(sample.labels.items()))] = float(sample.value)
    except (ValueError, TypeError, IndexError) as exc:
        raise AnalyzerError(
            f"{source}: not Prometheus text ({exc or type(exc).__name__})",
            "is the metrics port Triton's (8002) and --allow-metrics on?",
        ) from None
    return Scrape(samples, types)


def _plain(value: float) -> float | int | None:
    if not math.isfinite(value):
        return None  # JSON has no NaN / Inf
    return int(value) if float(value).is_integer() else value


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den <= 0:
        return None
    return num / den


def _delta(before: float | None, after: float) -> tuple[float, bool]:
    """(increase, reset?) — absent at ``before`` means the series was created since, i.e. from 0."""
    if before is None:
        return after, False
    if after < before:
        return after, True
    return after - before, False


def _device_entries(scrape: Scrape, before: Scrape) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
    gauges, counters, reset = [], [], False
    for (name, labels), value in sorted(scrape.samples.items(), key=lambda kv: (kv[0][0], sorted(kv[0][1]))):
        if not name.startswith(DEVICE_PREFIXES):
            continue
        kind = scrape.types.get(name, "untyped")
        if kind in _GAUGE_TYPES:
            gauges.append({"name": name, "labels": dict(sorted(labels)), "value": _plain(value)})
        elif kind == "counter":
            delta, was_reset = _delta(before.samples.get((name, labels)), value)
            reset = reset or was_reset
            counters.append({"name": name, "labels": dict(sorted(labels)), "delta": _plain(delta)})
    return gauges, counters, reset


def point_deltas(
    before: str,
    after: str,
    model: str,
    *,
    sweep: str | None = None,
    value: float | None = None,
    elapsed_s: float | None = None,
) -> dict[str, Any]:
    """One point of ``server_metrics.json`` from the scrapes taken before and after it (see the module doc)."""
    first = parse_scrape(before, source="metrics scrape before")
    second = parse_scrape(after, source="metrics scrape after")
    point: dict[str, Any] = {}
    if sweep is not None and value is not None:
        point[sweep] = _plain(value)
    point["model"] = model
    if elapsed_s is not None:
        point["elapsed_s"] = round(elapsed_s, 3)
    warnings: list[str] = []
    deltas: dict[str, float] = {}
    reset = False
    for name in MODEL_COUNTERS:
        at_after = second.model_total(name, model)
        if at_after is not None:
            deltas[name], was_reset = _delta(first.model_total(name, model), at_after)
            reset = reset or was_reset
    if not deltas:
        warnings.append(f"the server exports no per-model counters for {model!r}: wrong model name, or metrics off")
    success = deltas.get("nv_inference_request_success")
    computed = None if success is None else success - deltas.get("nv_cache_num_hits_per_model", 0.0)
    derived = {
        "avg_request_us": _ratio(deltas.get("nv_inference_request_duration_us"), success),
        "avg_queue_us": _ratio(deltas.get("nv_inference_queue_duration_us"), success),
        "avg_compute_input_us": _ratio(deltas.get("nv_inference_compute_input_duration_us"), computed),
        "avg_compute_infer_us": _ratio(deltas.get("nv_inference_compute_infer_duration_us"), computed),
        "avg_compute_output_us": _ratio(deltas.get("nv_inference_compute_output_duration_us"), computed),
        "avg_batch_size": _ratio(deltas.get("nv_inference_count"), deltas.get("nv_inference_exec_count")),
    }
    if elapsed_s is not None:
        derived["server_infer_per_sec"] = _ratio(deltas.get("nv_inference_count"), elapsed_s)
    gauges, device_counters, device_reset = _device_entries(second, first)
    if reset or device_reset:
        warnings.append(
            "a server counter went down between the scrapes (the server restarted?): deltas count from the restart"
        )
    point["counters"] = {k: _plain(v) for k, v in deltas.items()}
    point["derived"] = {k: None if v is None else _plain(round(v, 3)) for k, v in derived.items()}
    point["gauges"] = gauges
    point["device_counters"] = device_counters
    point["warnings"] = warnings
    return point


def gpus_seen(scrape_text: str) -> list[str]:
    """The ``gpu_uuid`` label values in a scrape, sorted; [] on a CPU-only server."""
    scrape = parse_scrape(scrape_text)
    return sorted({dict(labels)["gpu_uuid"] for _, labels in scrape.samples if "gpu_uuid" in dict(labels)})


def cross_check(
    server_count: int,
    client_min: int,
    client_max: int | None = None,
    *,
    tolerance: float = 0.05,
    slack: int = 0,
    what: str = "",
) -> str | None:
    """A warning sentence when the server's and perf_analyzer's request counts disagree, else None.

    ``client_min == client_max``: perf_analyzer's own count (the profile export's requests of the
    point, stabilization windows included). ``client_max=None``: only a lower bound is known (the
    CSV's measurement windows), so a server that counted more is expected, one that counted less
    is not. ``tolerance`` is relative; ``slack`` absolute (requests in flight at a scrape, up to
    the concurrency).
    """
    if not 0 <= tolerance < 1:
        raise ValueError(f"tolerance {tolerance} is not a fraction in [0, 1)")
    if client_max is not None and client_max < client_min:
        raise ValueError(f"client_max {client_max} < client_min {client_min}")
    where = f" ({what})" if what else ""
    band = f"beyond the {tolerance:.0%} tolerance" + (f" ± {slack}" if slack else "")
    if server_count < client_min * (1 - tolerance) - slack:
        client = f"{client_min}" if client_max == client_min else f"at least {client_min}"
        return (
            f"Triton counted {server_count} successful requests{where}, perf_analyzer {client}, {band}: "
            "were the scrapes taken around the run, and is perf_analyzer talking to this server and model?"
        )
    if client_max is not None and server_count > client_max * (1 + tolerance) + slack:
        client = f"{client_max}" if client_max == client_min else f"at most {client_max}"
        return (
            f"Triton counted {server_count} successful requests{where}, perf_analyzer sent {client}, {band}: "
            "another client used the server during the run, or the scrapes were not taken around it"
        )
    return None


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def server_metrics_document(
    points: Sequence[Mapping[str, Any]], gpus: Sequence[str], warnings: Sequence[str]
) -> dict[str, Any]:
    """The ``server_metrics.json`` document (shape in the module doc)."""
    point_warnings = (w for p in points for w in p.get("warnings", []))
    return {
        "schema": SCHEMA,
        "source": SOURCE,
        "gpus": sorted(set(gpus)),
        "points": [dict(p) for p in points],
        "warnings": _unique([*warnings, *point_warnings]),
    }
