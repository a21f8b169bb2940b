"""One benchmark on a running lab: shapes, validation, perf_analyzer in the sdk container, run dir.

Input problems are found before anything runs; a failed run keeps what it had, marked failed.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from composer.analyzer.attempts import export_left_out, first_attempt, with_exports
from composer.analyzer.export_size import values_per_request
from composer.analyzer.flags import check_user_args, fit_argv, has_option, left_out_line
from composer.analyzer.identity import AnalyzerIdentity, assumed, observe
from composer.analyzer.inputs import container_input_path, input_shapes_and_counts
from composer.analyzer.model_inputs import ModelInputs
from composer.analyzer.perf_analyzer import (
    DECOUPLED_FIELD,
    BenchSettings,
    Outputs,
    decoupled_note,
    for_model_config,
    outputs_for,
    perf_analyzer_argv,
    refuse_http_if_decoupled,
)
from composer.analyzer.validation import has_validation
from composer.core.config import Stack
from composer.core.errors import AnalyzerError
from composer.core.fsutil import write_atomic, write_json
from composer.core.gpus import analyzer_metric_args, parse_gpus
from composer.core.modelconfig import read_disk_model
from composer.core.run_dir import RunDir
from composer.core.sweep import Sweep
from composer.core.triton import ANALYZER, SERVER
from composer.engine import containers as engine
from composer.engine.host import DOCKER_ERRORS
from composer.labs.analyzer_execs import AnalyzerExecs, ContainerAnalyzer, Progress
from composer.labs.handle import LabHandle
from composer.labs.repeats import run_variants, settle, summarize
from composer.labs.replay import data_file, explain_mismatch, server_client
from composer.labs.request import BenchRequest
from composer.labs.run_manifest import (
    default_run_dir,
    image_facts,
    prepare_run_dir,
    server_ulimits,
    started_manifest,
    utc_now,
)
from composer.labs.session import failure_record
from composer.labs.shared_memory import Regions, regions_for
from composer.runs.scraper import MetricsRecorder

Say = Callable[[str], None]


@dataclass
class BenchResult:
    run_dir: Path
    summary: dict[str, Any]
    manifest: dict[str, Any]


def settings_for(
    stack: Stack,
    release: str,
    gpus: str,
    request: BenchRequest,
    model_inputs: ModelInputs,
    analyzer: AnalyzerIdentity | None = None,
) -> BenchSettings:
    """perf_analyzer's settings for a lab of ``stack``: the request over the stack's analyzer section."""
    a = stack.analyzer
    _, container_input = container_input_path(stack, request.input_data)
    shapes, counts = input_shapes_and_counts(stack, request.input_choice(), model_inputs)
    interval = request.measurement_interval_ms
    requests = request.measurement_requests
    if interval is None and requests is None:
        interval, requests = a.measurement_interval_ms, a.measurement_requests
    arrivals = request.arrivals(stack)
    sweep = request.sweep or a.sweep
    if arrivals.intervals is not None:  # perf_analyzer reports the file's mean rate as the one point
        sweep = Sweep("request_rate", arrivals.intervals.rate, arrivals.intervals.rate, 1)
    return BenchSettings(
        model=stack.model,
        sweep=sweep,
        arrivals=arrivals,
        shared_memory=a.shared_memory,
        protocol=request.protocol or a.protocol,
        input_data=container_input,
        measurement_requests=requests if interval is None else None,
        measurement_interval_ms=interval,
        shapes=shapes,
        extra_args=tuple(a.args) + request.extra_args,
        timeout_s=request.timeout_s or a.timeout_s,
        profile_export=has_option((analyzer or assumed(release)).version, "--profile-export-file"),
        metric_args=tuple(analyzer_metric_args(parse_gpus(gpus))),
        values_per_request=values_per_request(model_inputs, counts),
    )


SETTLE_S = 2.0  # how long a SIGKILLed exec's containers may take to show they are going away


def _lab_losses(lab: LabHandle, killed: bool) -> dict[str, engine.ContainerState]:
    """Containers of the lab that are no longer running. An exec killed by SIGKILL may be the
    first sign of a lab being removed: then the engine gets a moment to show it."""
    deadline = time.monotonic() + (SETTLE_S if killed else 0.0)
    while True:
        states = {
            SERVER: engine.container_state(lab.client, lab.server_id),
            ANALYZER: engine.container_state(lab.client, lab.analyzer_id),
        }
        gone = {s: state for s, state in states.items() if not state.running or state.status == "removing"}
        if gone or time.monotonic() >= deadline:
            return gone
        time.sleep(0.1)


def _raise_if_lab_stopped(lab: LabHandle, run_dir: Path, exit_code: int) -> None:
    """A failed exec whose lab lost a container is the lab's failure, not perf_analyzer's."""
    gone = _lab_losses(lab, killed=exit_code == 137)
    if SERVER in gone and ANALYZER not in gone:
        code = gone[SERVER].exit_code
        raise AnalyzerError(
            f"triton_server of lab {lab.name} died during the benchmark (exit code {code})",
            f"see {RunDir(run_dir).server_log}",
        )
    if gone:
        what = ", ".join(f"{service} {state.status}" for service, state in gone.items())
        raise AnalyzerError(
            f"lab {lab.name} stopped during the benchmark ({what})",
            "was it removed (tisbench down) or killed? start it again and rerun",
        )


def _keep_server_log(lab: LabHandle, run_dir: Path) -> None:
    """The server's log beside the results; a server already removed (down mid-run) leaves a note."""
    try:
        text = engine.container_logs(lab.client, lab.server_id)
    except DOCKER_ERRORS as exc:
        text = f"(the server's log could not be read: {exc})\n"
    write_atomic(RunDir(run_dir).server_log, text or "(the server container was gone)\n")


