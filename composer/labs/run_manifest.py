"""What a run directory records beyond its results: when it ran, the images and perf_analyzer it
ran with, the server's ulimits, and the manifest a run starts with."""

from __future__ import annotations

import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from composer import __version__
from composer.analyzer.identity import AnalyzerIdentity
from composer.core.errors import ExitStatus, UsageError
from composer.core.host_data import content
from composer.core.labels import ULIMITS_DROPPED_LABEL
from composer.core.release import parse_release
from composer.core.release import server_version as server_version_of
from composer.core.run_dir import RunDir

if TYPE_CHECKING:  # type names only: only composer.engine imports docker
    import docker

    from composer.core.config import Stack
    from composer.core.design import LabDesign


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def default_run_dir(lab_name: str) -> Path:
    return Path("runs") / f"{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}-{lab_name}"


def prepare_run_dir(path: Path) -> Path:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UsageError(f"--out {path}: exists and is not an empty directory", "choose a new run directory")
    if any(p.exists() and not p.is_dir() for p in path.parents):
        raise UsageError(f"--out {path}: a parent is a file", "choose a path under a directory")
    RunDir(path).logs.mkdir(parents=True, exist_ok=True)
    return path


def image_facts(client: docker.DockerClient, ref: str) -> dict[str, Any]:
    """What the manifest records of an image: reference, id, digests and tisbench's own labels."""
    image = client.api.inspect_image(ref)
    return {
        "ref": ref,
        "id": image["Id"],
        "repo_digests": image.get("RepoDigests") or [],
        "labels": {k: v for k, v in (image["Config"].get("Labels") or {}).items() if k.startswith("tisbench.")},
    }


def image_manifest(images: dict[str, dict[str, Any]], analyzer: AnalyzerIdentity) -> dict[str, Any]:
    """The manifest's image fields, and which perf_analyzer really ran (as observed)."""
    return {
        "images": {k: v["ref"] for k, v in images.items()},
        "image_ids": {k: v["id"] for k, v in images.items()},
        "repo_digests": {k: v["repo_digests"] for k, v in images.items()},
        **analyzer.manifest_fields(),
    }


def server_ulimits(container: dict[str, Any]) -> dict[str, Any]:
    """The ulimits the server runs with, and the advice (NGC's) that this engine could not grant."""
    granted = {u["Name"]: u["Hard"] for u in container["HostConfig"].get("Ulimits") or []}
    dropped = (container["Config"].get("Labels") or {}).get(ULIMITS_DROPPED_LABEL, "")
    return {"granted": granted, "dropped": [name for name in dropped.split(",") if name]}


def lab_design(design: LabDesign) -> dict[str, Any]:
    """The design as a run records it, each mount of this machine's data with its content's
    fingerprint (or its size, when too large to hash for every run)."""
    doc = design.manifest()
    for service in doc["services"].values():
        for mount in service["mounts"]:
            if mount["host_path"]:
                path = Path(mount["host_path"])
                mount["fingerprint"], mount["bytes"] = content(path) if path.exists() else (None, None)
    return doc


def started_manifest(
    *,
    lab: str,
    release: str,
    design: LabDesign | None,
    stack: Stack,
    model: dict[str, Any],
    images: dict[str, Any],
    analyzer: AnalyzerIdentity,
    argv: list[str],
    timeout_s: float,
    server_version: str | None = None,
    **engine_fields: Any,
) -> dict[str, Any]:
    """The manifest as a run starts, for every engine: what runs, against what, where, and the lab
    as its design asked for it (None for a lab this process found running: ``tisbench bench NAME``).
    ``engine_fields``: what only that engine knows (a local server's ulimits, a swarm's clients)."""
    return {
        "tisbench_version": __version__,
        "lab": lab,
        "engine": design.engine if design else "local",
        "release": release,
        "server_version": server_version,
        "release_server_version": server_version_of(parse_release(release)),
        **image_manifest(images, analyzer),
        "perf_analyzer_argv": argv,
        "timeout_s": timeout_s,
        "model": model,
        "stack": str(stack.directory),
        "lab_design": lab_design(design) if design else None,
        "host": {"hostname": platform.node(), "platform": platform.platform(), "python": platform.python_version()},
        **engine_fields,
        "started_utc": utc_now(),
        "status": "running",
    }


def mark_status(manifest: dict[str, Any], unstable: list[dict[str, Any]]) -> None:
    """A measured run's status, on every engine: ok, or unstable (exit 7) with the points named."""
    if unstable:
        manifest["unstable_points"] = unstable
    manifest.update(status="unstable" if unstable else "ok", exit_code=ExitStatus.UNSTABLE if unstable else 0)
