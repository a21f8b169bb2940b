"""Exit statuses that mean one thing: a crash is 70 with its traceback in a file, never 1 (a
regression); an interrupt is 130 even when a library turned it into another exception."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from bad_inputs import make_stack
from click.testing import CliRunner
from paths import README

from composer.cli.app import main
from composer.core.errors import EXIT_MEANINGS, ExitStatus


def _boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("an unexpected\nfailure")


def _saved_traceback(stderr: str) -> Path:
    (line,) = stderr.splitlines()
    assert line.startswith("tisbench: error: internal error (RuntimeError: an unexpected failure)"), line
    match = re.search(r"the traceback is in (\S+);", line)
    assert match, line
    return Path(match.group(1))


def test_an_unexpected_exception_is_exit_70_with_the_traceback_in_a_named_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("composer.labs.plan.plan_lab", _boom)
    state = tmp_path / "state"

    result = CliRunner().invoke(main, ["render", str(make_stack(tmp_path))], env={"XDG_STATE_HOME": str(state)})

    assert result.exit_code == ExitStatus.INTERNAL_ERROR == 70, result.output
    saved = _saved_traceback(result.stderr)
    assert saved.parent == state / "tisbench"
    text = saved.read_text()
    assert "Traceback (most recent call last)" in text and "RuntimeError: an unexpected" in text
    assert "_boom" in text, "the whole traceback, down to the failing function"
    assert result.stdout == ""


# A real process through the console script's own entry (composer.cli.entry.run, which ends with
# os._exit), with one function of the CLI replaced: ARGV after the script are tisbench's arguments.
PATCHED_RUN = """
import sys
import composer.labs.plan
{patch}
from composer.cli.entry import run
run()
"""

CRASH = """
def boom(*a, **k):
    raise RuntimeError("an unexpected failure")
composer.labs.plan.plan_lab = boom
"""

# What numpy's C init does with a Ctrl-C that lands while tritonclient imports it.
INTERRUPTED_IMPORT = """
import os, signal, time
def numpy_like(*a, **k):
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    except KeyboardInterrupt:
        raise ImportError("numpy._core.umath failed to import") from None
composer.labs.plan.plan_lab = numpy_like
"""

# A signal during an engine call that creates something waits for its answer.
DEFERRED = """
import os, signal
from composer.core import interrupts
def creates(*a, **k):
    with interrupts.deferred():
        os.kill(os.getpid(), signal.SIGTERM)
        print("the call finished", flush=True)
    print("not reached", flush=True)
composer.labs.plan.plan_lab = creates
"""


# geventhttpclient closes a socket inside ``try: … except: pass``: a Ctrl-C landing there is swallowed,
# and the command would go on; the next wait round (interrupts.checkpoint) raises it again.
SWALLOWED = """
import os, signal, time
from composer.core import interrupts
def swallows(*a, **k):
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    except:  # noqa: E722 — what the library does
        pass
    print("the library returned", flush=True)
    interrupts.checkpoint()
    print("not reached", flush=True)
composer.labs.plan.plan_lab = swallows
"""

# An interrupt between two attribute assignments of geventhttpclient's HTTPSocketPoolResponse: its
# __del__ then fails ('object has no attribute _sock'), and Python prints that with a traceback.
HALF_BUILT = """
import os, signal, time
class Response:
    def __init__(self):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
        self._sock = None
    def __del__(self):
        self._sock.close()
def builds(*a, **k):
    Response()
composer.labs.plan.plan_lab = builds
"""

# Without an interrupt, a failing finaliser is reported as Python reports it.
BROKEN_FINALISER = """
class Response:
    def __del__(self):
        raise AttributeError("a finaliser's own bug")
def builds(*a, **k):
    Response()
    raise SystemExit(0)
composer.labs.plan.plan_lab = builds
"""

INTERRUPTED_BY_SIGINT = (
    "tisbench: error: interrupted by SIGINT — what the command had started was removed; "
    "a run directory it began is kept, marked failed"
)


def _run_patched(patch: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PATCHED_RUN.format(patch=patch), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_crash_in_a_real_process_exits_70_never_1(tmp_path: Path) -> None:
    done = _run_patched(CRASH, ["render", str(make_stack(tmp_path))], {"XDG_STATE_HOME": str(tmp_path / "s")})

    assert done.returncode == 70, done.stderr
    assert "Traceback" in _saved_traceback(done.stderr).read_text()


def test_a_crash_where_no_state_dir_can_be_written_falls_back_to_the_temp_dir(tmp_path: Path) -> None:
    blocked = tmp_path / "a_file"
    blocked.write_text("not a directory")
    temp = tmp_path / "tmp"
    temp.mkdir()

    done = _run_patched(
        CRASH, ["render", str(make_stack(tmp_path))], {"XDG_STATE_HOME": str(blocked), "TMPDIR": str(temp)}
    )

    assert done.returncode == 70, done.stderr
    assert _saved_traceback(done.stderr).parent == temp


def test_an_interrupt_a_library_turned_into_an_import_error_is_exit_130(tmp_path: Path) -> None:
    done = _run_patched(INTERRUPTED_IMPORT, ["render", str(make_stack(tmp_path))], {})

    assert done.returncode == 130, done.stderr
    assert done.stderr.splitlines() == [INTERRUPTED_BY_SIGINT]


def test_a_signal_inside_a_deferred_block_is_raised_when_the_block_ends(tmp_path: Path) -> None:
    done = _run_patched(DEFERRED, ["render", str(make_stack(tmp_path))], {})

    assert done.returncode == 130, done.stderr
    assert done.stdout == "the call finished\n"
    assert "interrupted by SIGTERM" in done.stderr


def test_help_lists_every_exit_status() -> None:
    result = CliRunner().invoke(main, ["--help"])

    for status in ExitStatus:
        assert re.search(rf"^\s+{status.value}\s+{re.escape(EXIT_MEANINGS[status])}$", result.stdout, re.M), status


def test_the_readme_exit_code_table_is_exit_status() -> None:
    section = README.read_text().split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", section, re.M))

    assert rows == {str(status.value): EXIT_MEANINGS[status] for status in ExitStatus}


def test_an_interrupt_a_library_swallowed_is_raised_again_at_the_next_checkpoint(tmp_path: Path) -> None:
    done = _run_patched(SWALLOWED, ["render", str(make_stack(tmp_path))], {})

    assert done.returncode == 130, done.stderr
    assert done.stdout == "the library returned\n"
    assert "interrupted by SIGINT" in done.stderr


def test_an_interrupt_that_leaves_an_object_half_built_keeps_its_finaliser_off_stderr(tmp_path: Path) -> None:
    done = _run_patched(HALF_BUILT, ["render", str(make_stack(tmp_path))], {})

    assert done.returncode == 130, done.stderr
    assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.splitlines() == [INTERRUPTED_BY_SIGINT]


def test_a_failing_finaliser_without_an_interrupt_is_still_reported(tmp_path: Path) -> None:
    done = _run_patched(BROKEN_FINALISER, ["render", str(make_stack(tmp_path))], {})

    assert done.returncode == 0, done.stderr
    assert "Exception ignored" in done.stderr and "a finaliser's own bug" in done.stderr, done.stderr
