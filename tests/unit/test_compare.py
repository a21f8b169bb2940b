"""Comparing two runs and listing runs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from paths import SYNTHETIC

from composer.analyzer.intervals import REPEATS, WINDOWS
from composer.analyzer.results import SummaryRow, Uncertainty, parse_perf_csv, summary_dict
from composer.core.errors import RegressionFound, UsageError
from composer.runs.compare import (
    check_regressions,
    compare_runs,
    list_runs,
    render_comparison,
    repeats_needed,
    verdict_of,
)


def _rows(noise_pct: float | None = 1.0) -> list[SummaryRow]:
    """The synthetic run's rows, each with windows spread ±noise_pct around its figures (None: rows
    without intervals, as tisbench wrote them before it kept any)."""
    rows = parse_perf_csv((SYNTHETIC / "perf_analyzer.csv").read_text())
    return rows if noise_pct is None else _noisy(rows, noise_pct)


def _noisy(rows: list[SummaryRow], pct: float, basis: str = WINDOWS, n: int = 3) -> list[SummaryRow]:
    def around(value: float) -> tuple[float, float]:
        return (value * (1 - pct / 100), value * (1 + pct / 100))

    return [
        replace(
            r,
            uncertainty=Uncertainty(basis, n, around(r.throughput_infer_per_sec), around(r.p99_latency_us or 0.0)),
        )
        for r in rows
    ]


def _run(
    root: Path,
    name: str,
    rows: list[SummaryRow],
    *,
    model: str = "seed",
    release: str = "24.10",
    started: str = "2024-11-25T10:00:00Z",
    status: str = "ok",
) -> Path:
    run = root / name
    run.mkdir(parents=True)
    manifest = json.loads((SYNTHETIC / "manifest.json").read_text())
    manifest.update(release=release, started_utc=started, status=status)
    manifest["model"]["name"] = model
    (run / "manifest.json").write_text(json.dumps(manifest))
    if rows:
        (run / "summary.json").write_text(json.dumps(summary_dict(model, release, rows)))
    return run


def test_run_against_itself_has_no_regression(tmp_path: Path) -> None:
    run = _run(tmp_path, "a", _rows())
    comparison = compare_runs(run, run, 5.0)
    assert len(comparison.points) == 3
    assert not comparison.regressions and not comparison.notes
    assert all(p.throughput.mark == "=" and p.p99_latency_us.pct == 0 for p in comparison.points)
    check_regressions(comparison)


def test_throughput_drop_of_20_percent_with_max_5_is_a_regression(tmp_path: Path) -> None:
    rows = _rows()
    slower = _noisy([replace(r, throughput_infer_per_sec=r.throughput_infer_per_sec * 0.8) for r in rows], 1.0)
    a, b = _run(tmp_path, "a", rows), _run(tmp_path, "b", slower, release="24.03")
    comparison = compare_runs(a, b, 5.0)
    assert len(comparison.regressions) == 3
    assert comparison.points[0].throughput.pct == pytest.approx(-20)
    assert comparison.points[0].throughput.mark == "▼"
    with pytest.raises(RegressionFound) as info:
        check_regressions(comparison)
    assert info.value.exit_code == 1
    text = render_comparison(comparison, "md")
    assert "REGRESSION" in text and "release 24.03" in text and "▼ worse" in text and "-20.0 % [" in text
    assert "beyond their noise by more than 5 %" in info.value.message


def test_p99_rise_beyond_threshold_regresses_and_improvements_are_marked_better(
    tmp_path: Path,
) -> None:
    rows = _rows()
    changed = [
        replace(rows[0], p99_latency_us=(rows[0].p99_latency_us or 0) * 1.10),
        replace(rows[1], throughput_infer_per_sec=rows[1].throughput_infer_per_sec * 1.3),
        rows[2],
    ]
    changed = _noisy(changed, 1.0)
    comparison = compare_runs(_run(tmp_path, "a", rows), _run(tmp_path, "b", changed), 5.0)
    first, second, _ = comparison.points
    assert first.regressed and first.p99_latency_us.mark == "▼"
    assert not second.regressed and second.throughput.mark == "▲"
    assert [p.value for p in comparison.regressions] == [1]


def test_without_threshold_nothing_is_judged_a_regression(tmp_path: Path) -> None:
    rows = _rows()
    slower = _noisy([replace(r, throughput_infer_per_sec=r.throughput_infer_per_sec * 0.5) for r in rows], 1.0)
    comparison = compare_runs(_run(tmp_path, "a", rows), _run(tmp_path, "b", slower), None)
    assert not comparison.regressions
    assert {p.throughput.verdict for p in comparison.points} == {"worse"}


def test_a_change_within_the_noise_is_no_regression_however_large_its_bare_percentage(tmp_path: Path) -> None:
    # two runs of one stack on a busy machine: 8 % apart, windows spread ±15 %
    rows = _rows(15.0)
    other = _noisy([replace(r, throughput_infer_per_sec=r.throughput_infer_per_sec * 0.92) for r in rows], 15.0)
    comparison = compare_runs(_run(tmp_path, "a", rows), _run(tmp_path, "b", other), 5.0)
    assert not comparison.regressions
    first = comparison.points[0].throughput
    assert first.pct == pytest.approx(-8) and first.verdict == "inconclusive"
    assert first.interval is not None and first.interval[0] < -8 < first.interval[1]
    check_regressions(comparison)


def test_an_inconclusive_point_says_how_many_repeats_would_decide_it() -> None:
    # 2 % worse ± 4 % against 5 %: the interval must shrink to ±3 %: 3 × (4/3)² → 6 samples
    assert repeats_needed((-2.0, 6.0), 5.0, 3) == 6
    assert verdict_of((-2.0, 6.0), 5.0) == "inconclusive"
    assert verdict_of((-2.0, 4.0), 5.0) == "same" and verdict_of((5.5, 9.0), 5.0) == "worse"
    assert verdict_of((-9.0, -6.0), 5.0) == "better" and verdict_of((-1.0, 1.0), 0.0) == "same"
    assert repeats_needed((0.0, 10.0), 5.0, 3) is None  # it sits on the threshold: no number of repeats decides it


def test_repeats_decide_with_their_confidence_intervals(tmp_path: Path) -> None:
    rows = _noisy(_rows(None), 2.0, REPEATS, 3)
    slower = _noisy(
        [replace(r, throughput_infer_per_sec=r.throughput_infer_per_sec * 0.75) for r in rows], 2.0, REPEATS
    )
    comparison = compare_runs(_run(tmp_path, "a", rows), _run(tmp_path, "b", slower), 5.0)
    assert len(comparison.regressions) == 3 and comparison.points[0].basis == "repeats"
    doc = json.loads(render_comparison(comparison, "json"))
    assert doc["points"][0]["throughput"]["verdict"] == "worse" and len(doc["points"][0]["throughput"]["interval"]) == 2


def test_runs_without_intervals_are_gated_on_the_bare_change_and_say_so(tmp_path: Path) -> None:
    rows = _rows(None)
    slower = [replace(r, throughput_infer_per_sec=r.throughput_infer_per_sec * 0.8) for r in rows]
    comparison = compare_runs(_run(tmp_path, "a", rows), _run(tmp_path, "b", slower), 5.0)
    assert len(comparison.regressions) == 3
    assert any("without intervals" in note for note in comparison.notes)


def test_unstable_points_are_named_in_the_notes(tmp_path: Path) -> None:
    rows = _rows()
    marked = [replace(rows[0], unstable={"attempts": 4}), *rows[1:]]
    comparison = compare_runs(_run(tmp_path, "a", rows), _run(tmp_path, "b", marked), 5.0)
    assert "B: concurrency 1 never met perf_analyzer's stability rule" in comparison.notes


def test_mismatched_points_and_models_are_noted_not_dropped(tmp_path: Path) -> None:
    rows = _rows()
    other = [rows[0], replace(rows[1], value=8)]
    comparison = compare_runs(_run(tmp_path, "a", rows), _run(tmp_path, "b", other, model="other"), 5.0)
    assert [p.value for p in comparison.points] == [1]
    notes = "\n".join(comparison.notes)
    assert "models differ" in notes
    assert "concurrency 2 is only in A" in notes
    assert "concurrency 4 is only in A" in notes
    assert "concurrency 8 is only in B" in notes
    doc = json.loads(render_comparison(comparison, "json"))
    assert doc["notes"] == list(comparison.notes)
    assert doc["regressed"] is False


def test_different_sweep_kinds_are_noted(tmp_path: Path) -> None:
    rows = _rows()
    rates = [replace(r, sweep="request_rate") for r in rows]
    comparison = compare_runs(_run(tmp_path, "a", rows), _run(tmp_path, "b", rates), 5.0)
    assert not comparison.points
    assert any("sweep kinds differ" in n for n in comparison.notes)


def test_bad_values_are_usage_errors(tmp_path: Path) -> None:
    run = _run(tmp_path, "a", _rows())
    with pytest.raises(UsageError):
        compare_runs(run, run, -1)
    with pytest.raises(UsageError):
        render_comparison(compare_runs(run, run, 1), "html")
    with pytest.raises(UsageError):
        list_runs(tmp_path / "missing")


def test_list_runs_sorted_by_start_with_best_throughput(tmp_path: Path) -> None:
    _run(tmp_path, "late", _rows(), started="2024-11-26T08:00:00Z", release="24.03")
    _run(tmp_path, "nested/early", _rows(), started="2024-11-24T08:00:00Z")
    _run(tmp_path, "failed", [], started="2024-11-25T08:00:00Z", status="failed")
    (tmp_path / "not-a-run").mkdir()
    runs = list_runs(tmp_path)
    assert [r.path.name for r in runs] == ["early", "failed", "late"]
    assert runs[0].best_throughput == pytest.approx(5260.9)
    assert runs[1].status == "failed" and runs[1].best_throughput is None
    assert runs[2].release == "24.03" and runs[2].model == "seed"
