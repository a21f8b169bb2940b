"""The user's own server image, made here: python requirements installed on the release's server
image (wheels fetched by this machine's pip for the image's own Python and platform, installed with
--no-index in a build without network), or the stack's Dockerfile built FROM it. Tagged, labelled
and reused while what it was made from holds; the lab then runs it as its server."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from composer.core.errors import ConfigError, ImageBuildError
from composer.core.labels import (
    BASE_ID_LABEL,
    BASE_IMAGE_LABEL,
    DERIVED_LABEL,
    RELEASE_LABEL,
    REQUIREMENTS_LABEL,
    STACK_LABEL,
)
from composer.core.server_image import BUILD_ARGS, Build, ServerImage
from composer.engine.images import build_image, image_id, image_labels, labelled_images, remove_image, run_probe

if TYPE_CHECKING:  # type names only: only composer.engine imports docker
    import docker

Say = Callable[[str], None]
DERIVED_REPOSITORY = "tisbench-derived/tritonserver"
BUILT_REPOSITORY = "tisbench-built/tritonserver"
PIP_TIMEOUT_S = 600.0
WHEELS = "/tmp/tisbench-wheels"
# What pip download must know of the image: its Python, its C library and machine, and whether it has pip.
PROBE = (
    "import importlib.util, json, platform, sys; print(json.dumps({"
    "'python': '%d.%d' % sys.version_info[:2], 'glibc': platform.libc_ver()[1], "
    "'machine': platform.machine(), 'pip': importlib.util.find_spec('pip') is not None}))"
)
_NO_MATCH = re.compile(r"No matching distribution found for (\S+)")


@dataclass(frozen=True)
class ImagePython:
    python: str  # "3.11"
    glibc: str  # "2.36"
    machine: str  # "x86_64"
    pip: bool

    def platforms(self) -> list[str]:
        """pip's platform tags the image can run: manylinux_2_5 … 2_<its glibc>, and the legacy names."""
        minor = int(self.glibc.split(".")[1]) if self.glibc.count(".") == 1 else 17
        tags = [f"manylinux_2_{m}_{self.machine}" for m in range(minor, 4, -1)]
        legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
        return tags + [f"{name}_{self.machine}" for m, name in legacy.items() if m <= minor]


def pip_download_argv(python: ImagePython, requirements: tuple[str, ...], dest: Path) -> list[str]:
    platforms = [arg for tag in python.platforms() for arg in ("--platform", tag)]
    return [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-input",
            "--only-binary=:all:", "--implementation", "cp", "--python-version", python.python,
            *platforms, "--dest", str(dest), "--", *requirements]  # fmt: skip


def dockerfile(base_id: str) -> str:
    """Install exactly the fetched wheels, from the build context, with no index and no network."""
    return (
        f"FROM {base_id}\n"
        f"COPY wheels/ {WHEELS}/\n"
        f"RUN PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --no-index --no-cache-dir "
        f"--disable-pip-version-check --find-links {WHEELS} {WHEELS}/*.whl && rm -rf {WHEELS}\n"
    )


def _probe(client: docker.DockerClient, base: str) -> ImagePython:
    code, output = run_probe(client, base, ["python3", "-c", PROBE], timeout_s=60)
    try:
        facts = json.loads(output.strip().splitlines()[-1])
        return ImagePython(str(facts["python"]), str(facts["glibc"]), str(facts["machine"]), bool(facts["pip"]))
    except (ValueError, KeyError, IndexError):
        raise ImageBuildError(
            f"server.requirements: {base} did not say which Python it runs (exit {code}: {output.strip()[-200:]})",
            "use a server image with python3 (NGC's and the lab's have one)",
        ) from None


