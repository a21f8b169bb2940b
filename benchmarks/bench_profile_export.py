"""Streaming profile-export summary vs ``json.load`` on a synthetic 1,000,000-request export.

Each measurement runs in its own child process, so peak RSS (VmHWM) belongs to that operation
alone. Targets: summarizer peak RSS ≤ 0.2 × json.load's, wall time ≤ 1.0 × json.load's.

    .venv/bin/python benchmarks/bench_profile_export.py [--repeats N] [--requests N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = 1_000_000
TARGETS = {"peak_rss": 0.2, "wall_time": 1.0, "cpu_time": 1.0}
# Shaped like perf_analyzer 2.60's export for the seed model (≈230 bytes per request).
_REQUEST = (
    '{{"timestamp":{t},"request_inputs":{{"data_path":"/data/img_{i:07d}.jpg","age":[34.0],'
    '"gender":[1.0],"name":"Alice"}},"response_timestamps":[{end}],'
    '"response_outputs":[{{"greeting":"Hello Alice, age 34"}}]}}'
)


def write_export(path: Path, requests: int = REQUESTS, experiments: int = 3) -> int:
    """Write a synthetic export with ``requests`` requests split over experiments; returns bytes."""
    t = 1_732_500_000_000_000_000
    per = requests // experiments
    with path.open("w") as out:
        out.write('{"experiments":[')
        for e in range(experiments):
            count = per if e < experiments - 1 else requests - per * (experiments - 1)
            start = t
            out.write("," if e else "")
            out.write(f'{{"experiment":{{"mode":"concurrency","value":{e + 1}}},"requests":[')
            for chunk in range(0, count, 10_000):
                items = []
                for i in range(chunk, min(chunk + 10_000, count)):
                    t += 270_000
                    latency = 180_000 + (i * 7919) % 250_000 + (2_000_000 if i % 997 == 0 else 0)
                    items.append(_REQUEST.format(t=t, i=i, end=t + latency))
                out.write(("," if chunk else "") + ",".join(items))
            span = t - start
            bounds = [start + span // 2 + k * span // 6 for k in range(4)]
            out.write(f'],"window_boundaries":{json.dumps(bounds)}}}')
        out.write('],"version":"0.0.0","service_kind":"triton","endpoint":""}')
    return path.stat().st_size


def _peak_rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _child(kind: str, path: Path) -> None:
    """Runs in the child: one operation, then its wall/CPU time and peak RSS as JSON on stdout."""
    if kind == "json_load":
        cpu = _cpu_seconds()
        start = time.monotonic()
        with path.open("rb") as stream:
            doc = json.load(stream)
        requests = sum(len(e["requests"]) for e in doc["experiments"])
    else:
        from composer.analyzer.results import summarize_profile_export

        cpu = _cpu_seconds()
        start = time.monotonic()
        requests = sum(s.request_count for s in summarize_profile_export(path))
    seconds = time.monotonic() - start
    cpu = _cpu_seconds() - cpu
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "peak_rss_kib": _peak_rss_kib(), "requests": requests}))


def _measure(kind: str, path: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", kind, str(path)]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, env=env, cwd=ROOT)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _verdict(ratio: float, target: float) -> str:
    return "PASS" if ratio <= target else "MISS"


def run(repeats: int = 1, requests: int = REQUESTS) -> list[dict[str, Any]]:
    """Measure both sides ``repeats`` times (best of); one result dict per metric."""
    with tempfile.TemporaryDirectory(prefix="tisbench-bench-") as tmp:
        path = Path(tmp) / "profile_export.json"
        size = write_export(path, requests)
        baseline, candidate = [], []
        for _ in range(repeats):  # interleaved, so load from other processes hits both sides
            baseline.append(_measure("json_load", path))
            candidate.append(_measure("summarize", path))
    if {b["requests"] for b in baseline + candidate} != {requests}:
        raise RuntimeError("json.load and the summarizer saw different request counts")
    results = []
    metrics = (("peak_rss", "peak_rss_kib"), ("wall_time", "seconds"), ("cpu_time", "cpu_seconds"))
    for metric, key in metrics:
        base = min(b[key] for b in baseline)
        cand = min(c[key] for c in candidate)
        ratio = cand / base
        results.append(
            {
                "benchmark": "profile_export",
                "metric": metric,
                "unit": "KiB" if key == "peak_rss_kib" else "s",
                "baseline": base,
                "candidate": cand,
                "ratio": ratio,
                "target": TARGETS[metric],
                "verdict": _verdict(ratio, TARGETS[metric]),
                "file_bytes": size,
                "requests": requests,
            }
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--requests", type=int, default=REQUESTS)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], Path(args.child[1]))
        return
    results = run(args.repeats, args.requests)
    first = results[0]
    print(f"profile export: {first['requests']:,} requests, {first['file_bytes'] / 1e6:.0f} MB")
    for r in results:
        print(
            f"  {r['metric']:<9} json.load {r['baseline']:>10.2f} {r['unit']:<3}  "
            f"summarizer {r['candidate']:>10.2f} {r['unit']:<3}  ratio {r['ratio']:.3f} "
            f"(target ≤ {r['target']})  {r['verdict']}"
        )


if __name__ == "__main__":
    main()
