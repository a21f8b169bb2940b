"""remove_lab's order on a recording APIClient: running containers leave the lab's networks, then
containers and networks go side by side; a network still held is removed again after the containers."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any, cast

import docker
import docker.errors
import requests

from composer.engine.containers import remove_lab

LAB = "qs-ab12"
LABELS = {"tisbench.lab": LAB, "tisbench.run": "r1"}


def _forbidden(message: str) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = 403
    return docker.errors.APIError(message, response, explanation=message)


class FakeAPI:
    """The calls remove_lab makes, recorded in order; ``busy`` times the network refuses removal."""

    def __init__(self, busy: int = 0, states: tuple[str, ...] = ("running", "running")) -> None:
        self.calls: list[tuple[str, str]] = []
        self.busy = busy
        self.lock = threading.Lock()
        self._containers = [
            {"Id": f"c{i}", "Names": [f"/{LAB}-s{i}-1"], "State": state, "Labels": LABELS}
            for i, state in enumerate(states)
        ]

    def _record(self, call: str, target: str) -> None:
        with self.lock:
            self.calls.append((call, target))

    def containers(self, **kwargs: Any) -> list[dict[str, Any]]:
        return self._containers

    def networks(self, **kwargs: Any) -> list[dict[str, Any]]:
        return [{"Id": "n1", "Name": f"{LAB}_tis_net", "Labels": LABELS}]

    def volumes(self, **kwargs: Any) -> dict[str, Any]:
        run = {**LABELS, "tisbench.run": "r2"}  # another run of the lab: removed only when no run is named
        return {"Volumes": [{"Name": f"{LAB}_models", "Labels": LABELS}, {"Name": f"{LAB}_dataset", "Labels": run}]}

    def disconnect_container_from_network(self, container: str, net_id: str, force: bool = False) -> None:
        self._record("disconnect", container)

    def remove_container(self, container: str, force: bool = False) -> None:
        self._record("remove_container", container)

    def remove_network(self, net_id: str) -> None:
        self._record("remove_network", net_id)
        with self.lock:
            if self.busy:
                self.busy -= 1
                raise _forbidden(f"error while removing network: network {net_id} has active endpoints")

    def remove_volume(self, name: str, force: bool = False) -> None:
        self._record("remove_volume", name)


def _client(api: FakeAPI) -> docker.DockerClient:
    return cast(docker.DockerClient, SimpleNamespace(api=api))


def test_running_containers_leave_the_network_before_anything_is_removed() -> None:
    api = FakeAPI()
    assert remove_lab(_client(api), LAB) == 2 + 1 + 2
    kinds = [call for call, _ in api.calls]
    assert kinds[:2] == ["disconnect", "disconnect"]
    assert sorted(kinds[2:5]) == ["remove_container", "remove_container", "remove_network"]
    assert kinds[5:] == ["remove_volume", "remove_volume"]


def test_a_stopped_container_is_not_disconnected() -> None:
    api = FakeAPI(states=("exited", "running"))
    remove_lab(_client(api), LAB)
    assert [target for call, target in api.calls if call == "disconnect"] == ["c1"]


def test_a_network_still_held_is_removed_again_once_the_containers_are_gone() -> None:
    api = FakeAPI(busy=1)
    remove_lab(_client(api), LAB)
    removals = [i for i, (call, _) in enumerate(api.calls) if call == "remove_network"]
    containers = [i for i, (call, _) in enumerate(api.calls) if call == "remove_container"]
    assert len(removals) == 2 and removals[1] > max(containers)


def test_a_network_held_after_the_containers_are_gone_is_an_error() -> None:
    api = FakeAPI(busy=2)
    try:
        remove_lab(_client(api), LAB)
    except docker.errors.APIError as exc:
        assert "active endpoints" in str(exc)
    else:
        raise AssertionError("a network someone else's container holds must not pass silently")


def test_only_the_named_run_goes() -> None:
    api = FakeAPI()
    remove_lab(_client(api), LAB, run="r1")
    assert [target for call, target in api.calls if call == "remove_volume"] == [f"{LAB}_models"]


class ListingAPI(FakeAPI):
    """Counts the engine's listings too; the lab's containers were removed by hand."""

    def __init__(self) -> None:
        super().__init__(states=())
        self.listed: list[str] = []

    def containers(self, **kwargs: Any) -> list[dict[str, Any]]:
        self.listed.append("containers")
        return super().containers(**kwargs)

    def networks(self, **kwargs: Any) -> list[dict[str, Any]]:
        self.listed.append("networks")
        return super().networks(**kwargs)


def test_down_of_a_lab_left_with_only_its_network_lists_it_once(monkeypatch: Any) -> None:
    from composer.labs import registry

    api = ListingAPI()
    monkeypatch.setattr(registry.engine, "connect", lambda: _client(api))

    assert registry.down(LAB) == 1 + 2  # the network and the two volumes
    assert api.listed == ["containers", "networks"]
    assert [target for call, target in api.calls if call == "remove_network"] == ["n1"]


def test_a_held_container_stays_until_released_while_the_rest_goes() -> None:
    api, reading = FakeAPI(), threading.Event()
    removal = threading.Thread(target=remove_lab, args=(_client(api), LAB), kwargs={"held": {"c1": reading}})
    removal.start()
    deadline = time.monotonic() + 5
    while ("disconnect", "c0") not in api.calls and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.05)  # time enough for the held one to go, were it not held
    assert api.calls == [("disconnect", "c0")]
    reading.set()
    removal.join(timeout=5)
    assert not removal.is_alive()
    assert api.calls[:2] == [("disconnect", "c0"), ("disconnect", "c1")]
    assert sorted(api.calls[2:5]) == [("remove_container", "c0"), ("remove_container", "c1"), ("remove_network", "n1")]
