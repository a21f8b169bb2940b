"""Two runs side by side: per-sweep-point deltas, regressions, and the list of runs under a folder."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from composer.analyzer.intervals import Change, change, standard_error
from composer.analyzer.results import Summary, SummaryRow, Uncertainty, load_summary
from composer.core.errors import RegressionFound, TisbenchError, UsageError
from composer.core.run_dir import MANIFEST

BETTER, WORSE, SAME, INCONCLUSIVE, UNKNOWN = "better", "worse", "same", "inconclusive", "no interval"
MARKS = {BETTER: "▲", WORSE: "▼", SAME: "=", INCONCLUSIVE: "?", UNKNOWN: "·"}
MAX_REPEATS_SAID = 50  # beyond this a point is called undecidable by repeats


@dataclass(frozen=True)
class RunRef:
    path: str
    model: str
    release: str
    sweep: str


@dataclass(frozen=True)
class Delta:
    """One metric of one sweep point: ``pct`` the change from a to b in %, ``interval`` its 95 %
    interval (both runs' noise), ``verdict`` better/worse/same/inconclusive against the threshold,
    ``repeats_needed`` (inconclusive only) about how many repeats on each side would decide it."""

    a: float | None
    b: float | None
    pct: float | None
    interval: tuple[float, float] | None
    verdict: str
    repeats_needed: int | None = None

    @property
    def mark(self) -> str:
        return MARKS[self.verdict]


@dataclass(frozen=True)
class PointComparison:
    sweep: str
    value: float
    throughput: Delta
    p50_latency_us: Delta
    p99_latency_us: Delta
    regressed: bool
    basis: str  # where the intervals come from: "windows", "repeats", "trials", or a mix


@dataclass(frozen=True)
class Comparison:
    a: RunRef
    b: RunRef
    max_regression_pct: float | None
    points: tuple[PointComparison, ...]
    notes: tuple[str, ...]

    @property
    def regressions(self) -> tuple[PointComparison, ...]:
        return tuple(p for p in self.points if p.regressed)


@dataclass(frozen=True)
class RunInfo:
    path: Path
    model: str
    release: str
    started_utc: str
    status: str
    best_throughput: float | None


def verdict_of(worse: tuple[float, float], threshold: float) -> str:
    """The verdict on a change whose interval, in % towards worse, is ``worse``: beyond the noise
    and past the threshold (worse/better), within ±threshold (same), or undecided (inconclusive).
    With no threshold: worse or better when the interval excludes 0, else same within noise."""
    low, high = worse
    if low > threshold:
        return WORSE
    if high < -threshold:
        return BETTER
    if threshold == 0 or (low >= -threshold and high <= threshold):
        return SAME
    return INCONCLUSIVE


def repeats_needed(worse: tuple[float, float], threshold: float, n: int) -> int | None:
    """About how many samples per side would narrow the interval enough to decide it (its half-width
    shrinks with the square root of the samples); None when the change sits on the threshold."""
    low, high = worse
    centre, half = (low + high) / 2, (high - low) / 2
    edges = [edge for edge in (threshold, -threshold) if low <= edge <= high]
    distance = min((abs(centre - edge) for edge in edges), default=0.0)
    if distance <= 0 or half <= 0:
        return None
    needed = math.ceil(max(n, 2) * (half / distance) ** 2)
    return needed if needed <= MAX_REPEATS_SAID else None


def _delta(a: SummaryRow, b: SummaryRow, metric: str, threshold: float) -> Delta:
    """One metric compared with its noise; p50 (no interval kept) with its bare change."""
    value_a, value_b = _value(a, metric), _value(b, metric)
    if value_a is None or value_b is None or value_a == 0:
        return Delta(value_a, value_b, None, None, UNKNOWN)
    pct = (value_b - value_a) / value_a * 100
    seen = _change(a, b, metric, value_a, value_b)
    if seen is None:
        return Delta(value_a, value_b, pct, None, UNKNOWN)
    towards_worse = -1 if metric == "throughput" else 1  # lower throughput, higher latency: worse
    worse = sorted((seen.low * towards_worse, seen.high * towards_worse))
    interval = (round(seen.low, 2), round(seen.high, 2))
    verdict = verdict_of((worse[0], worse[1]), threshold)
    needed = repeats_needed((worse[0], worse[1]), threshold, seen.n) if verdict == INCONCLUSIVE else None
    return Delta(value_a, value_b, pct, interval, verdict, needed)


def _value(row: SummaryRow, metric: str) -> float | None:
    return row.throughput_infer_per_sec if metric == "throughput" else getattr(row, metric)


def _change(a: SummaryRow, b: SummaryRow, metric: str, value_a: float, value_b: float) -> Change | None:
    sides = []
    for row in (a, b):
        u = row.uncertainty
        interval = None if u is None else _interval(u, metric)
        se = None if u is None or interval is None else standard_error(interval, u.basis, u.n)
        if u is None or se is None:
            return None
        sides.append((se, u.n))
    (se_a, n_a), (se_b, n_b) = sides
    return change(value_a, se_a, n_a, value_b, se_b, n_b)


def _interval(u: Uncertainty, metric: str) -> tuple[float, float] | None:
    """A row's interval of ``metric``: throughput and p99 have one; p50's change is shown bare."""
    if metric == "throughput":
        return u.throughput
    return u.p99_latency_us if metric == "p99_latency_us" else None


def _point(a: SummaryRow, b: SummaryRow, max_pct: float | None) -> PointComparison:
    threshold = max_pct or 0.0
    throughput = _delta(a, b, "throughput", threshold)
    p99 = _delta(a, b, "p99_latency_us", threshold)
    p50 = _delta(a, b, "p50_latency_us", threshold)
    regressed = max_pct is not None and (
        WORSE in (throughput.verdict, p99.verdict) or _bare_regression(throughput, p99, max_pct)
    )
    bases = sorted({row.uncertainty.basis for row in (a, b) if row.uncertainty is not None}) or ["none"]
    return PointComparison(a.sweep, a.value, throughput, p50, p99, regressed, "+".join(bases))


def _bare_regression(throughput: Delta, p99: Delta, max_pct: float) -> bool:
    """A run written before intervals existed has none: its change is gated bare, as then."""
    slower = throughput.verdict == UNKNOWN and throughput.pct is not None and throughput.pct < -max_pct
    later = p99.verdict == UNKNOWN and p99.pct is not None and p99.pct > max_pct
    return slower or later


def _ref(path: Path, summary: Summary) -> RunRef:
    return RunRef(str(path), summary.model, summary.release, summary.sweep)


def compare_runs(a: Path, b: Path, max_regression_pct: float | None) -> Comparison:
    """Match sweep points of two runs by (sweep kind, value) and compare them."""
    if max_regression_pct is not None and max_regression_pct < 0:
        raise UsageError(f"--max-regression must be ≥ 0, got {max_regression_pct}")
    summary_a, summary_b = load_summary(a), load_summary(b)
    notes = []
    if summary_a.model != summary_b.model:
        notes.append(f"models differ: {summary_a.model!r} vs {summary_b.model!r}")
    if summary_a.sweep != summary_b.sweep:
        notes.append(f"sweep kinds differ: {summary_a.sweep} vs {summary_b.sweep}")
    rows_b = {(r.sweep, r.value): r for r in summary_b.rows}
    points = []
    for row in summary_a.rows:
        match = rows_b.pop((row.sweep, row.value), None)
        if match is None:
            notes.append(f"{row.sweep} {row.value:g} is only in A ({a})")
        else:
            points.append(_point(row, match, max_regression_pct))
    notes += [f"{r.sweep} {r.value:g} is only in B ({b})" for r in rows_b.values()]
    notes += _noise_notes(summary_a, "A") + _noise_notes(summary_b, "B")
    notes += _data_notes(_mounts(a), _mounts(b))
    return Comparison(_ref(a, summary_a), _ref(b, summary_b), max_regression_pct, tuple(points), tuple(notes))


def _noise_notes(summary: Summary, side: str) -> list[str]:
    """What weakens a run's side of the comparison: points never called stable, rows without intervals."""
    notes = []
    unstable = [r for r in summary.rows if r.unstable is not None]
    if unstable:
        named = ", ".join(f"{r.value:g}" for r in unstable)
        notes.append(f"{side}: {summary.sweep.replace('_', ' ')} {named} never met perf_analyzer's stability rule")
    if any(r.uncertainty is None for r in summary.rows):
        notes.append(f"{side} has rows without intervals (written before tisbench kept them): their change is bare")
    return notes


def _mounts(run_dir: Path) -> dict[tuple[str, str], str | None]:
    """(service, target) → content fingerprint of each mount of this machine's data, from the manifest."""
    try:
        manifest = json.loads((run_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    services = (manifest.get("lab_design") or {}).get("services") or {}
    return {
        (name, str(m.get("target"))): m.get("fingerprint")
        for name, service in services.items()
        for m in service.get("mounts") or []
        if m.get("host_path")
    }


def _data_notes(a: dict[tuple[str, str], str | None], b: dict[tuple[str, str], str | None]) -> list[str]:
    """What the two runs read differently: the data behind a mount, or a mount only one of them had."""
    notes = []
    for key in sorted(a.keys() | b.keys()):
        service, target = key
        if key not in a or key not in b:
            notes.append(f"{service} mounts {target} only in {'A' if key in a else 'B'}")
        elif a[key] is None or b[key] is None:
            notes.append(f"{service} {target}: too large to fingerprint, cannot tell whether the data are the same")
        elif a[key] != b[key]:
            notes.append(f"{service} {target}: the data differ ({a[key]} vs {b[key]})")
    return notes


def check_regressions(comparison: Comparison) -> None:
    """Raise RegressionFound (exit 1) when any matched point regressed beyond its noise and the threshold."""
    bad = comparison.regressions
    if bad:
        points = "; ".join(f"{p.sweep.replace('_', ' ')} {p.value:g} ({_what_regressed(p)})" for p in bad)
        raise RegressionFound(
            f"{len(bad)} sweep point(s) regressed beyond their noise by more than "
            f"{comparison.max_regression_pct:g} %: {points}",
            hint=f"compare {comparison.a.path} and {comparison.b.path} in detail",
        )


def _what_regressed(p: PointComparison) -> str:
    parts = []
    for name, delta in (("throughput", p.throughput), ("p99", p.p99_latency_us)):
        if delta.verdict == WORSE or (delta.verdict == UNKNOWN and p.regressed and delta.pct is not None):
            interval = f", interval {delta.interval[0]:+.1f} … {delta.interval[1]:+.1f} %" if delta.interval else ""
            parts.append(f"{name} {delta.pct:+.1f} %{interval}")
    return "; ".join(parts) or "see the table"


def _cell(delta: Delta, scale: float, digits: int) -> str:
    if delta.a is None or delta.b is None:
        return "–"
    if delta.pct is None:
        return f"{delta.a / scale:,.{digits}f} → {delta.b / scale:,.{digits}f} (n/a)"
    interval = f" [{delta.interval[0]:+.1f} … {delta.interval[1]:+.1f}]" if delta.interval else ""
    said = "" if delta.verdict == UNKNOWN else f" {delta.mark} {delta.verdict}"
    needed = f", ~{delta.repeats_needed} repeats to decide" if delta.repeats_needed else ""
    return f"{delta.a / scale:,.{digits}f} → {delta.b / scale:,.{digits}f} ({delta.pct:+.1f} %{interval}{said}{needed})"


def render_comparison(comparison: Comparison, fmt: str) -> str:
    """The comparison as Markdown or JSON text."""
    if fmt == "json":
        doc: dict[str, Any] = asdict(comparison)
        doc["regressed"] = bool(comparison.regressions)
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if fmt != "md":
        raise UsageError(f"unknown comparison format {fmt!r}", hint="use md or json")
    a, b = comparison.a, comparison.b
    threshold = comparison.max_regression_pct
    lines = [
        "# tisbench comparison",
        "",
        f"- A: `{a.path}` — {a.model}, release {a.release}",
        f"- B: `{b.path}` — {b.model}, release {b.release}",
        "- each change with its 95 % interval [low … high] from both runs' noise (their windows, or "
        "their repeats with --repeat); latencies in ms",
        f"- {MARKS[BETTER]} better · {MARKS[WORSE]} worse · {MARKS[SAME]} same · {MARKS[INCONCLUSIVE]} "
        "inconclusive (the interval is too wide to decide)"
        + (f", each against ±{threshold:g} %" if threshold else ", beyond noise"),
    ]
    if threshold is not None:
        lines.append(f"- regression: an interval wholly past {threshold:g} % towards worse")
    lines += ["", "| point | throughput (infer/s) | p50 | p99 | basis | verdict |", "|---|---|---|---|---|---|"]
    for p in comparison.points:
        verdict = "REGRESSION" if p.regressed else "ok"
        lines.append(
            f"| {p.sweep.replace('_', ' ')} {p.value:g} | {_cell(p.throughput, 1, 1)} | "
            f"{_cell(p.p50_latency_us, 1000, 2)} | {_cell(p.p99_latency_us, 1000, 2)} | {p.basis} | {verdict} |"
        )
    if comparison.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in comparison.notes]
    return "\n".join(lines) + "\n"


def _run_info(manifest_path: Path) -> RunInfo:
    run_dir = manifest_path.parent
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return RunInfo(run_dir, "?", "?", "", "unreadable", None)
    model = manifest.get("model")
    best = None
    try:
        rows = load_summary(run_dir).rows
        best = max((r.throughput_infer_per_sec for r in rows), default=None)
    except TisbenchError:
        pass  # a failed run has no results; it is still listed
    return RunInfo(
        path=run_dir,
        model=str(model.get("name", "?")) if isinstance(model, dict) else "?",
        release=str(manifest.get("release", "?")),
        started_utc=str(manifest.get("started_utc") or ""),
        status=str(manifest.get("status", "?")),
        best_throughput=best,
    )


def list_runs(root: Path) -> list[RunInfo]:
    """Run directories (those holding a manifest.json) under ``root``, oldest first."""
    if not root.is_dir():
        raise UsageError(f"{root} is not a directory", hint="pass the folder holding your runs")
    runs = [_run_info(m) for m in sorted(root.rglob(MANIFEST))]
    return sorted(runs, key=lambda r: (r.started_utc, str(r.path)))


__all__ = [
    "Comparison",
    "Delta",
    "PointComparison",
    "RunInfo",
    "RunRef",
    "check_regressions",
    "compare_runs",
    "list_runs",
    "render_comparison",
]
