"""`tisbench tune` on one lab: the server in explicit model control, each candidate loaded through
Triton's repository API with its configuration as an override (no restart, no copied files), each
measurement a `run_bench` run directory under the tune directory.

The user's configuration (as the server serves it) is the baseline and is measured first. A
candidate the server refuses is recorded with Triton's reason and the search goes on; so is one
the server loads as another configuration (a python model's auto_complete_config may raise a
smaller max_batch_size to its own and add a dynamic batcher), which is never measured as asked. tune.json is
rewritten after every candidate, so an interrupted search leaves a valid partial document.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from composer.analyzer.results import load_summary
from composer.analyzer.windows import experiment_windows
from composer.core import interrupts
from composer.core.errors import AnalyzerError, TisbenchError, UsageError, interruption_message
from composer.core.fsutil import write_atomic, write_json
from composer.core.modelconfig import CONFIG_FILE
from composer.core.run_dir import RunDir
from composer.core.sweep import Sweep
from composer.engine import containers as engine
from composer.labs import local
from composer.labs.bench import run_bench
from composer.labs.handle import LabHandle, handle_of
from composer.labs.plan import LabPlan
from composer.labs.request import BenchRequest
from composer.labs.run_manifest import utc_now
from composer.tuning.document import tune_document
from composer.tuning.override import config_pbtxt, disk_config, override_json
from composer.tuning.search import LoadFailed, MeasureFailed, Outcome, Search, Trial
from composer.tuning.space import Candidate, TuneSettings, baseline_of, space_for
from composer.tuning.stats import Measurement, Window, measurement, meets

Say = Callable[[str], None]
TUNE_FILE = "tune.json"
# perf_analyzer's stability criterion for tune's runs (its default is 10 %). On a small machine a
# 10 % criterion costs retries with ever longer windows at most points; the spread it tolerates
# is not hidden: every window is in the measurement's interval, and ties are judged on them.
TUNE_STABILITY = ("--stability-percentage", "25")
MEASUREMENTS = "measurements"


def default_tune_dir(stack_name: str) -> Path:
    return Path("runs") / f"tune-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}-{stack_name}"


def prepare_tune_dir(path: Path) -> Path:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UsageError(f"--out {path}: exists and is not an empty directory", "choose a new tune directory")
    (path / MEASUREMENTS).mkdir(parents=True, exist_ok=True)
    return path


def _triton(lab: LabHandle, timeout_s: float = 600) -> Any:
    from composer.engine.tritonhttp import http_module

    return http_module().InferenceServerClient(
        url=f"{engine.probe_host(lab.stack.server.host)}:{lab.http_port}",
        connection_timeout=10,
        network_timeout=timeout_s,
    )


def _reason(exc: Exception) -> str:
    message = getattr(exc, "message", None)
    text = message() if callable(message) else str(exc)
    return " ".join(str(text).split()) or type(exc).__name__


class LabBench:
    """``measure(candidate, concurrency)`` for the search, on one running lab."""

    def __init__(
        self, lab: LabHandle, served: dict[str, Any], request: BenchRequest, out: Path, percentile: int, log: Say
    ) -> None:
        self.lab, self.served, self.request, self.out, self.percentile, self.log = (
            lab,
            served,
            request,
            out,
            percentile,
            log,
        )
        self.loaded: Candidate | None = None
        self.count = 0
        given = (*lab.stack.analyzer.args, *request.extra_args)
        if not any(a.startswith(("--stability-percentage", "-s")) for a in given):
            self.request = replace(request, extra_args=(*TUNE_STABILITY, *request.extra_args))

    def load(self, candidate: Candidate) -> None:
        if candidate == self.loaded:
            return
        self.loaded = None
        triton = _triton(self.lab)
        try:
            triton.load_model(self.lab.stack.model, config=override_json(self.served, candidate))
            served = baseline_of(dict(triton.get_model_config(self.lab.stack.model)))
        except Exception as exc:  # tritonclient's InferenceServerException carries Triton's reason
            raise LoadFailed(_reason(exc)) from None
        finally:
            triton.close()
        if served != candidate:  # measuring it would put one configuration's numbers on another
            raise LoadFailed(
                f"the server changed the configuration while loading it and serves {served.label()}"
                " (the model's auto_complete_config or its backend sets these fields)"
            )
        self.loaded = candidate

    def measure(self, candidate: Candidate, concurrency: int) -> Measurement:
        self.load(candidate)
        interrupts.checkpoint()  # a Ctrl-C that the repository client swallowed stops the search here
        self.count += 1
        run_dir = self.out / MEASUREMENTS / f"{self.count:03d}-{candidate.slug()}-c{concurrency}"
        request = replace(self.request, sweep=Sweep("concurrency", concurrency, concurrency, 1), out=run_dir)
        try:
            run_bench(self.lab, request, say=self.log)
        except AnalyzerError as exc:
            raise MeasureFailed(exc.one_line()) from None
        return self._read(run_dir, concurrency)

    def _read(self, run_dir: Path, concurrency: int) -> Measurement:
        """The measurement's windows from its profile export (kept as windows.json; the export itself,
        megabytes per run, is dropped), or the CSV's averages as one window without an export."""
        (row,) = load_summary(run_dir).rows
        export = RunDir(run_dir).profile_export
        where = str(run_dir.relative_to(self.out))
        found = experiment_windows(export, self.percentile) if export.exists() else []
        if found:
            windows = [Window(w.requests, w.seconds, w.latency_us) for w in found[0].windows]
            write_json(
                run_dir / "windows.json", {"percentile": self.percentile, "windows": [w.__dict__ for w in windows]}
            )
            export.unlink()
            return measurement(
                concurrency,
                windows,
                throughput=row.throughput_infer_per_sec,
                latency_us=found[0].latency_us,
                run_dir=where,
            )
        latency = getattr(row, f"p{self.percentile}_latency_us") or 0.0
        return measurement(concurrency, [Window(int(row.throughput_infer_per_sec), 1.0, latency)], run_dir=where)


