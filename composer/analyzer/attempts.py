"""Attempts of one sweep: the points perf_analyzer could not measure stably are measured again
with a window twice as long, as Model Analyzer does, until they settle or the retries run out.

perf_analyzer runs a whole sweep in one process and stops at its first unstable point: with exit
code 2 when that is the sweep's first point, otherwise with exit code 0 and the CSV rows of the
points before it (its profile export still holds the unstable experiment). A retry reruns the
points not yet measured, starting at the unstable one. Each run is judged by what it left
(composer.analyzer.verdict), so this holds where a console script turns every status into 0.
Pure planning; composer.labs.bench runs them.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from composer.analyzer import export_size
from composer.analyzer.perf_analyzer import SEQUENCE_ID_SPAN, BenchSettings, Outputs, perf_analyzer_argv
from composer.analyzer.trials import final_trials
from composer.analyzer.verdict import STABILITY_FAILED, Verdict, judge_run
from composer.core.errors import AnalyzerError
from composer.core.sweep import Sweep, missing_points, same_point
from composer.engine.exec import ExecResult

DEFAULT_RETRIES = 3
KEEP_PERCENT = "1000"  # perf_analyzer's --stability-percentage for a keeping attempt: any three windows pass
_DEFAULT_PERCENT = 10.0
_PERCENT_FLAG = re.compile(r"^(?:--stability-percentage|-s)(?:=(.+))?$")


@dataclass(frozen=True)
class Window:
    """One measurement window: requests per window (count_windows) or its length in ms (time_windows)."""

    mode: str
    size: int
    lasts_s: int | None = None  # a count window's expected length, once a run has shown the throughput

    def doubled(self, throughput: float | None = None) -> Window:
        """A window twice as long in time. perf_analyzer closes a count window on the first whole second
        at which it holds enough requests, so a fast model's 200- and 1,600-request windows both last
        1 s: doubling the count alone lengthens nothing. With the slowest throughput its trials saw, the
        count grows to fill twice the seconds the last window lasted."""
        if self.mode != "count_windows" or not throughput or throughput <= 0:
            return Window(self.mode, self.size * 2)
        lasted = self.lasts_s or max(1, math.ceil(self.size / throughput))
        return Window(self.mode, max(self.size * 2, math.floor(throughput * lasted * 2)), lasted * 2)

    def describe(self) -> str:
        if self.mode != "count_windows":
            return f"{self.size} ms"
        return f"{self.size:,} requests" + (f" (~{self.lasts_s} s)" if self.lasts_s else "")

    def record(self) -> dict[str, Any]:
        key = "measurement_requests" if self.mode == "count_windows" else "measurement_interval_ms"
        lasts = {} if self.lasts_s is None else {"expected_seconds": self.lasts_s}
        return {"mode": self.mode, key: self.size, **lasts}


@dataclass(frozen=True)
class Attempt:
    number: int  # 1 is the first run, 2 the next (a retry, or the sweep going on past a point kept unstable)
    sweep: Sweep  # the points this run measures
    window: Window
    retry: int = 0  # 0: its first point's first measurement; k: the k-th retry of that point
    keeps: bool = False  # the last measurement of a point that never settled: any spread accepted

    @property
    def remeasures(self) -> bool:
        """Whether it measures its first point again (the earlier measurement is discarded)."""
        return self.retry > 0


def window_of(settings: BenchSettings) -> Window:
    if settings.measurement_interval_ms is not None:
        return Window("time_windows", settings.measurement_interval_ms)
    return Window("count_windows", int(settings.measurement_requests or 0))


def settings_for_attempt(settings: BenchSettings, attempt: Attempt) -> BenchSettings:
    """The bench settings of one attempt: its points and its window."""
    timed = attempt.window.mode == "time_windows"
    sequence_ids = settings.sequence_ids
    if sequence_ids is not None:  # each attempt its own ids: the sequences an earlier one left open stay apart
        sequence_ids += (attempt.number - 1) * SEQUENCE_ID_SPAN
    extra = (*settings.extra_args, "--stability-percentage", KEEP_PERCENT) if attempt.keeps else settings.extra_args
    return replace(
        settings,
        sweep=attempt.sweep,
        measurement_interval_ms=attempt.window.size if timed else None,
        measurement_requests=None if timed else attempt.window.size,
        sequence_ids=sequence_ids,
        extra_args=extra,
    )


def keeping_attempt(attempt: Attempt, point: float, tried: int) -> Attempt:
    """One more measurement of ``point`` alone, with the last window, accepting whatever spread its
    windows show: perf_analyzer writes its full numbers (CSV row, export) only for a point it calls
    stable, so the point is made to count as one, and tisbench marks it unstable."""
    sweep = replace(attempt.sweep, start=point, end=point)
    return Attempt(attempt.number + 1, sweep, attempt.window, tried, keeps=True)


def export_left_out(settings: BenchSettings, attempt: Attempt) -> str | None:
    """Why this attempt leaves the profile export out (its projected size), or None to ask for it."""
    if not settings.profile_export or settings.values_per_request is None:
        return None
    window = attempt.window
    points = len(attempt.sweep.points())
    projected = export_size.projected_bytes(settings.values_per_request, window.mode, window.size, points)
    return export_size.left_out(projected)


def first_attempt(settings: BenchSettings) -> Attempt:
    return Attempt(1, settings.sweep, window_of(settings))


def unstable_point(asked: Sequence[float], measured: Sequence[float], exit_code: int, output: str) -> float | None:
    """The point perf_analyzer gave up on as unstable (the first one not measured), or None.
    ``exit_code`` is the run's judged status (composer.analyzer.verdict), not only the reported one."""
    if exit_code not in (0, 2) or (exit_code == 0 and STABILITY_FAILED not in output):
        return None  # a success, a latency limit reached (-l), or a failure of another kind
    missing = missing_points(asked, measured)
    return missing[0] if missing else None


