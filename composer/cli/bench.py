"""Commands that benchmark: bench, lab, matrix, and the dataset helpers."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from composer.cli.options import (
    STACK_DIR,
    bench_options,
    bench_request,
    choices,
    docker_host_option,
    emit,
    engine_choice,
    engine_options,
    gpus_option,
    image_source,
    images_option,
    kube_choice,
    load_plan,
    matrix_bench_options,
    preflight,
    reclaim_passthrough,
    release_option,
    say,
    shared_memory_option,
    strongest_memory,
)
from composer.core.errors import UsageError


def _run_and_show(handle: Any, request: Any) -> Any:
    from composer.cli.live import LiveView
    from composer.labs.bench import run_bench

    with LiveView(handle.name) as view:
        result = run_bench(handle, request, say=view.say, on_point=view.point, on_progress=view.progress)
    _show_result(result)
    _raise_if_unstable(result)
    return result


def _show_result(result: Any) -> None:
    from composer.cli.console import table

    sweep = result.summary.get("sweep", "concurrency")
    repeats = result.summary.get("repeats")
    rows = [
        [
            f"{row.get(sweep)}" + (" (unstable)" if row.get("stable") is False else ""),
            _with_interval(row["throughput_infer_per_sec"], row.get("throughput_interval"), 1, 1),
            *(f"{row[k] / 1000:.3f}" if row.get(k) is not None else "–" for k in _LATENCY_KEYS),
            _with_interval(row.get("p99_latency_us"), row.get("p99_latency_interval"), 1000, 3),
        ]
        for row in result.summary["rows"]
    ]
    basis = f"mean of {repeats} repeats, 95 % CI" if repeats else "range of the run's windows"
    table(
        [sweep, "infer/s", "avg ms", "p50 ms", "p90 ms", "p95 ms", "p99 ms"],
        rows,
        title=f"{result.summary['model']} (intervals: {basis})",
    )
    for compared in result.summary.get("transports") or []:
        click.echo(
            f"  {compared['transport']}: "
            + ", ".join(
                f"{sweep.replace('_', ' ')} {row.get(sweep)} {row['throughput_infer_per_sec']:,.1f} infer/s"
                for row in compared["rows"]
            )
        )
    from composer.reports.run_report import write_reports

    write_reports(result.run_dir)
    click.echo(f"run directory: {result.run_dir}")


_LATENCY_KEYS = ("avg_latency_us", "p50_latency_us", "p90_latency_us", "p95_latency_us")


def _with_interval(value: float | None, interval: list[float] | None, scale: float, digits: int) -> str:
    if value is None:
        return "–"
    text = f"{value / scale:,.{digits}f}"
    return text if not interval else f"{text} ({interval[0] / scale:,.{digits}f}–{interval[1] / scale:,.{digits}f})"


def _raise_if_unstable(result: Any) -> None:
    """Exit 7 once the numbers are shown and written, when some point never settled."""
    from composer.core.errors import UnstablePoints

    points = result.manifest.get("unstable_points") or []
    if result.manifest.get("status") != "unstable" or not points:
        return
    sweep = result.summary.get("sweep", "concurrency").replace("_", " ")
    named = ", ".join(sorted({f"{p['point']:g}" for p in points}, key=float))
    raise UnstablePoints(
        f"{len(points)} point(s) never met perf_analyzer's stability rule ({sweep} {named}): kept with their "
        "numbers, marked unstable in summary.json and the reports",
        "measure longer (--measurement-requests, --measurement-interval), on a quieter machine, or add "
        "--repeat 3 for intervals across runs; --require-stable fails such a run instead",
    )


@click.command(context_settings={"ignore_unknown_options": False})
@click.argument("name", required=False)
@bench_options
@docker_host_option
def bench(name: str | None, **kw: Any) -> None:
    """Run perf_analyzer in lab NAME's sdk container against triton_server:8000.

    Shapes of variable inputs are derived from the model's metadata and the input data, so
    perf_analyzer never stops at "needs to have its shape fully defined". Arguments after
    `--` go to perf_analyzer as they are. NAME may be left out when exactly one lab runs.
    """
    from composer.engine import containers as engine
    from composer.labs import registry
    from composer.labs.handle import open_lab

    if reclaim_passthrough(name, kw):
        name = None
    request = bench_request(kw)
    client = engine.connect()
    if name is None:
        running = [lab.name for lab in registry.status()]
        if len(running) != 1:
            raise UsageError(f"bench needs a lab NAME ({len(running)} labs run)", "see tisbench status")
        name = running[0]
    _run_and_show(open_lab(client, name, model=request.model), request)


@click.command()
@STACK_DIR
@release_option
@images_option
@click.option(
    "--keep",
    is_flag=True,
    help="Leave the lab running afterwards, after a failure too, never after Ctrl-C (tisbench down NAME removes it).",
)
@click.option("--timeout", type=click.FloatRange(min=0.1), help="Seconds to wait for readiness.")
@bench_options
@gpus_option
@shared_memory_option
@engine_options
@docker_host_option
def lab(
    stack_dir: Path,
    release: str | None,
    images: str | None,
    keep: bool,
    timeout: float | None,
    gpus: str | None,
    shared_memory: str | None,
    engine: str | None,
    clients: int | None,
    kube_context: str | None,
    namespace: str | None,
    **kw: Any,
) -> None:
    """Up → ready → bench → collect → down, in one command.

    The lab is removed on success, failure and Ctrl-C, unless --keep. The run directory holds
    perf_analyzer.csv, summary.json, manifest.json, logs/ and reports. With --engine swarm the
    server runs as a swarm service and --clients perf_analyzer replicas load it together; their
    results are merged into one run directory (per-client files under clients/). With --engine
    kubernetes the server is a Deployment behind a Service and --clients analyzer pods run
    perf_analyzer through the API; models/ and dataset/ travel through the API too.
    """
    from composer.labs.handle import handle_of

    if reclaim_passthrough(stack_dir, kw):
        stack_dir = Path(".")
    memories = choices(shared_memory, "--shared-memory", ("none", "system", "cuda"))
    request = replace(bench_request(kw), shared_memories=memories if len(memories) > 1 else ())
    plan = load_plan(stack_dir, release, images, kw["model"], gpus, strongest_memory(shared_memory))
    chosen_engine, chosen_clients = engine_choice(plan, engine, clients)
    kube_choice(chosen_engine, kube_context, namespace)
    preflight(plan, request)
    if chosen_engine == "swarm":
        from composer.cli.live import LiveView
        from composer.labs.swarm import run_swarm_lab

        with LiveView(plan.stack.name) as view:
            result = run_swarm_lab(plan, chosen_clients, request, say=view.say, timeout_s=timeout, keep=keep)
        _show_result(result)
        _raise_if_unstable(result)
        return
    if chosen_engine == "kubernetes":
        from composer.cli.live import LiveView
        from composer.labs.kube_bench import run_kube_lab

        with LiveView(plan.stack.name) as view:
            result = run_kube_lab(plan, chosen_clients, request, say=view.say, timeout_s=timeout, keep=keep,
                                  context=kube_context, namespace=namespace, on_point=view.point,
                                  on_progress=view.progress)  # fmt: skip
        _show_result(result)
        _raise_if_unstable(result)
        return
    from composer.labs.local import local_session

    session = local_session(plan, say, keep=keep, timeout_s=timeout, while_booting=_prepare_bench)
    with session as running:
        from composer.cli.live import LiveView
        from composer.labs.bench import run_bench

        with LiveView(running.name) as view:
            # perf_analyzer's outputs and the server's log are in hand: the lab goes while they are written up
            result = run_bench(
                handle_of(running),
                request,
                say=view.say,
                on_point=view.point,
                lab_done=session.remove_early,
                on_progress=view.progress,
            )
        _show_result(result)
    _raise_if_unstable(result)


def _prepare_bench() -> None:
    """What only the benchmark and its reports need, imported while Triton boots (the lab waits for
    its boot anyway), not before the server starts and never beside the measurement: the bench
    and report modules, rich's console and table, matplotlib."""
    import composer.labs.bench  # noqa: F401
    from composer.cli.console import prepare_console
    from composer.reports.run_report import prepare_charts

    prepare_console()
    prepare_charts()


