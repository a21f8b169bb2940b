"""Which image references a lab runs: NGC's naming scheme, a mirror of it, the lab images, or the
exact references a stack names. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from composer.core.lab_releases import lab_image_tags
from composer.core.release import Release

NGC_REPOSITORY = "nvcr.io/nvidia/tritonserver"


@dataclass(frozen=True)
class Images:
    server: str
    sdk: str


def image_refs(
    release: Release, image_set: str, repository: str | None = None, server: str | None = None, sdk: str | None = None
) -> Images:
    """The server and sdk image references: lab tags, or ``<repository>:<release>-py3[-sdk]`` (NGC's
    scheme, on NGC or a mirror of it), each replaced by an exact reference where one is given (an
    image built here, FROM either, serves under either set)."""
    if image_set == "lab":
        lab_server, lab_sdk = lab_image_tags(str(release))
        return Images(server or lab_server, sdk or lab_sdk)
    repo = repository or NGC_REPOSITORY
    return Images(server or f"{repo}:{release}-py3", sdk or f"{repo}:{release}-py3-sdk")
