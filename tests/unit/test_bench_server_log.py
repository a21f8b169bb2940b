"""The server's log kept beside a run's results, whatever the engine says when it is asked for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker.errors
import pytest

from composer.core.run_dir import RunDir
from composer.labs.bench import _keep_server_log
from composer.labs.handle import LabHandle


class _LogsApi:
    def __init__(self, answer: bytes | Exception) -> None:
        self.answer = answer

    def logs(self, container_id: str, **_: Any) -> bytes:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class _Client:
    def __init__(self, answer: bytes | Exception) -> None:
        self.api = _LogsApi(answer)


def _lab(answer: bytes | Exception) -> LabHandle:
    return LabHandle(_Client(answer), "lab", None, "24.10", "server", "sdk", 8000)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("answer", "kept"),
    [
        (b"I1021 server started\n", "I1021 server started\n"),
        (docker.errors.NotFound("gone"), "(the server container was gone)\n"),
        (docker.errors.DockerException("engine went away"), "(the server's log could not be read: engine went away)\n"),
    ],
)
def test_the_servers_log_or_a_note_is_kept(tmp_path: Path, answer: bytes | Exception, kept: str) -> None:
    _keep_server_log(_lab(answer), tmp_path)

    assert RunDir(tmp_path).server_log.read_text() == kept
