"""`tisbench lab --engine swarm`: server service → ready → N client replicas → collect → merge → remove.

Shapes come from the stack's config.pbtxt (the host cannot reach the server); every client runs
the same perf_analyzer argv; results come back through the engine (CSV in the task's log, the
profile export from the stopped task container when it ran on the node we talk to) into one run
directory: ``clients/client-<i>/…`` plus the merged ``summary.json``. Everything the lab created
is removed on success, failure and interruption (``keep`` leaves it, except after an interrupt);
the lifecycle is the one LabSession (composer/labs/session.py).
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from composer.analyzer.attempts import KEEP_PERCENT, stability_percent
from composer.analyzer.flags import fit_argv
from composer.analyzer.identity import assumed, from_labels, planned
from composer.analyzer.model_inputs import ModelInputs
from composer.analyzer.perf_analyzer import (
    BenchSettings,
    Outputs,
    explain_failure,
    for_model_config,
    outputs_for,
    perf_analyzer_argv,
    refuse_http_if_decoupled,
    with_deadline,
)
from composer.analyzer.results import parse_perf_csv, summarize_profile_export
from composer.analyzer.trials import last_trials, settled, spread_pct
from composer.core.design import LabDesign
from composer.core.designer import CSV_MARKER, STACK_FILE, run_area, swarm_design
from composer.core.errors import AnalyzerError, UsageError
from composer.core.fsutil import write_atomic, write_json
from composer.core.modelconfig import read_model_facts
from composer.core.run_dir import RunDir
from composer.core.triton import ANALYZER, SERVER
from composer.engine import containers as engine
from composer.engine import swarm
from composer.labs.bench import BenchResult, settings_for
from composer.labs.local import ensure_plan_images, require_named_volumes, with_own_server
from composer.labs.plan import LabPlan
from composer.labs.registry import unique_name
from composer.labs.request import BenchRequest
from composer.labs.run_manifest import (
    default_run_dir,
    image_facts,
    mark_status,
    prepare_run_dir,
    started_manifest,
    utc_now,
)
from composer.labs.session import LabSession, failure_record
from composer.render.compose import render_lab
from composer.runs.merge import ClientRun, merge_clients

if TYPE_CHECKING:
    import docker

Say = Callable[[str], None]
CLIENTS = ANALYZER  # the analyzer service: N perf_analyzer replicas on a swarm
MAX_CLIENTS = 256
SCHEDULING_SLACK_S = 60.0  # beyond perf_analyzer's own deadline: task scheduling and start-up
LOG_SETTLE_S = 5.0  # a finished task's last log lines can reach the engine's log API a moment later
_SERVER_VERSION = re.compile(r"\|\s*server_version\s*\|\s*(\S+)")


def _csv_after_marker(stdout: str) -> str:
    _, found, csv = stdout.partition(CSV_MARKER + "\n")
    return csv if found else ""


def _client_logs(
    client: docker.DockerClient, service_id: str, tasks: list[swarm.Task]
) -> tuple[dict[str, str], dict[str, str]]:
    """(full log, stdout) per task; waits briefly until every task's stdout holds the CSV marker."""
    import time

    deadline = time.monotonic() + LOG_SETTLE_S
    while True:
        stdout = swarm.task_logs(client, service_id, stderr=False)
        if all(CSV_MARKER in stdout.get(t.id, "") for t in tasks) or time.monotonic() >= deadline:
            return swarm.task_logs(client, service_id), stdout
        time.sleep(0.2)


