"""The swarm lab's compose file (``deploy:`` sections): rendered, then read back into service specs. Pure.

As for single-host labs, the rendered file is the source of truth: tisbench reads it back and
creates through the docker SDK what ``docker stack deploy -c FILE NAME`` would create, with the
labels ``docker stack`` itself sets (``com.docker.stack.namespace``), so ``docker stack ps|rm NAME``
see a tisbench swarm lab as their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from composer import __version__
from composer.core.config import Stack
from composer.core.errors import StackError
from composer.core.gpus import NONE
from composer.core.labels import CLIENTS_LABEL, ENGINE_LABEL
from composer.core.release import Release
from composer.core.triton import ANALYZER, NETWORK
from composer.core.triton import SERVER as SERVER  # labs.swarm names the service through this module
from composer.render.compose import Images, lab_labels
from composer.render.environment import environment
from composer.render.mounts import Mount, compose_mount, unescape

TEMPLATE = "docker-stack.yml.j2"
CLIENTS = ANALYZER  # the analyzer service: N perf_analyzer replicas on a swarm
STACK_NAMESPACE = "com.docker.stack.namespace"
CSV_ENV = "TISBENCH_CSV"
CSV_MARKER = "==tisbench-csv=="
# Runs argv as given ("$@"), then prints the marker and the CSV; exits with perf_analyzer's status.
WRAPPER = f'"$@"; rc=$?; echo {CSV_MARKER}; cat "${CSV_ENV}"; exit $rc'
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


@dataclass(frozen=True)
class SwarmService:
    name: str  # <lab>_<service>, as docker stack names it
    service: str  # the short name, also its DNS alias on the network
    image: str
    command: list[str]
    env: dict[str, str]
    working_dir: str | None
    mounts: list[Mount]
    replicas: int
    endpoint_mode: str
    restart_condition: str
    labels: dict[str, str] = field(default_factory=dict)  # on the service
    container_labels: dict[str, str] = field(default_factory=dict)  # on each task's container


@dataclass(frozen=True)
class SwarmLabSpec:
    project: str
    network: str
    network_labels: dict[str, str]
    attachable: bool
    services: dict[str, SwarmService]


def size_in_bytes(size: str) -> int:
    """A Docker size (``1g``, ``512m``, ``65536``; already validated by config.parse_size) in bytes."""
    text = size.strip().lower()
    unit = text[-1] if text[-1] in _UNITS else ""
    return int(text[: len(text) - len(unit)]) * _UNITS[unit]


def swarm_labels(project: str, release: Release, stack: Stack, clients: int) -> list[tuple[str, str]]:
    return [*lab_labels(project, release, stack, NONE), (ENGINE_LABEL, "swarm"), (CLIENTS_LABEL, str(clients))]


def render_stack(
    stack: Stack,
    release: Release,
    images: Images,
    project: str,
    clients: int,
    client_argv: list[str],
    csv_path: str,
) -> str:
    """The swarm compose file: server (1 replica) and ``clients`` perf_analyzer replicas running
    ``client_argv`` (perf_analyzer's argv, its deadline wrapper included)."""
    context = {
        "tisbench_version": __version__,
        "project": project,
        "release": str(release),
        "clients": clients,
        "server_image": images.server,
        "sdk_image": images.sdk,
        "server_args": list(stack.server.args),
        "models_dir": str(stack.models_dir),
        "dataset_dir": str(stack.dataset_dir),
        "shm_bytes": size_in_bytes(stack.server.shm_size),
        "labels": swarm_labels(project, release, stack, clients),
        "wrapper": WRAPPER,
        "client_argv": client_argv,
        "csv_path": csv_path,
        "network": NETWORK,
    }
    return environment().get_template(TEMPLATE).render(context)


def _labels(raw: Any) -> dict[str, str]:
    return {unescape(str(k)): unescape(str(v)) for k, v in (raw or {}).items()}


def swarm_spec(text: str, project: str, config_file: Path) -> SwarmLabSpec:
    """Translate a rendered swarm compose file into service and network specs."""
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
                env={str(k): unescape(str(v)) for k, v in (svc.get("environment") or {}).items()},
                working_dir=svc.get("working_dir"),
                mounts=[compose_mount(v, project) for v in svc.get("volumes", [])],
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
