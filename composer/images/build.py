"""`tisbench images build`: the lab images that are missing or stale, assembled, imported, probed.

The steps each live in their own module (roots, wheels, image tarballs, probing); this one runs them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from composer.core.lab_releases import SUITE_GLIBC_MINOR
from composer.core.labels import ANALYZER_VERSION_LABEL, SERVER_VERSION_LABEL
from composer.engine.images import check_engine, image_labels, import_image
from composer.images.lab_images import (
    ImageSpec,
    check_host,
    check_placed,
    host_facts,
    image_specs,
    image_state,
    write_image_tar,
)
from composer.images.probe import finish_image
from composer.images.rootfs import base_root_tarball, debian_mirror
from composer.images.wheels import download_wheel

if TYPE_CHECKING:
    import docker


def build_lab_images(
    client: docker.DockerClient,
    releases: list[str],
    *,
    force: bool = False,
    progress: Callable[[str], None] = print,
    cache_dir: Path | None = None,
) -> list[str]:
    """Build the lab images of ``releases`` that are missing or stale (all with ``force``); return their tags.

    Releases are built one after another: each build is CPU- and network-heavy."""
    specs = [spec for release in releases for spec in image_specs(release)]
    check_engine(client)
    cache = cache_dir if cache_dir is not None else Path.home() / ".cache" / "tisbench"
    todo: list[ImageSpec] = []
    for spec in specs:
        labels = image_labels(client, spec.tag)
        state = image_state(labels, spec)
        if state == "current" and not force:
            progress(f"{spec.tag} is present (built by today's recipe)")
            continue
        if state == "stale":
            held = (labels or {}).get(SERVER_VERSION_LABEL if spec.kind == "server" else ANALYZER_VERSION_LABEL)
            progress(f"{spec.tag} was built by another recipe (it holds {held or 'an unknown version'}): rebuilding")
        todo.append(spec)
    if todo:
        check_host(host_facts())
        _build(client, todo, cache, progress)
    return [spec.tag for spec in specs]


def _build(client: docker.DockerClient, todo: list[ImageSpec], cache: Path, progress: Callable[[str], None]) -> None:
    mirror = debian_mirror()
    bases = {spec.base.cache_name(): spec.base for spec in todo}
    # The debootstraps are network- and dpkg-bound: run them side by side while pip downloads.
    with ThreadPoolExecutor(max_workers=len(bases), thread_name_prefix="debootstrap") as pool:
        roots: dict[str, Future[Path]] = {
            name: pool.submit(base_root_tarball, base, mirror, cache, progress) for name, base in bases.items()
        }
        wheels = {
            (spec.tag, part.wheel): download_wheel(part.wheel, SUITE_GLIBC_MINOR[spec.base.suite], cache, progress)
            for spec in todo
            for part in spec.parts
        }
        base_tars = {name: future.result() for name, future in roots.items()}
    tmp_dir = cache / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    for spec in todo:
        parts = [(wheels[(spec.tag, part.wheel)], part.place) for part in spec.parts]
        with tempfile.NamedTemporaryFile(dir=tmp_dir, suffix=".tar") as scratch:
            progress(f"assembling {spec.tag}")
            placed = write_image_tar(base_tars[spec.base.cache_name()], parts, spec.extra_dirs, Path(scratch.name))
            check_placed(spec, [path for path, _ in parts], placed)
            scratch_tag = f"{spec.tag}-unverified"
            progress(f"importing {scratch_tag}")
            import_image(client, Path(scratch.name), scratch_tag, spec.changes())
        finish_image(client, spec, scratch_tag, progress)
