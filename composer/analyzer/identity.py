"""Which perf_analyzer a lab's sdk container really holds, as observed once per bench.

A lab image says it in its labels (its binary was asked at build time). Any other sdk image is
asked in its running container: ``perf_analyzer --version`` (2.36 and later; the standalone
PyPI builds answer 0.0.0), then ``pip show`` of the packages that ship it; only when the
container tells nothing is the release's own version assumed, and the manifest says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from composer.analyzer.perf_analyzer import with_deadline
from composer.core.labels import ANALYZER_REPORTED_LABEL, ANALYZER_SOURCE_LABEL, ANALYZER_VERSION_LABEL
from composer.core.reported_versions import analyzer_version_from_output, analyzer_version_line, version_from_pip_show
from composer.engine.exec import output_of

if TYPE_CHECKING:
    import docker

ASK_TIMEOUT_S = 20.0
_PIP_PROJECTS = ("perf-analyzer", "tritonclient")  # from 25.09 NGC pip-installs perf-analyzer


@dataclass(frozen=True)
class AnalyzerIdentity:
    version: str | None
    source: str  # how tisbench knows it, in words
    reported: str | None = None  # the binary's own line, as printed

    def manifest_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "perf_analyzer_version": self.version or "unknown",
            "perf_analyzer_version_source": self.source,
        }
        if self.reported:
            fields["perf_analyzer_reported"] = self.reported
        return fields


def from_labels(labels: Mapping[str, str]) -> AnalyzerIdentity | None:
    """What a lab sdk image's labels say of its perf_analyzer, or None for other images."""
    version = labels.get(ANALYZER_VERSION_LABEL)
    if not version:
        return None
    how = labels.get(ANALYZER_SOURCE_LABEL)
    if how == "binary":
        source = "lab image label: perf_analyzer --version at build time"
    elif how == "wheel":
        source = "lab image label: the version of the wheel it came from (the binary names none)"
    else:
        source = "lab image label (an image built before versions were observed)"
    return AnalyzerIdentity(version, source, labels.get(ANALYZER_REPORTED_LABEL) or None)


def assumed(release: str) -> AnalyzerIdentity:
    """The release's own perf_analyzer version, when nothing observed tells otherwise."""
    from composer.core.release import parse_release, server_version

    return AnalyzerIdentity(server_version(parse_release(release)), f"assumed from release {release} (not observed)")


def planned(release: str, image_set: str) -> AnalyzerIdentity:
    """What a lab of ``release`` will hold, known without Docker: a lab recipe's, else the release's."""
    from composer.core.lab_releases import LAB_RECIPES

    recipe = LAB_RECIPES.get(release) if image_set == "lab" else None
    if recipe is None:
        return assumed(release)
    return AnalyzerIdentity(recipe.analyzer.version, f"the lab recipe of release {release} (not observed)")


def from_answers(version_output: str, pip_outputs: Mapping[str, str], release: str) -> AnalyzerIdentity:
    """Judge what the container answered: its --version first, then pip, then the release."""
    reported = analyzer_version_from_output(version_output)
    line = analyzer_version_line(version_output)
    if reported is not None:
        return AnalyzerIdentity(reported, "perf_analyzer --version in the sdk container", line)
    for project, output in pip_outputs.items():
        version = version_from_pip_show(output)
        if version is not None:
            return AnalyzerIdentity(version, f"pip show {project} in the sdk container", line)
    return AnalyzerIdentity(assumed(release).version, assumed(release).source, line)


def _ask(client: docker.DockerClient, container_id: str, argv: list[str]) -> str:
    """The container's answer to ``argv``; nothing when the engine would not ask it."""
    return output_of(client, container_id, with_deadline(argv, ASK_TIMEOUT_S)) or ""


def observe(
    client: docker.DockerClient, container_id: str, labels: Mapping[str, str], release: str
) -> AnalyzerIdentity:
    """The perf_analyzer of the running sdk container ``container_id`` (image ``labels``)."""
    labelled = from_labels(labels)
    if labelled is not None:
        return labelled
    version_output = _ask(client, container_id, ["perf_analyzer", "--version"])
    if analyzer_version_from_output(version_output) is not None:
        return from_answers(version_output, {}, release)
    pip = {p: _ask(client, container_id, ["python3", "-m", "pip", "show", p]) for p in _PIP_PROJECTS}
    return from_answers(version_output, pip, release)
