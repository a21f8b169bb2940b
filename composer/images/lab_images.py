"""CPU-only stand-ins for NGC's tritonserver ``<REL>-py3`` and ``<REL>-py3-sdk`` images.

Each image is a Debian minbase root plus files placed from PyPI wheels, as composer.core.lab_releases
says per release: the server from its ``nvidia-pytriton`` wheel, perf_analyzer from that
release's ``tritonclient`` wheel (and the libraries it loads). An image is imported through
composer.engine.images from a tar stream, its binaries are asked for their versions (composer.images.probe),
and only then does it get its final tag, labelled with what they reported and with the recipe's
fingerprint; a tag whose fingerprint differs from today's recipe is rebuilt.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import tarfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer.core.errors import ImageBuildError
from composer.core.lab_releases import LabRecipe, Wheel, lab_image_tags, lab_recipe
from composer.core.labels import (
    ANALYZER_VERSION_LABEL,
    ANALYZER_WHEEL_LABEL,
    KIND_LABEL,
    LAB_IMAGE_LABEL,
    RECIPE_LABEL,
    RELEASE_LABEL,
    SERVER_VERSION_LABEL,
    SERVER_WHEEL_LABEL,
)
from composer.images.rootfs import BaseRoot

_STD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_SERVER_ROOT = "opt/tritonserver"
_ANALYZER_LIBS = "opt/perf_analyzer/lib"
_STUBS = "pytriton/tritonserver/python_backend_stubs/"

Place = Callable[[str], "str | None"]


def server_tree_path(name: str, stub_python: str = "3.11") -> str | None:
    """Where a file of the nvidia-pytriton wheel goes in the server image, or None to leave it."""
    if name.endswith("/"):
        return None
    if name.startswith(_STUBS):
        stub = f"{_STUBS}{stub_python}/triton_python_backend_stub"
        return f"{_SERVER_ROOT}/backends/python/triton_python_backend_stub" if name == stub else None
    if name.startswith("pytriton/tritonserver/"):
        return f"{_SERVER_ROOT}/{name.removeprefix('pytriton/tritonserver/')}"
    if name.startswith("nvidia_pytriton.libs/"):
        return f"{_SERVER_ROOT}/lib/{name.removeprefix('nvidia_pytriton.libs/')}"
    return None


def binary_place(binary: str) -> Place:
    """Only ``binary`` of a wheel, as /usr/local/bin/perf_analyzer."""
    return lambda name: "usr/local/bin/perf_analyzer" if name == binary else None


def lib_place(lib_dir: str) -> Place:
    """The shared libraries directly in ``lib_dir`` of a wheel, into the analyzer's library dir."""

    def place(name: str) -> str | None:
        rest = name.removeprefix(lib_dir)
        if rest == name or "/" in rest or ".so" not in rest:
            return None
        return f"{_ANALYZER_LIBS}/{rest}"

    return place


@dataclass(frozen=True)
class Part:
    """One wheel of an image, where its files go, and the file it must provide (when one is)."""

    wheel: Wheel
    place: Place
    required: str | None = None


@dataclass(frozen=True)
class ImageSpec:
    """One lab image as the recipe makes it; ``labels`` are known before any binary ran."""

    kind: str  # server | sdk
    release: str
    tag: str
    base: BaseRoot
    parts: tuple[Part, ...]
    env: tuple[str, ...]
    workdir: str
    extra_dirs: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]
    fingerprint: str
    expected_version: str

    def changes(self) -> list[str]:
        """Dockerfile instructions applied at import: environment, workdir and the known labels."""
        return [
            *(f"ENV {item}" for item in self.env),
            f"WORKDIR {self.workdir}",
            *(f"LABEL {key}={json.dumps(value)}" for key, value in self.labels),
        ]


def server_spec(recipe: LabRecipe) -> ImageSpec:
    server = recipe.server
    return ImageSpec(
        kind="server",
        release=recipe.release,
        tag=lab_image_tags(recipe.release)[0],
        base=BaseRoot(server.suite, server.debs),
        parts=(
            Part(
                server.wheel,
                lambda name: server_tree_path(name, server.stub_python),
                f"{_SERVER_ROOT}/backends/python/triton_python_backend_stub",
            ),
        ),
        env=(
            f"PATH=/{_SERVER_ROOT}/bin:{_STD_PATH}",
            f"LD_LIBRARY_PATH=/{_SERVER_ROOT}/lib",
            f"TRITON_SERVER_VERSION={server.version}",
            f"NVIDIA_TRITON_SERVER_VERSION={recipe.release}",
        ),
        workdir=f"/{_SERVER_ROOT}",
        extra_dirs=(),
        labels=_common_labels("server", recipe.release) + ((SERVER_WHEEL_LABEL, server.wheel.requirement()),),
        fingerprint=recipe.server_fingerprint(),
        expected_version=server.version,
    )


def sdk_spec(recipe: LabRecipe) -> ImageSpec:
    analyzer = recipe.analyzer
    libs = tuple(Part(lib.wheel, lib_place(lib.lib_dir)) for lib in analyzer.libs)
    return ImageSpec(
        kind="sdk",
        release=recipe.release,
        tag=lab_image_tags(recipe.release)[1],
        base=BaseRoot(analyzer.suite, analyzer.debs),
        parts=(Part(analyzer.wheel, binary_place(analyzer.binary), "usr/local/bin/perf_analyzer"), *libs),
        env=(f"PATH={_STD_PATH}", *((f"LD_LIBRARY_PATH=/{_ANALYZER_LIBS}",) if libs else ())),
        workdir="/workspace",
        extra_dirs=("workspace",),
        labels=_common_labels("sdk", recipe.release)
        + ((ANALYZER_WHEEL_LABEL, analyzer.wheel.requirement()),),
        fingerprint=recipe.analyzer_fingerprint(),
        expected_version=analyzer.version,
    )


