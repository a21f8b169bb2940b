"""The project's local Kubernetes 1.20.2 cluster for end-to-end tests, started and stopped by the test run.

``scripts/kube/cluster.sh`` does the work: etcd, kube-apiserver (https://127.0.0.1:16443, client
certificates), controller-manager, scheduler and a kubelet that runs pods on this machine's Docker
engine, all on loopback, with certificates, data, logs, pids and the admin kubeconfig in one folder.
Its binaries come from ``scripts/kube/build.sh`` (built once from Debian's source package, cached);
without them :func:`start_cluster` raises :class:`KubeClusterUnavailable` naming that script.
:func:`stop_cluster` stops every process by the pid the start recorded, removes this cluster's pod
containers and unmounts the kubelet's mounts; it is safe to call after a failed or partial start.
Pods must use local images with ``imagePullPolicy: Never``; there is no kube-proxy and no cluster
DNS, so Service IPs and names do not route (see shared/LAB.md, "A real Kubernetes on this kind of
machine").
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD_SH = REPO / "scripts" / "kube" / "build.sh"
CLUSTER_SH = REPO / "scripts" / "kube" / "cluster.sh"
VERSION = "v1.20.2"
BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "pause")
HOST_TOOLS = ("etcd", "kubectl", "socat", "openssl", "docker")  # on PATH; socat serves port-forward
DEFAULT_DIR = Path("/tmp/tisbench-kube-e2e")
API_PORT = 16443  # cluster.sh's default (TISBENCH_KUBE_API_PORT)
START_TIMEOUT_S = 240.0  # cluster.sh waits 60 s for the apiserver and 120 s for the node itself
STOP_TIMEOUT_S = 120.0


class KubeClusterUnavailable(RuntimeError):
    """The cluster's binaries or host tools are missing, or the cluster did not come up."""


@dataclass(frozen=True)
class ClusterInfo:
    dir: Path  # certificates (pki/), etcd data, kubelet root, logs/, pids/
    kubeconfig: Path  # the admin's (system:masters) kubeconfig
    server: str  # https://127.0.0.1:16443
    node: str = "localhost"  # the one node's name

    def env(self) -> dict[str, str]:
        """The environment for kubectl or a client that reads KUBECONFIG."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}


def kube_bin() -> Path:
    """Where build.sh caches the binaries (TISBENCH_KUBE_CACHE overrides the cache, as in the scripts)."""
    cache = os.environ.get("TISBENCH_KUBE_CACHE") or str(Path.home() / ".cache" / "tisbench" / "kube")
    return Path(cache) / VERSION / "bin"


def missing_prerequisites() -> list[str]:
    """What start_cluster would need and this machine lacks, each named; empty when all is there."""
    missing = [str(kube_bin() / b) for b in BINARIES if not os.access(kube_bin() / b, os.X_OK)]
    missing += [tool for tool in HOST_TOOLS if shutil.which(tool) is None]
    return missing


def _run(action: str, directory: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(CLUSTER_SH), action, str(directory)],
        stdin=subprocess.DEVNULL,  # the cluster's processes outlive this call: they must not hold our pipes
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _log_tails(directory: Path, lines: int = 15) -> str:
    tails = []
    for log in sorted((directory / "logs").glob("*.log")):
        text = log.read_text(errors="replace").splitlines()[-lines:]
        tails.append(f"--- {log} (last {len(text)} lines)\n" + "\n".join(text))
    return "\n".join(tails)


def _mounts_under(directory: Path) -> list[str]:
    prefix = f"{directory}/"
    with open("/proc/mounts") as mounts:
        points = [line.split()[1] for line in mounts if line.strip()]
    return [p for p in points if p == str(directory) or p.startswith(prefix)]


def start_cluster(
    directory: Path = DEFAULT_DIR, *, fresh: bool = True, timeout: float = START_TIMEOUT_S
) -> ClusterInfo:
    """Start the cluster in ``directory`` and wait until its node is Ready.

    ``fresh`` (the default) stops whatever an earlier run left in ``directory`` and deletes the
    folder first, so the cluster starts with an empty etcd (no pods or namespaces of an earlier
    session come back) and new certificates. Raises KubeClusterUnavailable when binaries are missing
    (run scripts/kube/build.sh, or scripts/bootstrap.sh --kube) or when the cluster does not come up;
    after a failed start whatever did start has been stopped again.
    """
    missing = missing_prerequisites()
    if missing:
        raise KubeClusterUnavailable(
            f"the local Kubernetes cluster needs {', '.join(missing)}: build and cache them with "
            f"{BUILD_SH.relative_to(REPO)} (as root, about 20 min once; or scripts/bootstrap.sh --kube)"
        )
    directory = Path(directory).absolute()
    if fresh and directory.exists():
        stop_cluster(directory)
        left = _mounts_under(directory)
        if left:  # never delete through a mount the stop could not undo
            raise KubeClusterUnavailable(f"{directory} still has mounts after the stop: {left}")
        shutil.rmtree(directory)
    try:
        done = _run("start", directory, timeout)
    except subprocess.TimeoutExpired as exc:
        stop_cluster(directory)
        raise KubeClusterUnavailable(
            f"{CLUSTER_SH.relative_to(REPO)} start did not finish in {timeout:.0f} s\n{_log_tails(directory)}"
        ) from exc
    if done.returncode != 0:  # cluster.sh has stopped what did start and printed its logs' tails
        stop_cluster(directory)
        raise KubeClusterUnavailable(
            f"{CLUSTER_SH.relative_to(REPO)} start {directory} failed (exit {done.returncode}):\n"
            f"{done.stdout}{done.stderr}"
        )
    return ClusterInfo(dir=directory, kubeconfig=directory / "kubeconfig", server=f"https://127.0.0.1:{API_PORT}")


def stop_cluster(directory: Path = DEFAULT_DIR, *, timeout: float = STOP_TIMEOUT_S) -> None:
    """Stop what start_cluster started in ``directory`` and remove its pod containers; a no-op when nothing runs."""
    directory = Path(directory).absolute()
    if not directory.exists():
        return
    done = _run("stop", directory, timeout)
    if done.returncode != 0:
        script = CLUSTER_SH.relative_to(REPO)
        raise RuntimeError(f"{script} stop {directory} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
