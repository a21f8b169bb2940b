"""Retrying the points perf_analyzer could not measure stably: planning, the spread it saw, and the
merge of several attempts' outputs into one run directory. Pure: perf_analyzer's runs are scripted
here from output it really printed (see the e2e test for real ones)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from bad_inputs import make_stack
from bench_settings import bench_settings
from pa_output import FIRST_UNSTABLE

from composer.analyzer.attempt_outputs import merge_csv, merge_exports, write_outputs
from composer.analyzer.attempts import (
    Attempt,
    AttemptResult,
    Spread,
    Window,
    first_attempt,
    next_attempt,
    run_attempts,
    settings_for_attempt,
    stability_percent,
    trial_spread,
    unstable_error,
    unstable_point,
    with_exports,
)
from composer.analyzer.perf_analyzer import BenchSettings, Outputs, explain_failure, perf_analyzer_argv
from composer.analyzer.results import parse_perf_csv
from composer.analyzer.verdict import Verdict
from composer.core.config import load_stack
from composer.core.errors import AnalyzerError
from composer.core.sweep import Sweep
from composer.engine.exec import ExecResult
from composer.runs.scraper import MetricsRecorder, _Mark

# perf_analyzer 2.51 -v, concurrency 1:3, the model slowed down during concurrency 2: exit code 0
TRUNCATED = """\
Request concurrency: 1
  Pass [1] throughput: 3240.61 infer/sec. Avg latency: 298 usec (std 964 usec).
  Pass [2] throughput: 2859.32 infer/sec. Avg latency: 340 usec (std 223 usec).
  Pass [3] throughput: 1972.51 infer/sec. Avg latency: 491 usec (std 216 usec).
  Client:
    Request count: 8493
Request concurrency: 2
  Pass [1] throughput: 1230.01 infer/sec. Avg latency: 1610 usec (std 8781 usec).
  Pass [2] throughput: 112.403 infer/sec. Avg latency: 17715 usec (std 3868 usec).
  Pass [3] throughput: 63.3286 infer/sec. Avg latency: 31563 usec (std 4332 usec).
