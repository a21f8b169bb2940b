"""GPUs for the server container: the ``--gpus`` value, what the engine can give, and how to ask.

One request, two spellings: compose's ``deploy.resources.reservations.devices`` (the rendered
file, here) and the docker SDK's ``DeviceRequest`` (what ``tisbench up`` creates, in
composer.engine.gpus). Both are derived from the same ``GpuRequest``, so the file and the lab
cannot disagree.

``auto`` (the default) means: all GPUs when the engine can hand out NVIDIA GPUs, none otherwise.
An explicit request on an engine that cannot is an error (exit 3), never a silent CPU run.
Everything here is pure: ``composer.engine.gpus.resolve_on`` asks a live engine for the info
that ``resolve_gpus`` judges.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer.core.errors import DockerUnavailable, StackError, UsageError
from composer.core.triton import METRICS_URL

MODES = ("auto", "none", "all", "count", "devices")
METRICS_INTERVAL_MS = 1000
DEVICE_NODE = Path("/dev/nvidia0")
_FORMS = "use auto, none, all, a count N ≥ 1, or device=ID[,ID…] with GPU indexes (0,1) or UUIDs (GPU-…)"
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_:/.")
_TOOLKIT_HINT = (
    "install the NVIDIA Container Toolkit, run sudo nvidia-ctk runtime configure --runtime=docker "
    "and restart dockerd; or pass --gpus none"
)


@dataclass(frozen=True)
class GpuRequest:
    """What the server container asks for; ``auto`` must be resolved against an engine first."""

    mode: str
    count: int | None = None
    device_ids: tuple[str, ...] = ()

    @property
    def uses_gpus(self) -> bool:
        return self.mode in ("all", "count", "devices")

    def describe(self) -> str:
        """The request as a user would write it: for manifests and messages."""
        if self.mode == "count":
            return str(self.count)
        if self.mode == "devices":
            return "device=" + ",".join(self.device_ids)
        return self.mode

    def require_resolved(self) -> None:
        """ValueError for ``auto``: it names no devices until ``resolve_gpus`` decides."""
        if self.mode == "auto":
            raise ValueError("GpuRequest(auto) must go through resolve_gpus before it is rendered or created")

    def compose_devices(self) -> list[dict[str, Any]]:
        """compose's ``deploy.resources.reservations.devices``; compose forbids count with device_ids."""
        self.require_resolved()
        if not self.uses_gpus:
            return []
        entry: dict[str, Any] = {"driver": "nvidia"}
        if self.mode == "devices":
            entry["device_ids"] = list(self.device_ids)
        else:
            entry["count"] = "all" if self.mode == "all" else self.count
        entry["capabilities"] = ["gpu"]
        return [entry]


AUTO = GpuRequest("auto")
NONE = GpuRequest("none")
ALL = GpuRequest("all")


def _device_ids(text: str, raw: str, field: str) -> tuple[str, ...]:
    ids = tuple(part.strip() for part in text.split(","))
    if not ids or not all(ids):
        raise UsageError(f"{field}: {raw!r} has an empty device id", _FORMS)
    for device in ids:
        if not set(device) <= _ID_CHARS:
            raise UsageError(f"{field}: {raw!r}: {device!r} is not a GPU index or UUID", _FORMS)
    if len(set(ids)) != len(ids):
        raise UsageError(f"{field}: {raw!r} names a device twice", _FORMS)
    return ids


def parse_gpus(text: str | None, *, field: str = "--gpus") -> GpuRequest:
    """``auto`` (None), ``none``, ``all``, ``N`` or ``device=ID,…`` (docker's quoted form too)."""
    if text is None:
        return AUTO
    value = text.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1].strip()  # docker's CSV form: --gpus '"device=0,1"'
    keyword = value.lower()
    if keyword in ("auto", "none", "all"):
        return GpuRequest(keyword)
    if value.isascii() and value.isdigit():
        count = int(value)
        if count == 0:
            raise UsageError(f"{field}: 0 GPUs", "pass --gpus none to run without GPUs")
        return GpuRequest("count", count=count)
    name, sep, ids = value.partition("=")
    if sep and name.strip().lower() == "device":
        return GpuRequest("devices", device_ids=_device_ids(ids, text, field))
    raise UsageError(f"{field}: {text!r} is not a GPU request", _FORMS)


def from_compose_devices(devices: Any, *, where: str = "triton_server") -> GpuRequest:
    """Read a rendered ``deploy.resources.reservations.devices`` back (the file is the source of truth)."""
    if not devices:
        return NONE
    bad = StackError(
        f"{where}: deploy.resources.reservations.devices is not a GPU reservation tisbench writes ({devices!r})",
        "re-render the file with tisbench render",
    )
    if not isinstance(devices, list) or len(devices) != 1 or not isinstance(devices[0], dict):
        raise bad
    entry = devices[0]
    if entry.get("driver") != "nvidia" or ("count" in entry) == ("device_ids" in entry):
        raise bad
    if "device_ids" in entry:
        ids = entry["device_ids"]
        if not isinstance(ids, list) or not ids:
            raise bad
        return GpuRequest("devices", device_ids=tuple(str(i) for i in ids))
    count = entry["count"]
    if count in ("all", -1):
        return ALL
    if isinstance(count, int) and not isinstance(count, bool) and count > 0:
        return GpuRequest("count", count=count)
    raise bad


def engine_has_nvidia(engine_info: dict[str, Any]) -> bool:
    """The engine registers the ``nvidia`` runtime, or its CDI registry lists NVIDIA devices.

    ``CDISpecDirs`` alone proves nothing: Docker ≥ 25 lists its default directories whether or
    not a spec is in them. ``DiscoveredDevices`` (newer engines) lists the devices themselves, and
    those engines serve ``--gpus`` requests through CDI when the runtime hook is absent (moby#50228).
    """
    if "nvidia" in (engine_info.get("Runtimes") or {}):
        return True
    devices = engine_info.get("DiscoveredDevices") or []
    return any(str(d.get("ID", "")).startswith("nvidia.com/gpu") for d in devices if isinstance(d, dict))


def resolve_gpus(request: GpuRequest, engine_info: dict[str, Any], *, field: str = "--gpus") -> GpuRequest:
    """``auto`` → all or none, by what the engine (``APIClient.info()``) offers; explicit requests checked."""
    has_nvidia = engine_has_nvidia(engine_info)
    if request.mode == "auto":
        return ALL if has_nvidia else NONE
    if request.uses_gpus and not has_nvidia:
        runtimes = ", ".join(sorted(engine_info.get("Runtimes") or {})) or "none listed"
        raise DockerUnavailable(
            f"{field} {request.describe()}: this Docker engine has no NVIDIA runtime (runtimes: {runtimes})",
            _TOOLKIT_HINT,
        )
    return request


def analyzer_metric_args(request: GpuRequest) -> list[str]:
    """perf_analyzer flags that add the server's GPU metrics to its CSV; only when GPUs are in use."""
    if not request.uses_gpus:
        return []
    return ["--collect-metrics", "--metrics-url", METRICS_URL, "--metrics-interval", str(METRICS_INTERVAL_MS)]


def host_has_gpu() -> bool:
    """An NVIDIA GPU on this host: the device node exists, or ``nvidia-smi -L`` lists one."""
    if DEVICE_NODE.exists():
        return True
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        done = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0 and "GPU " in done.stdout
