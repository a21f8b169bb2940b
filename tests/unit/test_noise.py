"""Every summary row's interval, the rows of points kept unstable, and repeats pooled (composer.analyzer.noise)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pa_output import FIRST_UNSTABLE

from composer.analyzer.intervals import mean_interval, standard_error
from composer.analyzer.noise import FROM_EXPORT, FROM_KEPT, FROM_TRIALS, kept_rows, pooled_rows, with_intervals
from composer.analyzer.results import SummaryRow, load_summary, summary_dict

S = 1_000_000_000


def _export(path: Path, value: int, per_window: list[tuple[int, int]]) -> Path:
    """An export with one experiment: a stabilization window then one window per (requests, latency ms)."""
    requests = [{"timestamp": S // 2, "response_timestamps": [S // 2 + 1000], "request_inputs": {}}]
    for index, (count, latency_ms) in enumerate(per_window, start=1):
        for i in range(count):
            start = index * S + i * 1000
            end = start + latency_ms * 1_000_000
            requests.append({"timestamp": start, "response_timestamps": [end], "request_inputs": {}})
    bounds = [i * S for i in range(len(per_window) + 1)] + [(len(per_window) + 1) * S]
    doc = {
        "experiments": [
            {"experiment": {"mode": "concurrency", "value": value}, "requests": requests, "window_boundaries": bounds}
        ],
        "version": "0.0.0",
    }
    path.write_text(json.dumps(doc))
    return path


def test_a_row_carries_the_range_of_its_windows(tmp_path: Path) -> None:
    export = _export(tmp_path / "pe.json", 2, [(100, 2), (120, 3), (110, 4)])
    (row,) = with_intervals([SummaryRow("concurrency", 2, 110.0, p99_latency_us=3000.0)], export, "")
    assert row.uncertainty is not None and row.uncertainty.basis == "windows" and row.uncertainty.n == 3
    low, high = row.uncertainty.throughput
    assert low == pytest.approx(100, rel=0.02) and high == pytest.approx(120, rel=0.02)
    p99 = row.uncertainty.p99_latency_us
    assert p99 is not None and p99[0] == pytest.approx(2000, rel=0.01) and p99[1] == pytest.approx(4000, rel=0.01)


def test_without_an_export_the_trial_lines_give_the_throughput_interval() -> None:
    (row,) = with_intervals([SummaryRow("concurrency", 1, 3100.0)], Path("/nonexistent"), FIRST_UNSTABLE)
    assert row.uncertainty is not None and row.uncertainty.basis == "trials"
    assert row.uncertainty.throughput == (3025.09, 3317.8)
    assert row.uncertainty.p99_latency_us is None  # its trials were timed on the average, not p99


def test_a_point_with_a_csv_row_is_marked_and_one_without_gets_its_numbers(tmp_path: Path) -> None:
    export = _export(tmp_path / "pe.json", 4, [(100, 2), (100, 2), (100, 2)])
    rows = [SummaryRow("concurrency", 2, 500.0)]
    kept = {2.0: {"attempts": 4}, 4.0: {"attempts": 2}, 1.0: {"attempts": 4}}
    out = kept_rows(rows, kept, "concurrency", export, FIRST_UNSTABLE)
    assert [(r.value, (r.unstable or {}).get("numbers_from")) for r in out] == [
        (1.0, FROM_TRIALS),  # only its trial lines are left
        (2.0, FROM_KEPT),  # measured by the run that accepted any spread
        (4.0, FROM_EXPORT),  # the export still holds the experiment perf_analyzer gave up on
    ]
    trials = out[0]
    assert trials.throughput_infer_per_sec == pytest.approx((3025.09 + 3317.8 + 3137.02) / 3)
    assert trials.avg_latency_us == pytest.approx((324 + 295 + 311) / 3)
    assert out[2].throughput_infer_per_sec == pytest.approx(100, rel=0.02) and out[2].p99_latency_us


def test_an_unstable_row_reads_back_as_it_was_written(tmp_path: Path) -> None:
    export = _export(tmp_path / "pe.json", 2, [(100, 2), (120, 3), (110, 4)])
    rows = with_intervals(
        kept_rows([SummaryRow("concurrency", 2, 110.0)], {2.0: {"a": 1}}, "concurrency", export, ""), export, ""
    )
    (tmp_path / "summary.json").write_text(json.dumps(summary_dict("m", "24.10", rows)))
    (read,) = load_summary(tmp_path).rows
    assert read.unstable == {"a": 1, "numbers_from": FROM_KEPT} and read.uncertainty == rows[0].uncertainty
    doc = json.loads((tmp_path / "summary.json").read_text())
    assert doc["rows"][0]["stable"] is False and doc["rows"][0]["interval"] == {"from": "windows", "n": 3}


def test_repeats_pool_into_the_mean_with_its_confidence_interval() -> None:
    repeats = [
        [SummaryRow("concurrency", 1, t, p99_latency_us=p, avg_latency_us=p / 2)]
        for t, p in ((100.0, 1000.0), (110.0, 1100.0), (105.0, 1300.0))
    ]
    (row,) = pooled_rows(repeats)
    assert row.throughput_infer_per_sec == pytest.approx(105) and row.avg_latency_us == pytest.approx(3400 / 6)
    assert row.uncertainty is not None and row.uncertainty.basis == "repeats" and row.uncertainty.n == 3
    assert row.uncertainty.throughput == mean_interval([100.0, 110.0, 105.0])
    # ±4.3 standard errors with three repeats; the standard error comes back out of the interval
    se = standard_error(row.uncertainty.throughput, "repeats", 3)
    assert se == pytest.approx(5 / 3**0.5, rel=1e-3)


def test_a_point_unstable_in_one_repeat_stays_marked() -> None:
    stable, unstable = SummaryRow("concurrency", 1, 100.0), SummaryRow("concurrency", 1, 90.0, unstable={"x": 1})
    (row,) = pooled_rows([[stable], [unstable], [stable]])
    assert row.unstable == {"x": 1, "repeats_unstable": 1}


def test_the_standard_error_of_a_window_range_uses_the_expected_range_of_three() -> None:
    assert standard_error((90.0, 110.0), "windows", 3) == pytest.approx(20 / 1.693 / 3**0.5)
    assert standard_error((90.0, 110.0), "windows", 1) is None


def test_the_summary_pass_reads_the_same_windows_as_tune(tmp_path: Path) -> None:
    from composer.analyzer.profile_export import summarize_profile_export
    from composer.analyzer.windows import experiment_windows

    export = _export(tmp_path / "pe.json", 2, [(100, 2), (120, 30), (110, 4)])
    (summary,) = summarize_profile_export(export)
    (tune,) = experiment_windows(export, 99)
    assert summary.windows == tuple((w.requests, w.seconds, w.latency_us) for w in tune.windows)


def test_a_clients_point_is_settled_by_perf_analyzers_own_rule() -> None:
    from composer.analyzer.trials import Trial, settled, spread_pct

    steady = (Trial(100.0, 500, "Avg"), Trial(104.0, 510, "Avg"), Trial(98.0, 495, "Avg"))
    assert settled(steady, 10.0) and not settled(steady, 1.0)
    assert not settled(steady[:2], 10.0)  # fewer than three trials: perf_analyzer never calls that stable
    assert spread_pct(steady) == pytest.approx(6.12, abs=0.01)
