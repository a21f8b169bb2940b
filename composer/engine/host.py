"""Which Docker engine the client talks to, and why it did not answer, in the SDK's own words.

DOCKER_HOST in this process's environment is the one place the engine is named: ``--docker-host``
(before or after the subcommand) writes it, ``docker.from_env`` reads it, and so do the checks
for a local engine. An unreachable engine becomes one line naming the URL and the deepest reason
the SDK gave (connection refused, authentication failed, a name that does not resolve), not the
class name of an exception three wrappers down.
"""

from __future__ import annotations

import os
import re
import sys
import types
import urllib.parse

import docker.errors
import docker.utils
import requests.exceptions
import urllib3.exceptions

from composer.core.errors import DockerUnavailable

DEFAULT_URL = "unix:///var/run/docker.sock"
# Every exception the docker SDK raises itself (not the requests or OS errors under it): for code
# above the engine that must carry on whatever the SDK refused, without naming the SDK's classes.
DOCKER_ERRORS: tuple[type[Exception], ...] = (docker.errors.DockerException,)
# What the SDK raises when an engine does not answer.
_SDK_FAILURES = (*DOCKER_ERRORS, requests.exceptions.RequestException)
_FAILURES = (*_SDK_FAILURES, OSError, EOFError)


def _paramiko() -> types.ModuleType | None:
    """paramiko, once an ssh:// engine has loaded it (composer/__init__ defers it until then)."""
    module = sys.modules.get("paramiko")
    return module if module is not None and "SSHException" in vars(module) else None


def engine_failures() -> tuple[type[BaseException], ...]:
    """The SDK's failures, and paramiko's SSHException (no OSError) once paramiko is in use."""
    return (*_FAILURES, *_ssh_failures())


def _ssh_failures() -> tuple[type[BaseException], ...]:
    ssh = _paramiko()
    return (ssh.SSHException,) if ssh else ()


def _reasons() -> tuple[type[BaseException], ...]:
    """Exceptions that carry a reason worth showing; a NameError or KeyError under them is the SDK's
    own business (docker-py re-raises a missing paramiko's NameError as "Install paramiko …")."""
    return (*engine_failures(), urllib3.exceptions.HTTPError)
_POOL_PREFIX = re.compile(r"^\w*(?:HTTP|HTTPS)Connection(?:Pool)?\([^)]*\):\s*")
_SDK_PREFIX = "Error while fetching server API version: "
_MAX_REASON = 240


def docker_host() -> str:
    """The engine's URL: DOCKER_HOST (as --docker-host set it), else the local socket."""
    return os.environ.get("DOCKER_HOST") or DEFAULT_URL


def use(url: str) -> None:
    """Point every client this process makes at ``url``; ValueError with the SDK's words if it is no URL."""
    try:
        docker.utils.parse_host(url, is_win32=False)
    except docker.errors.DockerException as exc:
        raise ValueError(str(exc)) from None
    os.environ["DOCKER_HOST"] = url


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not s for s in seen):
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _words(exc: BaseException) -> str:
    ssh = _paramiko()
    if ssh and isinstance(exc, ssh.ssh_exception.NoValidConnectionsError):
        inner = next(iter(exc.errors.values()), None)
        why = f": {_words(inner)}" if isinstance(inner, BaseException) else ""
        return f"{exc.strerror}{why}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = _POOL_PREFIX.sub("", str(exc).removeprefix(_SDK_PREFIX))
    return text or type(exc).__name__


def reason(exc: BaseException) -> str:
    """The deepest reason in ``exc``'s chain that the SDK (or the OS, or paramiko) put into words."""
    chain = _chain(exc)
    meaningful = [e for e in chain if isinstance(e, _reasons())] or chain
    text = " ".join(_words(meaningful[-1]).split())
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


def _hint(url: str) -> str:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme != "ssh":
        return "start it (sudo dockerd, or make docker) or point --docker-host/DOCKER_HOST at a running engine"
    port = f"-p {parsed.port} " if parsed.port else ""
    target = f"{parsed.username}@{parsed.hostname}" if parsed.username else parsed.hostname
    return (
        f"check that `ssh {port}{target} docker version` answers without a prompt "
        "(key and known_hosts in ~/.ssh; the docker CLI and a running engine on that host)"
    )


def unreachable(exc: BaseException) -> DockerUnavailable:
    """Exit 3: the engine at DOCKER_HOST did not answer, and the SDK's reason why."""
    url = docker_host()
    return DockerUnavailable(f"cannot reach the Docker engine at {url}: {reason(exc)}", _hint(url))


def translated(exc: BaseException) -> DockerUnavailable | None:
    """An engine failure that escaped the call sites which translate their own (as compose's
    ``handle_connection_errors`` does at its command boundary): exit 3 with the SDK's reason.
    An OSError alone is not claimed: outside the SDK it is this machine's, not the engine's."""
    if isinstance(exc, docker.errors.APIError):
        return DockerUnavailable(
            f"the Docker engine at {docker_host()} refused a request: {exc.explanation or reason(exc)}",
            "see the engine's log (journalctl -u docker, or dockerd's output)",
        )
    return unreachable(exc) if isinstance(exc, (*_SDK_FAILURES, *_ssh_failures())) else None
