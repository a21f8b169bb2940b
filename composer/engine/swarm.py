"""Docker Swarm at the edge: manager check, overlay network, services, tasks, logs, removal by label.

Nothing here initialises a swarm: an engine that is not a manager is reported with the command
that makes it one. Every object carries ``tisbench.lab=<name>`` and ``tisbench.engine=swarm``;
removal finds services, task containers, networks and volumes by those labels alone.

The host cannot reach a dnsrr service (it publishes no port), so the server's readiness is read
from its task: the task state says alive or dead, the log says when Triton serves (it starts its
endpoints only after every model loaded) or which model failed to load.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import docker
import docker.errors
from docker.types import (
    ContainerSpec,
    EndpointSpec,
    NetworkAttachmentConfig,
    RestartPolicy,
    ServiceMode,
    TaskTemplate,
)

from composer.core import interrupts
from composer.core.design import SWARM_ENDPOINT_MODE, SWARM_RESTART, LabDesign
from composer.core.errors import AnalyzerError, DockerUnavailable, ModelLoadError, StackError
from composer.core.labels import ENGINE_LABEL, LAB_LABEL
from composer.engine.containers import ContainerState
from composer.engine.create import docker_mount
from composer.engine.exec import fetch_file
from composer.engine.host import docker_host
from composer.engine.lab_status import LabStatus
from composer.engine.readiness import Ready, load_failure, wait_until_ready

SWARM_INIT = "docker swarm init --advertise-addr 127.0.0.1"
SWARM_FILTER = [LAB_LABEL, f"{ENGINE_LABEL}=swarm"]
# Task states that will not change any more; every other state is on its way to running.
TERMINAL = frozenset({"complete", "failed", "shutdown", "rejected", "orphaned", "remove"})
# Triton logs these once every model has loaded and the endpoint accepts requests.
SERVING = {"http": "Started HTTPService at", "grpc": "Started GRPCInferenceService at"}
LOG_READ_INTERVAL_S = 0.2
TASK_POLL_INTERVAL_S = 0.25


def require_manager(client: docker.DockerClient) -> str:
    """The node id of the engine, which must be a swarm manager; DockerUnavailable (exit 3) otherwise."""
    where = docker_host()
    swarm = client.info().get("Swarm") or {}
    state = swarm.get("LocalNodeState") or "inactive"
    if state != "active" or not swarm.get("ControlAvailable"):
        role = "a swarm worker" if state == "active" else f"in no swarm (state {state})"
        raise DockerUnavailable(
            f"--engine swarm: the Docker engine at {where} is {role}, not a swarm manager",
            f"tisbench never initialises a swarm itself; make this engine a manager with `{SWARM_INIT}` "
            "(leave it later with `docker swarm leave --force`), or point DOCKER_HOST at a manager",
        )
    return str(swarm["NodeID"])


def create_network(client: docker.DockerClient, design: LabDesign) -> str:
    try:
        with interrupts.deferred():  # a Ctrl-C waits for the answer, so cleanup finds the network
            created = client.api.create_network(
                design.network_name,
                driver=design.network.driver,
                attachable=design.network.attachable,
                labels=design.network_labels(),
                scope="swarm",
            )
    except docker.errors.APIError as exc:
        raise StackError(
            f"creating overlay network {design.network_name} failed: {exc.explanation}", "check the swarm"
        ) from None
    return str(created["Id"])


def create_service(client: docker.DockerClient, design: LabDesign, service: str) -> str:
    """One service of a swarm design, as ``docker stack deploy`` makes it; its short name is its DNS alias."""
    svc = design.service(service)
    name = design.swarm_service_name(service)
    service_labels, container_labels = design.swarm_labels(svc)
    container = ContainerSpec(
        svc.image,
        command=list(svc.command) if svc.command else None,
        env=dict(svc.environment) or None,
        workdir=svc.working_dir,
        labels=container_labels,
        mounts=[docker_mount(m, design) for m in svc.mounts],
    )
    template = TaskTemplate(
        container,
        restart_policy=RestartPolicy(SWARM_RESTART),
        networks=[NetworkAttachmentConfig(design.network_name, aliases=[svc.name])],
    )
    try:
        with interrupts.deferred():  # a Ctrl-C waits for the answer, so cleanup finds the service
            created = client.api.create_service(
                template,
                name=name,
                labels=service_labels,
                mode=ServiceMode("replicated", replicas=svc.replicas),
                endpoint_spec=EndpointSpec(mode=SWARM_ENDPOINT_MODE),
            )
    except docker.errors.APIError as exc:
        raise StackError(f"{name}: could not create the service ({exc.explanation})", "check the swarm") from None
    return str(created["ID"])


@dataclass(frozen=True)
class Task:
    id: str
    slot: int
    node_id: str
    state: str
    error: str
    exit_code: int | None
    container_id: str | None

    @property
    def done(self) -> bool:
        return self.state in TERMINAL


def service_tasks(client: docker.DockerClient, service_id: str) -> list[Task]:
    """The service's tasks, by slot."""
    tasks = []
    for raw in client.api.tasks(filters={"service": service_id}):
        status = raw.get("Status") or {}
        container = status.get("ContainerStatus") or {}
        tasks.append(
            Task(
                id=str(raw["ID"]),
                slot=int(raw.get("Slot") or 0),
                node_id=str(raw.get("NodeID") or ""),
                state=str(status.get("State") or "new"),
                error=str(status.get("Err") or ""),
                exit_code=container.get("ExitCode"),
                container_id=container.get("ContainerID") or None,
            )
        )
    return sorted(tasks, key=lambda t: (t.slot, t.id))


