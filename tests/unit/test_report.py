"""Reports rendered from a run directory."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from paths import SYNTHETIC

from composer.analyzer.results import parse_perf_csv, summary_dict
from composer.core.errors import UsageError
from composer.reports.run_report import render_report, write_reports


def _run_dir(tmp_path: Path, *, export: bool = True, failed: str | None = None) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    for name in ("perf_analyzer.csv", "manifest.json") + (("profile_export.json",) if export else ()):
        shutil.copy(SYNTHETIC / name, run / name)
    rows = parse_perf_csv((run / "perf_analyzer.csv").read_text())
    (run / "summary.json").write_text(json.dumps(summary_dict("seed", "24.10", rows)))
    if failed is not None:
        manifest = json.loads((run / "manifest.json").read_text())
        manifest.update(status="failed", error=failed, exit_code=4)
        (run / "manifest.json").write_text(json.dumps(manifest))
    return run


def test_importing_report_does_not_import_matplotlib() -> None:
    code = "import sys, composer.reports.run_report; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_markdown_has_header_and_one_table_row_per_sweep_point(tmp_path: Path) -> None:
    text = render_report(_run_dir(tmp_path), "md")
    assert "# tisbench report — seed" in text
    assert "24.10 (server 2.51.0)" in text
    assert "tisbench-lab/tritonserver:24.10-py3-sdk" in text
    assert "perf_analyzer -m seed --concurrency-range 1:4" in text
    assert "FAILED" not in text
    table = [ln for ln in text.splitlines() if re.match(r"\| [124] \|", ln)]
    assert len(table) == 3
    # concurrency 1: 3650.2 infer/s, p99 402 µs → 0.40 ms, avg 270 µs → 0.27 ms
    assert table[0].startswith("| 1 | 3,650.2 | 0.27 | 0.26 | 0.30 | 0.32 | 0.40 |")
    assert text.count("![") == 4
    assert "charts/latency_over_time.png" in text


def test_failed_run_shows_the_error_prominently(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, export=False, failed="model seed failed to load")
    (run / "summary.json").unlink()
    (run / "perf_analyzer.csv").unlink()
    md = render_report(run, "md")
    html = render_report(run, "html")
    assert "**FAILED: model seed failed to load**" in md
    assert "No results" in md
    assert '<p class="failed">FAILED: model seed failed to load</p>' in html
    assert "data:image/png" not in html


def test_html_is_self_contained_with_one_embedded_image_per_chart(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    html = render_report(run, "html")
    assert html.count('src="data:image/png;base64,') == 4
    assert "http://" not in html and "https://" not in html
    assert html.count('<tr><td class="num">') == 3


def test_html_escapes_values_from_the_manifest(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, export=False, failed="<script>alert(1)</script>")
    html = render_report(run, "html")
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_json_report_lists_summary_experiments_and_charts(tmp_path: Path) -> None:
    doc = json.loads(render_report(_run_dir(tmp_path), "json"))
    assert doc["summary"]["rows"][0]["concurrency"] == 1
    assert [e["value"] for e in doc["profile_export"]] == [1, 2]
    assert "histogram" not in doc["profile_export"][0]
    assert len(doc["charts"]) == 4


def test_write_reports_writes_files_and_charts(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    written = write_reports(run)
    names = sorted(p.relative_to(run).as_posix() for p in written)
    assert names == [
        "charts/latency_breakdown.png",
        "charts/latency_histogram.png",
        "charts/latency_over_time.png",
        "charts/throughput_vs_p99.png",
        "report.html",
        "report.md",
    ]
    for path in written:
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (run / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len([p for p in written if p.suffix == ".png"])


def test_without_profile_export_only_summary_charts_are_made(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, export=False)
    written = write_reports(run)
    assert sorted(p.name for p in written if p.suffix == ".png") == [
        "latency_breakdown.png",
        "throughput_vs_p99.png",
    ]
    assert (run / "report.html").read_text().count("data:image/png;base64,") == 2


def test_unknown_format_and_non_run_directory_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="format"):
        render_report(_run_dir(tmp_path), "pdf")
    with pytest.raises(UsageError, match="manifest.json"):
        render_report(tmp_path, "md")
