"""A benchmark's sweeps (one, or N with --repeat) → the run directory's perf_analyzer files and
its summary rows, every point kept: stable points from perf_analyzer's CSV, points it never called
stable with their own numbers (marked), each row with its interval.

Repeats run one whole sweep after another (points A B C A B C), so drift hits every point alike;
the first repeat's files are the run's own (perf_analyzer.csv, profile_export.json), repeat r's
lie under repeats/repeat-r/. With one repeat a row's interval is its windows' range; with N, the
95 % confidence interval of the mean of the repeats.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from composer.analyzer.attempt_outputs import write_outputs
from composer.analyzer.attempts import AttemptResult, GaveUp, Runner, run_attempts
from composer.analyzer.noise import kept_rows, pooled_rows, with_intervals
from composer.analyzer.perf_analyzer import BenchSettings, sweep_points
from composer.analyzer.results import SummaryRow, summary_dict, summary_rows
from composer.core.errors import AnalyzerError
from composer.core.fsutil import write_json
from composer.core.run_dir import RunDir
from composer.labs.request import BenchRequest
from composer.labs.run_manifest import mark_status
from composer.runs.scraper import ClientCount, MetricsRecorder

if TYPE_CHECKING:
    from composer.labs.analyzer_execs import AnalyzerExecs


@dataclass(frozen=True)
class Repeat:
    number: int  # 1…N
    results: list[AttemptResult]
    gave_up: list[GaveUp]
    log: str  # its part of the analyzer log (perf_analyzer's trial lines)
    variant: int = 0  # which transport of the run (0: the first, or the only one)
    label: str = ""  # its name, e.g. "grpc+system shm"

    def records(self, repeats: int) -> list[dict[str, Any]]:
        """The manifest's ``unstable_points`` entries of this repeat."""
        where: dict[str, Any] = {"repeat": self.number} if repeats > 1 else {}
        where.update({"transport": self.label} if self.label else {})
        return [{**g.record(), **where} for g in self.gave_up]

    def place(self, files: RunDir) -> RunDir:
        """Where its perf_analyzer files go: the first transport's first repeat is the run itself."""
        if self.variant == 0:
            return files.repeat(self.number)
        return RunDir(files.path / TRANSPORTS / self.label.replace("+", "-").replace(" ", "_")).repeat(self.number)


TRANSPORTS = "transports"


def run_repeats(
    variants: Sequence[tuple[str, BenchSettings]],
    retries: int,
    repeats: int,
    runner: Runner,
    on_result: Callable[[AttemptResult], None],
    say: Callable[[str], None],
    log_text: Callable[[], str],
    keep_unstable: bool = True,
) -> list[Repeat]:
    """The sweep ``repeats`` times for each of ``variants`` (label, settings: the transports compared),
    interleaved (A B A B: drift hits each alike), each with its attempts (numbered on across them,
    so each has its own files and sequence ids) and its own ``settings.timeout_s``. ``log_text``
    reads the analyzer log written so far; without ``keep_unstable`` the first point that never
    settles ends them."""
    done: list[Repeat] = []
    number = 1
    for index in range(1, repeats + 1):
        for variant, (label, settings) in enumerate(variants):
            what = f"{settings.sweep.kind.replace('_', ' ')} {settings.sweep.argument()}"
            if repeats > 1 or len(variants) > 1:
                say(f"{f'repeat {index} of {repeats}: ' if repeats > 1 else ''}{label + ', ' if label else ''}{what}")
            before = len(log_text())
            results, gave_up = run_attempts(settings, retries, runner, on_result, say, number, keep_unstable)
            done.append(Repeat(index, results, gave_up, log_text()[before:], variant, label))
            if gave_up and not keep_unstable:
                return done  # --require-stable: the run fails at its first unstable point
            number = results[-1].attempt.number + 1
    return done


def repeat_rows(files: RunDir, repeat: Repeat, sweep: str, with_responses: bool) -> list[SummaryRow]:
    """One repeat's files written to its place in the run directory, and its rows (points kept
    unstable included), each with its within-run interval."""
    where = repeat.place(files)
    where.path.mkdir(parents=True, exist_ok=True)
    csv = write_outputs(where.path, repeat.results, {g.attempt: g.point for g in repeat.gave_up})
    if csv is None and not repeat.gave_up:
        raise AnalyzerError("perf_analyzer wrote no CSV", f"see {files.analyzer_log}")
    rows = summary_rows(csv, where.profile_export, with_responses=with_responses) if csv else []
    kept = {g.point: {k: v for k, v in g.record().items() if k != "point"} for g in repeat.gave_up}
    rows = kept_rows(rows, kept, sweep, where.profile_export, repeat.log)
    return with_intervals(rows, where.profile_export, repeat.log)


