"""Wheels from PyPI for the lab images: the pip download of one ``project==version``, cached.

Downloads are for another machine (the image's Debian root), so pip is told the platform tags
that root's glibc runs instead of this machine's.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from composer.core.errors import ImageBuildError
from composer.core.lab_releases import Wheel
from composer.images.rootfs import run_checked

_LEGACY_MANYLINUX = {5: "manylinux1", 12: "manylinux2010", 17: "manylinux2014"}


def pip_platforms(glibc_minor: int) -> list[str]:
    """``--platform`` arguments for every manylinux tag a glibc 2.<minor> x86_64 system runs.

    pip does not widen an explicit ``--platform`` to older manylinux tags or to the legacy names
    (manylinux1 = 2_5, manylinux2010 = 2_12, manylinux2014 = 2_17), so all are listed.
    """
    args: list[str] = []
    for minor in range(5, glibc_minor + 1):
        args += ["--platform", f"manylinux_2_{minor}_x86_64"]
        if minor in _LEGACY_MANYLINUX:
            args += ["--platform", f"{_LEGACY_MANYLINUX[minor]}_x86_64"]
    return args


def download_wheel(wheel: Wheel, glibc_minor: int, cache_dir: Path, progress: Callable[[str], None]) -> Path:
    """The cached wheel of ``project==version``, downloaded with pip when absent."""
    wheels = cache_dir / "wheels"
    pattern = f"{wheel.project.replace('-', '_')}-{wheel.version}-*.whl"
    cached = sorted(wheels.glob(pattern))
    if cached:
        return cached[0]
    wheels.mkdir(parents=True, exist_ok=True)
    progress(f"downloading {wheel.project} {wheel.version} wheel")
    with tempfile.TemporaryDirectory(dir=wheels) as scratch:
        run_checked(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-cache-dir",
                "--only-binary=:all:",
                "--python-version",
                "3.11",
                *pip_platforms(glibc_minor),
                "--dest",
                scratch,
                wheel.requirement(),
            ],
            what=f"pip download {wheel.requirement()}",
        )
        found = sorted(Path(scratch).glob(pattern))
        if not found:
            raise ImageBuildError(f"pip download {wheel.requirement()} left no {pattern}")
        return Path(shutil.move(str(found[0]), wheels / found[0].name))
