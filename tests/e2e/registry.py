"""A real image registry on 127.0.0.1 for the pull tests: Debian's docker-registry (distribution 2.8).

The engine treats 127.0.0.0/8 as an insecure registry without configuration. Each registry is
started by the test, with its own storage in a temp dir, and stopped by the pid it started.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import docker

from .support import unavailable

BINARY = "docker-registry"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalRegistry:
    """``docker-registry serve`` on 127.0.0.1:PORT; with ``auth`` it wants htpasswd credentials (401)."""

    def __init__(self, root: Path, *, auth: bool = False) -> None:
        if shutil.which(BINARY) is None:
            unavailable(f"{BINARY} is missing (apt-get install docker-registry; make test brings it)")
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        root.mkdir(parents=True, exist_ok=True)
        config = [
            "version: 0.1",
            "log: {level: error}",
            f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}}}",
            f"http: {{addr: '{self.address}'}}",
        ]
        if auth:  # a missing htpasswd file is provisioned with a random user: nobody here can log in
            config.append(f"auth: {{htpasswd: {{realm: tisbench-test, path: {root / 'htpasswd'}}}}}")
        (root / "config.yml").write_text("\n".join(config) + "\n")
        self._log = (root / "registry.log").open("wb")
        self._process = subprocess.Popen(
            [BINARY, "serve", str(root / "config.yml")], stdout=self._log, stderr=subprocess.STDOUT
        )
        self._wait_ready(auth)

    def _wait_ready(self, auth: bool) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://{self.address}/v2/", timeout=1).close()
                return
            except urllib.error.HTTPError as exc:
                if auth and exc.code == 401:
                    return
            except OSError:
                pass
            if self._process.poll() is not None:
                break
            time.sleep(0.1)
        self.close()
        raise AssertionError(f"the test registry on {self.address} did not start")

    def push(self, client: docker.DockerClient, source: str, repository: str, tag: str) -> str:
        """Push ``source`` as ``<address>/<repository>:<tag>``, then drop that local tag again."""
        target = f"{self.address}/{repository}"
        client.api.tag(source, target, tag)
        try:
            for event in client.api.push(target, tag=tag, stream=True, decode=True):
                assert "error" not in event, event
        finally:
            client.api.remove_image(f"{target}:{tag}")
        return f"{target}:{tag}"

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()