@click.group()
@docker_host_option
def dataset() -> None:
    """Work with perf_analyzer input data."""


@dataset.command("skeleton")
@click.argument("name")
@click.option("-m", "--model", help="Model (default: the lab's).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
@docker_host_option
def dataset_skeleton(name: str, model: str | None, output: Path | None) -> None:
    """Write a valid input.json for a model of running lab NAME, from the server's metadata."""
    import json

    from composer.analyzer.model_inputs import ModelInputs, skeleton
    from composer.core.errors import AnalyzerError
    from composer.engine import containers as engine
    from composer.engine.tritonhttp import http_module
    from composer.labs.handle import open_lab

    handle = open_lab(engine.connect(), name, model=model)
    triton = http_module().InferenceServerClient(
        url=f"{engine.probe_host(handle.stack.server.host)}:{handle.http_port}",
        connection_timeout=5,
        network_timeout=30,
    )
    try:
        inputs = ModelInputs.from_metadata(
            triton.get_model_metadata(handle.stack.model), triton.get_model_config(handle.stack.model)
        )
    except Exception as exc:
        raise AnalyzerError(
            f"cannot read model {handle.stack.model!r} from lab {name} ({exc})", "tisbench status"
        ) from None
    finally:
        triton.close()
    text = json.dumps(skeleton(inputs), indent=2) + "\n"
    emit(text, output)


@click.command()
@STACK_DIR
@click.option("--releases", required=True, metavar="R1,R2,...", help="Releases in order; the first is the baseline.")
@images_option
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), help="Directory (default: runs/matrix-<UTC time>)."
)
@click.option(
    "--repeat",
    type=click.IntRange(1, 20),
    default=1,
    show_default=True,
    help="Runs per release; medians are reported and their spread is the noise a delta must beat.",
)
@matrix_bench_options
@gpus_option
@docker_host_option
def matrix(
    stack_dir: Path, releases: str, images: str | None, out: Path | None, repeat: int, gpus: str | None, **kw: Any
) -> None:
    """Benchmark the same stack across releases: one full lab per release (and repeat), then a
    table per sweep point with deltas against the first release. A release that fails is
    reported with its reason; the others still run.
    """
    from datetime import datetime, timezone

    from composer.labs.matrix import parse_releases, run_matrix
    from composer.reports.matrix_report import matrix_markdown, write_matrix_reports

    chosen = parse_releases(releases)
    if reclaim_passthrough(stack_dir, kw):
        stack_dir = Path(".")
    request = bench_request(kw)
    if request.protocols:
        raise UsageError(f"--protocol {','.join(request.protocols)}: matrix measures one protocol", "give one")
    preflight(load_plan(stack_dir, chosen[0], images, kw["model"], gpus), request)
    out_dir = out or Path("runs") / f"matrix-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"
    doc = run_matrix(stack_dir, chosen, images, out_dir, repeat, request, say, gpus=gpus, **image_source())
    write_matrix_reports(doc, out_dir)
    click.echo(matrix_markdown(doc))
    click.echo(f"matrix directory: {out_dir}")
    if not any(r["status"] == "ok" for r in doc["releases"]):
        from composer.core.errors import StackError

        raise StackError("every release in the matrix failed", f"see the reasons in {out_dir}/matrix.md")


COMMANDS = (bench, lab, dataset, matrix)
