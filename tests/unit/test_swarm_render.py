"""The swarm compose file: deploy sections for a dnsrr server and N one-shot clients, values that
cannot change the document, the constant client wrapper, and the real `docker compose config`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from bad_inputs import make_stack
from compose_check import compose_config as run_compose_config
from compose_check import require_compose
from compose_oracle import swarm_spec, unescape

from composer.core.designer import CSV_MARKER, WRAPPER, size_in_bytes, swarm_design
from composer.labs.plan import plan_lab
from composer.render.compose import render_lab

LAB = "swarmlab"
ARGV = ["timeout", "-s", "KILL", "600", "perf_analyzer", "-m", "seed_model", "-u", "triton_server:8000"]
HOSTILE = [
    "a: b",
    "# x",
    '"',
    "'",
    "{{ 7*7 }}",
    "x\nevil: key",
    "${HOME}",
    "$HOME",
    "$$",
    "${X:?boom}",
    "`id` $(id); rm -rf /",
    '"; exit 0; "',
    "héllo 日本 \u2028 😀",
    "\\",
    "",
]


def _render(stack: Path, clients: int = 2, argv: list[str] | None = None) -> str:
    plan = plan_lab(stack, release="24.10", images="lab")
    design = swarm_design(plan.stack, plan.release, plan.images, LAB, clients, argv or ARGV, "/tmp/tisbench-client.csv")
    return render_lab(design)


def _doc(text: str) -> dict[str, Any]:
    document = yaml.safe_load(text)
    assert isinstance(document, dict)
    return document


def test_server_is_one_dnsrr_replica_that_is_never_restarted(tmp_path: Path) -> None:
    server = _doc(_render(make_stack(tmp_path)))["services"]["triton_server"]
    assert server["deploy"] == {
        "mode": "replicated",
        "replicas": 1,
        "endpoint_mode": "dnsrr",
        "restart_policy": {"condition": "none"},
        "labels": server["labels"],
    }
    assert "ports" not in server, "no host port: a dnsrr service cannot publish one, and 0.0.0.0 is refused"
    assert server["command"][:2] == ["tritonserver", "--model-repository=/models"]


@pytest.mark.parametrize("clients", [1, 2, 16])
def test_clients_are_n_one_shot_replicas(tmp_path: Path, clients: int) -> None:
    analyzer = _doc(_render(make_stack(tmp_path), clients))["services"]["perf_analyzer"]
    assert analyzer["deploy"]["replicas"] == clients
    assert analyzer["deploy"]["restart_policy"] == {"condition": "none"}
    assert analyzer["deploy"]["endpoint_mode"] == "dnsrr"


def test_network_is_an_attachable_overlay(tmp_path: Path) -> None:
    network = _doc(_render(make_stack(tmp_path)))["networks"]["tis_net"]
    assert network["driver"] == "overlay" and network["attachable"] is True


def test_every_object_is_labelled_with_lab_and_engine(tmp_path: Path) -> None:
    text = _render(make_stack(tmp_path))
    spec = swarm_spec(text, LAB, tmp_path / "docker-stack.yml")
    for labels in [spec.network_labels] + [ls for s in spec.services.values() for ls in (s.labels, s.container_labels)]:
        assert labels["tisbench.lab"] == LAB
        assert labels["tisbench.engine"] == "swarm"
        assert labels["com.docker.stack.namespace"] == LAB
    assert spec.network == f"{LAB}_tis_net"
    assert {s.name for s in spec.services.values()} == {f"{LAB}_triton_server", f"{LAB}_perf_analyzer"}


def test_shm_size_becomes_a_tmpfs_at_dev_shm(tmp_path: Path) -> None:
    stack = make_stack(tmp_path, yaml.safe_dump({"model": "seed_model", "server": {"shm_size": "256m"}}))
    spec = swarm_spec(_render(stack), LAB, tmp_path / "f.yml")
    shm = [m for m in spec.services["triton_server"].mounts if m.target == "/dev/shm"]
    assert len(shm) == 1 and shm[0].type == "tmpfs" and shm[0].size_bytes == 256 * 1024**2


@pytest.mark.parametrize(("size", "expected"), [("1g", 1024**3), ("512m", 512 * 1024**2), ("64k", 65536), ("100", 100)])
def test_size_in_bytes(size: str, expected: int) -> None:
    assert size_in_bytes(size) == expected


@pytest.mark.parametrize("value", HOSTILE)
def test_client_argument_reaches_the_service_unchanged_and_outside_the_script(tmp_path: Path, value: str) -> None:
    argv = [*ARGV, "--", value]
    text = _render(make_stack(tmp_path), argv=argv)
    spec = swarm_spec(text, LAB, tmp_path / "f.yml")
    command = spec.services["perf_analyzer"].command
    assert command == ["sh", "-c", WRAPPER, "sh", *argv]
    assert set(_doc(text)["services"]) == {"triton_server", "perf_analyzer"}


@pytest.mark.parametrize("value", HOSTILE)
def test_server_arg_and_stack_path_cannot_change_the_document(tmp_path: Path, value: str) -> None:
    stack = make_stack(tmp_path, yaml.safe_dump({"model": "seed_model", "server": {"args": [value]}}))
    spec = swarm_spec(_render(stack), LAB, tmp_path / "f.yml")
    assert spec.services["triton_server"].command[-1] == value


def _run_wrapper(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    csv = tmp_path / "out.csv"
    env = {"PATH": os.environ["PATH"], "TISBENCH_CSV": str(csv)}
    return subprocess.run(["sh", "-c", WRAPPER, "sh", *argv], capture_output=True, text=True, env=env, check=False)


def test_wrapper_prints_the_csv_after_the_marker_and_keeps_the_exit_code(tmp_path: Path) -> None:
    done = _run_wrapper(tmp_path, "sh", "-c", 'printf "Concurrency,x\\n1,2\\n" > "$1"; echo report; exit 2', "sh",
                        str(tmp_path / "out.csv"))  # fmt: skip
    assert done.returncode == 2
    assert done.stdout == f"report\n{CSV_MARKER}\nConcurrency,x\n1,2\n"


@pytest.mark.parametrize("value", ["`touch pwned`", "$(touch pwned)", "; touch pwned", "'\"; touch pwned"])
def test_wrapper_never_evaluates_an_argument(tmp_path: Path, value: str) -> None:
    done = _run_wrapper(tmp_path, "printf", "%s", value)
    assert done.stdout.startswith(value + CSV_MARKER)
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_compose_accepts_the_file_and_holds_the_same_values(tmp_path: Path, compose_config: Any) -> None:
    argv = [*ARGV, "--", *HOSTILE[:-1]]
    config = compose_config(_render(make_stack(tmp_path), clients=3, argv=argv))
    analyzer = config["services"]["perf_analyzer"]
    assert [unescape(a) for a in analyzer["command"]] == ["sh", "-c", WRAPPER, "sh", *argv]
    assert analyzer["deploy"]["replicas"] == 3
    assert analyzer["deploy"]["endpoint_mode"] == "dnsrr"
    assert config["services"]["triton_server"]["deploy"]["restart_policy"]["condition"] == "none"
    assert config["networks"]["tis_net"]["attachable"] is True


@pytest.fixture
def compose_config(tmp_path: Path) -> Any:
    """The real `docker compose config`; skipped without compose, unless CI=true."""
    require_compose()

    def config(text: str) -> dict[str, Any]:
        file = tmp_path / "compose-check" / "docker-stack.yml"
        file.parent.mkdir(exist_ok=True)
        file.write_text(text, encoding="utf-8")
        return run_compose_config(file, project=LAB)

    return config
