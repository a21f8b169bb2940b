"""What a lab asks the engine for: the rendered compose file as compose reads it (the oracle,
tests/unit/compose_oracle.py), the design's own requests to the docker API, recorded by a fake
APIClient (the SDK's own request builders, no engine), and the two held equal."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import docker
import docker.errors
import pytest
import requests
from bad_inputs import QUICKSTART, make_stack
from compose_oracle import COMPOSE_VERSION, LabSpec, Mount, PortBinding, lab_spec

from composer.core.design import LabDesign
from composer.core.errors import StackError
from composer.core.gpus import GpuRequest, parse_gpus
from composer.core.triton import NETWORK
from composer.engine.containers import LAB_LABEL
from composer.engine.create import create_network, start_service
from composer.labs.plan import plan_lab
from composer.render.compose import render_lab

PROJECT = "lab1"
CONFIG_FILE = Path("/runs/lab1/docker-compose.yml")


def _design(stack: Path, *, gpus: GpuRequest | None = None, transport: str = "bind") -> LabDesign:
    plan = plan_lab(stack, release="24.10", images="ngc")
    return plan.design(PROJECT, gpus, transport)


def _spec(stack: Path, *, gpus: GpuRequest | None = None, transport: str = "bind") -> LabSpec:
    """The lab as compose reads its rendered file (the run area's path, as tisbench writes it)."""
    return lab_spec(render_lab(_design(stack, gpus=gpus, transport=transport)), stack, CONFIG_FILE)


def _service(spec: LabSpec, name: str) -> Any:
    return next(s for s in spec.services if s.service == name)


# ------------------------------------------------------------------------------- lab_spec (pure)


def test_the_quickstart_asks_for_a_server_and_an_idle_analyzer_on_one_network() -> None:
    spec = _spec(QUICKSTART)

    assert spec.project == PROJECT
    assert spec.network == f"{PROJECT}_{NETWORK}"
    assert [s.service for s in spec.services] == ["triton_server", "perf_analyzer"]
    assert [s.container_name for s in spec.services] == [f"{PROJECT}-triton_server-1", f"{PROJECT}-perf_analyzer-1"]
    assert spec.volumes == []


def test_the_server_mounts_the_models_read_only_and_publishes_three_ephemeral_loopback_ports() -> None:
    server = _service(_spec(QUICKSTART), "triton_server")

    assert server.image == "nvcr.io/nvidia/tritonserver:24.10-py3"
    assert server.command == ["tritonserver", "--model-repository=/models"]
    assert server.entrypoint is None
    assert server.mounts == [Mount(str(QUICKSTART / "models"), "/models", True, "bind")]
    assert server.ports == [PortBinding(port, "127.0.0.1", None) for port in (8000, 8001, 8002)]
    assert server.shm_size == "1g"
    assert server.gpus.mode == "none"


def test_the_server_asks_for_ngcs_ulimits_as_advice() -> None:
    server = _service(_spec(QUICKSTART), "triton_server")

    assert server.ulimits == {"memlock": -1, "stack": 67108864}
    assert server.labels["tisbench.ulimits-advisory"] == "memlock,stack"


def test_the_analyzer_idles_in_the_workspace_with_the_dataset_and_no_ports() -> None:
    analyzer = _service(_spec(QUICKSTART), "perf_analyzer")

    assert analyzer.image == "nvcr.io/nvidia/tritonserver:24.10-py3-sdk"
    assert analyzer.entrypoint == ["sleep", "infinity"]
    assert analyzer.stop_signal == "SIGKILL"
    assert analyzer.working_dir == "/workspace"
    assert analyzer.mounts == [Mount(str(QUICKSTART / "dataset"), "/workspace/dataset", True, "bind")]
    assert analyzer.ports == [] and analyzer.ulimits == {}


def test_every_object_carries_composes_labels_and_the_labs_own() -> None:
    spec = _spec(QUICKSTART)
    compose = {
        "com.docker.compose.project": PROJECT,
        "com.docker.compose.project.working_dir": str(QUICKSTART),
        "com.docker.compose.project.config_files": str(CONFIG_FILE),
        "com.docker.compose.version": COMPOSE_VERSION,
    }

    assert spec.network_labels == {**compose, "com.docker.compose.network": NETWORK, **_lab_labels(spec)}
    for service in spec.services:
        assert service.labels.items() >= {**compose, LAB_LABEL: PROJECT}.items()
        assert service.labels["com.docker.compose.service"] == service.service
        assert service.labels["com.docker.compose.oneoff"] == "False"
        assert service.labels["com.docker.compose.container-number"] == "1"
        assert len(service.labels["com.docker.compose.config-hash"]) == 64


def _lab_labels(spec: LabSpec) -> dict[str, str]:
    return {k: v for k, v in spec.network_labels.items() if k.startswith("tisbench.")}


def test_the_config_hash_changes_with_the_service_and_only_with_it() -> None:
    first, again = _spec(QUICKSTART), _spec(QUICKSTART)
    hashes = {s.labels["com.docker.compose.config-hash"] for s in first.services}

    assert hashes == {s.labels["com.docker.compose.config-hash"] for s in again.services}
    assert len(hashes) == 2


def test_a_stack_with_gpus_fixed_ports_and_its_own_ulimits_asks_for_them(tmp_path: Path) -> None:
    stack = make_stack(
        tmp_path,
        "model: seed_model\nserver:\n  host: 0.0.0.0\n  ports: {http: 18000}\n  shm_size: 256m\n"
        "  ulimits: {memlock: 1024, stack: null, nofile: 65536}\n",
    )

    server = _service(_spec(stack, gpus=parse_gpus("device=0,1")), "triton_server")

    assert server.gpus == GpuRequest("devices", device_ids=("0", "1"))
    assert server.ports == [
        PortBinding(8000, "0.0.0.0", 18000),
        PortBinding(8001, "0.0.0.0", None),
        PortBinding(8002, "0.0.0.0", None),
    ]
    assert server.shm_size == "256m"
    assert server.ulimits == {"memlock": 1024, "nofile": 65536}
    assert "tisbench.ulimits-advisory" not in server.labels  # each one is the stack's own


def test_all_gpus_and_a_count_reach_the_spec() -> None:
    assert _service(_spec(QUICKSTART, gpus=parse_gpus("all")), "triton_server").gpus.mode == "all"
    assert _service(_spec(QUICKSTART, gpus=parse_gpus("2")), "triton_server").gpus == GpuRequest("count", 2)


def test_copy_transport_mounts_project_volumes_and_asks_for_them_labelled() -> None:
    spec = _spec(QUICKSTART, transport="copy")

    assert _service(spec, "triton_server").mounts == [Mount(f"{PROJECT}_models", "/models", True, "volume")]
    assert _service(spec, "perf_analyzer").mounts == [Mount(f"{PROJECT}_dataset", "/workspace/dataset", True, "volume")]
    assert [(v.key, v.name) for v in spec.volumes] == [
        ("models", f"{PROJECT}_models"),
        ("dataset", f"{PROJECT}_dataset"),
    ]
    for volume in spec.volumes:
        assert volume.labels["com.docker.compose.volume"] == volume.key
        assert volume.labels[LAB_LABEL] == PROJECT


@pytest.mark.parametrize("text", ["not: [closed", "services: {}\n", "- a list\n"])
def test_a_file_that_is_not_a_tisbench_compose_file_is_a_stack_error(text: str) -> None:
    with pytest.raises(StackError) as caught:
        lab_spec(text, QUICKSTART, CONFIG_FILE)

    assert caught.value.message.startswith(f"{CONFIG_FILE}: not a tisbench compose file")


# ---------------------------------------------------------------- the requests, on a fake APIClient


class RecordingAPI(docker.APIClient):  # type: ignore[misc]
    """The SDK's request builders (host config, networking config) with the calls that would reach
    an engine recorded instead; ``refuse`` answers create_container with an engine refusal."""

    def __init__(self, refuse: list[str] | None = None) -> None:
        super().__init__(base_url="unix:///nonexistent/docker.sock", version="1.43")
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []
        self.refuse = list(refuse or [])

    def create_container(self, image: str, **kwargs: Any) -> dict[str, str]:
        self.calls.append(("create_container", image, kwargs))
        if self.refuse:
            response = requests.Response()
            response.status_code = 500
            raise docker.errors.APIError("refused", response, explanation=self.refuse.pop(0))
        return {"Id": f"id-{len(self.calls)}"}

    def start(self, container: str, **kwargs: Any) -> None:
        self.calls.append(("start", container, kwargs))

    def version(self, api_version: bool = True) -> dict[str, str]:
        return {"Version": "28.2.2", "GitCommit": "e6534b4", "KernelVersion": "6.18.44"}

    def remove_container(self, container: str, **kwargs: Any) -> None:
        self.calls.append(("remove_container", container, kwargs))

    def create_network(self, name: str, **kwargs: Any) -> dict[str, str]:
        self.calls.append(("create_network", name, kwargs))
        return {"Id": "net"}


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What engines refused is remembered under XDG_CACHE_HOME: never the user's own here."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _client(api: RecordingAPI) -> docker.DockerClient:
    return cast(docker.DockerClient, SimpleNamespace(api=api))


def test_the_network_is_a_labelled_bridge_that_refuses_a_duplicate() -> None:
    api = RecordingAPI()
    design = _design(QUICKSTART)

    create_network(_client(api), design, {"tisbench.run": "r1"})

    ((call, name, kwargs),) = api.calls
    assert (call, name) == ("create_network", f"{PROJECT}_{NETWORK}")
    assert kwargs == {
        "driver": "bridge",
        "labels": {**design.network_labels(), "tisbench.run": "r1"},
        "check_duplicate": True,
    }


def test_the_server_is_created_with_its_mounts_ports_ulimits_and_aliases_then_started() -> None:
    api = RecordingAPI()
    design = _design(QUICKSTART)

    container = start_service(_client(api), design, "triton_server", {"tisbench.run": "r1"})

    (create, start) = api.calls
    assert start == ("start", "id-1", {}) and container == "id-1"
    image, kwargs = create[1], create[2]
    host = kwargs["host_config"]
    assert image == "nvcr.io/nvidia/tritonserver:24.10-py3"
    assert kwargs["name"] == f"{PROJECT}-triton_server-1"
    assert kwargs["labels"]["tisbench.run"] == "r1" and kwargs["labels"][LAB_LABEL] == PROJECT
    assert kwargs["ports"] == [8000, 8001, 8002]
    assert host["PortBindings"] == {f"{p}/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}] for p in (8000, 8001, 8002)}
    assert host["Mounts"] == [
        {"Target": "/models", "Source": str(QUICKSTART / "models"), "Type": "bind", "ReadOnly": True}
    ]
    assert host["Ulimits"] == [
        {"Name": "memlock", "Soft": -1, "Hard": -1},
        {"Name": "stack", "Soft": 67108864, "Hard": 67108864},
    ]
    assert host["ShmSize"] == 1 << 30 and host["NetworkMode"] == design.network_name
    assert "DeviceRequests" not in host
    aliases = kwargs["networking_config"]["EndpointsConfig"][design.network_name]["Aliases"]
    assert aliases == ["triton_server", f"{PROJECT}-triton_server-1"]


def test_a_gpu_server_asks_the_engine_for_nvidia_devices() -> None:
    api = RecordingAPI()

    start_service(_client(api), _design(QUICKSTART, gpus=parse_gpus("device=1")), "triton_server", {})

    (requested,) = api.calls[0][2]["host_config"]["DeviceRequests"]
    assert requested["Driver"] == "nvidia" and requested["DeviceIDs"] == ["1"]
    assert requested["Capabilities"] == [["gpu"]]


def test_an_advisory_ulimit_the_engine_refuses_is_dropped_said_and_recorded() -> None:
    refusal = (  # runc's refusal on a rootless engine
        "failed to create shim task: OCI runtime create failed: runc create failed: unable to start container "
        "process: error during container init: error setting rlimit type 8: operation not permitted: unknown"
    )
    api = RecordingAPI(refuse=[refusal])
    said: list[str] = []

    start_service(_client(api), _design(QUICKSTART), "triton_server", {}, said.append)

    first, second = (c for c in api.calls if c[0] == "create_container")
    assert [u["Name"] for u in first[2]["host_config"]["Ulimits"]] == ["memlock", "stack"]
    assert [u["Name"] for u in second[2]["host_config"]["Ulimits"]] == ["stack"]
    assert second[2]["labels"]["tisbench.ulimits-dropped"] == "memlock"
    assert len(said) == 1 and "memlock=-1" in said[0]

    # the next lab on this engine asks for it no more: no failed start to learn it again
    again = RecordingAPI()
    said.clear()
    start_service(_client(again), _design(QUICKSTART), "triton_server", {}, said.append)
    (create,) = (c for c in again.calls if c[0] == "create_container")
    assert [u["Name"] for u in create[2]["host_config"]["Ulimits"]] == ["stack"]
    assert create[2]["labels"]["tisbench.ulimits-dropped"] == "memlock"
    assert len(said) == 1 and "cannot grant ulimit memlock=-1" in said[0] and "refused it before" in said[0]


def test_a_ulimit_the_stack_set_itself_is_never_dropped(tmp_path: Path) -> None:
    stack = make_stack(tmp_path, "model: seed_model\nserver:\n  ulimits: {memlock: -1}\n")
    api = RecordingAPI(refuse=["error setting rlimit type 8: operation not permitted"])

    with pytest.raises(StackError) as caught:
        start_service(_client(api), _design(stack), "triton_server", {})

    assert caught.value.message.startswith("server.ulimits.memlock: this Docker engine cannot grant memlock=-1")
    assert [c[0] for c in api.calls] == ["create_container"]
