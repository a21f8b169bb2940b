"""Fixtures for the Docker tests: the engine and lab images, the CLI, unique lab names, stacks.

Each lab is named e2e-… and removed by that name in a finalizer; after the session nothing
labelled tisbench.lab with an e2e- name may be left (containers or networks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import docker
import docker.errors
import pytest
import requests.exceptions

from .support import (
    LAB_IMAGES,
    QUICKSTART,
    TISBENCH,
    CliResult,
    LabRegistry,
    copy_stack,
    e2e_lab_names,
    issued_here,
    patch_initialize,
    remove_lab_objects,
    run_cli,
    unavailable,
    write_stack_yaml,
)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """The engine, answering, with both lab images; otherwise skip (fail under CI=true)."""
    if not TISBENCH.exists():
        unavailable(f"{TISBENCH} is missing: install the package into the venv (make setup)")
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        unavailable(f"the Docker engine does not answer ({exc})")
    missing = []
    for image in LAB_IMAGES:
        try:
            client.api.inspect_image(image)
        except docker.errors.ImageNotFound:
            missing.append(image)
    if missing:
        unavailable(f"lab images missing: {', '.join(missing)} (make lab-images)")
    yield client
    client.close()


@pytest.fixture(scope="session", autouse=True)
def no_e2e_lab_left(docker_client: docker.DockerClient) -> Iterator[None]:
    """After the session, no e2e lab may be left; one that is gets removed, and the session fails."""
    yield
    left = sorted(issued_here(e2e_lab_names(docker_client)))  # only ours: other runs may share the engine
    for name in left:
        remove_lab_objects(docker_client, name)
    assert not left, f"e2e labs left behind after the session (now removed): {', '.join(left)}"


@pytest.fixture
def run_root(tmp_path: Path) -> Path:
    """The working directory the CLI runs in (default run directories land under it)."""
    root = tmp_path / "run_root"
    root.mkdir()
    return root


class Tisbench(Protocol):
    def __call__(self, *args: object, env: Mapping[str, str | None] | None = None,
                 timeout: float = 120) -> CliResult: ...


@pytest.fixture
def tisbench(run_root: Path) -> Tisbench:
    """Run the real console script in run_root: ``tisbench("status", "--json")``."""

    def run(*args: object, env: Mapping[str, str | None] | None = None, timeout: float = 120) -> CliResult:
        return run_cli(args, cwd=run_root, env=env, timeout=timeout)

    return run


@pytest.fixture
def labs(docker_client: docker.DockerClient) -> Iterator[LabRegistry]:
    """Unique e2e lab names for this test, each removed (by label) when the test ends."""
    registry = LabRegistry(docker_client)
    yield registry
    registry.cleanup()


@pytest.fixture
def lab_name(labs: LabRegistry) -> str:
    return labs.name("lab")


MakeStack = Callable[..., Path]


@pytest.fixture
def make_stack(tmp_path: Path, labs: LabRegistry) -> MakeStack:
    """Copy a stack into tmp with a unique e2e- stack name, so `tisbench lab` names its lab e2e-…."""

    def make(source: Path, purpose: str, stack_yaml: Mapping[str, Any] | None = None) -> Path:
        stack = copy_stack(source, tmp_path / "stacks" / purpose, {"name": labs.stack_name(purpose)})
        if stack_yaml:
            write_stack_yaml(stack, stack_yaml)
        return stack

    return make


SLOW_INITIALIZE = '''
    def initialize(self, args):
        import time

        time.sleep(20)  # e2e: keep the model loading while the test interrupts tisbench up
'''


@pytest.fixture
def slow_stack(make_stack: MakeStack) -> Path:
    """quickstart whose model takes 20 s to load."""
    stack = make_stack(QUICKSTART, "slow")
    patch_initialize(stack, SLOW_INITIALIZE)
    return stack
