"""Triton releases: parsing, the ≥ 23.03 policy, release → server version.

Pure logic: nothing here touches Docker, so a bad release is refused before any engine call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from composer.core.errors import ReleaseError

_FORM = re.compile(r"(\d{2})\.(\d{2})")
EXPECTED_FORM = 'a release is YY.MM with two-digit month, e.g. "23.08" or "24.10"'


@dataclass(frozen=True, order=True)
class Release:
    year: int
    month: int

    def __str__(self) -> str:
        return f"{self.year:02d}.{self.month:02d}"


MIN_RELEASE = Release(23, 3)

# Facts from NVIDIA's release notes; anything else follows the formula below.
_KNOWN_SERVER_VERSIONS: dict[Release, str] = {
    Release(23, 3): "2.32.0",
    Release(23, 7): "2.36.0",
    Release(23, 8): "2.37.0",
    Release(24, 1): "2.42.0",
    Release(24, 3): "2.44.0",
    Release(24, 10): "2.51.0",
    Release(24, 12): "2.53.0",
    Release(25, 7): "2.59.1",
    Release(25, 8): "2.60.0",
    Release(25, 12): "2.64.0",
    Release(26, 1): "2.65.0",
    Release(26, 8): "2.72.0",
}
# From 25.07 on, NVIDIA's numbering is one minor behind the old monthly formula.
_FORMULA_SHIFT_SINCE = Release(25, 7)


def parse_release(text: object, *, field: str = "release") -> Release:
    """Parse ``YY.MM`` and apply the policy; raise ReleaseError naming ``field`` otherwise."""
    if isinstance(text, float):
        raise ReleaseError(
            f"{field}: {text!r} is a number, not a release",
            'quote it in YAML ("24.10"): unquoted 24.10 reads as the number 24.1',
        )
    raw = "" if text is None else str(text).strip()
    match = _FORM.fullmatch(raw)
    if not match:
        shown = repr(raw) if raw else "empty"
        raise ReleaseError(f"{field}: {shown} is not a release", EXPECTED_FORM)
    release = Release(int(match.group(1)), int(match.group(2)))
    if not 1 <= release.month <= 12:
        raise ReleaseError(f"{field}: {raw!r} has month {release.month:02d}", EXPECTED_FORM)
    if release < MIN_RELEASE:
        raise ReleaseError(
            f"{field}: {raw} is older than {MIN_RELEASE}",
            f"perf_analyzer in the -py3-sdk image needs release {MIN_RELEASE} or newer; "
            f"use --release {MIN_RELEASE} or later",
        )
    return release


def server_version(release: Release) -> str:
    """The Triton server version a release ships (e.g. 23.08 → 2.37.0)."""
    known = _KNOWN_SERVER_VERSIONS.get(release)
    if known is not None:
        return known
    minor = 12 * (release.year - 21) + release.month + 5
    if release >= _FORMULA_SHIFT_SINCE:
        minor -= 1
    return f"2.{minor}.0"