def next_attempt(attempt: Attempt, unstable: float, retries: int, spread: Spread | None = None) -> Attempt | None:
    """The retry after ``attempt``: the points from ``unstable`` on, the window twice as long (in time,
    from the throughput its trials showed); None when ``retries`` are used up."""
    if attempt.retry >= retries:
        return None
    sweep = replace(attempt.sweep, start=unstable)
    window = attempt.window.doubled(spread.throughput[0] if spread else None)
    return Attempt(attempt.number + 1, sweep, window, attempt.retry + 1)


@dataclass(frozen=True)
class Spread:
    """perf_analyzer's last trials of one point: max/min − 1 of throughput and latency, in %."""

    throughput: tuple[float, float]
    latency_us: tuple[int, int]
    trials: int

    @property
    def throughput_pct(self) -> float:
        low, high = self.throughput
        return (high / low - 1) * 100 if low > 0 else math.inf

    @property
    def latency_pct(self) -> float:
        low, high = self.latency_us
        return (high / low - 1) * 100 if low > 0 else math.inf


def trial_spread(output: str) -> Spread | None:
    """The spread of the last point perf_analyzer measured, from its -v trial lines."""
    trials = final_trials(output)
    if not trials:
        return None
    throughputs = [t.throughput for t in trials]
    latencies = [t.latency_us for t in trials]
    return Spread((min(throughputs), max(throughputs)), (min(latencies), max(latencies)), len(trials))


def stability_percent(args: Sequence[str]) -> float:
    """The stability criterion perf_analyzer applies: its default, or the last -s/--stability-percentage."""
    percent = _DEFAULT_PERCENT
    items = list(args)
    for index, arg in enumerate(items):
        match = _PERCENT_FLAG.match(arg)
        if not match:
            continue
        text = match.group(1) if match.group(1) is not None else (items[index + 1] if index + 1 < len(items) else "")
        try:
            percent = float(text)
        except ValueError:
            pass
    return percent


