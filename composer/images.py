"""CPU-only stand-ins for NGC's tritonserver ``<REL>-py3`` and ``<REL>-py3-sdk`` images.

A server image is a Debian bookworm minbase plus the real tritonserver bundled in an
``nvidia-pytriton`` wheel; an sdk image is a Debian trixie minbase plus the real perf_analyzer
from its PyPI wheel. Both are imported with the docker SDK from a tar stream: no registry and no
Dockerfile are involved.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import requests.exceptions

from composer.errors import ImageBuildError, ReleaseError
from composer.rootfs import BaseRoot, base_root_tarball, debian_mirror, run_checked

LAB_REPOSITORY = "tisbench-lab/tritonserver"
PERF_ANALYZER_VERSION = "2.60.0"


@dataclass(frozen=True)
class LabRelease:
    release: str
    pytriton_version: str
    server_version: str
    perf_analyzer_version: str


# Each nvidia-pytriton wheel bundles the tritonserver of one NGC release (checked by running it).
LAB_RELEASES: dict[str, LabRelease] = {
    r.release: r
    for r in (
        LabRelease("23.07", "0.3.0", "2.36.0", PERF_ANALYZER_VERSION),
        LabRelease("24.03", "0.5.6", "2.44.0", PERF_ANALYZER_VERSION),
        LabRelease("24.10", "0.7.0", "2.51.0", PERF_ANALYZER_VERSION),
    )
}


def lab_image_tags(release: str) -> tuple[str, str]:
    """(server, sdk) tags of a lab release; kept apart from NGC's ``nvcr.io`` names."""
    return f"{LAB_REPOSITORY}:{release}-py3", f"{LAB_REPOSITORY}:{release}-py3-sdk"


def lab_release(release: str) -> LabRelease:
    try:
        return LAB_RELEASES[release]
    except KeyError:
        known = ", ".join(sorted(LAB_RELEASES))
        raise ReleaseError(f"no lab images for release {release!r}", hint=f"lab releases are: {known}") from None


@dataclass(frozen=True)
class _Flavor:
    """What one kind of image is made of; ``glibc_minor`` bounds the wheels it can run."""

    kind: str
    base: BaseRoot
    glibc_minor: int
    env: tuple[str, ...]
    workdir: str
    place: Callable[[str], str | None]
    extra_dirs: tuple[str, ...] = ()


_STD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_SERVER_ROOT = "opt/tritonserver"
_STUB_PYTHON = "3.11"  # bookworm's python; the 3.13 stub on trixie cannot see Debian's numpy
_STUBS = "pytriton/tritonserver/python_backend_stubs/"
_STUB = f"{_STUBS}{_STUB_PYTHON}/triton_python_backend_stub"


def server_tree_path(name: str) -> str | None:
    """Where a file of the nvidia-pytriton wheel goes in the server image, or None to leave it."""
    if name.endswith("/"):
        return None
    if name.startswith(_STUBS):
        return f"{_SERVER_ROOT}/backends/python/triton_python_backend_stub" if name == _STUB else None
    if name.startswith("pytriton/tritonserver/"):
        return f"{_SERVER_ROOT}/{name.removeprefix('pytriton/tritonserver/')}"
    if name.startswith("nvidia_pytriton.libs/"):
        return f"{_SERVER_ROOT}/lib/{name.removeprefix('nvidia_pytriton.libs/')}"
    return None


def sdk_tree_path(name: str) -> str | None:
    """Where a file of the perf-analyzer wheel goes in the sdk image, or None to leave it."""
    if name.startswith("perf_analyzer/bin/") and not name.endswith("/"):
        return f"usr/local/bin/{name.removeprefix('perf_analyzer/bin/')}"
    return None


SERVER = _Flavor(
    kind="server",
    base=BaseRoot("bookworm", ("python3", "python3-numpy", "libpython3.11", "libssl3", "zlib1g", "libstdc++6")),
    glibc_minor=36,
    env=(f"PATH=/{_SERVER_ROOT}/bin:{_STD_PATH}", f"LD_LIBRARY_PATH=/{_SERVER_ROOT}/lib"),
    workdir=f"/{_SERVER_ROOT}",
    place=server_tree_path,
)
SDK = _Flavor(
    kind="sdk",
    base=BaseRoot("trixie", ("libssl3t64", "zlib1g", "libstdc++6")),
    glibc_minor=41,
    env=(f"PATH={_STD_PATH}",),
    workdir="/workspace",
    place=sdk_tree_path,
    extra_dirs=("workspace",),
)


