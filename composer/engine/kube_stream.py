"""What travels through a Kubernetes API's streams: commands exec'd in a pod's container (argv,
no shell, output streamed, the exit code from the status channel), folders streamed into a pod as
a tar on the exec's stdin, files read back, and a loopback port forwarded to a pod's port."""

from __future__ import annotations

import base64
import contextlib
import os
import selectors
import socket
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import portforward, stream

from composer.engine.exec import ExecResult
from composer.engine.kube import API_TIMEOUT_S, CONNECTION_ERRORS, Cluster, api_error

CHUNK = 1 << 20
POLL_S = 0.5


@contextlib.contextmanager
def _own_client(cluster: Cluster) -> Iterator[Any]:
    """A CoreV1Api of its own for one stream: the client's ``stream()`` swaps its ApiClient's request
    method while it opens the socket, so a shared one would send other threads' calls down a websocket."""
    api = k8s.ApiClient(cluster.api.configuration)
    try:
        yield k8s.CoreV1Api(api)
    finally:
        api.close()  # type: ignore[no-untyped-call]  # the opened stream keeps its own socket


def _open(cluster: Cluster, namespace: str, pod: str, container: str, argv: list[str], stdin: bool) -> Any:
    try:
        with _own_client(cluster) as core:
            return _exec(core, namespace, pod, container, argv, stdin)
    except (ApiException, *CONNECTION_ERRORS) as exc:
        raise api_error(exc, f"exec in {pod}/{container}") from None


def _exec(core: Any, namespace: str, pod: str, container: str, argv: list[str], stdin: bool) -> Any:
    return stream(
        core.connect_get_namespaced_pod_exec,
        pod,
        namespace,
        container=container,
        command=argv,
        stdin=stdin,
        stdout=True,
        stderr=True,
        tty=False,
        _preload_content=False,
    )


def _exit_code(ws: Any) -> int:
    """The status channel's verdict; -1 when the stream closed without one (the pod went)."""
    try:
        status = yaml.safe_load(ws.read_channel(3) or "null")
    except yaml.YAMLError:
        return -1
    if not isinstance(status, dict):
        return -1
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            return int(cause.get("message", -1))
    return -1


def run_in_pod(
    cluster: Cluster,
    namespace: str,
    pod: str,
    container: str,
    argv: list[str],
    on_output: Callable[[str], None],
    *,
    stdin: Iterator[bytes] | None = None,
) -> ExecResult:
    """Exec argv in the pod's container, its output streamed as it comes; stdin, when given, is
    written first (the command must know its length: v4 streams cannot half-close)."""
    ws = _open(cluster, namespace, pod, container, argv, stdin is not None)
    chunks: list[str] = []
    try:
        if stdin is not None:
            for block in stdin:
                ws.write_stdin(block)
        while True:
            still_open = ws.is_open()
            if still_open:
                ws.update(timeout=POLL_S)
            for channel in (1, 2):  # stdout, stderr: what arrived, also after the stream closed
                if ws.peek_channel(channel, timeout=0):
                    text = ws.read_channel(channel, timeout=0)
                    chunks.append(text)
                    on_output(text)
            if not still_open:
                break
        code = _exit_code(ws)
    except CONNECTION_ERRORS:
        code = -1  # the stream broke: the pod, its node or the apiserver went; the caller asks which
    finally:
        ws.close()
    return ExecResult(code, "".join(chunks))


def output_in_pod(cluster: Cluster, namespace: str, pod: str, container: str, argv: list[str]) -> ExecResult:
    return run_in_pod(cluster, namespace, pod, container, argv, lambda _: None)


def read_file(cluster: Cluster, namespace: str, pod: str, container: str, path: str) -> bytes | None:
    """A file's bytes from the pod (base64 on the way: the stream carries text)."""
    result = output_in_pod(cluster, namespace, pod, container, ["base64", path])
    if result.exit_code != 0:
        return None
    return base64.b64decode(result.output)


def tar_of(folder: Path) -> Path:
    """The folder as a tar in a temporary file (the caller removes it): its size is said before it travels."""
    handle, name = tempfile.mkstemp(prefix="tisbench-fill-", suffix=".tar")
    os.close(handle)
    with tarfile.open(name, "w") as archive:
        archive.add(str(folder), arcname=".")
    return Path(name)


def _blocks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            yield block


def fill(cluster: Cluster, namespace: str, pod: str, container: str, archive: Path, target: str) -> None:
    """Unpack ``archive`` into ``target`` in the pod's container, streamed on the exec's stdin."""
    size = archive.stat().st_size
    # A constant script; the length and the target are positional parameters.
    argv = ["sh", "-c", 'head -c "$1" | tar -x -o -C "$2"', "sh", str(size), target]
    result = run_in_pod(cluster, namespace, pod, container, argv, lambda _: None, stdin=_blocks(archive))
    if result.exit_code != 0:
        raise api_error(RuntimeError(result.output.strip() or f"exit {result.exit_code}"), f"filling {target} in {pod}")


class LocalForward:
    """A port on 127.0.0.1 whose connections each reach ``port`` of the pod through the API's
    port-forward: HTTP clients (the metrics scraper) use it as a plain URL."""

    def __init__(self, cluster: Cluster, namespace: str, pod: str, port: int) -> None:
        self.cluster, self.namespace, self.pod, self.port = cluster, namespace, pod, port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.local_port = self._listener.getsockname()[1]
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, name=f"forward-{pod}-{port}", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _relay(self, conn: socket.socket) -> None:
        try:
            with _own_client(self.cluster) as core:
                pf = portforward(
                    core.connect_get_namespaced_pod_portforward,
                    self.pod,
                    self.namespace,
                    ports=str(self.port),
                    _request_timeout=API_TIMEOUT_S,
                )
            remote = pf.socket(self.port)
        except Exception:  # the pod went, or the kubelet refused: the client sees a closed connection
            conn.close()
            return
        remote.setblocking(True)
        with contextlib.closing(conn), contextlib.closing(remote), selectors.DefaultSelector() as sel:
            sel.register(conn, selectors.EVENT_READ, remote)
            sel.register(remote, selectors.EVENT_READ, conn)
            deadline = time.monotonic() + 600
            while not self._closed.is_set() and time.monotonic() < deadline:
                for key, _ in sel.select(timeout=POLL_S):
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)
        with contextlib.suppress(Exception):
            pf.close()

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.local_port}"

    def close(self) -> None:
        self._closed.set()
        self._listener.close()

    def __enter__(self) -> LocalForward:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
