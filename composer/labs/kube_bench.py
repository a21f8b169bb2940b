"""One benchmark on a Kubernetes lab: the server's address as the analyzers can reach it, perf_analyzer
exec'd into every analyzer pod at once, the server's metrics per sweep point through a port-forward,
each client's files fetched back through the API, the clients merged as swarm's are."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from composer.analyzer.attempts import with_exports
from composer.analyzer.identity import planned
from composer.analyzer.perf_analyzer import BenchSettings, explain_failure, with_deadline
from composer.analyzer.results import parse_perf_csv, summarize_profile_export
from composer.core.designer import KUBE_FILE, run_area
from composer.core.errors import AnalyzerError, UsageError
from composer.core.fsutil import write_atomic, write_json
from composer.core.names import generated_name
from composer.core.run_dir import RunDir
from composer.core.triton import ANALYZER, SERVER, SERVER_PORTS
from composer.engine import kube
from composer.engine import kube_stream as streams
from composer.engine.exec import ExecResult
from composer.labs.analyzer_execs import AnalyzerExecs, Progress, mark_points
from composer.labs.bench import BenchResult
from composer.labs.kube import KubeBackend, KubeFile, KubeRunning, render_kube_file
from composer.labs.plan import LabPlan
from composer.labs.registry import owner_tag
from composer.labs.repeats import metrics_warnings, run_variants, settle, summarize
from composer.labs.request import BenchRequest
from composer.labs.run_manifest import default_run_dir, mark_status, prepare_run_dir, started_manifest
from composer.labs.session import LabSession, failure_record
from composer.labs.swarm import judged
from composer.render import kubernetes as objects
from composer.runs.merge import ClientRun, merge_clients
from composer.runs.scraper import MetricsRecorder

Say = Callable[[str], None]
# Whether a name reaches the server's HTTP port from an analyzer pod: a constant script, the host an argument.
REACH = ["python3", "-c", "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 3)"]


def server_address(backend: KubeBackend, lab: KubeRunning, say: Say) -> dict[str, Any]:
    """The server by its Service name, as a real cluster wants; on a cluster whose Services do not
    route between pods (no DNS, no kube-proxy) its pod's address, said and recorded. The name is
    tried from an analyzer pod only where the cluster has its own DNS: without one a pod falls back
    to the node's resolver, and the lookup would leave the cluster."""
    service = objects.server_service_name()
    why = kube.why_no_service_routing(backend.cluster)
    if why is None:
        probe = streams.output_in_pod(backend.cluster, lab.namespace, lab.analyzers[0], objects.dns_name(ANALYZER),
                                      [*REACH, service, str(SERVER_PORTS["http"])])  # fmt: skip
        if probe.exit_code == 0:
            return {"used": service, "service": service, "by": "service"}
        why = "the Service name did not answer from an analyzer pod"
    found = kube.pods(backend.cluster, lab.namespace, objects.LAB_SELECTOR_SERVER)
    pod = next(p for p in found if p.name == lab.server_pod)
    say(
        f"this cluster routes no Service between pods ({why}): the analyzers reach triton_server at its pod "
        f"address {pod.ip} instead of {service} (recorded in manifest.json)"
    )
    return {"used": pod.ip, "service": service, "by": "pod address", "why": why}


class _Clients:
    """perf_analyzer in every analyzer pod at once; client 0's output is the sweep's clock."""

    def __init__(self, backend: KubeBackend, lab: KubeRunning, files: RunDir, recorder: MetricsRecorder,
                 on_point: Callable[[str], None]) -> None:  # fmt: skip
        self.backend, self.lab, self.files, self.recorder, self.on_point = backend, lab, files, recorder, on_point
        self.results: dict[int, ExecResult | BaseException] = {}
        self.started: list[float | None] = []

    def _run(self, slot: int, pod: str, argv: list[str]) -> None:
        where = self.files.client(slot)
        where.path.mkdir(parents=True, exist_ok=True)
        with where.log.open("w", encoding="utf-8") as log:

            def output(text: str) -> None:
                log.write(text)
                log.flush()
                if slot == 0:
                    mark_points(text, self.recorder, self.started, self.on_point)

            try:
                self.results[slot] = streams.run_in_pod(self.backend.cluster, self.lab.namespace, pod,
                                                        objects.dns_name(ANALYZER), argv, output)  # fmt: skip
            except BaseException as exc:  # handed to the main thread
                self.results[slot] = exc

    def run(self, argv: list[str]) -> None:
        threads = [
            threading.Thread(target=self._run, args=(slot, pod, argv), name=f"client-{slot}", daemon=True)
            for slot, pod in enumerate(self.lab.analyzers)
        ]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.2)  # a Ctrl-C reaches the main thread between joins


