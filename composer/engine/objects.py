"""The engine's objects as tisbench reads them: typed views of the API's list/inspect dicts.

The docker SDK hands back JSON-shaped dicts (``c["Labels"]["tisbench.lab"]``, ``c["State"]``);
code above the engine reads a lab's containers and networks through these instead, so a label key
or a field name lives here once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from composer.core.labels import COMPOSE_CONFIG_FILES as CONFIG_FILES_LABEL
from composer.core.labels import COMPOSE_SERVICE as SERVICE_LABEL
from composer.core.labels import LAB_LABEL, OWNER_LABEL, RUN_LABEL


@dataclass(frozen=True)
class PortBinding:
    private: int
    public: int | None


@dataclass(frozen=True)
class LabObject:
    """What containers and networks of a lab share: an id, a name and tisbench's labels."""

    id: str
    name: str
    labels: Mapping[str, str]

    @property
    def lab(self) -> str:
        return self.labels.get(LAB_LABEL, "")

    @property
    def run_id(self) -> str | None:
        return self.labels.get(RUN_LABEL)

    def label(self, key: str, default: str = "") -> str:
        return self.labels.get(key, default)


@dataclass(frozen=True)
class LabContainer(LabObject):
    state: str  # the engine's word: running, exited, created, removing…
    created: float  # seconds since the epoch
    ports: tuple[PortBinding, ...] = ()

    @property
    def service(self) -> str:
        return self.labels.get(SERVICE_LABEL, "?")

    @property
    def owner(self) -> str | None:
        return self.labels.get(OWNER_LABEL)

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def compose_config(self) -> str | None:
        return self.labels.get(CONFIG_FILES_LABEL)

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> LabContainer:
        """From an entry of ``APIClient.containers()``."""
        ports = tuple(PortBinding(p["PrivatePort"], p.get("PublicPort")) for p in item.get("Ports") or [])
        names = item.get("Names") or ["/?"]
        return cls(item["Id"], names[0].lstrip("/"), dict(item.get("Labels") or {}), item.get("State", "?"),
                   float(item.get("Created", 0)), ports)  # fmt: skip


@dataclass(frozen=True)
class LabNetwork(LabObject):
    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> LabNetwork:
        """From an entry of ``APIClient.networks()``."""
        return cls(item["Id"], item.get("Name", "?"), dict(item.get("Labels") or {}))


@dataclass(frozen=True)
class LabVolume(LabObject):
    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> LabVolume:
        """From an entry of ``APIClient.volumes()["Volumes"]``; a volume's name is its id."""
        return cls(item["Name"], item["Name"], dict(item.get("Labels") or {}))


def find_service(containers: list[LabContainer], service: str) -> LabContainer | None:
    return next((c for c in containers if c.service == service), None)
