"""The oracle: a rendered lab file read back as compose and `docker stack deploy` would read it,
and turned into the docker SDK requests they would make. tisbench itself never reads what it
rendered (it creates straight from the design); tests hold its SDK calls against these.

This is the parse-back the package used before the one lab design: kept here, as the independent
reading of the file, so the file and what tisbench creates cannot drift apart."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import yaml
from docker.types import ContainerSpec, EndpointSpec, NetworkAttachmentConfig, RestartPolicy, ServiceMode, TaskTemplate

from composer.core.errors import StackError
from composer.core.gpus import NONE, GpuRequest, from_compose_devices
from composer.core.triton import NETWORK
from composer.engine.gpus import device_requests

COMPOSE_VERSION = "2.40.3"  # the compose release whose label conventions we follow
STACK_NAMESPACE = "com.docker.stack.namespace"


def unescape(value: str) -> str:
    """Undo the ``$`` doubling, as compose's interpolation does."""
    return value.replace("$$", "$")


@dataclass(frozen=True)
class Mount:
    source: str | None  # a host path (bind), a volume's engine name (volume); None for tmpfs
    target: str
    read_only: bool = False
    type: str = "bind"
    size_bytes: int | None = None


def compose_mount(raw: dict[str, Any], project: str, external: frozenset[str] = frozenset()) -> Mount:
    """One entry of a service's ``volumes:``; a volume's name is ``<project>_<key>``, as compose names
    it, unless the file declares it external."""
    kind = str(raw.get("type", "bind"))
    target = str(raw["target"])
    if kind == "tmpfs":
        return Mount(None, target, type="tmpfs", size_bytes=int((raw.get("tmpfs") or {})["size"]))
    source = unescape(str(raw["source"]))
    if kind == "volume" and source not in external:
        source = f"{project}_{source}"
    return Mount(source, target, bool(raw.get("read_only", False)), kind)


@dataclass(frozen=True)
class VolumeSpec:
    key: str
    name: str
    labels: dict[str, str]


@dataclass(frozen=True)
class PortBinding:
    target: int
    host_ip: str
    published: int | None


@dataclass(frozen=True)
class ServiceSpec:
    service: str
    container_name: str
    image: str
    command: list[str] | None
    entrypoint: list[str] | None
    working_dir: str | None
    mounts: list[Mount]
    ports: list[PortBinding]
    shm_size: str | None
    ulimits: dict[str, int]
    stop_signal: str | None
    labels: dict[str, str] = field(default_factory=dict)
    gpus: GpuRequest = NONE
    environment: dict[str, str] = field(default_factory=dict)
    ipc: str | None = None


@dataclass(frozen=True)
class LabSpec:
    project: str
    network: str
    network_labels: dict[str, str]
    services: list[ServiceSpec]
    volumes: list[VolumeSpec] = field(default_factory=list)


def compose_labels(project: str, working_dir: Path, config_file: Path) -> dict[str, str]:
    return {
        "com.docker.compose.project": project,
        "com.docker.compose.project.working_dir": str(working_dir),
        "com.docker.compose.project.config_files": str(config_file),
        "com.docker.compose.version": COMPOSE_VERSION,
    }


def _strings(value: Any) -> list[str] | None:
    if value is None:
        return None
    return [unescape(str(v)) for v in value]


def _labels(raw: Any) -> dict[str, str]:
    return {unescape(str(k)): unescape(str(v)) for k, v in (raw or {}).items()}


def _config_hash(service: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(service, sort_keys=True).encode()).hexdigest()


def _external(doc: dict[str, Any]) -> frozenset[str]:
    return frozenset(k for k, conf in (doc.get("volumes") or {}).items() if (conf or {}).get("external"))


def _service_spec(
    name: str, svc: dict[str, Any], project: str, base: dict[str, str], external: frozenset[str] = frozenset()
) -> ServiceSpec:
    """One service of the rendered file, with the labels compose itself would set on its container."""
    labels = {
        **base,
        **_labels(svc.get("labels")),
        "com.docker.compose.service": name,
        "com.docker.compose.oneoff": "False",
        "com.docker.compose.container-number": "1",
        "com.docker.compose.config-hash": _config_hash(svc),
        "com.docker.compose.image": unescape(str(svc["image"])),
        "com.docker.compose.depends_on": "",
    }
    return ServiceSpec(
        service=name,
        container_name=f"{project}-{name}-1",
        image=unescape(str(svc["image"])),
        command=_strings(svc.get("command")),
        entrypoint=_strings(svc.get("entrypoint")),
        working_dir=svc.get("working_dir"),
        mounts=[compose_mount(v, project, external) for v in svc.get("volumes", [])],
        ports=[
            PortBinding(
                int(p["target"]),
                str(p.get("host_ip", "127.0.0.1")),
                int(p["published"]) if p.get("published") else None,
            )
            for p in svc.get("ports", [])
        ],
        shm_size=svc.get("shm_size"),
        ulimits={k: int(v) for k, v in (svc.get("ulimits") or {}).items()},
        stop_signal=svc.get("stop_signal"),
        labels=labels,
        gpus=from_compose_devices(
            (((svc.get("deploy") or {}).get("resources") or {}).get("reservations") or {}).get("devices"),
            where=name,
        ),
        environment=_labels(svc.get("environment")),
        ipc=svc.get("ipc"),
    )


