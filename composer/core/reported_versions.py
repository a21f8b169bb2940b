"""Versions as the binaries report them: tritonserver's option table, ``perf_analyzer --version``,
``pip show``. Pure parsing; composer.images.probe and composer.analyzer.identity run the binaries."""

from __future__ import annotations

import re

from composer.core.lab_releases import version_tuple

# tritonserver prints its options at start, even when it then fails: "| server_version | 2.51.0 |".
_SERVER_ROW = re.compile(r"^\|\s*server_version\s*\|\s*([0-9][0-9.]*)\s*\|", re.MULTILINE)
# perf_analyzer ≥ 2.36: "Perf Analyzer Version 2.36.0 (commit 1a2b3c4)"; builds without a version
# compiled in leave it empty, the standalone PyPI builds say 0.0.0.
_ANALYZER_LINE = re.compile(r"^.*Perf Analyzer Version.*$", re.MULTILINE)
_ANALYZER_VERSION = re.compile(r"Perf Analyzer Version\s*([0-9]+\.[0-9]+\.[0-9]+[0-9.]*)")
_PIP_VERSION = re.compile(r"^Version:\s*(\S+)\s*$", re.MULTILINE)
UNVERSIONED = "0.0.0"


def server_version_from_log(text: str) -> str | None:
    match = _SERVER_ROW.search(text)
    return match.group(1) if match else None


def analyzer_version_line(text: str) -> str | None:
    """The line of ``perf_analyzer --version`` that names it, as printed."""
    match = _ANALYZER_LINE.search(text)
    return match.group(0).strip() if match else None


def analyzer_version_from_output(text: str) -> str | None:
    """``X.Y.Z`` from ``perf_analyzer --version``, or None when the binary names no real version."""
    match = _ANALYZER_VERSION.search(text)
    if match is None:
        return None
    version = ".".join(str(n) for n in version_tuple(match.group(1)))
    return None if version == UNVERSIONED else version


def version_from_pip_show(text: str) -> str | None:
    """``X.Y.Z`` from ``pip show PROJECT`` output (``2.37.0.9383150`` → ``2.37.0``)."""
    match = _PIP_VERSION.search(text)
    if match is None:
        return None
    try:
        return ".".join(str(n) for n in version_tuple(match.group(1)))
    except ValueError:
        return None
