"""Single-host labs: up (design → create → wait ready) and the LocalBackend a LabSession holds.
Cleans up after any failure; finding, listing and removing labs is composer.labs.registry's."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from composer.core import interrupts
from composer.core.design import LabDesign
from composer.core.errors import ConfigError
from composer.core.fsutil import write_atomic
from composer.core.host_data import tree_size
from composer.core.labels import OWNER_LABEL, RUN_LABEL
from composer.core.triton import ANALYZER, SERVER, SERVER_PORTS, STACK_SECTION
from composer.engine import containers as engine
from composer.engine import create
from composer.engine.host import docker_host
from composer.labs import registry
from composer.labs.session import LabSession

if TYPE_CHECKING:  # type names only
    import docker

    from composer.engine.readiness import Ready
    from composer.labs.plan import LabPlan

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
    design: LabDesign
    gpus: str = "none"

    @property
    def url(self) -> str:
        return f"{engine.probe_host(self.plan.stack.server.host)}:{self.ports[SERVER_PORTS['http']]}"

    @property
    def run_area(self) -> Path:
        return Path(self.design.config_file).parent


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

    warning = plan.exposure_warning()
    if warning:
        say(warning)
    client = engine.connect()
    image_ids = ensure_plan_images(client, plan, say)
    plan = with_own_server(client, plan, say)
    name = registry.free_name(client, name) if name else registry.unique_name(client, plan.stack.name)
    gpus = resolve_on(client, plan.gpus)
    design = plan.design(name, gpus, "bind" if engine.engine_is_local() else "copy")
    require_named_volumes(client, design)
    run = secrets.token_hex(6)
    extra = {RUN_LABEL: run, **({OWNER_LABEL: registry.owner_tag()} if owned else {})}
    run_area = Path(design.config_file).parent
    ours = False
    try:
        say(
            f"creating lab {name}: network {design.network_name}, "
            f"containers {', '.join(design.container_name(s.name) for s in design.services)}"
        )
        create.create_network(client, design, extra)  # the name is ours from here on
        ours = True
        if design.transport == "copy":
            filled = [v for v in design.volumes if v.fill]
            from rich.filesize import decimal

            sizes = ", ".join(f"{v.key}/ {decimal(tree_size(Path(str(v.fill))))}" for v in filled)
            copied = " and ".join(f"{v.key}/" for v in filled)
            say(f"copying {copied} into volumes on the engine at {docker_host()} ({sizes})")
            create.fill_volumes(client, design, plan.images.sdk, extra)
        ids, ports, ready = _start(client, plan, design, extra, timeout_s, say, while_booting)
        interrupts.checkpoint()  # an interrupt swallowed on the way (a finaliser, a library) removes the lab
    except BaseException:
        # Only what this process created: a lab that won a race for the name stays untouched.
        engine.with_signals_masked(lambda: registry.remove(client, name, run_area if ours else None, run))
        raise
    host = engine.probe_host(plan.stack.server.host)
    say(
        f"lab {name} ready in {ready.seconds:.2f} s (HTTP {host}:{ports[SERVER_PORTS['http']]}, "
        f"gRPC {ports[SERVER_PORTS['grpc']]}, metrics {ports[SERVER_PORTS['metrics']]})"
    )
    return RunningLab(client, name, plan, ids, ports, image_ids, ready, design, gpus.describe())


def require_named_volumes(client: docker.DockerClient, design: LabDesign) -> None:
    """A named volume the stack mounts must be on the engine already: refused before anything starts."""
    missing = create.missing_volumes(client, design.external_volumes)
    if missing:
        service = next(s for s in design.services for m in s.mounts if m.type == "volume" and m.source == missing[0])
        raise ConfigError(
            f"{STACK_SECTION[service.name]}.volumes: named volume {missing[0]!r} is not on the Docker engine "
            f"at {docker_host()}",
            f"create it (docker volume create {missing[0]}) and fill it, or mount a host path (./dir:/target)",
        )


def _write_compose_file(design: LabDesign) -> None:
    """The lab's docker-compose.yml beside it (`docker compose -p NAME` and `tisbench down` read
    where it is from the labels): drawn from the same design, never read back."""
    from composer.render.compose import render_lab

    write_atomic(Path(design.config_file), render_lab(design))


def _start(
    client: docker.DockerClient,
    plan: LabPlan,
    design: LabDesign,
    extra: dict[str, str],
    timeout_s: float | None,
    say: Say,
    while_booting: Callable[[], None] | None = None,
) -> tuple[dict[str, str], dict[int, int], Ready]:
    """The server first: its boot is the long pole. The idle analyzer starts while it boots, and
    so do the compose file's rendering and ``while_booting`` (work the caller needs later: nothing
    else then competes with creating the server for this process's CPU); leaving the executor
    waits for all of them, so a cleanup never races a container being made."""
    from composer.engine.readiness import TritonHttpProbe, wait_until_ready

    with ThreadPoolExecutor(max_workers=3) as pool:
        ids = {SERVER: create.start_service(client, design, SERVER, extra, say=say)}
        analyzer = pool.submit(create.start_service, client, design, ANALYZER, extra)
        written = pool.submit(_write_compose_file, design)
        ports = engine.host_ports(client, ids[SERVER])
        host = engine.probe_host(plan.stack.server.host)
        http = ports[SERVER_PORTS["http"]]
        # tritonclient imports numpy: on this thread, before while_booting may import matplotlib (numpy
        # too) on another. Two threads initialising numpy at once fail ("partially initialized module").
        probe = TritonHttpProbe(f"{host}:{http}")
        if while_booting is not None:
            pool.submit(while_booting)
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
        written.result()
    return ids, ports, ready


def ensure_plan_images(client: docker.DockerClient, plan: LabPlan, say: Say) -> dict[str, str]:
    """The plan's two images, pulled by its policy when they are registry images; before anything is created."""
    from composer.engine.pull import ensure_images
    from composer.labs.pull_view import PullView

    with PullView(say) as view:
        return ensure_images(client, plan.fetched_images, policy=plan.pull, image_set=plan.image_set, progress=view)


def with_own_server(client: docker.DockerClient, plan: LabPlan, say: Say) -> LabPlan:
    """The plan with the stack's own server image (server.requirements, server.build), made or
    reused now; the plan as it was when the stack asks for none."""
    from composer.images.derived import server_image

    own = plan.stack.server.own_image
    if not own.derived:
        return plan
    stack = plan.stack
    tag = stack.server.image if own.build is not None else None
    server = server_image(client, own, plan.server_base, str(plan.release), stack.directory, stack.name, say, tag)
    return replace(plan, images=replace(plan.images, server=server))


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
        registry.remove(lab.client, lab.name, lab.run_area, held=held)


def local_session(
    plan: LabPlan,
    say: Say,
    *,
    keep: bool = False,
    timeout_s: float | None = None,
    while_booting: Callable[[], None] | None = None,
) -> LabSession[RunningLab]:
    """A single-host lab held by the one lifecycle: what `lab`, `matrix` and `tune` each hold.
    A kept lab has no owner, so `status` never calls it orphaned once this process ends."""
    backend = LocalBackend(plan, say, timeout_s=timeout_s, owned=not keep, while_booting=while_booting)
    return LabSession(backend, say=say, keep=keep)
