"""`tisbench lab --engine swarm`: server service → ready → N client replicas → collect → merge → remove.

Shapes come from the stack's config.pbtxt (the host cannot reach the server); every client runs
the same perf_analyzer argv; results come back through the engine (CSV in the task's log, the
profile export from the stopped task container when it ran on the node we talk to) into one run
directory: ``clients/client-<i>/…`` plus the merged ``summary.json``. Everything the lab created
is removed on success, failure and interruption (unless ``keep``).
"""

from __future__ import annotations

import platform
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from composer import __version__
from composer.analyzer.flags import fit_argv
from composer.analyzer.identity import assumed, from_labels, planned
from composer.analyzer.model_inputs import ModelInputs
from composer.analyzer.perf_analyzer import (
    BenchSettings,
    Outputs,
    explain_failure,
    outputs_for,
    perf_analyzer_argv,
    with_deadline,
)
from composer.analyzer.results import parse_perf_csv, summarize_profile_export
from composer.core.errors import AnalyzerError, TisbenchError, UsageError
from composer.core.fsutil import write_atomic, write_json
from composer.core.modelconfig import read_model_facts
from composer.core.release import server_version
from composer.engine import containers as engine
from composer.engine import swarm
from composer.labs.bench import BenchRequest, BenchResult, LabHandle, settings_for
from composer.labs.local import RUN_AREA, ensure_plan_images, unique_name
from composer.labs.plan import LabPlan
from composer.labs.run_manifest import default_run_dir, image_facts, image_manifest, prepare_run_dir, utc_now
from composer.render.swarm_spec import CLIENTS, CSV_MARKER, SERVER, render_stack, swarm_spec
from composer.runs.merge import ClientRun, merge_clients

if TYPE_CHECKING:
    import docker

Say = Callable[[str], None]
STACK_FILE = "docker-stack.yml"
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
        where = run_dir / "clients" / f"client-{task.slot}"
        where.mkdir(parents=True, exist_ok=True)
        write_atomic(where / "perf_analyzer.log", full.get(task.id, ""))
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
        write_atomic(where / "perf_analyzer.csv", csv)
        rows = parse_perf_csv(csv, str(where / "perf_analyzer.csv"))
        experiments = None
        if export:
            write_atomic(where / "profile_export.json", export)
            experiments = tuple(summarize_profile_export(where / "profile_export.json"))
        runs.append(ClientRun(task.slot, tuple(rows), experiments))
    return runs, facts, failures


@dataclass(frozen=True)
class SwarmFile:
    """A rendered swarm compose file and what it was rendered from."""

    text: str
    settings: BenchSettings
    outputs: Outputs
    argv: list[str]  # perf_analyzer's own argv (the file wraps it in its deadline and CSV wrapper)
    metadata: dict[str, Any]
    config: dict[str, Any]


