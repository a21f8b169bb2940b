"""--docker-host before or after the subcommand, and an unreachable engine in the SDK's own words.

No engine is needed: the engines named here do not exist (a missing socket, a closed port on
127.0.0.1), so each command stops at its first engine call and the error line says which URL it
was pointed at. The SDK's failures are real ones, raised by docker-py and paramiko themselves.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import click
import docker
import docker.errors
import paramiko
import pytest
from bad_inputs import make_stack
from click.testing import CliRunner, Result

from composer.cli.app import main
from composer.engine import host as engine_host

NOWHERE = "unix:///nonexistent/tisbench-docker-host.sock"
ELSEWHERE = "unix:///nonexistent/tisbench-docker-host-2.sock"


@pytest.fixture(autouse=True)
def _own_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """--docker-host writes DOCKER_HOST into the process; each test gets the original back."""
    for key in [k for k in os.environ if k.startswith("TISBENCH_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("DOCKER_HOST", "")
    monkeypatch.delenv("DOCKER_HOST")


def _invoke(*args: str | Path, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(
        main, [str(a) for a in args], env={"DOCKER_HOST": None, **(env or {})}, prog_name="tisbench"
    )


def _engine_error(result: Result) -> str:
    assert result.exit_code == 3, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tisbench: error: cannot reach the Docker engine at ")
    return lines[0]


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# Every command that talks to Docker, with what it needs to get as far as its first engine call.
DOCKER_COMMANDS = {
    "up": ("up", "{stack}"),
    "lab": ("lab", "{stack}", "--images", "lab"),
    "bench": ("bench", "some-lab"),
    "down": ("down", "some-lab"),
    "status": ("status",),
    "logs": ("logs", "some-lab"),
    "images-build": ("images", "build"),
    "images-pull": ("images", "pull", "{stack}"),
    "images-list": ("images", "list"),
    "images-rm": ("images", "rm", "--all"),
    "dataset-skeleton": ("dataset", "skeleton", "some-lab"),
}


def _args(command: str, stack: Path) -> list[str]:
    return [str(stack) if a == "{stack}" else a for a in DOCKER_COMMANDS[command]]


@pytest.mark.parametrize("command", sorted(DOCKER_COMMANDS))
def test_docker_host_after_the_subcommand(command: str, tmp_path: Path) -> None:
    result = _invoke(*_args(command, make_stack(tmp_path)), "--docker-host", NOWHERE)

    assert NOWHERE in _engine_error(result)


@pytest.mark.parametrize("command", sorted(DOCKER_COMMANDS))
def test_docker_host_before_the_subcommand(command: str, tmp_path: Path) -> None:
    result = _invoke("--docker-host", NOWHERE, *_args(command, make_stack(tmp_path)))

    assert NOWHERE in _engine_error(result)


def test_docker_host_between_a_group_and_its_subcommand() -> None:
    assert NOWHERE in _engine_error(_invoke("images", "--docker-host", NOWHERE, "list"))


def test_the_subcommands_docker_host_wins_over_the_groups() -> None:
    line = _engine_error(_invoke("--docker-host", ELSEWHERE, "status", "--docker-host", NOWHERE))

    assert NOWHERE in line
    assert ELSEWHERE not in line


def test_the_option_wins_over_the_environment() -> None:
    line = _engine_error(_invoke("status", "--docker-host", NOWHERE, env={"DOCKER_HOST": ELSEWHERE}))

    assert NOWHERE in line


def test_docker_host_from_the_environment() -> None:
    assert ELSEWHERE in _engine_error(_invoke("status", env={"DOCKER_HOST": ELSEWHERE}))


def test_matrix_takes_docker_host_after_the_subcommand(tmp_path: Path) -> None:
    out = tmp_path / "matrix"
    result = _invoke("matrix", make_stack(tmp_path), "--releases", "24.10", "--images", "lab", "--out", out,
                     "--docker-host", NOWHERE)

    assert f"release 24.10 failed: cannot reach the Docker engine at {NOWHERE}" in result.stderr


def _leaves(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found |= _leaves(command, f"{prefix}{name}-")
        else:
            found[f"{prefix}{name}"] = command
    return found


def test_every_command_that_talks_to_docker_takes_docker_host() -> None:
    """A new command must be sorted here: one that reaches the engine takes --docker-host."""
    without_docker = {"render", "check", "report", "compare", "runs", "init"}
    commands = _leaves(main)

    assert set(commands) == set(DOCKER_COMMANDS) | {"matrix", "tune"} | without_docker
    for name in set(DOCKER_COMMANDS) | {"matrix", "tune"}:
        assert "--docker-host" in {o for p in commands[name].params for o in p.opts}, name


def test_a_url_the_sdk_cannot_parse_is_bad_input() -> None:
    result = _invoke("status", "--docker-host", "ftp://engine.example")

    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        "tisbench: error: Invalid value for '--docker-host': Invalid bind address protocol: ftp://engine.example "
        "— see tisbench status --help"
    ]


def test_use_points_the_process_at_the_url() -> None:
    engine_host.use("ssh://root@127.0.0.1:2222")

    assert os.environ["DOCKER_HOST"] == "ssh://root@127.0.0.1:2222"
    assert engine_host.docker_host() == "ssh://root@127.0.0.1:2222"


def test_without_docker_host_the_local_socket() -> None:
    assert engine_host.docker_host() == "unix:///var/run/docker.sock"


def _failure_of(url: str) -> BaseException:
    """What docker-py raises for ``url`` when a client is made and pinged."""
    try:
        docker.DockerClient(base_url=url, timeout=5).ping()
    except engine_host.engine_failures() as exc:  # evaluated after the SDK loaded paramiko
        return exc
    raise AssertionError(f"{url} answered")


def test_a_missing_socket_is_the_os_reason() -> None:
    assert engine_host.reason(_failure_of(NOWHERE)) == "No such file or directory"


def test_a_closed_tcp_port_is_connection_refused() -> None:
    assert engine_host.reason(_failure_of(f"tcp://127.0.0.1:{_closed_port()}")) == "Connection refused"


def test_a_closed_ssh_port_names_the_port_and_the_refusal() -> None:
    port = _closed_port()

    assert engine_host.reason(_failure_of(f"ssh://root@127.0.0.1:{port}")) == (
        f"Unable to connect to port {port} on 127.0.0.1: Connection refused"
    )


def test_a_refused_ssh_login_is_paramikos_reason() -> None:
    assert engine_host.reason(paramiko.AuthenticationException("Authentication failed.")) == "Authentication failed."


def test_a_missing_paramiko_is_the_sdks_own_advice() -> None:
    try:
        try:
            raise NameError("name 'SSHHTTPAdapter' is not defined")
        except NameError as err:
            raise docker.errors.DockerException("Install paramiko package to enable ssh:// support") from err
    except docker.errors.DockerException as exc:
        failure = exc

    assert engine_host.reason(failure) == "Install paramiko package to enable ssh:// support"


def test_a_long_reason_is_cut_to_one_short_line() -> None:
    reason = engine_host.reason(docker.errors.DockerException("the engine said\n" + "no " * 200))

    assert "\n" not in reason
    assert len(reason) <= 240
    assert reason.startswith("the engine said no no")
    assert reason.endswith("…")


def test_unreachable_names_the_url_and_is_exit_3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", NOWHERE)

    error = engine_host.unreachable(_failure_of(NOWHERE))

    assert error.exit_code == 3
    assert error.message == f"cannot reach the Docker engine at {NOWHERE}: No such file or directory"
    assert "dockerd" in (error.hint or "")


def test_an_ssh_engines_hint_says_what_to_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "ssh://ops@gpu-box:2222")

    hint = engine_host.unreachable(paramiko.AuthenticationException("Authentication failed.")).hint or ""

    assert "`ssh -p 2222 ops@gpu-box docker version`" in hint
    assert "known_hosts" in hint


def test_an_engine_failure_that_escapes_its_call_site_is_exit_3_not_a_crash() -> None:
    import paramiko  # loads it for real: a ChannelException is what a refused ssh channel raises
    import requests

    refused = engine_host.translated(docker.errors.APIError("500 Server Error", explanation="conflict: in use"))
    assert refused is not None and refused.exit_code == 3 and "refused a request: conflict: in use" in refused.message
    channel = engine_host.translated(paramiko.ChannelException(2, "Connect failed"))
    assert channel is not None and channel.exit_code == 3 and "cannot reach the Docker engine" in channel.message
    assert engine_host.translated(requests.exceptions.ConnectionError("reset")) is not None
    assert engine_host.translated(OSError(28, "No space left on device")) is None  # this machine's, not the engine's
    assert engine_host.translated(ValueError("bug")) is None
