"""Commands that read results: report, compare, runs."""

from __future__ import annotations

from pathlib import Path

import click

from composer.cli.options import (
    emit,
)

RUN_DIR = click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))


@click.command()
@RUN_DIR
@click.option("--format", "fmt", type=click.Choice(["md", "html", "json"]), default="md", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
def report(run_dir: Path, fmt: str, output: Path | None) -> None:
    """Render a run directory as Markdown, one self-contained HTML page, or JSON."""
    from composer.reports.run_report import render_report

    text = render_report(run_dir, fmt)
    emit(text, output)


@click.command()
@click.argument("run_a", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("run_b", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--max-regression",
    type=click.FloatRange(min=0),
    metavar="PCT",
    help="Exit 1 when a matched point's throughput or p99 is worse beyond its noise and by more than PCT % "
    "(the change's 95 % interval lies wholly past PCT).",
)
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True)
def compare(run_a: Path, run_b: Path, max_regression: float | None, fmt: str) -> None:
    """Compare two runs point by point (throughput, p50, p99); B is the candidate.

    Each change of throughput and p99 comes with its 95 % interval from both runs' noise (their
    windows, or their repeats with --repeat) and a verdict: better, worse, same, or inconclusive
    (too noisy to decide: it says about how many repeats would decide it).
    """
    from composer.runs.compare import check_regressions, compare_runs, render_comparison

    comparison = compare_runs(run_a, run_b, max_regression)
    click.echo(render_comparison(comparison, fmt), nl=False)
    if max_regression is not None:
        check_regressions(comparison)


@click.command()
@click.argument("root", required=False, default="runs", type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def runs(root: Path, as_json: bool) -> None:
    """List run directories under ROOT (default: runs/) with model, release, date, best throughput."""
    import json

    from composer.cli.console import table
    from composer.runs.compare import list_runs

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

COMMANDS = (report, compare, runs)
