"""--gpus: parsing, the compose and SDK spellings of one request, resolution against an engine."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import docker.errors
import pytest
import yaml
from compose_check import compose_config as run_compose_config
from compose_check import require_compose

from composer.analyzer.perf_analyzer import SERVER_HOST
from composer.core import gpus
from composer.core.errors import DockerUnavailable, StackError, UsageError
from composer.core.gpus import GpuRequest, analyzer_metric_args, parse_gpus, resolve_gpus
from composer.core.triton import SERVER_PORTS
from composer.engine.gpus import device_requests, resolve_on

NVIDIA_ENGINE: dict[str, Any] = {
    "Runtimes": {
        "io.containerd.runc.v2": {"path": "runc"},
        "nvidia": {"path": "nvidia-container-runtime"},
        "runc": {"path": "runc"},
    },
    "DefaultRuntime": "runc",
}
PLAIN_ENGINE: dict[str, Any] = {  # this machine's engine: no NVIDIA runtime, no CDI
    "Runtimes": {"io.containerd.runc.v2": {"path": "runc"}, "runc": {"path": "runc"}},
    "DefaultRuntime": "runc",
    "CDISpecDirs": None,
    "DiscoveredDevices": None,
}
CDI_ENGINE: dict[str, Any] = {
    "Runtimes": {"runc": {"path": "runc"}},
    "CDISpecDirs": ["/etc/cdi", "/var/run/cdi"],
    "DiscoveredDevices": [{"Source": "cdi", "ID": "nvidia.com/gpu=0"}, {"Source": "cdi", "ID": "nvidia.com/gpu=all"}],
}
UUID_A, UUID_B = "GPU-1d8c0e2a-5b6f-4c3d-9e8f-0a1b2c3d4e5f", "GPU-7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2910"

# (--gpus text, request, compose devices entry, DeviceRequest as the engine API receives it)
FORMS = [
    pytest.param("none", GpuRequest("none"), [], [], id="none"),
    pytest.param(
        "all",
        GpuRequest("all"),
        [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}],
        [{"Driver": "nvidia", "Count": -1, "DeviceIDs": [], "Capabilities": [["gpu"]], "Options": {}}],
        id="all",
    ),
    pytest.param(
        "2",
        GpuRequest("count", count=2),
        [{"driver": "nvidia", "count": 2, "capabilities": ["gpu"]}],
        [{"Driver": "nvidia", "Count": 2, "DeviceIDs": [], "Capabilities": [["gpu"]], "Options": {}}],
        id="count",
    ),
    pytest.param(
        "device=0,1",
        GpuRequest("devices", device_ids=("0", "1")),
        [{"driver": "nvidia", "device_ids": ["0", "1"], "capabilities": ["gpu"]}],
        [{"Driver": "nvidia", "Count": 0, "DeviceIDs": ["0", "1"], "Capabilities": [["gpu"]], "Options": {}}],
        id="device-indexes",
    ),
    pytest.param(
        f"device={UUID_A},{UUID_B}",
        GpuRequest("devices", device_ids=(UUID_A, UUID_B)),
        [{"driver": "nvidia", "device_ids": [UUID_A, UUID_B], "capabilities": ["gpu"]}],
        [{"Driver": "nvidia", "Count": 0, "DeviceIDs": [UUID_A, UUID_B], "Capabilities": [["gpu"]], "Options": {}}],
        id="device-uuids",
    ),
    pytest.param(
        "device=MIG-GPU-1d8c/1/0",
        GpuRequest("devices", device_ids=("MIG-GPU-1d8c/1/0",)),
        [{"driver": "nvidia", "device_ids": ["MIG-GPU-1d8c/1/0"], "capabilities": ["gpu"]}],
        [{"Driver": "nvidia", "Count": 0, "DeviceIDs": ["MIG-GPU-1d8c/1/0"], "Capabilities": [["gpu"]], "Options": {}}],
        id="device-mig",
    ),
]


@pytest.mark.parametrize(("text", "request_", "compose", "api"), FORMS)
def test_each_gpus_form_gives_matching_compose_devices_and_device_requests(
    text: str, request_: GpuRequest, compose: list[dict[str, Any]], api: list[dict[str, Any]]
) -> None:
    parsed = parse_gpus(text)
    assert parsed == request_
    assert parsed.compose_devices() == compose
    assert [dict(r) for r in device_requests(parsed)] == api


@pytest.mark.parametrize("text", ['"device=0,1"', "'device=0,1'", " device = 0 , 1 ", "DEVICE=0,1"])
def test_docker_quoted_and_spaced_device_forms_are_tolerated(text: str) -> None:
    assert parse_gpus(text) == GpuRequest("devices", device_ids=("0", "1"))


@pytest.mark.parametrize("text", ["ALL", " all ", '"all"', "None", "Auto"])
def test_keywords_ignore_case_space_and_quotes(text: str) -> None:
    assert parse_gpus(text).mode == text.strip().strip('"').lower()


def test_no_value_means_auto() -> None:
    assert parse_gpus(None) == GpuRequest("auto")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "  ",
        "two",
        "-1",
        "+2",
        "1.5",
        "²",
        "count=2",
        "all,capabilities=utility",
        "device=",
        "device=0,,1",
        "device=0,0",
        "device=0 1",
        "device=0;rm",
        "devices=0",
        "gpu=0",
        '"device=0,1',
    ],
)
def test_bad_gpus_values_are_usage_errors_naming_the_field_and_the_forms(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_gpus(text)
    assert caught.value.exit_code == 2
    assert caught.value.message.startswith("--gpus: ")
    assert "auto, none, all" in (caught.value.hint or "") and "device=" in (caught.value.hint or "")


def test_zero_gpus_points_at_none() -> None:
    with pytest.raises(UsageError) as caught:
        parse_gpus("0")
    assert caught.value.hint == "pass --gpus none to run without GPUs"


def test_error_names_the_field_it_came_from() -> None:
    with pytest.raises(UsageError, match=r"^stack.yaml: server.gpus: 'many' is not a GPU request"):
        parse_gpus("many", field="stack.yaml: server.gpus")


def test_unresolved_auto_cannot_be_rendered_or_created() -> None:
    with pytest.raises(ValueError, match="resolve_gpus"):
        GpuRequest("auto").compose_devices()
    with pytest.raises(ValueError, match="resolve_gpus"):
        device_requests(GpuRequest("auto"))


@pytest.mark.parametrize(
    ("text", "shown"),
    [("all", "all"), ("none", "none"), ("3", "3"), ("device=0,1", "device=0,1"), ('"device=1"', "device=1")],
)
def test_describe_writes_the_request_back_as_a_user_would(text: str, shown: str) -> None:
    assert parse_gpus(text).describe() == shown


# ------------------------------------------------------------------------------------ resolution


@pytest.mark.parametrize(
    ("info", "mode"),
    [
        pytest.param(NVIDIA_ENGINE, "all", id="nvidia-runtime"),
        pytest.param(CDI_ENGINE, "all", id="cdi-nvidia-devices"),
        pytest.param(PLAIN_ENGINE, "none", id="runc-only"),
        pytest.param(
            {"Runtimes": {"runc": {}}, "CDISpecDirs": ["/etc/cdi", "/var/run/cdi"], "DiscoveredDevices": []},
            "none",
            id="cdi-dirs-without-devices",
        ),
        pytest.param(
            {"Runtimes": {"runc": {}}, "DiscoveredDevices": [{"Source": "cdi", "ID": "vendor.com/fpga=0"}]},
            "none",
            id="cdi-other-vendor",
        ),
        pytest.param({}, "none", id="bare-info"),
    ],
)
def test_auto_takes_all_gpus_only_when_the_engine_can_give_nvidia_gpus(info: dict[str, Any], mode: str) -> None:
    assert resolve_gpus(parse_gpus(None), info).mode == mode


@pytest.mark.parametrize("text", ["all", "1", "device=0,1"])
def test_explicit_request_on_an_engine_without_nvidia_is_exit_3_with_the_toolkit_hint(text: str) -> None:
    with pytest.raises(DockerUnavailable) as caught:
        resolve_gpus(parse_gpus(text), PLAIN_ENGINE)
    error = caught.value
    assert error.exit_code == 3
    assert error.message == (
        f"--gpus {parse_gpus(text).describe()}: this Docker engine has no NVIDIA runtime "
        "(runtimes: io.containerd.runc.v2, runc)"
    )
    assert "NVIDIA Container Toolkit" in (error.hint or "")
    assert "nvidia-ctk runtime configure --runtime=docker" in (error.hint or "")
    assert "\n" not in error.one_line()


@pytest.mark.parametrize("text", ["all", "2", "device=0,1", "none"])
def test_explicit_request_on_an_nvidia_engine_is_kept_as_asked(text: str) -> None:
    assert resolve_gpus(parse_gpus(text), NVIDIA_ENGINE) == parse_gpus(text)
    assert resolve_gpus(parse_gpus(text), CDI_ENGINE) == parse_gpus(text)


def test_none_is_fine_on_any_engine() -> None:
    assert resolve_gpus(parse_gpus("none"), PLAIN_ENGINE).mode == "none"


class _FakeApi:
    def __init__(self, info: dict[str, Any] | Exception) -> None:
        self._info = info
        self.calls = 0

    def info(self) -> dict[str, Any]:
        self.calls += 1
        if isinstance(self._info, Exception):
            raise self._info
        return self._info


class _FakeClient:
    def __init__(self, info: dict[str, Any] | Exception) -> None:
        self.api = _FakeApi(info)


def test_resolve_on_asks_the_engine_for_its_info() -> None:
    client = _FakeClient(NVIDIA_ENGINE)
    assert resolve_on(client, parse_gpus(None)).mode == "all"
    assert client.api.calls == 1


def test_resolve_on_with_none_does_not_ask_the_engine() -> None:
    client = _FakeClient(docker.errors.DockerException("down"))
    assert resolve_on(client, parse_gpus("none")).mode == "none"
    assert client.api.calls == 0


def test_resolve_on_an_unreachable_engine_is_exit_3() -> None:
    client = _FakeClient(docker.errors.DockerException("connection refused"))
    with pytest.raises(DockerUnavailable, match="cannot ask the Docker engine") as caught:
        resolve_on(client, parse_gpus("all"))
    assert caught.value.exit_code == 3


# ------------------------------------------------------------------------------ perf_analyzer


def test_analyzer_collects_server_gpu_metrics_only_when_gpus_are_used() -> None:
    expected = ["--collect-metrics", "--metrics-url", "triton_server:8002/metrics", "--metrics-interval", "1000"]
    assert analyzer_metric_args(parse_gpus("all")) == expected
    assert analyzer_metric_args(parse_gpus("device=1")) == expected
    assert analyzer_metric_args(parse_gpus("none")) == []
    assert analyzer_metric_args(parse_gpus(None)) == []  # unresolved: nothing known to be in use


def test_metrics_url_is_the_server_service_and_metrics_port_of_the_lab() -> None:
    assert gpus.METRICS_URL == f"{SERVER_HOST}:{SERVER_PORTS['metrics']}/metrics"


# ------------------------------------------------------------------------------------- host probe


def _fake_smi(tmp_path: Path, exit_code: int, output: str) -> Path:
    script = tmp_path / "nvidia-smi"
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' '{output}'\nexit {exit_code}\n")
    script.chmod(0o755)
    return script


@pytest.mark.parametrize(
    ("exit_code", "output", "found"),
    [
        (0, f"GPU 0: NVIDIA A100-SXM4-40GB (UUID: {UUID_A})", True),
        (9, "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.", False),
        (0, "No devices were found", False),
    ],
)
def test_host_has_gpu_asks_nvidia_smi_when_there_is_no_device_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exit_code: int, output: str, found: bool
) -> None:
    smi = _fake_smi(tmp_path, exit_code, output)
    monkeypatch.setattr(gpus, "DEVICE_NODE", tmp_path / "nvidia0")
    monkeypatch.setattr(shutil, "which", lambda name: str(smi) if name == "nvidia-smi" else None)
    assert gpus.host_has_gpu() is found


def test_host_has_gpu_sees_the_device_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node = tmp_path / "nvidia0"
    node.touch()
    monkeypatch.setattr(gpus, "DEVICE_NODE", node)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert gpus.host_has_gpu() is True


def test_host_without_node_or_nvidia_smi_has_no_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpus, "DEVICE_NODE", tmp_path / "nvidia0")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert gpus.host_has_gpu() is False


# ------------------------------------------------------------------------- the real compose


def _compose_config(tmp_path: Path, devices: list[dict[str, Any]]) -> dict[str, Any]:
    require_compose()
    file = tmp_path / "docker-compose.yml"
    service = {"image": "busybox", "deploy": {"resources": {"reservations": {"devices": devices}}}}
    file.write_text(yaml.safe_dump({"name": "gpucheck", "services": {"triton_server": service}}), encoding="utf-8")
    config = run_compose_config(file)
    reservations = config["services"]["triton_server"]["deploy"]["resources"]["reservations"]
    assert isinstance(reservations, dict)
    return reservations


def test_real_compose_accepts_device_ids_and_keeps_them(tmp_path: Path) -> None:
    request = parse_gpus("device=0,1")
    devices = _compose_config(tmp_path, request.compose_devices())["devices"]
    assert devices == [{"driver": "nvidia", "device_ids": ["0", "1"], "capabilities": ["gpu"]}]
    assert devices[0]["device_ids"] == dict(device_requests(request)[0])["DeviceIDs"]


@pytest.mark.parametrize("text", ["all", "2"])
def test_real_compose_reads_the_count_the_sdk_sends(tmp_path: Path, text: str) -> None:
    """compose turns count "all" into -1: the DeviceRequest count for all GPUs."""
    request = parse_gpus(text)
    devices = _compose_config(tmp_path, request.compose_devices())["devices"]
    assert [d["count"] for d in devices] == [dict(r)["Count"] for r in device_requests(request)]
    assert devices[0]["driver"] == "nvidia" and devices[0]["capabilities"] == ["gpu"]


# ------------------------------------------------------------------- reading the file back


@pytest.mark.parametrize("text", ["none", "all", "3", "device=0,1", f"device={UUID_A}"])
def test_compose_devices_read_back_give_the_same_request(text: str) -> None:
    request = parse_gpus(text)
    assert gpus.from_compose_devices(request.compose_devices()) == request


def test_compose_devices_read_back_through_yaml_and_compose_normal_form() -> None:
    assert gpus.from_compose_devices(None) == GpuRequest("none")
    assert gpus.from_compose_devices([{"driver": "nvidia", "count": -1, "capabilities": ["gpu"]}]).mode == "all"
    text = yaml.safe_dump({"devices": parse_gpus("device=0,1").compose_devices()})
    assert gpus.from_compose_devices(yaml.safe_load(text)["devices"]).device_ids == ("0", "1")


@pytest.mark.parametrize(
    "devices",
    [
        [{"driver": "amd", "count": 1}],
        [{"driver": "nvidia", "count": 1, "device_ids": ["0"]}],
        [{"driver": "nvidia"}],
        [{"driver": "nvidia", "count": 0}],
        [{"driver": "nvidia", "count": True}],
        [{"driver": "nvidia", "device_ids": []}],
        [{"driver": "nvidia", "count": 1}, {"driver": "nvidia", "count": 1}],
        {"driver": "nvidia", "count": 1},
    ],
)
def test_a_hand_edited_reservation_tisbench_did_not_write_is_a_stack_error(devices: Any) -> None:
    with pytest.raises(StackError, match=r"^triton_server: deploy.resources.reservations.devices") as caught:
        gpus.from_compose_devices(devices)
    assert caught.value.exit_code == 4
