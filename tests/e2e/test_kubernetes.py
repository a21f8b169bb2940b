"""`--engine kubernetes` on a real cluster: the project's own Kubernetes 1.20.2 (scripts/kube/,
apiserver on loopback with TLS, a kubelet on this machine's Docker engine), real Triton and real
perf_analyzer in pods, everything through the API.

The cluster has no kube-proxy and no DNS, so the lab says it reaches the server by its pod's
address and records that; what it renders addresses the server by its Service name, as a real
cluster wants. After the module, nothing of the cluster is left: its processes are stopped by pid
and its pod containers removed (kube_cluster.stop_cluster).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from .kube_cluster import ClusterInfo, KubeClusterUnavailable, start_cluster, stop_cluster
from .support import E2E_STACKS, QUICKSTART, RELEASE, CliProcess, CliResult, copy_stack, run_cli, unavailable

pytestmark = pytest.mark.docker

LAB_TIMEOUT = 300
POD_LABEL = "io.kubernetes.pod.namespace"
PAUSE_IMAGE = "tisbench-kube/pause:3.2"  # cluster.sh imports it from the static pause binary
LOCAL_RUN_FILES = {
    "manifest.json",
    "summary.json",
    "perf_analyzer.csv",
    "profile_export.json",
    "server_metrics.json",
    "report.md",
    "report.html",
    "logs/triton_server.log",
    "logs/perf_analyzer.log",
}


def _host_facts(client: docker.DockerClient) -> tuple[str, set[str]]:
    """The host's iptables rules and the engine's images: the cluster may change neither."""
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True, check=False).stdout
    rules = "\n".join(line for line in rules.splitlines() if not line.startswith(("#", ":")))  # no counters
    return rules, {image.id for image in client.images.list()}


@pytest.fixture(scope="module")
def cluster(docker_client: docker.DockerClient) -> Iterator[ClusterInfo]:
    """The project's own cluster, started fresh for this module and stopped after it."""
    rules, images = _host_facts(docker_client)
    try:
        info = start_cluster()
    except KubeClusterUnavailable as exc:
        unavailable(str(exc))
    try:
        yield info
    finally:
        stop_cluster(info.dir)
    left = docker_client.containers.list(all=True, filters={"label": POD_LABEL})
    assert not left, f"pod containers left after the cluster stopped: {[c.name for c in left]}"
    after_rules, after_images = _host_facts(docker_client)
    assert after_rules == rules, "the host's iptables rules changed"
    assert images <= after_images, "an image was removed"
    pause = docker_client.images.get(PAUSE_IMAGE).id
    assert after_images - images <= {pause}, "only the cluster's own pause image may be added"


def _kube(cluster: ClusterInfo, args: list[object], cwd: Path, timeout: float = LAB_TIMEOUT) -> CliResult:
    return run_cli(args, cwd=cwd, env={"KUBECONFIG": str(cluster.kubeconfig)}, timeout=timeout)


def _lab(cluster: ClusterInfo, stack: Path, out: Path, *extra: object) -> CliResult:
    args = ["lab", stack, "--engine", "kubernetes", "--images", "lab", "--release", RELEASE, "--out", out, *extra]
    return _kube(cluster, args, stack.parent)


