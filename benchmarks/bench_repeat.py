"""Acceptance for the numbers' intervals: --repeat's coverage, and no run that ends with nothing.

coverage (a quiet machine): pairs of `tisbench lab --repeat 3` on bench_noise's stack at one
concurrency; a pair passes when the second run's mean throughput falls inside the first run's 95 %
interval (target: 9 of 10 pairs). The intervals' widths are reported, p99's coverage beside.

kept (under bench_noise's CPU load): `tisbench lab` on the quickstart and on the origin stack (a
model with string inputs that opens files from a mounted volume) over a 3-point sweep, several
times; every run must end with a row for every asked point (exit 0, or 7 with unstable points
marked), never with nothing.

    python benchmarks/bench_repeat.py [--only coverage|kept] [--pairs 10] [--runs 3] [--release 24.10]

Writes benchmarks/results/repeat-<UTC time>.json; exit 0 when the targets are met.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench_noise import RESULTS, STACK, cpu_load, lab
from labkit import ROOT, SEED_STACK

ORIGIN = ROOT / "tests" / "e2e" / "stacks" / "origin"
KEPT_SWEEP = "1:3"


def _summary(run: str) -> dict[str, Any]:
    return dict(json.loads((Path(run) / "summary.json").read_text()))


def coverage(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    pairs = []
    for i in range(args.pairs):
        runs = [
            lab(STACK, work / f"cov-{i}-{n}", args, ["--repeat", "3", "--concurrency", "2"]) for n in (1, 2)
        ]
        if any(r["rc"] != 0 for r in runs):
            pairs.append({"pair": i, "runs": runs, "error": next(r["error"] for r in runs if r["rc"])})
            continue
        (first,), (second,) = (_summary(r["out"])["rows"] for r in runs)
        inside = {
            metric: first[f"{metric}_interval"][0] <= second[key] <= first[f"{metric}_interval"][1]
            for metric, key in (("throughput", "throughput_infer_per_sec"), ("p99_latency", "p99_latency_us"))
        }
        widths = {
            metric: (first[f"{metric}_interval"][1] - first[f"{metric}_interval"][0]) / first[key] * 100
            for metric, key in (("throughput", "throughput_infer_per_sec"), ("p99_latency", "p99_latency_us"))
        }
        pairs.append({"pair": i, "runs": runs, "inside": inside, "width_pct": widths, "first": first, "second": second})
        print(f"[{time.strftime('%H:%M:%S')}] coverage {i + 1}/{args.pairs}: {inside} widths {widths}", file=sys.stderr)
    done = [p for p in pairs if "inside" in p]
    need = math.ceil(0.9 * args.pairs)
    return {
        "pairs": pairs,
        "throughput_inside": sum(p["inside"]["throughput"] for p in done),
        "p99_inside": sum(p["inside"]["p99_latency"] for p in done),
        "throughput_width_pct_median": statistics.median(p["width_pct"]["throughput"] for p in done) if done else None,
        "p99_width_pct_median": statistics.median(p["width_pct"]["p99_latency"] for p in done) if done else None,
        "target": f"throughput inside in ≥ {need}/{args.pairs}",
        "met": sum(p["inside"]["throughput"] for p in done) >= need,
    }


def kept(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    runs = []
    for name, stack in (("quickstart", SEED_STACK), ("origin", ORIGIN)):
        for i in range(args.runs):
            with cpu_load(True):
                r = lab(stack, work / f"kept-{name}-{i}", args, ["--concurrency", KEPT_SWEEP])
            rows = _summary(r["out"])["rows"] if r["rc"] in (0, 7) else []
            r.update(stack=name, points=[row["concurrency"] for row in rows])
            r["unstable"] = [row["concurrency"] for row in rows if row.get("stable") is False]
            runs.append(r)
            print(f"[{time.strftime('%H:%M:%S')}] kept {name} {i + 1}: exit {r['rc']} rows {r['points']} "
                  f"unstable {r['unstable']} ({r['seconds']:.0f} s)", file=sys.stderr)  # fmt: skip
    whole = [r for r in runs if r["points"] == [1, 2, 3]]
    target = f"every point in {len(runs)}/{len(runs)}"
    return {"runs": runs, "whole": len(whole), "target": target, "met": len(whole) == len(runs)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", choices=("coverage", "kept"))
    parser.add_argument("--pairs", type=int, default=10, help="coverage pairs (default 10)")
    parser.add_argument("--runs", type=int, default=3, help="kept: runs per stack (default 3)")
    parser.add_argument("--release", default="24.10")
    args = parser.parse_args()
    args.repeat = None  # bench_noise.lab's own --repeat: the extra arguments carry ours
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    doc: dict[str, Any] = {"date": stamp, "args": vars(args)}
    with tempfile.TemporaryDirectory(prefix="bench-repeat-") as tmp:
        for name, measure in (("coverage", coverage), ("kept", kept)):
            if args.only in (None, name):
                doc[name] = measure(Path(tmp), args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"repeat-{stamp}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    for name in ("coverage", "kept"):
        if name in doc:
            shown = {k: v for k, v in doc[name].items() if k not in ("pairs", "runs")}
            print(f"{name}: {shown}")
    print(f"wrote {path.relative_to(ROOT)}")
    return 0 if all(doc[n]["met"] for n in ("coverage", "kept") if n in doc) else 1


if __name__ == "__main__":
    sys.exit(main())
