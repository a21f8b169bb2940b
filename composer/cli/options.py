"""Options and helpers the command modules share: one definition of each flag, the plan it loads."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from composer.core.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])

STACK_DIR = click.argument("stack_dir", required=False, default=".", type=click.Path(file_okay=False, path_type=Path))


def release_option(f: F) -> F:
    return click.option(
        "--release",
        "-r",
        envvar="TISBENCH_RELEASE",
        metavar="YY.MM",
        help="Triton release, e.g. 24.10 (≥ 23.03). Default: stack.yaml, then 24.10. Env: TISBENCH_RELEASE.",
    )(f)


def _keep_image_source(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is not None:
        ctx.meta[f"tisbench.{param.name}"] = value
    return value


def image_source() -> dict[str, str | None]:
    """--image-repo and --pull of the running command (read by every plan it makes)."""
    meta = click.get_current_context().meta
    return {"image_repo": meta.get("tisbench.image_repo"), "pull": meta.get("tisbench.pull")}


def images_option(f: F) -> F:
    """--images, and where registry images come from: --image-repo (a mirror) and --pull (the policy)."""
    f = click.option(
        "--pull",
        type=click.Choice(["missing", "always", "never"]),
        envvar="TISBENCH_PULL",
        expose_value=False,
        callback=_keep_image_source,
        help="When to pull the server and sdk images, as compose does: missing (default), always, never. "
        "Lab images are built, never pulled. Default: stack.yaml pull, then missing. Env: TISBENCH_PULL.",
    )(f)
    f = click.option(
        "--image-repo",
        metavar="REPO",
        envvar="TISBENCH_IMAGE_REPO",
        expose_value=False,
        callback=_keep_image_source,
        help="Repository holding NGC's tags <release>-py3 and <release>-py3-sdk, e.g. a private mirror "
        "registry.example.com/nvidia/tritonserver. Default: stack.yaml image_repo, then "
        "nvcr.io/nvidia/tritonserver. Env: TISBENCH_IMAGE_REPO.",
    )(f)
    return click.option(
        "--images",
        type=click.Choice(["ngc", "lab"]),
        envvar="TISBENCH_IMAGES",
        help="ngc: nvcr.io/nvidia/tritonserver:<R>-py3[-sdk] (or --image-repo's); lab: locally built CPU "
        "stand-ins (make lab-images). Default: stack.yaml, then ngc. Env: TISBENCH_IMAGES.",
    )(f)


def _use_docker_host(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is None:
        return
    from composer.engine import host

    try:
        host.use(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def docker_host_option(f: F) -> F:
    """--docker-host, taken before or after the subcommand; the one given last (the subcommand's) wins."""
    return click.option(
        "--docker-host",
        metavar="URL",
        expose_value=False,
        callback=_use_docker_host,
        help="Docker engine to use: unix://, tcp:// or ssh://user@host[:port] (key and known_hosts from ~/.ssh). "
        "Default: DOCKER_HOST, then the local socket. On an engine other than the local one, models/ and "
        "dataset/ are copied into volumes instead of bind-mounted.",
    )(f)


def _kube_context_option(f: F) -> F:
    return click.option(
        "--kube-context",
        metavar="NAME",
        envvar="TISBENCH_KUBE_CONTEXT",
        help="kubernetes: the kubeconfig context to use (KUBECONFIG, then ~/.kube/config, as kubectl reads "
        "them). Default: the current context. Env: TISBENCH_KUBE_CONTEXT.",
    )(f)


def kube_options(f: F) -> F:
    """Where a Kubernetes lab goes: the cluster as kubectl finds it, and optionally a namespace."""
    f = click.option(
        "--namespace",
        metavar="NS",
        help="kubernetes: put the lab into this existing namespace (only its own labelled objects are removed). "
        "Default: a namespace of its own, tisbench-<lab>, removed with it.",
    )(f)
    return _kube_context_option(f)


def where_labs_run(f: F) -> F:
    """status, logs, down: the labs of one engine (local covers single-host and swarm labs), or of a cluster."""
    f = _kube_context_option(f)
    return click.option(
        "--engine",
        "engine_name",
        type=click.Choice(["local", "kubernetes"]),
        default="local",
        show_default=True,
        help="local: labs on the Docker engine (single-host and swarm); kubernetes: labs on the cluster.",
    )(f)


def engine_options(f: F) -> F:
    f = kube_options(f)
    f = click.option(
        "--clients",
        type=click.IntRange(1, 256),
        metavar="N",
        help="perf_analyzer clients loading the server together (swarm replicas, kubernetes analyzer pods). "
        "Default: stack.yaml, then 1.",
    )(f)
    return click.option(
        "--engine",
        type=click.Choice(["local", "swarm", "kubernetes"]),
        envvar="TISBENCH_ENGINE",
        help="local: containers on one engine; swarm: services on the Swarm the client points at "
        "(never initialised by tisbench); kubernetes: a Deployment, a Service and analyzer pods on the "
        "cluster KUBECONFIG names. Default: stack.yaml, then local. Env: TISBENCH_ENGINE.",
    )(f)


def engine_choice(plan: Any, engine: str | None, clients: int | None) -> tuple[str, int]:
    chosen = engine or plan.stack.engine or "local"
    count = clients or plan.stack.clients or 1
    if chosen == "local" and count > 1:
        raise UsageError(
            f"--clients {count} needs --engine swarm or --engine kubernetes", "one analyzer per lab on a single engine"
        )
    if chosen == "swarm" and plan.stack.analyzer.shared_memory != "none":
        raise UsageError(
            f"shared memory {plan.stack.analyzer.shared_memory}: a swarm's clients need not share the server's host",
            "use the local engine for shared memory, or --shared-memory none on swarm",
        )
    return chosen, count


def kube_choice(engine: str, kube_context: str | None, namespace: str | None) -> None:
    """--kube-context and --namespace belong to the kubernetes engine; a namespace is a DNS label."""
    import re

    if engine != "kubernetes" and (kube_context or namespace):
        flag = "--namespace" if namespace else "--kube-context"
        raise UsageError(f"{flag} needs --engine kubernetes", f"add --engine kubernetes, or leave {flag} out")
    if namespace is not None and not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", namespace):
        raise UsageError(
            f"--namespace {namespace!r} is not a namespace name",
            "use lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit",
        )


def gpus_option(f: F) -> F:
    return click.option(
        "--gpus",
        envvar="TISBENCH_GPUS",
        metavar="auto|none|all|N|device=ID,…",
        help="GPUs for triton_server. Default: stack.yaml server.gpus, then auto (all when the engine has the "
        "NVIDIA runtime, else none; render shows auto as none). Env: TISBENCH_GPUS.",
    )(f)


def shared_memory_option(f: F) -> F:
    return click.option(
        "--shared-memory",
        metavar="none|system|cuda[,…]",
        help="Pass tensors through shared memory the server maps, not over the socket: the lab shares the "
        "server's IPC namespace and /dev/shm with the analyzer (cuda needs --gpus). Default: "
        "analyzer.shared_memory, none. Several (none,system) are compared in one lab, with each --protocol.",
    )(f)


def choices(text: str | None, flag: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """A flag's comma-separated choices, each checked (exit 2 naming the flag)."""
    if text is None:
        return ()
    items = tuple(dict.fromkeys(item.strip() for item in text.split(",")))
    for item in items:
        if item not in allowed:
            known = ", ".join(allowed)
            raise UsageError(f"{flag} {text!r}: {item!r} is not one of {known}", "one, or several joined by commas")
    return items


def strongest_memory(text: str | None) -> str | None:
    """What the lab's design needs for --shared-memory LIST: the IPC sharing of any kind asked."""
    asked = choices(text, "--shared-memory", ("none", "system", "cuda"))
    return next((kind for kind in ("cuda", "system", "none") if kind in asked), None)


def load_plan(
    stack_dir: Path,
    release: str | None,
    images: str | None,
    model: str | None = None,
    gpus: str | None = None,
    shared_memory: str | None = None,
) -> Any:
    from composer.labs.plan import plan_lab

    return plan_lab(
        stack_dir, release=release, images=images, model=model, gpus=gpus, shared_memory=shared_memory, **image_source()
    )


def emit(text: str, output: Path | None) -> None:
    """Print a document, or write it atomically to ``output`` and say so on stderr."""
    from composer.core.fsutil import write_atomic

    if output is None:
        click.echo(text, nl=False)
    else:
        write_atomic(output, text)
        click.echo(f"wrote {output}", err=True)


def preflight(plan: Any, request: Any) -> None:
    """Bad input stops here, before any container (lab, tune, matrix alike); a note on what waits
    for the server is said."""
    for said in plan.notes:
        say(said)
    note = plan.preflight(request)
    if note:
        say(note)


def say(message: str) -> None:
    click.echo(f"tisbench: {message}", err=True)


def bench_options(f: F) -> F:
    return bench_options_with(f, run_dir=True)


def matrix_bench_options(f: F) -> F:
    return bench_options_with(f, run_dir=False)


def bench_options_with(f: F, *, run_dir: bool) -> F:
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
        click.option(
            "--protocol",
            metavar="http|grpc[,…]",
            help="Protocol perf_analyzer uses; several (http,grpc) are compared in one lab, side by side.",
        ),
        click.option(
            "--request-distribution",
            type=click.Choice(["constant", "poisson"]),
            help="How requests arrive in a --request-rate sweep: evenly spaced, or a Poisson process "
            "(default: analyzer.request_distribution, constant).",
        ),
        click.option(
            "--request-intervals",
            type=click.Path(dir_okay=False, path_type=Path),
            metavar="FILE",
            help="A file under dataset/ of µs between successive requests, one a line (looped): the load "
            "itself, instead of a sweep.",
        ),
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
                ),
                click.option(
                    "--repeat",
                    type=click.IntRange(1, 20),
                    default=1,
                    show_default=True,
                    metavar="N",
                    help="Measure the whole sweep N times, one after another (A B C A B C): each point is the "
                    "mean of N with its 95 % confidence interval (3 or more for an interval worth reading).",
                ),
                click.option(
                    "--require-stable",
                    is_flag=True,
                    help="Fail (exit 5) when a point never meets perf_analyzer's stability rule, instead of "
                    "keeping its numbers marked unstable (exit 7).",
                ),
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


def reclaim_passthrough(positional: Any, kw: dict[str, Any]) -> bool:
    """After `--`, click fills an empty optional positional (NAME, STACK_DIR) with the first
    perf_analyzer argument. Give it back to the pass-through arguments; True when it did so."""
    if positional is None or not str(positional).startswith("-"):
        return False
    kw["extra"] = (str(positional), *kw["extra"])
    return True


def bench_request(kw: dict[str, Any]) -> Any:
    from composer.analyzer.dataset import parse_shape_option
    from composer.core.sweep import parse_sweep
    from composer.labs.request import BenchRequest

    if kw["concurrency"] and kw["request_rate"]:
        raise UsageError("--concurrency and --request-rate are both given", "choose one load mode")
    if kw["measurement_requests"] and kw["measurement_interval"]:
        raise UsageError(
            "--measurement-requests and --measurement-interval are both given", "choose one measurement mode"
        )
    protocols = choices(kw["protocol"], "--protocol", ("http", "grpc"))
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
        protocol=protocols[0] if protocols else None,
        protocols=protocols if len(protocols) > 1 else (),
        measurement_requests=kw["measurement_requests"],
        measurement_interval_ms=kw["measurement_interval"],
        extra_args=tuple(kw["extra"]),
        auto_shape=not kw["no_auto_shape"],
        out=kw.get("out"),
        timeout_s=kw["bench_timeout"],
        repeat=kw.get("repeat") or 1,
        request_distribution=kw.get("request_distribution"),
        request_intervals=kw.get("request_intervals"),
        require_stable=bool(kw.get("require_stable")),
    )