def _namespaces(cluster: ClusterInfo) -> list[str]:
    done = subprocess.run(
        ["kubectl", "get", "namespaces", "-l", "app.kubernetes.io/managed-by=tisbench", "-o", "name"],
        env=cluster.env(), capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    return done.stdout.split()


def _manifest(run: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((run / "manifest.json").read_text())
    return document


def test_quickstart_lab_has_a_local_labs_run_directory_and_leaves_nothing(
    cluster: ClusterInfo, tmp_path: Path
) -> None:
    stack = copy_stack(QUICKSTART, tmp_path / "e2e-kube-quick")
    run = tmp_path / "run"

    result = _lab(cluster, stack, run)

    assert result.exit_code == 0, result
    files = {str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()}
    assert LOCAL_RUN_FILES <= files, sorted(LOCAL_RUN_FILES - files)
    manifest = _manifest(run)
    assert manifest["status"] == "ok" and manifest["engine"] == "kubernetes"
    assert manifest["kubernetes"]["version"] == "v1.20.2"
    assert manifest["kubernetes"]["node"]["name"] == "localhost"
    pods = manifest["pods"]
    assert any(name.startswith("triton-server-") for name in pods) and "perf-analyzer-0" in pods
    assert all(p["image_ids"] for p in pods.values())  # the digests the node ran
    # no kube-proxy and no DNS here: said, and the pod's address recorded, never silently
    address = manifest["server_address"]
    assert address["by"] == "pod address" and address["service"] == "triton-server", address
    # known from the API, so no pod looked the name up: without cluster DNS a pod asks the node's resolver
    assert address["why"].startswith("no cluster DNS service"), address
    assert "reach triton_server at its pod address" in result.stderr
    assert f"{address['used']}:8000" in manifest["perf_analyzer_argv"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["rows"] and summary["rows"][0]["throughput_infer_per_sec"] > 0
    metrics = json.loads((run / "server_metrics.json").read_text())
    assert metrics["points"], "the server's metrics per sweep point, through the port-forward"
    assert "Started HTTPService" in (run / "logs" / "triton_server.log").read_text()
    assert _namespaces(cluster) == []
    assert not (stack / ".tisbench").exists() or not any((stack / ".tisbench").iterdir())


def test_one_analyzer_pod_repeats_sweeps_and_compares_transports_as_on_one_engine(
    cluster: ClusterInfo, tmp_path: Path
) -> None:
    stack = copy_stack(QUICKSTART, tmp_path / "e2e-kube-transports")
    run = tmp_path / "run"

    result = _lab(cluster, stack, run, "--repeat", "2", "--protocol", "http,grpc")

    assert result.exit_code in (0, 7), result  # 7: a point that never settled, kept and said
    summary = json.loads((run / "summary.json").read_text())
    assert summary["repeats"] == 2
    assert [t["transport"] for t in summary["transports"]] == ["http", "grpc"]
    assert (run / "repeats" / "repeat-2" / "perf_analyzer.csv").is_file()
    assert [a["attempt"] for a in _manifest(run)["attempts"]][:4] == [1, 2, 3, 4]  # one attempt each at least


def test_two_clients_are_merged_as_swarm_merges_them(cluster: ClusterInfo, tmp_path: Path) -> None:
    stack = copy_stack(QUICKSTART, tmp_path / "e2e-kube-two")
    run = tmp_path / "run"

    result = _lab(cluster, stack, run, "--clients", "2")

    assert result.exit_code in (0, 7), result  # 7: a point the clients never settled, said and kept
    for slot in (0, 1):
        assert (run / "clients" / f"client-{slot}" / "perf_analyzer.csv").is_file()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["clients"] == 2 and summary["rows"]
    assert sorted(p for p in _manifest(run)["pods"] if p.startswith("perf-analyzer")) == [
        "perf-analyzer-0",
        "perf-analyzer-1",
    ]
    assert _namespaces(cluster) == []


@pytest.mark.parametrize("case", ["nvidia/add_sub", "nvidia/decoupled", "origin"])
def test_nvidia_models_and_the_origin_stack_run_on_defaults(cluster: ClusterInfo, tmp_path: Path, case: str) -> None:
    """NVIDIA's models verbatim (one decoupled), and the origin story's model that opens files from
    its server.volumes folder: the folder travels through the API like models/."""
    name = case.rpartition("/")[2].replace("_", "-")
    stack = copy_stack(E2E_STACKS / case, tmp_path / f"e2e-kube-{name}")
    run = tmp_path / "run"

    result = _lab(cluster, stack, run)

    assert result.exit_code == 0, result
    argv = _manifest(run)["perf_analyzer_argv"]
    if case == "nvidia/decoupled":  # gRPC streaming, as on one engine
        assert "--streaming" in argv and argv[argv.index("-i") + 1] == "grpc"
    assert json.loads((run / "summary.json").read_text())["rows"]


def test_a_model_that_fails_to_load_is_exit_4_with_tritons_reason(cluster: ClusterInfo, tmp_path: Path) -> None:
    stack = copy_stack(E2E_STACKS / "broken_model", tmp_path / "e2e-kube-broken")

    started = time.monotonic()
    result = _lab(cluster, stack, tmp_path / "run", "--timeout", "120")
    seconds = time.monotonic() - started

    assert result.exit_code == 4, result
    assert "triton_server could not load broken_model" in result.stderr, result.stderr
    assert len(result.error_lines) == 1 and "Traceback" not in result.stderr
    assert seconds < 60, f"the failure took {seconds:.0f} s to report (the readiness deadline is 120 s)"
    assert _namespaces(cluster) == []


def _long_lab(cluster: ClusterInfo, tmp_path: Path, name: str, *extra: object) -> CliProcess:
    """A quickstart lab in the background whose measurement lasts minutes (200,000 requests)."""
    stack = copy_stack(QUICKSTART, tmp_path / name)
    args = ["lab", stack, "--engine", "kubernetes", "--images", "lab", "--release", RELEASE,
            "--measurement-requests", "200000", "--out", tmp_path / "run", *extra]  # fmt: skip
    return CliProcess(args, cwd=tmp_path, env={"KUBECONFIG": str(cluster.kubeconfig)})


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupt_mid_bench_is_130_and_the_namespace_is_gone_within_10_s(
    cluster: ClusterInfo, tmp_path: Path, signum: signal.Signals
) -> None:
    proc = _long_lab(cluster, tmp_path, "e2e-kube-signal")
    try:
        proc.wait_for_stderr("running perf_analyzer in", timeout=180)
        time.sleep(2.0)
        assert _namespaces(cluster), "the lab's namespace while it runs"
        signalled = time.monotonic()
        proc.send_signal(signum)
        result = proc.wait(timeout=60)
        seconds = time.monotonic() - signalled
    finally:
        proc.kill()
    assert result.exit_code == 130, result
    assert "Traceback" not in result.stderr
    assert _namespaces(cluster) == []
    assert seconds < 10, f"{seconds:.1f} s from SIGINT to everything gone"
    assert _manifest(tmp_path / "run")["exit_code"] == 130


def _kubectl(cluster: ClusterInfo, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", *args], env=cluster.env(), capture_output=True, text=True, timeout=60,
                          check=False)  # fmt: skip


def test_rendered_manifests_pass_a_server_side_dry_run(cluster: ClusterInfo, tmp_path: Path) -> None:
    """The apiserver validates every object (kubectl apply --dry-run=server) and creates none. A
    server-side dry run creates no namespace either, so the namespaced objects are checked where
    their namespace exists: the lab's own (made for the check, removed after) and one the user names."""
    stack = copy_stack(QUICKSTART, tmp_path / "e2e-kube-render")
    rendered = tmp_path / "lab.yml"
    for extra, namespace in (([], "tisbench-e2e-kube-render"), (["--clients", "3", "--namespace", "perf"], "perf")):
        result = _kube(cluster, ["render", stack, "--engine", "kubernetes", "--images", "lab", "--release",
                                 RELEASE, "-o", rendered, *extra], tmp_path)  # fmt: skip
        assert result.exit_code == 0, result
        assert _kubectl(cluster, "create", "namespace", namespace).returncode == 0
        try:
            done = _kubectl(cluster, "apply", "--dry-run=server", "-f", str(rendered))
            assert done.returncode == 0, done.stderr
            assert "deployment.apps/triton-server created (server dry run)" in done.stdout, done.stdout
            assert "service/triton-server created (server dry run)" in done.stdout
            assert "pod/perf-analyzer-0 created (server dry run)" in done.stdout
            pods = _kubectl(cluster, "get", "pods", "-n", namespace, "-o", "name")
            assert pods.stdout.strip() == "", "a dry run creates nothing"
        finally:
            _kubectl(cluster, "delete", "namespace", namespace, "--wait=true")


def _lab_objects(cluster: ClusterInfo, namespace: str) -> list[str]:
    done = _kubectl(cluster, "get", "deployments,services,pods", "-n", namespace, "-l", "tisbench.lab", "-o", "name")
    return done.stdout.split()


def test_a_lab_in_a_namespace_the_user_names_leaves_the_namespace_and_only_it(
    cluster: ClusterInfo, tmp_path: Path
) -> None:
    namespace = "e2e-users"
    stack = copy_stack(QUICKSTART, tmp_path / "e2e-kube-users")
    absent = _lab(cluster, stack, tmp_path / "absent", "--namespace", namespace)
    assert absent.exit_code == 2 and f"--namespace {namespace}: no such namespace" in absent.stderr, absent
    assert len(absent.error_lines) == 1 and not (tmp_path / "absent").exists()
    assert _kubectl(cluster, "create", "namespace", namespace).returncode == 0
    try:
        result = _lab(cluster, stack, tmp_path / "run", "--namespace", namespace)
        assert result.exit_code == 0, result
        assert _manifest(tmp_path / "run")["kubernetes"]["namespace"] == namespace
        assert _lab_objects(cluster, namespace) == []
        assert _kubectl(cluster, "get", "namespace", namespace).returncode == 0
    finally:
        _kubectl(cluster, "delete", "namespace", namespace, "--wait=true")


@pytest.mark.parametrize("namespace", [None, "e2e-users-own"], ids=["own-namespace", "users-namespace"])
def test_status_logs_and_down_find_kubernetes_labs_and_orphans_by_label(
    cluster: ClusterInfo, tmp_path: Path, namespace: str | None
) -> None:
    """A lab whose tisbench was SIGKILLed is found by label, in a namespace of its own or in one the
    user named (which stays: only the lab's objects go)."""
    if namespace:
        assert _kubectl(cluster, "create", "namespace", namespace).returncode == 0
    proc = _long_lab(cluster, tmp_path, "e2e-kube-orphan", *(["--namespace", namespace] if namespace else []))
    try:
        line = proc.wait_for_stderr(r"kubernetes lab \S+ ready", timeout=180)
        name = line.split("kubernetes lab ")[1].split()[0]
        proc.send_signal(signal.SIGKILL)  # no cleanup can run: the lab is an orphan
        proc.wait(timeout=30)
    finally:
        proc.kill()

    status = _kube(cluster, ["status", "--engine", "kubernetes", "--json"], tmp_path)
    assert status.exit_code == 0, status
    found = {lab["name"]: lab for lab in json.loads(status.stdout)}
    assert found[name]["orphaned"] is True and found[name]["services"]["triton_server"] == "ready"
    logs = _kube(cluster, ["logs", name, "--engine", "kubernetes"], tmp_path)
    assert logs.exit_code == 0 and "Started HTTPService" in logs.stdout
    down = _kube(cluster, ["down", "--all", "--engine", "kubernetes"], tmp_path)
    assert down.exit_code == 0 and name in down.stderr, down
    assert _namespaces(cluster) == []
    if namespace:
        assert _lab_objects(cluster, namespace) == []
        assert _kubectl(cluster, "get", "namespace", namespace).returncode == 0, "the user's namespace stays"
        _kubectl(cluster, "delete", "namespace", namespace, "--wait=true")
    again = _kube(cluster, ["down", name, "--engine", "kubernetes"], tmp_path)
    assert again.exit_code == 0, again  # nothing to do is not an error
