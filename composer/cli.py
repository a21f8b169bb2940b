"""Click commands only: parse, call, translate TisbenchError → one line on stderr + exit code.

Heavy modules (docker, tritonclient, matplotlib, jinja2) are imported inside the commands so
that ``tisbench --help`` starts fast.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn, TypeVar

import click

from composer import __version__
from composer.errors import Interrupted, SignalReceived, TisbenchError, UsageError, interruption_message

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES = """\b
Exit codes:
  0    ok
  1    a comparison found a regression
  2    bad input (usage, stack file, release, dataset)
  3    Docker unavailable or an image missing
  4    lab failed (start, readiness, model load)
  5    analysis failed (perf_analyzer)
  130  interrupted (everything created was removed)
"""

STACK_DIR = click.argument("stack_dir", required=False, default=".", type=click.Path(file_okay=False, path_type=Path))


def _release_option(f: F) -> F:
    return click.option(
        "--release",
        "-r",
        envvar="TISBENCH_RELEASE",
        metavar="YY.MM",
        help="Triton release, e.g. 24.10 (≥ 23.03). Default: stack.yaml, then 24.10. Env: TISBENCH_RELEASE.",
    )(f)


def _images_option(f: F) -> F:
    return click.option(
        "--images",
        type=click.Choice(["ngc", "lab"]),
        envvar="TISBENCH_IMAGES",
        help="ngc: nvcr.io/nvidia/tritonserver:<R>-py3[-sdk]; lab: locally built CPU stand-ins "
        "(make lab-images). Default: stack.yaml, then ngc. Env: TISBENCH_IMAGES.",
    )(f)


def _raise_interrupted(signum: int, frame: FrameType | None) -> NoReturn:
    raise SignalReceived(signal.Signals(signum).name)


def _fail(error: TisbenchError) -> NoReturn:
    click.echo(f"tisbench: error: {error.one_line()}", err=True)
    sys.exit(error.exit_code)


def _fail_usage(error: click.UsageError) -> NoReturn:
    """click's own usage errors (unknown option, bad choice) also become one line."""
    command = error.ctx.command_path if error.ctx else "tisbench"
    _fail(UsageError(error.format_message(), f"see {command} --help"))


