"""Acceptance for a noise-aware `tisbench compare`: quiet on A/A, a regression on A/B.

A/A: two `tisbench lab` runs of one stack, then `compare RUN1 RUN2 --max-regression 5`; it should
exit 0 (target: 19 of 20 pairs). A/B: that stack against a copy whose model takes 25 % longer per
request (work_ms 2.0 → 2.5, a sleep: device time; about 18 % less throughput); `compare A B` should exit 1
(target: 19 of 20). Which of A and B runs first alternates per pair, so drift favours neither.
Beside each pair runs a CPU load (a busy loop pinned to CPU 0, ending by itself at its deadline),
as on a shared CI machine; --no-load leaves it out. One lab takes about 15 s on 2 CPUs.

    python benchmarks/bench_noise.py [--pairs 20] [--only aa|ab] [--repeat K] [--release 24.10] [--no-load] [--work DIR]

The table goes to stdout; every exit code, error line, compare JSON and timing to
benchmarks/results/noise-<UTC time>.json (rewritten after each pair). Exit 0 when both targets are
met, 1 otherwise, 2 when this tisbench has no `lab --repeat`. Run it under the Docker lock
(flock /tmp/tisbench-docker.lock …); it needs the release's lab images. Labs are bench-noise-…
projects; tisbench lab removes each.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any

import docker
from labkit import TISBENCH, Timed, remove_stack_labs, run_timed

HERE = Path(__file__).resolve().parent
STACK = HERE / "stacks" / "noise"
RESULTS = HERE / "results"
MODEL = "noise_model"
SLOWER = 1.25  # B's work_ms ÷ A's
MAX_REGRESSION = "5"
LAB_TIMEOUT_S = 300.0
COMPARE_TIMEOUT_S = 60.0
LOAD_S = 2 * LAB_TIMEOUT_S + 4 * COMPARE_TIMEOUT_S + 120  # longer than any pair, short enough to end by itself
LOAD_CODE = "import sys, time\nend = time.monotonic() + float(sys.argv[1])\nwhile time.monotonic() < end:\n    pass\n"
WORK_MS = re.compile(r'(key:\s*"work_ms"\s*value:\s*\{\s*string_value:\s*")([0-9.]+)(")')


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def make_stacks(work: Path) -> dict[str, Path]:
    """A and B copied from benchmarks/stacks/noise; B's config differs in work_ms only."""
    stacks = {v: work / f"bench-noise-{v.lower()}" for v in ("A", "B")}
    for target in stacks.values():
        shutil.copytree(STACK, target)  # refuses an existing folder: --work must not hold a previous run
    config = stacks["B"] / "models" / MODEL / "config.pbtxt"
    text, edits = WORK_MS.subn(lambda m: f"{m[1]}{float(m[2]) * SLOWER:g}{m[3]}", config.read_text())
    if edits != 1:
        raise RuntimeError(f"{config}: expected one work_ms parameter, found {edits}")
    config.write_text(text)
    return {v: p.resolve() for v, p in stacks.items()}


