"""Measurements that land on a busy machine: a sweep point perf_analyzer cannot measure stably is
measured again with a window twice as long (analyzer.stability_retries, 3 by default), the sweep
resumes there, and the run directory holds one result per point as if it had run once."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from .conftest import MakeStack, Tisbench
from .support import QUICKSTART, CliProcess, read_json

pytestmark = pytest.mark.docker


def test_a_point_that_never_settles_is_tried_four_times_then_fails_with_its_spread_when_stability_is_required(
    make_stack: MakeStack, tisbench: Tisbench, run_root: Path
) -> None:
    stack = make_stack(QUICKSTART, "unstable")
    run = run_root / "RUN"
    # No three windows agree within 0.01 %: every attempt fails, each with twice the window.
    result = tisbench("lab", stack, "--images", "lab", "--measurement-requests", "200", "--out", run,
                      "--require-stable", "--", "--stability-percentage", "0.01", "--max-trials", "3", timeout=400)
    assert result.exit_code == 5, result
    line = result.error
    assert "measurement not stable at concurrency 1 after 4 attempts" in line
    # perf_analyzer closes count windows on whole seconds: each retry fills twice the seconds
    assert re.search(r"windows 200 requests → [\d,]+ requests \(~\d+ s\)", line), line
    assert "its last 3 trials spread" in line and "infer/s (+" in line and "perf_analyzer accepts +0.01 %" in line
    assert "--stability-percentage" in line  # what to change
    retries = [ln for ln in result.stderr.splitlines() if "not stable with windows of" in ln]
    assert len(retries) == 3, result

    manifest = read_json(run / "manifest.json")
    assert (manifest["status"], manifest["exit_code"]) == ("failed", 5)
    attempts = manifest["attempts"]
    assert [a["attempt"] for a in attempts] == [1, 2, 3, 4]
    assert [a["exit_code"] for a in attempts] == [2, 2, 2, 2]
    sizes = [a["window"]["measurement_requests"] for a in attempts]
    assert sizes[0] == 200 and all(b >= 2 * a for a, b in zip(sizes, sizes[1:], strict=False)), sizes
    seconds = [a["window"].get("expected_seconds") for a in attempts]
    assert seconds[0] is None and seconds[2:] == [2 * seconds[1], 4 * seconds[1]], seconds
    assert all(a["points"] == [1] and a["measured"] == [] and a["unstable"] == 1 for a in attempts)
    assert all(len(a["spread"]["throughput_infer_per_sec"]) == 2 for a in attempts)
    argvs = [a["argv"] for a in attempts]
    assert argvs[0] == manifest["perf_analyzer_argv"]
    assert [int(a[a.index("--measurement-request-count") + 1]) for a in argvs] == sizes
    assert "--- tisbench: attempt 4" in (run / "logs" / "perf_analyzer.log").read_text()


def test_a_point_that_never_settles_is_kept_with_its_numbers_and_the_sweep_goes_on(
    make_stack: MakeStack, tisbench: Tisbench, run_root: Path
) -> None:
    """The issue's busy machine, made certain: no point's windows agree within 0.01 %. Every asked
    point still has its numbers, marked unstable; exit 7 says so."""
    stack = make_stack(QUICKSTART, "kept", {"analyzer": {"stability_retries": 1}})
    run = run_root / "RUN"
    result = tisbench("lab", stack, "--images", "lab", "--concurrency", "1:2", "--measurement-requests", "200",
                      "--out", run, "--", "--stability-percentage", "0.01", "--max-trials", "3", timeout=400)
    assert result.exit_code == 7, result
    assert "2 point(s) never met perf_analyzer's stability rule (concurrency 1, 2)" in result.error
    assert "sweep goes on at concurrency 2" in result.stderr

    summary = read_json(run / "summary.json")
    assert [(r["concurrency"], r["stable"]) for r in summary["rows"]] == [(1, False), (2, False)]
    for row in summary["rows"]:  # the full numbers of a last measurement that accepted any spread
        assert row["throughput_infer_per_sec"] > 0 and row["p99_latency_us"] > 0
        assert row["unstable"]["numbers_from"] == "a last measurement that accepted any spread"
        assert row["interval"] == {"from": "windows", "n": 3} and len(row["p99_latency_interval"]) == 2
    manifest = read_json(run / "manifest.json")
    assert (manifest["status"], manifest["exit_code"]) == ("unstable", 7)
    assert [p["point"] for p in manifest["unstable_points"]] == [1, 2]
    keeping = [a for a in manifest["attempts"] if a.get("keeps_unstable_point")]
    assert len(keeping) == 2 and all(a["argv"][-2:] == ["--stability-percentage", "1000"] for a in keeping)
    assert "(unstable)" in (run / "report.md").read_text()


# The quickstart's model, slowed down while a file named "chaos" exists beside it: each request
# sleeps 0.3 ms × (3^t − 1), t the seconds since the file appeared, capped at 3 ms. perf_analyzer
# closes a count window on a whole second, so its first three windows fall on a steep part of the
# ramp: their throughputs spread more than ±50 % whatever the machine's speed (a gentler slowdown,
# one that grew with the request count, settled within six 1-s windows: the point measured stable).
CHAOS_INITIALIZE = '''
    def initialize(self, args):
        import os

        self._chaos = os.path.join(args["model_repository"], "chaos")
        self._since = None
'''
CHAOS_EXECUTE = '''    def execute(self, requests):
        import os
        import time

        if os.path.exists(self._chaos):
            now = time.monotonic()
            self._since = self._since or now
            time.sleep(min(3e-3, 3e-4 * (3 ** (now - self._since) - 1)))
        else:
            self._since = None
'''


def _chaos_stack(make_stack: MakeStack) -> Path:
    stack = make_stack(QUICKSTART, "chaos")
    path = stack / "models" / "seed_model" / "1" / "model.py"
    text = path.read_text()
    marker, execute = "class TritonPythonModel:\n", "    def execute(self, requests):\n"
    assert marker in text and execute in text
    path.write_text(text.replace(marker, marker + CHAOS_INITIALIZE + "\n", 1).replace(execute, CHAOS_EXECUTE, 1))
    return stack


def test_a_sweep_resumes_at_the_unstable_point_and_merges_into_one_result(
    make_stack: MakeStack, run_root: Path
) -> None:
    stack = _chaos_stack(make_stack)
    chaos = stack / "models" / "seed_model" / "chaos"
    run = run_root / "RUN"
    # A loose criterion keeps the calm points stable on a busy machine; the slowed one is not: its
    # first three windows (--max-trials 3) lie on the ramp.
    proc = CliProcess(["lab", stack, "--images", "lab", "--concurrency", "1:3", "--measurement-requests", "300",
                       "--out", run, "--", "--stability-percentage", "50", "--max-trials", "3"], cwd=run_root)
    try:
        proc.wait_for_stderr(r"measuring at .*concurrency 2", timeout=120)
        chaos.touch()
        proc.wait_for_stderr(r"concurrency 2 not stable with windows of 300 requests: retry 1 of 3", timeout=120)
        chaos.unlink()
        result = proc.wait(timeout=240)
    finally:
        proc.kill()
        chaos.unlink(missing_ok=True)
    assert result.exit_code == 0, result

    manifest = read_json(run / "manifest.json")
    first, *retries = manifest["attempts"]
    assert (first["exit_code"], first["points"], first["measured"], first["unstable"]) == (0, [1, 2, 3], [1], 2)
    # One retry measures 2 and 3 once the model is calm again. On a loaded machine the test may remove
    # the chaos file a moment after that retry began, or a calm point may spread more than 50 %: then
    # a further retry resumes where the one before gave up, as the first did (seen once in CI).
    assert 1 <= len(retries) <= 3, retries
    for before, retry in zip([first, *retries], retries, strict=False):
        resumed_at = before["unstable"]
        assert retry["points"] == list(range(resumed_at, 4)), (before, retry)
        assert retry["argv"][retry["argv"].index("--concurrency-range") + 1] == f"{resumed_at}:3:1"
        # twice as long in time: at least twice the requests, more when a window filled less than a second
        assert retry["window"]["measurement_requests"] >= 2 * before["window"]["measurement_requests"]
    assert (retries[-1]["measured"][-1], retries[-1]["unstable"]) == (3, None)
    assert [p for a in manifest["attempts"] for p in a["measured"]] == [1, 2, 3]
    assert first["window"]["measurement_requests"] == 300

    # One result per point, in sweep order, everywhere results are read.
    assert [r["concurrency"] for r in read_json(run / "summary.json")["rows"]] == [1, 2, 3]
    assert [r["Concurrency"] for r in csv.DictReader((run / "perf_analyzer.csv").open())] == ["1", "2", "3"]
    experiments = read_json(run / "profile_export.json")["experiments"]
    assert [e["experiment"]["value"] for e in experiments] == [1, 2, 3]  # the unstable try of 2 is gone
    points = read_json(run / "server_metrics.json")["points"]
    assert [p["concurrency"] for p in points] == [1, 2, 3]
    assert not [w for p in points for w in p["warnings"]], points
    report = (run / "report.md").read_text()
    assert "## perf_analyzer attempts" in report
    assert not list(run.glob(".attempt-*")), sorted(p.name for p in run.iterdir())
