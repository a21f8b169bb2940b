"""Render the lab's docker-compose.yml: jinja2 with StrictUndefined; returns text, writes nothing.

Every user value passes through the ``y`` filter: an escaped YAML double-quoted scalar, so
``: # " ' {{ }}`` and newlines cannot add keys, and ``$`` is doubled so compose's
variable interpolation leaves it alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from composer import __version__
from composer.core.config import Stack
from composer.core.gpus import NONE, GpuRequest
from composer.core.lab_releases import lab_image_tags
from composer.core.labels import ADVISORY_ULIMITS_LABEL, GPUS_LABEL, LAB_LABEL, MODEL_LABEL, RELEASE_LABEL, STACK_LABEL
from composer.core.release import Release
from composer.core.triton import NETWORK, SERVER_PORTS
from composer.render.environment import environment

NGC_REPOSITORY = "nvcr.io/nvidia/tritonserver"


@dataclass(frozen=True)
class Images:
    server: str
    sdk: str


def image_refs(
    release: Release, image_set: str, repository: str | None = None, server: str | None = None, sdk: str | None = None
) -> Images:
    """The server and sdk image references: lab tags, or ``<repository>:<release>-py3[-sdk]`` (NGC's
    scheme, on NGC or a mirror of it), each replaced by an exact reference where one is given."""
    if image_set == "lab":
        lab_server, lab_sdk = lab_image_tags(str(release))
        return Images(lab_server, lab_sdk)
    repo = repository or NGC_REPOSITORY
    return Images(server or f"{repo}:{release}-py3", sdk or f"{repo}:{release}-py3-sdk")


def lab_labels(project: str, release: Release, stack: Stack, gpus: GpuRequest) -> list[tuple[str, str]]:
    return [
        (LAB_LABEL, project),
        (RELEASE_LABEL, str(release)),
        (STACK_LABEL, str(stack.directory)),
        (MODEL_LABEL, stack.model),
        (GPUS_LABEL, gpus.describe()),
    ]


def server_labels(labels: list[tuple[str, str]], stack: Stack) -> list[tuple[str, str]]:
    """The lab's labels, plus which of the server's ulimits are tisbench's advice, not the user's."""
    advisory = [name for name, _ in stack.server.ulimits if name not in stack.server.ulimits_set]
    return labels + ([(ADVISORY_ULIMITS_LABEL, ",".join(advisory))] if advisory else [])


def model_control_args(model: str) -> list[str]:
    """Triton in explicit model control: the stack's model loaded at start, others only on request,
    and the repository API's load (with a config override) honoured: how `tisbench tune` swaps configs."""
    return ["--model-control-mode=explicit", f"--load-model={model}"]


TRANSPORTS = ("bind", "copy")  # copy: models and dataset travel into volumes (remote engines)


def render_compose(
    stack: Stack,
    release: Release,
    images: Images,
    project: str,
    gpus: GpuRequest = NONE,
    transport: str = "bind",
    pull_policy: str = "missing",
    explicit_models: bool = False,
) -> str:
    server = stack.server
    ports = [
        (SERVER_PORTS["http"], server.http_port),
        (SERVER_PORTS["grpc"], server.grpc_port),
        (SERVER_PORTS["metrics"], server.metrics_port),
    ]
    context = {
        "tisbench_version": __version__,
        "project": project,
        "release": str(release),
        "server_image": images.server,
        "sdk_image": images.sdk,
        "server_args": model_control_args(stack.model) * explicit_models + list(server.args),
        "models_dir": str(stack.models_dir),
        "dataset_dir": str(stack.dataset_dir),
        "ports": ports,
        "host_ip": server.host,
        "shm_size": server.shm_size,
        "ulimits": list(server.ulimits),
        "advisory_ulimits": [name for name, _ in server.ulimits if name not in server.ulimits_set],
        "pull_policy": pull_policy,
        "labels": lab_labels(project, release, stack, gpus),
        "server_labels": server_labels(lab_labels(project, release, stack, gpus), stack),
        "gpu_devices": gpus.compose_devices(),
        "transport": transport,
        "network": NETWORK,
    }
    return environment().get_template("docker-compose.yml.j2").render(context)
