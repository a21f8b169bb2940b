"""Docker at the edge: create, find, inspect and remove labs through the docker SDK.

Everything a lab creates carries ``tisbench.lab=<name>``, so removal finds it by label even
after a crash, and nothing without that label is ever touched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import signal
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import docker
import docker.errors

from composer.core import interrupts
from composer.core.errors import StackError
from composer.core.labels import ADVISORY_ULIMITS_LABEL, ULIMITS_DROPPED_LABEL
from composer.core.labels import ENGINE_LABEL as ENGINE_LABEL  # callers name them as engine attributes
from composer.core.labels import LAB_LABEL as LAB_LABEL
from composer.core.labels import OWNER_LABEL as OWNER_LABEL
from composer.core.labels import RUN_LABEL as RUN_LABEL
from composer.engine import refusals
from composer.engine.client import connect as connect  # callers name them as engine attributes
from composer.engine.client import engine_address as engine_address
from composer.engine.client import engine_is_local as engine_is_local
from composer.engine.client import probe_host as probe_host
from composer.engine.gpus import device_requests
from composer.engine.host import engine_failures, unreachable
from composer.engine.objects import LabContainer, LabNetwork, LabVolume, find_service

if TYPE_CHECKING:  # type names only: `tisbench down` should not import jinja2 and yaml
    from composer.engine.spec import LabSpec, ServiceSpec
    from composer.render.mounts import Mount

__all__ = ["LabContainer", "LabNetwork", "LabVolume", "find_service"]

def docker_mount(m: Mount) -> docker.types.Mount:
    """A rendered file's mount in the SDK's words, for a container or a swarm service."""
    if m.type == "tmpfs":
        return docker.types.Mount(m.target, None, type="tmpfs", tmpfs_size=m.size_bytes)
    return docker.types.Mount(m.target, m.source, type=m.type, read_only=m.read_only)


def _host_config(api: Any, spec: ServiceSpec, network: str) -> Any:
    return api.create_host_config(
        mounts=[docker_mount(m) for m in spec.mounts],
        port_bindings={
            f"{p.target}/tcp": (p.host_ip, p.published) if p.published else (p.host_ip,) for p in spec.ports
        },
        shm_size=spec.shm_size,
        ulimits=[docker.types.Ulimit(name=k, soft=v, hard=v) for k, v in spec.ulimits.items()],
        network_mode=network,
        device_requests=device_requests(spec.gpus) or None,
    )


def _create(api: Any, spec: ServiceSpec, network: str, extra_labels: dict[str, str]) -> str:
    with interrupts.deferred():  # a Ctrl-C waits for the answer, so cleanup knows the container
        try:
            return _create_and_start(api, spec, network, extra_labels)
        except docker.errors.APIError:
            raise
        except engine_failures() as exc:  # the engine went away mid-call (a refused ssh channel, a reset)
            raise unreachable(exc) from None


def _create_and_start(api: Any, spec: ServiceSpec, network: str, extra_labels: dict[str, str]) -> str:
    """Create and start one container; one that was created but would not start is removed again."""
    created = api.create_container(
        image=spec.image,
        command=spec.command,
        entrypoint=spec.entrypoint,
        working_dir=spec.working_dir,
        name=spec.container_name,
        labels={**spec.labels, **extra_labels},
        ports=[p.target for p in spec.ports],
        stop_signal=spec.stop_signal,
        host_config=_host_config(api, spec, network),
        networking_config=api.create_networking_config(
            {network: api.create_endpoint_config(aliases=[spec.service, spec.container_name])}
        ),
    )
    try:
        api.start(created["Id"])
    except BaseException:
        with contextlib.suppress(docker.errors.APIError):
            api.remove_container(created["Id"], force=True)
        raise
    return str(created["Id"])


def _port_in_use(message: str) -> str | None:
    match = re.search(r"(?:0\.0\.0\.0|127\.0\.0\.1|[\d.]+):(\d+)", message)
    if "already allocated" in message or "address already in use" in message:
        return match.group(1) if match else "?"
    return None


def _tar_of(directory: Path) -> IO[bytes]:
    """A tar of a directory's content (links followed, so the data itself travels), in a temp file."""
    handle = tempfile.TemporaryFile()
    with tarfile.open(fileobj=handle, mode="w", dereference=True) as archive:
        for child in sorted(directory.iterdir()):
            archive.add(str(child), arcname=child.name)
    handle.seek(0)
    return handle


