"""The rendered file and the engine calls agree: each lab file, read back as compose (or `docker
stack deploy`) reads it (tests/unit/compose_oracle.py), asks the docker API for exactly what
tisbench creates straight from the design: local, copy and swarm labs, GPUs, ulimits, environment."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import docker
import pytest
from bad_inputs import QUICKSTART, make_stack
from compose_oracle import container_request, lab_spec, service_request, swarm_spec

from composer.core.design import LabDesign
from composer.core.gpus import GpuRequest, parse_gpus
from composer.core.labels import COMPOSE_CONFIG_HASH
from composer.engine import swarm
from composer.engine.create import create_network, fill_volumes, start_service
from composer.labs.plan import plan_lab
from composer.labs.request import BenchRequest
from composer.labs.swarm import render_swarm_file
from composer.render.compose import render_lab

PROJECT = "lab1"
EXTRA = {"tisbench.run": "r1"}
RICH = (
    "model: seed_model\nserver:\n  host: 0.0.0.0\n  ports: {http: 18000}\n  shm_size: 256m\n"
    "  ulimits: {memlock: 1024, stack: null, nofile: 65536}\n  args: ['--log-verbose=1', '$HOME']\n"
    "  environment: {OMP_NUM_THREADS: '1', TRICKY: 'a: b $x \"q\"'}\n"
    "  volumes: ['./data:/data', 'cache:/cache:rw', {type: bind, source: ./data, target: /d2, read_only: false}]\n"
    "analyzer:\n  environment: {PA_NOTE: '日本 ${X}'}\n  volumes: ['./data:/extra']\n"
)


def _rich(tmp_path: Path, text: str = RICH) -> Path:
    stack = make_stack(tmp_path, text)
    (stack / "data").mkdir()
    (stack / "data" / "kim.json").write_text("{}")
    return stack


class RecordingAPI(docker.APIClient):  # type: ignore[misc]
    """The SDK's request builders, with every call that would reach an engine recorded instead."""

    def __init__(self) -> None:
        super().__init__(base_url="unix:///nonexistent/docker.sock", version="1.43")
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []

    def _record(self, call: str, target: Any, kwargs: dict[str, Any]) -> dict[str, str]:
        self.calls.append((call, target, kwargs))
        return {"Id": f"id-{len(self.calls)}", "ID": f"id-{len(self.calls)}"}

    def create_container(self, image: str, **kwargs: Any) -> dict[str, str]:
        return self._record("create_container", image, kwargs)

    def create_network(self, name: str, **kwargs: Any) -> dict[str, str]:
        return self._record("create_network", name, kwargs)

    def create_volume(self, name: str, **kwargs: Any) -> dict[str, str]:
        return self._record("create_volume", name, kwargs)

    def create_service(self, task_template: Any, **kwargs: Any) -> dict[str, str]:
        return self._record("create_service", None, {"task_template": task_template, **kwargs})

    def put_archive(self, container: str, path: str, data: Any) -> bool:
        self._record("put_archive", container, {"path": path})
        return True

    def start(self, container: str, **kwargs: Any) -> None:
        self._record("start", container, kwargs)

    def remove_container(self, container: str, **kwargs: Any) -> None:
        self._record("remove_container", container, kwargs)

    def version(self, api_version: bool = True) -> dict[str, str]:
        return {"Version": "28.2.2", "GitCommit": "e6534b4", "KernelVersion": "6.18.44"}

    def of(self, call: str) -> list[tuple[Any, dict[str, Any]]]:
        return [(target, kwargs) for name, target, kwargs in self.calls if name == call]


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _client(api: RecordingAPI) -> docker.DockerClient:
    return cast(docker.DockerClient, SimpleNamespace(api=api))


def _without_hash(labels: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if k != COMPOSE_CONFIG_HASH}


def _created(design: LabDesign) -> RecordingAPI:
    api = RecordingAPI()
    create_network(_client(api), design, EXTRA)
    if design.volumes:
        fill_volumes(_client(api), design, "sdk:tag", EXTRA)
    for service in design.services:
        start_service(_client(api), design, service.name, EXTRA)
    return api


def _assert_agree(design: LabDesign) -> None:
    spec = lab_spec(render_lab(design), Path(design.working_dir), Path(design.config_file))
    api = _created(design)

    ((network, net_kwargs),) = api.of("create_network")
    assert (network, net_kwargs["labels"]) == (spec.network, {**spec.network_labels, **EXTRA})
    assert [(name, kw["labels"]) for name, kw in api.of("create_volume")] == [
        (v.name, {**v.labels, **EXTRA}) for v in spec.volumes
    ]
    created = [kw | {"image": image} for image, kw in api.of("create_container") if kw["name"] != f"{PROJECT}-loader"]
    expected = [container_request(api, spec, service) for service in spec.services]
    assert len(created) == len(expected) == 2
    for made, asked in zip(created, expected, strict=True):
        assert _without_hash(made.pop("labels")) == _without_hash({**asked.pop("labels"), **EXTRA})
        assert made == asked


