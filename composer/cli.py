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
from composer.errors import Interrupted, TisbenchError

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

STACK_DIR = click.argument(
    "stack_dir", required=False, default=".", type=click.Path(file_okay=False, path_type=Path)
)


def _release_option(f: F) -> F:
    return click.option(
        "--release", "-r", envvar="TISBENCH_RELEASE", metavar="YY.MM",
        help="Triton release, e.g. 24.10 (≥ 23.03). Default: stack.yaml, then 24.10. Env: TISBENCH_RELEASE.",
    )(f)


def _images_option(f: F) -> F:
    return click.option(
        "--images", type=click.Choice(["ngc", "lab"]), envvar="TISBENCH_IMAGES",
        help="ngc: nvcr.io/nvidia/tritonserver:<R>-py3[-sdk]; lab: locally built CPU stand-ins "
        "(make lab-images). Default: stack.yaml, then ngc. Env: TISBENCH_IMAGES.",
    )(f)


def _raise_interrupted(signum: int, frame: FrameType | None) -> NoReturn:
    raise Interrupted(f"interrupted by {signal.Signals(signum).name}", "everything the command created was removed")


def _fail(error: TisbenchError) -> NoReturn:
    click.echo(f"tisbench: error: {error.one_line()}", err=True)
    sys.exit(error.exit_code)


class _Group(click.Group):
    """Translates the error hierarchy once, here, for every command."""

    def invoke(self, ctx: click.Context) -> Any:
        signal.signal(signal.SIGTERM, _raise_interrupted)
        try:
            return super().invoke(ctx)
        except TisbenchError as error:
            _fail(error)
        except KeyboardInterrupt:
            _fail(Interrupted("interrupted", "everything the command created was removed"))


@click.group(cls=_Group, epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tisbench")
def main() -> None:
    """Turn a Triton model repository plus perf_analyzer input data into an isolated,
    reproducible benchmark lab on Docker.

    A STACK_DIR holds models/ (a Triton model repository), dataset/ (perf_analyzer input, usually
    dataset/input.json) and an optional stack.yaml. Every STACK_DIR defaults to the current directory.

    \b
    Typical use, from inside a stack directory:
      tisbench lab --release 24.10 --images lab    # up, ready, bench, collect, down
      tisbench up --release 23.08                   # or step by step: up, bench NAME, down NAME
    """


def _load(stack_dir: Path, release: str | None, images: str | None, model: str | None = None) -> Any:
    from composer.plan import plan_lab

    return plan_lab(stack_dir, release=release, images=images, model=model)


@main.command()
@STACK_DIR
@_release_option
@_images_option
@click.option("--name", help="Compose project name written into the file. Default: the stack's name.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
def render(stack_dir: Path, release: str | None, images: str | None, name: str | None, output: Path | None) -> None:
    """Print the lab's docker-compose.yml (server + sdk analyzer on tis_net).

    The file is what `tisbench up` builds; `docker compose -f FILE up -d` builds the same lab.
    """
    from composer.config import parse_lab_name
    from composer.fsutil import write_atomic

    plan = _load(stack_dir, release, images)
    text = plan.render(parse_lab_name(name) if name else plan.stack.name)
    if output is None:
        click.echo(text, nl=False)
    else:
        write_atomic(output, text)
        click.echo(f"wrote {output}", err=True)


@main.command()
@STACK_DIR
@_release_option
@_images_option
@click.option("-m", "--model", help="Model to benchmark (overrides stack.yaml).")
def check(stack_dir: Path, release: str | None, images: str | None, model: str | None) -> None:
    """Validate the stack directory, stack.yaml, release and input data, without Docker."""
    plan = _load(stack_dir, release, images, model)
    click.echo(plan.describe())


def run() -> None:
    """Console entry point that also survives a closed stdout (e.g. piping into head)."""
    try:
        main()
    except BrokenPipeError:
        os._exit(0)
