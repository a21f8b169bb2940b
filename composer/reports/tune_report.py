"""A tune directory's report: report.md, report.html (self-contained) and charts/frontier.png,
drawn from tune.json alone (a partial one too: an interrupted search has a report).

The frontier chart puts every measurement at (p99, throughput): coloured by instance count,
marked by batching, with its window interval as bars; the frontier (the best throughput at each
latency) joins the points nobody beats on both, and the recommendation is ringed.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import jinja2

from composer.core.fsutil import write_atomic
from composer.core.shipped import templates_dir

TOP = 5
MARKERS = {(False, False): "o", (True, False): "s", (True, True): "^"}  # (batches, dynamic batching)


def _pct(doc: dict[str, Any]) -> int:
    return int(doc.get("constraints", {}).get("percentile") or 99)


def config_label(config: dict[str, Any]) -> str:
    text = f"{config['instances']} inst"
    if config["max_batch_size"]:
        text += f", batch {config['max_batch_size']}" + (", dynamic batching" if config["dynamic_batching"] else "")
    return text


def _ranked(doc: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """Operating points, best first: finalists (re-measured) by their pooled values, then the rest."""
    objective = doc.get("objective", "throughput")
    pct = _pct(doc)
    finals = {str(f["config"]): f for f in doc.get("finalists") or []}
    points: list[tuple[dict[str, Any], str]] = []
    for candidate in doc.get("candidates") or []:
        name = str(candidate["config"])
        if name in finals:
            points.append((finals[name], "re-measured"))
            continue
        rows = [r for r in candidate["rows"] if r["concurrency"] == candidate.get("chosen_concurrency")]
        rows = rows or sorted(candidate["rows"], key=lambda r: r[f"p{pct}_latency_us"])  # none met: the nearest
        if rows:
            points.append(({"config": candidate["config"], **rows[0]}, "search"))

    def rank(item: tuple[dict[str, Any], str]) -> tuple[bool, float]:
        p = item[0]
        value = -p[f"p{pct}_latency_us"] if objective == "latency" else p["throughput_infer_per_sec"]
        return (bool(p.get("meets_constraints")), value)

    return sorted(points, key=rank, reverse=True)


def _role(doc: dict[str, Any], config: dict[str, Any]) -> str:
    if doc.get("best") and doc["best"]["config"] == config:
        return "recommended"
    if any(t["config"] == config for t in doc.get("tied") or []):
        return "tied"
    return ""


def top_rows(doc: dict[str, Any], count: int = TOP) -> list[list[str]]:
    pct = _pct(doc)
    rows = []
    for rank, (p, source) in enumerate(_ranked(doc)[:count], 1):
        low, high = p["throughput_interval"]
        role = ", ".join(
            x for x in (_role(doc, p["config"]), "baseline" if _is_baseline(doc, p["config"]) else "") if x
        )
        rows.append(
            [
                str(rank),
                config_label(p["config"]),
                str(p["concurrency"]),
                f"{p['throughput_infer_per_sec']:,.0f}",
                f"{low:,.0f} – {high:,.0f}",
                f"{p[f'p{pct}_latency_us'] / 1000:.2f}",
                "yes" if p.get("meets_constraints") else "no",
                source,
                role,
            ]
        )
    return rows


def _is_baseline(doc: dict[str, Any], config: dict[str, Any]) -> bool:
    return bool(doc.get("baseline")) and doc["baseline"]["config"] == config


def headers(doc: dict[str, Any]) -> list[str]:
    pct = _pct(doc)
    return ["#", "config", "concurrency", "infer/s", "interval", f"p{pct} ms", "meets", "from", ""]


def _constraints(doc: dict[str, Any]) -> str:
    c = doc.get("constraints", {})
    parts = []
    if c.get("latency_budget_ms") is not None:
        parts.append(f"p{_pct(doc)} ≤ {c['latency_budget_ms']:g} ms")
    if c.get("min_throughput") is not None:
        parts.append(f"≥ {c['min_throughput']:g} infer/s")
    return ", ".join(parts) or "none"


def summary_lines(doc: dict[str, Any]) -> list[str]:
    return [
        f"Status: **{doc['status']}**" + (f" ({doc['error']})" if doc.get("error") else ""),
        f"Model `{doc.get('model')}`, release {doc.get('release')}, {doc['mode']} search, objective "
        f"{doc['objective']}, constraints: {_constraints(doc)}.",
        f"{doc['measurements']} perf_analyzer measurements in {doc['wall_s']:.0f} s "
        f"({len(doc.get('candidates') or [])} candidates).",
        f"**{doc['recommendation']}**",
    ]


def tune_markdown(doc: dict[str, Any], chart: str | None = "charts/frontier.png") -> str:
    lines = ["# tisbench tune", "", *(f"{line}  " for line in summary_lines(doc)), ""]
    if chart:
        lines += [f"![throughput–p{_pct(doc)} frontier]({chart})", ""]
    lines += [f"## Top {TOP}", "", "| " + " | ".join(headers(doc)) + " |", "|" + "---|" * len(headers(doc))]
    lines += ["| " + " | ".join(row) + " |" for row in top_rows(doc)]
    failed = [c for c in doc.get("candidates") or [] if c["status"] in ("load_failed", "failed")]
    if failed:
        lines += ["", "## Not measured", ""]
        lines += [f"- {config_label(c['config'])}: {c['status']}: {c.get('reason', '')}" for c in failed]
    lines += ["", "Intervals are the range of perf_analyzer's measurement windows (pooled over the interleaved rounds"]
    lines += ["for re-measured finalists); candidates whose intervals overlap are tied.", ""]
    return "\n".join(lines)


def pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (latency, throughput) points that no other beats on both: more throughput at no more latency."""
    frontier, top = [], -1.0
    for x, y in sorted(points):
        if y > top:
            frontier.append((x, y))
            top = y
    return frontier