def variants(
    settings: BenchSettings, protocols: Sequence[str], memories: Sequence[str]
) -> list[tuple[str, BenchSettings]]:
    """The transports one lab compares, at the same sweep points: every protocol with every kind of
    shared memory asked (one: the run as it is, unlabelled)."""
    combos = [(p, m) for p in protocols or (settings.protocol,) for m in memories or (settings.shared_memory,)]
    if len(combos) == 1:
        protocol, memory = combos[0]
        return [("", replace(settings, protocol=protocol, shared_memory=memory))]
    return [
        (
            protocol + ("" if memory == "none" else f"+{memory} shm"),
            replace(
                settings,
                protocol=protocol,
                shared_memory=memory,
                output_shm_bytes=None if memory == "none" else settings.output_shm_bytes,
            ),
        )
        for protocol, memory in combos
    ]


def run_rows(files: RunDir, repeats: Sequence[Repeat], sweep: str, with_responses: bool) -> list[list[SummaryRow]]:
    """The run's summary rows per transport: the one repeat's, or the repeats pooled."""
    out = []
    for variant in sorted({r.variant for r in repeats}):
        mine = [r for r in repeats if r.variant == variant]
        per_repeat = [repeat_rows(files, r, sweep, with_responses) for r in mine]
        out.append(per_repeat[0] if len(per_repeat) == 1 else pooled_rows(per_repeat))
    return out


def run_summary(
    files: RunDir, repeats: Sequence[Repeat], model: str, release: str, sweep: str, with_responses: bool
) -> dict[str, Any]:
    """summary.json's body: the rows (the first transport's, when several are compared, each of
    them then under ``transports``), and ``repeats`` with --repeat."""
    rows, *others = run_rows(files, repeats, sweep, with_responses)
    summary = summary_dict(model, release, rows)
    if others:
        labels = list(dict.fromkeys(r.label for r in repeats))
        summary["transports"] = [
            {"transport": label, "rows": summary_dict(model, release, found)["rows"]}
            for label, found in zip(labels, [rows, *others], strict=True)
        ]
    count = max(r.number for r in repeats)
    if count > 1:
        summary["repeats"] = count
    return summary


def client_counts(run_dir: Path) -> dict[float, ClientCount]:
    """perf_analyzer's requests per sweep point, from its profile export (when it wrote one)."""
    from composer.analyzer.results import summarize_profile_export

    export = RunDir(run_dir).profile_export
    if not export.exists():
        return {}
    return {
        float(e.value): ClientCount(
            e.request_count, (e.window_end_ns - e.window_start_ns) / 1e9, e.throughput_infer_per_sec
        )
        for e in summarize_profile_export(export)
    }


def metrics_of_first_repeat(started: list[float | None], repeats: list[Repeat]) -> None:
    """The server's metrics per point are the first repeat's: later repeats' points are left out of
    them (the profile export that cross-checks their counts is the first repeat's)."""
    if len(repeats) > 1:
        del started[len(sweep_points(repeats[0].log)) :]


def run_variants(
    settings: BenchSettings,
    request: BenchRequest,
    retries: int,
    execs: AnalyzerExecs,
    files: RunDir,
    manifest: dict[str, Any],
    say: Callable[[str], None],
) -> list[Repeat]:
    """The benchmark's measurements on any engine: every transport compared, each repeat of it, each
    attempt recorded in the manifest as it ends; the server's metrics per point kept for the first
    repeat only."""
    attempts: list[dict[str, Any]] = []
    manifest["attempts"] = attempts

    def recorded(result: AttemptResult) -> None:
        attempts.append(result.record())
        write_json(files.manifest, manifest)

    compared = variants(settings, request.protocols, request.shared_memories)
    if len(compared) > 1:
        manifest["transports"] = [label for label, _ in compared]
    repeats = run_repeats(compared, retries, request.repeat, execs, recorded, say, files.analyzer_log.read_text,
                          not request.require_stable)  # fmt: skip
    metrics_of_first_repeat(execs.started, repeats)
    return repeats


def summarize(
    files: RunDir,
    repeats: list[Repeat],
    settings: BenchSettings,
    model: str,
    release: str,
    recorder: MetricsRecorder | None,
    started: list[float | None],
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The repeats' outputs merged into the run directory and the summary; with ``recorder``, the
    server's metrics per point too (the summary's warnings from them). Nothing here asks the lab."""
    summary = run_summary(files, repeats, model, release, settings.sweep.kind, settings.streaming)
    if recorder is None:
        return summary, None
    metrics = recorder.write(files.path, started, client_counts(files.path))
    summary["warnings"] = metrics_warnings(metrics)
    return summary, metrics


def metrics_warnings(metrics: dict[str, Any]) -> list[str]:
    return list(metrics["warnings"]) + [w for p in metrics["points"] for w in p["warnings"]]


def settle(manifest: dict[str, Any], repeats: list[Repeat], request: BenchRequest, settings: BenchSettings) -> None:
    """The run's status from its points: those that never settled recorded (exit 7), or with
    --require-stable the first of them raised (exit 5): the numbers are written all the same."""
    unstable = [record for r in repeats for record in r.records(request.repeat)]
    if unstable and request.require_stable:
        manifest["unstable_points"] = unstable
        first = next(g for r in repeats for g in r.gave_up)
        raise first.error(settings.sweep.kind, settings.extra_args)
    mark_status(manifest, unstable)