def _collect(clients: _Clients, rendered: KubeFile, timeout_s: float) -> list[ClientRun]:
    """Each client's CSV and export fetched from its pod into clients/client-<slot>/; rows per client."""
    backend, lab, files = clients.backend, clients.lab, clients.files
    outputs, runs = rendered.client.outputs, []
    for slot, pod in enumerate(lab.analyzers):
        result = clients.results.get(slot)
        if isinstance(result, BaseException):
            raise result
        where = files.client(slot)
        container = objects.dns_name(ANALYZER)
        csv = streams.read_file(backend.cluster, lab.namespace, pod, container, outputs.csv)
        if result is None or result.exit_code != 0 or not csv:
            code = None if result is None else result.exit_code
            error = explain_failure(code, result.output if result else "", timeout_s)
            raise AnalyzerError(f"client {slot}: {error.message}", error.hint)
        text = csv.decode("utf-8")
        write_atomic(where.csv, text)
        experiments = None
        export = outputs.profile_export and streams.read_file(backend.cluster, lab.namespace, pod, container,
                                                              outputs.profile_export)  # fmt: skip
        if export:
            write_atomic(where.profile_export, export.decode("utf-8"))
            experiments = tuple(summarize_profile_export(where.profile_export))
        runs.append(ClientRun(slot, tuple(parse_perf_csv(text, str(where.csv))), experiments))
    return runs


@dataclass(frozen=True)
class PodAnalyzer:
    """An analyzer pod, through the API's exec: where a one-client lab's attempts run."""

    cluster: kube.Cluster
    namespace: str
    pod: str

    def run(self, argv: list[str], on_output: Callable[[str], None]) -> ExecResult:
        return streams.run_in_pod(self.cluster, self.namespace, self.pod, objects.dns_name(ANALYZER), argv, on_output)

    def fetch(self, path: str) -> bytes | None:
        return streams.read_file(self.cluster, self.namespace, self.pod, objects.dns_name(ANALYZER), path)


def _measure(backend: KubeBackend, lab: KubeRunning, rendered: KubeFile, request: BenchRequest, say: Say,
             shown: Shown) -> BenchResult:  # fmt: skip
    """The server reached as the pods can, then one analyzer as on one engine (its attempts, retries,
    repeats and transports) or many at once, merged."""
    files, manifest = backend.files, backend.manifest
    address = server_address(backend, lab, say)
    settings = replace(rendered.client.settings, server_host=address["used"])
    argv = list(rendered.client.argv)
    at = argv.index("-u") + 1  # the server by the address that reaches it
    argv[at] = f"{address['used']}:{argv[at].rpartition(':')[2]}"
    manifest.update(server_address=address, perf_analyzer_argv=argv, pods=_pod_facts(backend, lab))
    write_json(files.manifest, manifest)
    say(f"running perf_analyzer in {len(lab.analyzers)} analyzer pod(s): {' '.join(argv)}")
    with streams.LocalForward(backend.cluster, lab.namespace, lab.server_pod, SERVER_PORTS["metrics"]) as fwd:
        recorder = MetricsRecorder(f"http://{fwd.url}/metrics", backend.model, settings.sweep.kind)
        if len(lab.analyzers) == 1:
            return _one(backend, lab, replace(settings, analyzer_version=rendered.client.analyzer_version), rendered,
                        request, recorder, say, shown)  # fmt: skip
        recorder.scrape("start")
        clients = _Clients(backend, lab, files, recorder, shown[0])
        clients.run(with_deadline(argv, settings.timeout_s))
        recorder.scrape("end")
    _raise_if_server_died(backend, lab)
    runs = _collect(clients, rendered, settings.timeout_s)
    summary = merge_clients(backend.model, str(manifest["release"]), runs)
    unstable = judged(summary, files, list(range(len(runs))), rendered.client.criterion)
    summary["warnings"] = metrics_warnings(recorder.write(files.path, clients.started, {}))
    write_json(files.summary, summary)
    say(f"collected {len(runs)} client results; latency: {summary['latency_source']}")
    mark_status(manifest, unstable)
    return BenchResult(files.path, summary, manifest)


Shown = tuple[Callable[[str], None], Progress | None]  # the live view's sweep point and request count


def _one(backend: KubeBackend, lab: KubeRunning, settings: BenchSettings, rendered: KubeFile, request: BenchRequest,
         recorder: MetricsRecorder, say: Say, shown: Shown) -> BenchResult:  # fmt: skip
    """One analyzer pod: perf_analyzer's attempts as on one engine, every point kept (or, with
    --require-stable, the first that never settles fails the run), --repeat and transport lists."""
    files, manifest = backend.files, backend.manifest
    pod = PodAnalyzer(backend.cluster, lab.namespace, lab.analyzers[0])
    execs = AnalyzerExecs(pod, files.analyzer_log, recorder, shown[0], rendered.client.outputs,
                          check_lab=lambda _: _raise_if_server_died(backend, lab), on_progress=shown[1])  # fmt: skip
    try:
        recorder.scrape("start")
        repeats = run_variants(settings, request, rendered.retries, execs, files, manifest, say)
        recorder.scrape("end")
        repeats = [replace(r, results=with_exports(r.results, execs)) for r in repeats]
    finally:
        execs.log.close()
    summary, _ = summarize(files, repeats, settings, backend.model, str(manifest["release"]), recorder, execs.started)
    write_json(files.summary, summary)
    say(f"measured {len(summary['rows'])} point(s)")
    settle(manifest, repeats, request, settings)
    return BenchResult(files.path, summary, manifest)


