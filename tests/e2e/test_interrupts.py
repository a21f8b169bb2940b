"""An interrupt at any instant of `tisbench up` ends in 130 with nothing left; `down` of an absent
lab is nothing to do.

The sweep lands a SIGINT every 100 ms from 0.1 s to 2.0 s into `tisbench up`: through the CLI's
own imports, the engine calls that create the network and containers, tritonclient's import
(numpy, ≈0.6 s in) and the readiness wait. The model takes 20 s to load, so every instant
falls inside `up` however fast the machine.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import docker
import pytest

from .conftest import Tisbench
from .support import RELEASE, CliProcess, LabRegistry, e2e_lab_names

pytestmark = pytest.mark.docker

INSTANTS = [round(0.1 * step, 1) for step in range(1, 21)]


def _interrupt_up_at(stack: Path, run_root: Path, seconds: float) -> tuple[int, str]:
    proc = CliProcess(["up", stack, "--images", "lab", "--release", RELEASE], cwd=run_root)
    try:
        time.sleep(max(0.0, proc.start + seconds - time.monotonic()))
        proc.send_signal(signal.SIGINT)
        result = proc.wait(timeout=60)
    finally:
        proc.kill()
    return result.exit_code, result.stderr


def test_sigint_at_any_instant_of_up_is_130_and_leaves_nothing(
    slow_stack: Path, labs: LabRegistry, run_root: Path, docker_client: docker.DockerClient
) -> None:
    stack = slow_stack
    prefix = labs.prefixes[-1]
    failures = []
    for seconds in INSTANTS:
        code, stderr = _interrupt_up_at(stack, run_root, seconds)
        left = sorted(n for n in e2e_lab_names(docker_client) if n.startswith(prefix))
        run_areas = sorted(p.name for p in (stack / ".tisbench").glob("*"))
        if code != 130 or left or run_areas or "Traceback" in stderr or "interrupted by SIGINT" not in stderr:
            failures.append(f"at {seconds:.1f} s: exit {code}, left {left}, run areas {run_areas}\n{stderr}")
    assert not failures, f"{len(failures)} of {len(INSTANTS)} interrupts went wrong:\n" + "\n".join(failures)


def test_down_of_an_absent_lab_is_nothing_to_do(tisbench: Tisbench, labs: LabRegistry) -> None:
    name = labs.name("absent")

    result = tisbench("down", name)

    assert result.exit_code == 0, result
    assert result.stderr == f"tisbench: nothing to do: no lab named {name} on this engine\n"
