"""The engine this process talks to: a connected client, and where its published ports are reached."""

from __future__ import annotations

import contextlib
import os
import urllib.parse
import weakref
from collections.abc import Iterator
from typing import Any

import docker
import docker.api.client
from docker.transport import SSHHTTPAdapter

from composer.engine.host import DEFAULT_URL, docker_host, engine_failures, unreachable

SSH_POOL_SIZE = 4
_FACTS: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


class _APIClient(docker.APIClient):  # type: ignore[misc]  # docker-py ships no types
    """The SDK's client, keeping the /version answer it asks for to settle the API version: the
    engine's facts (composer.engine.client.engine_facts) come from that one request."""

    def version(self, api_version: bool = True) -> dict[str, Any]:
        answer: dict[str, Any] = super().version(api_version)
        _FACTS.setdefault(self, dict(answer))
        return answer


class _DockerClient(docker.DockerClient):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:  # as docker.DockerClient, with _APIClient
        self.api = _APIClient(*args, **kwargs)


class _SshAdapter(SSHHTTPAdapter):  # type: ignore[misc]
    """docker-py's ssh transport, taking from ~/.ssh/config what ssh itself takes. docker-py reads
    HostName, User, IdentityFile and ProxyCommand there, but not Port (it writes 22 into a URL that
    names none), and always refuses a host missing from ~/.ssh/known_hosts: a host that ``ssh``
    reaches under ``StrictHostKeyChecking no`` (or ``accept-new``) was refused, and
    ``UserKnownHostsFile`` was never read."""

    def _create_paramiko_client(self, base_url: str) -> None:
        super()._create_paramiko_client(base_url)
        import paramiko

        config_file = os.path.expanduser("~/.ssh/config")
        if not os.path.exists(config_file):
            return
        config = paramiko.SSHConfig.from_path(config_file).lookup(urllib.parse.urlsplit(base_url).hostname or "")
        if urllib.parse.urlsplit(docker_host()).port is None and "port" in config:
            self.ssh_params["port"] = int(config["port"])  # the SDK wrote its default 22 into the URL
        for known in str(config.get("userknownhostsfile", "")).split():
            path = os.path.expanduser(known)
            if path != os.devnull and os.path.isfile(path):
                self.ssh_client.load_host_keys(path)  # as ssh: new keys are written where it reads them
        if str(config.get("stricthostkeychecking", "ask")).lower() in ("no", "off", "accept-new"):
            self.ssh_client.set_missing_host_key_policy(paramiko.AutoAddPolicy())


@contextlib.contextmanager
def _ssh_config_honoured() -> Iterator[None]:
    """docker-py makes its ssh adapter inside the client's constructor, and connects there: the one
    way to give it ours is its module's name for the class, for the length of that call."""
    made = docker.api.client.SSHHTTPAdapter
    docker.api.client.SSHHTTPAdapter = _SshAdapter
    try:
        yield
    finally:
        docker.api.client.SSHHTTPAdapter = made


def connect(timeout_s: float = 120.0) -> docker.DockerClient:
    """A client for the engine DOCKER_HOST names (or the local socket), checked by the /version
    request the SDK makes to settle the API version (kept: engine_facts answers from it).

    For ssh:// the SDK logs in while the client is made (paramiko), so both steps can fail."""
    try:
        # Over ssh:// each pooled connection is one ssh session running `docker system dial-stdio`;
        # OpenSSH allows 10 per login (MaxSessions), and the SDK's pool of 10 plus a burst overran it
        # ("Secsh channel open FAILED"). Fewer pooled sessions stay inside an sshd's default.
        ssh = docker_host().startswith("ssh://")
        with _ssh_config_honoured() if ssh else contextlib.nullcontext():
            client = _DockerClient.from_env(
                timeout=int(timeout_s), **({"max_pool_size": SSH_POOL_SIZE} if ssh else {})
            )
        if ssh:
            _one_pool(client)
        engine_facts(client)
    except engine_failures() as exc:
        raise unreachable(exc) from None
    return client


def engine_facts(client: docker.DockerClient) -> dict[str, Any]:
    """What the engine's /version says (daemon version, commit, kernel…), asked once per client
    (kept by its APIClient, which lives as long as the client)."""
    facts = _FACTS.get(client.api)
    if facts is None:
        facts = _FACTS[client.api] = dict(client.api.version())
    return facts


def _one_pool(client: docker.DockerClient) -> None:
    """One connection pool for the whole engine. docker-py's ssh adapter keys its pools by the full
    request URL (up to 9 of them, each keeping its idle connections), so a lab's calls to a dozen
    endpoints held a dozen ssh sessions open: past OpenSSH's MaxSessions 10, sshd refuses the next
    one ("Secsh channel open FAILED: Connect failed"). Asking every request's pool under one key keeps
    the sessions within SSH_POOL_SIZE, plus any request beyond it for as long as it runs."""
    adapter = client.api.get_adapter("http+docker://ssh")
    pool_of = adapter.get_connection
    adapter.get_connection = lambda url, proxies=None: pool_of("http+docker://ssh", proxies)


def engine_is_local() -> bool:
    """True when the client talks to this machine's default engine, whose bind mounts see our paths."""
    return docker_host() in (DEFAULT_URL, "unix:///run/docker.sock")


def engine_address() -> str:
    """Where the engine publishes ports: loopback for unix sockets, else the DOCKER_HOST's host."""
    parsed = urllib.parse.urlsplit(docker_host())
    if parsed.scheme in ("tcp", "ssh", "http", "https") and parsed.hostname:
        return parsed.hostname
    return "127.0.0.1"


def probe_host(bind_host: str) -> str:
    """The address to reach a published port: the engine's host, or loopback for a wildcard bind."""
    if not engine_is_local():
        return engine_address()
    return "127.0.0.1" if bind_host in ("0.0.0.0", "::") else bind_host
