"""Every case of the bad-input corpus, through a real ``tisbench`` process: one line, right code."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest
from bad_inputs import CASES, BadInput, make_stack
from paths import unavailable

TISBENCH = Path(sys.executable).parent / "tisbench"


@functools.cache
@functools.cache
def _engine_reachable() -> bool:
    import docker
    import docker.errors

    try:
        docker.from_env(timeout=5).ping()
    except docker.errors.DockerException:
        return False
    return True


def _snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(directory)): (p.stat().st_mtime_ns, p.stat().st_size) for p in directory.rglob("*")}


def _params() -> list[object]:
    return [
        pytest.param(case, command, id=f"{command}-{case.id}", marks=[pytest.mark.docker] if case.needs_docker else [])
        for case in CASES
        for command in case.commands
    ]


def test_corpus_ids_are_unique_and_large_enough() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 30


@pytest.mark.parametrize(("case", "command"), _params())
def test_bad_input_gives_one_error_line_and_writes_nothing(case: BadInput, command: str, tmp_path: Path) -> None:
    if case.needs_docker and not _engine_reachable():
        unavailable("needs a reachable Docker engine", ci_says="CI=true: Docker cases must run")
    stack = make_stack(tmp_path, case.stack_yaml)
    if case.build is not None:
        case.build(stack)
    before = _snapshot(stack)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TISBENCH_")} | case.env
    args = [arg.replace("{stack}", str(stack)) for arg in case.args]

    done = subprocess.run(
        [str(TISBENCH), command, *args], cwd=stack, env=env, capture_output=True, text=True, timeout=60, check=False
    )

    lines = done.stderr.splitlines()
    assert done.returncode == case.exit_code, done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("tisbench: error: ")
    assert case.expect in lines[0]
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    assert _snapshot(stack) == before
