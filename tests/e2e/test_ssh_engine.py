"""An engine reached over ssh://, through a real sshd that the test starts on 127.0.0.1.

--docker-host works before and after the subcommand (and as DOCKER_HOST); an engine that cannot
be reached, or a login the server refuses, is exit 3 with the SDK's own reason on one line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from .sshd import SshEngine, client_home, free_port, keygen, ssh_engine
from .support import QUICKSTART, STEADY, copy_stack, run_cli, unavailable

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def engine(docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshEngine]:
    try:
        with ssh_engine(tmp_path_factory.mktemp("sshd")) as started:
            yield started
    except RuntimeError as exc:
        unavailable(str(exc))


@pytest.mark.parametrize(
    "placement",
    [
        ("--docker-host", "URL", "status", "--json"),
        ("status", "--json", "--docker-host", "URL"),
        ("images", "list", "--json", "--docker-host", "URL"),
    ],
    ids=["before-the-subcommand", "after-the-subcommand", "after-a-nested-subcommand"],
)
def test_an_ssh_engine_answers_wherever_the_option_stands(
    engine: SshEngine, placement: tuple[str, ...], tmp_path: Path
) -> None:
    args = [engine.url if arg == "URL" else arg for arg in placement]
    result = run_cli(args, cwd=tmp_path, env=engine.client_env(), timeout=60)

    assert result.exit_code == 0, result.stderr
    assert isinstance(json.loads(result.stdout), list)


def test_a_lab_runs_over_ssh_with_the_option_after_the_subcommand(
    engine: SshEngine, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    stack = copy_stack(QUICKSTART, tmp_path / "stack", {"name": "e2e-ssh"})
    out = tmp_path / "run"
    result = run_cli(
        ["lab", stack, "--images", "lab", "--measurement-requests", "200", "--out", out,
         "--docker-host", engine.url, *STEADY],
        cwd=tmp_path, env=engine.client_env(), timeout=300,
    )

    assert result.exit_code == 0, result.stderr
    assert f"copying models/ and dataset/ into volumes on the engine at {engine.url}" in result.stderr
    assert json.loads((out / "summary.json").read_text())["rows"][0]["throughput_infer_per_sec"] > 0
    manifest = json.loads((out / "manifest.json").read_text())
    owned = {"label": f"tisbench.lab={manifest['lab']}"}
    assert not docker_client.api.containers(all=True, filters=owned)
    assert not docker_client.api.volumes(filters=owned).get("Volumes")
    assert not docker_client.api.networks(filters=owned)


def test_an_ssh_engine_from_docker_host(engine: SshEngine, tmp_path: Path) -> None:
    result = run_cli(["status"], cwd=tmp_path, env={**engine.client_env(), "DOCKER_HOST": engine.url}, timeout=60)

    assert result.exit_code == 0, result.stderr


def test_the_subcommands_docker_host_wins_over_the_groups(engine: SshEngine, tmp_path: Path) -> None:
    closed = f"ssh://root@127.0.0.1:{free_port()}"
    result = run_cli(
        ["--docker-host", closed, "status", "--docker-host", engine.url], cwd=tmp_path, env=engine.client_env()
    )

    assert result.exit_code == 0, result.stderr


def test_an_unreachable_ssh_host_is_exit_3_with_the_sdks_reason(engine: SshEngine, tmp_path: Path) -> None:
    url = f"ssh://root@127.0.0.1:{free_port()}"  # nothing listens there
    result = run_cli(["status", "--docker-host", url], cwd=tmp_path, env=engine.client_env(), timeout=30)

    assert result.exit_code == 3, result.stderr
    assert f"cannot reach the Docker engine at {url}: " in result.error
    assert "Connection refused" in result.error
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("home_of", "reason"),
    [
        ("a-key-the-server-does-not-know", "Authentication failed"),
        ("a-server-not-in-known_hosts", "not found in known_hosts"),
    ],
)
def test_a_refused_login_is_exit_3_with_the_sdks_reason(
    engine: SshEngine, home_of: str, reason: str, tmp_path: Path
) -> None:
    if home_of == "a-key-the-server-does-not-know":
        home = client_home(tmp_path / "home", engine.port, key=None, host_key_line=engine.host_key_line)
        keygen(home / ".ssh" / "id_ed25519")  # a default key name: the SDK offers it unasked
    else:
        home = client_home(tmp_path / "home", engine.port, key=engine.key, host_key_line=None)
    result = run_cli(["status", "--docker-host", engine.url], cwd=tmp_path, env=engine.client_env(home), timeout=30)

    assert result.exit_code == 3, result.stderr
    assert f"at {engine.url}: " in result.error
    assert reason in result.error
    assert "Traceback" not in result.stderr


def test_the_origin_stacks_data_volume_travels_over_ssh(engine: SshEngine, tmp_path: Path) -> None:
    from .support import ORIGIN_STACK

    stack = copy_stack(ORIGIN_STACK, tmp_path / "stack", {"name": "e2e-ssh-origin"})
    out = tmp_path / "run"

    result = run_cli(
        ["lab", stack, "--images", "lab", "--out", out, "--docker-host", engine.url, *STEADY],
        cwd=tmp_path, env=engine.client_env(), timeout=300,
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    assert f"copying models/ and data/ and dataset/ into volumes on the engine at {engine.url}" in result.stderr
    assert json.loads((out / "summary.json").read_text())["rows"][0]["throughput_infer_per_sec"] > 0


@pytest.mark.parametrize("checking", ["no", "accept-new"])
def test_an_ssh_engine_honours_what_ssh_itself_would_from_the_ssh_config(
    engine: SshEngine, checking: str, tmp_path: Path
) -> None:
    """No known_hosts entry: ssh reaches this host without a prompt under StrictHostKeyChecking
    no/accept-new, with its keys kept in the UserKnownHostsFile the config names; so does tisbench."""
    home = client_home(tmp_path / "home", engine.port, key=None, host_key_line=None)
    known = home / ".ssh" / "lab_hosts"
    (home / ".ssh" / "config").write_text(
        f"Host labbox\n    HostName 127.0.0.1\n    Port {engine.port}\n    User root\n"
        f"    IdentityFile {engine.key}\n    StrictHostKeyChecking {checking}\n    UserKnownHostsFile {known}\n"
    )
    known.write_text("")

    result = run_cli(["status", "--docker-host", "ssh://labbox"], cwd=tmp_path, env=engine.client_env(home), timeout=60)

    assert result.exit_code == 0, result.stderr
    assert engine.host_key_line.split()[1] in known.read_text()  # kept where ssh keeps it
    assert not (home / ".ssh" / "known_hosts").exists()
