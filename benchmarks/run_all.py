"""tisbench against its baselines, as ratios measured in the same run (make bench-perf).

    .venv/bin/python benchmarks/run_all.py [--repeat N] [--only P1,P4] [--quick]

P1 orchestration overhead   (tisbench lab − perf_analyzer) ÷ (hand compose workflow − perf_analyzer)
P2 readiness lag            tisbench's "lab NAME ready" line − first 200 of an independent 1 ms probe (ms);
                            also shown against Triton's "Started HTTPService" log line (info)
P3 fidelity                 throughput via tisbench bench ÷ the same argv exec'd directly
P4 CLI start                tisbench --help ÷ python -c pass
P5 big profile export       summarizer ÷ json.load: peak RSS, wall time (bench_profile_export.run)
P6 teardown                 tisbench down ÷ docker compose down -t 0 (what an expert types)

Each ratio is measured --repeat times (median, min, max). The table goes to stdout and the
same numbers, with per-phase timings, to benchmarks/results/latest.json. Exit 0 when every
target is met, 1 otherwise. Every lab started here is a bench-… project, removed in finally.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_cli  # noqa: E402
import bench_lab  # noqa: E402
import bench_profile_export  # noqa: E402
from labkit import ROOT, copy_stack  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
ALL = ("P1", "P2", "P3", "P4", "P5", "P6")


@dataclass(frozen=True)
class Target:
    low: float | None
    high: float

    def met(self, value: float) -> bool:
        return (self.low is None or value >= self.low) and value <= self.high

    def text(self, unit: str) -> str:
        return f"≤ {self.high:g}{unit}" if self.low is None else f"{self.low:g}–{self.high:g}{unit}"


@dataclass(frozen=True)
class Measure:
    key: str
    title: str
    target: Target | None  # None: shown for information, no verdict
    unit: str = ""  # "" for ratios
    scale: float = 1.0  # samples × scale = shown value


MEASURES = [
    Measure("P1", "orchestration overhead vs hand workflow", Target(None, 1.0)),
    Measure("P2", "readiness lag (ms after the server first answers)", Target(None, 50.0), " ms", 1000.0),
    Measure("P2 log", "  same, from Triton's Started HTTPService line", None, " ms", 1000.0),
    Measure("P3", "fidelity: tisbench bench ÷ direct perf_analyzer", Target(0.97, 1.03)),
    Measure("P4", "CLI start: tisbench --help ÷ python -c pass", Target(None, 3.0)),
    Measure("P5 rss", "profile export peak RSS ÷ json.load", Target(None, 0.2)),
    Measure("P5 time", "profile export wall time ÷ json.load", Target(None, 1.0)),
    Measure("P6", "teardown: tisbench down ÷ compose down -t 0", Target(None, 1.0)),
]


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    cpu = "?"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break

    def version(argv: list[str]) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip() or "?"
        except (OSError, subprocess.TimeoutExpired):
            return "?"

    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "docker": version(["docker", "version", "--format", "{{.Server.Version}}"]),
        "compose": version(["docker", "compose", "version", "--short"]),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "hostname": platform.node(),
    }


def _p5(repeats: int, requests: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """One bench_profile_export.run(1) per repeat, so each repeat yields its own ratios."""
    rss, wall, raw = [], [], []
    for r in range(repeats):
        results = {m["metric"]: m for m in bench_profile_export.run(1, requests)}
        rss.append(results["peak_rss"]["ratio"])
        wall.append(results["wall_time"]["ratio"])
        raw.append(results)
        _say(f"P5 {r + 1}/{repeats}: peak RSS ratio {rss[-1]:.3f}, wall time ratio {wall[-1]:.3f}")
    return {"samples": rss, "runs": raw}, {"samples": wall, "runs": raw}


def run_selected(selected: set[str], repeat: int, quick: bool) -> dict[str, dict[str, Any]]:
    """Results by measure key; a measure that fails carries its error instead of samples."""
    out: dict[str, dict[str, Any]] = {}

    def guarded(keys: list[str], action: Callable[[], Any]) -> None:
        started = time.monotonic()
        try:
            value = action()
            parts = value if isinstance(value, tuple) else (value,)
            for key, part in zip(keys, parts, strict=True):
                out[key] = {**part, "seconds": time.monotonic() - started}
        except Exception as exc:  # one broken measure must not hide the others
            _say(f"{'/'.join(keys)} failed: {type(exc).__name__}: {exc}")
            for key in keys:
                out[key] = {"error": f"{type(exc).__name__}: {exc}", "samples": []}

    if "P4" in selected:
        guarded(["P4"], lambda: bench_cli.p4_cli_start(repeat, 5 if quick else 10, _say))

    lab_keys = {"P1", "P2", "P3", "P6"} & selected
    if lab_keys:
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            work = Path(tmp)
            ctx = bench_lab.new_ctx(work, copy_stack(work), _say)
            lags: list[dict[str, float]] = []
            try:
                if "P1" in selected:
                    guarded(["P1"], lambda: bench_lab.p1_orchestration(ctx, repeat))
                    lags += [p["tisbench"]["ready_lag"] for p in out["P1"].get("pairs", [])]
                if "P6" in selected:
                    guarded(["P6"], lambda: bench_lab.p6_teardown(ctx, repeat))
                    lags += [p["ready_lag"] for p in out["P6"].get("pairs", [])]
                if "P2" in selected:
                    source = "the tisbench lab/up runs of P1 and P6"
                    if not lags:
                        guarded(["P2"], lambda: bench_lab.p2_readiness(ctx, repeat))
                        lags = out["P2"].get("lags", [])
                        source = "tisbench up runs"
                    if lags:
                        out["P2"] = {"samples": [x["lag_s"] for x in lags], "lags": lags, "source": source}
                        out["P2 log"] = {"samples": [x["lag_log_s"] for x in lags], "source": source}
                if "P3" in selected:
                    guarded(["P3"], lambda: bench_lab.p3_fidelity(ctx, max(2, 3 * repeat)))
            finally:
                if ctx.retried:
                    out["retries"] = {"samples": [], "failures": ctx.retried}
                left = bench_lab.close_ctx(ctx)
                if left:
                    _say(f"removed leftovers: {', '.join(left)}")

    if "P5" in selected:
        guarded(["P5 rss", "P5 time"], lambda: _p5(repeat, 200_000 if quick else bench_profile_export.REQUESTS))
    return out


def summarize(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for m in MEASURES:
        if m.key not in results:
            continue
        r = results[m.key]
        samples = [s * m.scale for s in r.get("samples", [])]
        row: dict[str, Any] = {"id": m.key, "measure": m.title, "unit": m.unit.strip() or "ratio"}
        row["target"] = m.target.text(m.unit) if m.target else "info"
        if samples:
            median = statistics.median(samples)
            row.update(
                median=median,
                min=min(samples),
                max=max(samples),
                n=len(samples),
                samples=samples,
                verdict="" if m.target is None else "✓" if m.target.met(median) else "✗",
            )
        else:
            row.update(median=None, min=None, max=None, n=0, samples=[], verdict="error")
        if "error" in r:
            row["error"] = r["error"]
        row["details"] = {k: v for k, v in r.items() if k not in ("samples", "error")}
        rows.append(row)
    return rows


def print_report(doc: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160)
    mach, load = doc["machine"], doc["load_average"]
    console.print(
        f"tisbench bench-perf  {doc['date']}  {mach['hostname']}: nproc {mach['nproc']}, {mach['cpu']}, "
        f"Docker {mach['docker']}, Compose {mach['compose']}, Python {mach['python']}"
    )
    console.print(
        f"load average (1/5/15 min) at start {' '.join(f'{x:.2f}' for x in load['start'])}, "
        f"at end {' '.join(f'{x:.2f}' for x in load['end'])}; repeat {doc['repeat']}; "
        f"{doc['seconds']:.0f} s in all"
    )
    table = Table()
    for header in ("", "measure", "median", "min", "max", "n", "target", ""):
        table.add_column(header, justify="right" if header in ("median", "min", "max", "n") else "left")
    for row in doc["rows"]:
        digits = 1 if row["unit"] == "ms" else 3
        cells = [f"{row[k]:.{digits}f}" if row[k] is not None else "-" for k in ("median", "min", "max")]
        table.add_row(row["id"], row["measure"], *cells, str(row["n"]), row["target"], row["verdict"])
    console.print(table)
    for row in doc["rows"]:
        if "error" in row:
            console.print(f"{row['id']} error: {row['error']}")
    for failure in doc["retried_samples"]:
        console.print(f"retried once after a failure: {failure}")
    p1 = next((r for r in doc["rows"] if r["id"] == "P1" and r["details"].get("pairs")), None)
    if p1:
        _print_phases(console, p1["details"]["pairs"])


def _print_phases(console: Any, pairs: list[dict[str, Any]]) -> None:
    """Where P1's time goes: median seconds since start of each phase, both workflows."""
    from rich.table import Table

    table = Table(title="P1 phases (s since start, median over pairs)")
    table.add_column("workflow")
    table.add_column("phase")
    table.add_column("at", justify="right")
    for side in ("tisbench", "hand"):
        keys = list(pairs[0][side]["phases_s"])
        for key in keys:
            values = [p[side]["phases_s"][key] for p in pairs if p[side]["phases_s"].get(key) is not None]
            table.add_row(side, key, f"{statistics.median(values):.3f}" if values else "-")
        for key in ("perf_analyzer_s", "overhead_s"):
            table.add_row(side, key, f"{statistics.median(p[side][key] for p in pairs):.3f}")
    console.print(table)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # so every finally removes its labs


