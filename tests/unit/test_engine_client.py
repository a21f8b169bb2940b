"""composer.engine.client.connect against a stand-in engine: an HTTP server on 127.0.0.1 that answers
/version as dockerd does and counts what it is asked. No Docker needed."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import docker
import pytest

from composer.engine.client import connect, engine_facts

VERSION = {"ApiVersion": "1.41", "MinAPIVersion": "1.12", "Version": "20.10.24", "KernelVersion": "6.1.0"}


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The paths the stand-in engine was asked for, in order; DOCKER_HOST points at it."""
    asked: list[str] = []

    class Engine(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            asked.append(self.path)
            body = json.dumps(VERSION).encode() if self.path.endswith("/version") else b"{}"
            self.send_response(200 if self.path.endswith("/version") else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Engine)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{server.server_address[1]}")
    try:
        yield asked
    finally:
        server.shutdown()
        server.server_close()


def test_connect_asks_the_engine_once_and_its_facts_come_from_that_answer(engine: list[str]) -> None:
    client = connect(timeout_s=5)

    facts = engine_facts(client)

    assert isinstance(client, docker.DockerClient) and client.api.api_version == "1.41"
    assert (facts["Version"], facts["KernelVersion"]) == ("20.10.24", "6.1.0")
    assert engine == ["/version"]  # the SDK's own version negotiation, nothing asked twice


def test_facts_are_kept_per_client(engine: list[str]) -> None:
    first, second = connect(timeout_s=5), connect(timeout_s=5)

    assert engine_facts(first) == engine_facts(second) == engine_facts(first)
    assert engine == ["/version", "/version"]
