"""Images through the engine, as ``tisbench images build`` makes them: imported from a tarball,
inspected for their labels, run once to be asked what they hold, labelled, untagged or removed.

What the images are (recipes, tarballs, the probes' judgement) lives in composer.images; here is
only what the docker SDK is asked, and its failures as ImageBuildError.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from composer.core.errors import ImageBuildError, StackError
from composer.core.labels import PROBE_LABEL


def check_engine(client: docker.DockerClient) -> None:
    try:
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise ImageBuildError(
            f"the Docker engine is unreachable: {exc}",
            hint="start dockerd (or set DOCKER_HOST) and check `docker info`",
        ) from exc


def import_image(client: docker.DockerClient, tar_path: Path, tag: str, changes: list[str]) -> None:
    repository, _, version = tag.rpartition(":")
    try:
        answer = client.api.import_image(src=str(tar_path), repository=repository, tag=version, changes=changes)
    except docker.errors.APIError as exc:
        raise ImageBuildError(f"importing {tag} failed: {exc.explanation or exc}") from exc
    for line in str(answer).splitlines():
        if '"error"' in line:
            raise ImageBuildError(f"importing {tag} failed: {line.strip()}")
    if image_labels(client, tag) is None:
        raise ImageBuildError(f"importing {tag} reported success but the engine has no such tag")


def image_labels(client: docker.DockerClient, tag: str) -> dict[str, str] | None:
    """The labels of ``tag``, or None when the engine has no such image."""
    try:
        image = client.api.inspect_image(tag)
    except docker.errors.ImageNotFound:
        return None
    return dict(image["Config"].get("Labels") or {})


def run_probe(client: docker.DockerClient, image: str, argv: list[str], timeout_s: float) -> tuple[int, str]:
    """Exit code and output of ``argv`` run once in a container of ``image`` (no network; removed after)."""
    container = client.containers.create(image, argv, network_mode="none", labels={PROBE_LABEL: image})
    try:
        container.start()
        status = container.wait(timeout=timeout_s)
        output = container.logs(stdout=True, stderr=True).decode("utf-8", errors="replace")
    except (requests.exceptions.RequestException, docker.errors.APIError) as exc:
        raise ImageBuildError(f"{' '.join(argv)} in {image} gave no answer within {timeout_s:g} s ({exc})") from exc
    finally:
        container.remove(force=True)
    return int(status.get("StatusCode", -1)), output


def label_image(client: docker.DockerClient, source: str, tag: str, labels: dict[str, str]) -> str:
    """``tag`` = ``source`` plus ``labels`` (a LABEL-only build: no layer, no network); its id."""
    lines = [f"FROM {source}", *(f"LABEL {key}={_quoted(value)}" for key, value in sorted(labels.items()))]
    dockerfile = io.BytesIO(("\n".join(lines) + "\n").encode())
    try:
        for event in client.api.build(fileobj=dockerfile, tag=tag, rm=True, forcerm=True, pull=False, decode=True):
            if "error" in event:
                raise ImageBuildError(f"labelling {tag} failed: {str(event['error']).strip()}")
        return str(client.api.inspect_image(tag)["Id"])
    except docker.errors.APIError as exc:
        raise ImageBuildError(f"labelling {tag} failed: {exc.explanation or exc}") from exc


def _quoted(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    return f'"{escaped}"'


def image_id(client: docker.DockerClient, ref: str) -> str | None:
    """The id of the image ``ref`` names, or None when the engine has none."""
    try:
        return str(client.api.inspect_image(ref)["Id"])
    except docker.errors.ImageNotFound:
        return None


def remove_image(client: docker.DockerClient, ref: str) -> bool:
    """Untag (by tag) or remove (by id) an image of ours; False when the engine refuses (in use)."""
    try:
        client.api.remove_image(ref)
    except docker.errors.ImageNotFound:
        return True
    except docker.errors.APIError:
        return False
    return True


def build_image(
    client: docker.DockerClient,
    *,
    tag: str,
    what: str,
    on_step: Callable[[str], None],
    labels: dict[str, str] | None = None,
    **build: Any,
) -> str:
    """Build ``tag`` with the SDK (``build``: path or fileobj with custom_context, dockerfile,
    buildargs, network_mode); each Dockerfile step said through ``on_step``; the image's id. A step
    that fails is a StackError (exit 4) naming ``what`` and the step; an engine that fails is an
    ImageBuildError (exit 3)."""
    step, steps, cached, shown = "the build", 0, 0, False
    try:
        events = client.api.build(tag=tag, labels=labels, rm=True, forcerm=True, pull=False, decode=True, **build)
        for event in events:
            line = str(event.get("stream") or "").strip()
            if line.startswith("Step "):
                step, shown = line, " : LABEL tisbench." not in line  # the labels asked for are tisbench's own
                steps += shown
                if shown:
                    on_step(line)
            cached += shown and line.startswith("---> Using cache")
            if "error" in event:
                message = str(event["error"]).strip().splitlines()[-1]
                raise StackError(f"{what}: {step} failed: {message}", "fix that step, then run again")
        on_step(f"built {tag}: {steps} steps, {cached} of them from the engine's cache")
        return str(client.api.inspect_image(tag)["Id"])
    except docker.errors.APIError as exc:
        raise ImageBuildError(f"{what}: the engine could not build {tag}: {exc.explanation or exc}") from None
    except requests.exceptions.RequestException as exc:
        raise ImageBuildError(f"{what}: the engine went away while building {tag}: {exc}") from None


def labelled_images(client: docker.DockerClient, label: str) -> list[tuple[str, dict[str, str]]]:
    """(tag, labels) of every tagged image that carries ``label``, by tag."""
    found = []
    for image in client.api.images(filters={"label": label}):
        found += [(str(tag), dict(image.get("Labels") or {})) for tag in image.get("RepoTags") or []]
    return sorted(found)