@contextmanager
def cpu_load(enabled: bool) -> Iterator[dict[str, Any]]:
    """One core's busy loop for the pair: pinned to CPU 0 where the OS allows, killed by its pid at the end."""
    if not enabled:
        yield {"on": False}
        return
    argv = [sys.executable, "-c", LOAD_CODE, f"{LOAD_S:g}"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    info: dict[str, Any] = {"on": True, "pid": proc.pid, "pinned_cpu0": False, "deadline_s": LOAD_S}
    try:
        if hasattr(os, "sched_setaffinity"):
            try:
                os.sched_setaffinity(proc.pid, {0})
                info["pinned_cpu0"] = True
            except OSError as exc:
                info["pin_error"] = str(exc)
        yield info
    finally:
        info["ended_by_itself"] = proc.poll() is not None
        if not info["ended_by_itself"]:
            proc.kill()  # this Popen's own pid, nothing else
        proc.wait()


def _stream(t: Timed, name: str) -> str:
    return "".join(line.text for line in t.lines if line.stream == name)


def _error_line(t: Timed) -> str:
    lines = [s.strip() for s in _stream(t, "stderr").splitlines() if s.strip()]
    errors = [s for s in lines if "error" in s.lower()]
    return (errors or lines or [f"exit {t.returncode}, no output"])[-1]


def lab(stack: Path, out: Path, args: argparse.Namespace, extra: Sequence[str] = ()) -> dict[str, Any]:
    argv = [str(TISBENCH), "lab", str(stack), "--release", args.release, "--images", "lab", "--out", str(out), *extra]
    if args.repeat:
        argv += ["--repeat", str(args.repeat)]
    try:
        t = run_timed(argv, LAB_TIMEOUT_S)
    except RuntimeError as exc:  # past the deadline: SIGTERM, so tisbench removed its lab
        return {"out": str(out), "rc": None, "seconds": LAB_TIMEOUT_S, "error": str(exc)}
    error = _error_line(t) if t.returncode else None
    return {"out": str(out), "rc": t.returncode, "seconds": t.seconds, "error": error}


def compare(run_a: str, run_b: str) -> dict[str, Any]:
    """`compare A B --max-regression 5` (its exit code counts) and the same with --format json (kept)."""
    base = [str(TISBENCH), "compare", run_a, run_b, "--max-regression", MAX_REGRESSION]
    try:
        md, js = run_timed(base, COMPARE_TIMEOUT_S), run_timed([*base, "--format", "json"], COMPARE_TIMEOUT_S)
    except RuntimeError as exc:  # past the deadline
        return {"rc": None, "error": str(exc), "regressed_points": [], "json": None}
    try:
        doc: Any = json.loads(_stream(js, "stdout"))
    except ValueError:
        doc = None
    tripped = [
        f"{p['sweep']} {p['value']:g}: infer/s {p['throughput']['pct']:+.1f} %, p99 {p['p99_latency_us']['pct']:+.1f} %"
        for p in (doc or {}).get("points", [])
        if p.get("regressed")
    ]
    return {
        "rc": md.returncode,
        "rc_json": js.returncode,
        "seconds": md.seconds,
        "error": _error_line(md) if md.returncode not in (0, 1) else None,
        "regressed_points": tripped,
        "json": doc,
    }


def pair(kind: str, i: int, stacks: dict[str, Path], work: Path, args: argparse.Namespace) -> dict[str, Any]:
    order = ["A", "A"] if kind == "aa" else ["A", "B"] if i % 2 == 0 else ["B", "A"]
    started = time.monotonic()
    labs: list[dict[str, Any]] = []
    with cpu_load(args.load) as load:
        for n, variant in enumerate(order, 1):
            out = work / (f"aa-{i}-{n}" if kind == "aa" else f"ab-{i}-{variant}")
            labs.append({"variant": variant, **lab(stacks[variant], out, args)})
            if labs[-1]["rc"] != 0:
                break
        result: dict[str, Any] = {"kind": kind, "pair": i, "order": order, "load": load, "labs": labs}
        if all(x["rc"] == 0 for x in labs) and len(labs) == 2:
            first, second = (labs[0], labs[1]) if kind == "aa" or order[0] == "A" else (labs[1], labs[0])
            result["compare"] = compare(first["out"], second["out"])
    cmp = result.get("compare")
    result["exit"] = cmp["rc"] if cmp else None
    result["outcome"] = {0: "ok", 1: "regression"}.get(result["exit"], "error")
    result["error"] = (cmp or {}).get("error") or next((x["error"] for x in labs if x["error"]), None)
    result["seconds"] = time.monotonic() - started
    return result


def summarize(kind: str, results: list[dict[str, Any]], pairs: int) -> dict[str, Any]:
    want = "ok" if kind == "aa" else "regression"
    need = math.ceil(0.95 * pairs)  # 19 of 20
    got = sum(r["outcome"] == want for r in results)
    labs = [x["seconds"] for r in results for x in r["labs"] if x["rc"] == 0]
    return {
        "pairs": len(results),
        "exit0": sum(r["outcome"] == "ok" for r in results),
        "exit1": sum(r["outcome"] == "regression" for r in results),
        "errors": sum(r["outcome"] == "error" for r in results),
        "target": f"exit {0 if kind == 'aa' else 1} in ≥ {need}/{pairs}",
        "met": got >= need,
        "lab_s": [round(s, 2) for s in labs],
        "pair_s": [round(r["seconds"], 2) for r in results],
    }


def _med(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})" if values else "-"


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # so the load is killed and the finally below runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pairs", type=int, default=20, metavar="N", help="Pairs per experiment (default 20).")
    parser.add_argument("--only", choices=("aa", "ab"), help="Run only A/A or only A/B.")
    parser.add_argument("--repeat", type=int, metavar="K", help="Passed to every `tisbench lab` as --repeat K.")
    parser.add_argument("--release", default="24.10", help="Triton release of the lab images (default 24.10).")
    parser.add_argument("--work", type=Path, help="Keep the stacks and run directories here (default: temporary).")
    parser.add_argument("--load", action=argparse.BooleanOptionalAction, default=True, help="CPU load beside pairs.")
    args = parser.parse_args()
    if args.pairs < 1 or (args.repeat is not None and args.repeat < 1):
        parser.error("--pairs and --repeat must be at least 1")
    if args.repeat:
        usage = subprocess.run([str(TISBENCH), "lab", "--help"], capture_output=True, text=True, timeout=60).stdout
        if "--repeat" not in usage:
            print(f"{TISBENCH} lab has no --repeat option (yet); run without --repeat", file=sys.stderr)
            return 2
    signal.signal(signal.SIGTERM, _terminate)
    kinds = [args.only] if args.only else ["aa", "ab"]
    started, stamp = time.monotonic(), datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    doc: dict[str, Any] = {
        "date": stamp,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "nproc": os.cpu_count(),
        "load_avg": [os.getloadavg()],
    }
    results: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"noise-{stamp}.json"
    with tempfile.TemporaryDirectory(prefix="bench-noise-") as tmp:
        work = args.work.resolve() if args.work else Path(tmp)
        stacks = make_stacks(work)
        try:
            for kind in kinds:
                for i in range(args.pairs):
                    r = pair(kind, i, stacks, work, args)
                    results[kind].append(r)
                    path.write_text(json.dumps({**doc, "pairs": results}, indent=2, ensure_ascii=False) + "\n")
                    labs = ", ".join(
                        f"{x['variant']} {x['seconds']:.1f} s" + (f" (exit {x['rc']})" if x["rc"] else "")
                        for x in r["labs"]
                    )
                    why = "; ".join(r.get("compare", {}).get("regressed_points", [])) or r["error"] or ""
                    _say(f"{kind} {i + 1}/{args.pairs}: {r['outcome']} (compare exit {r['exit']}) labs {labs}; {why}")
        finally:
            left = [x for s in stacks.values() for x in remove_stack_labs(docker.from_env(), s)]
            if left:
                _say(f"removed leftovers: {', '.join(left)}")
    doc["load_avg"].append(os.getloadavg())
    doc["seconds"] = time.monotonic() - started
    doc["summary"] = {k: summarize(k, results[k], args.pairs) for k in kinds}
    doc["pairs"] = results
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")

    print(
        f"{'':5} {'pairs':>5} {'exit 0':>7} {'exit 1':>7} {'error':>6}  {'target':<18} {'met':<4} "
        f"{'lab s median (min–max)':<24} pair s median (min–max)"
    )
    for kind, s in doc["summary"].items():
        name = "A/A" if kind == "aa" else "A/B"
        print(
            f"{name:5} {s['pairs']:>5} {s['exit0']:>7} {s['exit1']:>7} {s['errors']:>6}  {s['target']:<18} "
            f"{'✓' if s['met'] else '✗':<4} {_med(s['lab_s']):<24} {_med(s['pair_s'])}"
        )
    for r in (r for rs in results.values() for r in rs if r["outcome"] == "error"):
        print(f"{r['kind']} pair {r['pair']}: {r['error']}")
    load = "on (CPU 0)" if args.load else "off"
    print(f"load {load}; {doc['seconds']:.0f} s in all; wrote {path.relative_to(HERE.parent)}")
    return 0 if all(s["met"] for s in doc["summary"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