def fill_volumes(
    client: docker.DockerClient, spec: LabSpec, sources: dict[str, Path], image: str, extra_labels: dict[str, str]
) -> None:
    """Create the lab's volumes and copy data into them through a container that is never started."""
    with interrupts.deferred():  # a Ctrl-C waits until the loader container is gone again
        _fill_volumes(client.api, spec, sources, image, extra_labels)


def _fill_volumes(api: Any, spec: LabSpec, sources: dict[str, Path], image: str, extra_labels: dict[str, str]) -> None:
    for volume in spec.volumes:
        api.create_volume(volume.name, labels={**volume.labels, **extra_labels})
    loader = api.create_container(
        image=image,
        command=["true"],
        name=f"{spec.project}-loader",
        labels={LAB_LABEL: spec.project, **extra_labels},
        host_config=api.create_host_config(
            mounts=[docker.types.Mount(f"/tisbench-fill/{v.key}", v.name, type="volume") for v in spec.volumes]
        ),
    )["Id"]
    try:
        for volume in spec.volumes:
            with _tar_of(sources[volume.key]) as data:
                api.put_archive(loader, f"/tisbench-fill/{volume.key}", data)
    finally:
        api.remove_container(loader, force=True)


def create_network(client: docker.DockerClient, spec: LabSpec, extra_labels: dict[str, str]) -> None:
    """Create the lab's network: the first object, so a taken name fails before anything else exists."""
    api = client.api
    try:
        with interrupts.deferred():  # a Ctrl-C waits for the answer, so cleanup finds the network
            api.create_network(
                spec.network, driver="bridge", labels={**spec.network_labels, **extra_labels}, check_duplicate=True
            )
    except docker.errors.APIError as exc:
        if exc.status_code == 409:
            raise StackError(
                f"a lab named {spec.project} already exists",
                f"remove it with tisbench down {spec.project}, or choose another --name",
            ) from None
        raise StackError(
            f"creating network {spec.network} failed: {exc.explanation}", "check the Docker engine"
        ) from None


def start_service(
    client: docker.DockerClient,
    spec: LabSpec,
    service: str,
    extra_labels: dict[str, str],
    say: Callable[[str], None] = lambda message: None,
) -> str:
    """Create and start one service's container; its id. Engine refusals become one-line errors.

    A ulimit the engine cannot grant (a sandboxed or rootless engine and memlock -1) is dropped
    when it is tisbench's advice (labelled advisory in the compose file), said in one line and
    recorded on the container; one that stack.yaml set itself fails the start, naming the field.
    """
    chosen = next(s for s in spec.services if s.service == service)
    advisory = set(filter(None, chosen.labels.get(ADVISORY_ULIMITS_LABEL, "").split(",")))
    dropped: list[str] = []
    key = refusals.engine_key(client) if advisory & set(chosen.ulimits) else None
    for before in sorted(refusals.known(key) & advisory & set(chosen.ulimits)) if key else []:
        say(
            f"{service}: this Docker engine cannot grant ulimit {before}={chosen.ulimits[before]} "
            f"(NGC's advice; it refused it before, {refusals.cache_file()}); starting without it"
        )
        dropped.append(before)
        chosen = dataclasses.replace(chosen, ulimits={k: v for k, v in chosen.ulimits.items() if k != before})
    while True:  # each pass drops one more ulimit, so it ends within len(ulimits) passes
        labels = {**extra_labels, **({ULIMITS_DROPPED_LABEL: ",".join(dropped)} if dropped else {})}
        try:
            return _create(client.api, chosen, spec.network, labels)
        except docker.errors.APIError as exc:
            message = str(exc.explanation or exc)
            refused = refused_ulimit(message)
            if refused is None or refused not in chosen.ulimits:
                raise _start_failure(service, message) from None
            if refused not in advisory:
                raise StackError(
                    f"server.ulimits.{refused}: this Docker engine cannot grant {refused}="
                    f"{chosen.ulimits[refused]}, which stack.yaml asks for",
                    f"lower it, or set server.ulimits.{refused}: null to keep the engine's default",
                ) from None
        say(
            f"{service}: this Docker engine cannot grant ulimit {refused}={chosen.ulimits[refused]} "
            "(NGC's advice); starting without it, at the engine's default"
        )
        dropped.append(refused)
        chosen = dataclasses.replace(chosen, ulimits={k: v for k, v in chosen.ulimits.items() if k != refused})
        if key:
            refusals.remember(key, refused)


