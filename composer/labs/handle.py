"""A running lab as a benchmark sees it: its containers, stack, release and ports, whether this
process brought it up (``handle_of``) or found it on the engine by its labels (``open_lab``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from composer.core.config import Stack, load_stack
from composer.core.design import LabDesign
from composer.core.errors import ConfigError, UsageError
from composer.core.labels import GPUS_LABEL, MODEL_LABEL, RELEASE_LABEL, STACK_LABEL
from composer.core.triton import ANALYZER, SERVER, SERVER_PORTS
from composer.engine import containers as engine
from composer.labs.local import RunningLab
from composer.labs.registry import find_lab

if TYPE_CHECKING:  # type names only
    import docker


@dataclass(frozen=True)
class LabHandle:
    """A running lab as found on the engine (by labels), whatever process started it."""

    client: docker.DockerClient
    name: str
    stack: Stack
    release: str
    server_id: str
    analyzer_id: str
    http_port: int
    metrics_port: int | None = None
    gpus: str = "none"
    design: LabDesign | None = None  # known when this process brought the lab up



def handle_of(running: RunningLab) -> LabHandle:
    """The handle of a lab this process just brought up."""
    return LabHandle(
        running.client,
        running.name,
        running.plan.stack,
        str(running.plan.release),
        running.ids[SERVER],
        running.ids[ANALYZER],
        running.ports[SERVER_PORTS["http"]],
        running.ports.get(SERVER_PORTS["metrics"]),
        running.gpus,
        running.design,
    )


def open_lab(client: docker.DockerClient, name: str, model: str | None = None) -> LabHandle:
    containers = find_lab(client, name)
    server = engine.find_service(containers, SERVER)
    analyzer = engine.find_service(containers, ANALYZER)
    if server is None or analyzer is None or not server.running or not analyzer.running:
        raise UsageError(
            f"lab {name} is not running (a container is missing or stopped)", f"tisbench down {name}, then up again"
        )
    labels = server.labels
    stack_dir = Path(labels.get(STACK_LABEL, ""))
    try:
        stack = load_stack(stack_dir, model=model or labels.get(MODEL_LABEL))
    except ConfigError as exc:
        raise ConfigError(
            f"lab {name}: its stack {stack_dir} no longer loads ({exc.message})", exc.hint or ""
        ) from None
    ports = engine.host_ports(client, server.id)
    return LabHandle(
        client,
        name,
        stack,
        labels.get(RELEASE_LABEL, "?"),
        server.id,
        analyzer.id,
        ports[SERVER_PORTS["http"]],
        ports.get(SERVER_PORTS["metrics"]),
        labels.get(GPUS_LABEL, "none"),
    )