def _compile_bytecode() -> None:
    """tisbench's modules as an install leaves them, compiled: pip compiles a wheel's modules when it
    installs them, and an editable checkout writes __pycache__ on first import — unless
    PYTHONDONTWRITEBYTECODE is set (as on some CI and sandbox machines), when every CLI start would
    compile ~50 modules from source (~0.07 s) and measure that instead of tisbench."""
    import compileall

    compileall.compile_dir(ROOT / "composer", quiet=1)
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        _say("PYTHONDONTWRITEBYTECODE is set: composer/ compiled to bytecode once, as an install would have it")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, metavar="N", help="Measurements per ratio (default 3; 1 with --quick).")
    parser.add_argument("--only", metavar="P1,P4", help=f"Run only these ({','.join(ALL)}).")
    parser.add_argument("--quick", action="store_true", help="One repeat, fewer CLI starts, a 200k-request export.")
    args = parser.parse_args()
    selected = {s.strip().upper() for s in args.only.split(",")} if args.only else set(ALL)
    unknown = selected - set(ALL)
    if unknown:
        parser.error(f"--only: unknown {', '.join(sorted(unknown))}; choose from {','.join(ALL)}")
    repeat = args.repeat or (1 if args.quick else 3)
    if repeat < 1:
        parser.error("--repeat must be at least 1")
    signal.signal(signal.SIGTERM, _terminate)
    os.chdir(ROOT)

    started = time.monotonic()
    load_start = os.getloadavg()
    doc: dict[str, Any] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "repeat": repeat,
        "quick": args.quick,
        "selected": sorted(selected),
    }
    _say(f"load average at start: {' '.join(f'{x:.2f}' for x in load_start)}")
    _compile_bytecode()
    results = run_selected(selected, repeat, args.quick)
    doc["load_average"] = {"start": list(load_start), "end": list(os.getloadavg())}
    doc["seconds"] = time.monotonic() - started
    doc["rows"] = summarize(results)
    doc["retried_samples"] = results.get("retries", {}).get("failures", [])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    print_report(doc)
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0 if all(row["verdict"] in ("✓", "") for row in doc["rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())