Failed to obtain stable measurement within 3 measurement windows for concurrency 2. Please try to \
increase the --measurement-request-count.
Inferences/Second vs. Client Average Batch Latency
Concurrency: 1, throughput: 2666.4 infer/sec, latency 364 usec
"""
HEADER = "Concurrency,Inferences/Second,p50 latency,p99 latency"


def _settings(sweep: str = "1:3", **changes: Any) -> BenchSettings:
    start, end = (float(v) for v in sweep.split(":"))
    return bench_settings(sweep=Sweep("concurrency", start, end, 1), **changes)


def _csv(*points: int) -> str:
    return HEADER + "\n" + "".join(f"{p},{1000 * p},{100 * p},{200 * p}\n" for p in points)


# ------------------------------------------------------------------------------------- planning


@pytest.mark.parametrize(
    ("exit_code", "measured", "output", "expected"),
    [
        (0, [1, 2, 3], "", None),  # all measured
        (0, [1], TRUNCATED, 2.0),  # stopped at the unstable point, exit 0
        (2, [], FIRST_UNSTABLE, 1.0),  # the first point unstable
        (0, [1], "Measured latency went over the set limit of 5 msec.", None),  # -l: a chosen stop
        (99, [], "error: connection refused", None),  # another failure: not ours to retry
    ],
)
def test_the_unstable_point_is_the_first_one_not_measured(
    exit_code: int, measured: list[float], output: str, expected: float | None
) -> None:
    assert unstable_point([1.0, 2.0, 3.0], measured, exit_code, output) == expected


def test_a_retry_measures_the_rest_of_the_sweep_with_twice_the_window() -> None:
    first = first_attempt(_settings("1:4"))
    assert first == Attempt(1, Sweep("concurrency", 1, 4, 1), Window("count_windows", 200))
    retry = next_attempt(first, 3.0, retries=3)
    assert retry == Attempt(2, Sweep("concurrency", 3, 4, 1), Window("count_windows", 400), retry=1)
    assert retry.sweep.points() == [3.0, 4.0]
    settings = settings_for_attempt(_settings("1:4"), retry)
    assert (settings.sweep.argument(), settings.measurement_requests) == ("3:4:1", 400)


def test_time_windows_double_their_interval() -> None:
    first = first_attempt(_settings(measurement_requests=None, measurement_interval_ms=5000))
    retry = next_attempt(first, 1.0, retries=1)
    assert retry is not None and retry.window == Window("time_windows", 10000)
    settings = settings_for_attempt(_settings(), retry)
    assert (settings.measurement_interval_ms, settings.measurement_requests) == (10000, None)


def test_retries_stop_after_the_configured_number() -> None:
    attempt: Attempt | None = first_attempt(_settings())
    numbers = []
    while attempt is not None:
        numbers.append((attempt.number, attempt.window.size))
        attempt = next_attempt(attempt, 1.0, retries=3)
    assert numbers == [(1, 200), (2, 400), (3, 800), (4, 1600)]
    assert next_attempt(first_attempt(_settings()), 1.0, retries=0) is None


def test_the_spread_is_read_from_the_last_trials_of_the_unstable_point() -> None:
    spread = trial_spread(TRUNCATED)
    assert spread is not None
    assert spread.throughput == (63.3286, 1230.01)  # concurrency 2's trials, not concurrency 1's
    assert spread.latency_us == (1610, 31563)
    assert spread.throughput_pct == pytest.approx((1230.01 / 63.3286 - 1) * 100)
    assert trial_spread("Request concurrency: 1\n") is None


@pytest.mark.parametrize(
    ("args", "percent"),
    [
        ((), 10.0),
        (("--stability-percentage", "0.01"), 0.01),
        (("--stability-percentage=25",), 25.0),
        (("-s", "5"), 5.0),
    ],
)
def test_the_stability_criterion_comes_from_perf_analyzers_arguments(args: tuple[str, ...], percent: float) -> None:
    assert stability_percent(args) == percent


def test_the_final_failure_is_one_line_with_the_spread_and_what_to_change() -> None:
    attempts = [Attempt(n, Sweep("concurrency", 1, 1, 1), Window("count_windows", 200 * 2 ** (n - 1))) for n in (1, 2)]
    error = unstable_error("concurrency", 1.0, attempts, trial_spread(FIRST_UNSTABLE), ("-s", "0.01"), "")
    line = error.one_line()
    assert error.exit_code == 5
    assert "measurement not stable at concurrency 1 after 2 attempts, windows 200 requests → 400 requests" in line
    assert "3,025.1–3,317.8 infer/s (+9.7 %)" in line
    assert "295–324 µs (+9.8 %)" in line
    assert "its last 3 trials spread" in line and "perf_analyzer accepts +0.01 %" in line
    assert "--stability-percentage" in line and "\n" not in line


# ----------------------------------------------------------------------------- the attempt loop


class Scripted:
    """perf_analyzer's runs played back: each a (exit code, CSV points, output)."""

    def __init__(self, runs: Sequence[tuple[int, Sequence[int], str]]) -> None:
        self.runs = list(runs)
        self.argvs: list[list[str]] = []
        self.files: dict[str, bytes] = {}

    def outputs_of(self, attempt: Attempt) -> Outputs:
        return Outputs(f"/tmp/a{attempt.number}.csv", None)

    def execute(self, attempt: Attempt, argv: list[str], timeout_s: float) -> ExecResult:
        self.argvs.append(argv)
        code, points, output = self.runs.pop(0)
        if points:
            self.files[f"/tmp/a{attempt.number}.csv"] = _csv(*points).encode()
        return ExecResult(code, output)

    def fetch(self, path: str) -> bytes | None:
        return self.files.get(path)

    def failure(self, verdict: Verdict, output: str, timeout_s: float, elapsed_s: float) -> AnalyzerError:
        return explain_failure(verdict.exit_code, output, timeout_s, elapsed_s)


def _run(script: Scripted, settings: BenchSettings, retries: int = 3) -> tuple[list[AttemptResult], Any, list[str]]:
    """The attempts, the error --require-stable raises (None: every point settled), what was said."""
    said: list[str] = []
    results, gave_up = run_attempts(settings, retries, script, lambda r: None, said.append)
    failure = gave_up[0].error(settings.sweep.kind, settings.extra_args) if gave_up else None
    return results, failure, said