_TASK_ID = re.compile(r"(?:^|,)com\.docker\.swarm\.task\.id=([^,\s]+)")


def task_logs(client: docker.DockerClient, service_id: str, *, stderr: bool = True) -> dict[str, str]:
    """Each task's log text through the engine (any node), keyed by task id; stdout only if not stderr."""
    try:
        stream = client.api.service_logs(service_id, details=True, stdout=True, stderr=stderr, timestamps=False)
        raw = b"".join(stream)
    except docker.errors.NotFound:
        return {}
    out: dict[str, list[str]] = {}
    # Each line: "<details> <message>"; details are comma-separated k=v pairs naming the task.
    for line in raw.decode("utf-8", errors="replace").splitlines():
        details, _, message = line.partition(" ")
        match = _TASK_ID.search(details)
        out.setdefault(match.group(1) if match else "?", []).append(message)
    return {task: "\n".join(lines) + "\n" for task, lines in out.items()}


class ServerTaskProbe:
    """readiness.Probe for a server no one outside the overlay network can reach: its log says it serves."""

    def __init__(self, client: docker.DockerClient, service_id: str, protocol: str) -> None:
        self.client, self.service_id, self.marker = client, service_id, SERVING[protocol]
        self._text, self._read_at = "", -1e9

    def logs(self) -> str:
        now = time.monotonic()
        if now - self._read_at >= LOG_READ_INTERVAL_S:
            self._text = "".join(task_logs(self.client, self.service_id).values())
            self._read_at = now
        return self._text

    def server_ready(self) -> bool:
        return self.marker in self.logs()

    def model_ready(self, model: str) -> bool:
        # Serving means every model loaded, unless the server was told to go on regardless.
        failure = load_failure(self.logs(), model)
        if failure:
            raise ModelLoadError(f"Triton could not load {failure}", "fix the model, then run again")
        return True


def _task_state(client: docker.DockerClient, service_id: str) -> tuple[ContainerState, str]:
    tasks = service_tasks(client, service_id)
    if not tasks:
        return ContainerState(True, "new", None), ""
    task = tasks[-1]
    note = f"\nswarm task {task.state}: {task.error}" if task.error else ""
    return ContainerState(not task.done, task.state, task.exit_code), note


def wait_server_ready(
    client: docker.DockerClient,
    service_id: str,
    *,
    model: str,
    protocol: str,
    timeout_s: float,
    on_wait: Callable[[str], None],
) -> Ready:
    """Deadline-based: ready when Triton logs that it serves; a failed task stops the wait at once."""
    probe = ServerTaskProbe(client, service_id, protocol)
    last_note = [""]

    def state() -> ContainerState:
        current, last_note[0] = _task_state(client, service_id)
        return current

    return wait_until_ready(
        probe,
        state=state,
        logs=lambda: probe.logs() + last_note[0],
        model=model,
        timeout_s=timeout_s,
        on_wait=lambda what: on_wait(f"triton_server to log {probe.marker!r}" if what.startswith("server") else what),
    )


def wait_tasks_done(
    client: docker.DockerClient,
    service_id: str,
    replicas: int,
    timeout_s: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_change: Callable[[list[Task]], None] = lambda tasks: None,
) -> list[Task]:
    """All ``replicas`` tasks in a final state, or AnalyzerError at the deadline."""
    deadline = clock() + timeout_s
    seen: list[tuple[int, str]] = []
    while True:
        tasks = service_tasks(client, service_id)
        states = [(t.slot, t.state) for t in tasks]
        if states != seen:
            seen = states
            on_change(tasks)
        if len(tasks) >= replicas and all(t.done for t in tasks):
            return tasks
        if clock() >= deadline:
            pending = ", ".join(f"client {t.slot}: {t.state}" for t in tasks if not t.done) or "no task yet"
            raise AnalyzerError(
                f"perf_analyzer clients did not finish within {timeout_s:g} s ({pending})",
                "raise --bench-timeout, or measure fewer requests",
            )
        sleep(TASK_POLL_INTERVAL_S)


