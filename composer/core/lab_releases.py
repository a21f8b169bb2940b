"""Which real tritonserver and which real perf_analyzer each lab release is made of: one table.

A lab release is a *faithful pair*: the server its ``nvidia-pytriton`` wheel bundles and the
perf_analyzer binary of the same release's ``tritonclient`` manylinux1 wheel
(``tritonclient-<v>.data/data/bin/perf_analyzer``). What each binary links was read from the
wheels' own files (../shared/LAB.md); the build checks every version here against what the
binaries report, so a wrong row fails the build instead of mislabelling an image.

Pure data and pure functions: nothing here touches Docker, pip or the network.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from composer.core.errors import ReleaseError

# Bump when composer/images/lab_images.py changes how an image is assembled or labelled: every lab image
# built before then is detected as stale (its tisbench.recipe label differs) and rebuilt.
RECIPE_VERSION = 2

STUB_PYTHON = "3.11"  # bookworm's python; the 3.13 stub on trixie cannot see Debian's numpy
SUITE_GLIBC_MINOR = {"bullseye": 31, "bookworm": 36, "trixie": 41}
SERVER_SUITE = "bookworm"
# python3-pip: server.requirements installs wheels into the server image, as into NGC's (which has pip)
SERVER_DEBS = ("python3", "python3-numpy", "python3-pip", f"libpython{STUB_PYTHON}", "libssl3", "zlib1g", "libstdc++6")


@dataclass(frozen=True)
class Wheel:
    project: str
    version: str

    def requirement(self) -> str:
        return f"{self.project}=={self.version}"


@dataclass(frozen=True)
class LibWheel:
    """A PyPI wheel whose shared libraries a binary loads: ``lib_dir`` of it goes on LD_LIBRARY_PATH."""

    wheel: Wheel
    lib_dir: str


CUDART = LibWheel(Wheel("nvidia-cuda-runtime-cu12", "12.6.77"), "nvidia/cuda_runtime/lib/")


@dataclass(frozen=True)
class ServerRecipe:
    wheel: Wheel  # nvidia-pytriton
    version: str  # the server version it reports
    stub_python: str = STUB_PYTHON
    suite: str = SERVER_SUITE
    debs: tuple[str, ...] = SERVER_DEBS


@dataclass(frozen=True)
class AnalyzerRecipe:
    wheel: Wheel  # tritonclient (manylinux1) or the standalone perf-analyzer
    binary: str  # the perf_analyzer file inside that wheel
    version: str  # the perf_analyzer version: the wheel's release
    suite: str
    debs: tuple[str, ...]
    libs: tuple[LibWheel, ...] = ()


@dataclass(frozen=True)
class LabRecipe:
    release: str
    server: ServerRecipe
    analyzer: AnalyzerRecipe

    def server_fingerprint(self) -> str:
        return _fingerprint("server", self.release, asdict(self.server))

    def analyzer_fingerprint(self) -> str:
        return _fingerprint("sdk", self.release, asdict(self.analyzer))


def _fingerprint(kind: str, release: str, facts: dict[str, object]) -> str:
    text = json.dumps([RECIPE_VERSION, kind, release, facts], sort_keys=True).encode()
    return hashlib.sha256(text).hexdigest()[:16]


def version_tuple(text: str) -> tuple[int, ...]:
    """``2.37.0.9383150`` → (2, 37, 0): the first three numeric parts of a version."""
    parts = []
    for part in text.split(".")[:3]:
        if not part.isdigit():
            raise ValueError(f"{text!r} is not a version")
        parts.append(int(part))
    return tuple(parts)


# What tritonclient's perf_analyzer binaries link, by first version (read from the wheels' files).
# The 2.32–2.33 row is what their links say; no faithful release uses it, so it was never built.
_TRITONCLIENT_NEEDS: tuple[tuple[tuple[int, ...], str, tuple[str, ...], tuple[LibWheel, ...]], ...] = (
    ((2, 32), "bullseye", ("libssl1.1", "zlib1g", "libstdc++6"), ()),
    ((2, 34), "bookworm", ("libssl3", "zlib1g", "libstdc++6", "libb64-0d"), (CUDART,)),
    ((2, 52), "trixie", ("libssl3t64", "zlib1g", "libstdc++6"), ()),
)


def tritonclient_analyzer(version: str) -> AnalyzerRecipe:
    """The perf_analyzer of ``tritonclient==version`` and the root it runs on."""
    wanted = version_tuple(version)
    rows = [row for row in _TRITONCLIENT_NEEDS if row[0] <= wanted]
    if not rows:
        raise ValueError(f"tritonclient {version}: no perf_analyzer before 2.32")
    _, suite, debs, libs = rows[-1]
    return AnalyzerRecipe(
        Wheel("tritonclient", version),
        f"tritonclient-{version}.data/data/bin/perf_analyzer",
        ".".join(str(n) for n in wanted),
        suite,
        debs,
        libs,
    )


def _pair(release: str, pytriton: str, version: str) -> LabRecipe:
    return LabRecipe(release, ServerRecipe(Wheel("nvidia-pytriton", pytriton), version), tritonclient_analyzer(version))


# release → nvidia-pytriton wheel → the server version it bundles (= the release's tritonclient).
LAB_RECIPES: dict[str, LabRecipe] = {
    recipe.release: recipe
    for recipe in (
        _pair("23.07", "0.3.0", "2.36.0"),
        _pair("23.10", "0.4.2", "2.39.0"),
        _pair("23.12", "0.5.0", "2.41.0"),
        _pair("24.01", "0.5.2", "2.42.0"),
        _pair("24.02", "0.5.3", "2.43.0"),
        _pair("24.03", "0.5.6", "2.44.0"),
        _pair("24.04", "0.5.7", "2.45.0"),
        _pair("24.05", "0.5.8", "2.46.0"),
        _pair("24.06", "0.5.9", "2.47.0"),
        _pair("24.07", "0.5.10", "2.48.0"),
        _pair("24.08", "0.5.11", "2.49.0"),
        _pair("24.09", "0.5.12", "2.50.0"),
        _pair("24.10", "0.7.0", "2.51.0"),
    )
}

# Releases PyPI seems to hold a pair for, and why there is no lab recipe for them.
NO_RECIPE: dict[str, str] = {
    "23.04": (
        "nvidia-pytriton 0.2.x has one Python 3.8 stub that bundles libpython3.8 but no standard "
        "library, and Debian has no Python 3.8: python models fail to load ('failed to get the "
        "Python codec of the filesystem encoding', observed on bookworm)"
    ),
}


def lab_recipe(release: str) -> LabRecipe:
    try:
        return LAB_RECIPES[release]
    except KeyError:
        why = NO_RECIPE.get(release)
        known = ", ".join(sorted(LAB_RECIPES))
        raise ReleaseError(
            f"no lab images for release {release!r}" + (f": {why}" if why else ""),
            hint=f"lab releases are: {known}",
        ) from None


# The lab images (composer/images) are tagged after NGC's own, in a repository of their own.
LAB_REPOSITORY = "tisbench-lab/tritonserver"


def lab_image_tags(release: str) -> tuple[str, str]:
    """(server, sdk) tags of a lab release; kept apart from NGC's ``nvcr.io`` names."""
    return f"{LAB_REPOSITORY}:{release}-py3", f"{LAB_REPOSITORY}:{release}-py3-sdk"
