"""Create a lab on the engine from its design: the network, the volumes a remote engine fills, and
each service's container, in the docker SDK's words. Engine refusals become one-line errors."""

from __future__ import annotations

import contextlib
import re
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

import docker
import docker.errors

from composer.core import interrupts
from composer.core.design import LabDesign, Mount, Service
from composer.core.errors import StackError
from composer.core.labels import LAB_LABEL, ULIMITS_DROPPED_LABEL
from composer.engine import refusals
from composer.engine.gpus import device_requests
from composer.engine.host import engine_failures, unreachable


def docker_mount(m: Mount, design: LabDesign) -> docker.types.Mount:
    """A design's mount in the SDK's words, for a container or a swarm service."""
    if m.type == "tmpfs":
        return docker.types.Mount(m.target, None, type="tmpfs", tmpfs_size=m.size_bytes)
    source = design.volume_name(str(m.source)) if m.type == "volume" else m.source
    return docker.types.Mount(m.target, source, type=m.type, read_only=m.read_only)


def _host_config(api: Any, design: LabDesign, service: Service) -> Any:
    return api.create_host_config(
        mounts=[docker_mount(m, design) for m in service.mounts],
        port_bindings={
            f"{p.target}/tcp": (p.host_ip, p.published) if p.published else (p.host_ip,) for p in service.ports
        },
        shm_size=service.shm_size,
        ulimits=[docker.types.Ulimit(name=k, soft=v, hard=v) for k, v in service.ulimits],
        network_mode=design.network_name,
        ipc_mode=design.ipc_mode(service),
        device_requests=device_requests(service.gpus) or None,
    )


def _create(api: Any, design: LabDesign, service: Service, extra_labels: dict[str, str]) -> str:
    with interrupts.deferred():  # a Ctrl-C waits for the answer, so cleanup knows the container
        try:
            return _create_and_start(api, design, service, extra_labels)
        except docker.errors.APIError:
            raise
        except engine_failures() as exc:  # the engine went away mid-call (a refused ssh channel, a reset)
            raise unreachable(exc) from None


def _create_and_start(api: Any, design: LabDesign, service: Service, extra_labels: dict[str, str]) -> str:
    """Create and start one container; one that was created but would not start is removed again."""
    name = design.container_name(service.name)
    created = api.create_container(
        image=service.image,
        command=list(service.command) if service.command else None,
        entrypoint=list(service.entrypoint) if service.entrypoint else None,
        working_dir=service.working_dir,
        environment=dict(service.environment) or None,
        name=name,
        labels={**design.container_labels(service), **extra_labels},
        ports=[p.target for p in service.ports],
        stop_signal=service.stop_signal,
        host_config=_host_config(api, design, service),
        networking_config=api.create_networking_config(
            {design.network_name: api.create_endpoint_config(aliases=[service.name, name])}
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


def fill_volumes(client: docker.DockerClient, design: LabDesign, image: str, extra_labels: dict[str, str]) -> None:
    """Create the design's volumes and copy each one's host path into it, through a container that
    is never started."""
    with interrupts.deferred():  # a Ctrl-C waits until the loader container is gone again
        _fill_volumes(client.api, design, image, extra_labels)


def _fill_volumes(api: Any, design: LabDesign, image: str, extra_labels: dict[str, str]) -> None:
    for volume in design.volumes:
        if not volume.external:
            api.create_volume(design.volume_name(volume.key), labels={**design.volume_labels(volume), **extra_labels})
    filled = [v for v in design.volumes if v.fill]
    loader = api.create_container(
        image=image,
        command=["true"],
        name=f"{design.project}-loader",
        labels={LAB_LABEL: design.project, **extra_labels},
        host_config=api.create_host_config(
            mounts=[
                docker.types.Mount(f"/tisbench-fill/{v.key}", design.volume_name(v.key), type="volume") for v in filled
            ]
        ),
    )["Id"]
    try:
        for volume in filled:
            with _tar_of(Path(str(volume.fill))) as data:
                api.put_archive(loader, f"/tisbench-fill/{volume.key}", data)
    finally:
        api.remove_container(loader, force=True)


def missing_volumes(client: docker.DockerClient, names: tuple[str, ...]) -> list[str]:
    """The named volumes of ``names`` that this engine does not have."""
    missing = []
    for name in names:
        try:
            client.api.inspect_volume(name)
        except docker.errors.NotFound:
            missing.append(name)
    return missing


def create_network(client: docker.DockerClient, design: LabDesign, extra_labels: dict[str, str]) -> None:
    """Create the lab's network: the first object, so a taken name fails before anything else exists."""
    api = client.api
    try:
        with interrupts.deferred():  # a Ctrl-C waits for the answer, so cleanup finds the network
            api.create_network(
                design.network_name,
                driver=design.network.driver,
                labels={**design.network_labels(), **extra_labels},
                check_duplicate=True,
            )
    except docker.errors.APIError as exc:
        if exc.status_code == 409:
            raise StackError(
                f"a lab named {design.project} already exists",
                f"remove it with tisbench down {design.project}, or choose another --name",
            ) from None
        raise StackError(
            f"creating network {design.network_name} failed: {exc.explanation}", "check the Docker engine"
        ) from None


def _without(service: Service, ulimit: str) -> Service:
    return replace(service, ulimits=tuple((k, v) for k, v in service.ulimits if k != ulimit))


def start_service(
    client: docker.DockerClient,
    design: LabDesign,
    service: str,
    extra_labels: dict[str, str],
    say: Callable[[str], None] = lambda message: None,
) -> str:
    """Create and start one service's container; its id. Engine refusals become one-line errors.

    A ulimit the engine cannot grant (a sandboxed or rootless engine and memlock -1) is dropped
    when it is tisbench's advice (advisory in the design), said in one line and recorded on the
    container; one that stack.yaml set itself fails the start, naming the field.
    """
    chosen = design.service(service)
    advisory = set(chosen.advisory_ulimits)
    limits = dict(chosen.ulimits)
    dropped: list[str] = list(chosen.refused_ulimits)
    key = refusals.engine_key(client) if advisory & set(limits) else None
    for before in sorted(refusals.known(key) & advisory & set(limits)) if key else []:
        say(
            f"{service}: this Docker engine cannot grant ulimit {before}={limits[before]} "
            f"(NGC's advice; it refused it before, {refusals.cache_file()}); starting without it"
        )
        dropped.append(before)
        chosen = _without(chosen, before)
    while True:  # each pass drops one more ulimit, so it ends within len(ulimits) passes
        labels = {**extra_labels, **({ULIMITS_DROPPED_LABEL: ",".join(dropped)} if dropped else {})}
        try:
            return _create(client.api, design, chosen, labels)
        except docker.errors.APIError as exc:
            message = str(exc.explanation or exc)
            refused = refused_ulimit(message)
            if refused is None or refused not in dict(chosen.ulimits):
                raise _start_failure(service, message) from None
            if refused not in advisory:
                raise StackError(
                    f"server.ulimits.{refused}: this Docker engine cannot grant {refused}="
                    f"{limits[refused]}, which stack.yaml asks for",
                    f"lower it, or set server.ulimits.{refused}: null to keep the engine's default",
                ) from None
        say(
            f"{service}: this Docker engine cannot grant ulimit {refused}={limits[refused]} "
            "(NGC's advice); starting without it, at the engine's default"
        )
        dropped.append(refused)
        chosen = _without(chosen, refused)
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
