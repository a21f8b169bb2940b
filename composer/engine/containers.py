"""Docker at the edge: find, inspect and remove labs through the docker SDK (composer.engine.create
makes them).

Everything a lab creates carries ``tisbench.lab=<name>``, so removal finds it by label even
after a crash, and nothing without that label is ever touched.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors

from composer.core.labels import ENGINE_LABEL as ENGINE_LABEL  # callers name them as engine attributes
from composer.core.labels import LAB_LABEL as LAB_LABEL
from composer.core.labels import OWNER_LABEL as OWNER_LABEL
from composer.core.labels import RUN_LABEL as RUN_LABEL
from composer.engine.client import connect as connect  # callers name them as engine attributes
from composer.engine.client import engine_address as engine_address
from composer.engine.client import engine_is_local as engine_is_local
from composer.engine.client import probe_host as probe_host
from composer.engine.objects import LabContainer, LabNetwork, LabVolume, find_service

__all__ = ["LabContainer", "LabNetwork", "LabVolume", "find_service"]


def _local(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Single-host labs' objects only: a swarm's, and a kubelet's pod containers on this engine
    (they carry their pods' labels, tisbench.engine=kubernetes among them), are other engines' labs."""
    return [o for o in objects if (o.get("Labels") or {}).get(ENGINE_LABEL) not in ("swarm", "kubernetes")]


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