class WithExports(Scripted):
    """Scripted runs whose attempts also write a profile export."""

    def __init__(self, runs: Sequence[tuple[int, Sequence[int], str]]) -> None:
        super().__init__(runs)
        self.fetched: list[str] = []

    def outputs_of(self, attempt: Attempt) -> Outputs:
        return Outputs(f"/tmp/a{attempt.number}.csv", f"/tmp/a{attempt.number}.json")

    def execute(self, attempt: Attempt, argv: list[str], timeout_s: float) -> ExecResult:
        ran = super().execute(attempt, argv, timeout_s)
        self.files[f"/tmp/a{attempt.number}.json"] = b"export %d" % attempt.number
        return ran

    def fetch(self, path: str) -> bytes | None:
        self.fetched.append(path)
        return super().fetch(path)


def test_exports_are_fetched_after_the_sweep_each_for_its_attempt() -> None:
    script = WithExports([(0, [1], TRUNCATED), (0, [2, 3], "")])
    results, failure, _ = _run(script, _settings("1:3"))
    assert failure is None and [r.export for r in results] == [None, None]
    assert script.fetched == ["/tmp/a1.csv", "/tmp/a2.csv"]  # the sweep's decisions need the CSVs only
    assert [r.export for r in with_exports(results, script)] == [b"export 1", b"export 2"]


def test_an_attempt_that_wrote_no_csv_has_no_export_fetched() -> None:
    script = WithExports([(0, [], TRUNCATED)])
    results = [AttemptResult(first_attempt(_settings("1:1")), ("perf_analyzer",), 0, 1.0, None, None, (), None, None)]
    assert [r.export for r in with_exports(results, script)] == [None] and script.fetched == []


