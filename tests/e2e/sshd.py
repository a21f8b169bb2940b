"""An sshd on 127.0.0.1, started by the test itself, in front of this machine's Docker engine.

The docker SDK (paramiko, docker-py 7.x) logs in and runs ``docker system dial-stdio`` on the
remote side, then speaks the engine's HTTP API over that session's stdin and stdout; no socket
forwarding is involved, so the server only needs to allow key logins and exec. Everything lives
in one folder: the server's config and host key, a throwaway client key, and a HOME whose
.ssh/config and known_hosts point the SDK at them, so the user's own ~/.ssh is never read.
The server runs in the foreground (-D) as our child and is stopped by its pid.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")  # compiled into sshd; Debian's init script makes it, a bare container lacks it
START_DEADLINE_S = 15.0
STOP_DEADLINE_S = 10.0


@dataclass(frozen=True)
class SshEngine:
    url: str  # ssh://root@127.0.0.1:PORT
    port: int
    home: Path  # HOME for a client that may log in: .ssh/config, the key, known_hosts
    key: Path  # the client's private key, which the server accepts
    host_key_line: str  # "ssh-ed25519 AAAA…", for other homes' known_hosts

    def client_env(self, home: Path | None = None) -> dict[str, str | None]:
        """Overrides for a tisbench process: this HOME, and no agent of the developer's."""
        return {"HOME": str(home or self.home), "SSH_AUTH_SOCK": None}


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def keygen(path: Path) -> str:
    """A fresh ed25519 key pair without a passphrase at ``path``; its public line."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tisbench-e2e", "-f", str(path)], check=True)
    return " ".join(Path(f"{path}.pub").read_text().split()[:2])


def client_home(root: Path, port: int, *, key: Path | None, host_key_line: str | None) -> Path:
    """A HOME whose ~/.ssh names ``key`` for 127.0.0.1 and trusts ``host_key_line`` on ``port``."""
    ssh_dir = root / ".ssh"
    ssh_dir.mkdir(parents=True, mode=0o700)
    if key is not None:
        (ssh_dir / "config").write_text(f"Host 127.0.0.1\n    IdentityFile {key}\n")
    if host_key_line is not None:
        (ssh_dir / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key_line}\n")
    return root


def _config(root: Path, port: int) -> Path:
    lines = [
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {root / 'host_key'}",
        f"PidFile {root / 'sshd.pid'}",
        f"AuthorizedKeysFile {root / 'authorized_keys'}",
        "PermitRootLogin prohibit-password",
        "AuthenticationMethods publickey",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",  # the folder is under /tmp, which StrictModes refuses (world-writable)
        "UseDNS no",
        "PrintMotd no",
        "PrintLastLog no",
    ]
    if os.environ.get("DOCKER_HOST"):  # the remote docker CLI talks to the engine the tests use
        lines.append(f"SetEnv DOCKER_HOST={os.environ['DOCKER_HOST']}")
    config = root / "sshd_config"
    config.write_text("\n".join(lines) + "\n")
    return config


def _wait_listening(process: subprocess.Popen[bytes], log: Path, port: int) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd ended with {process.returncode}: {log.read_text(errors='replace').strip()}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"sshd did not listen on 127.0.0.1:{port} within {START_DEADLINE_S} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_DEADLINE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_DEADLINE_S)


@contextmanager
def ssh_engine(root: Path) -> Iterator[SshEngine]:
    """Start sshd for root on a free port of 127.0.0.1; yield how to reach the engine through it."""
    if os.geteuid() != 0 or not SSHD.exists() or shutil.which("ssh-keygen") is None:
        raise RuntimeError("an ssh engine needs root, /usr/sbin/sshd and ssh-keygen (apt-get install openssh-server)")
    made_privsep = not PRIVSEP_DIR.exists()
    if made_privsep:
        PRIVSEP_DIR.mkdir(mode=0o755)
    process: subprocess.Popen[bytes] | None = None
    try:
        host_key_line = keygen(root / "host_key")
        client_key = root / "client_key"
        (root / "authorized_keys").write_text(keygen(client_key) + "\n")
        port = free_port()
        home = client_home(root / "home", port, key=client_key, host_key_line=host_key_line)
        log = root / "sshd.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(_config(root, port))],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_listening(process, log, port)
        yield SshEngine(f"ssh://root@127.0.0.1:{port}", port, home, client_key, host_key_line)
    finally:
        if process is not None:
            _stop(process)
        if made_privsep:
            PRIVSEP_DIR.rmdir()