class _Group(click.Group):
    """Translates the error hierarchy once, here, for every command."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as error:
            _fail_usage(error)

    def invoke(self, ctx: click.Context) -> Any:
        signal.signal(signal.SIGTERM, _raise_interrupted)
        try:
            return super().invoke(ctx)
        except TisbenchError as error:
            _fail(error)
        except click.UsageError as error:
            _fail_usage(error)
        except KeyboardInterrupt as interruption:
            _fail(
                Interrupted(
                    interruption_message(interruption),
                    "what the command had started was removed; a run directory it began is kept, marked failed",
                )
            )


@click.group(cls=_Group, epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tisbench")
@click.option(
    "--docker-host",
    metavar="URL",
    help="Docker engine to use (unix://, tcp:// or ssh://; default: DOCKER_HOST, then the local socket). "
    "On an engine other than the local one, models/ and dataset/ are copied into volumes instead of bind-mounted.",
)
def main(docker_host: str | None) -> None:
    """Turn a Triton model repository plus perf_analyzer input data into an isolated,
    reproducible benchmark lab on Docker.

    A STACK_DIR holds models/ (a Triton model repository), dataset/ (perf_analyzer input, usually
    dataset/input.json) and an optional stack.yaml. Every STACK_DIR defaults to the current directory.

    \b
    Typical use, from inside a stack directory:
      tisbench lab --release 24.10 --images lab    # up, ready, bench, collect, down
      tisbench up --release 23.08                   # or step by step: up, bench NAME, down NAME
    """
    if docker_host:
        os.environ["DOCKER_HOST"] = docker_host


def _engine_options(f: F) -> F:
    f = click.option(
        "--clients",
        type=click.IntRange(1, 256),
        metavar="N",
        help="perf_analyzer replicas loading the server together (swarm only). Default: stack.yaml, then 1.",
    )(f)
    return click.option(
        "--engine",
        type=click.Choice(["local", "swarm"]),
        envvar="TISBENCH_ENGINE",
        help="local: containers on one engine; swarm: services on the Swarm the client points at "
        "(never initialised by tisbench). Default: stack.yaml, then local. Env: TISBENCH_ENGINE.",
    )(f)


def _engine_choice(plan: Any, engine: str | None, clients: int | None) -> tuple[str, int]:
    chosen = engine or plan.stack.engine or "local"
    count = clients or plan.stack.clients or 1
    if chosen == "local" and count > 1:
        raise UsageError(f"--clients {count} needs --engine swarm", "one analyzer per lab on a single engine")
    return chosen, count


def _gpus_option(f: F) -> F:
    return click.option(
        "--gpus",
        envvar="TISBENCH_GPUS",
        metavar="auto|none|all|N|device=ID,…",
        help="GPUs for triton_server. Default: stack.yaml server.gpus, then auto (all when the engine has the "
        "NVIDIA runtime, else none; render shows auto as none). Env: TISBENCH_GPUS.",
    )(f)


def _load(
    stack_dir: Path, release: str | None, images: str | None, model: str | None = None, gpus: str | None = None
) -> Any:
    from composer.plan import plan_lab

    return plan_lab(stack_dir, release=release, images=images, model=model, gpus=gpus)


@main.command()
@STACK_DIR
@_release_option
@_images_option
@click.option("--name", help="Compose project name written into the file. Default: the stack's name.")
@click.option("-m", "--model", help="Model the lab serves for benchmarking (overrides stack.yaml).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
@_gpus_option
@_engine_options
def render(
    stack_dir: Path,
    release: str | None,
    images: str | None,
    name: str | None,
    model: str | None,
    output: Path | None,
    gpus: str | None,
    engine: str | None,
    clients: int | None,
) -> None:
    """Print the lab's docker-compose.yml (server + sdk analyzer on tis_net).

    The file is what `tisbench up` builds; `docker compose -f FILE up -d` builds the same lab.
    With --engine swarm it is the stack file (deploy: sections) for `docker stack deploy`.
    """
    from composer.config import parse_lab_name

    plan = _load(stack_dir, release, images, model, gpus)
    project = parse_lab_name(name) if name else plan.stack.name
    chosen_engine, chosen_clients = _engine_choice(plan, engine, clients)
    if chosen_engine == "swarm":
        from composer.bench import BenchRequest
        from composer.swarm_lab import render_swarm_file

        text = render_swarm_file(plan, project, chosen_clients, BenchRequest()).text
    else:
        text = plan.render(project)
    _emit(text, output)


@main.command()
@STACK_DIR
@_release_option
@_images_option
@click.option("-m", "--model", help="Model to benchmark (overrides stack.yaml).")
def check(stack_dir: Path, release: str | None, images: str | None, model: str | None) -> None:
    """Validate the stack directory, stack.yaml, release and input data, without Docker.

    The input data is checked against the model's config.pbtxt, and the --shape values a bench
    would pass are shown.
    """
    plan = _load(stack_dir, release, images, model)
    shapes = plan.check_input_data()
    click.echo(plan.describe())
    shown = " ".join(f"{name}:{','.join(str(d) for d in dims)}" for name, dims in shapes.items())
    click.echo(f"shapes     {shown or 'none needed'}")


def run() -> None:
    """Console entry point: survives a closed stdout (piping into head), and once the command has
    finished (its cleanup already done) exits without the interpreter's slow teardown."""
    try:
        main()
    except BrokenPipeError:
        os._exit(0)
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        if done.code is not None and not isinstance(done.code, int):
            click.echo(done.code, err=True)
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BrokenPipeError:
            os._exit(0)
        os._exit(code)


def _emit(text: str, output: Path | None) -> None:
    """Print a document, or write it atomically to ``output`` and say so on stderr."""
    from composer.fsutil import write_atomic

    if output is None:
        click.echo(text, nl=False)
    else:
        write_atomic(output, text)
        click.echo(f"wrote {output}", err=True)


def _say(message: str) -> None:
    click.echo(f"tisbench: {message}", err=True)