@pytest.mark.parametrize("gpus", [None, parse_gpus("all"), parse_gpus("2"), parse_gpus("device=0,GPU-1")])
def test_a_local_lab_is_created_as_its_compose_file_says(gpus: GpuRequest | None) -> None:
    _assert_agree(plan_lab(QUICKSTART, release="24.10", images="ngc").design(PROJECT, gpus))


def test_ports_ulimits_shm_args_and_environment_agree_too(tmp_path: Path) -> None:
    design = plan_lab(_rich(tmp_path), release="24.10", images="ngc").design(PROJECT)

    assert dict(design.service("triton_server").environment)["TRICKY"] == 'a: b $x "q"'
    _assert_agree(design)


def test_shared_memory_shares_the_servers_ipc_namespace_in_the_file_and_the_lab() -> None:
    design = plan_lab(QUICKSTART, release="24.10", images="ngc", shared_memory="system").design(PROJECT)
    assert (design.service("triton_server").ipc, design.service("perf_analyzer").ipc) == (
        "shareable",
        "service:triton_server",
    )
    text = render_lab(design)
    assert 'ipc: "shareable"' in text and 'ipc: "service:triton_server"' in text
    _assert_agree(design)  # the analyzer joins container:<project>-triton_server-1, as compose makes it


def test_shared_memory_raises_a_dev_shm_the_input_data_could_outgrow_and_says_so(tmp_path: Path) -> None:
    stack = tmp_path / "big"
    shutil.copytree(QUICKSTART, stack)
    (stack / "stack.yaml").write_text("model: seed_model\nserver:\n  shm_size: 64m\n")
    (stack / "dataset" / "input.json").write_text(" " * (2 << 20))  # 2 MiB of JSON: up to 8 MiB of regions
    plan = plan_lab(stack, release="24.10", images="ngc", shared_memory="system")
    assert plan.notes == (
        "server.shm_size raised from 64m to 72m for shared memory: dataset/input.json (2,097,152 bytes) "
        "may take up to 8,388,608 bytes of regions",
    )
    assert plan.design(PROJECT).service("triton_server").shm_size == "72m"
    assert plan_lab(stack, release="24.10", images="ngc").notes == ()  # no shared memory: as stack.yaml says


def test_a_remote_engine_lab_fills_the_volumes_its_file_names(tmp_path: Path) -> None:
    design = plan_lab(_rich(tmp_path), release="24.10", images="lab").design(PROJECT, transport="copy")

    _assert_agree(design)
    api = _created(design)
    assert [kw["path"] for _, kw in api.of("put_archive")] == [
        "/tisbench-fill/models",
        "/tisbench-fill/data",
        "/tisbench-fill/dataset",
    ]


def test_advice_the_engine_refused_before_is_left_out_of_the_file_and_the_lab(tmp_path: Path) -> None:
    plan = plan_lab(make_stack(tmp_path), release="24.10", images="lab")
    design = plan.design(PROJECT, refused=frozenset({"memlock"}))
    text = render_lab(design)

    assert "memlock: -1" not in text and "# memlock: NGC's advice, which this Docker engine refused before" in text
    _assert_agree(design)
    ((_, server), _) = [c for c in _created(design).of("create_container")]
    assert server["labels"]["tisbench.ulimits-dropped"] == "memlock"


@pytest.mark.parametrize("clients", [1, 3])
def test_a_swarm_lab_is_created_as_its_stack_file_says(tmp_path: Path, clients: int) -> None:
    plan = plan_lab(_rich(tmp_path, RICH.replace("  host: 0.0.0.0\n  ports: {http: 18000}\n", "")),
                    release="24.10", images="lab")  # fmt: skip
    design = render_swarm_file(plan, PROJECT, clients, BenchRequest()).design
    spec = swarm_spec(render_lab(design), PROJECT, Path(design.config_file))
    api = RecordingAPI()

    swarm.create_network(_client(api), design)
    made = {name: swarm.create_service(_client(api), design, name) for name in spec.services}

    ((network, net_kwargs),) = api.of("create_network")
    assert network == spec.network
    assert net_kwargs["labels"] == spec.network_labels and net_kwargs["attachable"] is spec.attachable
    services = [kw for _, kw in api.of("create_service")]
    assert services == [service_request(spec, svc) for svc in spec.services.values()]
    assert len(made) == 2 and spec.services["perf_analyzer"].replicas == clients
