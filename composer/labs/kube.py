"""`tisbench lab --engine kubernetes`: namespace → server Deployment and Service → folders streamed
in → ready → perf_analyzer exec'd into N idle analyzer pods → collect → merge → namespace removed.

The objects are the third rendering of the one lab design (``composer.render.kubernetes``). Every
byte travels through the API: models/ and dataset/ into emptyDirs (sizes said first), perf_analyzer's
output and files back through exec, the server's metrics through a port-forward. The lifecycle is
the one LabSession (composer/labs/session.py): removed on success, failure, Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.filesize import decimal

from composer.core.design import LabDesign
from composer.core.designer import KUBE_FILE, kube_design
from composer.core.errors import ImageMissing, ModelLoadError, ServerDied, UsageError
from composer.core.fsutil import write_atomic, write_json
from composer.core.gpus import NONE, GpuRequest
from composer.core.run_dir import RunDir
from composer.core.triton import ANALYZER, SERVER
from composer.engine import kube
from composer.engine import kube_stream as streams
from composer.engine.containers import with_signals_masked_ctx
from composer.engine.readiness import load_failure
from composer.labs.plan import LabPlan
from composer.labs.request import BenchRequest
from composer.labs.run_manifest import utc_now
from composer.labs.swarm import ClientArgv, check_clients, client_argv
from composer.render import kubernetes as objects
from composer.render.kubernetes import render_kube

Say = Callable[[str], None]
REMOVE_TIMEOUT_S = 30.0
FILL_TIMEOUT_S = 120.0
POLL_S = 0.25
LOG_EXCERPT_LINES = 8


@dataclass(frozen=True)
class KubeFile:
    design: LabDesign
    namespace: str
    objects: list[dict[str, Any]]
    text: str
    client: ClientArgv
    retries: int  # analyzer.stability_retries: a one-client lab retries an unstable point as on one engine


def kube_gpus(plan: LabPlan) -> GpuRequest:
    """GPUs as ``nvidia.com/gpu`` limits: a count; auto is none (the node's GPUs are the cluster's to say)."""
    gpus = plan.gpus
    if gpus.mode in ("auto", "none"):
        return NONE
    if gpus.mode == "count":
        return gpus
    raise UsageError(
        f"--gpus {gpus.describe()} with --engine kubernetes: a pod asks for a number of GPUs, not {gpus.mode}",
        "use --gpus N (an nvidia.com/gpu limit of N)",
    )


def render_kube_file(
    plan: LabPlan,
    name: str,
    clients: int,
    request: BenchRequest,
    namespace: str | None = None,
    owner: str | None = None,
) -> KubeFile:
    """Everything `tisbench render --engine kubernetes` needs, without a cluster: shapes from
    config.pbtxt, input data validated, perf_analyzer's argv (the server by its Service name), the objects."""
    check_clients(clients)
    stack = plan.stack
    if stack.analyzer.shared_memory != "none":
        raise UsageError(
            f"shared memory {stack.analyzer.shared_memory} with --engine kubernetes: the analyzers run in pods "
            "of their own, which share no IPC namespace with the server",
            "use --shared-memory none on kubernetes, or the local engine for shared memory",
        )
    if clients > 1 and (request.repeat > 1 or len(request.protocols) > 1):
        flag = f"--repeat {request.repeat}" if request.repeat > 1 else "--protocol " + ",".join(request.protocols)
        raise UsageError(
            f"{flag} with --clients {clients}: many clients run the sweep once, with one transport",
            "use one client (its analyzer pod repeats sweeps and compares transports as on one engine)",
        )
    gpus = kube_gpus(plan)
    found = client_argv(plan, request, gpus.describe(), objects.server_service_name(), keep_all=clients > 1)
    pull = "never" if plan.image_set == "lab" else "missing"
    design = kube_design(stack, plan.release, plan.images, name, clients, gpus=gpus, pull_policy=pull)
    space = namespace or objects.namespace_of(name)
    made = objects.kube_objects(design, space, owner, own_namespace=namespace is None)
    text = render_kube(made, found.argv, found.settings.timeout_s)
    return KubeFile(design, space, made, text, found, stack.analyzer.stability_retries)


@dataclass
class KubeRunning:
    name: str
    namespace: str
    server_pod: str = ""
    analyzers: list[str] = field(default_factory=list)
    ready_s: float = 0.0
    created: bool = False