def _collect(
    client: docker.DockerClient,
    run_dir: Path,
    service_id: str,
    tasks: list[swarm.Task],
    node_id: str,
    export_path: str | None,
    timeout_s: float,
) -> tuple[list[ClientRun], list[dict[str, Any]], list[AnalyzerError]]:
    """Write clients/client-<slot>/…; each client's rows, its task facts, and its failures."""
    full, stdout = _client_logs(client, service_id, tasks)
    runs, facts, failures = [], [], []
    for task in tasks:
        where = RunDir(run_dir).client(task.slot)
        where.path.mkdir(parents=True, exist_ok=True)
        write_atomic(where.log, full.get(task.id, ""))
        out = stdout.get(task.id, "")
        csv = _csv_after_marker(out)
        export = swarm.fetch_task_file(client, task, export_path, node_id) if export_path else None
        facts.append(
            {
                "client": task.slot,
                "task": task.id,
                "node": task.node_id,
                "state": task.state,
                "exit_code": task.exit_code,
                "error": task.error or None,
                "profile_export": export is not None,
            }
        )
        if task.state != "complete" or task.exit_code not in (0, None) or not csv.strip():
            code = task.exit_code if task.exit_code is not None else -1
            # complete with 0 and no CSV: the status was lost (a console script); its output says why
            status = None if code == 0 and task.state == "complete" else code
            error = explain_failure(status, out.partition(CSV_MARKER)[0] + task.error, timeout_s)
            failures.append(AnalyzerError(f"client {task.slot}: {error.message}", error.hint))
            continue
        write_atomic(where.csv, csv)
        rows = parse_perf_csv(csv, str(where.csv))
        experiments = None
        if export:
            write_atomic(where.profile_export, export)
            experiments = tuple(summarize_profile_export(where.profile_export))
        runs.append(ClientRun(task.slot, tuple(rows), experiments))
    return runs, facts, failures


@dataclass(frozen=True)
class SwarmFile:
    """A swarm lab's design, its stack file, and what they were drawn from."""

    design: LabDesign
    text: str
    settings: BenchSettings
    outputs: Outputs
    argv: list[str]  # perf_analyzer's own argv (the file wraps it in its deadline and CSV wrapper)
    metadata: dict[str, Any]
    config: dict[str, Any]
    criterion: float | None = None  # the stability % tisbench judges each point by (None: perf_analyzer does)


@dataclass(frozen=True)
class ClientArgv:
    """What every load client of a many-client lab runs, drawn without Docker from the stack's
    config.pbtxt and input data: perf_analyzer's settings, files and argv."""

    settings: BenchSettings
    outputs: Outputs
    argv: list[str]
    metadata: dict[str, Any]
    config: dict[str, Any]
    criterion: float | None  # the stability % tisbench judges each point by (None: perf_analyzer does)
    analyzer_version: str | None  # the perf_analyzer the argv was fitted to


def client_argv(
    plan: LabPlan, request: BenchRequest, gpus: str = "none", server_host: str | None = None, *, keep_all: bool = True
) -> ClientArgv:
    """One perf_analyzer run per client. ``keep_all``: many clients cannot retry a point, so each
    accepts any spread and tisbench judges the spread afterwards (``judged``); one client that
    retries as on one engine (a Kubernetes lab's single analyzer) keeps perf_analyzer's own rule."""
    stack = plan.stack
    metadata, config = read_model_facts(stack.models_dir, stack.model)
    analyzer = planned(str(plan.release), plan.image_set)
    inputs = ModelInputs.from_metadata(metadata, config)
    settings = settings_for(stack, str(plan.release), gpus, request, inputs, analyzer)
    refuse_http_if_decoupled(settings.model, config, request.protocol)
    settings = for_model_config(settings, config, request.protocol)  # a decoupled model: grpc streaming
    if server_host:
        settings = replace(settings, server_host=server_host)
    criterion = None
    if keep_all and not request.require_stable:  # clients cannot retry a point: each keeps all, tisbench judges
        criterion = stability_percent(settings.extra_args)
        settings = replace(settings, extra_args=(*settings.extra_args, "--stability-percentage", KEEP_PERCENT))
    outputs = outputs_for("client", settings.profile_export)
    argv = fit_argv(perf_analyzer_argv(settings, outputs), settings.extra_args, analyzer.version).argv
    return ClientArgv(settings, outputs, argv, metadata, config, criterion, analyzer.version)


def check_clients(clients: int) -> None:
    if not 1 <= clients <= MAX_CLIENTS:
        raise UsageError(
            f"--clients {clients}: must be between 1 and {MAX_CLIENTS}", f"pick 1 to {MAX_CLIENTS} load clients"
        )