@main.command()
@STACK_DIR
@_release_option
@_images_option
@click.option("--name", help="Lab name (compose project). Default: <stack name>-<4 hex>, unique.")
@click.option("--timeout", type=click.FloatRange(min=0.1), help="Seconds to wait for the server and model to be ready.")
@click.option("-m", "--model", help="Model to wait for (overrides stack.yaml).")
@_gpus_option
def up(
    stack_dir: Path,
    release: str | None,
    images: str | None,
    name: str | None,
    timeout: float | None,
    model: str | None,
    gpus: str | None,
) -> None:
    """Start a lab and return once Triton and the model are ready.

    Renders docker-compose.yml into STACK_DIR/.tisbench/NAME/, creates network NAME_tis_net and
    containers NAME-triton_server-1 and NAME-perf_analyzer-1 with the docker SDK (labelled so
    `docker compose -p NAME ps|logs|down` work), then waits. A model that fails to load stops
    the wait at once with Triton's reason. Prints the lab name on stdout.
    """
    from composer import lab as labs
    from composer.config import parse_lab_name

    plan = _load(stack_dir, release, images, model, gpus)
    running = labs.up(plan, name=parse_lab_name(name) if name else None, timeout_s=timeout, say=_say)
    click.echo(running.name)


@main.command()
@click.argument("name", required=False)
@click.option("--all", "all_labs", is_flag=True, help="Remove every tisbench lab on this engine (nothing else).")
def down(name: str | None, all_labs: bool) -> None:
    """Remove a lab's containers, network and run area. Safe to repeat on a half-removed lab."""
    from composer import lab as labs

    if all_labs == bool(name):
        raise UsageError("down takes a lab NAME or --all", "see tisbench status for lab names")
    if all_labs:
        removed = labs.down_all()
        _say(f"removed {len(removed)} lab(s){': ' + ', '.join(removed) if removed else ''}")
    else:
        assert name is not None
        labs.down(name)
        _say(f"removed lab {name}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(as_json: bool) -> None:
    """List every tisbench lab on this engine: release, model, services, host ports, age."""
    import json

    from composer import lab as labs

    found = labs.status()
    if as_json:
        click.echo(json.dumps([lab.as_dict() for lab in found], indent=2))
        return
    if not found:
        click.echo("no tisbench labs running")
        return
    from composer.console import table

    rows = []
    for lab in found:
        state = ", ".join(f"{k}={v}" for k, v in sorted(lab.services.items())) or "-"
        note = "ORPHANED (owner gone)" if lab.orphaned else (lab.problem or "")
        ports = " ".join(f"{k}:{v}" for k, v in lab.ports.items())
        rows.append([lab.name, lab.release, lab.model, state, ports, f"{lab.age_s:.0f}s", note])
    table(["lab", "release", "model", "services", "ports (127.0.0.1)", "age", "note"], rows)


@main.command()
@click.argument("name")
@click.option(
    "--service", type=click.Choice(["triton_server", "perf_analyzer"]), default="triton_server", show_default=True
)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until Ctrl-C.")
def logs(name: str, service: str, follow: bool) -> None:
    """Print a lab service's log."""
    from composer import lab as labs
    from composer import stack as engine

    client = engine.connect()
    if _print_swarm_logs(client, name, service):
        return
    container = engine.find_service(labs.find_lab(client, name), service)
    if container is None:
        raise UsageError(f"lab {name} has no {service} container", "it was removed; tisbench down NAME cleans the rest")
    if follow:
        for chunk in engine.follow_logs(client, container["Id"]):
            click.echo(chunk.decode("utf-8", errors="replace"), nl=False)
    else:
        click.echo(engine.container_logs(client, container["Id"]), nl=False)


def _print_swarm_logs(client: Any, name: str, service: str) -> bool:
    """A swarm lab's service log, task by task; False when NAME is not a swarm lab."""
    from composer import swarm

    services = [s for s in swarm.lab_services(client, name) if s["Spec"]["Name"].endswith(f"_{service}")]
    if not services:
        return False
    for task, text in swarm.task_logs(client, services[0]["ID"]).items():
        click.echo(f"--- task {task}")
        click.echo(text, nl=False)
    return True


@main.group()
def images() -> None:
    """Build and list the CPU-only lab images (tisbench-lab/tritonserver:<R>-py3[-sdk])."""


@images.command("build")
@click.option(
    "--release", "releases", multiple=True, metavar="YY.MM", help="Release to build (repeatable). Default: 24.10."
)
@click.option("--all", "all_releases", is_flag=True, help="Build every release that has a lab recipe.")
@click.option("--force", is_flag=True, help="Rebuild even when both tags exist.")
def images_build(releases: tuple[str, ...], all_releases: bool, force: bool) -> None:
    """Build lab images from PyPI wheels and Debian minbase roots (needs root and debootstrap).

    Skipped when both tags of a release already exist, unless --force.
    """
    from composer import stack as engine
    from composer.images import LAB_RELEASES, build_lab_images
    from composer.release import parse_release

    chosen = sorted(LAB_RELEASES) if all_releases else [str(parse_release(r)) for r in releases] or ["24.10"]
    for r in chosen:
        if r not in LAB_RELEASES:
            raise UsageError(f"--release {r}: no lab recipe", f"lab releases: {', '.join(sorted(LAB_RELEASES))}")
    client = engine.connect(timeout_s=600)
    for tag in build_lab_images(client, chosen, force=force, progress=_say):
        click.echo(tag)


@images.command("list")
def images_list() -> None:
    """Show which lab images exist on this engine."""
    from composer import stack as engine
    from composer.images import LAB_RELEASES, lab_image_tags

    client = engine.connect()
    present = {tag for image in client.api.images() for tag in (image.get("RepoTags") or [])}
    for release in sorted(LAB_RELEASES):
        for tag in lab_image_tags(release):
            click.echo(f"{tag}\t{'present' if tag in present else 'missing'}")


def _bench_options(f: F) -> F:
    return _bench_options_with(f, run_dir=True)


def _matrix_bench_options(f: F) -> F:
    return _bench_options_with(f, run_dir=False)


def _bench_options_with(f: F, *, run_dir: bool) -> F:
    options = [
        click.option("-m", "--model", help="Model to benchmark (default: the stack's)."),
        click.option("--concurrency", metavar="A[:B[:STEP]]", help="Concurrency sweep, e.g. 1:4:1."),
        click.option(
            "--request-rate", metavar="A[:B[:STEP]]", help="Request-rate sweep (infer/s) instead of concurrency."
        ),
        click.option(
            "--input-data",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Input JSON under the stack's dataset/ (default: analyzer.input_data).",
        ),
        click.option(
            "--shape",
            "shapes",
            multiple=True,
            metavar="IN:DIMS",
            help="Shape of a variable input, e.g. age:1 (repeatable; wins over derived shapes).",
        ),
        click.option(
            "--no-auto-shape", is_flag=True, help="Pass only the --shape given; do not derive shapes from the data."
        ),
        click.option("--protocol", type=click.Choice(["http", "grpc"]), help="Protocol perf_analyzer uses."),
        click.option(
            "--measurement-requests", type=click.IntRange(1, 10_000_000), help="Requests per measurement window."
        ),
        click.option(
            "--measurement-interval",
            type=click.IntRange(100, 3_600_000),
            metavar="MS",
            help="Time window length in ms.",
        ),
        *(
            [
                click.option(
                    "--out", type=click.Path(path_type=Path), help="Run directory (default: runs/<UTC time>-<lab>)."
                )
            ]
            if run_dir
            else []
        ),
        click.option(
            "--bench-timeout", type=click.FloatRange(min=1), help="Kill perf_analyzer after this many seconds."
        ),
        click.argument("extra", nargs=-1, type=click.UNPROCESSED),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _bench_request(kw: dict[str, Any]) -> Any:
    from composer.bench import BenchRequest
    from composer.dataset import parse_shape_option
    from composer.sweep import parse_sweep

    if kw["concurrency"] and kw["request_rate"]:
        raise UsageError("--concurrency and --request-rate are both given", "choose one load mode")
    if kw["measurement_requests"] and kw["measurement_interval"]:
        raise UsageError(
            "--measurement-requests and --measurement-interval are both given", "choose one measurement mode"
        )
    sweep = None
    if kw["concurrency"]:
        sweep = parse_sweep(kw["concurrency"], "concurrency")
    elif kw["request_rate"]:
        sweep = parse_sweep(kw["request_rate"], "request_rate")
    return BenchRequest(
        model=kw["model"],
        sweep=sweep,
        input_data=kw["input_data"],
        shapes=dict(parse_shape_option(s) for s in kw["shapes"]),
        protocol=kw["protocol"],
        measurement_requests=kw["measurement_requests"],
        measurement_interval_ms=kw["measurement_interval"],
        extra_args=tuple(kw["extra"]),
        auto_shape=not kw["no_auto_shape"],
        out=kw.get("out"),
        timeout_s=kw["bench_timeout"],
    )


def _run_and_show(handle: Any, request: Any) -> Any:
    from composer.bench import run_bench
    from composer.live import LiveView

    with LiveView(handle.name) as view:
        result = run_bench(handle, request, say=view.say, on_point=view.point)
    _show_result(result)
    return result


def _show_result(result: Any) -> None:
    from composer.console import table

    sweep = result.summary.get("sweep", "concurrency")
    rows = [
        [
            row.get(sweep),
            f"{row['throughput_infer_per_sec']:.1f}",
            *(
                f"{row[k] / 1000:.3f}"
                for k in ("avg_latency_us", "p50_latency_us", "p90_latency_us", "p95_latency_us", "p99_latency_us")
            ),
        ]
        for row in result.summary["rows"]
    ]
    table(
        [sweep, "infer/s", "avg ms", "p50 ms", "p90 ms", "p95 ms", "p99 ms"], rows, title=f"{result.summary['model']}"
    )
    from composer.report import write_reports

    write_reports(result.run_dir)
    click.echo(f"run directory: {result.run_dir}")


@main.command(context_settings={"ignore_unknown_options": False})
@click.argument("name", required=False)
@_bench_options
def bench(name: str | None, **kw: Any) -> None:
    """Run perf_analyzer in lab NAME's sdk container against triton_server:8000.

    Shapes of variable inputs are derived from the model's metadata and the input data, so
    perf_analyzer never stops at "needs to have its shape fully defined". Arguments after
    `--` go to perf_analyzer as they are. NAME may be left out when exactly one lab runs.
    """
    from composer import lab as labs
    from composer import stack as engine
    from composer.bench import open_lab

    request = _bench_request(kw)
    client = engine.connect()
    if name is None:
        running = [lab.name for lab in labs.status()]
        if len(running) != 1:
            raise UsageError(f"bench needs a lab NAME ({len(running)} labs run)", "see tisbench status")
        name = running[0]
    _run_and_show(open_lab(client, name, model=request.model), request)


@main.command()
@STACK_DIR
@_release_option
@_images_option
@click.option("--keep", is_flag=True, help="Leave the lab running afterwards (remove it with tisbench down NAME).")
@click.option("--timeout", type=click.FloatRange(min=0.1), help="Seconds to wait for readiness.")
@_bench_options
@_gpus_option
@_engine_options
def lab(
    stack_dir: Path,
    release: str | None,
    images: str | None,
    keep: bool,
    timeout: float | None,
    gpus: str | None,
    engine: str | None,
    clients: int | None,
    **kw: Any,
) -> None:
    """Up → ready → bench → collect → down, in one command.

    The lab is removed on success, failure and Ctrl-C, unless --keep. The run directory holds
    perf_analyzer.csv, summary.json, manifest.json, logs/ and reports. With --engine swarm the
    server runs as a swarm service and --clients perf_analyzer replicas load it together; their
    results are merged into one run directory (per-client files under clients/).
    """
    from composer import lab as labs
    from composer.bench import handle_of

    request = _bench_request(kw)
    plan = _load(stack_dir, release, images, kw["model"], gpus)
    chosen_engine, chosen_clients = _engine_choice(plan, engine, clients)
    if chosen_engine == "swarm":
        from composer.live import LiveView
        from composer.swarm_lab import run_swarm_lab

        with LiveView(plan.stack.name) as view:
            result = run_swarm_lab(plan, chosen_clients, request, say=view.say, timeout_s=timeout, keep=keep)
        _show_result(result)
        return
    import threading

    from composer.bench import run_bench
    from composer.live import LiveView
    from composer.report import prepare_charts

    warm = threading.Thread(target=prepare_charts, name="prepare-charts", daemon=True)
    warm.start()
    running = labs.up(plan, name=None, timeout_s=timeout, say=_say, owned=not keep)
    warm.join()  # done long before: Triton's boot outlasts the import; never overlap the measurement
    teardown = None
    try:
        with LiveView(running.name) as view:
            result = run_bench(handle_of(running), request, say=view.say, on_point=view.point)
        if not keep:  # results are collected: remove the lab while the reports are drawn
            teardown = labs.release_in_background(running)
        _show_result(result)
    finally:
        if keep:
            _say(f"lab {running.name} kept: tisbench down {running.name} removes it")
        else:
            labs.finish_teardown(running, teardown)
            _say(f"lab {running.name} removed")


RUN_DIR = click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))