@dataclass
class KubeBackend:
    """Kubernetes labs for a LabSession: the namespace and its objects, then the folders streamed in."""

    cluster: kube.Cluster
    rendered: KubeFile
    run_area: Path
    run_dir: Path
    manifest: dict[str, Any]
    model: str
    timeout_s: float
    say: Say
    own_namespace: bool = True
    kind: str = "kubernetes lab"

    def up(self) -> KubeRunning:
        design, space = self.rendered.design, self.rendered.namespace
        lab = KubeRunning(design.project, space)
        try:
            write_atomic(self.run_area / KUBE_FILE, self.rendered.text)
            self.say(f"creating kubernetes lab {lab.name} in namespace {space} on {self.cluster.server}")
            made = self.rendered.objects
            if self.own_namespace:
                kube.create(self.cluster, made[:1])
                made = made[1:]
            lab.created = True
            kube.wait_service_account(self.cluster, space, 30.0)
            kube.create(self.cluster, made)
            started = time.monotonic()
            self._fill_all(lab)
            lab.server_pod = self._wait_server(lab, started)
            lab.ready_s = time.monotonic() - started
            lab.analyzers = self._wait_analyzers(lab)
        except BaseException:
            with with_signals_masked_ctx():
                try:
                    self.collect(lab)
                finally:
                    self.down(lab)
                    self.say(f"{self.kind} {lab.name} removed")
            raise
        return lab

    def _fill_all(self, lab: KubeRunning) -> None:
        """Each pod's folders, streamed into its emptyDirs while its init container holds it."""
        design = self.rendered.design
        targets = [(SERVER, objects.LAB_SELECTOR_SERVER), (ANALYZER, objects.LAB_SELECTOR_ANALYZER)]
        archives: dict[str, Path] = {}
        try:
            for service_name, selector in targets:
                service = design.service(service_name)
                fills = objects.filled(design, service)
                if not fills:
                    continue
                for _, path in fills:
                    if path not in archives:
                        archives[path] = streams.tar_of(Path(path))
                        self.say(f"sending {path} ({decimal(archives[path].stat().st_size)}) through the API")
                for pod in self._pods_holding(lab, selector, service.replicas):
                    for volume, path in fills:
                        streams.fill(self.cluster, lab.namespace, pod, objects.FILL_CONTAINER, archives[path],
                                     f"{objects.FILL_ROOT}/{volume}")  # fmt: skip
                    streams.output_in_pod(self.cluster, lab.namespace, pod, objects.FILL_CONTAINER,
                                          ["touch", objects.FILL_DONE])  # fmt: skip
        finally:
            for archive in archives.values():
                archive.unlink(missing_ok=True)

    def _pods_holding(self, lab: KubeRunning, selector: str, count: int) -> list[str]:
        """The pods of ``selector`` once each one's fill container runs."""
        deadline = time.monotonic() + FILL_TIMEOUT_S
        while True:
            found = kube.pods(self.cluster, lab.namespace, f"{kube.LAB_LABEL}={lab.name},{selector}")
            for pod in found:
                self._raise_if_stuck(lab, pod)
            holding = [p.name for p in found if p.init_running]
            if len(holding) >= count:
                return holding[:count]
            if time.monotonic() >= deadline:
                states = ", ".join(f"{p.name} {p.phase}" for p in found) or "none scheduled"
                raise ServerDied(
                    f"kubernetes lab {lab.name}: pods did not start in {FILL_TIMEOUT_S:.0f} s ({states})",
                    f"kubectl describe pods -n {lab.namespace}",
                )
            time.sleep(POLL_S)

    def _raise_if_stuck(self, lab: KubeRunning, pod: kube.PodState) -> None:
        if pod.waiting and any(r in pod.waiting for r in ("ErrImageNeverPull", "ImagePullBackOff", "ErrImagePull")):
            raise ImageMissing(
                f"kubernetes lab {lab.name}: {pod.name} cannot get its image ({pod.waiting})",
                "the node must hold the image (make lab-images on the node's engine), or use --images ngc",
            )
        if pod.waiting and "CreateContainer" in pod.waiting:
            raise ServerDied(f"kubernetes lab {lab.name}: {pod.name}: {pod.waiting}", _events(self, lab, pod.name))

    def _wait_server(self, lab: KubeRunning, started: float) -> str:
        """The server pod once Triton says ready; Triton's own reason as soon as its container ends."""
        deadline = started + self.timeout_s
        selector = f"{kube.LAB_LABEL}={lab.name},{objects.LAB_SELECTOR_SERVER}"
        said = False
        while True:
            found = kube.pods(self.cluster, lab.namespace, selector)
            for pod in found:
                self._raise_if_stuck(lab, pod)
                if pod.terminated:
                    self._raise_dead(lab, pod)
                if pod.ready:
                    return pod.name
            if not said and found and found[0].phase == "Running":
                self.say(f"waiting for triton_server ({found[0].name}) to say ready on {objects.READY_PATH}")
                said = True
            if time.monotonic() >= deadline:
                name = found[0].name if found else "no pod"
                log = kube.pod_log(self.cluster, lab.namespace, name, objects.dns_name(SERVER)) if found else ""
                raise ModelLoadError(
                    f"triton_server of kubernetes lab {lab.name} not ready after {self.timeout_s:.0f} s "
                    f"({_excerpt(log)})",
                    "raise --timeout for a slow model load; " + _events(self, lab, name),
                )
            time.sleep(POLL_S)

    def _raise_dead(self, lab: KubeRunning, pod: kube.PodState) -> None:
        container = objects.dns_name(SERVER)
        log = kube.pod_log(self.cluster, lab.namespace, pod.name, container, previous=pod.restarts > 0)
        log = log or kube.pod_log(self.cluster, lab.namespace, pod.name, container)
        write_atomic(RunDir(self.run_dir).server_log, log)
        reason = load_failure(log, self.model)
        name, code = pod.terminated or ("?", -1)
        if reason:
            raise ModelLoadError(
                f"triton_server could not load {reason} (pod {pod.name}, exit code {code})",
                f"fix the model; the server's log is in {RunDir(self.run_dir).server_log}; "
                + _events(self, lab, pod.name),
            )
        raise ServerDied(
            f"triton_server's container in {pod.name} exited with code {code} ({_excerpt(log)})",
            _events(self, lab, pod.name),
        )

    def _wait_analyzers(self, lab: KubeRunning) -> list[str]:
        selector = f"{kube.LAB_LABEL}={lab.name},{objects.LAB_SELECTOR_ANALYZER}"
        want = self.rendered.design.service(ANALYZER).replicas
        deadline = time.monotonic() + FILL_TIMEOUT_S
        while True:
            found = kube.pods(self.cluster, lab.namespace, selector)
            for pod in found:
                self._raise_if_stuck(lab, pod)
            running = [p.name for p in found if p.phase == "Running"]
            if len(running) >= want:
                return sorted(running, key=lambda n: int(n.rpartition("-")[2]))
            if time.monotonic() >= deadline:
                raise ServerDied(f"analyzer pods of {lab.name} not running after {FILL_TIMEOUT_S:.0f} s",
                                 f"kubectl get pods -n {lab.namespace}")  # fmt: skip
            time.sleep(POLL_S)

    @property
    def files(self) -> RunDir:
        return RunDir(self.run_dir)

    def name_of(self, lab: KubeRunning) -> str:
        return lab.name

    def collect(self, lab: KubeRunning) -> None:
        try:
            if lab.server_pod:
                log = kube.pod_log(self.cluster, lab.namespace, lab.server_pod, objects.dns_name(SERVER))
                write_atomic(self.files.server_log, log or "(the server pod's log was empty)\n")
        finally:
            self.manifest["ended_utc"] = utc_now()
            write_json(self.files.manifest, self.manifest)

    def down(self, lab: KubeRunning, reading: threading.Event | None = None) -> None:
        if reading is not None:
            reading.wait()
        if lab.created:
            kube.remove_lab(self.cluster, lab.namespace, lab.name, self.own_namespace, REMOVE_TIMEOUT_S)
        shutil.rmtree(self.run_area, ignore_errors=True)


def _excerpt(log: str) -> str:
    lines = [line.strip() for line in log.strip().splitlines() if line.strip()]
    return " | ".join(lines[-LOG_EXCERPT_LINES:]) or "its log is empty"


def _events(backend: KubeBackend, lab: KubeRunning, pod: str) -> str:
    events = kube.pod_events(backend.cluster, lab.namespace, pod)
    return ("events: " + "; ".join(events[-4:])) if events else f"kubectl describe pod {pod} -n {lab.namespace}"