def render_swarm_file(plan: LabPlan, name: str, clients: int, request: BenchRequest) -> SwarmFile:
    """Everything `tisbench render --engine swarm` needs, without Docker: shapes from config.pbtxt,
    input data validated, perf_analyzer's argv, and the file."""
    check_clients(clients)
    if plan.gpus.mode not in ("auto", "none"):
        raise UsageError("--gpus with --engine swarm is not supported yet", "use --gpus none, or --engine local")
    found = client_argv(plan, request)  # no GPUs on swarm yet
    settings, outputs = found.settings, found.outputs
    design = swarm_design(
        plan.stack, plan.release, plan.images, name, clients, with_deadline(found.argv, settings.timeout_s), outputs.csv
    )
    return SwarmFile(
        design, render_lab(design), settings, outputs, found.argv, found.metadata, found.config, found.criterion
    )


def judged(summary: dict[str, Any], files: RunDir, slots: list[int], criterion: float | None) -> list[dict[str, Any]]:
    """Each merged point whose clients' last trials spread beyond ``criterion`` (perf_analyzer's rule,
    applied by tisbench: the clients kept every point), marked unstable; the manifest's records."""
    if criterion is None:
        return []
    sweep = summary.get("sweep", "concurrency")
    trials = {slot: last_trials(files.client(slot).log.read_text(encoding="utf-8")) for slot in slots}
    records = []
    for row in summary["rows"]:
        value = float(row[sweep])
        seen_here = {slot: seen[value] for slot, seen in trials.items() if value in seen}
        loose = {slot: found for slot, found in seen_here.items() if not settled(found, criterion)}
        if not loose:
            continue
        record = {
            "clients": sorted(loose),
            "throughput_spread_pct": max((spread_pct(t) or 0.0) for t in loose.values()),
            "numbers_from": "the clients' last three windows, any spread accepted (clients do not retry)",
        }
        row.update(stable=False, unstable=record)
        records.append({"point": row[sweep], **record, "accepts_pct": criterion})
    return records


def _swarm_manifest(
    client: docker.DockerClient, plan: LabPlan, rendered: SwarmFile, clients: int, node_id: str
) -> dict[str, Any]:
    stack, metadata = plan.stack, rendered.metadata
    images = {"server": image_facts(client, plan.images.server), "sdk": image_facts(client, plan.images.sdk)}
    return started_manifest(
        lab=rendered.design.project,
        release=str(plan.release),
        design=rendered.design,
        stack=stack,
        model={"name": stack.model, "version": (metadata.get("versions") or ["?"])[-1], "config": rendered.config},
        images=images,
        analyzer=from_labels(images["sdk"]["labels"]) or assumed(str(plan.release)),
        argv=rendered.argv,
        timeout_s=rendered.settings.timeout_s,
        clients=clients,
        client_command=list(rendered.design.service(CLIENTS).command or ()),
        compose_file=STACK_FILE,
        model_source=f"{stack.models_dir / stack.model / 'config.pbtxt'} (read locally, not from the server)",
        swarm={"node": node_id},
    )