_RLIMIT_NAMES = {"0": "cpu", "1": "fsize", "2": "data", "3": "stack", "4": "core", "5": "rss", "6": "nproc",
                 "7": "nofile", "8": "memlock", "9": "as", "10": "locks", "11": "sigpending", "12": "msgqueue",
                 "13": "nice", "14": "rtprio", "15": "rttime"}  # fmt: skip  # Linux RLIMIT_* numbers


def refused_ulimit(message: str) -> str | None:
    """The ulimit an engine's start error says it could not set (runc: "error setting rlimit type 8")."""
    rlimit = re.search(r"error setting rlimit type (\d+)", message)
    if not rlimit:
        return None
    return _RLIMIT_NAMES.get(rlimit.group(1), f"type {rlimit.group(1)}")


def _start_failure(service: str, message: str) -> StackError:
    port = _port_in_use(message)
    if port:
        return StackError(
            f"{service}: host port {port} is already in use",
            "free it, or use an ephemeral port (0) in stack.yaml server.ports",
        )
    refused = refused_ulimit(message)
    if refused:
        return StackError(
            f"{service}: this Docker engine cannot grant ulimit {refused} as asked",
            f"lower it, or set server.ulimits.{refused}: null in stack.yaml to keep the engine's default",
        )
    return StackError(f"{service}: could not start ({message})", "see tisbench logs, or docker logs")


def _local(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if (o.get("Labels") or {}).get(ENGINE_LABEL) != "swarm"]


def lab_containers(client: docker.DockerClient, name: str | None = None) -> list[LabContainer]:
    """Containers of single-host labs (or of lab ``name``), found by label."""
    label = f"{LAB_LABEL}={name}" if name else LAB_LABEL
    return [LabContainer.from_api(c) for c in _local(list(client.api.containers(all=True, filters={"label": label})))]


def lab_networks(client: docker.DockerClient, name: str | None = None) -> list[LabNetwork]:
    label = f"{LAB_LABEL}={name}" if name else LAB_LABEL
    return [LabNetwork.from_api(n) for n in _local(list(client.api.networks(filters={"label": label})))]


def lab_volumes(client: docker.DockerClient, name: str) -> list[LabVolume]:
    volumes = client.api.volumes(filters={"label": f"{LAB_LABEL}={name}"}).get("Volumes") or []
    return [LabVolume.from_api(v) for v in _local(list(volumes))]