def progress_line(trial: Trial, settings: TuneSettings) -> str:
    """One line per candidate: config, concurrency, throughput ± spread, latency, meets/misses."""
    label = f"{trial.candidate.label():<20}"
    if trial.status == "load_failed":
        return f"{label} not loaded: {trial.reason}"
    point = trial.chosen or trial.closest(settings)
    if point is None:
        return f"{label} {trial.status}: {trial.reason}"
    spread = (point.throughput_interval[1] - point.throughput_interval[0]) / 2
    verdict = "meets" if meets(point, settings) else "misses"
    note = f"  ({trial.status}: {trial.reason})" if trial.reason else ""
    return (
        f"{label} c={point.concurrency:<3} {point.throughput:>9,.0f} ± {spread:,.0f} infer/s  "
        f"p{settings.percentile} {point.latency_us / 1000:.2f} ms  {verdict}{note}"
    )


@dataclass
class TuneRun:
    """What a tune left: its document and directory."""

    doc: dict[str, Any]
    out: Path


def _served_config(lab: LabHandle) -> dict[str, Any]:
    triton = _triton(lab, 30)
    try:
        return dict(triton.get_model_config(lab.stack.model))
    except Exception as exc:
        raise AnalyzerError(
            f"cannot read model {lab.stack.model!r}'s config from the server ({_reason(exc)})"
        ) from None
    finally:
        triton.close()


def write_best_config(plan: LabPlan, served: dict[str, Any], best: Candidate, out: Path) -> Path:
    """best/config.pbtxt: the user's config.pbtxt with the best candidate's fields (the served one
    when the model has no config.pbtxt of its own)."""
    path = plan.stack.models_dir / plan.stack.model / CONFIG_FILE
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    base = disk_config(text) if text.strip() else served
    target = out / "best" / CONFIG_FILE
    write_atomic(target, config_pbtxt(base, best))
    return target


def run_tune(
    plan: LabPlan, settings: TuneSettings, request: BenchRequest, out: Path, say: Say, timeout_s: float | None = None
) -> TuneRun:
    """Bring one lab up, search, write tune.json (and best/config.pbtxt when a candidate meets the
    constraints), remove the lab. An interruption or failure leaves tune.json saying so, then re-raises."""
    plan = replace(plan, explicit_models=True)
    out = prepare_tune_dir(out)
    facts: dict[str, Any] = {
        "model": plan.stack.model,
        "stack": str(plan.stack.directory),
        "release": str(plan.release),
        "images": {"server": plan.images.server, "sdk": plan.images.sdk},
        "started_utc": utc_now(),
    }
    with (out / "tune.log").open("a", encoding="utf-8") as log_file:

        def log(message: str) -> None:
            log_file.write(message + "\n")
            log_file.flush()

        with local.local_session(plan, say, timeout_s=timeout_s) as running:
            facts["lab"] = running.name
            return _search(handle_of(running), plan, settings, request, out, say, log, facts)


def _search(
    lab: LabHandle,
    plan: LabPlan,
    settings: TuneSettings,
    request: BenchRequest,
    out: Path,
    say: Say,
    log: Say,
    facts: dict[str, Any],
) -> TuneRun:
    served = _served_config(lab)
    space = space_for(settings, served)
    bench = LabBench(lab, served, request, out, settings.percentile, log)
    search: Search

    def write(outcome: Outcome, status: str, error: str | None = None) -> dict[str, Any]:
        doc = tune_document(search, outcome, status=status, facts={**facts, "ended_utc": utc_now()}, error=error)
        write_json(out / TUNE_FILE, doc)
        return doc

    def on_trial(trial: Trial) -> None:
        say(progress_line(trial, settings))
        write(search.outcome(), "running")

    search = Search(space, settings, bench.measure, on_trial)
    say(
        f"tuning {plan.stack.model}: {settings.mode} search from {space.baseline.label()} over instances "
        f"{list(space.instances)}, max_batch_size {list(space.max_batch_sizes)}, dynamic batching "
        f"{list(space.dynamic_batching)}, concurrency {list(space.concurrencies)}"
    )
    try:
        search.run()
        say(f"finalists re-measured interleaved: {', '.join(f.candidate.label() for f in search.finals) or 'none'}")
        for final in search.finals:
            if final.missed_at:
                say(
                    f"{final.candidate.label()}: re-measured, it missed the constraints at concurrency "
                    f"{', '.join(map(str, final.missed_at))}; its answer is at concurrency {final.result.concurrency}"
                )
    except KeyboardInterrupt as exc:
        write(search.outcome(), "interrupted", interruption_message(exc))
        raise
    except TisbenchError as exc:
        write(search.outcome(), "failed", exc.one_line())
        raise
    outcome = search.outcome()
    doc = write(outcome, "ok" if outcome.best else "no_candidate")
    if outcome.best is not None:
        write_best_config(plan, served, outcome.best.candidate, out)
    return TuneRun(doc, out)


def read_tune(out: Path) -> dict[str, Any] | None:
    path = out / TUNE_FILE
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError):
        return None


def remove_tune_dir_if_empty(out: Path) -> None:
    """A tune stopped before its first measurement leaves no directory behind."""
    if out.is_dir() and not (out / TUNE_FILE).exists():
        shutil.rmtree(out, ignore_errors=True)
