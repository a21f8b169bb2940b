"""matrix.json → Markdown, a self-contained HTML page and a chart of throughput and p99 by release."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from composer.core.fsutil import write_atomic
from composer.core.run_dir import CHARTS

HEADERS = ["release", "server", "perf_analyzer", "infer/s", "Δ infer/s", "p50 ms", "p99 ms", "Δ p99", "verdict"]
VERSIONS_NOTE = (
    "server versions are what each running server reported; perf_analyzer versions are what each "
    "sdk image holds (a lab image's binary answered at build time, any other is asked in its container)"
)


def _pct(delta: dict[str, Any] | None) -> str:
    return "-" if not delta else f"{delta['pct']:+.1f} %"


def _verdict(deltas: dict[str, Any] | None) -> str:
    if not deltas:
        return "baseline"
    parts = [
        f"{name} {d['verdict']}"
        for name, d in (("throughput", deltas.get("throughput_infer_per_sec")), ("p99", deltas.get("p99_latency_us")))
        if d
    ]
    return "; ".join(parts) or "-"


def point_tables(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """One table per sweep point: every ok release's medians and deltas against the baseline."""
    values = sorted({row["value"] for r in doc["releases"] for row in r["rows"]})
    tables = []
    for value in values:
        rows = []
        sweep = "concurrency"
        for entry in doc["releases"]:
            row = next((x for x in entry["rows"] if x["value"] == value), None)
            if row is None:
                continue
            sweep = row["sweep"]
            deltas = next((d for d in entry.get("deltas", []) if d["value"] == value), None)
            rows.append(
                [
                    entry["release"],
                    entry.get("server_version") or "-",
                    entry.get("perf_analyzer_version") or "-",
                    f"{row['throughput_infer_per_sec']:.1f}",
                    _pct(deltas and deltas.get("throughput_infer_per_sec")),
                    f"{row.get('p50_latency_us', 0) / 1000:.3f}",
                    f"{row.get('p99_latency_us', 0) / 1000:.3f}",
                    _pct(deltas and deltas.get("p99_latency_us")),
                    _verdict(deltas),
                ]
            )
        tables.append({"title": f"{sweep} {value:g}", "headers": HEADERS, "rows": rows})
    return tables


def matrix_markdown(doc: dict[str, Any]) -> str:
    lines = [
        "# tisbench release matrix",
        "",
        f"Stack `{doc['stack']}`; baseline {doc['baseline'] or 'none'}; {doc['repeat']} run(s) per release (medians).",
        "",
        "| release | status | server version | perf_analyzer | runs / reason |",
        "|---|---|---|---|---|",
    ]
    for r in doc["releases"]:
        where = ", ".join(r["runs"]) if r["status"] == "ok" else r["reason"]
        lines.append(
            f"| {r['release']} | {r['status']} | {r.get('server_version') or '-'} | "
            f"{r.get('perf_analyzer_version') or '-'} | {where} |"
        )
    for table in point_tables(doc):
        lines += [
            "",
            f"## {table['title']}",
            "",
            "| " + " | ".join(table["headers"]) + " |",
            "|" + "---|" * len(table["headers"]),
        ]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in table["rows"]]
    lines += ["", f"Note: {VERSIONS_NOTE}.", ""]
    return "\n".join(lines)


def matrix_chart(doc: dict[str, Any]) -> bytes | None:
    ok = [r for r in doc["releases"] if r["status"] == "ok" and r["rows"]]
    if not ok:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    values = sorted({row["value"] for r in ok for row in r["rows"]})
    width = 0.8 / max(1, len(values))
    for i, value in enumerate(values):
        xs, tput, p99 = [], [], []
        for j, entry in enumerate(ok):
            row = next((x for x in entry["rows"] if x["value"] == value), None)
            if row:
                xs.append(j + i * width)
                tput.append(row["throughput_infer_per_sec"])
                p99.append(row.get("p99_latency_us", 0) / 1000)
        left.bar(xs, tput, width, label=f"{value:g}")
        right.bar(xs, p99, width, label=f"{value:g}")
    labels = [
        f"{r['release']}\nserver {r.get('server_version') or '?'}\nPA {r.get('perf_analyzer_version') or '?'}"
        for r in ok
    ]
    for ax, title in ((left, "throughput (infer/s)"), (right, "p99 latency (ms)")):
        ax.set_xticks([j + width * (len(values) - 1) / 2 for j in range(len(ok))], labels)
        ax.set_title(title)
        ax.legend(title="sweep point", fontsize="small")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def write_matrix_reports(doc: dict[str, Any], out_dir: Path) -> list[Path]:
    from composer.render.environment import environment  # here: jinja2 loads only when a report is written

    chart = matrix_chart(doc)
    written = []
    if chart:
        write_atomic(out_dir / CHARTS / "matrix.png", chart)
        written.append(out_dir / CHARTS / "matrix.png")
    write_atomic(out_dir / "matrix.md", matrix_markdown(doc))
    html = environment().get_template("matrix.html.j2").render(
        stack=doc["stack"],
        baseline=doc["baseline"],
        repeat=doc["repeat"],
        releases=doc["releases"],
        points=point_tables(doc),
        notes=[VERSIONS_NOTE],
        chart="data:image/png;base64," + base64.b64encode(chart).decode() if chart else None,
    )
    write_atomic(out_dir / "matrix.html", html)
    return written + [out_dir / "matrix.md", out_dir / "matrix.html"]
