"""Lab benchmarks against the hand workflow, each side measured in the same run.

P1 orchestration overhead, P2 readiness lag, P3 fidelity, P6 teardown. Every lab is a
``bench-…`` project of a private copy of the quickstart stack, removed in ``finally``.

perf_analyzer's own time (P1) is the span between Docker's ``exec_start`` and ``exec_die``
events of its exec, as the engine stamps them: the same clock and the same definition for
``tisbench lab`` (docker SDK exec) and ``docker compose exec`` (hand workflow).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import docker
import docker.errors
import docker.types
import yaml
from labkit import (
    TISBENCH,
    ExecEvents,
    ReadyProbe,
    Timed,
    http_port,
    http_started_at,
    manifest,
    remove_stack_labs,
    run_quiet,
    run_timed,
    server_logs,
    throughput_from_csv,
    wait_ready,
)

# Same, short, deterministic measurement on both sides: count windows, stability always met.
MEASURE = ["--measurement-requests", "500"]
PASS_THROUGH = ["--", "--stability-percentage", "999"]
LAB_TIMEOUT_S = 240.0
STEP_TIMEOUT_S = 120.0
Say = Callable[[str], None]
T = TypeVar("T")


@dataclass
class Ctx:
    work: Path
    stack: Path
    client: docker.DockerClient
    events: ExecEvents
    say: Say
    tag: str  # unique per benchmark process, part of every project name
    counter: int = 0
    retried: list[str] = field(default_factory=list)
    refused_ulimits: list[str] | None = None

    def next_id(self) -> int:
        self.counter += 1
        return self.counter

    def project(self, kind: str) -> str:
        return f"bench-{kind}-{self.tag}-{self.next_id()}"

    def twice(self, label: str, action: Callable[[], T]) -> T:
        """One retry for a sample that failed (seen here: Docker's embedded DNS failing under load);
        every retry is reported in the results."""
        try:
            return action()
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            self.retried.append(f"{label}: {exc}")
            self.say(f"{label} failed, retrying once: {exc}")
            return action()


def _phase(timed: Timed, pattern: str, stream: str = "stderr") -> float | None:
    line = timed.first(pattern, stream)
    return None if line is None else round(line.wall - timed.started_wall, 3)


def _ready_lag(timed: Timed, name: str, logs: str, probe: ReadyProbe) -> dict[str, float]:
    """P2 sample: arrival of tisbench's "lab NAME ready" line minus the server's ready moment, which is
    the first 200 of the independent probe (lag_s) or Triton's "Started HTTPService" line (lag_log_s).
    Triton logs that line ~40 ms before its HTTP port accepts connections, so lag_log_s includes
    time no client can win back."""
    noticed = timed.first(rf"lab {name} ready in")
    if noticed is None:
        raise RuntimeError(f"no 'lab {name} ready' line on tisbench's stderr")
    logged = http_started_at(logs, noticed.wall)
    answered = probe.result()
    return {
        "lag_s": noticed.wall - answered,
        "lag_log_s": noticed.wall - logged,
        "log_to_first_200_s": answered - logged,
        "http_started_rel_s": round(logged - timed.started_wall, 3),
    }


# --- P1 (and P2 samples) ---------------------------------------------------------------------------


def tisbench_lab(ctx: Ctx) -> dict[str, Any]:
    out = ctx.work / f"run-lab-{ctx.next_id()}"
    probe = ReadyProbe()
    timed = run_timed(
        [str(TISBENCH), "lab", str(ctx.stack), "--images", "lab", *MEASURE, "--out", str(out), *PASS_THROUGH],
        LAB_TIMEOUT_S,
        cwd=ctx.work,
        on_line=probe.on_line,
    ).check()
    name = manifest(out)["lab"]
    span = ctx.events.perf_analyzer_span(f"{name}-perf_analyzer")
    lag = _ready_lag(timed, name, (out / "logs" / "triton_server.log").read_text(), probe)
    phases = {
        "first_line (interpreter, imports, plan)": _phase(timed, r"creating lab"),
        "containers started (waiting line)": _phase(timed, r"waiting for "),
        "triton HTTPService started": lag["http_started_rel_s"],
        "ready line": _phase(timed, rf"lab {name} ready in"),
        "running perf_analyzer line": _phase(timed, r"running perf_analyzer"),
        "exec_start (docker event)": round(span.start_ns / 1e9 - timed.started_wall, 3),  # type: ignore[operator]
        "exec_die (docker event)": round(span.die_ns / 1e9 - timed.started_wall, 3),  # type: ignore[operator]
        "result table on stdout": _phase(timed, r"infer/s", "stdout"),
        "run directory line (stdout)": _phase(timed, r"run directory:", "stdout"),
        "removed line": _phase(timed, rf"lab {name} removed"),
        "exit": round(timed.seconds, 3),
    }
    return {
        "name": name,
        "wall_s": timed.seconds,
        "perf_analyzer_s": span.seconds,
        "overhead_s": timed.seconds - span.seconds,
        "argv": manifest(out)["perf_analyzer_argv"],
        "ready_lag": lag,
        "phases_s": phases,
    }


def _render(ctx: Ctx, project: str) -> Path:
    """The compose file an expert would run here: tisbench's rendering, less the ulimits this engine
    refuses (``tisbench up`` drops those too, with a note; ``compose up`` would just fail)."""
    path = ctx.work / f"{project}.yml"
    run_quiet(
        [str(TISBENCH), "render", str(ctx.stack), "--images", "lab", "--name", project, "-o", str(path)],
        STEP_TIMEOUT_S,
    )
    refused = _refused_ulimits(ctx)
    if refused:
        document = yaml.safe_load(path.read_text())
        for service in document["services"].values():
            limits = service.get("ulimits") or {}
            for key in refused:
                limits.pop(key, None)
            if "ulimits" in service and not limits:
                del service["ulimits"]
        path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _refused_ulimits(ctx: Ctx) -> list[str]:
    """NGC's advised ulimits that this engine cannot grant, found once by a throwaway container."""
    if ctx.refused_ulimits is None:
        ctx.refused_ulimits = []
        image = "tisbench-lab/tritonserver:24.10-py3-sdk"
        for key, value in (("memlock", -1), ("stack", 67108864)):
            limits = [docker.types.Ulimit(name=key, soft=value, hard=value)]
            created = ctx.client.api.create_container(
                image, ["true"], name=f"bench-ulimit-{key}-{ctx.tag}",
                host_config=ctx.client.api.create_host_config(ulimits=limits),
            )  # fmt: skip
            try:
                ctx.client.api.start(created["Id"])
            except docker.errors.APIError as exc:
                if "rlimit" not in str(exc):
                    raise
                ctx.refused_ulimits.append(key)
                ctx.say(f"this engine refuses ulimit {key}={value}: the hand workflow's compose file leaves it out")
            finally:  # a refused start leaves the created container: it is this run's, removed here
                ctx.client.api.remove_container(created["Id"], force=True)
    return ctx.refused_ulimits


def _compose_down(project: str, cwd: Path) -> None:
    try:
        run_quiet(["docker", "compose", "-p", project, "down", "-t", "0"], STEP_TIMEOUT_S, cwd=cwd)
    except (RuntimeError, subprocess.TimeoutExpired):
        pass  # remove_stack_labs in run_all's finally is the backstop


def hand_workflow(ctx: Ctx, argv: list[str]) -> dict[str, Any]:
    """compose up -d → poll /v2/health/ready → compose exec perf_analyzer → compose down -t 0."""
    project = ctx.project("hand")
    compose = ["docker", "compose", "-f", str(_render(ctx, project)), "-p", project]
    finished = False
    try:
        start = time.monotonic()
        run_quiet([*compose, "up", "-d"], STEP_TIMEOUT_S, cwd=ctx.work)
        up = time.monotonic()
        ready = wait_ready(http_port(ctx.client, project), STEP_TIMEOUT_S)
        run_quiet([*compose, "exec", "-T", "perf_analyzer", *argv], 600, cwd=ctx.work)
        benched = time.monotonic()
        run_quiet([*compose, "down", "-t", "0"], STEP_TIMEOUT_S, cwd=ctx.work)
        end = time.monotonic()
        finished = True
    finally:
        if not finished:
            _compose_down(project, ctx.work)
    span = ctx.events.perf_analyzer_span(f"{project}-perf_analyzer")
    wall = end - start
    return {
        "name": project,
        "wall_s": wall,
        "perf_analyzer_s": span.seconds,
        "overhead_s": wall - span.seconds,
        "phases_s": {
            "up -d returned": round(up - start, 3),
            "ready (host poll)": round(ready - start, 3),
            "exec returned": round(benched - start, 3),
            "down -t 0 returned": round(end - start, 3),
        },
    }


def p1_orchestration(ctx: Ctx, repeats: int) -> dict[str, Any]:
    """Pairs in alternating order; ratio = tisbench overhead ÷ hand overhead, per pair."""
    pairs: list[dict[str, Any]] = []
    argv: list[str] | None = None
    for i in range(repeats):
        tb_first = i % 2 == 0 or argv is None
        if tb_first:
            tb = ctx.twice("P1 tisbench lab", lambda: tisbench_lab(ctx))
            argv = tb["argv"]
            hand = ctx.twice("P1 hand workflow", partial(hand_workflow, ctx, argv))
        else:
            assert argv is not None
            hand = ctx.twice("P1 hand workflow", partial(hand_workflow, ctx, argv))
            tb = ctx.twice("P1 tisbench lab", lambda: tisbench_lab(ctx))
            argv = tb["argv"]
        ratio = tb["overhead_s"] / hand["overhead_s"]
        ctx.say(
            f"P1 pair {i + 1}/{repeats}: tisbench {tb['wall_s']:.2f} s − pa {tb['perf_analyzer_s']:.2f} s, "
            f"hand {hand['wall_s']:.2f} s − pa {hand['perf_analyzer_s']:.2f} s → {ratio:.3f}"
        )
        pairs.append({"ratio": ratio, "tisbench": {k: v for k, v in tb.items() if k != "argv"}, "hand": hand})
    return {"samples": [p["ratio"] for p in pairs], "pairs": pairs, "argv": argv}


# --- P2 without P1/P6: up and down only ---------------------------------------------------------


def tisbench_up(ctx: Ctx, name: str) -> dict[str, Any]:
    """tisbench up --name NAME; the P2 sample from its stderr and the server's log."""
    probe = ReadyProbe()
    timed = run_timed(
        [str(TISBENCH), "up", str(ctx.stack), "--images", "lab", "--name", name],
        LAB_TIMEOUT_S,
        cwd=ctx.work,
        on_line=probe.on_line,
    ).check()
    return {"wall_s": timed.seconds, "ready_lag": _ready_lag(timed, name, server_logs(ctx.client, name), probe)}


def p2_readiness(ctx: Ctx, repeats: int) -> dict[str, Any]:
    def once() -> dict[str, float]:
        name = ctx.project("ready")
        try:
            return dict(tisbench_up(ctx, name)["ready_lag"])
        finally:
            _tisbench_down(ctx, name)

    lags = []
    for i in range(repeats):
        lags.append(ctx.twice("P2 tisbench up", once))
        ctx.say(f"P2 {i + 1}/{repeats}: {lags[-1]['lag_s'] * 1000:.1f} ms")
    return {"lags": lags}


def _tisbench_down(ctx: Ctx, name: str) -> float:
    return run_quiet([str(TISBENCH), "down", name], STEP_TIMEOUT_S, cwd=ctx.work)


# --- P3 -----------------------------------------------------------------------------------------


def _fresh_outputs(argv: list[str], base: str) -> list[str]:
    """The same argv with new output paths: perf_analyzer refuses an existing --profile-export-file."""
    out = list(argv)
    for flag, suffix in (("-f", ".csv"), ("--profile-export-file", ".profile_export.json")):
        if flag in out:
            out[out.index(flag) + 1] = base + suffix
    return out


def p3_fidelity(ctx: Ctx, pairs: int) -> dict[str, Any]:
    """tisbench bench vs the same argv exec'd directly in the same analyzer container, alternating."""
    name = ctx.project("fid")
    analyzer = f"{name}-perf_analyzer-1"
    results: list[dict[str, float]] = []
    argv: list[str] | None = None
    try:
        run_timed(
            [str(TISBENCH), "up", str(ctx.stack), "--images", "lab", "--name", name], LAB_TIMEOUT_S, cwd=ctx.work
        ).check()

        def via_tisbench() -> float:
            nonlocal argv
            out = ctx.work / f"run-fid-{ctx.next_id()}"
            run_timed(
                [str(TISBENCH), "bench", name, *MEASURE, "--out", str(out), *PASS_THROUGH], LAB_TIMEOUT_S, cwd=ctx.work
            ).check()
            argv = manifest(out)["perf_analyzer_argv"]
            return throughput_from_csv((out / "perf_analyzer.csv").read_text())

        def direct() -> float:
            assert argv is not None
            same = _fresh_outputs(argv, f"/tmp/bench-direct-{ctx.next_id()}")
            run_quiet(["docker", "exec", "-w", "/workspace", analyzer, *same], 600)
            csv = subprocess.run(
                ["docker", "exec", analyzer, "cat", same[same.index("-f") + 1]],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout
            return throughput_from_csv(csv)

        for i in range(pairs):
            if i % 2 == 0 or argv is None:
                tb = ctx.twice("P3 tisbench bench", via_tisbench)
                pa = ctx.twice("P3 direct perf_analyzer", direct)
            else:
                pa = ctx.twice("P3 direct perf_analyzer", direct)
                tb = ctx.twice("P3 tisbench bench", via_tisbench)
            results.append(
                {"tisbench_infer_s": tb, "direct_infer_s": pa, "ratio": tb / pa, "tisbench_first": i % 2 == 0}
            )
            ctx.say(f"P3 pair {i + 1}/{pairs}: tisbench {tb:.1f} infer/s, direct {pa:.1f} infer/s → {tb / pa:.3f}")
    finally:
        try:
            _tisbench_down(ctx, name)
        except (RuntimeError, subprocess.TimeoutExpired):
            _compose_down(name, ctx.work)
    by_order = {
        f"median_ratio_{key}": statistics.median(r["ratio"] for r in results if r["tisbench_first"] == first)
        for key, first in (("tisbench_first", True), ("direct_first", False))
        if any(r["tisbench_first"] == first for r in results)
    }  # a warm-up or order effect shows as these two medians falling on either side of 1
    return {"samples": [r["ratio"] for r in results], "pairs": results, **by_order}


# --- P6 (and P2 samples) ---------------------------------------------------------------------------


def _teardown_tisbench(ctx: Ctx) -> dict[str, Any]:
    name = ctx.project("downtb")
    done = False
    try:
        up = tisbench_up(ctx, name)
        seconds = _tisbench_down(ctx, name)
        done = True
    finally:
        if not done:
            _compose_down(name, ctx.work)
    return {"down_s": seconds, "ready_lag": up["ready_lag"]}


def _teardown_compose(ctx: Ctx) -> float:
    project = ctx.project("downdc")
    compose = ["docker", "compose", "-f", str(_render(ctx, project)), "-p", project]
    done = False
    try:
        run_quiet([*compose, "up", "-d"], STEP_TIMEOUT_S, cwd=ctx.work)
        wait_ready(http_port(ctx.client, project), STEP_TIMEOUT_S)
        seconds = run_quiet(["docker", "compose", "-p", project, "down", "-t", "0"], STEP_TIMEOUT_S, cwd=ctx.work)
        done = True
    finally:
        if not done:
            _compose_down(project, ctx.work)
    return seconds


def p6_teardown(ctx: Ctx, repeats: int) -> dict[str, Any]:
    pairs = []
    for i in range(repeats):
        if i % 2 == 0:
            tb = ctx.twice("P6 tisbench", lambda: _teardown_tisbench(ctx))
            dc = ctx.twice("P6 compose", lambda: _teardown_compose(ctx))
        else:
            dc = ctx.twice("P6 compose", lambda: _teardown_compose(ctx))
            tb = ctx.twice("P6 tisbench", lambda: _teardown_tisbench(ctx))
        ratio = tb["down_s"] / dc
        ctx.say(
            f"P6 pair {i + 1}/{repeats}: tisbench down {tb['down_s']:.2f} s, compose down -t 0 {dc:.2f} s → {ratio:.3f}"
        )
        pairs.append(
            {"ratio": ratio, "tisbench_down_s": tb["down_s"], "compose_down_s": dc, "ready_lag": tb["ready_lag"]}
        )
    return {"samples": [p["ratio"] for p in pairs], "pairs": pairs}


def new_ctx(work: Path, stack: Path, say: Say) -> Ctx:
    client = docker.from_env(timeout=120)
    client.ping()
    return Ctx(work, stack, client, ExecEvents(client, stack), say, f"{os.getpid():x}")


def close_ctx(ctx: Ctx) -> list[str]:
    """Remove whatever a failure left behind (only this run's bench-… projects), stop the event stream."""
    try:
        return remove_stack_labs(ctx.client, ctx.stack)
    finally:
        ctx.events.close()