def unstable_error(
    kind: str, point: float, attempts: Sequence[Attempt], spread: Spread | None, args: Sequence[str], reason: str
) -> AnalyzerError:
    """The final failure: where, how many attempts with which windows, the spread seen, what to change."""
    first, last = attempts[0].window.describe(), attempts[-1].window.describe()
    tried = f"{len(attempts)} attempts, windows {first} → {last}" if len(attempts) > 1 else f"1 attempt, window {first}"
    seen = (
        f"its last {spread.trials} trials spread {spread.throughput[0]:,.1f}–{spread.throughput[1]:,.1f} infer/s "
        f"(+{spread.throughput_pct:.1f} %) and {spread.latency_us[0]:,}–{spread.latency_us[1]:,} µs "
        f"(+{spread.latency_pct:.1f} %)"
        if spread
        else "perf_analyzer printed no trial lines"
    )
    return AnalyzerError(
        f"perf_analyzer: measurement not stable at {kind.replace('_', ' ')} {point:g} after {tried}{reason}: "
        f"{seen}; perf_analyzer accepts +{stability_percent(args):g} %",
        "run on a quieter machine, measure longer (--measurement-requests or --measurement-interval; "
        "analyzer.stability_retries doubles it per retry), or accept more spread "
        "(-- --stability-percentage 25)",
    )


MIN_ATTEMPT_S = 5.0  # a retry needs at least this much of the deadline left to start


@dataclass(frozen=True)
class AttemptResult:
    """What one perf_analyzer run of the sweep gave."""

    attempt: Attempt
    argv: tuple[str, ...]
    exit_code: int  # as reported; ``verdict`` holds the status it was judged to have
    seconds: float
    csv: str | None  # its CSV (the points it measured), None when it wrote none
    export: bytes | None  # its profile export (with_exports fetches it), with the unstable point too
    measured: tuple[float, ...]
    unstable: float | None
    spread: Spread | None
    verdict: Verdict | None = None

    @property
    def complete(self) -> bool:
        """Every point it was asked for is in its CSV (so its export holds nothing else)."""
        asked = self.attempt.sweep.points()
        return len(asked) == len(self.measured) and not missing_points(asked, self.measured)

    def record(self) -> dict[str, Any]:
        """Its entry in the manifest's ``attempts``."""
        judged: dict[str, Any] = {}
        if self.verdict is not None and self.verdict.note:
            judged = {"judged_exit_code": self.verdict.exit_code, "exit_status_note": self.verdict.note}
        return {
            "attempt": self.attempt.number,
            **({"keeps_unstable_point": True} if self.attempt.keeps else {}),
            "argv": list(self.argv),
            "exit_code": self.exit_code,
            **judged,
            "seconds": round(self.seconds, 3),
            "window": self.attempt.window.record(),
            "points": [_plain(p) for p in self.attempt.sweep.points()],
            "measured": [_plain(p) for p in self.measured],
            "unstable": None if self.unstable is None else _plain(self.unstable),
            "spread": None
            if self.spread is None
            else {
                "throughput_infer_per_sec": list(self.spread.throughput),
                "latency_us": list(self.spread.latency_us),
                "throughput_pct": round(self.spread.throughput_pct, 2),
                "latency_pct": round(self.spread.latency_pct, 2),
            },
        }


