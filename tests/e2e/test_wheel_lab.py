"""A lab run by tisbench installed from a wheel (as ``pip install .`` or pipx install it), outside the
checkout: the quickstart stack it ships, its compose template and its report templates, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from installed.wheel_venv import WheelInstall

from .support import RELEASE, STEADY, LabRegistry, run_cli, write_stack_yaml

pytestmark = pytest.mark.docker


def test_installed_wheel_runs_the_quickstart_lab(
    wheel_install: WheelInstall, labs: LabRegistry, tmp_path: Path
) -> None:
    outside = {"PYTHONPATH": None, "VIRTUAL_ENV": None, "TISBENCH_PULL": "never"}
    init = run_cli(["init", "stack"], cwd=tmp_path, env=outside, tisbench=wheel_install.tisbench)
    assert init.exit_code == 0, str(init)
    write_stack_yaml(tmp_path / "stack", {"name": labs.stack_name("wheel")})  # an e2e- lab, found if left over
    done = run_cli(
        ["lab", "stack", "--release", RELEASE, "--images", "lab", "--measurement-requests", "200", *STEADY],
        cwd=tmp_path, env=outside, timeout=300, tisbench=wheel_install.tisbench,
    )
    assert done.exit_code == 0, str(done)
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["model"], summary["release"]) == ("seed_model", RELEASE)
    assert summary["rows"][0]["throughput_infer_per_sec"] > 0
    assert (run_dir / "report.html").read_text().startswith("<!DOCTYPE html>")