def frontier_chart(doc: dict[str, Any]) -> bytes | None:
    """The throughput–latency frontier as PNG bytes; None when nothing was measured."""
    pct = _pct(doc)
    points = [(c["config"], r) for c in doc.get("candidates") or [] for r in c["rows"]]
    if not points:
        return None
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 5), dpi=100, layout="constrained")
    ax = figure.subplots()
    colours = {n: f"C{i}" for i, n in enumerate(sorted({c["instances"] for c, _ in points}))}
    seen: set[tuple[int, str]] = set()
    for config, row in points:
        x, y = row[f"p{pct}_latency_us"] / 1000, row["throughput_infer_per_sec"]
        (ylow, yhigh), (xlow, xhigh) = row["throughput_interval"], row[f"p{pct}_latency_interval"]
        marker = MARKERS[(config["max_batch_size"] > 0, config["dynamic_batching"])]
        key = (config["instances"], marker)
        ax.errorbar(
            x,
            y,
            yerr=[[y - ylow], [yhigh - y]],
            xerr=[[max(x - xlow / 1000, 0)], [max(xhigh / 1000 - x, 0)]],
            fmt=marker,
            color=colours[config["instances"]],
            alpha=0.75,
            capsize=2,
            markersize=6,
            label=f"{config['instances']} inst" + {"o": "", "s": ", batch", "^": ", dyn batching"}[marker]
            if key not in seen
            else None,
        )
        seen.add(key)
    frontier = pareto([(r[f"p{pct}_latency_us"] / 1000, r["throughput_infer_per_sec"]) for _, r in points])
    ax.plot(*zip(*frontier, strict=True), color="0.4", linewidth=1, linestyle="-", zorder=0, label="frontier")
    best = doc.get("best")
    if best:
        ax.scatter(
            [best[f"p{pct}_latency_us"] / 1000],
            [best["throughput_infer_per_sec"]],
            s=260,
            facecolors="none",
            edgecolors="black",
            linewidths=1.5,
            label="recommended",
        )
    budget = doc.get("constraints", {}).get("latency_budget_ms")
    if budget:
        ax.axvline(budget, color="red", linestyle="--", linewidth=1, label=f"budget {budget:g} ms")
    ax.set(xlabel=f"p{pct} latency (ms)", ylabel="throughput (infer/s)", title="Throughput vs latency per candidate")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def write_tune_reports(doc: dict[str, Any], out: Path) -> list[Path]:
    """charts/frontier.png, report.md and report.html in the tune directory."""
    chart = frontier_chart(doc)
    written = []
    if chart:
        write_atomic(out / "charts" / "frontier.png", chart)
        written.append(out / "charts" / "frontier.png")
    write_atomic(out / "report.md", tune_markdown(doc, "charts/frontier.png" if chart else None))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()), autoescape=True, undefined=jinja2.StrictUndefined
    )
    html = env.get_template("tune_report.html.j2").render(
        summary=summary_lines(doc),
        headers=headers(doc),
        rows=top_rows(doc),
        failed=[c for c in doc.get("candidates") or [] if c["status"] in ("load_failed", "failed")],
        label=config_label,
        chart="data:image/png;base64," + base64.b64encode(chart).decode() if chart else None,
    )
    write_atomic(out / "report.html", html)
    return [*written, out / "report.md", out / "report.html"]
