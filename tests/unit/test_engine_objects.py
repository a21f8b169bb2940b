"""Typed views of the engine's list dicts: what code above the engine reads of a lab's objects."""

from __future__ import annotations

from composer.engine.objects import LabContainer, LabNetwork, LabVolume, PortBinding, find_service

# As APIClient.containers(all=True) lists a lab's server (docker 28, trimmed to the fields read).
SERVER = {
    "Id": "4f1c",
    "Names": ["/qs-ab12-triton_server-1"],
    "State": "running",
    "Created": 1796230000,
    "Ports": [{"PrivatePort": 8000, "PublicPort": 32773, "Type": "tcp"}, {"PrivatePort": 8001, "Type": "tcp"}],
    "Labels": {
        "tisbench.lab": "qs-ab12",
        "tisbench.run": "9a8b7c6d5e4f",
        "tisbench.owner": "host:123",
        "com.docker.compose.service": "triton_server",
        "com.docker.compose.project.config_files": "/s/.tisbench/qs-ab12/docker-compose.yml",
    },
}


def test_a_container_reads_its_lab_service_run_and_ports() -> None:
    c = LabContainer.from_api(SERVER)
    assert (c.id, c.name, c.lab, c.service, c.run_id, c.owner) == (
        "4f1c", "qs-ab12-triton_server-1", "qs-ab12", "triton_server", "9a8b7c6d5e4f", "host:123"
    )  # fmt: skip
    assert c.running and c.created == 1796230000.0
    assert c.ports == (PortBinding(8000, 32773), PortBinding(8001, None))
    assert c.compose_config == "/s/.tisbench/qs-ab12/docker-compose.yml"


def test_missing_fields_read_as_unknown_not_as_a_crash() -> None:
    c = LabContainer.from_api({"Id": "x", "Labels": None})
    assert (c.lab, c.service, c.run_id, c.owner, c.state, c.ports) == ("", "?", None, None, "?", ())
    assert not c.running


def test_networks_and_find_service() -> None:
    n = LabNetwork.from_api({"Id": "n1", "Name": "qs-ab12_tis_net", "Labels": {"tisbench.lab": "qs-ab12"}})
    assert (n.lab, n.name, n.run_id) == ("qs-ab12", "qs-ab12_tis_net", None)
    server = LabContainer.from_api(SERVER)
    assert find_service([server], "triton_server") is server
    assert find_service([server], "perf_analyzer") is None


def test_a_volume_is_named_by_its_name_and_reads_its_run() -> None:
    v = LabVolume.from_api({"Name": "qs-ab12_models", "Labels": {"tisbench.lab": "qs-ab12", "tisbench.run": "r1"}})
    assert (v.id, v.name, v.lab, v.run_id) == ("qs-ab12_models", "qs-ab12_models", "qs-ab12", "r1")