def _model_facts(triton: Any, model: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    try:
        metadata = triton.get_model_metadata(model)
        config = triton.get_model_config(model)
        server = triton.get_server_metadata()
    except Exception as exc:  # tritonclient raises its own and socket errors alike
        raise AnalyzerError(
            f"cannot read model {model!r} from the server ({exc})", "is the lab ready? tisbench status"
        ) from None
    return metadata, config, str(server.get("version", "?"))


@dataclass(frozen=True)
class _Observed:
    """The lab as a run finds it: the model as the server serves it, images, analyzer, settings."""

    metadata: dict[str, Any]
    config: dict[str, Any]
    reported_version: str
    server: dict[str, Any]  # the server container's inspect
    images: dict[str, dict[str, Any]]
    analyzer: AnalyzerIdentity
    settings: BenchSettings
    inputs: ModelInputs  # the model's tensors, as its metadata and config say
    export_left_out: str | None = None  # why the profile export is not asked for (its projected size)
    regions: Regions | None = None  # the shared-memory regions, when the run passes tensors through them


def _observe(lab: LabHandle, request: BenchRequest) -> _Observed:
    http, triton = server_client(lab)
    try:
        metadata, config, reported_version = _model_facts(triton, lab.stack.model)
        containers = {"server": lab.client.api.inspect_container(lab.server_id)}
        containers["sdk"] = lab.client.api.inspect_container(lab.analyzer_id)
        images = {service: image_facts(lab.client, c["Config"]["Image"]) for service, c in containers.items()}
        analyzer = observe(lab.client, lab.analyzer_id, images["sdk"]["labels"], lab.release)
        inputs = ModelInputs.from_metadata(metadata, config)
        settings = settings_for(lab.stack, lab.release, lab.gpus, request, inputs, analyzer)
        for protocol in request.protocols:  # each transport compared must be one perf_analyzer can measure
            refuse_http_if_decoupled(settings.model, config, protocol)
        settings = replace(for_model_config(settings, config, request.protocol), analyzer_version=analyzer.version)
        check_user_args(settings.extra_args, analyzer.version)  # before the run dir: bad input leaves nothing
        regions = regions_for(lab, request.input_data, settings, inputs, containers, http, triton)
    finally:
        triton.close()
    if regions is not None:
        settings = replace(settings, output_shm_bytes=regions.output_bytes)
    too_big = export_left_out(settings, first_attempt(settings))
    if too_big:
        settings = replace(settings, profile_export=False)
    return _Observed(
        metadata, config, reported_version, containers["server"], images, analyzer, settings, inputs, too_big, regions
    )


def _fitted(seen: _Observed, outputs: Outputs, say: Say) -> tuple[list[str], list[str]]:
    """Every attempt's argv is fitted to this analyzer; what it leaves out is said once, here."""
    settings, version = seen.settings, seen.analyzer.version
    fitted = fit_argv(
        perf_analyzer_argv(replace(settings, analyzer_version=None), outputs), settings.extra_args, version
    )
    left_out = fitted.left_out
    if seen.export_left_out:
        left_out = [seen.export_left_out, *left_out]
    elif not settings.profile_export and version:
        left_out = [left_out_line(version, "--profile-export-file"), *left_out]
    for line in left_out:
        say(line)
    return fitted.argv, left_out


def run_bench(
    lab: LabHandle,
    request: BenchRequest,
    say: Say,
    on_point: Callable[[str], None] = lambda p: None,
    lab_done: Callable[[threading.Event], None] | None = None,
    on_progress: Progress | None = None,
) -> BenchResult:
    """Validate, run perf_analyzer in the lab's sdk container, and write the run directory.
    ``lab_done`` is called once the run needs nothing more from the lab's server (its log and
    metrics are in hand), with an event set once perf_analyzer's files are fetched from the analyzer
    too: the lab's removal starts beside that fetch and the writing up."""
    seen = _observe(lab, request)
    settings = seen.settings
    run_dir = prepare_run_dir(request.out or default_run_dir(lab.name))
    files = RunDir(run_dir)
    run_id = run_dir.resolve().name.replace("/", "_")
    outputs = outputs_for(f"{run_id}-{int(time.time() * 1000)}", settings.profile_export)
    argv, left_out = _fitted(seen, outputs, say)
    manifest = started_manifest(
        lab=lab.name,
        release=lab.release,
        design=lab.design,
        stack=lab.stack,
        model={
            "name": lab.stack.model,
            "version": (seen.metadata.get("versions") or ["?"])[-1],
            "config": seen.config,  # as the server serves it, after any auto-complete
            "config_source": read_disk_model(lab.stack.models_dir, lab.stack.model).source,
        },
        images=seen.images,
        analyzer=seen.analyzer,
        argv=argv,
        timeout_s=settings.timeout_s,
        server_version=seen.reported_version,
        perf_analyzer_left_out=left_out,
        server_ulimits=server_ulimits(seen.server),
    )
    manifest["load_pattern"] = settings.arrivals.record(settings.sweep.kind)
    if seen.regions is not None:
        manifest["shared_memory"] = seen.regions.record()
    if settings.streaming:
        manifest["decoupled"] = decoupled_note(settings)
        say(f"model {lab.stack.model} is decoupled ({DECOUPLED_FIELD}): {manifest['decoupled']['chosen']}")
    if has_validation(json.loads(data_file(lab, request.input_data).read_text(encoding="utf-8"))):
        manifest["outputs_checked"] = "perf_analyzer compares every response with the input data's validation_data"
    write_json(files.manifest, manifest)
    shown = (on_point, on_progress)
    return _measure(lab, settings, outputs, files, manifest, argv, say, shown, request, seen.inputs, lab_done)


def _measure(
    lab: LabHandle,
    settings: BenchSettings,
    outputs: Outputs,
    files: RunDir,
    manifest: dict[str, Any],
    argv: list[str],
    say: Say,
    shown: tuple[Callable[[str], None], Progress | None],  # the live view's sweep point and request count
    request: BenchRequest,
    inputs: ModelInputs,
    lab_done: Callable[[threading.Event], None] | None = None,
) -> BenchResult:
    """perf_analyzer's attempts (of each repeat), their outputs in the run directory, and its summary."""
    run_dir = files.path
    say(f"running perf_analyzer in {lab.name}-perf_analyzer-1: {' '.join(argv)}")
    recorder = MetricsRecorder(
        f"http://{engine.probe_host(lab.stack.server.host)}:{lab.metrics_port}/metrics",
        lab.stack.model,
        settings.sweep.kind,
    )
    execs = AnalyzerExecs(
        ContainerAnalyzer(lab.client, lab.analyzer_id),
        files.analyzer_log,
        recorder,
        shown[0],
        outputs,
        check_lab=lambda exit_code: _raise_if_lab_stopped(lab, run_dir, exit_code),
        on_progress=shown[1],
        mismatch=lambda: explain_mismatch(lab, request.input_data, settings, inputs),
    )
    server_log_kept = False
    reading = threading.Event()  # set once the analyzer's files are in hand
    try:
        if lab.metrics_port:
            recorder.scrape("start")
        repeats = run_variants(settings, request, lab.stack.analyzer.stability_retries, execs, files, manifest, say)
        if lab.metrics_port:
            recorder.scrape("end")
        _keep_server_log(lab, run_dir)
        server_log_kept = True
        if lab_done is not None:
            lab_done(reading)  # the server and the network go while the exports come
        repeats = [replace(r, results=with_exports(r.results, execs)) for r in repeats]
        reading.set()
        summary, metrics = summarize(files, repeats, settings, lab.stack.model, lab.release,
                                     recorder if lab.metrics_port else None, execs.started)  # fmt: skip
        if metrics is not None:
            manifest["gpus"] = {"request": lab.gpus, "devices": metrics["gpus"]}
        write_json(files.summary, summary)
        settle(manifest, repeats, request, settings)
        return BenchResult(run_dir, summary, manifest)
    except BaseException as exc:
        manifest.update(status="failed", **failure_record(exc))
        raise
    finally:
        reading.set()
        execs.log.close()
        manifest["ended_utc"] = utc_now()
        with engine.with_signals_masked_ctx():
            write_json(files.manifest, manifest)
            if not server_log_kept:
                _keep_server_log(lab, run_dir)