def lab_spec(compose_text: str, working_dir: Path, config_file: Path) -> LabSpec:
    """A rendered compose file as container, network and volume specs."""
    try:
        doc = yaml.safe_load(compose_text)
        project = str(doc["name"])
        services = doc["services"]
    except (yaml.YAMLError, KeyError, TypeError) as exc:
        raise StackError(
            f"{config_file}: not a tisbench compose file ({exc})", "re-render it with tisbench render"
        ) from None
    base = compose_labels(project, working_dir, config_file)
    net_labels = {
        **base,
        "com.docker.compose.network": NETWORK,
        **_labels((doc.get("networks", {}).get(NETWORK) or {}).get("labels")),
    }
    external = _external(doc)
    specs = [_service_spec(name, svc, project, base, external) for name, svc in services.items()]
    volumes = [
        VolumeSpec(
            key,
            f"{project}_{key}",
            {**base, "com.docker.compose.volume": key, **_labels((conf or {}).get("labels"))},
        )
        for key, conf in (doc.get("volumes") or {}).items()
        if key not in external
    ]
    return LabSpec(project, f"{project}_{NETWORK}", net_labels, specs, volumes)


def container_request(api: docker.APIClient, spec: LabSpec, service: ServiceSpec) -> dict[str, Any]:
    """The create_container arguments compose's reading of the file asks for (labels less the
    config hash, which compose computes from its own model)."""
    host_config = api.create_host_config(
        mounts=[_docker_mount(m) for m in service.mounts],
        port_bindings={
            f"{p.target}/tcp": (p.host_ip, p.published) if p.published else (p.host_ip,) for p in service.ports
        },
        shm_size=service.shm_size,
        ulimits=[docker.types.Ulimit(name=k, soft=v, hard=v) for k, v in service.ulimits.items()],
        network_mode=spec.network,
        ipc_mode=_ipc_mode(spec.project, service.ipc),
        device_requests=device_requests(service.gpus) or None,
    )
    return {
        "image": service.image,
        "command": service.command,
        "entrypoint": service.entrypoint,
        "working_dir": service.working_dir,
        "environment": service.environment or None,
        "name": service.container_name,
        "labels": service.labels,
        "ports": [p.target for p in service.ports],
        "stop_signal": service.stop_signal,
        "host_config": host_config,
        "networking_config": api.create_networking_config(
            {spec.network: api.create_endpoint_config(aliases=[service.service, service.container_name])}
        ),
    }


def _docker_mount(m: Mount) -> docker.types.Mount:
    if m.type == "tmpfs":
        return docker.types.Mount(m.target, None, type="tmpfs", tmpfs_size=m.size_bytes)
    return docker.types.Mount(m.target, m.source, type=m.type, read_only=m.read_only)


# ------------------------------------------------------------------ swarm: `docker stack deploy`'s reading


@dataclass(frozen=True)
class SwarmService:
    name: str
    service: str
    image: str
    command: list[str]
    env: dict[str, str]
    working_dir: str | None
    mounts: list[Mount]
    replicas: int
    endpoint_mode: str
    restart_condition: str
    labels: dict[str, str] = field(default_factory=dict)
    container_labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SwarmLabSpec:
    project: str
    network: str
    network_labels: dict[str, str]
    attachable: bool
    services: dict[str, SwarmService]


def swarm_spec(text: str, project: str, config_file: Path) -> SwarmLabSpec:
    """A rendered swarm stack file as service and network specs, with `docker stack`'s own labels."""
    try:
        doc = yaml.safe_load(text)
        services: dict[str, SwarmService] = {}
        namespace = {STACK_NAMESPACE: project}
        for name, svc in doc["services"].items():
            deploy = svc["deploy"]
            image = unescape(str(svc["image"]))
            services[name] = SwarmService(
                name=f"{project}_{name}",
                service=name,
                image=image,
                command=[unescape(str(a)) for a in svc["command"]],
                env=_labels(svc.get("environment")),
                working_dir=svc.get("working_dir"),
                mounts=[compose_mount(v, project, _external(doc)) for v in svc.get("volumes", [])],
                replicas=int(deploy["replicas"]),
                endpoint_mode=str(deploy["endpoint_mode"]),
                restart_condition=str(deploy["restart_policy"]["condition"]),
                labels={**_labels(deploy.get("labels")), **namespace, "com.docker.stack.image": image},
                container_labels={**_labels(svc.get("labels")), **namespace},
            )
        network = doc["networks"][NETWORK]
    except (yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StackError(
            f"{config_file}: not a tisbench swarm compose file ({exc!r})", "re-render it with tisbench"
        ) from None
    return SwarmLabSpec(
        project=project,
        network=f"{project}_{NETWORK}",
        network_labels={**_labels(network.get("labels")), **namespace},
        attachable=bool(network.get("attachable")),
        services=services,
    )


def service_request(spec: SwarmLabSpec, svc: SwarmService) -> dict[str, Any]:
    """The create_service arguments `docker stack deploy`'s reading of the file asks for."""
    container = ContainerSpec(
        svc.image,
        command=svc.command,
        env=svc.env or None,
        workdir=svc.working_dir,
        labels=svc.container_labels,
        mounts=[_docker_mount(m) for m in svc.mounts],
    )
    template = TaskTemplate(
        container,
        restart_policy=RestartPolicy(svc.restart_condition),
        networks=[NetworkAttachmentConfig(spec.network, aliases=[svc.service])],
    )
    return {
        "task_template": template,
        "name": svc.name,
        "labels": svc.labels,
        "mode": ServiceMode("replicated", replicas=svc.replicas),
        "endpoint_spec": EndpointSpec(mode=svc.endpoint_mode),
    }


def _ipc_mode(project: str, ipc: str | None) -> str | None:
    """compose's ``service:NAME`` becomes that service's container, as compose itself resolves it."""
    if ipc and ipc.startswith("service:"):
        return f"container:{project}-{ipc.partition(':')[2]}-1"
    return ipc
