"""Atomic file writes: a reader never sees a half-written file, a failure leaves none behind."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from composer.core.errors import UsageError


def write_atomic(path: Path, data: str | bytes) -> None:
    path = Path(path)
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise UsageError(f"{path}: {parent} is a file, not a directory", "choose an output path in a directory")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{path}: cannot create {parent} ({exc.strerror})", "choose a writable output path") from None
    if path.is_dir():
        raise UsageError(f"{path}: is a directory", "name a file to write")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise UsageError(
            f"{path}: cannot write in {parent} ({exc.strerror})", "choose a writable output path"
        ) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would surprise whoever reads the results next
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UsageError(f"{path}: cannot be written ({exc.strerror})", "choose a writable output path") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, value: Any) -> None:
    write_atomic(path, json.dumps(value, indent=2, sort_keys=False, default=str) + "\n")
