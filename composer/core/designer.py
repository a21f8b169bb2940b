"""A plan's lab as one :class:`~composer.core.design.LabDesign`, for a single-host engine or a swarm.
Built once, here; every file and engine call is drawn from what this returns. Pure."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from composer.core.config import Stack
from composer.core.design import LabDesign, Mount, Network, Port, Service, Volume
from composer.core.gpus import NONE, GpuRequest
from composer.core.image_refs import Images
from composer.core.labels import (
    ADVISORY_ULIMITS_LABEL,
    CLIENTS_LABEL,
    ENGINE_LABEL,
    GPUS_LABEL,
    LAB_LABEL,
    MODEL_LABEL,
    RELEASE_LABEL,
    STACK_LABEL,
    ULIMITS_DROPPED_LABEL,
)
from composer.core.names import RUN_AREA
from composer.core.release import Release
from composer.core.triton import ANALYZER, NETWORK, SERVER, SERVER_PORTS

COMPOSE_FILE = "docker-compose.yml"
STACK_FILE = "docker-stack.yml"
KUBE_FILE = "kubernetes.yml"
LAB_FILES = {"local": COMPOSE_FILE, "swarm": STACK_FILE, "kubernetes": KUBE_FILE}
MODELS, DATASET, WORKSPACE = "/models", "/workspace/dataset", "/workspace"
CSV_ENV = "TISBENCH_CSV"
CSV_MARKER = "==tisbench-csv=="
# Runs argv as given ("$@"), then prints the marker and the CSV; exits with perf_analyzer's status.
WRAPPER = f'"$@"; rc=$?; echo {CSV_MARKER}; cat "${CSV_ENV}"; exit $rc'
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def size_in_bytes(size: str) -> int:
    """A Docker size (``1g``, ``512m``, ``65536``; already validated by stack_fields.parse_size) in bytes."""
    text = size.strip().lower()
    unit = text[-1] if text[-1] in _UNITS else ""
    return int(text[: len(text) - len(unit)]) * _UNITS[unit]


def model_control_args(model: str) -> list[str]:
    """Triton in explicit model control: the stack's model loaded at start, others only on request,
    and the repository API's load (with a config override) honoured: how `tisbench tune` swaps configs."""
    return ["--model-control-mode=explicit", f"--load-model={model}"]


def run_area(stack: Stack, project: str) -> Path:
    return stack.directory / RUN_AREA / project


def lab_labels(project: str, release: Release, stack: Stack, gpus: GpuRequest) -> tuple[tuple[str, str], ...]:
    return (
        (LAB_LABEL, project),
        (RELEASE_LABEL, str(release)),
        (STACK_LABEL, str(stack.directory)),
        (MODEL_LABEL, stack.model),
        (GPUS_LABEL, gpus.describe()),
    )


def _server_command(stack: Stack, explicit_models: bool) -> tuple[str, ...]:
    return ("tritonserver", f"--model-repository={MODELS}", *model_control_args(stack.model) * explicit_models,
            *stack.server.args)  # fmt: skip


def local_design(
    stack: Stack,
    release: Release,
    images: Images,
    project: str,
    *,
    gpus: GpuRequest = NONE,
    pull_policy: str = "missing",
    explicit_models: bool = False,
    refused: frozenset[str] = frozenset(),
) -> LabDesign:
    """A single-host lab: the server with its ports published on ``server.host``, and an idle
    analyzer that tisbench execs perf_analyzer into. ``refused``: advisory ulimits this engine is
    known to refuse, left out."""
    server = stack.server
    labels = lab_labels(project, release, stack, gpus)
    advisory = tuple(name for name, _ in server.ulimits if name not in server.ulimits_set)
    left_out = tuple(name for name in advisory if name in refused)
    asked = [name for name in advisory if name not in left_out]
    triton = Service(
        SERVER,
        images.server,
        command=_server_command(stack, explicit_models),
        mounts=(Mount(str(stack.models_dir), MODELS, True),),
        ports=tuple(
            Port(SERVER_PORTS[kind], server.host, published or None)
            for kind, published in (
                ("http", server.http_port),
                ("grpc", server.grpc_port),
                ("metrics", server.metrics_port),
            )
        ),
        shm_size=server.shm_size,
        ulimits=tuple((name, value) for name, value in server.ulimits if name not in left_out),
        advisory_ulimits=tuple(asked),
        refused_ulimits=left_out,
        gpus=gpus,
        pull_policy=pull_policy,
        labels=labels
        + (((ADVISORY_ULIMITS_LABEL, ",".join(asked)),) if asked else ())
        + (((ULIMITS_DROPPED_LABEL, ",".join(left_out)),) if left_out else ()),
    )
    analyzer = Service(
        ANALYZER,
        images.sdk,
        # Idle until tisbench execs perf_analyzer; SIGKILL because sleep as PID 1 ignores SIGTERM.
        entrypoint=("sleep", "infinity"),
        stop_signal="SIGKILL",
        working_dir=WORKSPACE,
        mounts=(Mount(str(stack.dataset_dir), DATASET, True),),
        pull_policy=pull_policy,
        labels=labels,
    )
    if stack.analyzer.shared_memory != "none":
        # perf_analyzer's regions are the server's to map: one IPC namespace and /dev/shm (the server's shm_size)
        triton, analyzer = replace(triton, ipc="shareable"), replace(analyzer, ipc=f"service:{SERVER}")
    return _lab(stack, release, project, "local", triton, analyzer, Network(NETWORK, labels=labels))


