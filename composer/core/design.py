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
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from composer.core import labels as L
from composer.core.errors import ConfigError
from composer.core.gpus import NONE, GpuRequest
from composer.core.triton import STACK_SECTION

if TYPE_CHECKING:  # type names only: `down` and `status` read no stack.yaml (yaml)
    from composer.core import stack_fields as sf

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # POSIX: what a shell can name
VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")  # what the engine accepts as a volume's name
RESERVED_TARGETS = ("/models", "/workspace/dataset", "/dev/shm")  # tisbench's own mounts
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


_VOLUME_FORMS = (
    "compose's short syntax ./data:/data[:ro|rw] (a path relative to the stack, or absolute; a bare name is "
    "a named volume) or {type: bind|volume, source: ..., target: /data, read_only: true}"
)


def _volume_form(raw: Any) -> tuple[str, str, str, bool]:
    """(type, source, target, read_only) from compose's short or long syntax."""
    if isinstance(raw, str):
        parts = raw.split(":")
        if len(parts) not in (2, 3) or not all(parts[:2]):
            raise ValueError(f"{raw!r} is not SOURCE:TARGET[:MODE]")
        mode = parts[2] if len(parts) == 3 else "ro"
        if mode not in ("ro", "rw"):
            raise ValueError(f"mode {mode!r}: use ro or rw")
        return ("bind" if parts[0][0] in "./~" else "volume"), parts[0], parts[1], mode == "ro"
    if not isinstance(raw, Mapping):
        raise ValueError("expected a string or a mapping")
    unknown = set(raw) - {"type", "source", "target", "read_only"}
    if unknown:
        raise ValueError(f"unknown key {sorted(unknown)[0]!r}: the keys are type, source, target, read_only")
    kind, source, target, read_only = raw.get("type", "bind"), raw.get("source"), raw.get("target"), raw.get(
        "read_only", True
    )
    if kind not in ("bind", "volume") or not isinstance(read_only, bool):
        raise ValueError("type is bind or volume, read_only true or false")
    if not isinstance(source, str) or not source or not isinstance(target, str) or not target:
        raise ValueError("source and target are both needed, as strings")
    return str(kind), source, target, read_only


def _volume(raw: Any, directory: Path) -> Mount:
    """One entry of ``volumes:`` as a mount; read-only unless ``rw`` (or ``read_only: false``) is written."""
    kind, source, target, read_only = _volume_form(raw)
    if "\x00" in source + target:
        raise ValueError("a path holds a NUL character")
    if not target.startswith("/"):
        raise ValueError(f"target {target!r} is relative: give an absolute path in the container, e.g. /data")
    clean = str(PurePosixPath(target))
    for reserved in RESERVED_TARGETS:
        if clean == reserved or clean.startswith(reserved + "/") or clean == "/":
            raise ValueError(f"target {target} collides with tisbench's own mount at {reserved}: pick another")
    if kind == "volume":
        if not VOLUME_NAME.fullmatch(source):
            raise ValueError(f"{source!r} is not a volume name (a path starts with ./, / or ~)")
        return Mount(source, clean, read_only, "volume")
    path = (directory / Path(source).expanduser()).resolve()
    if not path.exists():
        raise ValueError(f"source {source} does not exist ({path}): create it, or fix the path")
    return Mount(str(path), clean, read_only, "bind")


def _volumes(fields: sf.Fields, directory: Path) -> tuple[Mount, ...]:
    raw = fields.data.get("volumes")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise fields.fail("volumes", f"expected a list, got {type(raw).__name__}", _VOLUME_FORMS)
    mounts = []
    for index, entry in enumerate(raw):
        try:
            mounts.append(_volume(entry, directory))
        except ValueError as exc:
            raise fields.fail(f"volumes[{index}]", str(exc), _VOLUME_FORMS) from None
    targets = [m.target for m in mounts]
    for index, target in enumerate(targets):
        if target in targets[:index]:
            raise fields.fail(f"volumes[{index}]", f"target {target} is mounted twice", "give each its own target")
    return tuple(mounts)


@dataclass(frozen=True)
class ServiceOptions:
    """What stack.yaml may set on either service, the same way for ``server:`` and ``analyzer:``."""

    environment: tuple[tuple[str, str], ...] = ()
    volumes: tuple[Mount, ...] = ()  # host paths (bind) and named volumes, read-only unless rw

    KEYS = ("environment", "volumes")

    @classmethod
    def read(cls, fields: sf.Fields, directory: Path) -> ServiceOptions:
        return cls(
            environment=fields.get("environment", (), environment, 'a mapping such as {OMP_NUM_THREADS: "1"}'),
            volumes=_volumes(fields, directory),
        )

    def apply(self, service: Service) -> Service:
        """The service as the stack asks for it: the user's values after tisbench's own."""
        return replace(
            service,
            environment=(*service.environment, *self.environment),
            mounts=(*service.mounts, *self.volumes),
        )


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
    key: str  # compose's key; the engine's name is <project>_<key>, or the key itself when external
    fill: str | None = None  # a host path whose content tisbench copies in (remote engines)
    labels: tuple[tuple[str, str], ...] = ()
    external: bool = False  # the user's named volume: used as it is, never created or removed


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

    def ipc_mode(self, service: Service) -> str | None:
        """A service's IPC mode in the engine's words: compose's ``service:NAME`` is that service's
        container (``container:NAME``), which must have started first."""
        ipc = service.ipc
        if ipc and ipc.startswith("service:"):
            return f"container:{self.container_name(ipc.partition(':')[2])}"
        return ipc

    def volume_name(self, key: str) -> str:
        external = any(v.key == key and v.external for v in self.volumes)
        return key if external else f"{self.project}_{key}"

    @property
    def external_volumes(self) -> tuple[str, ...]:
        return tuple(v.key for v in self.volumes if v.external)

    @property
    def transport(self) -> str:
        """bind: the engine sees this machine's paths; copy: they travel into volumes."""
        return "copy" if any(v.fill for v in self.volumes) else "bind"

    def host_path(self, mount: Mount) -> str | None:
        """The path on this machine whose content the mount shows: a bind's source, or what a
        remote engine's volume was filled from."""
        if mount.type == "bind":
            return mount.source
        return next((v.fill for v in self.volumes if v.key == mount.source and v.fill), None)

    def copied(self) -> LabDesign:
        """The same lab for an engine that cannot see this machine's paths: every bind mount becomes
        a labelled volume, filled from that path before the containers start."""
        keys: dict[str, str] = {}
        taken = {v.key for v in self.volumes}
        for service in self.services:
            for mount in service.mounts:
                if mount.type == "bind" and Path(str(mount.source)).is_file():
                    raise ConfigError(
                        f"{STACK_SECTION[service.name]}.volumes: {mount.source} is a file; a remote engine gets "
                        "each source copied into a volume, which holds a folder",
                        f"mount the folder that holds it (e.g. at {PurePosixPath(mount.target).parent})",
                    )
                if mount.type == "bind" and mount.source not in keys:
                    base = PurePosixPath(str(mount.source)).name or "data"
                    key, n = base, 2
                    while key in taken or key in keys.values():
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
                        {
                            "type": m.type,
                            "source": m.source,
                            "target": m.target,
                            "read_only": m.read_only,
                            "host_path": self.host_path(m),
                        }
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
