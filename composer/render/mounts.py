"""A mount as a rendered compose file writes it (bind, volume or tmpfs), read back the same way for
single-host and swarm labs. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def unescape(value: str) -> str:
    """Undo the ``$`` doubling, as compose's interpolation does, for SDK calls made from the file."""
    return value.replace("$$", "$")


@dataclass(frozen=True)
class Mount:
    source: str | None  # a host path (bind), a volume's engine name (volume); None for tmpfs
    target: str
    read_only: bool = False
    type: str = "bind"  # bind | volume | tmpfs: compose's own key
    size_bytes: int | None = None  # tmpfs only


def compose_mount(raw: dict[str, Any], project: str) -> Mount:
    """One entry of a service's ``volumes:``; a volume's name is ``<project>_<key>``, as compose names it."""
    kind = str(raw.get("type", "bind"))
    target = str(raw["target"])
    if kind == "tmpfs":
        return Mount(None, target, type="tmpfs", size_bytes=int((raw.get("tmpfs") or {})["size"]))
    source = unescape(str(raw["source"]))
    if kind == "volume":
        source = f"{project}_{source}"
    return Mount(source, target, bool(raw.get("read_only", False)), kind)
