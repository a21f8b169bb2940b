"""The tisbench group: adds the command modules' commands, and translates TisbenchError → one
line on stderr + exit code, once, for all of them.

Heavy modules (docker, tritonclient, matplotlib, jinja2) are imported inside the commands so
that ``tisbench --help`` starts fast.
"""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

import click

from composer import __version__
from composer.cli import bench as cli_bench
from composer.cli import results as cli_results
from composer.cli import stack as cli_stack
from composer.cli import tune as cli_tune
from composer.cli.options import docker_host_option
from composer.core import interrupts
from composer.core.errors import (
    EXIT_MEANINGS,
    ExitStatus,
    Interrupted,
    TisbenchError,
    UsageError,
    interruption_message,
)

EXIT_CODES = "\b\nExit codes:\n" + "".join(f"  {code:<4} {meaning}\n" for code, meaning in EXIT_MEANINGS.items())


def _fail(error: TisbenchError) -> NoReturn:
    click.echo(f"tisbench: error: {error.one_line()}", err=True)
    sys.exit(error.exit_code)


def _fail_usage(error: click.UsageError) -> NoReturn:
    """click's own usage errors (unknown option, bad choice) also become one line."""
    command = error.ctx.command_path if error.ctx else "tisbench"
    _fail(UsageError(error.format_message(), f"see {command} --help"))


def _fail_interrupted(interruption: BaseException | None) -> NoReturn:
    if isinstance(interruption, click.Abort):  # click's wrapping of a KeyboardInterrupt it saw
        interruption = interruption.__context__
    if isinstance(interruption, KeyboardInterrupt):
        message = interruption_message(interruption)
    else:
        message = f"interrupted by {interrupts.received() or 'SIGINT'}"
    _fail(
        Interrupted(
            message, "what the command had started was removed; a run directory it began is kept, marked failed"
        )
    )


def _fail_internal(error: Exception) -> NoReturn:
    """A bug, not a verdict: exit 70 (never 1, a regression), the traceback kept in a file."""
    if interrupts.received():  # an import that turned Ctrl-C into an ImportError (numpy's C init)
        _fail_interrupted(None)
    from composer.cli.crashlog import save_traceback

    saved = save_traceback(error)
    where = f"the traceback is in {saved}" if saved else "no file could hold the traceback"
    click.echo(
        f"tisbench: error: internal error ({type(error).__name__}: {' '.join(str(error).split())[:200]}) — "
        f"{where}; please report it with that file",
        err=True,
    )
    sys.exit(ExitStatus.INTERNAL_ERROR)


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
        interrupts.install()
        try:
            return super().invoke(ctx)
        except TisbenchError as error:
            _fail(error)
        except click.UsageError as error:
            _fail_usage(error)
        except click.ClickException as error:  # a click parameter type's own error (e.g. an unreadable file)
            _fail(UsageError(error.format_message(), "see tisbench --help"))
        except (KeyboardInterrupt, click.Abort) as interruption:
            _fail_interrupted(interruption)
        except click.exceptions.Exit:
            raise
        except Exception as error:
            engine_error = _engine_error(error)
            if engine_error is not None:
                _fail(engine_error)
            _fail_internal(error)


def _engine_error(error: Exception) -> TisbenchError | None:
    """The engine's failure in one line, when it was one (only possible once docker is imported)."""
    if "docker" not in sys.modules:
        return None
    from composer.engine.host import translated

    return translated(error)


@click.group(cls=_Group, epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tisbench")
@docker_host_option
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


def run() -> None:
    """Run the CLI and exit with its ExitStatus. What escapes click's own handling (an interrupt
    during parsing, which click would call "Aborted!" and exit 1) is translated here too. A
    closed stdout (piping into head) is fine; once the command has finished (its cleanup already
    done) the process exits without the interpreter's slow teardown."""
    try:
        try:
            result = main.main(standalone_mode=False)
            code = result if isinstance(result, int) else ExitStatus.OK
        except click.ClickException as error:
            error.show()
            code = error.exit_code
        except (KeyboardInterrupt, click.Abort) as interruption:
            _fail_interrupted(interruption)
        except BrokenPipeError:
            raise
        except Exception as error:
            _fail_internal(error)
    except BrokenPipeError:
        os._exit(ExitStatus.OK)
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else ExitStatus.OK
        if done.code is not None and not isinstance(done.code, int):  # sys.exit("message"): not ours
            click.echo(done.code, err=True)
            code = ExitStatus.INTERNAL_ERROR
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        os._exit(ExitStatus.OK)
    os._exit(code)


for _commands in (cli_bench.COMMANDS, cli_stack.COMMANDS, cli_results.COMMANDS, cli_tune.COMMANDS):
    for _command in _commands:
        main.add_command(_command)
