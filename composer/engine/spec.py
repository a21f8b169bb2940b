"""Rendered compose file → what the docker SDK needs to create the same containers. Pure.

The rendered file is the single source of truth: ``tisbench up`` reads it back and builds the
network and containers compose would build, with the labels compose itself sets, so
``docker compose -p NAME ps|logs|down`` see a tisbench lab as their own.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from composer.core.errors import StackError
from composer.core.gpus import NONE, GpuRequest, from_compose_devices
from composer.core.triton import NETWORK
from composer.render.mounts import Mount, compose_mount, unescape

COMPOSE_VERSION = "2.40.3"  # the compose release whose label conventions we follow


@dataclass(frozen=True)
class VolumeSpec:
    key: str  # the compose key, e.g. "models"
    name: str  # the engine's name, "<project>_<key>" as compose names it
    labels: dict[str, str]


@dataclass(frozen=True)
class PortBinding:
    target: int
    host_ip: str
    published: int | None  # None: an ephemeral host port


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


def _config_hash(service: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(service, sort_keys=True).encode()).hexdigest()


def lab_spec(compose_text: str, working_dir: Path, config_file: Path) -> LabSpec:
    """Translate a rendered compose file into container and network specs."""
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
        **{k: unescape(str(v)) for k, v in (doc.get("networks", {}).get(NETWORK) or {}).get("labels", {}).items()},
    }
    specs = []
    for name, svc in services.items():
        labels = {
            **base,
            **{k: unescape(str(v)) for k, v in (svc.get("labels") or {}).items()},
            "com.docker.compose.service": name,
            "com.docker.compose.oneoff": "False",
            "com.docker.compose.container-number": "1",
            "com.docker.compose.config-hash": _config_hash(svc),
            "com.docker.compose.image": str(svc["image"]),
            "com.docker.compose.depends_on": "",
        }
        specs.append(
            ServiceSpec(
                service=name,
                container_name=f"{project}-{name}-1",
                image=unescape(str(svc["image"])),
                command=_strings(svc.get("command")),
                entrypoint=_strings(svc.get("entrypoint")),
                working_dir=svc.get("working_dir"),
                mounts=[compose_mount(v, project) for v in svc.get("volumes", [])],
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
            )
        )
    volumes = [
        VolumeSpec(
            key,
            f"{project}_{key}",
            {
                **base,
                "com.docker.compose.volume": key,
                **{k: unescape(str(v)) for k, v in ((conf or {}).get("labels") or {}).items()},
            },
        )
        for key, conf in (doc.get("volumes") or {}).items()
    ]
    return LabSpec(project, f"{project}_{NETWORK}", net_labels, specs, volumes)
