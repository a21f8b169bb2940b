"""Render the lab's docker-compose.yml: jinja2 with StrictUndefined; returns text, writes nothing.

Every user value passes through the ``y`` filter: an escaped YAML double-quoted scalar, so
``: # " ' {{ }}`` and newlines cannot add keys, and ``$`` is doubled so compose's
variable interpolation leaves it alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jinja2

from composer import __version__
from composer.core.config import Stack
from composer.core.gpus import NONE, GpuRequest
from composer.core.lab_releases import lab_image_tags
from composer.core.labels import ADVISORY_ULIMITS_LABEL
from composer.core.release import Release
from composer.core.shipped import templates_dir
from composer.core.triton import SERVER_PORTS

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


def yaml_scalar(value: Any) -> str:
    """A YAML double-quoted scalar: printable ASCII as is, anything else escaped by code point.

    Not json.dumps: it writes characters beyond U+FFFF as surrogate pairs, which compose
    rejects and PyYAML decodes to lone surrogates.
    """
    out = []
    for char in str(value).replace("$", "$$"):
        if char in '"\\':
            out.append("\\" + char)
        elif " " <= char <= "~":
            out.append(char)
        else:
            out.append(f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


def unescape(value: str) -> str:
    """Undo the ``$`` doubling, as compose's interpolation does, for SDK calls made from the file."""
    return value.replace("$$", "$")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # YAML, not HTML: the y filter does the escaping
        keep_trailing_newline=True,
    )
    env.filters["y"] = yaml_scalar
    return env


def lab_labels(project: str, release: Release, stack: Stack, gpus: GpuRequest) -> list[tuple[str, str]]:
    return [
        ("tisbench.lab", project),
        ("tisbench.release", str(release)),
        ("tisbench.stack", str(stack.directory)),
        ("tisbench.model", stack.model),
        ("tisbench.gpus", gpus.describe()),
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
        "pull_policy": pull_policy,
        "labels": lab_labels(project, release, stack, gpus),
        "server_labels": server_labels(lab_labels(project, release, stack, gpus), stack),
        "gpu_devices": gpus.compose_devices(),
        "transport": transport,
    }
    return _environment().get_template("docker-compose.yml.j2").render(context)