@main.command()
@RUN_DIR
@click.option("--format", "fmt", type=click.Choice(["md", "html", "json"]), default="md", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
def report(run_dir: Path, fmt: str, output: Path | None) -> None:
    """Render a run directory as Markdown, one self-contained HTML page, or JSON."""
    from composer.report import render_report

    text = render_report(run_dir, fmt)
    _emit(text, output)


@main.command()
@click.argument("run_a", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("run_b", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--max-regression",
    type=click.FloatRange(min=0),
    metavar="PCT",
    help="Exit 1 when a matched point loses more than PCT % throughput or gains more than PCT % p99.",
)
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True)
def compare(run_a: Path, run_b: Path, max_regression: float | None, fmt: str) -> None:
    """Compare two runs point by point (throughput, p50, p99); B is the candidate."""
    from composer.compare import check_regressions, compare_runs, render_comparison

    comparison = compare_runs(run_a, run_b, max_regression)
    click.echo(render_comparison(comparison, fmt), nl=False)
    if max_regression is not None:
        check_regressions(comparison)


@main.command()
@click.argument("root", required=False, default="runs", type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def runs(root: Path, as_json: bool) -> None:
    """List run directories under ROOT (default: runs/) with model, release, date, best throughput."""
    import json

    from composer.compare import list_runs
    from composer.console import table

    found = list_runs(root) if root.is_dir() else []
    if as_json:
        click.echo(json.dumps([{**r.__dict__, "path": str(r.path)} for r in found], indent=2))
        return
    if not found:
        click.echo(f"no runs under {root}")
        return
    table(
        ["run", "model", "release", "started (UTC)", "status", "best infer/s"],
        [
            [
                r.path,
                r.model,
                r.release,
                r.started_utc,
                r.status,
                "-" if r.best_throughput is None else f"{r.best_throughput:.1f}",
            ]
            for r in found
        ],
    )


@main.group()
def dataset() -> None:
    """Work with perf_analyzer input data."""


@dataset.command("skeleton")
@click.argument("name")
@click.option("-m", "--model", help="Model (default: the lab's).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
def dataset_skeleton(name: str, model: str | None, output: Path | None) -> None:
    """Write a valid input.json for a model of running lab NAME, from the server's metadata."""
    import json

    import tritonclient.http as httpclient

    from composer import stack as engine
    from composer.bench import open_lab
    from composer.dataset import ModelInputs, skeleton
    from composer.errors import AnalyzerError

    handle = open_lab(engine.connect(), name, model=model)
    triton = httpclient.InferenceServerClient(
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
    _emit(text, output)


@main.command()
@STACK_DIR
@click.option("--releases", required=True, metavar="R1,R2,...", help="Releases in order; the first is the baseline.")
@_images_option
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
@_matrix_bench_options
@_gpus_option
def matrix(
    stack_dir: Path, releases: str, images: str | None, out: Path | None, repeat: int, gpus: str | None, **kw: Any
) -> None:
    """Benchmark the same stack across releases: one full lab per release (and repeat), then a
    table per sweep point with deltas against the first release. A release that fails is
    reported with its reason; the others still run.
    """
    from datetime import datetime, timezone

    from composer.matrix import parse_releases, run_matrix
    from composer.matrix_report import matrix_markdown, write_matrix_reports

    chosen = parse_releases(releases)
    request = _bench_request(kw)
    out_dir = out or Path("runs") / f"matrix-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"
    doc = run_matrix(stack_dir, chosen, images, out_dir, repeat, request, _say, gpus=gpus)
    write_matrix_reports(doc, out_dir)
    click.echo(matrix_markdown(doc))
    click.echo(f"matrix directory: {out_dir}")
    if not any(r["status"] == "ok" for r in doc["releases"]):
        from composer.errors import StackError

        raise StackError("every release in the matrix failed", f"see the reasons in {out_dir}/matrix.md")
