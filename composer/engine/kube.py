"""A Kubernetes cluster as a lab's engine, through the official ``kubernetes`` client only: connect
(KUBECONFIG and contexts as kubectl reads them), create a lab's objects from their dicts, find and
remove labs by label, read pods' states, logs and events. Exec, file transfer and port-forwards
are ``composer.engine.kube_stream``. Nothing here shells out to kubectl.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import urllib3.exceptions
from kubernetes import client as k8s
from kubernetes import config as kconfig
from kubernetes import utils as kutils
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from websocket import WebSocketException

from composer.core.errors import DockerUnavailable, StackError, TisbenchError

API_TIMEOUT_S = 10.0
# Deletions read no answer: servers before 1.22 answer some with a Status where the client expects
# the object (kubernetes 37 then fails to parse a Service's deletion).
_RAW: dict[str, Any] = {"_preload_content": False, "_request_timeout": API_TIMEOUT_S}
LAB_LABEL = "tisbench.lab"
MANAGED = "app.kubernetes.io/managed-by=tisbench"
CONNECTION_ERRORS = (urllib3.exceptions.HTTPError, OSError, WebSocketException)


class ClusterUnavailable(DockerUnavailable):
    """No Kubernetes cluster answers (exit 3, as an engine that does not answer)."""


@dataclass
class Cluster:
    api: k8s.ApiClient
    context: str | None
    server: str  # the apiserver's URL
    version: str  # its git version, e.g. v1.20.2
    core: Any = field(init=False)  # the client's objects: read as the API documents them (fields may be None)
    apps: Any = field(init=False)

    def __post_init__(self) -> None:
        self.core = k8s.CoreV1Api(self.api)
        self.apps = k8s.AppsV1Api(self.api)

    def close(self) -> None:
        self.api.close()  # type: ignore[no-untyped-call]


def connect(context: str | None = None) -> Cluster:
    """The cluster kubectl would talk to (KUBECONFIG, then ~/.kube/config; ``context`` or the current one)."""
    try:
        # read now: the client's own default is KUBECONFIG as it was when the module was imported
        files = os.environ.get("KUBECONFIG") or "~/.kube/config"
        api = kconfig.new_client_from_config(config_file=files, context=context)  # type: ignore[no-untyped-call]
    except (ConfigException, OSError, ValueError) as exc:
        raise ClusterUnavailable(
            f"no Kubernetes cluster configured ({' '.join(str(exc).split())})",
            "set KUBECONFIG (or ~/.kube/config) and --kube-context as for kubectl",
        ) from None
    try:
        version = k8s.VersionApi(api).get_code(_request_timeout=API_TIMEOUT_S).git_version
    except (ApiException, *CONNECTION_ERRORS) as exc:
        api.close()
        raise ClusterUnavailable(
            f"the Kubernetes apiserver at {api.configuration.host} does not answer ({_short(exc)})",
            "is the cluster running? kubectl cluster-info says the same",
        ) from None
    return Cluster(api, context, str(api.configuration.host), str(version))


def _short(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"{exc.status} {exc.reason}"
    return " ".join(str(exc).split())[:200]


def api_error(exc: BaseException, doing: str) -> TisbenchError:
    """An API failure in one line: what was being done and what the apiserver said."""
    return StackError(f"Kubernetes: {doing} failed ({_short(exc)})", "kubectl get events -n NAMESPACE says more")


def create(cluster: Cluster, objects: Iterable[dict[str, Any]]) -> None:
    """Create each object from its dict, in order (the kinds the client's utils know)."""
    for obj in objects:
        what = f"creating {obj['kind']} {obj['metadata']['name']}"
        try:
            kutils.create_from_dict(cluster.api, obj, namespace=obj["metadata"].get("namespace"))  # type: ignore[no-untyped-call]
        except kutils.FailToCreateError as exc:
            raise api_error(exc.api_exceptions[0], what) from None
        except CONNECTION_ERRORS as exc:
            raise api_error(exc, what) from None


def _or_none(doing: str, call: Callable[[], Any]) -> Any | None:
    """The call's answer; None when what it names is not there (404); any other failure in one line."""
    try:
        return call()
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise api_error(exc, doing) from None
    except CONNECTION_ERRORS as exc:
        raise api_error(exc, doing) from None


def namespace_exists(cluster: Cluster, namespace: str) -> dict[str, Any] | None:
    found = _or_none(
        f"reading namespace {namespace}",
        lambda: cluster.core.read_namespace(namespace, _request_timeout=API_TIMEOUT_S),
    )
    return None if found is None else {"labels": found.metadata.labels or {}, "phase": found.status.phase}


def wait_service_account(cluster: Cluster, namespace: str, timeout_s: float) -> None:
    """A new namespace's ``default`` ServiceAccount, which admission wants before any pod."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = _or_none(
            f"reading namespace {namespace}'s service account",
            lambda: cluster.core.read_namespaced_service_account("default", namespace, _request_timeout=API_TIMEOUT_S),
        )
        if found is not None:
            return
        if time.monotonic() >= deadline:
            raise StackError(
                f"namespace {namespace} got no default ServiceAccount in {timeout_s:.0f} s",
                "is the cluster's controller-manager running? kubectl get sa -n " + namespace,
            )
        time.sleep(0.1)


@dataclass(frozen=True)
class PodState:
    name: str
    phase: str
    ip: str | None
    node: str | None
    ready: bool
    waiting: str | None  # a container's waiting reason and message (ErrImageNeverPull: …)
    terminated: tuple[str, int] | None  # (container, exit code) of a container that ended
    restarts: int
    images: dict[str, str]  # container → image id (digest)
    init_running: bool


def pod_state(pod: Any) -> PodState:
    status = pod.status
    containers = list(status.container_statuses or [])
    inits = list(status.init_container_statuses or [])
    waiting = terminated = None
    for c in [*inits, *containers]:
        state, last = c.state, c.last_state
        if state and state.waiting and state.waiting.reason not in (None, "ContainerCreating", "PodInitializing"):
            waiting = f"{c.name}: {state.waiting.reason}: {state.waiting.message or ''}".strip(": ")
        ended = (state and state.terminated) or (last and last.terminated)
        if ended and not (c in inits and ended.exit_code == 0):
            terminated = (c.name, int(ended.exit_code))
    conditions = {c.type: c.status for c in status.conditions or []}
    return PodState(
        pod.metadata.name,
        status.phase or "Pending",
        status.pod_ip,
        pod.spec.node_name,
        conditions.get("Ready") == "True",
        waiting,
        terminated,
        sum(c.restart_count or 0 for c in containers),
        {c.name: c.image_id for c in containers if c.image_id},
        any(c.state and c.state.running for c in inits),
    )


def pods(cluster: Cluster, namespace: str, selector: str) -> list[PodState]:
    try:
        found = cluster.core.list_namespaced_pod(namespace, label_selector=selector, _request_timeout=API_TIMEOUT_S)
    except (ApiException, *CONNECTION_ERRORS) as exc:
        raise api_error(exc, f"listing pods in {namespace}") from None
    return [pod_state(p) for p in sorted(found.items, key=lambda p: p.metadata.creation_timestamp)]


def pod_log(cluster: Cluster, namespace: str, pod: str, container: str, *, previous: bool = False) -> str:
    try:
        return str(
            cluster.core.read_namespaced_pod_log(
                pod, namespace, container=container, previous=previous, _request_timeout=API_TIMEOUT_S
            )
        )
    except (ApiException, *CONNECTION_ERRORS):
        return ""


def pod_events(cluster: Cluster, namespace: str, pod: str) -> list[str]:
    """The pod's events, oldest first: "Reason: message"."""
    try:
        found = cluster.core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={pod}", _request_timeout=API_TIMEOUT_S
        )
    except (ApiException, *CONNECTION_ERRORS):
        return []
    events = sorted(found.items, key=lambda e: str(e.last_timestamp or e.metadata.creation_timestamp))
    return [f"{e.reason}: {' '.join((e.message or '').split())}" for e in events]