def _download(python: ImagePython, own: ServerImage, dest: Path, say: Say) -> list[Path]:
    say(f"server.requirements: fetching wheels for Python {python.python} on {python.machine} "
        f"(glibc {python.glibc}): {', '.join(own.requirements)}")  # fmt: skip
    try:
        done = subprocess.run(
            pip_download_argv(python, own.requirements, dest),
            capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise ImageBuildError(f"server.requirements: pip download took over {PIP_TIMEOUT_S:g} s") from None
    if done.returncode != 0:
        missing = _NO_MATCH.search(done.stderr)
        errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
        what = f"no wheel of {missing.group(1)}" if missing else (errors[-1] if errors else done.stderr.strip()[-200:])
        raise ConfigError(
            f"server.requirements: {what} for Python {python.python} on manylinux {python.machine} "
            f"(pip download exit {done.returncode})",
            "fix or pin the requirement to a version that ships a wheel for that Python; nothing was built",
        )
    return sorted(dest.glob("*.whl"))


def _context(base_id: str, wheels: list[Path]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        text = dockerfile(base_id).encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size, info.mtime = len(text), int(time.time())
        archive.addfile(info, io.BytesIO(text))
        for wheel in wheels:
            archive.add(str(wheel), arcname=f"wheels/{wheel.name}")
    buffer.seek(0)
    return buffer


def _with_requirements(
    client: docker.DockerClient, own: ServerImage, base: str, base_id: str, release: str, stack: str, say: Say
) -> str:
    tag = f"{DERIVED_REPOSITORY}:{release}-{own.requirements_hash(base_id)}"
    if image_id(client, tag) is not None:
        say(f"server.requirements: {tag} is current (built on {base} with {', '.join(own.requirements)}): reused")
        return tag
    python = _probe(client, base)
    if not python.pip:
        raise ImageBuildError(
            f"server.requirements: {base} has no pip for its Python {python.python}",
            "use a server image with pip (NGC's and the lab's have it), or server.build with a Dockerfile",
        )
    with tempfile.TemporaryDirectory(prefix="tisbench-wheels-") as folder:
        wheels = _download(python, own, Path(folder), say)
        say(f"server.requirements: building {tag} ({len(wheels)} wheels, no network inside the build)")
        build_image(
            client,
            tag=tag,
            what="server.requirements",
            on_step=lambda line: say(f"  {line}"),
            labels=_labels("requirements", base, base_id, release, stack, own),
            fileobj=_context(base_id, wheels),
            custom_context=True,
            network_mode="none",
        )
    return tag


def _labels(kind: str, base: str, base_id: str, release: str, stack: str, own: ServerImage) -> dict[str, str]:
    return {
        DERIVED_LABEL: kind,
        BASE_IMAGE_LABEL: base,
        BASE_ID_LABEL: base_id,
        RELEASE_LABEL: release,
        STACK_LABEL: stack,
        REQUIREMENTS_LABEL: "\n".join(own.requirements),
    }


def _with_dockerfile(
    client: docker.DockerClient, own: ServerImage, build: Build, base: str, base_id: str, release: str, stack: str,
    tag: str, say: Say,
) -> str:  # fmt: skip
    say(f"server.build: building {tag} from {build.context} ({build.dockerfile}; BASE_IMAGE={base})")
    build_image(
        client,
        tag=tag,
        what=f"server.build ({Path(build.context) / build.dockerfile})",
        on_step=lambda line: say(f"  {line}"),
        labels=_labels("build", base, base_id, release, stack, own),
        path=build.context,
        dockerfile=build.dockerfile,
        buildargs={**dict(build.args), **dict(zip(BUILD_ARGS, (base, release), strict=True))},
    )
    return tag


def server_image(
    client: docker.DockerClient,
    own: ServerImage,
    base: str,
    release: str,
    stack: Path,
    name: str,
    say: Say,
    tag: str | None = None,
) -> str:
    """The server image a lab runs: ``base`` itself, or the image made from it as the stack asks
    (a build's ``tag``: server.image, or one from ``name``, the stack's name)."""
    if not own.derived:
        return base
    base_id = image_id(client, base)
    if base_id is None:
        raise ImageBuildError(f"the server image {base} is not on this engine", "pull or build it first")
    if own.build is not None:
        tag = tag or f"{BUILT_REPOSITORY}:{name}-{release}"
        return _with_dockerfile(client, own, own.build, base, base_id, release, str(stack), tag, say)
    return _with_requirements(client, own, base, base_id, release, str(stack), say)


def derived_images(client: docker.DockerClient) -> list[dict[str, str]]:
    """Every server image tisbench made for a stack on this engine: tag, kind, base, stack."""
    return [
        {"tag": tag, "kind": labels.get(DERIVED_LABEL, "?"), "base": labels.get(BASE_IMAGE_LABEL, "?"),
         "stack": labels.get(STACK_LABEL, "?")}  # fmt: skip
        for tag, labels in labelled_images(client, DERIVED_LABEL)
    ]


def remove_derived(client: docker.DockerClient, tag: str) -> bool:
    """Remove one image tisbench made for a stack (never any other); False when it is not one."""
    labels = image_labels(client, tag)
    if labels is None or DERIVED_LABEL not in labels:
        return False
    return remove_image(client, tag)
