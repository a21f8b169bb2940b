"""tisbench installed as users install it: a wheel built from this tree, in a fresh venv outside it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from paths import REPO

# What a wheel is built from: the tree as it is on disk, less the checkout's own state. A fresh copy,
# because setuptools reuses an in-tree build/ and would ship whatever an older build left there.
_NOT_SOURCE_ANYWHERE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".tisbench"
)
_NOT_SOURCE_AT_TOP = {"runs", "tests"}  # the top's run directories, not the package composer/runs


def NOT_SOURCE(directory: str, names: list[str]) -> set[str]:  # noqa: N802 - shutil's ignore callable
    ignored = set(_NOT_SOURCE_ANYWHERE(directory, names))
    if Path(directory).resolve() == REPO.resolve():
        ignored |= _NOT_SOURCE_AT_TOP & set(names)
    return ignored
BUILD_TIMEOUT_S = 300
INSTALL_TIMEOUT_S = 900  # pip resolves every dependency from the package index


@dataclass
class WheelInstall:
    wheel: Path
    venv: Path

    @property
    def tisbench(self) -> Path:
        return self.venv / "bin" / "tisbench"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def run(self, *args: object, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """The installed ``tisbench ARGS`` in ``cwd``, with none of the developer's TISBENCH_* settings."""
        env = {k: v for k, v in outside_env().items() if not k.startswith("TISBENCH_")}
        argv = [str(self.tisbench), *(str(a) for a in args)]
        return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def outside_env() -> dict[str, str]:
    """This process's environment without what would put the checkout or the project's venv on sys.path."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


def _step(argv: list[str], cwd: Path, timeout: float) -> None:
    done = subprocess.run(argv, cwd=cwd, env=outside_env(), capture_output=True, text=True, timeout=timeout)
    output = done.stdout[-3000:] + done.stderr[-3000:]
    assert done.returncode == 0, f"$ {' '.join(argv)}\nexit {done.returncode}\n{output}"


def install_wheel(root: Path) -> WheelInstall:
    """``pip wheel`` of this tree, then ``pip install`` of that wheel (dependencies by name) into a new venv."""
    source, dist, venv = root / "source", root / "dist", root / "venv"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    _step([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(source)], root,
          BUILD_TIMEOUT_S)
    (wheel,) = dist.glob("tisbench-*.whl")
    _step([sys.executable, "-m", "venv", str(venv)], root, 120)
    _step([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], root, INSTALL_TIMEOUT_S)
    return WheelInstall(wheel, venv)
