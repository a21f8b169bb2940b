"""The Kubernetes lab's objects, drawn from the one lab design: what a cluster needs to run it
(Namespace, Deployment with Triton's readiness probe, Service on 8000/8001/8002, idle analyzer pods,
folders streamed into emptyDirs), values the API accepts, and bad input refused before any cluster."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from bad_inputs import make_stack
from click.testing import CliRunner

from composer.cli.app import main
from composer.labs.kube import render_kube_file
from composer.labs.plan import plan_lab
from composer.labs.request import BenchRequest
from composer.render import kubernetes as k

LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def _objects(stack: Path, clients: int = 1, **plan: Any) -> list[dict[str, Any]]:
    lab = plan_lab(stack, release="24.10", images="lab", **plan)
    return render_kube_file(lab, "kubelab", clients, BenchRequest()).objects


def _kind(made: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in made if o["kind"] == kind]


def test_objects_are_a_namespace_a_server_deployment_its_service_and_one_pod_per_client(tmp_path: Path) -> None:
    made = _objects(make_stack(tmp_path), clients=3)
    assert [o["kind"] for o in made] == ["Namespace", "Deployment", "Service", "Pod", "Pod", "Pod"]
    assert made[0]["metadata"]["name"] == "tisbench-kubelab"
    assert all(o["metadata"].get("namespace", "tisbench-kubelab") == "tisbench-kubelab" for o in made)
    pods = [p["metadata"]["name"] for p in _kind(made, "Pod")]
    assert pods == ["perf-analyzer-0", "perf-analyzer-1", "perf-analyzer-2"]


def test_the_server_is_ready_when_triton_says_so_and_serves_its_three_ports(tmp_path: Path) -> None:
    made = _objects(make_stack(tmp_path))
    deployment, service = _kind(made, "Deployment")[0], _kind(made, "Service")[0]
    pod = deployment["spec"]["template"]["spec"]
    triton = pod["containers"][0]
    assert triton["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8000}
    assert triton["command"][:2] == ["tritonserver", "--model-repository=/models"]
    assert [p["containerPort"] for p in triton["ports"]] == [8000, 8001, 8002]
    assert [p["port"] for p in service["spec"]["ports"]] == [8000, 8001, 8002]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"][
        "labels"
    ].items()
    assert pod["terminationGracePeriodSeconds"] == 0
    assert triton["imagePullPolicy"] == "Never"  # lab images are the node's own


def test_models_and_dataset_travel_into_empty_dirs_that_an_init_container_holds(tmp_path: Path) -> None:
    made = _objects(make_stack(tmp_path))
    server = _kind(made, "Deployment")[0]["spec"]["template"]["spec"]
    analyzer = _kind(made, "Pod")[0]["spec"]
    for spec, target in ((server, "/models"), (analyzer, "/workspace/dataset")):
        mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["mountPath"] == target)
        volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
        assert volume == {"name": mount["name"], "emptyDir": {}} and mount["readOnly"] is True
        fill = spec["initContainers"][0]
        assert fill["name"] == k.FILL_CONTAINER
        assert {"name": mount["name"], "mountPath": f"{k.FILL_ROOT}/{mount['name']}"} in fill["volumeMounts"]
        assert k.FILL_DONE in fill["command"][-1]
    shm = next(v for v in server["volumes"] if v.get("emptyDir", {}).get("medium") == "Memory")
    assert shm["emptyDir"]["sizeLimit"] == str(1024**3)  # server.shm_size's 1g, as a pod can have it


def test_analyzers_address_the_server_by_its_service_name(tmp_path: Path) -> None:
    lab = plan_lab(make_stack(tmp_path), release="24.10", images="lab")
    argv = render_kube_file(lab, "kubelab", 1, BenchRequest()).client.argv
    assert argv[argv.index("-u") + 1] == "triton-server:8000"
    pod = _kind(render_kube_file(lab, "kubelab", 1, BenchRequest()).objects, "Pod")[0]
    assert pod["spec"]["containers"][0]["command"] == ["sleep", "infinity"]
    assert pod["spec"]["restartPolicy"] == "Never"


def test_every_label_is_a_valid_label_value_and_paths_travel_as_annotations(tmp_path: Path) -> None:
    for obj in _objects(make_stack(tmp_path), clients=2):
        meta = obj["metadata"]
        assert DNS_LABEL.fullmatch(meta["name"])
        for value in meta["labels"].values():
            assert len(value) <= 63 and LABEL_VALUE.fullmatch(value), value
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "tisbench"
        assert meta["labels"]["tisbench.lab"] == "kubelab"
        assert meta["annotations"]["tisbench.stack"].startswith("/")


def test_a_named_volume_is_the_stacks_persistent_volume_claim(tmp_path: Path) -> None:
    stack = make_stack(tmp_path, "model: seed_model\nserver:\n  volumes: [\"people:/data\"]\n")
    spec = _kind(_objects(stack), "Deployment")[0]["spec"]["template"]["spec"]
    claims = [v for v in spec["volumes"] if "persistentVolumeClaim" in v]
    assert claims == [{"name": "v-people", "persistentVolumeClaim": {"claimName": "people", "readOnly": True}}]


def test_gpus_are_an_nvidia_gpu_limit_and_only_a_count_is_accepted(tmp_path: Path) -> None:
    stack = make_stack(tmp_path)
    triton = _kind(_objects(stack, gpus="2"), "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    assert triton["resources"] == {"limits": {"nvidia.com/gpu": 2}}
    result = CliRunner().invoke(
        main, ["render", str(stack), "--release", "24.10", "--images", "lab", "--engine", "kubernetes", "--gpus", "all"]
    )
    assert result.exit_code == 2 and "--gpus N" in result.stderr


def test_a_namespace_the_user_names_is_used_not_created(tmp_path: Path) -> None:
    lab = plan_lab(make_stack(tmp_path), release="24.10", images="lab")
    made = render_kube_file(lab, "kubelab", 1, BenchRequest(), namespace="perf").objects
    assert "Namespace" not in [o["kind"] for o in made]
    assert {o["metadata"]["namespace"] for o in made} == {"perf"}


def test_render_prints_the_manifests_as_one_yaml_file_without_a_cluster(tmp_path: Path) -> None:
    args = ["render", str(make_stack(tmp_path)), "--release", "24.10", "--images", "lab", "--engine", "kubernetes"]
    result = CliRunner().invoke(main, [*args, "--clients", "2"], env={"KUBECONFIG": str(tmp_path / "none")})
    assert result.exit_code == 0, result.output
    documents = list(yaml.safe_load_all(result.stdout))
    assert [d["kind"] for d in documents] == ["Namespace", "Deployment", "Service", "Pod", "Pod"]
    assert "&id" not in result.stdout  # every object written out in full


@pytest.mark.parametrize(
    ("extra", "expect"),
    [
        (["--namespace", "Bad_NS", "--engine", "kubernetes"], "--namespace 'Bad_NS' is not a namespace name"),
        (["--namespace", "perf"], "--namespace needs --engine kubernetes"),
        (["--kube-context", "x"], "--kube-context needs --engine kubernetes"),
        (["--engine", "kubernetes", "--shared-memory", "system"], "shared memory system with --engine kubernetes"),
    ],
)
def test_bad_kubernetes_input_is_one_line_and_exit_2(tmp_path: Path, extra: list[str], expect: str) -> None:
    args = ["render", str(make_stack(tmp_path)), "--release", "24.10", "--images", "lab", *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert expect in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_many_clients_cannot_repeat_or_compare_transports_and_say_so_before_any_cluster(tmp_path: Path) -> None:
    args = ["lab", str(make_stack(tmp_path)), "--release", "24.10", "--images", "lab", "--engine", "kubernetes",
            "--clients", "2"]  # fmt: skip
    env = {"KUBECONFIG": str(tmp_path / "absent")}  # never read: the refusal comes first
    for extra, expect in ((["--repeat", "2"], "--repeat 2 with --clients 2"),
                          (["--protocol", "http,grpc"], "--protocol http,grpc with --clients 2")):  # fmt: skip
        result = CliRunner().invoke(main, [*args, *extra], env=env)
        assert result.exit_code == 2, result.output
        assert expect in result.stderr and len(result.stderr.strip().splitlines()) == 1