def _raise_if_server_died(backend: KubeBackend, lab: KubeRunning) -> None:
    found = kube.pods(backend.cluster, lab.namespace, objects.LAB_SELECTOR_SERVER)
    pod = next((p for p in found if p.name == lab.server_pod), None)
    if pod is None or pod.restarts or pod.terminated:
        raise AnalyzerError(
            f"triton_server of kubernetes lab {lab.name} died during the benchmark",
            f"see {backend.files.server_log}",
        )


def _pod_facts(backend: KubeBackend, lab: KubeRunning) -> dict[str, Any]:
    found = kube.pods(backend.cluster, lab.namespace, f"{kube.LAB_LABEL}={lab.name}")
    node = next((p.node for p in found if p.node), None)
    backend.manifest["kubernetes"]["node"] = kube.node_facts(backend.cluster, node)
    for pod in found:  # the image ids (digests) the node really ran, per service
        for container, image_id in pod.images.items():
            service = "server" if container == objects.dns_name(SERVER) else "sdk"
            backend.manifest["image_ids"][service] = image_id
    return {p.name: {"ip": p.ip, "node": p.node, "image_ids": p.images} for p in found}


def run_kube_lab(
    plan: LabPlan,
    clients: int,
    request: BenchRequest,
    say: Say,
    *,
    timeout_s: float | None = None,
    keep: bool = False,
    context: str | None = None,
    namespace: str | None = None,
    on_point: Callable[[str], None] = lambda p: None,
    on_progress: Progress | None = None,
) -> BenchResult:
    """Run one benchmark with ``clients`` analyzer pods on the cluster KUBECONFIG (``context``) names."""
    stack = plan.stack
    render_kube_file(plan, stack.name, clients, request, namespace)  # input errors before any cluster call
    cluster = kube.connect(context)
    try:
        if namespace is not None and kube.namespace_exists(cluster, namespace) is None:
            raise UsageError(
                f"--namespace {namespace}: no such namespace on {cluster.server}",
                f"create it (kubectl create namespace {namespace}), or leave --namespace out for one of the lab's own",
            )
        name = _free_name(cluster, stack.name, namespace)
        rendered = render_kube_file(plan, name, clients, request, namespace, owner_tag())
        run_dir = prepare_run_dir(request.out or default_run_dir(name))
        files = RunDir(run_dir)
        manifest = _manifest(cluster, plan, rendered, clients, name)
        write_atomic(run_dir / KUBE_FILE, rendered.text)
        write_json(files.manifest, manifest)
        ready_s = timeout_s or stack.server.ready_timeout_s
        backend = KubeBackend(cluster, rendered, run_area(stack, name), run_dir, manifest, stack.model, ready_s, say,
                              own_namespace=namespace is None)  # fmt: skip
        try:
            with LabSession(backend, say=say, keep=keep) as lab:
                say(f"kubernetes lab {name} ready in {lab.ready_s:.2f} s (server pod {lab.server_pod})")
                return _measure(backend, lab, rendered, request, say, (on_point, on_progress))
        except BaseException as exc:
            manifest.update(status="failed", **failure_record(exc))
            write_json(files.manifest, manifest)
            raise
    finally:
        cluster.close()


def _free_name(cluster: kube.Cluster, base: str, namespace: str | None) -> str:
    """A lab name no lab on the cluster has, whose own namespace (unless the user named one) is free."""
    taken = {lab.name for lab in kube.lab_namespaces(cluster)}
    return generated_name(
        base,
        lambda name: name in taken
        or (namespace is None and kube.namespace_exists(cluster, objects.namespace_of(name)) is not None),
    )


def _manifest(cluster: kube.Cluster, plan: LabPlan, rendered: KubeFile, clients: int, name: str) -> dict[str, Any]:
    stack, found = plan.stack, rendered.client
    images: dict[str, dict[str, Any]] = {
        "server": {"ref": plan.images.server, "id": None, "repo_digests": []},
        "sdk": {"ref": plan.images.sdk, "id": None, "repo_digests": []},
    }
    return started_manifest(
        lab=name,
        release=str(plan.release),
        design=rendered.design,
        stack=stack,
        model={"name": stack.model, "version": (found.metadata.get("versions") or ["?"])[-1], "config": found.config},
        images=images,
        analyzer=planned(str(plan.release), plan.image_set),
        argv=found.argv,
        timeout_s=found.settings.timeout_s,
        clients=clients,
        compose_file=KUBE_FILE,
        model_source=f"{stack.models_dir / stack.model / 'config.pbtxt'} (read locally, not from the server)",
        kubernetes={
            "server": cluster.server,
            "context": cluster.context,
            "version": cluster.version,
            "namespace": rendered.namespace,
        },
    )
