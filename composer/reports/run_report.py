"""A run directory → report.md, report.html (self-contained) and chart PNGs.

matplotlib is imported only inside the chart functions: the CLI imports this module on every start.
"""

from __future__ import annotations

import base64
import io
import json
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from composer.analyzer.results import (
    RESPONSE_KEYS,
    ExperimentSummary,
    Summary,
    SummaryRow,
    load_summary,
    summarize_profile_export,
    summary_dict,
)
from composer.core.errors import AnalyzerError, UsageError
from composer.core.run_dir import CHARTS, MANIFEST, RunDir
from composer.render.environment import environment

if TYPE_CHECKING:
    from matplotlib.axes import Axes

FORMATS = ("md", "html", "json")
_BREAKDOWN = (
    ("Client send", "client_send_us"),
    ("Network+server send/recv", "network_server_send_recv_us"),
    ("Server queue", "server_queue_us"),
    ("Compute input", "server_compute_input_us"),
    ("Compute infer", "server_compute_infer_us"),
    ("Compute output", "server_compute_output_us"),
    ("Client recv", "client_recv_us"),
)


@dataclass(frozen=True)
class RunData:
    run_dir: Path
    manifest: Mapping[str, Any]
    summary: Summary | None
    experiments: tuple[ExperimentSummary, ...]
    server_metrics: Mapping[str, Any] | None = None


