"""Commands run inside a lab's containers, and files read out of them, through the engine's exec
and archive APIs: argv lists (no shell), output streamed, the exit code from exec inspect."""

from __future__ import annotations

import io
import os
import signal
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: str


def run_in_container(
    client: docker.DockerClient, container_id: str, argv: list[str], on_output: Callable[[str], None]
) -> ExecResult:
    """Exec argv (no shell) in the container, streaming its output; the exit code from exec inspect."""
    api = client.api
    exec_id = api.exec_create(container_id, argv, stdout=True, stderr=True, workdir="/workspace")["Id"]
    chunks: list[str] = []
    try:
        for chunk in api.exec_start(exec_id, stream=True, demux=False):
            text = chunk.decode("utf-8", errors="replace")
            chunks.append(text)
            on_output(text)
    except BaseException:
        _stop_exec(api, exec_id)
        raise
    code = api.exec_inspect(exec_id).get("ExitCode")
    return ExecResult(-1 if code is None else int(code), "".join(chunks))


def output_of(client: docker.DockerClient, container_id: str, argv: list[str]) -> str | None:
    """argv's output in the container, or None when the engine would not run it (no such
    container, the exec refused, the engine gone): for questions whose answer may be missing."""
    try:
        return run_in_container(client, container_id, argv, lambda _: None).output
    except docker.errors.DockerException:
        return None


def _stop_exec(api: Any, exec_id: str) -> None:
    """On a local engine the exec's host pid is ours to signal; `timeout` forwards TERM to perf_analyzer."""
    try:
        pid = int(api.exec_inspect(exec_id).get("Pid") or 0)
        if pid > 0:
            os.kill(pid, signal.SIGTERM)
    except (docker.errors.DockerException, OSError, ValueError):
        pass  # a remote engine, or already gone: removing the lab ends it


def fetch_file(client: docker.DockerClient, container_id: str, path: str) -> bytes | None:
    """A file's bytes from the container (through the engine, so root-owned files never reach the host)."""
    try:
        stream, _ = client.api.get_archive(container_id, path)
    except docker.errors.NotFound:
        return None
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
        for member in archive:
            if member.isfile():
                extracted = archive.extractfile(member)
                return extracted.read() if extracted else None
    return None