def _plain(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


class Runner(Protocol):
    """The side of run_attempts that runs perf_analyzer (composer.labs.analyzer_execs.AnalyzerExecs)."""

    def outputs_of(self, attempt: Attempt) -> Outputs:
        """The files one attempt writes."""

    def execute(self, attempt: Attempt, argv: list[str], timeout_s: float) -> ExecResult:
        """Run argv within a timeout, whatever its exit status; raises only when it cannot run."""

    def fetch(self, path: str) -> bytes | None:
        """A file perf_analyzer wrote, None when it wrote none."""

    def failure(self, verdict: Verdict, output: str, timeout_s: float, elapsed_s: float) -> AnalyzerError:
        """The error of a run judged failed: the lab's, when it lost a container, else perf_analyzer's."""


@dataclass(frozen=True)
class GaveUp:
    """A point perf_analyzer never called stable: kept with what its last attempt measured."""

    point: float
    attempt: int  # the attempt whose measurement of the point is kept
    tried: tuple[Attempt, ...]  # every attempt at it, the first one included
    spread: Spread | None
    reason: str  # why no further retry: "" (retries used up), or what stopped them

    def error(self, kind: str, args: Sequence[str]) -> AnalyzerError:
        """The failure to raise where stability is required (--require-stable)."""
        return unstable_error(kind, self.point, self.tried, self.spread, args, self.reason)

    def record(self) -> dict[str, Any]:
        return {
            "point": _plain(self.point),
            "kept_attempt": self.attempt,
            "attempts": len(self.tried),
            "windows": [a.window.record() for a in self.tried],
            "throughput_spread_pct": None if self.spread is None else round(self.spread.throughput_pct, 2),
            "latency_spread_pct": None if self.spread is None else round(self.spread.latency_pct, 2),
            **({"stopped": self.reason.strip(" ()")} if self.reason else {}),
        }


def point_after(sweep: Sweep, value: float) -> float | None:
    """The sweep's point after ``value``, None at its end."""
    later = [p for p in sweep.points() if p > value and not same_point(p, value)]
    return later[0] if later else None


def run_attempts(
    settings: BenchSettings,
    retries: int,
    runner: Runner,
    on_result: Callable[[AttemptResult], None],
    say: Callable[[str], None],
    first_number: int = 1,
    keep_unstable: bool = True,
) -> tuple[list[AttemptResult], list[GaveUp]]:
    """Run the sweep, retry from each unstable point, and go on past a point still unstable when the
    retries are used up (kept, with its numbers), all within ``settings.timeout_s``. Attempts are
    numbered from ``first_number``. Returns every attempt and the points kept unstable; without
    ``keep_unstable`` (--require-stable) the first such point ends the sweep, measured no more."""
    deadline = time.monotonic() + settings.timeout_s
    attempt = Attempt(first_number, settings.sweep, window_of(settings))
    results: list[AttemptResult] = []
    gave_up: list[GaveUp] = []
    tried: list[Attempt] = []
    kind = settings.sweep.kind.replace("_", " ")
    while True:
        result = _run_one(settings, attempt, deadline, runner, say)
        results.append(result)
        on_result(result)
        if result.unstable is None:
            return results, gave_up
        again = tried and results[-2].unstable is not None and same_point(results[-2].unstable, result.unstable)
        tried = [*tried, attempt] if again else [attempt]
        following = next_attempt(replace(attempt, retry=len(tried) - 1), result.unstable, retries, result.spread)
        reason = " (analyzer.stability_retries is 0)" if retries == 0 else ""
        if following is not None and deadline - time.monotonic() < MIN_ATTEMPT_S:
            following, reason = None, f" (analyzer.timeout {settings.timeout_s:g} s left no time for more)"
        if following is None and not keep_unstable:
            return results, [GaveUp(result.unstable, attempt.number, tuple(tried), result.spread, reason)]
        if following is None:
            kept, keeping = _keep(settings, attempt, result, tuple(tried), reason, deadline, runner, say)
            gave_up.append(kept)
            if keeping is not None:
                results.append(keeping)
                on_result(keeping)
            after = point_after(settings.sweep, result.unstable)
            if after is None or deadline - time.monotonic() < MIN_ATTEMPT_S:
                return results, gave_up
            say(
                f"{kind} {result.unstable:g} kept as unstable after {len(tried)} attempt(s){reason}, "
                f"with the numbers of its last windows; the sweep goes on at {kind} {after:g}"
            )
            number = results[-1].attempt.number + 1
            attempt, tried = Attempt(number, replace(settings.sweep, start=after), window_of(settings)), []
            continue
        sweep, window = following.sweep, following.window.describe()
        points = f"{sweep.start:g}" if same_point(sweep.start, sweep.end) else f"{sweep.start:g}–{sweep.end:g}"
        say(
            f"{kind} {result.unstable:g} not stable with windows of {attempt.window.describe()}: "
            f"retry {len(tried)} of {retries} measures {kind} {points} with windows of {window}"
        )
        attempt = following


def _keep(
    settings: BenchSettings,
    attempt: Attempt,
    result: AttemptResult,
    tried: tuple[Attempt, ...],
    reason: str,
    deadline: float,
    runner: Runner,
    say: Callable[[str], None],
) -> tuple[GaveUp, AttemptResult | None]:
    """A point that never settled: measured once more to keep its full numbers where retries were
    allowed and time is left (with that attempt's result), else kept with what its trials showed."""
    point = float(result.unstable if result.unstable is not None else attempt.sweep.start)
    if reason or deadline - time.monotonic() < MIN_ATTEMPT_S:
        return GaveUp(point, attempt.number, tried, result.spread, reason), None
    say(
        f"{settings.sweep.kind.replace('_', ' ')} {point:g} never settled: measured once more with windows "
        f"of {attempt.window.describe()}, any spread accepted, to keep its numbers"
    )
    keeping = keeping_attempt(attempt, point, len(tried))
    kept = _run_one(settings, keeping, deadline, runner, say)
    number = keeping.number if kept.measured else attempt.number
    return GaveUp(point, number, tried, result.spread, reason), kept


def _run_one(
    settings: BenchSettings, attempt: Attempt, deadline: float, runner: Runner, say: Callable[[str], None]
) -> AttemptResult:
    from composer.analyzer.results import parse_perf_csv

    outputs = runner.outputs_of(attempt)
    if outputs.profile_export and attempt.number > 1:  # a retry's longer windows may outgrow the budget
        note = export_left_out(settings, attempt)
        if note:
            say(f"retry {attempt.number - 1}: {note}")
            outputs = replace(outputs, profile_export=None)
    argv = perf_analyzer_argv(settings_for_attempt(settings, attempt), outputs)
    began = time.monotonic()
    timeout_s = max(1.0, deadline - began)
    run = runner.execute(attempt, argv, timeout_s)
    data = runner.fetch(outputs.csv) if run.exit_code == 0 else None
    csv_text = data.decode("utf-8", errors="replace") if data else None
    measured = tuple(row.value for row in parse_perf_csv(csv_text)) if csv_text else None
    verdict = judge_run(run.exit_code, run.output, attempt.sweep.points(), measured)
    if verdict.note:
        say(verdict.note)
    if verdict.failed or verdict.exit_code is None:
        raise runner.failure(verdict, run.output, timeout_s, time.monotonic() - began)
    unstable = unstable_point(attempt.sweep.points(), measured or (), verdict.exit_code, run.output)
    spread = trial_spread(run.output) if unstable is not None else None
    seconds = time.monotonic() - began
    return AttemptResult(
        attempt, tuple(argv), run.exit_code, seconds, csv_text, None, measured or (), unstable, spread, verdict
    )


def with_exports(results: Sequence[AttemptResult], runner: Runner) -> list[AttemptResult]:
    """Each attempt with its profile export, fetched once the sweep is over: only the analyzer
    holds them, so the lab's server can be on its way out meanwhile."""
    fetched = []
    for result in results:
        path = runner.outputs_of(result.attempt).profile_export
        export = runner.fetch(path) if result.csv and path and path in result.argv else None  # asked for
        fetched.append(replace(result, export=export))
    return fetched