def load_run(run_dir: Path) -> RunData:
    """Manifest, summary and (when present) the streamed profile export of one run."""
    files = RunDir(run_dir)
    manifest_path = files.manifest
    if not manifest_path.is_file():
        raise UsageError(
            f"{run_dir} is not a tisbench run directory (no {MANIFEST})",
            hint="pass a directory written by `tisbench run`; `tisbench runs` lists them",
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise AnalyzerError(f"{manifest_path}: unreadable manifest ({exc})") from None
    failed = manifest.get("status") == "failed"
    has_results = files.summary.exists() or files.csv.exists()
    summary = load_summary(run_dir) if has_results or not failed else None
    export = files.profile_export
    experiments = tuple(summarize_profile_export(export)) if export.exists() else ()
    metrics_path = files.server_metrics
    try:
        metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.exists() else None
    except (OSError, json.JSONDecodeError) as exc:
        raise AnalyzerError(f"{metrics_path}: unreadable ({exc})") from None
    return RunData(run_dir, manifest, summary, experiments, metrics)


def _utilization(point: Mapping[str, Any]) -> str:
    values = [
        f"{g['name'].removeprefix('nv_').replace('_utilization', '')} {g['value'] * 100:.0f} %"
        for g in point.get("gauges", [])
        if g["name"].endswith("_utilization") and isinstance(g.get("value"), int | float)
    ]
    return ", ".join(values) or "–"


def _server_points(metrics: Mapping[str, Any] | None, sweep: str) -> list[dict[str, str]]:
    """The server's own view per sweep point, from server_metrics.json."""
    rows = []
    for point in (metrics or {}).get("points", []):
        counters, derived = point.get("counters", {}), point.get("derived", {})
        client = point.get("client_request_count")
        rows.append(
            {
                "value": f"{point.get(sweep, '–')}",
                "server_requests": f"{counters.get('nv_inference_request_success', 0):,.0f}",
                "client_requests": "–" if client is None else f"{client:,}",
                "server_throughput": _fmt(derived.get("server_infer_per_sec"), 1),
                "queue": _fmt(None if derived.get("avg_queue_us") is None else derived["avg_queue_us"] / 1000, 3),
                "infer": _fmt(
                    None if derived.get("avg_compute_infer_us") is None else derived["avg_compute_infer_us"] / 1000, 3
                ),
                "utilization": _utilization(point),
            }
        )
    return rows


def chart_names(data: RunData) -> list[str]:
    names = []
    if data.summary and data.summary.rows:
        names += ["throughput_vs_p99.png", "latency_breakdown.png"]
    if data.experiments:
        names += ["latency_histogram.png", "latency_over_time.png"]
    return names


def prepare_charts() -> None:
    """Import matplotlib ahead of time (≈0.5 s): `tisbench lab` does it on a thread while Triton boots,
    when this process only waits, and never while perf_analyzer measures."""
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.figure  # noqa: F401


def render_charts(data: RunData) -> dict[str, bytes]:
    """PNG bytes per chart file name."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    draw: dict[str, Callable[[Axes, RunData], None]] = {
        "throughput_vs_p99.png": _throughput_vs_p99,
        "latency_breakdown.png": _latency_breakdown,
        "latency_histogram.png": _latency_histogram,
        "latency_over_time.png": _latency_over_time,
    }
    charts = {}
    for name in chart_names(data):
        # Fixed margins, not constrained layout: its solver costs a second draw pass per chart
        # (~0.1 s each, on the path of every `tisbench lab` before it may exit).
        # The title's place is fixed too (axes.titley): left to matplotlib, it measures the tick
        # labels' extents on every draw to keep clear of them, though none are ever on top.
        with rc_context({"axes.titley": 1.0}):
            figure = Figure(figsize=(8, 4.5), dpi=100)
            figure.subplots_adjust(left=0.09, right=0.98, top=0.91, bottom=0.12)
            draw[name](figure.subplots(), data)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        charts[name] = buffer.getvalue()
    return charts


def _ms(value: float | None) -> float:
    return (value or 0.0) / 1000


def _bar(value: float, interval: tuple[float, float] | None, scale: float) -> tuple[float, float]:
    """An error bar's (below, above) lengths from an interval, 0 where there is none."""
    if not interval:
        return (0.0, 0.0)
    return (max(value - interval[0] / scale, 0.0), max(interval[1] / scale - value, 0.0))


def _label(row: SummaryRow) -> str:
    return f"{'c' if row.sweep == 'concurrency' else 'r'}={row.value:g}"


def _throughput_vs_p99(ax: Axes, data: RunData) -> None:
    """The sweep's curve, each point with its throughput and p99 intervals as error bars; a point
    perf_analyzer never called stable drawn hollow."""
    rows = data.summary.rows if data.summary else ()
    xs = [_ms(r.p99_latency_us) for r in rows]
    ys = [r.throughput_infer_per_sec for r in rows]
    line = ax.plot(xs, ys, marker="o")[0]
    xerr = [_bar(_ms(r.p99_latency_us), r.uncertainty.p99_latency_us if r.uncertainty else None, 1000) for r in rows]
    yerr = [_bar(r.throughput_infer_per_sec, r.uncertainty.throughput if r.uncertainty else None, 1) for r in rows]
    if any(e != (0.0, 0.0) for e in xerr + yerr):
        ax.errorbar(
            xs, ys, xerr=list(zip(*xerr, strict=True)), yerr=list(zip(*yerr, strict=True)),
            fmt="none", ecolor=line.get_color(), alpha=0.6, capsize=3,
        )  # fmt: skip
    hollow = [(x, y) for r, x, y in zip(rows, xs, ys, strict=True) if r.unstable is not None]
    if hollow:
        ax.plot(*zip(*hollow, strict=True), "o", mfc="white", color=line.get_color(), label="unstable")
        ax.legend(fontsize=8)
    for row, x, y in zip(rows, xs, ys, strict=True):
        ax.annotate(_label(row), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set(xlabel="p99 latency (ms)", ylabel="throughput (infer/s)", title="Throughput vs p99")
    ax.grid(alpha=0.3)


def _latency_breakdown(ax: Axes, data: RunData) -> None:
    rows = data.summary.rows if data.summary else ()
    labels = [_label(r) for r in rows]
    bottom = [0.0] * len(rows)
    for title, key in _BREAKDOWN:
        heights = [_ms(getattr(r, key)) for r in rows]
        ax.bar(labels, heights, bottom=bottom, label=title)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    ax.set(ylabel="latency (ms)", title="Average latency breakdown per sweep point")
    ax.legend(fontsize=7, loc="upper left")


def _latency_histogram(ax: Axes, data: RunData) -> None:
    import numpy as np

    for exp in data.experiments:
        if not exp.histogram:
            continue
        values = np.array([b for b, _ in exp.histogram], dtype=float) / 1000
        counts = np.array([n for _, n in exp.histogram], dtype=float)
        upper = _percentile_ms(exp, 99.9)
        edges = np.linspace(values.min(), max(upper, values.min() + 0.001), 61)
        binned, _ = np.histogram(values, bins=edges, weights=counts)
        ax.stairs(binned, edges, label=f"{exp.mode} {exp.value:g}")
    ax.set(xlabel="latency (ms, up to p99.9)", ylabel="requests", title="Latency distribution")
    ax.legend(fontsize=8)


def _percentile_ms(exp: ExperimentSummary, pct: float) -> float:
    target = pct / 100 * exp.window_count
    seen = 0
    for bucket, count in exp.histogram:
        seen += count
        if seen >= target:
            return bucket / 1000
    return exp.histogram[-1][0] / 1000


def _latency_over_time(ax: Axes, data: RunData) -> None:
    origin = min((e.timeline[0].start_ns for e in data.experiments if e.timeline), default=0)
    for exp in data.experiments:
        xs = [(p.start_ns - origin) / 1e9 for p in exp.timeline]
        ys = [p.mean_latency_us / 1000 for p in exp.timeline]
        line = ax.plot(xs, ys, linewidth=1, label=f"{exp.mode} {exp.value:g}")[0]
        if exp.windowed:
            span = ((exp.window_start_ns - origin) / 1e9, (exp.window_end_ns - origin) / 1e9)
            ax.axvspan(*span, color=line.get_color(), alpha=0.12)
    ax.set(
        xlabel="time since first request (s); shaded: measurement windows",
        ylabel="mean latency (ms)",
        title="Latency over time (completions per time bucket)",
    )
    ax.legend(fontsize=8)


def _transports(summary: Summary | None) -> list[dict[str, str]]:
    """The transports one lab compared, point by point: throughput (with its ratio to the first), p99."""
    if summary is None or not summary.transports:
        return []
    first = {r.value: r.throughput_infer_per_sec for r in summary.transports[0][1]}
    out = []
    for value in sorted({r.value for _, rows in summary.transports for r in rows}):
        for label, rows in summary.transports:
            row = next((r for r in rows if r.value == value), None)
            if row is None:
                continue
            base = first.get(value)
            out.append(
                {
                    "value": f"{value:g}",
                    "transport": label,
                    "throughput": _fmt(row.throughput_infer_per_sec, 1) + _range(row, "throughput", 1, 1),
                    "ratio": f"×{row.throughput_infer_per_sec / base:.2f}" if base else "–",
                    "p99": _fmt(_ms(row.p99_latency_us)) + _range(row, "p99", 1000, 2),
                }
            )
    return out


def _range(row: SummaryRow, metric: str, scale: float, digits: int) -> str:
    u = row.uncertainty
    interval = None if u is None else (u.throughput if metric == "throughput" else u.p99_latency_us)
    return "" if interval is None else f" ({interval[0] / scale:,.{digits}f}–{interval[1] / scale:,.{digits}f})"


def _interval_note(rows: Sequence[SummaryRow], repeats: int | None) -> str:
    """What the intervals in parentheses are, and which points perf_analyzer never called stable."""
    if repeats:
        text = f"Each figure is the mean of {repeats} repeats; in parentheses its 95 % confidence interval."
    elif any(r.uncertainty is not None for r in rows):
        text = "In parentheses: the range of the run's measurement windows."
    else:
        text = ""
    unstable = [f"{r.value:g}" for r in rows if r.unstable is not None]
    if unstable:
        text += (
            f" Unstable ({', '.join(unstable)}): perf_analyzer never called these stable; their numbers are "
            "kept from their last measurement, read them with their interval."
        )
    return text.strip()


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _section(manifest: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = manifest.get(key)
    return value if isinstance(value, dict) else {}


def _context(data: RunData, images: Mapping[str, str]) -> dict[str, Any]:
    m = data.manifest
    model, images_used = _section(m, "model"), _section(m, "images")
    argv = m.get("perf_analyzer_argv")
    rows = data.summary.rows if data.summary else ()
    return {
        "model": f"{model.get('name', '–')} (version {model.get('version') or 'latest'})",
        "release": m.get("release", "–"),
        "server_version": m.get("server_version", "–"),
        "server_image": images_used.get("server", "–"),
        "sdk_image": images_used.get("sdk", "–"),
        "perf_analyzer_version": m.get("perf_analyzer_version", "–"),
        "started": m.get("started_utc", "–"),
        "ended": m.get("ended_utc", "–"),
        "host": m.get("host", "–"),
        "argv": shlex.join(str(a) for a in argv) if isinstance(argv, list) else "–",
        "failed": m.get("status") == "failed",
        "error": m.get("error") or "unknown error",
        "sweep": (data.summary.sweep if data.summary else "concurrency").replace("_", " "),
        "intervals": _interval_note(rows, data.summary.repeats if data.summary else None),
        "transports": _transports(data.summary),
        "rows": [
            {
                "value": f"{r.value:g}" + (" (unstable)" if r.unstable is not None else ""),
                "throughput": _fmt(r.throughput_infer_per_sec, 1) + _range(r, "throughput", 1, 1),
                **{k: _fmt(_ms(getattr(r, f"{k}_latency_us"))) for k in _LATENCIES},
                "p99": _fmt(_ms(r.p99_latency_us)) + _range(r, "p99", 1000, 2),
                **{key: _fmt(None if getattr(r, key) is None else _ms(getattr(r, key)), 3) for _, key in _BREAKDOWN},
            }
            for r in rows
        ],
        "experiments": [
            {
                "name": f"{e.mode} {e.value:g}",
                "requests": f"{e.request_count:,}",
                "in_window": f"{e.window_count:,}" + ("" if e.windowed else " (no windows)"),
                "throughput": _fmt(e.throughput_infer_per_sec, 1),
                **{k: _fmt(_ms(getattr(e, f"{k}_latency_us"))) for k in _LATENCIES},
            }
            for e in data.experiments
        ],
        "responses": _responses(rows),
        "attempts": _attempts(m),
        "charts": [{"name": name, "src": src} for name, src in images.items()],
        "server_points": _server_points(data.server_metrics, data.summary.sweep if data.summary else "concurrency"),
        "server_warnings": list((data.server_metrics or {}).get("warnings", [])),
        "gpus": ", ".join((data.server_metrics or {}).get("gpus", [])) or "none",
    }


_LATENCIES = ("avg", "p50", "p90", "p95", "p99")


def _responses(rows: tuple[SummaryRow, ...]) -> list[dict[str, str]]:
    """A decoupled model's per-response statistics per sweep point (none for other models)."""
    if not any(r.responses_per_request is not None for r in rows):
        return []
    return [
        {
            "value": f"{r.value:g}",
            "per_request": _fmt(r.responses_per_request, 2),
            **{k: _fmt(None if getattr(r, k) is None else _ms(getattr(r, k)), 3) for k in RESPONSE_KEYS[1:]},
        }
        for r in rows
    ]


def _attempts(manifest: Mapping[str, Any]) -> list[dict[str, str]]:
    """perf_analyzer's runs when it took more than one (unstable points measured again)."""
    attempts = manifest.get("attempts")
    if not isinstance(attempts, list) or len(attempts) < 2:
        return []
    rows = []
    for a in attempts:
        window = dict(a.get("window") or {})
        size = window.get("measurement_requests")
        rows.append(
            {
                "number": str(a.get("attempt", "?")),
                "points": ", ".join(str(p) for p in a.get("points") or []),
                "window": f"{size} requests" if size is not None else f"{window.get('measurement_interval_ms')} ms",
                "measured": ", ".join(str(p) for p in a.get("measured") or []) or "–",
                "unstable": "–" if a.get("unstable") is None else str(a["unstable"]),
                "exit_code": str(a.get("exit_code", "?")),
            }
        )
    return rows


def _json_report(data: RunData) -> str:
    experiments = []
    for exp in data.experiments:
        item = asdict(exp)
        del item["histogram"], item["timeline"]
        experiments.append(item)
    summary = data.summary
    doc = {
        "manifest": dict(data.manifest),
        "summary": summary_dict(summary.model, summary.release, summary.rows) if summary else None,
        "profile_export": experiments,
        "charts": [f"{CHARTS}/{name}" for name in chart_names(data)],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _render(data: RunData, fmt: str, charts: Mapping[str, bytes] | None = None) -> str:
    if fmt == "json":
        return _json_report(data)
    if fmt == "md":
        images = {name: f"{CHARTS}/{name}" for name in chart_names(data)}
        return environment().get_template("report.md.j2").render(_context(data, images))
    if fmt == "html":
        pngs = render_charts(data) if charts is None else charts
        images = {n: "data:image/png;base64," + base64.b64encode(b).decode() for n, b in pngs.items()}
        return environment().get_template("report.html.j2").render(_context(data, images))
    raise UsageError(f"unknown report format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")


def render_report(run_dir: Path, fmt: str) -> str:
    """The report of ``run_dir`` as Markdown, self-contained HTML or JSON text."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown report format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
    return _render(load_run(run_dir), fmt)


def write_reports(run_dir: Path) -> list[Path]:
    """Write report.md, report.html and charts/*.png into ``run_dir``; returns the paths."""
    data = load_run(run_dir)
    charts = render_charts(data)
    written = []
    files = RunDir(run_dir)
    if charts:
        files.charts.mkdir(exist_ok=True)
    for name, png in charts.items():
        path = files.chart(name)
        path.write_bytes(png)
        written.append(path)
    for fmt in ("md", "html"):
        path = files.report(fmt)
        path.write_text(_render(data, fmt, charts), encoding="utf-8")
        written.append(path)
    return written
