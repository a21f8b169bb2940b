"""Release matrix: the same stack and bench settings across releases, medians over repeats,
deltas against the first release, and whether a delta is larger than run-to-run noise.

``run_matrix`` drives Docker (one full lab per release and repeat); everything else is pure.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from composer.analyzer.results import Summary, load_summary
from composer.core.errors import Interrupted, TisbenchError, UsageError
from composer.core.fsutil import write_json
from composer.core.release import parse_release

METRICS = ("throughput_infer_per_sec", "p50_latency_us", "p99_latency_us")
HIGHER_IS_BETTER = {"throughput_infer_per_sec": True, "p50_latency_us": False, "p99_latency_us": False}
Say = Callable[[str], None]


def parse_releases(text: str) -> list[str]:
    """``23.07,24.10`` → validated, de-duplicated, in the order given (the first is the baseline)."""
    releases: list[str] = []
    for part in text.split(","):
        release = str(parse_release(part.strip(), field="--releases"))
        if release not in releases:
            releases.append(release)
    if not releases:
        raise UsageError("--releases is empty", "give at least one release, e.g. 23.07,24.10")
    return releases


def _median_rows(summaries: Sequence[Summary]) -> list[dict[str, Any]]:
    """Per sweep point: the median and the spread (max−min, % of median) of each metric."""
    by_point: dict[float, list[Any]] = {}
    for summary in summaries:
        for row in summary.rows:
            by_point.setdefault(row.value, []).append(row)
    out = []
    for value in sorted(by_point):
        rows = by_point[value]
        item: dict[str, Any] = {"sweep": rows[0].sweep, "value": value, "repeats": len(rows)}
        for metric in METRICS:
            values = [getattr(r, metric) for r in rows if getattr(r, metric) is not None]
            if not values:
                continue
            median = statistics.median(values)
            item[metric] = median
            item[f"{metric}_spread_pct"] = (
                (max(values) - min(values)) / median * 100 if median and len(values) > 1 else None
            )
        out.append(item)
    return out


def _delta(base: dict[str, Any], other: dict[str, Any], metric: str) -> dict[str, Any] | None:
    a, b = base.get(metric), other.get(metric)
    if a is None or b is None or a == 0:
        return None
    pct = (b - a) / a * 100
    noise = [s for s in (base.get(f"{metric}_spread_pct"), other.get(f"{metric}_spread_pct")) if s is not None]
    better = pct > 0 if HIGHER_IS_BETTER[metric] else pct < 0
    if not noise:
        verdict = "noise unknown (use --repeat 3 or more)"
    elif abs(pct) <= max(noise):
        verdict = "within noise"
    else:
        verdict = "better" if better else "worse"
    return {"pct": pct, "noise_pct": max(noise) if noise else None, "verdict": verdict}


def matrix_document(stack: str, entries: list[dict[str, Any]], repeat: int) -> dict[str, Any]:
    """matrix.json: per release its status, versions, run dirs and median rows; deltas vs the first ok release."""
    ok = [e for e in entries if e["status"] == "ok"]
    base = ok[0] if ok else None
    for entry in entries:
        entry["deltas"] = []
        if base is None or entry is base or entry["status"] != "ok":
            continue
        base_rows = {r["value"]: r for r in base["rows"]}
        for row in entry["rows"]:
            reference = base_rows.get(row["value"])
            if reference is not None:
                entry["deltas"].append({"value": row["value"], **{m: _delta(reference, row, m) for m in METRICS}})
    return {"stack": stack, "repeat": repeat, "baseline": base["release"] if base else None, "releases": entries}


def _entry(release: str) -> dict[str, Any]:
    return {
        "release": release,
        "status": "failed",
        "reason": None,
        "server_version": None,
        "perf_analyzer_version": None,
        "runs": [],
        "rows": [],
    }


def run_matrix(
    stack_dir: Path,
    releases: list[str],
    image_set: str | None,
    out_dir: Path,
    repeat: int,
    request: Any,
    say: Say,
    *,
    gpus: str | None = None,
    image_repo: str | None = None,
    pull: str | None = None,
) -> dict[str, Any]:
    """One full lab (up → ready → bench → collect → down) per release and repeat."""
    from composer.labs.bench import run_bench
    from composer.labs.handle import handle_of
    from composer.labs.local import local_session
    from composer.labs.plan import plan_lab

    if out_dir.exists() and any(out_dir.iterdir()):
        raise UsageError(f"--out {out_dir}: exists and is not empty", "choose a new directory for the matrix")
    entries = []
    for release in releases:
        entry = _entry(release)
        entries.append(entry)
        summaries = []
        try:
            plan = plan_lab(stack_dir, release=release, images=image_set, gpus=gpus, image_repo=image_repo, pull=pull)
            for index in range(1, repeat + 1):
                run_dir = out_dir / release if repeat == 1 else out_dir / release / f"repeat-{index}"
                say(f"release {release}: run {index} of {repeat}")
                session = local_session(plan, say)
                with session as running:
                    bench_request = replace(request, out=run_dir)
                    result = run_bench(handle_of(running), bench_request, say=say, lab_done=session.remove_early)
                entry["runs"].append(str(run_dir))
                entry["server_version"] = result.manifest.get("server_version")
                entry["perf_analyzer_version"] = result.manifest.get("perf_analyzer_version")
                entry["images"] = result.manifest.get("images")
                summaries.append(load_summary(run_dir))
            entry["rows"] = _median_rows(summaries)
            entry["status"] = "ok"
        except Interrupted:
            raise
        except TisbenchError as error:
            entry["reason"] = error.one_line()
            say(f"release {release} failed: {entry['reason']}")
    document = matrix_document(str(stack_dir.resolve()), entries, repeat)
    write_json(out_dir / "matrix.json", document)
    return document
