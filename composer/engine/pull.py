"""Images as users get them: present, pulled (policy missing | always | never), or one clear error.

Pulls go through the docker SDK's streamed ``api.pull``, so the engine's stored credentials
(``docker login``) and its mirrors apply exactly as for ``docker pull``. Registry refusals are read
from the engine's words and become one line: who refused, and how to log in or get around it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import docker
import docker.errors

from composer.core.errors import ImageMissing, TisbenchError
from composer.core.lab_releases import LAB_REPOSITORY
from composer.engine.images import image_id

POLICIES = ("missing", "always", "never")
DEFAULT_POLICY = "missing"
DOCKER_HUB = "docker.io"


def registry_of(ref: str) -> str:
    """The registry a reference names, by docker's rule (a first part with '.' or ':', or localhost)."""
    first, slash, _ = ref.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return DOCKER_HUB


def split_ref(ref: str) -> tuple[str, str]:
    """``repo:tag`` or ``repo@digest`` → (repository, tag or digest), as ``api.pull`` takes them."""
    if "@" in ref:
        repo, _, digest = ref.partition("@")
        return repo, digest
    repo, colon, tag = ref.rpartition(":")
    if not colon or "/" in tag:
        return ref, "latest"
    return repo, tag


class PullRefused(ImageMissing):
    """A registry would not serve an image (auth, absent tag, unreachable): exit 3."""


_AUTH = re.compile(r"unauthorized|authentication required|no basic auth credentials|denied|\b401\b", re.I)
_ABSENT = re.compile(r"manifest unknown|not found|does not exist", re.I)
_UNREACHABLE = re.compile(
    r"connection refused|no such host|dial tcp|i/o timeout|timeout|tls|http response to https client|"
    r"network is unreachable|no route to host",
    re.I,
)


def pull_failure(ref: str, message: str) -> TisbenchError:
    """The engine's pull error, said as what happened and what to do."""
    registry = registry_of(ref)
    reason = " ".join(message.split())[:300]
    if _AUTH.search(message):
        how = "docker login nvcr.io (user $oauthtoken, password an NGC API key)" if registry == "nvcr.io" else (
            f"docker login {registry}"
        )
        return PullRefused(
            f"registry {registry} refused to serve {ref} ({reason})",
            f"log in first: {how}; tisbench uses the engine's stored credentials, as docker pull does",
        )
    if _ABSENT.search(message):
        return PullRefused(
            f"{ref} does not exist on registry {registry} ({reason})",
            "check the release and the image repository (NGC publishes <release>-py3 and <release>-py3-sdk)",
        )
    if _UNREACHABLE.search(message):
        return PullRefused(
            f"registry {registry} cannot be reached to pull {ref} ({reason})",
            "check the network or name a mirror with --image-repo; or use --images lab (CPU stand-ins built "
            "here with make lab-images)",
        )
    return PullRefused(f"pulling {ref} failed ({reason})", f"try docker pull {ref} to see the engine's view")


class PullProgress(Protocol):
    """What a pull shows: one image at a time, the engine's progress events in between."""

    def start(self, ref: str) -> None: ...

    def event(self, ref: str, event: Mapping[str, Any]) -> None: ...

    def done(self, ref: str) -> None: ...


@dataclass
class LayerTally:
    """Layers and bytes of one image's pull, from the engine's progress events."""

    layers: dict[str, tuple[int, int]] = field(default_factory=dict)  # id → (current, total) bytes
    finished: set[str] = field(default_factory=set)

    def add(self, event: Mapping[str, Any]) -> None:
        layer, status = event.get("id"), str(event.get("status", ""))
        if not layer or status.startswith(("Pulling from", "Digest", "Status")):
            return
        detail = event.get("progressDetail") or {}
        current, total = self.layers.get(layer, (0, 0))
        if status == "Downloading" and detail.get("total"):
            current, total = int(detail.get("current", 0)), int(detail["total"])
        if status in ("Download complete", "Pull complete", "Already exists"):
            current = total
            self.finished.add(layer)
        self.layers[layer] = (current, total)

    @property
    def bytes_done(self) -> int:
        return sum(current for current, _ in self.layers.values())

    @property
    def bytes_total(self) -> int:
        return sum(total for _, total in self.layers.values())


def pull(client: docker.DockerClient, ref: str, progress: PullProgress) -> None:
    """Pull one reference through the engine, streaming its progress; PullRefused on failure."""
    repository, tag = split_ref(ref)
    progress.start(ref)
    try:
        for event in client.api.pull(repository, tag=tag, stream=True, decode=True):
            if event.get("error"):
                raise pull_failure(ref, str(event.get("error")))
            progress.event(ref, event)
    except docker.errors.APIError as exc:
        raise pull_failure(ref, str(exc.explanation or exc)) from None
    progress.done(ref)


def ensure_images(
    client: docker.DockerClient,
    refs: Iterable[str],
    *,
    policy: str,
    image_set: str,
    progress: PullProgress,
) -> dict[str, str]:
    """Image ids by reference, pulling by the policy first. Lab images are built here, never pulled."""
    found: dict[str, str] = {}
    for ref in refs:
        present = image_id(client, ref)
        if image_set == "lab":
            if present is None:
                raise ImageMissing(
                    f"image {ref} is not on this Docker engine",
                    "build it with: make lab-images (or tisbench images build)"
                    if ref.startswith(LAB_REPOSITORY)
                    else f"build it here (docker build -t {ref} …), or fix server.image / analyzer.image in stack.yaml",
                )
            found[ref] = present
            continue
        if present is None and policy == "never":
            raise ImageMissing(
                f"image {ref} is not on this Docker engine and --pull is never",
                f"pull it (docker pull {ref}, or tisbench images pull) or use --pull missing",
            )
        if policy == "always" or present is None:
            pull(client, ref, progress)
            present = image_id(client, ref)
        if present is None:
            raise ImageMissing(f"image {ref} is still missing after its pull", f"try docker pull {ref}")
        found[ref] = present
    return found