def image_changes(flavor: _Flavor, lab: LabRelease) -> list[str]:
    """Dockerfile instructions applied at import: environment, workdir and tisbench labels."""
    labels = {
        "tisbench.lab-image": "true",
        "tisbench.kind": flavor.kind,
        "tisbench.release": lab.release,
        "tisbench.server-version": lab.server_version,
        "tisbench.perf-analyzer-version": lab.perf_analyzer_version,
    }
    extra_env = (
        (f"TRITON_SERVER_VERSION={lab.server_version}", f"NVIDIA_TRITON_SERVER_VERSION={lab.release}")
        if flavor.kind == "server"
        else ()
    )
    return [
        *(f"ENV {item}" for item in (*flavor.env, *extra_env)),
        f"WORKDIR {flavor.workdir}",
        *(f"LABEL {key}={json.dumps(value)}" for key, value in labels.items()),
    ]


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


def check_engine(client: docker.DockerClient) -> None:
    try:
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise ImageBuildError(
            f"the Docker engine is unreachable: {exc}",
            hint="start dockerd (or set DOCKER_HOST) and check `docker info`",
        ) from exc


def pip_platforms(glibc_minor: int) -> list[str]:
    """``--platform`` arguments for every manylinux tag a glibc 2.<minor> x86_64 system runs.

    pip does not widen an explicit ``--platform`` to older manylinux tags, so all are listed.
    """
    args: list[str] = []
    for minor in range(17, glibc_minor + 1):
        args += ["--platform", f"manylinux_2_{minor}_x86_64"]
    return args


def download_wheel(
    project: str, version: str, glibc_minor: int, cache_dir: Path, progress: Callable[[str], None]
) -> Path:
    """The cached wheel of ``project==version``, downloaded with pip when absent."""
    wheels = cache_dir / "wheels"
    pattern = f"{project.replace('-', '_')}-{version}-*.whl"
    cached = sorted(wheels.glob(pattern))
    if cached:
        return cached[0]
    wheels.mkdir(parents=True, exist_ok=True)
    progress(f"downloading {project} {version} wheel")
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
                _STUB_PYTHON,
                *pip_platforms(glibc_minor),
                "--dest",
                scratch,
                f"{project}=={version}",
            ],
            what=f"pip download {project}=={version}",
        )
        found = sorted(Path(scratch).glob(pattern))
        if not found:
            raise ImageBuildError(f"pip download {project}=={version} left no {pattern}")
        return Path(shutil.move(str(found[0]), wheels / found[0].name))


def _wheel_members(wheel: zipfile.ZipFile, place: Callable[[str], str | None]) -> Iterator[tuple[zipfile.ZipInfo, str]]:
    for info in wheel.infolist():
        target = place(info.filename)
        if target is not None:
            yield info, target


def write_image_tar(
    base_tar: Path, wheel_path: Path, place: Callable[[str], str | None], extra_dirs: tuple[str, ...], out: Path
) -> int:
    """Write base root + placed wheel files to ``out``; return how many wheel files were placed."""
    placed = 0
    with tarfile.open(base_tar) as src, tarfile.open(out, "w") as dst, zipfile.ZipFile(wheel_path) as wheel:
        present: set[str] = set()
        mtime = 0
        for member in src:
            dst.addfile(member, src.extractfile(member) if member.isreg() else None)
            present.add(member.name.removeprefix("./").rstrip("/"))
            mtime = max(mtime, int(member.mtime))
        for directory in extra_dirs:
            _add_dir(dst, directory, mtime, present)
        for info, target in _wheel_members(wheel, place):
            parents = Path(target).parents
            for parent in reversed(list(parents)[:-1]):
                _add_dir(dst, str(parent), mtime, present)
            entry = tarfile.TarInfo(f"./{target}")
            entry.size = info.file_size
            # Wheels carry unix modes in external_attr; keep the exec bits, drop group/other write.
            entry.mode = ((info.external_attr >> 16) & 0o755) or 0o644
            entry.mtime = mtime
            with wheel.open(info) as data:
                dst.addfile(entry, data)
            placed += 1
    return placed