def _server_with_shm_volume(stack: Stack, images: Images, labels: tuple[tuple[str, str], ...]) -> Service:
    """The server for an engine without shm_size (swarm services, pods): a memory-backed volume of
    that size at /dev/shm does its job."""
    return Service(
        SERVER,
        images.server,
        command=_server_command(stack, False),
        mounts=(
            Mount(str(stack.models_dir), MODELS, True),
            Mount(None, "/dev/shm", type="tmpfs", size_bytes=size_in_bytes(stack.server.shm_size)),
        ),
        labels=labels,
    )


def swarm_design(
    stack: Stack, release: Release, images: Images, project: str, clients: int, client_argv: list[str], csv_path: str
) -> LabDesign:
    """A swarm lab: the server as one dnsrr replica (no host port: reached by name on the overlay
    network) and ``clients`` one-shot perf_analyzer replicas running ``client_argv`` through a
    constant wrapper that prints the CSV into the task's log, so results travel through the engine."""
    labels = (*lab_labels(project, release, stack, NONE), (ENGINE_LABEL, "swarm"), (CLIENTS_LABEL, str(clients)))
    triton = _server_with_shm_volume(stack, images, labels)
    analyzer = Service(
        ANALYZER,
        images.sdk,
        # A constant script; every user value is a positional parameter ("$@").
        command=("sh", "-c", WRAPPER, "sh", *client_argv),
        environment=((CSV_ENV, csv_path),),
        working_dir=WORKSPACE,
        mounts=(Mount(str(stack.dataset_dir), DATASET, True),),
        labels=labels,
        replicas=clients,
    )
    network = Network(NETWORK, driver="overlay", attachable=True, labels=labels)
    return _lab(stack, release, project, "swarm", triton, analyzer, network)


def kube_design(
    stack: Stack,
    release: Release,
    images: Images,
    project: str,
    clients: int,
    *,
    gpus: GpuRequest = NONE,
    pull_policy: str = "never",
) -> LabDesign:
    """A Kubernetes lab: the server (a Deployment behind a Service on 8000/8001/8002, no host port)
    and ``clients`` idle analyzer pods that tisbench execs perf_analyzer into, as on one engine.
    No shared disk is assumed: every host folder a service mounts travels through the API into a
    volume before the containers start (:meth:`LabDesign.copied`); a named volume is the stack's
    PersistentVolumeClaim."""
    labels = (*lab_labels(project, release, stack, gpus), (ENGINE_LABEL, "kubernetes"), (CLIENTS_LABEL, str(clients)))
    triton = replace(
        _server_with_shm_volume(stack, images, labels),
        ports=tuple(Port(port, "", None) for port in SERVER_PORTS.values()),
        gpus=gpus,
        pull_policy=pull_policy,  # never: images built on this machine's engine, the node's own
    )
    analyzer = Service(
        ANALYZER,
        images.sdk,
        entrypoint=("sleep", "infinity"),  # idle until tisbench execs perf_analyzer, as on one engine
        working_dir=WORKSPACE,
        mounts=(Mount(str(stack.dataset_dir), DATASET, True),),
        pull_policy=pull_policy,
        labels=labels,
        replicas=clients,
    )
    design = _lab(stack, release, project, "kubernetes", triton, analyzer, Network(NETWORK, labels=labels))
    return design.copied()


def _lab(
    stack: Stack, release: Release, project: str, engine: str, triton: Service, analyzer: Service, network: Network
) -> LabDesign:
    """The design of tisbench's two services, each as the stack's options ask for it; the named
    volumes they mount are the user's own (external: never created or removed)."""
    services = (stack.server.options.apply(triton), stack.analyzer.options.apply(analyzer))
    named = dict.fromkeys(m.source for s in services for m in s.mounts if m.type == "volume")
    return LabDesign(
        project,
        str(release),
        engine,
        services,
        network,
        str(stack.directory),
        str(run_area(stack, project) / LAB_FILES[engine]),
        tuple(Volume(str(name), external=True) for name in named),
    )