def _common_labels(kind: str, release: str) -> tuple[tuple[str, str], ...]:
    return ((LAB_IMAGE_LABEL, "true"), (KIND_LABEL, kind), (RELEASE_LABEL, release))


def image_specs(release: str) -> tuple[ImageSpec, ImageSpec]:
    recipe = lab_recipe(release)
    return server_spec(recipe), sdk_spec(recipe)


@dataclass(frozen=True)
class HostFacts:
    """What the build needs from this machine; gathered by ``host_facts``, judged purely."""

    euid: int
    debootstrap: str | None
    pip: bool


def host_facts() -> HostFacts:
    return HostFacts(
        euid=os.geteuid(),
        debootstrap=shutil.which("debootstrap"),
        pip=importlib.util.find_spec("pip") is not None,
    )


def check_host(facts: HostFacts) -> None:
    """Raise ImageBuildError naming the first missing precondition of a build."""
    if facts.euid != 0:
        raise ImageBuildError(
            "building lab images needs root (debootstrap creates device nodes and chowns files)",
            hint="rerun with sudo, or as root",
        )
    if facts.debootstrap is None:
        raise ImageBuildError("debootstrap is not installed", hint="apt-get install debootstrap")
    if not facts.pip:
        raise ImageBuildError(
            f"pip is not available to {sys.executable}", hint="python -m ensurepip, or apt-get install python3-pip"
        )


def _wheel_members(wheel: zipfile.ZipFile, place: Place) -> Iterator[tuple[zipfile.ZipInfo, str]]:
    for info in wheel.infolist():
        target = place(info.filename)
        if target is not None:
            yield info, target


def write_image_tar(
    base_tar: Path, parts: Sequence[tuple[Path, Place]], extra_dirs: tuple[str, ...], out: Path
) -> list[set[str]]:
    """Write base root + each wheel's placed files to ``out``; return the paths each part placed."""
    placed: list[set[str]] = []
    with tarfile.open(base_tar) as src, tarfile.open(out, "w") as dst:
        present: set[str] = set()
        mtime = 0
        for member in src:
            dst.addfile(member, src.extractfile(member) if member.isreg() else None)
            present.add(member.name.removeprefix("./").rstrip("/"))
            mtime = max(mtime, int(member.mtime))
        for directory in extra_dirs:
            _add_dir(dst, directory, mtime, present)
        for wheel_path, place in parts:
            with zipfile.ZipFile(wheel_path) as wheel:
                placed.append(_add_wheel_files(dst, wheel, place, mtime, present))
    return placed


def _add_wheel_files(
    dst: tarfile.TarFile, wheel: zipfile.ZipFile, place: Place, mtime: int, present: set[str]
) -> set[str]:
    targets: set[str] = set()
    for info, target in _wheel_members(wheel, place):
        for parent in reversed(list(Path(target).parents)[:-1]):
            _add_dir(dst, str(parent), mtime, present)
        entry = tarfile.TarInfo(f"./{target}")
        entry.size = info.file_size
        # Wheels carry unix modes in external_attr; keep the exec bits, drop group/other write.
        entry.mode = ((info.external_attr >> 16) & 0o755) or 0o644
        entry.mtime = mtime
        with wheel.open(info) as data:
            dst.addfile(entry, data)
        targets.add(target)
    return targets


def _add_dir(dst: tarfile.TarFile, path: str, mtime: int, present: set[str]) -> None:
    if path in present:
        return
    entry = tarfile.TarInfo(f"./{path}")
    entry.type, entry.mode, entry.mtime = tarfile.DIRTYPE, 0o755, mtime
    dst.addfile(entry)
    present.add(path)


def check_placed(spec: ImageSpec, wheel_paths: Sequence[Path], placed: Sequence[set[str]]) -> None:
    """Every wheel gave the image something, and each required file is there."""
    for part, wheel_path, targets in zip(spec.parts, wheel_paths, placed, strict=True):
        if not targets:
            raise ImageBuildError(f"{wheel_path.name} holds none of the files {spec.tag} needs")
        if part.required is not None and part.required not in targets:
            raise ImageBuildError(f"{wheel_path.name} gives {spec.tag} no /{part.required}")


def image_state(labels: dict[str, str] | None, spec: ImageSpec) -> str:
    """missing · current (built by today's recipe) · stale (built by another recipe: rebuild it)."""
    if labels is None:
        return "missing"
    return "current" if labels.get(RECIPE_LABEL) == spec.fingerprint else "stale"


def listing(release: str, labels: Sequence[dict[str, str] | None]) -> dict[str, Any]:
    """One release of `tisbench images list`: what its recipe provides and what each image holds."""
    recipe = lab_recipe(release)
    server, sdk = image_specs(release)
    return {
        "release": release,
        "server": _listed(server, labels[0], SERVER_VERSION_LABEL, recipe.server.wheel),
        "perf_analyzer": _listed(sdk, labels[1], ANALYZER_VERSION_LABEL, recipe.analyzer.wheel),
    }


def _listed(spec: ImageSpec, labels: dict[str, str] | None, version_label: str, wheel: Wheel) -> dict[str, Any]:
    state = image_state(labels, spec)
    holds = (labels or {}).get(version_label)
    shown = {
        "missing": "missing",
        "current": f"built: {holds}",
        "stale": f"stale: holds {holds or 'an unknown version'}, rebuild",
    }[state]
    return {
        "tag": spec.tag,
        "version": spec.expected_version,
        "recipe": f"{spec.expected_version} ({wheel.project} {wheel.version})",
        "state": state,
        "holds": holds,
        "image": shown,
    }
