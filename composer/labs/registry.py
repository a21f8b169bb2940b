"""Every tisbench lab on the engine, single-host or swarm, found by its labels: names, status and
removal, whichever backend made it. Nothing without tisbench's labels is ever touched."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from composer.core.errors import StackError, UsageError
from composer.core.labels import RELEASE_LABEL, STACK_LABEL
from composer.core.names import RUN_AREA, generated_name
from composer.core.triton import ANALYZER, SERVER, SERVER_PORTS
from composer.engine import containers as engine
from composer.engine.lab_status import LabStatus

if TYPE_CHECKING:  # type names only
    import docker


def owner_tag() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def unique_name(client: docker.DockerClient, base: str) -> str:
    """``<base>-<4 hex>``, unused by any lab on this engine, single-host or swarm."""
    from composer.engine import swarm

    taken = {c.lab for c in engine.lab_containers(client)} | {n.lab for n in engine.lab_networks(client)}
    taken |= set(swarm.swarm_lab_names(client))
    return generated_name(base, taken.__contains__)


def free_name(client: docker.DockerClient, name: str) -> str:
    """The name asked for, when no lab on this engine has it."""
    if engine.lab_containers(client, name) or engine.lab_networks(client, name):
        raise StackError(
            f"a lab named {name} already exists", f"remove it with tisbench down {name}, or choose another --name"
        )
    return name


def remove(
    client: docker.DockerClient,
    name: str,
    run_area: Path | None,
    run: str | None = None,
    found: list[engine.LabContainer] | None = None,
    found_networks: list[engine.LabNetwork] | None = None,
    held: dict[str, threading.Event] | None = None,
) -> int:
    """A single-host lab's objects (of ``run`` only, when given) and its run area."""
    removed = engine.remove_lab(client, name, run, found, found_networks, held)
    if run_area is not None:
        shutil.rmtree(run_area, ignore_errors=True)
    return removed


def _run_area_of(containers: list[engine.LabContainer]) -> Path | None:
    config = next((c.compose_config for c in containers if c.compose_config), None)
    return Path(config).parent if config else None


def down(name: str) -> int:
    """Remove what is left of a lab (containers removed by hand are fine); how many objects went,
    0 for a lab that is already gone (like `docker compose down`, that is not an error).
    Single-host labs are looked for first: the common case asks the engine nothing about swarms
    (and imports nothing of them: composer.engine.swarm is imported where it is used)."""
    client = engine.connect()
    containers = engine.lab_containers(client, name)
    networks = None if containers else engine.lab_networks(client, name)  # a lab whose containers went by hand
    if containers or networks:
        return _down(client, name, containers, networks)
    from composer.engine import swarm

    if name in swarm.swarm_lab_names(client):
        return _down_swarm(client, name)
    return 0


def _down_swarm(client: docker.DockerClient, name: str) -> int:
    from composer.engine import swarm

    stacks = {s["Spec"]["Labels"].get(STACK_LABEL) for s in swarm.lab_services(client, name)}
    removed = int(engine.with_signals_masked(lambda: swarm.remove_swarm_lab(client, name)))
    for stack in filter(None, stacks):
        shutil.rmtree(Path(str(stack)) / RUN_AREA / name, ignore_errors=True)
    return removed


def _down(
    client: docker.DockerClient,
    name: str,
    containers: list[engine.LabContainer] | None = None,
    networks: list[engine.LabNetwork] | None = None,
) -> int:
    containers = engine.lab_containers(client, name) if containers is None else containers
    run_area = _run_area_of(containers)
    if run_area is not None and run_area.parent.name != RUN_AREA:
        run_area = None  # only ever delete our own run area
    return int(
        engine.with_signals_masked(lambda: remove(client, name, run_area, found=containers, found_networks=networks))
    )


def down_all() -> list[str]:
    """Remove every tisbench lab on the engine, found by label; nothing else is touched."""
    from composer.engine import swarm

    client = engine.connect()
    local = {c.lab for c in engine.lab_containers(client)} | {n.lab for n in engine.lab_networks(client)}
    swarm_names = set(swarm.swarm_lab_names(client))
    for name in sorted(local):
        _down(client, name)
    for name in sorted(swarm_names):
        _down_swarm(client, name)
    return sorted(local | swarm_names)


def owner_gone(owner: str | None) -> bool:
    if not owner:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return not Path(f"/proc/{pid}").exists()


def status() -> list[LabStatus]:
    from composer.engine import swarm

    client = engine.connect()
    labs: dict[str, LabStatus] = {}
    kinds = {port: kind for kind, port in SERVER_PORTS.items()}
    for c in engine.lab_containers(client):
        lab = labs.setdefault(c.lab, LabStatus.from_labels(c.labels))
        lab.services[c.service] = c.state
        lab.age_s = max(lab.age_s, time.time() - c.created)
        lab.orphaned = lab.orphaned or owner_gone(c.owner)
        if c.service == SERVER:
            lab.ports |= {kinds.get(p.private, str(p.private)): p.public for p in c.ports if p.public}
    for n in engine.lab_networks(client):
        labs.setdefault(n.lab, LabStatus(n.lab, n.label(RELEASE_LABEL, "?"), "?", "?"))
    for lab in labs.values():
        missing = {SERVER, ANALYZER} - set(lab.services)
        if missing:
            lab.problem = f"missing {', '.join(sorted(missing))}"
    return sorted([*labs.values(), *swarm.swarm_statuses(client)], key=lambda lab: lab.name)


def find_lab(client: docker.DockerClient, name: str) -> list[engine.LabContainer]:
    from composer.engine import swarm

    containers = engine.lab_containers(client, name)
    if not containers:
        known = sorted({c.lab for c in engine.lab_containers(client)})
        known += swarm.swarm_lab_names(client)
        hint = f"running labs: {', '.join(known)}" if known else "start one with tisbench up"
        raise UsageError(f"no lab named {name!r} on this engine", hint)
    return containers
