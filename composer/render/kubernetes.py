"""A Kubernetes lab's objects, drawn from its design: a labelled Namespace, the server as a
Deployment (readiness on Triton's ``/v2/health/ready``) behind a Service on 8000/8001/8002, and one
idle analyzer Pod per load client. Pure: dicts in the API's own shape, the same ones the engine
creates (``composer.engine.kube``) and ``tisbench render --engine kubernetes`` prints as YAML.

No shared disk is assumed: a volume the design fills from this machine (models/, dataset/, the
user's folders) is an ``emptyDir`` that an init container holds open until tisbench has streamed the
folder into it through the exec API; a named volume is the stack's PersistentVolumeClaim.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from composer.core import labels as L
from composer.core.design import LabDesign, Mount, Service
from composer.core.triton import ANALYZER, SERVER, SERVER_PORTS

API_LABELS = (L.LAB_LABEL, L.ENGINE_LABEL, L.RELEASE_LABEL, L.CLIENTS_LABEL)  # the rest are annotations
SERVICE_LABEL = "tisbench.service"  # server | analyzer: how the engine finds each pod
LAB_SELECTOR_SERVER = f"{SERVICE_LABEL}=server"
LAB_SELECTOR_ANALYZER = f"{SERVICE_LABEL}=analyzer"
MANAGED_BY = ("app.kubernetes.io/managed-by", "tisbench")
FILL_CONTAINER = "tisbench-fill"  # holds a pod at its start until the folders are in
FILL_ROOT = "/tisbench-fill"  # where the fill container sees the volumes; ``done`` there lets the pod go on
FILL_DONE = f"{FILL_ROOT}/done"
READY_PATH = "/v2/health/ready"
_PULL = {"never": "Never", "missing": "IfNotPresent", "always": "Always", None: "IfNotPresent"}
_DNS_LABEL = re.compile(r"[^a-z0-9-]+")


def dns_name(text: str) -> str:
    """A DNS-1123 label from a lab's or service's name (``triton_server`` → ``triton-server``)."""
    return _DNS_LABEL.sub("-", text.lower()).strip("-")[:63] or "lab"


def namespace_of(project: str) -> str:
    return dns_name(f"tisbench-{project}")


def server_service_name() -> str:
    return dns_name(SERVER)


def analyzer_pod(slot: int) -> str:
    return f"{dns_name(ANALYZER)}-{slot}"


def volume_name(key: str) -> str:
    return dns_name(f"v-{key}")


def _split_labels(design: LabDesign, service: Service) -> tuple[dict[str, str], dict[str, str]]:
    """(labels, annotations): Kubernetes label values are short names, so paths and model names
    travel as annotations."""
    every = dict(service.labels)
    labels = {k: v for k, v in every.items() if k in API_LABELS}
    labels[L.LAB_LABEL] = design.project
    labels[MANAGED_BY[0]] = MANAGED_BY[1]
    return labels, {k: v for k, v in every.items() if k not in API_LABELS}


def _mount_volume(mount: Mount) -> str:
    return volume_name(str(mount.source)) if mount.source else dns_name(f"tmpfs{mount.target}")


def _volume(design: LabDesign, mount: Mount) -> dict[str, Any]:
    name = _mount_volume(mount)
    if mount.type == "tmpfs":
        return {"name": name, "emptyDir": {"medium": "Memory", "sizeLimit": str(mount.size_bytes)}}
    if mount.type == "volume" and mount.source in design.external_volumes:
        return {"name": name, "persistentVolumeClaim": {"claimName": mount.source, "readOnly": mount.read_only}}
    return {"name": name, "emptyDir": {}}  # filled from this machine before the pod's containers start


def filled(design: LabDesign, service: Service) -> list[tuple[str, str]]:
    """(volume name, host path) of each volume of ``service`` that tisbench fills through the API."""
    out = []
    for mount in service.mounts:
        path = design.host_path(mount)
        if mount.type == "volume" and path is not None:
            out.append((volume_name(str(mount.source)), path))
    return out


def _pod_spec(design: LabDesign, service: Service, container: dict[str, Any]) -> dict[str, Any]:
    volumes = {}
    for mount in service.mounts:
        volume = _volume(design, mount)
        volumes[volume["name"]] = volume
    container["volumeMounts"] = [
        {"name": _mount_volume(m), "mountPath": m.target, "readOnly": m.read_only}
        for m in service.mounts
    ]
    spec: dict[str, Any] = {
        "terminationGracePeriodSeconds": 0,  # a lab is removed at once, as `docker compose down -t 0`
        "enableServiceLinks": False,
        "automountServiceAccountToken": False,
        "containers": [container],
    }
    fills = filled(design, service)
    if fills:
        spec["initContainers"] = [
            {
                "name": FILL_CONTAINER,
                "image": service.image,
                "imagePullPolicy": container["imagePullPolicy"],
                # A constant script: waits until tisbench has streamed the folders in and says so.
                "command": ["sh", "-c", f"until [ -e {FILL_DONE} ]; do sleep 0.2; done"],
                "volumeMounts": [{"name": FILL_CONTAINER, "mountPath": FILL_ROOT}]
                + [{"name": name, "mountPath": f"{FILL_ROOT}/{name}"} for name, _ in fills],
            }
        ]
        volumes[FILL_CONTAINER] = {"name": FILL_CONTAINER, "emptyDir": {}}
    spec["volumes"] = list(volumes.values())
    return spec


def _container(service: Service) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": dns_name(service.name),
        "image": service.image,
        "imagePullPolicy": _PULL.get(service.pull_policy, "IfNotPresent"),
    }
    if service.entrypoint:
        container["command"] = list(service.entrypoint)
    elif service.command:
        container["command"] = list(service.command)
    if service.working_dir:
        container["workingDir"] = service.working_dir
    if service.environment:
        container["env"] = [{"name": k, "value": v} for k, v in service.environment]
    if service.gpus.uses_gpus:
        count = service.gpus.count if service.gpus.mode == "count" else len(service.gpus.device_ids) or 1
        container["resources"] = {"limits": {"nvidia.com/gpu": count}}
    return container


def _server(design: LabDesign, namespace: str) -> list[dict[str, Any]]:
    service = design.service(SERVER)
    labels, annotations = _split_labels(design, service)
    selector = {L.LAB_LABEL: design.project, SERVICE_LABEL: "server"}
    container = _container(service)
    container["ports"] = [{"name": kind, "containerPort": port} for kind, port in SERVER_PORTS.items()]
    container["readinessProbe"] = {
        "httpGet": {"path": READY_PATH, "port": SERVER_PORTS["http"]},
        "periodSeconds": 1,
        "failureThreshold": 1,
    }
    meta = {"namespace": namespace, "labels": labels, "annotations": annotations}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": server_service_name(), **meta},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": {**labels, **selector}, "annotations": annotations},
                "spec": _pod_spec(design, service, container),
            },
        },
    }
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": server_service_name(), **meta},
        "spec": {
            "selector": selector,
            "ports": [{"name": kind, "port": port, "targetPort": port} for kind, port in SERVER_PORTS.items()],
        },
    }
    return [deployment, svc]


def _analyzers(design: LabDesign, namespace: str) -> list[dict[str, Any]]:
    service = design.service(ANALYZER)
    labels, annotations = _split_labels(design, service)
    pods = []
    for slot in range(service.replicas):
        spec = _pod_spec(design, service, _container(service))
        spec["restartPolicy"] = "Never"  # an analyzer that dies is seen, not restarted under a run
        pods.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": analyzer_pod(slot),
                    "namespace": namespace,
                    "labels": {**labels, SERVICE_LABEL: "analyzer", "tisbench.client": str(slot)},
                    "annotations": annotations,
                },
                "spec": spec,
            }
        )
    return pods


def kube_objects(
    design: LabDesign, namespace: str, owner: str | None = None, *, own_namespace: bool = True
) -> list[dict[str, Any]]:
    """Every object of the lab, in the order they are created: its own Namespace first, unless the
    lab goes into one the user named. ``owner``: the process that removes the lab when it ends
    (``tisbench status`` calls a lab whose owner is gone orphaned)."""
    server = design.service(SERVER)
    labels, annotations = _split_labels(design, server)
    if owner:
        annotations = {**annotations, L.OWNER_LABEL: owner}
    space = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": namespace, "labels": labels, "annotations": annotations},
    }
    made = [*_server(design, namespace), *_analyzers(design, namespace)]
    if owner:
        for obj in made:
            obj["metadata"]["annotations"] = {**obj["metadata"]["annotations"], L.OWNER_LABEL: owner}
    return [space, *made] if own_namespace else made


_HEADER = """\
# tisbench {version}: Kubernetes lab {lab} (release {release}), namespace {namespace}
# Apply with kubectl apply -f. Each pod waits in its {fill} init container until the folders it
# mounts are in: copy each with kubectl cp into {root}/<volume>/ of that container, then
# kubectl exec POD -c {fill} -- touch {done}. tisbench lab --engine kubernetes does all of this.
# The load clients run, each in its pod:
#   {argv}
"""


def render_kube(made: list[dict[str, Any]], argv: list[str], timeout_s: float) -> str:
    """The objects as one multi-document YAML file, headed by how to use it by hand."""
    from composer import __version__

    first = made[0]["metadata"]
    header = _HEADER.format(
        version=__version__,
        lab=first["labels"].get(L.LAB_LABEL, "?"),
        release=first["labels"].get(L.RELEASE_LABEL, "?"),
        namespace=first.get("namespace") or first["name"],
        fill=FILL_CONTAINER,
        root=FILL_ROOT,
        done=FILL_DONE,
        argv=" ".join(argv) + f"  (within {timeout_s:.0f} s)",
    )
    return header + yaml.dump_all(made, Dumper=_Plain, sort_keys=False, default_flow_style=False)


class _Plain(yaml.SafeDumper):
    """Every object written out in full: kubectl users read the file, anchors would only puzzle them."""

    def ignore_aliases(self, data: Any) -> bool:
        return True