def node_facts(cluster: Cluster, node: str | None) -> dict[str, Any]:
    if not node:
        return {}
    try:
        info = cluster.core.read_node(node, _request_timeout=API_TIMEOUT_S).status.node_info
    except (ApiException, *CONNECTION_ERRORS):
        return {"name": node}
    return {
        "name": node,
        "kubelet": info.kubelet_version,
        "container_runtime": info.container_runtime_version,
        "os": info.os_image,
    }


def why_no_service_routing(cluster: Cluster) -> str | None:
    """Why Service names cannot route between pods on this cluster (no DNS service, no kube-proxy),
    or None when both are there."""
    try:
        services = cluster.core.list_namespaced_service("kube-system", _request_timeout=API_TIMEOUT_S).items
        pods_ = cluster.core.list_namespaced_pod("kube-system", _request_timeout=API_TIMEOUT_S).items
    except (ApiException, *CONNECTION_ERRORS):
        return None  # cannot tell: the probe from an analyzer pod decides
    missing = []
    if not any(s.metadata.name in ("kube-dns", "coredns") for s in services):
        missing.append("no cluster DNS service in kube-system")
    if not any("kube-proxy" in (p.metadata.name or "") for p in pods_):
        missing.append("no kube-proxy pod")
    return " and ".join(missing) or None


@dataclass(frozen=True)
class KubeLab:
    name: str
    namespace: str
    labels: dict[str, str]
    annotations: dict[str, str]
    created: float
    phase: str
    pods: dict[str, str] = field(default_factory=dict)  # pod → phase (Ready when ready)
    own_namespace: bool = True  # False: a lab in a namespace the user named (--namespace)


