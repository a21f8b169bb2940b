"""Two runs side by side: per-sweep-point deltas, regressions, and the list of runs under a folder."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from composer.analyzer.results import Summary, SummaryRow, load_summary
from composer.core.errors import RegressionFound, TisbenchError, UsageError
from composer.core.run_dir import MANIFEST

SAME_PCT = 0.5  # changes within ±0.5 % are marked "="
BETTER, WORSE, SAME = "▲", "▼", "="


@dataclass(frozen=True)
class RunRef:
    path: str
    model: str
    release: str
    sweep: str


@dataclass(frozen=True)
class Delta:
    """One metric of one sweep point; ``pct`` is the change from a to b in percent."""

    a: float | None
    b: float | None
    pct: float | None
    mark: str


@dataclass(frozen=True)
class PointComparison:
    sweep: str
    value: float
    throughput: Delta
    p50_latency_us: Delta
    p99_latency_us: Delta
    regressed: bool


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


def _delta(a: float | None, b: float | None, higher_is_better: bool) -> Delta:
    if a is None or b is None or a == 0:
        return Delta(a, b, None, "?")
    pct = (b - a) / a * 100
    if abs(pct) <= SAME_PCT:
        mark = SAME
    else:
        mark = BETTER if (pct > 0) == higher_is_better else WORSE
    return Delta(a, b, pct, mark)


def _point(a: SummaryRow, b: SummaryRow, max_pct: float | None) -> PointComparison:
    throughput = _delta(a.throughput_infer_per_sec, b.throughput_infer_per_sec, True)
    p99 = _delta(a.p99_latency_us, b.p99_latency_us, False)
    regressed = max_pct is not None and (
        (throughput.pct is not None and throughput.pct < -max_pct) or (p99.pct is not None and p99.pct > max_pct)
    )
    return PointComparison(
        sweep=a.sweep,
        value=a.value,
        throughput=throughput,
        p50_latency_us=_delta(a.p50_latency_us, b.p50_latency_us, False),
        p99_latency_us=p99,
        regressed=regressed,
    )


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
    notes += _data_notes(_mounts(a), _mounts(b))
    return Comparison(_ref(a, summary_a), _ref(b, summary_b), max_regression_pct, tuple(points), tuple(notes))


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
    """Raise RegressionFound (exit 1) when any matched point regressed beyond the threshold."""
    bad = comparison.regressions
    if bad:
        points = ", ".join(f"{p.sweep} {p.value:g}" for p in bad)
        raise RegressionFound(
            f"{len(bad)} sweep point(s) regressed by more than {comparison.max_regression_pct:g} %: {points}",
            hint=f"compare {comparison.a.path} and {comparison.b.path} in detail",
        )


def _cell(delta: Delta, scale: float, digits: int) -> str:
    if delta.a is None or delta.b is None:
        return "–"
    change = "n/a" if delta.pct is None else f"{delta.pct:+.1f} %"
    return f"{delta.a / scale:,.{digits}f} → {delta.b / scale:,.{digits}f} ({change} {delta.mark})"


def render_comparison(comparison: Comparison, fmt: str) -> str:
    """The comparison as Markdown or JSON text."""
    if fmt == "json":
        doc: dict[str, Any] = asdict(comparison)
        doc["regressed"] = bool(comparison.regressions)
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if fmt != "md":
        raise UsageError(f"unknown comparison format {fmt!r}", hint="use md or json")
    a, b = comparison.a, comparison.b
    lines = [
        "# tisbench comparison",
        "",
        f"- A: `{a.path}` — {a.model}, release {a.release}",
        f"- B: `{b.path}` — {b.model}, release {b.release}",
        f"- {BETTER} better · {WORSE} worse · {SAME} within {SAME_PCT} %; latencies in ms",
    ]
    if comparison.max_regression_pct is not None:
        lines.append(f"- regression threshold: {comparison.max_regression_pct:g} %")
    lines += ["", "| point | throughput (infer/s) | p50 | p99 | verdict |", "|---|---|---|---|---|"]
    for p in comparison.points:
        verdict = "REGRESSION" if p.regressed else "ok"
        lines.append(
            f"| {p.sweep.replace('_', ' ')} {p.value:g} | {_cell(p.throughput, 1, 1)} | "
            f"{_cell(p.p50_latency_us, 1000, 2)} | {_cell(p.p99_latency_us, 1000, 2)} | {verdict} |"
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
