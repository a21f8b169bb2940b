"""Release matrix aggregation: medians, spreads, deltas against the baseline, noise verdicts."""

from __future__ import annotations

from typing import Any

import pytest

from composer.analyzer.results import Summary, SummaryRow
from composer.core.errors import ReleaseError
from composer.labs.matrix import _median_rows, matrix_document, parse_releases
from composer.reports.matrix_report import matrix_markdown, point_tables


def _summary(release: str, points: dict[float, tuple[float, float]]) -> Summary:
    rows = tuple(
        SummaryRow("concurrency", value, tput, p50_latency_us=p99 / 2, p99_latency_us=p99)
        for value, (tput, p99) in points.items()
    )
    return Summary("seed_model", release, "concurrency", rows)


def _entry(release: str, summaries: list[Summary], version: str) -> dict[str, Any]:
    return {
        "release": release, "status": "ok", "reason": None, "server_version": version,
        "perf_analyzer_version": "2.60.0", "runs": [f"/runs/{release}"], "rows": _median_rows(summaries),
    }


def test_releases_keep_their_order_and_drop_repeats() -> None:
    assert parse_releases("24.10, 23.07,24.10") == ["24.10", "23.07"]


@pytest.mark.parametrize("text", ["23.02,24.10", "24.10,latest", ""])
def test_a_bad_release_in_the_list_is_refused(text: str) -> None:
    with pytest.raises(ReleaseError):
        parse_releases(text)


def test_median_and_spread_over_repeats() -> None:
    rows = _median_rows([_summary("24.10", {1: (100, 1000)}), _summary("24.10", {1: (110, 900)}),
                         _summary("24.10", {1: (90, 1100)})])
    assert rows[0]["throughput_infer_per_sec"] == 100
    assert rows[0]["throughput_infer_per_sec_spread_pct"] == pytest.approx(20.0)
    assert rows[0]["repeats"] == 3


def test_a_delta_beyond_the_noise_is_called_better_or_worse() -> None:
    base = _entry("23.07", [_summary("23.07", {1: (100, 1000)}), _summary("23.07", {1: (102, 1010)})], "2.36.0")
    new = _entry("24.10", [_summary("24.10", {1: (150, 700)}), _summary("24.10", {1: (152, 690)})], "2.51.0")
    doc = matrix_document("/stack", [base, new], repeat=2)
    delta = doc["releases"][1]["deltas"][0]
    assert delta["throughput_infer_per_sec"]["verdict"] == "better"
    assert delta["p99_latency_us"]["verdict"] == "better"
    assert doc["baseline"] == "23.07"


def test_a_delta_inside_the_noise_is_not_a_regression() -> None:
    base = _entry("23.07", [_summary("23.07", {1: (100, 1000)}), _summary("23.07", {1: (120, 1000)})], "2.36.0")
    new = _entry("24.10", [_summary("24.10", {1: (95, 1000)}), _summary("24.10", {1: (115, 1000)})], "2.51.0")
    delta = matrix_document("/stack", [base, new], repeat=2)["releases"][1]["deltas"][0]
    assert delta["throughput_infer_per_sec"]["verdict"] == "within noise"


def test_without_repeats_the_noise_is_unknown_not_zero() -> None:
    base = _entry("23.07", [_summary("23.07", {1: (100, 1000)})], "2.36.0")
    new = _entry("24.10", [_summary("24.10", {1: (90, 1000)})], "2.51.0")
    delta = matrix_document("/stack", [base, new], repeat=1)["releases"][1]["deltas"][0]
    assert delta["throughput_infer_per_sec"]["verdict"].startswith("noise unknown")


def test_failed_releases_are_listed_with_their_reason_and_skipped_as_baseline() -> None:
    failed = {"release": "23.05", "status": "failed", "reason": "--images lab: no lab image for release 23.05",
              "server_version": None, "perf_analyzer_version": None, "runs": [], "rows": []}
    ok = _entry("24.10", [_summary("24.10", {1: (100, 1000), 2: (180, 1500)})], "2.51.0")
    doc = matrix_document("/stack", [failed, ok], repeat=1)
    assert doc["baseline"] == "24.10"
    text = matrix_markdown(doc)
    assert "| 23.05 | failed |" in text and "no lab image" in text
    assert [t["title"] for t in point_tables(doc)] == ["concurrency 1", "concurrency 2"]