def remove_lab(
    client: docker.DockerClient,
    name: str,
    run: str | None = None,
    found: list[LabContainer] | None = None,
    found_networks: list[LabNetwork] | None = None,
    held: Mapping[str, threading.Event] | None = None,
) -> int:
    """Remove every container, network and volume labelled with the lab (only those of ``run``,
    when given; ``found``, ``found_networks``: its containers and networks, already listed);
    idempotent. Returns how many. A container in ``held`` is left alone until its event is set
    (a run still reads its files); the others start going at once.

    The running containers leave the lab's networks first (their endpoints and port mappings go
    in parallel); then the networks are removed beside the containers' kill and removal, instead
    of after them as ``compose down`` does: the network's own removal is off the critical path.
    A network that still has an endpoint then (a container of someone else's attached to it, a
    disconnect the engine refused) is removed again once the containers are gone."""
    api = client.api
    listed = lab_containers(client, name) if found is None else found
    containers = [c for c in listed if run is None or c.run_id == run]

    with ThreadPoolExecutor(max_workers=2 * len(containers) + 2) as pool:
        listed_volumes = pool.submit(lab_volumes, client, name)
        listed_networks = lab_networks(client, name) if found_networks is None else found_networks
        networks = [n for n in listed_networks if run is None or n.run_id == run]
        held = held or {}
        left = [pool.submit(_leave, api, c, [n.id for n in networks], held.get(c.id)) for c in containers]
        for leaving in left:
            leaving.result()
        removals = [pool.submit(_remove_container, api, c.id) for c in containers]
        network_removals = [pool.submit(_remove_network, api, n.id, busy_ok=True) for n in networks]
        for removal in removals:
            removal.result()
        still_there = [n for n, removal in zip(networks, network_removals, strict=True) if not removal.result()]
        volumes = [v for v in listed_volumes.result() if run is None or v.run_id == run]
    for network in still_there:
        _remove_network(api, network.id, busy_ok=False)
    for volume in volumes:
        try:
            api.remove_volume(volume.id, force=True)
        except docker.errors.NotFound:
            pass
    return len(containers) + len(networks) + len(volumes)


def _leave(api: docker.APIClient, container: LabContainer, networks: list[str], held: threading.Event | None) -> None:
    """Disconnect a container that is about to be removed, once it is no longer held; whatever the
    engine says, the removal decides."""
    if held is not None:
        held.wait()
    if not container.running:
        return
    for network_id in networks:
        with contextlib.suppress(docker.errors.APIError):
            api.disconnect_container_from_network(container.id, network_id, force=True)


def _remove_container(api: docker.APIClient, container_id: str) -> None:
    try:
        api.remove_container(container_id, force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if "already in progress" not in str(exc):
            raise


def _remove_network(api: docker.APIClient, network_id: str, *, busy_ok: bool) -> bool:
    """True when the network is gone; False (with ``busy_ok``) while an endpoint still holds it."""
    try:
        api.remove_network(network_id)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if busy_ok and exc.status_code == 403:  # "has active endpoints"
            return False
        raise
    return True


@dataclass(frozen=True)
class ContainerState:
    running: bool
    status: str
    exit_code: int | None


def container_state(client: docker.DockerClient, container_id: str) -> ContainerState:
    try:
        state = client.api.inspect_container(container_id)["State"]
    except docker.errors.NotFound:
        return ContainerState(False, "removed", None)
    except docker.errors.APIError as exc:
        if exc.status_code == 409:  # marked for removal
            return ContainerState(False, "removing", None)
        raise
    return ContainerState(bool(state.get("Running")), str(state.get("Status")), state.get("ExitCode"))


def host_ports(client: docker.DockerClient, container_id: str) -> dict[int, int]:
    """Published host ports by container port, read from the running container."""
    ports = client.api.inspect_container(container_id)["NetworkSettings"]["Ports"] or {}
    out = {}
    for key, bindings in ports.items():
        if bindings:
            out[int(key.split("/")[0])] = int(bindings[0]["HostPort"])
    return out


def container_logs(client: docker.DockerClient, container_id: str, tail: int | str = "all") -> str:
    try:
        raw = client.api.logs(container_id, stdout=True, stderr=True, tail=tail)
    except docker.errors.NotFound:
        return ""
    except docker.errors.APIError as exc:
        if exc.status_code == 409:  # being removed: as good as gone
            return ""
        raise
    return bytes(raw).decode("utf-8", errors="replace")


def follow_logs(client: docker.DockerClient, container_id: str) -> Iterator[bytes]:
    yield from client.api.logs(container_id, stdout=True, stderr=True, stream=True, follow=True)


@contextlib.contextmanager
def with_signals_masked_ctx() -> Iterator[None]:
    """Cleanup and record-keeping that a second Ctrl-C or SIGTERM must not cut short."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals are only delivered to (and set from) the main thread
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def with_signals_masked(action: Callable[[], Any]) -> Any:
    """Run cleanup without letting a second Ctrl-C or SIGTERM cut it short."""
    with with_signals_masked_ctx():
        return action()