def lab_namespaces(cluster: Cluster, name: str | None = None) -> list[KubeLab]:
    """Every tisbench lab on the cluster (or lab ``name``), found by label: those in a namespace of
    their own by the namespace's labels, those in a namespace the user named by their Deployment's."""
    selector = f"{MANAGED},{LAB_LABEL}" + (f"={name}" if name else "")
    try:
        spaces = cluster.core.list_namespace(label_selector=selector, _request_timeout=API_TIMEOUT_S).items
        deployments = cluster.apps.list_deployment_for_all_namespaces(
            label_selector=selector, _request_timeout=API_TIMEOUT_S
        ).items
    except (ApiException, *CONNECTION_ERRORS) as exc:
        raise api_error(exc, "listing tisbench labs") from None
    labs = [_lab_of(ns.metadata, ns.metadata.name, ns.status.phase) for ns in spaces]
    own = {lab.namespace for lab in labs}
    for d in deployments:
        if d.metadata.namespace not in own:
            lab = _lab_of(d.metadata, d.metadata.namespace, "Active")
            labs.append(KubeLab(lab.name, lab.namespace, lab.labels, lab.annotations, lab.created, lab.phase,
                                own_namespace=False))  # fmt: skip
    return labs


def _lab_of(meta: Any, namespace: str, phase: str) -> KubeLab:
    labels = dict(meta.labels or {})
    return KubeLab(labels.get(LAB_LABEL, meta.name), namespace, labels, dict(meta.annotations or {}),
                   meta.creation_timestamp.timestamp(), phase)  # fmt: skip


def with_pods(cluster: Cluster, lab: KubeLab) -> KubeLab:
    states = pods(cluster, lab.namespace, f"{LAB_LABEL}={lab.name}")
    shown = {p.name: ("Ready" if p.ready else p.phase) for p in states}
    return KubeLab(lab.name, lab.namespace, lab.labels, lab.annotations, lab.created, lab.phase, shown,
                   lab.own_namespace)  # fmt: skip


def delete_namespace(cluster: Cluster, namespace: str, timeout_s: float) -> bool:
    """Delete the namespace (its pods at once: grace 0) and wait until it is gone; False when it was
    not there. Raises when it outlives the deadline."""
    body = k8s.V1DeleteOptions(grace_period_seconds=0, propagation_policy="Background")

    def delete() -> Any:
        cluster.core.delete_collection_namespaced_pod(namespace, grace_period_seconds=0, **_RAW)
        return cluster.core.delete_namespace(namespace, body=body, **_RAW)

    if _or_none(f"deleting namespace {namespace}", delete) is None:
        return False
    deadline = time.monotonic() + timeout_s
    while namespace_exists(cluster, namespace) is not None:
        if time.monotonic() >= deadline:
            raise StackError(
                f"namespace {namespace} still terminating after {timeout_s:.0f} s",
                f"kubectl get all -n {namespace}; it goes once its pods have stopped",
            )
        time.sleep(0.1)
    return True


def delete_lab_objects(cluster: Cluster, namespace: str, name: str, timeout_s: float) -> None:
    """A lab in a namespace the user named: its own objects only (by label), the namespace stays."""
    selector = f"{MANAGED},{LAB_LABEL}={name}"
    body = k8s.V1DeleteOptions(grace_period_seconds=0, propagation_policy="Background")

    def delete() -> bool:
        for d in cluster.apps.list_namespaced_deployment(namespace, label_selector=selector).items:
            cluster.apps.delete_namespaced_deployment(d.metadata.name, namespace, body=body, **_RAW)
        for s in cluster.core.list_namespaced_service(namespace, label_selector=selector).items:
            cluster.core.delete_namespaced_service(s.metadata.name, namespace, body=body, **_RAW)
        cluster.core.delete_collection_namespaced_pod(namespace, label_selector=selector, grace_period_seconds=0,
                                                      **_RAW)  # fmt: skip
        return True

    _or_none(f"removing lab {name} from namespace {namespace}", delete)
    deadline = time.monotonic() + timeout_s
    while pods(cluster, namespace, f"{LAB_LABEL}={name}"):
        if time.monotonic() >= deadline:
            raise StackError(f"lab {name}'s pods in {namespace} still there after {timeout_s:.0f} s",
                             f"kubectl get pods -n {namespace} -l {LAB_LABEL}={name}")  # fmt: skip
        time.sleep(0.1)


def remove_lab(cluster: Cluster, namespace: str, name: str, own_namespace: bool, timeout_s: float) -> None:
    """A lab gone: its own namespace with everything in it, or, in a namespace the user named, only
    its labelled objects (the namespace stays)."""
    if own_namespace:
        delete_namespace(cluster, namespace, timeout_s)
    else:
        delete_lab_objects(cluster, namespace, name, timeout_s)
