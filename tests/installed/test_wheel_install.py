"""tisbench from a wheel in a venv of its own, run outside the checkout: it finds the templates
and the quickstart stack it ships (``pip install .``, a built wheel and pipx all install this way)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from .wheel_venv import REPO, WheelInstall, outside_env

QUICKSTART = REPO / "stacks" / "quickstart"
SYNTHETIC_RUN = REPO / "tests" / "fixtures" / "synthetic"


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not {".tisbench", "__pycache__"} & set(p.relative_to(root).parts)
    }


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"$ {' '.join(done.args)}\nexit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_installed_package_is_the_wheel_not_the_checkout(wheel_install: WheelInstall, tmp_path: Path) -> None:
    done = subprocess.run(
        [str(wheel_install.python), "-c", "import composer; print(composer.__file__)"],
        cwd=tmp_path, env=outside_env(), capture_output=True, text=True, timeout=60,
    )
    where = Path(_ok(done).strip())
    assert where.is_relative_to(wheel_install.venv), where
    assert not where.is_relative_to(REPO), where


def test_init_writes_the_quickstart_stack_the_wheel_ships(wheel_install: WheelInstall, tmp_path: Path) -> None:
    _ok(wheel_install.run("init", "stack", cwd=tmp_path))
    assert _files(tmp_path / "stack") == _files(QUICKSTART)


def test_render_finds_the_compose_template(wheel_install: WheelInstall, tmp_path: Path) -> None:
    _ok(wheel_install.run("init", "stack", cwd=tmp_path))
    compose = yaml.safe_load(_ok(wheel_install.run("render", "stack", "--release", "24.10", "--images", "lab",
                                                   cwd=tmp_path)))
    assert set(compose["services"]) == {"triton_server", "perf_analyzer"}
    assert compose["services"]["triton_server"]["image"] == "tisbench-lab/tritonserver:24.10-py3"
    models = compose["services"]["triton_server"]["volumes"][0]
    assert models["source"] == str(tmp_path / "stack" / "models")


def test_render_finds_the_swarm_template(wheel_install: WheelInstall, tmp_path: Path) -> None:
    _ok(wheel_install.run("init", "stack", cwd=tmp_path))
    stack_file = yaml.safe_load(_ok(wheel_install.run("render", "stack", "--images", "lab", "--engine", "swarm",
                                                      cwd=tmp_path)))
    assert set(stack_file["services"]) == {"triton_server", "perf_analyzer"}


def test_report_finds_the_report_templates(wheel_install: WheelInstall, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(SYNTHETIC_RUN, run)
    assert _ok(wheel_install.run("report", run, "--format", "md", cwd=tmp_path)).startswith("# tisbench report")
    assert "<!DOCTYPE html>" in _ok(wheel_install.run("report", run, "--format", "html", cwd=tmp_path))
