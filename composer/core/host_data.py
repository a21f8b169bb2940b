"""What a lab reads from this machine's disk (models, dataset, the stack's own volumes): how large
it is, said before a copy to a remote engine, and a fingerprint of its content, recorded in the
manifest so two runs that read different data are told apart. Pure filesystem reading."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

FINGERPRINT_LIMIT = 64 * 1024**2  # larger sources are recorded by size only: hashing them would cost a run


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    found = []
    for root, dirs, names in os.walk(path, followlinks=True):
        dirs.sort()
        found += [Path(root) / name for name in sorted(names)]
    return found


def tree_size(path: Path) -> int:
    """Bytes of every file under ``path`` (links followed, as a copy follows them)."""
    return sum(f.stat().st_size for f in _files(path) if f.is_file())


def content(path: Path, limit: int = FINGERPRINT_LIMIT) -> tuple[str | None, int]:
    """(fingerprint, bytes) from one walk: sha256 over each file's path (relative to ``path``) and
    content, None above ``limit`` bytes."""
    files = [f for f in _files(path) if f.is_file()]
    size = sum(f.stat().st_size for f in files)
    if size > limit:
        return None, size
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(path) if file != path else file.name).encode() + b"\0")
        digest.update(file.read_bytes())
        digest.update(b"\0")
    return f"sha256:{digest.hexdigest()}", size


def fingerprint(path: Path, limit: int = FINGERPRINT_LIMIT) -> str | None:
    return content(path, limit)[0]
