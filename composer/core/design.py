"""The lab as one typed description: its services, mounts, ports, network and volumes. Pure.

``composer.core.designer`` builds it once from a plan; everything else is drawn from it: the
compose file and the swarm stack file (``composer.render``), the docker SDK's create calls and
swarm services (``composer.engine``), the remote engine's volume fills (its bind mounts turned into
volumes by :meth:`LabDesign.copied`) and the run manifest (:meth:`LabDesign.manifest`). Nothing
reads a rendered file back to learn what to create.

A per-service field that stack.yaml sets (``server:`` and ``analyzer:`` alike) is one field of
:class:`ServiceOptions`, read and applied here; the templates loop over the service's fields.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any

from composer.core import labels as L
from composer.core import stack_fields as sf
from composer.core.gpus import NONE, GpuRequest

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # POSIX: what a shell can name
# Swarm services: reached by name (service VIPs do not work on every host), and never restarted
SWARM_ENDPOINT_MODE = "dnsrr"
SWARM_RESTART = "none"


@dataclass(frozen=True)
class Mount:
    source: str | None  # a host path (bind), a volume's key in the design (volume); None for tmpfs
    target: str
    read_only: bool = False
    type: str = "bind"  # bind | volume | tmpfs: compose's own key
    size_bytes: int | None = None  # tmpfs only


@dataclass(frozen=True)
class Port:
    target: int
    host_ip: str
    published: int | None  # None: an ephemeral host port


def environment(value: Any) -> tuple[tuple[str, str], ...]:
    """stack.yaml's ``environment:``: a mapping of POSIX names to strings (numbers are written as text)."""
    if not isinstance(value, Mapping):
        raise TypeError("expected a mapping of NAME: value")
    pairs = []
    for name, text in value.items():
        if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a variable name (letters, digits and _, not starting with a digit)")
        if isinstance(text, bool) or not isinstance(text, str | int | float):
            raise ValueError(f"{name}: the value must be a string (quote it: {name}: \"...\")")
        if "\x00" in str(text):
            raise ValueError(f"{name}: the value holds a NUL character, which no environment can carry")
        pairs.append((name, str(text)))
    return tuple(pairs)


@dataclass(frozen=True)
class ServiceOptions:
    """What stack.yaml may set on either service, the same way for ``server:`` and ``analyzer:``."""

    environment: tuple[tuple[str, str], ...] = ()

    KEYS = ("environment",)

    @classmethod
    def read(cls, fields: sf.Fields) -> ServiceOptions:
        return cls(
            environment=fields.get("environment", (), environment, 'a mapping such as {OMP_NUM_THREADS: "1"}'),
        )

    def apply(self, service: Service) -> Service:
        """The service as the stack asks for it: the user's values after tisbench's own."""
        return replace(service, environment=(*service.environment, *self.environment))


