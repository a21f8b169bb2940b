"""tisbench tune: quick against brute on the same space, in one run.

Prints and saves (benchmarks/results/tune.json): quick's measurements ÷ brute's (target ≤ 0.5),
quick's wall time ÷ brute's, whether brute's best lies in quick's final tie set, whether repeated
quick runs agree (each recommendation in the others' tie sets), and the time per measurement on
tune's one lab against a fresh `tisbench lab` per measurement.

    python benchmarks/bench_tune.py [--quick-runs 3] [--instances 1:3] [--max-batch-size 1:8] [--concurrency 1:8]

Run it under the Docker lock (flock /tmp/tisbench-docker.lock …); it needs the 24.10 lab images.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from labkit import ROOT, TISBENCH

BATCHED = ROOT / "tests" / "e2e" / "stacks" / "batched"


def _stack(work: Path) -> Path:
    target = work / "bench-tune"
    shutil.copytree(BATCHED, target)
    with (target / "stack.yaml").open("a", encoding="utf-8") as f:
        f.write("name: bench-tune\n")
    return target


def _tune(stack: Path, out: Path, mode: str, space: list[str]) -> tuple[dict[str, Any], float]:
    start = time.monotonic()
    done = subprocess.run(
        [str(TISBENCH), "tune", str(stack), "--images", "lab", "--mode", mode, *space, "--out", str(out)],
        capture_output=True, text=True, timeout=3600,
    )
    wall = time.monotonic() - start
    if done.returncode not in (0, 6):
        raise RuntimeError(f"tune --mode {mode} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return json.loads((out / "tune.json").read_text()), wall


def _ties(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["config"] for e in [doc["best"], *doc["tied"]] if e]


def _fresh_lab_s(stack: Path, work: Path) -> float:
    """One measurement through a fresh lab (up, bench, down): what tune saves per measurement."""
    start = time.monotonic()
    done = subprocess.run(
        [str(TISBENCH), "lab", str(stack), "--images", "lab", "--concurrency", "4", "--out", str(work / "fresh")],
        capture_output=True, text=True, timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"tisbench lab exited {done.returncode}:\n{done.stderr[-3000:]}")
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick-runs", type=int, default=1)
    parser.add_argument("--instances", default="1:3")
    parser.add_argument("--max-batch-size", default="1:8")
    parser.add_argument("--concurrency", default="1:8")
    parser.add_argument("--work", type=Path, help="Keep the stack and tune directories here (default: temporary).")
    args = parser.parse_args()
    space = ["--instances", args.instances, "--max-batch-size", args.max_batch_size, "--concurrency", args.concurrency]
    with tempfile.TemporaryDirectory(prefix="bench-tune-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        stack = _stack(work)
        quick = [_tune(stack, work / f"quick-{i}", "quick", space) for i in range(args.quick_runs)]
        brute, brute_wall = _tune(stack, work / "brute", "brute", space)
        fresh = _fresh_lab_s(stack, work)
    first, quick_wall = quick[0]
    recommendations = [doc["best"]["config"] if doc["best"] else None for doc, _ in quick]
    result = {
        "space": space,
        "quick_measurements": [doc["measurements"] for doc, _ in quick],
        "brute_measurements": brute["measurements"],
        "measurements_ratio": round(first["measurements"] / brute["measurements"], 3),
        "quick_wall_s": [round(w, 1) for _, w in quick],
        "brute_wall_s": round(brute_wall, 1),
        "wall_ratio": round(quick_wall / brute_wall, 3),
        "quick_recommendations": recommendations,
        "quick_tie_sets": [_ties(doc) for doc, _ in quick],
        "brute_best": brute["best"]["config"] if brute["best"] else None,
        "brute_best_in_quick_ties": bool(brute["best"]) and brute["best"]["config"] in _ties(first),
        "quick_runs_agree": all(r in _ties(doc) for r in recommendations for doc, _ in quick),
        "tune_s_per_measurement": round(brute["wall_s"] / brute["measurements"], 2),
        "fresh_lab_s_per_measurement": round(fresh, 2),
    }
    out = ROOT / "benchmarks" / "results" / "tune.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