def _value(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_a_sweep_that_stopped_at_an_unstable_point_resumes_there_with_a_longer_window() -> None:
    script = Scripted([(0, [1], TRUNCATED), (0, [2, 3], "")])
    results, failure, said = _run(script, _settings("1:3"))
    assert failure is None
    assert [r.measured for r in results] == [(1.0,), (2.0, 3.0)]
    assert [_value(a, "--concurrency-range") for a in script.argvs] == ["1:3:1", "2:3:1"]
    # its slowest trial, 63.3 infer/s, kept a 200-request window open 4 s: the retry fills 8 s
    assert [_value(a, "--measurement-request-count") for a in script.argvs] == ["200", "506"]
    assert said == [
        "concurrency 2 not stable with windows of 200 requests: "
        "retry 1 of 3 measures concurrency 2–3 with windows of 506 requests (~8 s)"
    ]
    record = results[0].record()
    assert record["points"] == [1, 2, 3] and record["measured"] == [1] and record["unstable"] == 2
    assert record["spread"]["latency_us"] == [1610, 31563]
    window = {"mode": "count_windows", "measurement_requests": 506, "expected_seconds": 8}
    assert results[1].record()["window"] == window


def test_a_point_that_never_settles_fails_after_one_plus_three_attempts() -> None:
    # and is measured once more, any spread accepted, for its numbers (what --require-stable fails on)
    script = Scripted([(2, [], FIRST_UNSTABLE)] * 4 + [(0, [1], "")])
    results, failure, said = _run(script, _settings("1:1"))
    assert [r.exit_code for r in results] == [2, 2, 2, 2, 0]
    # 3,025 infer/s at its slowest: each window 1 s, then 2, 4 and 8 s; the keeping run as the last
    assert [r.attempt.window.size for r in results] == [200, 6050, 12100, 24200, 24200]
    assert [r.attempt.window.lasts_s for r in results] == [None, 2, 4, 8, 8]
    assert script.argvs[-1][-2:] == ["--stability-percentage", "1000"]
    assert "--stability-percentage" not in script.argvs[-2]
    assert results[-1].record()["keeps_unstable_point"] is True and results[-1].measured == (1.0,)
    assert len(said) == 4 and "any spread accepted" in said[-1]
    assert failure is not None
    assert "after 4 attempts, windows 200 requests → 24,200 requests (~8 s)" in failure.one_line()


def test_a_point_still_unstable_is_kept_and_the_sweep_goes_on_at_the_next_point() -> None:
    # concurrency 2 never settles (1 + 1 retry, then kept by a run that accepts any spread); 3 is
    # measured after it with the first window again
    script = Scripted([(0, [1], TRUNCATED), (2, [], FIRST_UNSTABLE), (0, [2], ""), (0, [3], "")])
    said: list[str] = []
    results, gave_up = run_attempts(_settings("1:3"), 1, script, lambda r: None, said.append)
    assert [r.measured for r in results] == [(1.0,), (), (2.0,), (3.0,)]
    assert [_value(a, "--concurrency-range") for a in script.argvs] == ["1:3:1", "2:3:1", "2:2:1", "3:3:1"]
    assert [_value(a, "--measurement-request-count") for a in script.argvs] == ["200", "506", "506", "200"]
    assert [(g.point, g.attempt, len(g.tried)) for g in gave_up] == [(2.0, 3, 2)]
    assert said[-1] == (
        "concurrency 2 kept as unstable after 2 attempt(s), with the numbers of its last windows; "
        "the sweep goes on at concurrency 3"
    )
    record = gave_up[0].record()
    assert record["point"] == 2 and record["attempts"] == 2 and record["kept_attempt"] == 3
    assert [w["measurement_requests"] for w in record["windows"]] == [200, 506]


def test_each_unstable_point_has_its_own_retries() -> None:
    # 1 kept after 1 + 1 attempts (and a keeping run that failed too: its trials are what is left);
    # 2 is unstable once too and gets its own retry, where it settles
    script = Scripted([(2, [], FIRST_UNSTABLE)] * 4 + [(0, [2], "")])
    results, gave_up = run_attempts(_settings("1:2"), 1, script, lambda r: None, lambda line: None)
    assert [(g.point, g.attempt) for g in gave_up] == [(1.0, 2)]
    assert [(r.attempt.number, r.attempt.retry, r.attempt.sweep.start, r.attempt.keeps) for r in results] == [
        (1, 0, 1, False),
        (2, 1, 1, False),
        (3, 2, 1, True),
        (4, 0, 2, False),
        (5, 1, 2, False),
    ]


def test_required_stability_ends_the_sweep_at_the_first_point_that_never_settles() -> None:
    script = Scripted([(0, [1], TRUNCATED), (2, [], FIRST_UNSTABLE)])
    results, gave_up = run_attempts(_settings("1:3"), 1, script, lambda r: None, print, keep_unstable=False)
    assert len(results) == 2 and not script.runs  # no keeping run, no point after it
    assert [(g.point, g.attempt) for g in gave_up] == [(2.0, 2)]


def test_attempts_are_numbered_from_where_a_repeat_starts() -> None:
    results, gave_up = run_attempts(_settings("1:1"), 3, Scripted([(0, [1], "")]), lambda r: None, print, 5)
    assert [r.attempt.number for r in results] == [5] and gave_up == []


def test_zero_retries_fail_at_once_and_say_why() -> None:
    results, failure, _ = _run(Scripted([(2, [], FIRST_UNSTABLE)]), _settings("1:1"), retries=0)
    assert len(results) == 1
    assert failure is not None and "analyzer.stability_retries is 0" in failure.one_line()


def test_no_retry_starts_when_the_deadline_leaves_too_little_time() -> None:
    results, failure, _ = _run(Scripted([(2, [], FIRST_UNSTABLE)]), _settings("1:1", timeout_s=3))
    assert len(results) == 1
    assert failure is not None and "analyzer.timeout 3 s left no time" in failure.one_line()


# A console script that drops perf_analyzer's status (pip's perf-analyzer, NGC's sdk from 25.09):
# every run exits 0, and each is judged by its CSV and its own lines instead.
SHAPE_ERROR = (
    'error: Failed to init manager inputs: The variable-sized tensor "age" with model shape [-1] needs to '
    "have its shape fully defined. See the --shape option.\n"
)


def test_with_every_status_0_an_unstable_first_point_is_still_retried() -> None:
    script = Scripted([(0, [], FIRST_UNSTABLE), (0, [1], "")])
    results, failure, said = _run(script, _settings("1:1"))
    assert failure is None
    assert [(r.exit_code, r.unstable, r.measured) for r in results] == [(0, 1.0, ()), (0, None, (1.0,))]
    assert said[0].startswith("perf_analyzer exited 0 but wrote no CSV and printed 'Failed to obtain stable")
    assert said[1].startswith("concurrency 1 not stable with windows of 200 requests: retry 1 of 3")
    record = results[0].record()
    assert (record["exit_code"], record["judged_exit_code"]) == (0, 2)
    assert "judged by its output" in record["exit_status_note"]
    assert "judged_exit_code" not in results[1].record(), "status and evidence agree"


def test_with_every_status_0_a_point_that_never_settles_still_fails_after_four_attempts() -> None:
    results, failure, said = _run(Scripted([(0, [], FIRST_UNSTABLE)] * 5), _settings("1:1"))
    assert len(results) == 5 and failure is not None
    assert "measurement not stable at concurrency 1 after 4 attempts" in failure.one_line()
    assert len([line for line in said if "judged by its output" in line]) == 5


def test_with_every_status_0_a_failed_run_raises_perf_analyzers_reason() -> None:
    script = Scripted([(0, [], SHAPE_ERROR)])
    said: list[str] = []
    with pytest.raises(AnalyzerError) as raised:
        run_attempts(_settings("1:1"), 3, script, lambda r: None, said.append)
    assert raised.value.message == f"perf_analyzer: {SHAPE_ERROR.strip()}"
    assert said == [
        "perf_analyzer exited 0 but wrote no CSV and printed an error "
        "(its console script drops the status: judged by its output)"
    ]


def test_a_failure_perf_analyzer_reports_itself_raises_with_its_status() -> None:
    no_server = "error: failed to get model metadata: HTTP client failed"
    with pytest.raises(AnalyzerError) as raised:
        _run(Scripted([(99, [], no_server + "\n")]), _settings("1:1"))
    assert raised.value.message == f"perf_analyzer failed (exit 99): {no_server}"


# ------------------------------------------------------------------------------ merged outputs


def _experiment(value: int, n: int) -> dict[str, Any]:
    requests = [
        {"timestamp": i, "request_inputs": {"x": "é"}, "response_timestamps": [i + 5], "response_outputs": [{}]}
        for i in range(n)
    ]
    return {"experiment": {"mode": "concurrency", "value": value}, "requests": requests, "window_boundaries": [0, 9]}


def _write_export(path: Path, *experiments: dict[str, Any]) -> Path:
    doc = {"experiments": list(experiments), "version": "2.51", "service_kind": "triton", "endpoint": ""}
    path.write_text(json.dumps(doc, separators=(",", ":")))
    return path


def test_csvs_merge_into_one_table_in_sweep_order() -> None:
    merged = merge_csv([_csv(2, 1), _csv(4, 3)])
    assert [r.value for r in parse_perf_csv(merged)] == [1, 2, 3, 4]
    assert merged.splitlines()[0] == HEADER
    assert [line.split(",")[0] for line in merged.splitlines()[1:]] == ["1", "2", "3", "4"]


def test_exports_merge_keeping_only_the_measured_experiments(tmp_path: Path) -> None:
    first = _write_export(tmp_path / "a.json", _experiment(1, 3), _experiment(2, 2))  # 2: the unstable one
    second = _write_export(tmp_path / "b.json", _experiment(2, 4), _experiment(3, 1))
    merge_exports([(first, [1.0]), (second, [2.0, 3.0])], tmp_path / "out.json")
    doc = json.loads((tmp_path / "out.json").read_text())
    assert doc == {
        "experiments": [_experiment(1, 3), _experiment(2, 4), _experiment(3, 1)],
        "version": "2.51",
        "service_kind": "triton",
        "endpoint": "",
    }


def _result(number: int, sweep: str, measured: Sequence[int], export: bytes | None) -> AttemptResult:
    start, end = (float(v) for v in sweep.split(":"))
    attempt = Attempt(number, Sweep("concurrency", start, end, 1), Window("count_windows", 200 * number))
    csv = _csv(*measured) if measured else None
    return AttemptResult(attempt, ("perf_analyzer",), 0, 1.0, csv, export, tuple(map(float, measured)), None, None)


def test_a_lone_complete_attempt_keeps_its_export_byte_for_byte(tmp_path: Path) -> None:
    raw = _write_export(tmp_path / "x.json", _experiment(1, 2)).read_bytes()
    run = tmp_path / "run"
    run.mkdir()
    write_outputs(run, [_result(1, "1:1", [1], raw)])
    assert (run / "profile_export.json").read_bytes() == raw


def test_attempts_write_one_csv_and_one_export_and_leave_no_part_behind(tmp_path: Path) -> None:
    a = _write_export(tmp_path / "a.json", _experiment(1, 1), _experiment(2, 1)).read_bytes()
    b = _write_export(tmp_path / "b.json", _experiment(2, 2)).read_bytes()
    run = tmp_path / "run"
    run.mkdir()
    text = write_outputs(run, [_result(1, "1:2", [1], a), _result(2, "2:2", [2], b)])
    assert text is not None and [r.value for r in parse_perf_csv(text)] == [1, 2]
    doc = json.loads((run / "profile_export.json").read_text())
    assert [len(e["requests"]) for e in doc["experiments"]] == [1, 2]
    assert sorted(p.name for p in run.iterdir()) == ["perf_analyzer.csv", "profile_export.json"]


def test_a_discarded_measurement_is_no_metrics_point() -> None:
    recorder = MetricsRecorder("http://127.0.0.1:9/metrics", "m", "concurrency")
    before = 'nv_inference_request_success{model="m",version="1"} 0\n'
    after = 'nv_inference_request_success{model="m",version="1"} 10\n'
    for text in (before, before, after, after):
        recorder.marks.append(_Mark("x", 0.0, text))
    points = recorder.points([1.0, None, 2.0])
    assert [p["concurrency"] for p in points] == [1, 2]


def test_stability_retries_default_to_three_and_read_from_stack_yaml(tmp_path: Path) -> None:
    assert load_stack(make_stack(tmp_path, name="a")).analyzer.stability_retries == 3
    stack = make_stack(tmp_path, "model: seed_model\nanalyzer:\n  stability_retries: 0\n", name="b")
    assert load_stack(stack).analyzer.stability_retries == 0


def test_perf_analyzer_prints_its_trials_once_verbose_never_extra_verbose() -> None:
    assert perf_analyzer_argv(_settings(), Outputs("/tmp/x.csv", None)).count("-v") == 1
    assert perf_analyzer_argv(_settings(extra_args=("-v",)), Outputs("/tmp/x.csv", None)).count("-v") == 1


def test_a_fast_models_count_window_grows_to_twice_its_seconds() -> None:
    """perf_analyzer closes count windows on whole seconds: at 3,000 infer/s a 200-request window
    lasts 1 s, and so would 400 or 1,600. A retry fills 2 s, then 4, then 8 (CI's slow_loading case)."""
    spread = Spread((2948.1, 3435.4), (284, 333), 3)
    attempt: Attempt | None = first_attempt(_settings())
    seen = []
    while attempt is not None:
        seen.append((attempt.window.size, attempt.window.lasts_s))
        attempt = next_attempt(attempt, 1.0, retries=3, spread=spread)
    assert seen == [(200, None), (5896, 2), (11792, 4), (23584, 8)]
    assert Window("count_windows", 6383, 2).describe() == "6,383 requests (~2 s)"


def test_a_slow_models_count_window_just_doubles() -> None:
    slow = Spread((9.0, 11.0), (90_000, 110_000), 3)  # 200 requests take 20 s already
    retry = next_attempt(first_attempt(_settings()), 1.0, retries=3, spread=slow)
    assert retry is not None and retry.window == Window("count_windows", 414, 46)  # 200 at 9/s: 23 s, then 46


def test_a_retry_whose_longer_windows_outgrow_the_export_budget_runs_without_it() -> None:
    script = WithExports([(0, [1], TRUNCATED), (0, [2, 3], "")])
    # 8,000 values a request: the retry, 2 points at 506-request windows, projects 618 MB (the first
    # attempt is sized before the run starts, where the bench builds its argv)
    results, failure, said = _run(script, _settings("1:3", profile_export=True, values_per_request=8000))
    assert failure is None
    first, retry = script.argvs
    assert "--profile-export-file" in first and "--profile-export-file" not in retry
    assert said[1].startswith("retry 1: profile export left out: it would hold ~618 MB")
    assert [r.export for r in with_exports(results, script)] == [b"export 1", None]
    assert script.fetched == ["/tmp/a1.csv", "/tmp/a2.csv", "/tmp/a1.json"]
