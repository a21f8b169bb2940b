"""A second Docker engine on this machine, started by the test itself, as a stand-in remote engine.

Its own socket, data root, exec root, containerd namespaces and bridge; stopped by the pid we
started and its bridge and folders removed afterwards (see shared/LAB.md for the recipe).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
import docker.errors
import requests.exceptions

BRIDGE = "tisbd2br0"
BRIDGE_CIDR = "10.213.77.1/24"
ADDRESS_POOL = "base=10.213.80.0/20,size=24"
START_DEADLINE_S = 40.0


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def _wait_for(url: str, deadline: float) -> docker.DockerClient:
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            client = docker.DockerClient(base_url=url, timeout=120)
            client.ping()
            return client
        except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
            last = exc
            time.sleep(0.2)
    raise RuntimeError(f"second dockerd did not answer on {url} within {START_DEADLINE_S} s: {last}")


def copy_images(source: docker.DockerClient, target: docker.DockerClient, images: tuple[str, ...]) -> None:
    """docker save | docker load through the two APIs."""
    for image in images:
        target.api.load_image(source.api.get_image(image))


@contextmanager
def second_engine(root: Path) -> Iterator[str]:
    """Start dockerd on root/docker.sock; yield its unix:// URL; stop it and remove what it made."""
    if os.geteuid() != 0 or shutil.which("dockerd") is None or shutil.which("ip") is None:
        raise RuntimeError("a second engine needs root, dockerd and ip (iproute2)")
    root.mkdir(parents=True, exist_ok=True)
    socket_path = root / "docker.sock"
    url = f"unix://{socket_path}"
    _ip("link", "add", "name", BRIDGE, "type", "bridge")
    process: subprocess.Popen[bytes] | None = None
    try:
        _ip("addr", "add", BRIDGE_CIDR, "dev", BRIDGE)
        _ip("link", "set", BRIDGE, "up")
        log = (root / "dockerd.log").open("wb")
        process = subprocess.Popen(
            [
                "dockerd",
                "--host", url,
                "--data-root", str(root / "data"),
                "--exec-root", str(root / "exec"),
                "--pidfile", str(root / "dockerd.pid"),
                "--bridge", BRIDGE,
                "--default-address-pool", ADDRESS_POOL,
                "--containerd-namespace", "tisbd2",
                "--containerd-plugins-namespace", "tisbd2p",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait_for(url, time.monotonic() + START_DEADLINE_S).close()
        yield url
    finally:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, check=False)
        subprocess.run(["umount", "-R", str(root / "exec")], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)
