"""Kubernetes labs on a cluster, found by their labels: ``status``, ``logs`` and ``down`` for
``--engine kubernetes``. A lab in a namespace of its own goes with its namespace; a lab in a
namespace the user named loses only its own labelled objects. A lab whose owner process is gone
(killed with SIGKILL) is called orphaned; ``down`` removes it like any other."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from composer.core import labels as L
from composer.core.errors import UsageError
from composer.core.names import RUN_AREA
from composer.core.triton import ANALYZER, SERVER
from composer.engine import kube
from composer.engine.lab_status import LabStatus
from composer.labs.kube import REMOVE_TIMEOUT_S
from composer.labs.registry import owner_gone
from composer.render import kubernetes as objects


def _status(cluster: kube.Cluster, lab: kube.KubeLab) -> LabStatus:
    found = kube.with_pods(cluster, lab)
    notes = found.annotations
    status = LabStatus(found.name, found.labels.get(L.RELEASE_LABEL, "?"), notes.get(L.MODEL_LABEL, "?"),
                       notes.get(L.STACK_LABEL, "?"))  # fmt: skip
    for pod, phase in found.pods.items():
        service = ANALYZER if pod.startswith(objects.dns_name(ANALYZER)) else SERVER
        key = service if service == SERVER else f"{service}[{pod.rpartition('-')[2]}]"
        status.services[key] = phase.lower()
    status.age_s = time.time() - found.created
    status.orphaned = owner_gone(notes.get(L.OWNER_LABEL))
    if found.phase == "Terminating":
        status.problem = "being removed"
    elif SERVER not in status.services:
        status.problem = "no server pod"
    return status


def status(context: str | None) -> list[LabStatus]:
    cluster = kube.connect(context)
    try:
        return sorted((_status(cluster, lab) for lab in kube.lab_namespaces(cluster)), key=lambda s: s.name)
    finally:
        cluster.close()


def _find(cluster: kube.Cluster, name: str) -> kube.KubeLab:
    found = kube.lab_namespaces(cluster, name)
    if not found:
        known = sorted(lab.name for lab in kube.lab_namespaces(cluster))
        hint = f"kubernetes labs: {', '.join(known)}" if known else "start one with tisbench lab --engine kubernetes"
        raise UsageError(f"no kubernetes lab named {name!r} on {cluster.server}", hint)
    return found[0]


def logs(name: str, service: str, context: str | None) -> str:
    cluster = kube.connect(context)
    try:
        lab = _find(cluster, name)
        selector = objects.LAB_SELECTOR_SERVER if service == SERVER else objects.LAB_SELECTOR_ANALYZER
        pods = kube.pods(cluster, lab.namespace, f"{kube.LAB_LABEL}={name},{selector}")
        if not pods:
            raise UsageError(f"kubernetes lab {name} has no {service} pod", "it is being removed, or was")
        return kube.pod_log(cluster, lab.namespace, pods[0].name, objects.dns_name(service))
    finally:
        cluster.close()


def _remove(cluster: kube.Cluster, lab: kube.KubeLab) -> None:
    kube.remove_lab(cluster, lab.namespace, lab.name, lab.own_namespace, REMOVE_TIMEOUT_S)
    stack = lab.annotations.get(L.STACK_LABEL)
    if stack:  # only ever our own run area
        shutil.rmtree(Path(stack) / RUN_AREA / lab.name, ignore_errors=True)


def down(name: str | None, context: str | None) -> list[str]:
    """Remove lab ``name`` (or every tisbench lab on the cluster when None); the names removed."""
    cluster = kube.connect(context)
    try:
        labs = kube.lab_namespaces(cluster, name)
        for lab in labs:
            _remove(cluster, lab)
        return [lab.name for lab in labs]
    finally:
        cluster.close()