@dataclass(frozen=True)
class Service:
    name: str  # the compose service key, also its DNS alias on the lab's network
    image: str
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str | None = None
    environment: tuple[tuple[str, str], ...] = ()
    mounts: tuple[Mount, ...] = ()
    ports: tuple[Port, ...] = ()
    shm_size: str | None = None
    ulimits: tuple[tuple[str, int], ...] = ()
    advisory_ulimits: tuple[str, ...] = ()  # of ulimits: NGC's advice, dropped where an engine refuses it
    refused_ulimits: tuple[str, ...] = ()  # advice this engine refused before, left out
    ipc: str | None = None
    gpus: GpuRequest = NONE
    stop_signal: str | None = None
    pull_policy: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    replicas: int = 1  # swarm: how many tasks (the analyzer's: the load clients)

    def config_hash(self) -> str:
        """What compose keeps in ``config-hash``: changes with the service, and only with it."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Network:
    key: str  # compose's key; the engine's name is <project>_<key>
    driver: str = "bridge"  # bridge | overlay (swarm)
    attachable: bool = False
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Volume:
    key: str  # compose's key; the engine's name is <project>_<key>
    fill: str | None = None  # a host path whose content tisbench copies in (remote engines)
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class LabDesign:
    project: str
    release: str
    engine: str  # local | swarm
    services: tuple[Service, ...]
    network: Network
    working_dir: str  # the stack directory (compose's project.working_dir)
    config_file: str  # where the rendered file is kept (compose's project.config_files)
    volumes: tuple[Volume, ...] = field(default=())

    def service(self, name: str) -> Service:
        return next(s for s in self.services if s.name == name)

    @property
    def network_name(self) -> str:
        return f"{self.project}_{self.network.key}"

    def container_name(self, service: str) -> str:
        return f"{self.project}-{service}-1"

    def volume_name(self, key: str) -> str:
        return f"{self.project}_{key}"

    @property
    def transport(self) -> str:
        """bind: the engine sees this machine's paths; copy: they travel into volumes."""
        return "copy" if any(v.fill for v in self.volumes) else "bind"

    def copied(self) -> LabDesign:
        """The same lab for an engine that cannot see this machine's paths: every bind mount becomes
        a labelled volume, filled from that path before the containers start."""
        keys: dict[str, str] = {}
        for service in self.services:
            for mount in service.mounts:
                if mount.type == "bind" and mount.source not in keys:
                    base = PurePosixPath(str(mount.source)).name or "data"
                    key, n = base, 2
                    while key in keys.values():
                        key, n = f"{base}{n}", n + 1
                    keys[str(mount.source)] = key
        services = tuple(
            replace(s, mounts=tuple(_as_volume(m, keys) for m in s.mounts)) for s in self.services
        )
        labels = self.network.labels
        volumes = (*self.volumes, *(Volume(key, source, labels) for source, key in keys.items()))
        return replace(self, services=services, volumes=volumes)

    # ---- compose's and docker stack's own labels, as they set them on what they create

    def compose_labels(self) -> dict[str, str]:
        return {
            L.COMPOSE_PROJECT: self.project,
            L.COMPOSE_WORKING_DIR: self.working_dir,
            L.COMPOSE_CONFIG_FILES: self.config_file,
            L.COMPOSE_VERSION_LABEL: L.COMPOSE_VERSION,
        }

    def container_labels(self, service: Service) -> dict[str, str]:
        return {
            **self.compose_labels(),
            **dict(service.labels),
            L.COMPOSE_SERVICE: service.name,
            L.COMPOSE_ONEOFF: "False",
            L.COMPOSE_NUMBER: "1",
            L.COMPOSE_CONFIG_HASH: service.config_hash(),
            L.COMPOSE_IMAGE: service.image,
            L.COMPOSE_DEPENDS_ON: "",
        }

    def network_labels(self) -> dict[str, str]:
        if self.engine == "swarm":
            return {**dict(self.network.labels), L.STACK_NAMESPACE: self.project}
        return {**self.compose_labels(), L.COMPOSE_NETWORK: self.network.key, **dict(self.network.labels)}

    def volume_labels(self, volume: Volume) -> dict[str, str]:
        return {**self.compose_labels(), L.COMPOSE_VOLUME: volume.key, **dict(volume.labels)}

    def swarm_service_name(self, service: str) -> str:
        return f"{self.project}_{service}"

    def swarm_labels(self, service: Service) -> tuple[dict[str, str], dict[str, str]]:
        """(on the service, on each task's container), as ``docker stack deploy`` sets them."""
        namespace = {L.STACK_NAMESPACE: self.project}
        own = dict(service.labels)
        return {**own, **namespace, L.STACK_IMAGE: service.image}, {**own, **namespace}

    def manifest(self) -> dict[str, Any]:
        """What a run records of the lab it ran in: each service as it was asked for."""
        return {
            "engine": self.engine,
            "network": self.network_name,
            "services": {
                s.name: {
                    "image": s.image,
                    "command": list(s.command) if s.command else None,
                    "environment": dict(s.environment),
                    "mounts": [
                        {"type": m.type, "source": m.source, "target": m.target, "read_only": m.read_only}
                        for m in s.mounts
                    ],
                    "replicas": s.replicas,
                }
                for s in self.services
            },
            "volumes": [v.key for v in self.volumes],
        }


def _as_volume(mount: Mount, keys: dict[str, str]) -> Mount:
    if mount.type != "bind":
        return mount
    return replace(mount, source=keys[str(mount.source)], type="volume")
