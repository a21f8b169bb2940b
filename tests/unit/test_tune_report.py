"""The tune report from tune.json alone: the frontier chart, the top-5 table, a progress line."""

from __future__ import annotations

from pathlib import Path

from tune_fakes import FakeServer

from composer.labs.tune import progress_line
from composer.reports.tune_report import top_rows, tune_markdown, write_tune_reports
from composer.tuning.document import tune_document
from composer.tuning.search import Search
from composer.tuning.space import space_for, tune_settings

BATCHED = {"max_batch_size": 8, "dynamic_batching": {}, "instance_group": [{"count": 1, "kind": "KIND_CPU"}]}


def _doc() -> tuple[Search, dict]:
    settings = tune_settings(None, {"instances": "1:3", "max_batch_size": "1:8", "concurrency": "1:8"}, "s")
    search = Search(space_for(settings, BATCHED), settings, FakeServer())
    outcome = search.run()
    return search, tune_document(search, outcome, status="ok", facts={"model": "m", "release": "24.10"})


def test_the_report_has_the_frontier_chart_and_a_top_five_table(tmp_path: Path) -> None:
    _, doc = _doc()
    written = write_tune_reports(doc, tmp_path)
    assert {p.name for p in written} == {"frontier.png", "report.md", "report.html"}
    assert (tmp_path / "charts/frontier.png").read_bytes().startswith(b"\x89PNG")
    markdown = (tmp_path / "report.md").read_text()
    assert "![throughput–p99 frontier](charts/frontier.png)" in markdown and "## Top 5" in markdown
    assert "data:image/png;base64," in (tmp_path / "report.html").read_text()
    rows = top_rows(doc)
    assert 1 <= len(rows) <= 5 and any("recommended" in row[-1] for row in rows)


def test_a_report_of_an_interrupted_search_before_any_measurement_has_no_chart() -> None:
    _, doc = _doc()
    doc = {**doc, "status": "interrupted", "candidates": [], "finalists": [], "best": None}
    assert "![" not in tune_markdown(doc, None) and "interrupted" in tune_markdown(doc, None)


def test_one_progress_line_per_candidate_says_whether_it_meets_the_constraints() -> None:
    search, _ = _doc()
    line = progress_line(next(iter(search.trials.values())), search.settings)
    assert line.startswith("1 inst batch 8 dyn") and "infer/s" in line and line.endswith("meets")


def test_the_frontier_keeps_only_points_nobody_beats_on_both() -> None:
    from composer.reports.tune_report import pareto

    assert pareto([(1.0, 100.0), (2.0, 90.0), (2.0, 150.0), (3.0, 140.0), (4.0, 200.0)]) == [
        (1.0, 100.0),
        (2.0, 150.0),
        (4.0, 200.0),
    ]
