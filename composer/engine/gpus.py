"""The docker SDK's side of a ``GpuRequest``: its ``DeviceRequest`` spelling, and the engine asked.

composer.core.gpus holds the request, its compose spelling and its resolution, all pure; the two
things that need the SDK live here: the ``device_requests`` a created container carries, and
``resolve_on``, which asks a live engine what it can give.
"""

from __future__ import annotations

import docker
import docker.errors
import docker.types
import requests.exceptions

from composer.core.errors import DockerUnavailable
from composer.core.gpus import GpuRequest, resolve_gpus


def device_requests(request: GpuRequest) -> list[docker.types.DeviceRequest]:
    """The docker SDK's spelling of ``request``, for ``create_host_config(device_requests=…)``."""
    request.require_resolved()
    if not request.uses_gpus:
        return []
    caps = [["gpu"]]  # one alternative set: the "gpu" capability
    if request.mode == "devices":
        return [docker.types.DeviceRequest(driver="nvidia", device_ids=list(request.device_ids), capabilities=caps)]
    count = -1 if request.mode == "all" else request.count
    return [docker.types.DeviceRequest(driver="nvidia", count=count, capabilities=caps)]


def resolve_on(client: docker.DockerClient, request: GpuRequest, *, field: str = "--gpus") -> GpuRequest:
    """``resolve_gpus`` against a live engine; ``none`` needs no call."""
    if request.mode == "none":
        return request
    try:
        info = client.api.info()
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise DockerUnavailable(
            f"{field}: cannot ask the Docker engine which runtimes it has ({type(exc).__name__})",
            "check the engine (docker info), or pass --gpus none",
        ) from None
    return resolve_gpus(request, dict(info), field=field)