def _add_dir(dst: tarfile.TarFile, path: str, mtime: int, present: set[str]) -> None:
    if path in present:
        return
    entry = tarfile.TarInfo(f"./{path}")
    entry.type, entry.mode, entry.mtime = tarfile.DIRTYPE, 0o755, mtime
    dst.addfile(entry)
    present.add(path)


def import_image(client: docker.DockerClient, tar_path: Path, tag: str, changes: list[str]) -> None:
    repository, _, version = tag.rpartition(":")
    try:
        answer = client.api.import_image(src=str(tar_path), repository=repository, tag=version, changes=changes)
    except docker.errors.APIError as exc:
        raise ImageBuildError(f"importing {tag} failed: {exc.explanation or exc}") from exc
    for line in str(answer).splitlines():
        if '"error"' in line:
            raise ImageBuildError(f"importing {tag} failed: {line.strip()}")
    if not _has_image(client, tag):
        raise ImageBuildError(f"importing {tag} reported success but the engine has no such tag")


def _has_image(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def build_lab_images(
    client: docker.DockerClient,
    releases: list[str],
    *,
    force: bool = False,
    progress: Callable[[str], None] = print,
    cache_dir: Path | None = None,
) -> list[str]:
    """Build the lab images of ``releases`` that are missing (all with ``force``); return their tags."""
    labs = [lab_release(release) for release in releases]
    check_engine(client)
    cache = cache_dir if cache_dir is not None else Path.home() / ".cache" / "tisbench"
    todo: list[tuple[LabRelease, _Flavor, str]] = []
    for lab in labs:
        for flavor, tag in zip((SERVER, SDK), lab_image_tags(lab.release), strict=True):
            if force or not _has_image(client, tag):
                todo.append((lab, flavor, tag))
            else:
                progress(f"{tag} is present")
    if todo:
        check_host(host_facts())
        _build(client, todo, cache, progress)
    return [tag for lab in labs for tag in lab_image_tags(lab.release)]


def _build(
    client: docker.DockerClient,
    todo: list[tuple[LabRelease, _Flavor, str]],
    cache: Path,
    progress: Callable[[str], None],
) -> None:
    mirror = debian_mirror()
    flavors = {flavor.kind: flavor for _, flavor, _ in todo}
    # The two debootstraps are network- and dpkg-bound: run them side by side while pip downloads.
    with ThreadPoolExecutor(max_workers=len(flavors), thread_name_prefix="debootstrap") as pool:
        roots: dict[str, Future[Path]] = {
            kind: pool.submit(base_root_tarball, flavor.base, mirror, cache, progress)
            for kind, flavor in flavors.items()
        }
        wheels = {tag: _wheel_for(lab, flavor, cache, progress) for lab, flavor, tag in todo}
        base_tars = {kind: future.result() for kind, future in roots.items()}
    tmp_dir = cache / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    for lab, flavor, tag in todo:
        with tempfile.NamedTemporaryFile(dir=tmp_dir, suffix=".tar") as scratch:
            progress(f"assembling {tag}")
            placed = write_image_tar(
                base_tars[flavor.kind], wheels[tag], flavor.place, flavor.extra_dirs, Path(scratch.name)
            )
            if placed == 0:
                raise ImageBuildError(f"{wheels[tag].name} holds none of the files {tag} needs")
            progress(f"importing {tag}")
            import_image(client, Path(scratch.name), tag, image_changes(flavor, lab))


def _wheel_for(lab: LabRelease, flavor: _Flavor, cache: Path, progress: Callable[[str], None]) -> Path:
    if flavor.kind == "sdk":
        return download_wheel("perf-analyzer", lab.perf_analyzer_version, flavor.glibc_minor, cache, progress)
    wheel = download_wheel("nvidia-pytriton", lab.pytriton_version, flavor.glibc_minor, cache, progress)
    with zipfile.ZipFile(wheel) as archive:
        if _STUB not in archive.namelist():
            raise ImageBuildError(f"{wheel.name} has no Python {_STUB_PYTHON} backend stub ({_STUB})")
    return wheel