def run_swarm_lab(
    plan: LabPlan,
    clients: int,
    request: BenchRequest,
    say: Say,
    *,
    timeout_s: float | None = None,
    keep: bool = False,
) -> BenchResult:
    """Run one benchmark with ``clients`` perf_analyzer replicas on the swarm the client points at."""
    stack = plan.stack
    render_swarm_file(plan, stack.name, clients, request)  # input errors before any Docker call
    client = engine.connect()
    node_id = swarm.require_manager(client)
    ensure_plan_images(client, plan, say)
    plan = with_own_server(client, plan, say)
    name = unique_name(client, stack.name)
    rendered = render_swarm_file(plan, name, clients, request)
    require_named_volumes(client, rendered.design)
    design, text, settings, outputs = rendered.design, rendered.text, rendered.settings, rendered.outputs
    run_dir = prepare_run_dir(request.out or default_run_dir(name))
    files = RunDir(run_dir)
    manifest = _swarm_manifest(client, plan, rendered, clients, node_id)
    write_atomic(run_dir / STACK_FILE, text)
    write_json(files.manifest, manifest)
    backend = SwarmBackend(client, design, text, run_area(stack, name), run_dir, manifest, stack.model,
                           settings.protocol, timeout_s or stack.server.ready_timeout_s, say)  # fmt: skip
    try:
        with LabSession(backend, say=say, keep=keep) as lab:
            say(f"swarm lab {name} ready in {lab.ready_s:.2f} s; starting {clients} perf_analyzer client(s)")
            lab.ids[CLIENTS] = swarm.create_service(client, design, CLIENTS)
            tasks = swarm.wait_tasks_done(
                client,
                lab.ids[CLIENTS],
                clients,
                settings.timeout_s + SCHEDULING_SLACK_S,
                on_change=lambda ts: say("clients: " + ", ".join(f"{t.slot}={t.state}" for t in ts)),
            )
            runs, facts, failures = _collect(
                client, run_dir, lab.ids[CLIENTS], tasks, node_id, outputs.profile_export, settings.timeout_s
            )
            manifest["client_tasks"] = facts
            server_task = swarm.service_tasks(client, lab.ids[SERVER])[-1]
            if server_task.done:
                raise AnalyzerError(
                    f"triton_server died during the benchmark ({server_task.state}, exit code {server_task.exit_code})",
                    f"see {files.server_log}",
                )
            if failures:
                raise failures[0]
            summary = merge_clients(stack.model, str(plan.release), runs)
            unstable = judged(summary, files, [t.slot for t in tasks], rendered.criterion)
            write_json(files.summary, summary)
            say(f"collected {len(runs)} client result(s); latency: {summary['latency_source']}")
            mark_status(manifest, unstable)
            return BenchResult(run_dir, summary, manifest)
    except BaseException as exc:
        manifest.update(status="failed", **failure_record(exc))
        write_json(files.manifest, manifest)
        raise


@dataclass
class SwarmLab:
    name: str
    ids: dict[str, str]
    ready_s: float = 0.0


@dataclass
class SwarmBackend:
    """Swarm labs for a LabSession: an overlay network and a server service, then client replicas."""

    client: docker.DockerClient
    design: LabDesign
    text: str
    run_area: Path
    run_dir: Path
    manifest: dict[str, Any]
    model: str
    protocol: str
    timeout_s: float
    say: Say
    kind: str = "swarm lab"

    def up(self) -> SwarmLab:
        lab = SwarmLab(self.design.project, {})
        try:
            write_atomic(self.run_area / STACK_FILE, self.text)
            self.say(
                f"creating swarm lab {lab.name}: overlay network {self.design.network_name}, "
                f"service {self.design.swarm_service_name(SERVER)}"
            )
            swarm.create_network(self.client, self.design)
            lab.ids[SERVER] = swarm.create_service(self.client, self.design, SERVER)
            ready = swarm.wait_server_ready(
                self.client,
                lab.ids[SERVER],
                model=self.model,
                protocol=self.protocol,
                timeout_s=self.timeout_s,
                on_wait=lambda what: self.say(f"waiting for {what}"),
            )
            lab.ready_s = ready.seconds
        except BaseException:
            with engine.with_signals_masked_ctx():
                try:
                    self.collect(lab)
                finally:
                    self.down(lab)
                    self.say(f"{self.kind} {lab.name} removed")
            raise
        return lab

    @property
    def files(self) -> RunDir:
        return RunDir(self.run_dir)

    def name_of(self, lab: SwarmLab) -> str:
        return lab.name

    def collect(self, lab: SwarmLab) -> None:
        """The server's log and version beside the results, and the manifest as it stands."""
        try:
            if SERVER in lab.ids:
                server_log = "".join(swarm.task_logs(self.client, lab.ids[SERVER]).values())
                write_atomic(self.files.server_log, server_log)
                found = _SERVER_VERSION.search(server_log)
                self.manifest["server_version"] = found.group(1) if found else "?"
        finally:
            self.manifest["ended_utc"] = utc_now()
            write_json(self.files.manifest, self.manifest)

    def down(self, lab: SwarmLab, reading: threading.Event | None = None) -> None:
        if reading is not None:
            reading.wait()  # the service's tasks are its analyzers: they stay while a run reads them
        swarm.remove_swarm_lab(self.client, lab.name)
        shutil.rmtree(self.run_area, ignore_errors=True)
