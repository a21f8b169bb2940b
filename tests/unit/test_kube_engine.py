"""The Kubernetes engine's pure parts, without a cluster: a pod's state as the API reports it (what
is a failure, what is still starting), an exec's exit code from its status channel, and a cluster
that is not there (exit 3, one line, nothing created)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bad_inputs import make_stack
from click.testing import CliRunner
from kubernetes import client as k8s

from composer.cli.app import main
from composer.engine.kube import pod_state
from composer.engine.kube_stream import _exit_code


def _pod(containers: list[Any], inits: list[Any] | None = None, ready: bool = False) -> Any:
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="triton-server-1"),
        spec=k8s.V1PodSpec(containers=[], node_name="localhost"),
        status=k8s.V1PodStatus(
            phase="Running",
            pod_ip="172.17.0.2",
            container_statuses=containers,
            init_container_statuses=inits or [],
            conditions=[k8s.V1PodCondition(type="Ready", status="True" if ready else "False")],
        ),
    )


def _status(name: str, *, state: Any, last: Any = None, restarts: int = 0) -> Any:
    return k8s.V1ContainerStatus(
        name=name, image="i", image_id="docker://sha256:1", ready=False, restart_count=restarts,
        state=state, last_state=last or k8s.V1ContainerState(),
    )  # fmt: skip


def test_a_finished_fill_container_is_no_failure_and_a_running_one_holds_the_pod() -> None:
    done = _status("tisbench-fill", state=k8s.V1ContainerState(terminated=k8s.V1ContainerStateTerminated(exit_code=0)))
    running = _status("triton-server", state=k8s.V1ContainerState(running=k8s.V1ContainerStateRunning()))
    state = pod_state(_pod([running], [done], ready=True))
    assert state.terminated is None and state.ready and not state.init_running
    holding = _status("tisbench-fill", state=k8s.V1ContainerState(running=k8s.V1ContainerStateRunning()))
    assert pod_state(_pod([], [holding])).init_running


def test_a_server_that_exited_and_restarts_is_a_failure_with_its_exit_code() -> None:
    crashed = _status(
        "triton-server",
        state=k8s.V1ContainerState(waiting=k8s.V1ContainerStateWaiting(reason="CrashLoopBackOff")),
        last=k8s.V1ContainerState(terminated=k8s.V1ContainerStateTerminated(exit_code=1)),
        restarts=1,
    )
    state = pod_state(_pod([crashed]))
    assert state.terminated == ("triton-server", 1) and state.restarts == 1


def test_an_image_the_node_lacks_is_named_while_the_pod_waits() -> None:
    waiting = _status(
        "triton-server",
        state=k8s.V1ContainerState(
            waiting=k8s.V1ContainerStateWaiting(reason="ErrImageNeverPull", message='image "x" is not present')
        ),
    )
    assert pod_state(_pod([waiting])).waiting == 'triton-server: ErrImageNeverPull: image "x" is not present'
    starting = _status(
        "triton-server", state=k8s.V1ContainerState(waiting=k8s.V1ContainerStateWaiting(reason="ContainerCreating"))
    )
    assert pod_state(_pod([starting])).waiting is None


class _Channels:
    def __init__(self, status: str) -> None:
        self.status = status

    def read_channel(self, channel: int) -> str:
        assert channel == 3  # the status channel
        return self.status


def test_an_execs_exit_code_comes_from_its_status_channel() -> None:
    assert _exit_code(_Channels('{"metadata":{},"status":"Success"}')) == 0
    failure = (
        '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code",'
        '"reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"7"}]}}'
    )
    assert _exit_code(_Channels(failure)) == 7
    assert _exit_code(_Channels("")) == -1  # the stream closed without a verdict: the pod went


def _lab(tmp_path: Path, env: dict[str, str]) -> Any:
    args = ["lab", str(make_stack(tmp_path)), "--release", "24.10", "--images", "lab", "--engine", "kubernetes"]
    return CliRunner().invoke(main, args, env=env)


def test_no_kubeconfig_is_exit_3_in_one_line(tmp_path: Path) -> None:
    result = _lab(tmp_path, {"KUBECONFIG": str(tmp_path / "missing"), "HOME": str(tmp_path)})
    assert result.exit_code == 3, result.output
    assert "no Kubernetes cluster configured" in result.stderr and len(result.stderr.splitlines()) == 1


def test_an_apiserver_that_does_not_answer_is_exit_3_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
        "current-context: x\n"
    )
    result = _lab(tmp_path, {"KUBECONFIG": str(config)})
    assert result.exit_code == 3, result.output
    assert "the Kubernetes apiserver at https://127.0.0.1:9 does not answer" in result.stderr
    assert len(result.stderr.splitlines()) == 1