def render_swarm_file(plan: LabPlan, name: str, clients: int, request: BenchRequest) -> SwarmFile:
    """Everything `tisbench render --engine swarm` needs, without Docker: shapes from config.pbtxt,
    input data validated, perf_analyzer's argv, and the file."""
    if not 1 <= clients <= MAX_CLIENTS:
        raise UsageError(
            f"--clients {clients}: must be between 1 and {MAX_CLIENTS}", f"pick 1 to {MAX_CLIENTS} load clients"
        )
    if plan.gpus.mode not in ("auto", "none"):
        raise UsageError("--gpus with --engine swarm is not supported yet", "use --gpus none, or --engine local")
    stack = plan.stack
    metadata, config = read_model_facts(stack.models_dir, stack.model)
    # settings_for reads only the handle's stack, release and GPUs: no engine or container is involved.
    handle = LabHandle(cast("docker.DockerClient", None), name, stack, str(plan.release), "", "", 0)
    analyzer = planned(str(plan.release), plan.image_set)
    settings = settings_for(handle, request, ModelInputs.from_metadata(metadata, config), analyzer)
    outputs = outputs_for("client", settings.profile_export)
    argv = fit_argv(perf_analyzer_argv(settings, outputs), settings.extra_args, analyzer.version).argv
    text = render_stack(
        stack, plan.release, plan.images, name, clients, with_deadline(argv, settings.timeout_s), outputs.csv
    )
    return SwarmFile(text, settings, outputs, argv, metadata, config)


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
    name = unique_name(client, stack.name)
    rendered = render_swarm_file(plan, name, clients, request)
    text, settings, outputs, argv = rendered.text, rendered.settings, rendered.outputs, rendered.argv
    metadata, config = rendered.metadata, rendered.config
    run_area = stack.directory / RUN_AREA / name
    spec = swarm_spec(text, name, run_area / STACK_FILE)
    run_dir = prepare_run_dir(request.out or default_run_dir(name))
    images = {"server": image_facts(client, plan.images.server), "sdk": image_facts(client, plan.images.sdk)}
    manifest: dict[str, Any] = {
        "tisbench_version": __version__,
        "lab": name,
        "engine": "swarm",
        "clients": clients,
        "release": str(plan.release),
        "release_server_version": server_version(plan.release),
        **image_manifest(images, from_labels(images["sdk"]["labels"]) or assumed(str(plan.release))),
        "perf_analyzer_argv": argv,
        "client_command": spec.services[CLIENTS].command,
        "compose_file": STACK_FILE,
        "timeout_s": settings.timeout_s,
        "model": {"name": stack.model, "version": (metadata.get("versions") or ["?"])[-1], "config": config},
        "model_source": f"{stack.models_dir / stack.model / 'config.pbtxt'} (read locally, not from the server)",
        "stack": str(stack.directory),
        "host": {"hostname": platform.node(), "platform": platform.platform(), "python": platform.python_version()},
        "swarm": {"node": node_id},
        "started_utc": utc_now(),
        "status": "running",
    }
    write_atomic(run_dir / STACK_FILE, text)
    write_json(run_dir / "manifest.json", manifest)
    ids: dict[str, str] = {}
    try:
        write_atomic(run_area / STACK_FILE, text)
        say(f"creating swarm lab {name}: overlay network {spec.network}, service {spec.services[SERVER].name}")
        swarm.create_network(client, spec)
        ids[SERVER] = swarm.create_service(client, spec.services[SERVER], spec.network)
        ready = swarm.wait_server_ready(
            client,
            ids[SERVER],
            model=stack.model,
            protocol=settings.protocol,
            timeout_s=timeout_s or stack.server.ready_timeout_s,
            on_wait=lambda what: say(f"waiting for {what}"),
        )
        say(f"swarm lab {name} ready in {ready.seconds:.2f} s; starting {clients} perf_analyzer client(s)")
        ids[CLIENTS] = swarm.create_service(client, spec.services[CLIENTS], spec.network)
        tasks = swarm.wait_tasks_done(
            client,
            ids[CLIENTS],
            clients,
            settings.timeout_s + SCHEDULING_SLACK_S,
            on_change=lambda ts: say("clients: " + ", ".join(f"{t.slot}={t.state}" for t in ts)),
        )
        runs, facts, failures = _collect(
            client, run_dir, ids[CLIENTS], tasks, node_id, outputs.profile_export, settings.timeout_s
        )
        manifest["client_tasks"] = facts
        server_task = swarm.service_tasks(client, ids[SERVER])[-1]
        if server_task.done:
            raise AnalyzerError(
                f"triton_server died during the benchmark ({server_task.state}, exit code {server_task.exit_code})",
                f"see {run_dir}/logs/triton_server.log",
            )
        if failures:
            raise failures[0]
        summary = merge_clients(stack.model, str(plan.release), runs)
        write_json(run_dir / "summary.json", summary)
        say(f"collected {len(runs)} client result(s); latency: {summary['latency_source']}")
        manifest.update(status="ok", exit_code=0)
        return BenchResult(run_dir, summary, manifest)
    except BaseException as exc:
        manifest.update(
            status="failed",
            exit_code=getattr(exc, "exit_code", None),
            error=exc.one_line() if isinstance(exc, TisbenchError) else f"{type(exc).__name__}: {exc}",
        )
        keep = False  # a failed or interrupted lab never stays behind
        raise
    finally:
        engine.with_signals_masked(lambda: _finish(client, name, run_dir, run_area, ids, manifest, keep, say))


def _finish(
    client: docker.DockerClient,
    name: str,
    run_dir: Path,
    run_area: Path,
    ids: dict[str, str],
    manifest: dict[str, Any],
    keep: bool,
    say: Say,
) -> None:
    """Save the server's log and the manifest, then remove the lab (unless kept)."""
    try:
        if SERVER in ids:
            server_log = "".join(swarm.task_logs(client, ids[SERVER]).values())
            write_atomic(run_dir / "logs" / "triton_server.log", server_log)
            found = _SERVER_VERSION.search(server_log)
            manifest["server_version"] = found.group(1) if found else "?"
    finally:
        manifest["ended_utc"] = utc_now()
        write_json(run_dir / "manifest.json", manifest)
        if keep:
            say(f"swarm lab {name} kept: tisbench down {name} removes it")
        else:
            swarm.remove_swarm_lab(client, name)
            shutil.rmtree(run_area, ignore_errors=True)
            say(f"swarm lab {name} removed")
