"""tisbench tune: the model configuration that serves best under a latency budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from composer.cli.options import (
    STACK_DIR,
    bench_request,
    docker_host_option,
    gpus_option,
    images_option,
    load_plan,
    preflight,
    reclaim_passthrough,
    release_option,
    say,
)
from composer.core.errors import NoCandidate, UsageError
from composer.core.tune_keys import TUNE_KEYS


def _search_options(f: Any) -> Any:
    options = [
        click.option("--latency-budget-ms", type=float, metavar="MS", help="Latency budget on p99 (or --percentile)."),
        click.option("--min-throughput", type=float, metavar="INFER/S", help="Throughput a candidate must reach."),
        click.option(
            "--objective",
            type=click.Choice(["throughput", "latency"]),
            help="Maximise throughput (default) or minimise latency, within the constraints.",
        ),
        click.option(
            "--mode",
            type=click.Choice(["quick", "brute"]),
            help="quick: coordinate search from your configuration (default); brute: the full grid.",
        ),
        click.option("--percentile", type=click.Choice(["50", "90", "95", "99"]), help="Budget percentile (99)."),
        click.option("--instances", metavar="A:B", help="Instance counts to try (default 1:4)."),
        click.option("--max-batch-size", metavar="A:B", help="max_batch_size, powers of two within (default 1:64)."),
        click.option("--dynamic-batching", type=click.Choice(["auto", "on", "off"]), help="auto tries both."),
        click.option("--concurrency", metavar="A:B", help="Concurrency, powers of two within (default 1:64)."),
        click.option("--max-measurements", type=click.IntRange(1, 100_000), help="perf_analyzer runs at most (200)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _bench_options(f: Any) -> Any:
    options = [
        click.option("-m", "--model", help="Model to tune (default: the stack's)."),
        click.option("--input-data", type=click.Path(dir_okay=False, path_type=Path), help="Input JSON in dataset/."),
        click.option("--shape", "shapes", multiple=True, metavar="IN:DIMS", help="Shape of a variable input."),
        click.option("--no-auto-shape", is_flag=True, help="Pass only the --shape given."),
        click.option("--protocol", type=click.Choice(["http", "grpc"]), help="Protocol perf_analyzer uses."),
        click.option("--measurement-requests", type=click.IntRange(1, 10_000_000), help="Requests per window."),
        click.option("--measurement-interval", type=click.IntRange(100, 3_600_000), metavar="MS", help="Window ms."),
        click.option("--bench-timeout", type=click.FloatRange(min=1), help="Seconds per perf_analyzer run."),
        click.argument("extra", nargs=-1, type=click.UNPROCESSED),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _request(kw: dict[str, Any]) -> Any:
    return bench_request({**kw, "concurrency": None, "request_rate": None, "out": None})


def _settings(plan: Any, kw: dict[str, Any]) -> Any:
    from composer.tuning.space import tune_settings

    flags = {key: kw.pop(key) for key in TUNE_KEYS}  # each tune: key of stack.yaml is a flag too
    if flags["percentile"] is not None:
        flags["percentile"] = int(flags["percentile"])
    return tune_settings(dict(plan.stack.tune), flags, str(plan.stack.file or plan.stack.directory / "stack.yaml"))


def _show(doc: dict[str, Any], out: Path) -> None:
    from composer.cli.console import table
    from composer.reports.tune_report import headers, top_rows

    table(headers(doc), top_rows(doc), title=f"tune {doc.get('model')}: top 5")
    click.echo(doc["recommendation"])
    click.echo(f"tune directory: {out}" + (" (best/config.pbtxt)" if doc.get("best") else ""))


@click.command()
@STACK_DIR
@release_option
@images_option
@_search_options
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Tune directory (runs/tune-<time>-…).")
@click.option("--timeout", type=click.FloatRange(min=0.1), help="Seconds to wait for readiness.")
@_bench_options
@gpus_option
@docker_host_option
def tune(
    stack_dir: Path,
    release: str | None,
    images: str | None,
    out: Path | None,
    timeout: float | None,
    gpus: str | None,
    **kw: Any,
) -> None:
    """Search the model configuration (instances, max_batch_size, dynamic batching) and concurrency
    that serves best within a latency budget, on one lab.

    Your configuration is the baseline, measured first; each candidate is loaded through Triton's
    repository API as a config override (no restart). Every measurement carries the spread of
    perf_analyzer's windows; finalists are re-measured interleaved, and the recommendation is the
    simplest configuration tied with the best: your own when nothing beats it beyond noise. Writes
    tune.json, report.md/.html with the frontier chart, best/config.pbtxt. Exit 6 when no candidate
    meets the constraints (the closest is named).
    """
    from composer.labs.tune import default_tune_dir, read_tune, remove_tune_dir_if_empty, run_tune
    from composer.reports.tune_report import write_tune_reports

    if reclaim_passthrough(stack_dir, kw):
        stack_dir = Path(".")
    plan = load_plan(stack_dir, release, images, kw["model"], gpus)
    if (plan.stack.engine or "local") != "local":
        raise UsageError("tune runs on a local lab only", "drop engine: swarm from stack.yaml for tune")
    settings = _settings(plan, kw)
    request = _request(kw)
    preflight(plan, request)
    out_dir = out or default_tune_dir(plan.stack.name)
    try:
        result = run_tune(plan, settings, request, out_dir, say, timeout)
    except BaseException:
        doc = read_tune(out_dir)
        if doc is None:
            remove_tune_dir_if_empty(out_dir)
        else:
            write_tune_reports(doc, out_dir)
            say(f"partial tune report: {out_dir / 'report.md'} ({doc['measurements']} measurements)")
        raise
    write_tune_reports(result.doc, out_dir)
    _show(result.doc, out_dir)
    if result.doc["status"] == "no_candidate":
        raise NoCandidate(
            result.doc["recommendation"], "relax --latency-budget-ms / --min-throughput, or widen the space"
        )


COMMANDS = (tune,)
