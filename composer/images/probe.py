"""A freshly imported lab image asked what it holds, then tagged with the answers.

The image is imported under ``<tag>-unverified``; its binary runs once in a throwaway container
without network (tritonserver prints its option table even when it then stops for want of a
model repository; ``perf_analyzer --version`` also proves every library it links is there). The
versions they report, checked against the recipe, become labels of the final tag together with
the recipe's fingerprint, so a half-built image never looks finished.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from composer.core.errors import ImageBuildError
from composer.core.lab_releases import version_tuple
from composer.core.labels import (
    ANALYZER_REPORTED_LABEL,
    ANALYZER_SOURCE_LABEL,
    ANALYZER_VERSION_LABEL,
    RECIPE_LABEL,
    SERVER_VERSION_LABEL,
)
from composer.core.reported_versions import analyzer_version_from_output, analyzer_version_line, server_version_from_log
from composer.engine.images import image_id, label_image, remove_image, run_probe
from composer.images.lab_images import ImageSpec

if TYPE_CHECKING:
    import docker

PROBE_TIMEOUT_S = 120.0
_SERVER_PROBE = ["tritonserver", "--model-repository=/nonexistent-tisbench-probe"]
_ANALYZER_PROBE = ["perf_analyzer", "--version"]


def _tail(output: str, count: int = 4) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return " | ".join(lines[-count:]) or "no output"


def server_labels(spec: ImageSpec, code: int, output: str) -> dict[str, str]:
    """The server version label from the probe's output, checked against the recipe."""
    version = server_version_from_log(output)
    if version is None:
        raise ImageBuildError(f"tritonserver in {spec.tag} reported no version (exit {code}): {_tail(output)}")
    if version != spec.expected_version:
        raise ImageBuildError(
            f"{spec.tag}: tritonserver reports {version}, the recipe says {spec.expected_version}",
            "correct the release's row in composer/core/lab_releases.py",
        )
    return {SERVER_VERSION_LABEL: version}


def analyzer_labels(spec: ImageSpec, code: int, output: str) -> dict[str, str]:
    """perf_analyzer's version labels: the binary's own when it names one, else its wheel's."""
    if code != 0:
        raise ImageBuildError(f"perf_analyzer in {spec.tag} does not run (exit {code}): {_tail(output)}")
    line = analyzer_version_line(output) or ""
    reported = analyzer_version_from_output(output)
    if reported is not None and version_tuple(reported) != version_tuple(spec.expected_version):
        raise ImageBuildError(
            f"{spec.tag}: perf_analyzer reports {reported}, the recipe says {spec.expected_version}",
            "correct the release's row in composer/core/lab_releases.py",
        )
    return {
        ANALYZER_VERSION_LABEL: reported or spec.expected_version,
        ANALYZER_SOURCE_LABEL: "binary" if reported else "wheel",
        ANALYZER_REPORTED_LABEL: line,
    }


def finish_image(
    client: docker.DockerClient, spec: ImageSpec, scratch_tag: str, progress: Callable[[str], None]
) -> None:
    """Probe ``scratch_tag``, give ``spec.tag`` its labels, and drop the scratch tag and the image replaced."""
    try:
        probe = _SERVER_PROBE if spec.kind == "server" else _ANALYZER_PROBE
        progress(f"asking {scratch_tag}: {' '.join(probe)}")
        code, output = run_probe(client, scratch_tag, probe, PROBE_TIMEOUT_S)
        labels = server_labels(spec, code, output) if spec.kind == "server" else analyzer_labels(spec, code, output)
        labels[RECIPE_LABEL] = spec.fingerprint
        replaced = image_id(client, spec.tag)
        new_id = label_image(client, scratch_tag, spec.tag, labels)
    finally:
        remove_image(client, scratch_tag)
    if replaced and replaced != new_id and not remove_image(client, replaced):
        progress(f"the image {spec.tag} replaced ({replaced[:19]}) is still in use: kept, untagged")
    if spec.kind == "server":
        progress(f"{spec.tag}: tritonserver {labels[SERVER_VERSION_LABEL]}, as the server reports")
    else:
        source = "as the binary reports" if labels[ANALYZER_SOURCE_LABEL] == "binary" else "its wheel's (none built in)"
        progress(f"{spec.tag}: perf_analyzer {labels[ANALYZER_VERSION_LABEL]}, {source}")