def fetch_task_file(client: docker.DockerClient, task: Task, path: str, local_node: str) -> bytes | None:
    """A file from a finished task's container, when that container is on the engine we talk to."""
    if task.node_id != local_node or not task.container_id:
        return None
    try:
        return fetch_file(client, task.container_id, path)
    except docker.errors.APIError:
        return None


def lab_services(client: docker.DockerClient, name: str | None = None) -> list[dict[str, Any]]:
    """Swarm services of tisbench labs (or of lab ``name``); none on an engine outside a swarm."""
    filters = [f"{LAB_LABEL}={name}", SWARM_FILTER[1]] if name else SWARM_FILTER
    try:
        return list(client.api.services(filters={"label": filters}))
    except docker.errors.APIError as exc:
        if exc.status_code == 503:  # not a manager: there can be no services to find here
            return []
        raise


def _labelled(client: docker.DockerClient, name: str) -> dict[str, list[dict[str, Any]]]:
    label = {"label": [f"{LAB_LABEL}={name}", SWARM_FILTER[1]]}
    return {
        "containers": list(client.api.containers(all=True, filters=label)),
        "networks": list(client.api.networks(filters=label)),
        "volumes": list((client.api.volumes(filters=label) or {}).get("Volumes") or []),
    }


def remove_swarm_lab(
    client: docker.DockerClient, name: str, timeout_s: float = 60.0, sleep: Callable[[float], None] = time.sleep
) -> int:
    """Remove the lab's services, then (once their task containers are gone) its networks and
    volumes; idempotent. Returns how many objects were removed."""
    removed = 0
    for service in lab_services(client, name):
        try:
            client.api.remove_service(service["ID"])
            removed += 1
        except docker.errors.NotFound:
            pass
    deadline = time.monotonic() + timeout_s
    while True:  # swarm stops task containers asynchronously; a network in use cannot go yet
        left = _labelled(client, name)
        for network in left["networks"] if not left["containers"] else []:
            try:
                client.api.remove_network(network["Id"])
                removed += 1
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError:
                pass  # still has endpoints: retried below
        for volume in left["volumes"] if not left["containers"] else []:
            try:
                client.api.remove_volume(volume["Name"], force=True)
                removed += 1
            except docker.errors.APIError:
                pass
        left = _labelled(client, name)
        if not any(left.values()):
            return removed
        if time.monotonic() >= deadline:
            what = ", ".join(f"{len(v)} {k}" for k, v in left.items() if v)
            raise StackError(f"swarm lab {name}: {what} still there after {timeout_s:g} s", f"docker stack rm {name}")
        sleep(0.2)


def created_age_s(created: str) -> float:
    """Seconds since an engine timestamp such as 2026-11-26T02:07:59.72853615Z."""
    trimmed = re.sub(r"(\.\d{6})\d*", r"\1", created.rstrip("Z"))
    try:
        stamp = datetime.fromisoformat(trimmed).replace(tzinfo=timezone.utc)
    except ValueError:
        return 0.0
    return max(0.0, (datetime.now(timezone.utc) - stamp).total_seconds())


def swarm_lab_names(client: docker.DockerClient) -> list[str]:
    found = {s["Spec"]["Labels"][LAB_LABEL] for s in lab_services(client)}
    found |= {n["Labels"][LAB_LABEL] for n in client.api.networks(filters={"label": SWARM_FILTER})}
    return sorted(found)


def swarm_statuses(client: docker.DockerClient) -> list[LabStatus]:
    """``LabStatus`` of every swarm lab: each service as ``state count/replicas``."""
    labs: dict[str, Any] = {}
    for service in lab_services(client):
        labels = service["Spec"]["Labels"]
        name = labels[LAB_LABEL]
        lab = labs.setdefault(name, LabStatus.from_labels(labels))
        short = service["Spec"]["Name"].removeprefix(f"{name}_")
        tasks = service_tasks(client, service["ID"])
        replicas = ((service["Spec"].get("Mode") or {}).get("Replicated") or {}).get("Replicas", len(tasks))
        counts: dict[str, int] = {}
        for task in tasks:
            counts[task.state] = counts.get(task.state, 0) + 1
        lab.services[short] = " ".join(f"{state} {n}/{replicas}" for state, n in sorted(counts.items())) or "new"
        lab.age_s = max(lab.age_s, created_age_s(str(service.get("CreatedAt", ""))))
    return sorted(labs.values(), key=lambda lab: lab.name)
