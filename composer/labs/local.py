"""Lab lifecycle: up (render → create → wait ready), status, down. Cleans up after any failure."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from composer.core import interrupts
from composer.core.errors import StackError, UsageError
from composer.core.fsutil import write_atomic
from composer.core.names import GENERATED_BASE_MAX, SUFFIX_HEX_BYTES
from composer.core.triton import ANALYZER, SERVER, SERVER_PORTS
from composer.engine import containers as engine
from composer.engine import swarm
from composer.engine.host import docker_host
from composer.engine.lab_status import LabStatus

if TYPE_CHECKING:  # type names only: status and down should not import the render pipeline
    import docker

    from composer.engine.readiness import Ready
    from composer.engine.spec import LabSpec
    from composer.labs.plan import LabPlan

RUN_AREA = ".tisbench"
Say = Callable[[str], None]


@dataclass
class RunningLab:
    client: docker.DockerClient
    name: str
    plan: LabPlan
    ids: dict[str, str]
    ports: dict[int, int]
    image_ids: dict[str, str]
    ready: Ready
    compose_file: Path
    gpus: str = "none"

    @property
    def url(self) -> str:
        return f"{engine.probe_host(self.plan.stack.server.host)}:{self.ports[SERVER_PORTS['http']]}"


def owner_tag() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def unique_name(client: docker.DockerClient, base: str) -> str:
    """``<base>-<4 hex>``, unused by any lab on this engine, single-host or swarm."""
    taken = {c.lab for c in engine.lab_containers(client)} | {n.lab for n in engine.lab_networks(client)}
    taken |= set(swarm.swarm_lab_names(client))
    while True:
        name = f"{base[:GENERATED_BASE_MAX]}-{secrets.token_hex(SUFFIX_HEX_BYTES)}"
        if name not in taken:
            return name


def _free_name(client: docker.DockerClient, name: str) -> str:
    """The name asked for, when no lab on this engine has it."""
    if engine.lab_containers(client, name) or engine.lab_networks(client, name):
        raise StackError(
            f"a lab named {name} already exists", f"remove it with tisbench down {name}, or choose another --name"
        )
    return name


def up(
    plan: LabPlan,
    *,
    name: str | None,
    timeout_s: float | None,
    say: Say,
    owned: bool = False,
    while_booting: Callable[[], None] | None = None,
) -> RunningLab:
    """Bring a lab up and wait until the server and the model are ready; on any failure or
    interruption remove everything that was created, then re-raise."""
    from composer.engine.gpus import resolve_on
    from composer.engine.spec import lab_spec

    warning = plan.exposure_warning()
    if warning:
        say(warning)
    client = engine.connect()
    image_ids = ensure_plan_images(client, plan, say)
    name = _free_name(client, name) if name else unique_name(client, plan.stack.name)
    gpus = resolve_on(client, plan.gpus)
    run_area = plan.stack.directory / RUN_AREA / name
    compose_file = run_area / "docker-compose.yml"
    transport = "bind" if engine.engine_is_local() else "copy"
    text = plan.render(name, gpus, transport)
    spec = lab_spec(text, plan.stack.directory, compose_file)
    run = secrets.token_hex(6)
    extra = {engine.RUN_LABEL: run, **({engine.OWNER_LABEL: owner_tag()} if owned else {})}
    wrote_run_area = False
    try:
        say(
            f"creating lab {name}: network {spec.network}, "
            f"containers {', '.join(s.container_name for s in spec.services)}"
        )
        engine.create_network(client, spec, extra)  # the name is ours from here on
        write_atomic(compose_file, text)
        wrote_run_area = True
        if spec.volumes:
            say(f"copying models/ and dataset/ into volumes on the engine at {docker_host()}")
            engine.fill_volumes(
                client,
                spec,
                {"models": plan.stack.models_dir, "dataset": plan.stack.dataset_dir},
                plan.images.sdk,
                extra,
            )
        ids, ports, ready = _start(client, plan, spec, extra, timeout_s, say, while_booting)
        interrupts.checkpoint()  # an interrupt swallowed on the way (a finaliser, a library) removes the lab
    except BaseException:
        # Only what this process created: a lab that won a race for the name stays untouched.
        engine.with_signals_masked(lambda: _remove(client, name, run_area if wrote_run_area else None, run))
        raise
    host = engine.probe_host(plan.stack.server.host)
    say(
        f"lab {name} ready in {ready.seconds:.2f} s (HTTP {host}:{ports[SERVER_PORTS['http']]}, "
        f"gRPC {ports[SERVER_PORTS['grpc']]}, metrics {ports[SERVER_PORTS['metrics']]})"
    )
    return RunningLab(client, name, plan, ids, ports, image_ids, ready, compose_file, gpus.describe())


def _start(
    client: docker.DockerClient,
    plan: LabPlan,
    spec: LabSpec,
    extra: dict[str, str],
    timeout_s: float | None,
    say: Say,
    while_booting: Callable[[], None] | None = None,
) -> tuple[dict[str, str], dict[int, int], Ready]:
    """The server first: its boot is the long pole. The idle analyzer starts while it boots, and
    so does ``while_booting`` (work the caller needs later: nothing else then competes with
    creating the server for this process's CPU); leaving the executor waits for both, so a cleanup
    never races a container being made."""
    from composer.engine.readiness import TritonHttpProbe, wait_until_ready

    with ThreadPoolExecutor(max_workers=2) as pool:
        ids = {SERVER: engine.start_service(client, spec, SERVER, extra, say=say)}
        analyzer = pool.submit(engine.start_service, client, spec, ANALYZER, extra)
        if while_booting is not None:
            pool.submit(while_booting)
        ports = engine.host_ports(client, ids[SERVER])
        host = engine.probe_host(plan.stack.server.host)
        http = ports[SERVER_PORTS["http"]]
        probe = TritonHttpProbe(f"{host}:{http}")
        try:
            ready = wait_until_ready(
                probe,
                state=lambda: engine.container_state(client, ids[SERVER]),
                logs=lambda: engine.container_logs(client, ids[SERVER]),
                model=plan.stack.model,
                timeout_s=timeout_s or plan.stack.server.ready_timeout_s,
                on_wait=lambda what: say(f"waiting for {what} on {host}:{http}"),
            )
        finally:
            probe.close()
        ids[ANALYZER] = analyzer.result()
    return ids, ports, ready


def ensure_plan_images(client: docker.DockerClient, plan: LabPlan, say: Say) -> dict[str, str]:
    """The plan's two images, pulled by its policy when they are registry images; before anything is created."""
    from composer.engine.pull import ensure_images
    from composer.labs.pull_view import PullView

    with PullView(say) as view:
        return ensure_images(
            client, [plan.images.server, plan.images.sdk], policy=plan.pull, image_set=plan.image_set, progress=view
        )


def _remove(
    client: docker.DockerClient,
    name: str,
    run_area: Path | None,
    run: str | None = None,
    found: list[engine.LabContainer] | None = None,
    found_networks: list[engine.LabNetwork] | None = None,
    held: dict[str, threading.Event] | None = None,
) -> int:
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
    Single-host labs are looked for first: the common case asks the engine nothing about swarms."""
    client = engine.connect()
    containers = engine.lab_containers(client, name)
    networks = None if containers else engine.lab_networks(client, name)  # a lab whose containers went by hand
    if containers or networks:
        return _down(client, name, containers, networks)
    if name in swarm.swarm_lab_names(client):
        return _down_swarm(client, name)
    return 0


def _down_swarm(client: docker.DockerClient, name: str) -> int:
    stacks = {s["Spec"]["Labels"].get("tisbench.stack") for s in swarm.lab_services(client, name)}
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
        engine.with_signals_masked(
            lambda: _remove(client, name, run_area, found=containers, found_networks=networks)
        )
    )


def down_all() -> list[str]:
    """Remove every tisbench lab on the engine, found by label; nothing else is touched."""
    client = engine.connect()
    local = {c.lab for c in engine.lab_containers(client)} | {n.lab for n in engine.lab_networks(client)}
    swarm_names = set(swarm.swarm_lab_names(client))
    for name in sorted(local):
        _down(client, name)
    for name in sorted(swarm_names):
        _down_swarm(client, name)
    return sorted(local | swarm_names)


@dataclass
class LocalBackend:
    """Single-host labs for a LabSession: compose-labelled containers on a private network."""

    plan: LabPlan
    say: Say
    name: str | None = None
    timeout_s: float | None = None
    owned: bool = True
    while_booting: Callable[[], None] | None = None
    kind: str = "lab"

    def up(self) -> RunningLab:
        return up(
            self.plan,
            name=self.name,
            timeout_s=self.timeout_s,
            say=self.say,
            owned=self.owned,
            while_booting=self.while_booting,
        )

    def name_of(self, lab: RunningLab) -> str:
        return lab.name

    def collect(self, lab: RunningLab) -> None:
        """Nothing beyond the bench: a run writes its logs and manifest as it ends."""

    def down(self, lab: RunningLab, reading: threading.Event | None = None) -> None:
        held = {lab.ids[ANALYZER]: reading} if reading is not None and ANALYZER in lab.ids else None
        _remove(lab.client, lab.name, lab.compose_file.parent, held=held)


def _owner_gone(owner: str | None) -> bool:
    if not owner:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return not Path(f"/proc/{pid}").exists()


def status() -> list[LabStatus]:
    client = engine.connect()
    labs: dict[str, LabStatus] = {}
    kinds = {port: kind for kind, port in SERVER_PORTS.items()}
    for c in engine.lab_containers(client):
        lab = labs.setdefault(c.lab, LabStatus.from_labels(c.labels))
        lab.services[c.service] = c.state
        lab.age_s = max(lab.age_s, time.time() - c.created)
        lab.orphaned = lab.orphaned or _owner_gone(c.owner)
        if c.service == SERVER:
            lab.ports |= {kinds.get(p.private, str(p.private)): p.public for p in c.ports if p.public}
    for n in engine.lab_networks(client):
        labs.setdefault(n.lab, LabStatus(n.lab, n.label("tisbench.release", "?"), "?", "?"))
    for lab in labs.values():
        missing = {SERVER, ANALYZER} - set(lab.services)
        if missing:
            lab.problem = f"missing {', '.join(sorted(missing))}"
    return sorted([*labs.values(), *swarm.swarm_statuses(client)], key=lambda lab: lab.name)


def find_lab(client: docker.DockerClient, name: str) -> list[engine.LabContainer]:
    containers = engine.lab_containers(client, name)
    if not containers:
        known = sorted({c.lab for c in engine.lab_containers(client)})
        known += swarm.swarm_lab_names(client)
        hint = f"running labs: {', '.join(known)}" if known else "start one with tisbench up"
        raise UsageError(f"no lab named {name!r} on this engine", hint)
    return containers
