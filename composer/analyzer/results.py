"""perf_analyzer outputs → typed rows: the CSV table and summary.json.

The streamed profile-export summaries live in composer.analyzer.profile_export and are re-exported here.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from composer.analyzer.experiment import ExperimentSummary, ResponseStats, TimelinePoint
from composer.analyzer.histogram import LINEAR_LIMIT_US, percentiles_from_histogram
from composer.analyzer.intervals import Interval
from composer.analyzer.profile_export import scan_window_hints, summarize_profile_export
from composer.core.errors import AnalyzerError
from composer.core.run_dir import CSV, SUMMARY, RunDir

__all__ = [
    "LINEAR_LIMIT_US",
    "RESPONSE_KEYS",
    "ExperimentSummary",
    "Summary",
    "SummaryRow",
    "TimelinePoint",
    "Uncertainty",
    "load_summary",
    "parse_perf_csv",
    "percentiles_from_histogram",
    "read_csv_file",
    "scan_window_hints",
    "summarize_profile_export",
    "summary_dict",
    "summary_rows",
    "with_response_stats",
]


SWEEP_COLUMNS = {"Concurrency": "concurrency", "Request Rate": "request_rate"}
# CSV header → SummaryRow field; perf_analyzer prints every time in µs.
_COLUMNS = {
    "Inferences/Second": "throughput_infer_per_sec",
    "Avg latency": "avg_latency_us",
    "p50 latency": "p50_latency_us",
    "p90 latency": "p90_latency_us",
    "p95 latency": "p95_latency_us",
    "p99 latency": "p99_latency_us",
    "Client Send": "client_send_us",
    "Network+Server Send/Recv": "network_server_send_recv_us",
    "Server Queue": "server_queue_us",
    "Server Compute Input": "server_compute_input_us",
    "Server Compute Infer": "server_compute_infer_us",
    "Server Compute Output": "server_compute_output_us",
    "Client Recv": "client_recv_us",
    "request/response": "request_response_us",
    "response wait": "response_wait_us",
}
# The keys of one summary.json row after the sweep key, in the documented order.
SUMMARY_KEYS = tuple(_COLUMNS.values())[:13]
# Per-response statistics of a decoupled model's run, from its profile export (not the CSV).
RESPONSE_KEYS = (
    "responses_per_request",
    "first_response_p50_us",
    "first_response_p99_us",
    "inter_response_p50_us",
    "inter_response_p99_us",
)
_OPTIONAL_KEYS = tuple(_COLUMNS.values())[13:] + RESPONSE_KEYS
NUMBER_KEYS = (*_COLUMNS.values(), *RESPONSE_KEYS)  # every number of a row


@dataclass(frozen=True)
class SummaryRow:
    """One sweep point of perf_analyzer's CSV; times in µs, None when the column is absent."""

    sweep: str
    value: float
    throughput_infer_per_sec: float
    avg_latency_us: float | None = None
    p50_latency_us: float | None = None
    p90_latency_us: float | None = None
    p95_latency_us: float | None = None
    p99_latency_us: float | None = None
    client_send_us: float | None = None
    network_server_send_recv_us: float | None = None
    server_queue_us: float | None = None
    server_compute_input_us: float | None = None
    server_compute_infer_us: float | None = None
    server_compute_output_us: float | None = None
    client_recv_us: float | None = None
    request_response_us: float | None = None
    response_wait_us: float | None = None
    responses_per_request: float | None = None
    first_response_p50_us: float | None = None
    first_response_p99_us: float | None = None
    inter_response_p50_us: float | None = None
    inter_response_p99_us: float | None = None
    extra: Mapping[str, str] = field(default_factory=dict, hash=False)
    uncertainty: Uncertainty | None = None  # the intervals of throughput and p99 (composer.analyzer.intervals)
    unstable: Mapping[str, Any] | None = field(default=None, hash=False)  # set: perf_analyzer never called it stable


@dataclass(frozen=True)
class Uncertainty:
    """How far a row's throughput and p99 can be trusted: their intervals, from ``basis`` (windows
    of this run, perf_analyzer's trials, or repeats) of ``n`` samples."""

    basis: str
    n: int
    throughput: Interval
    p99_latency_us: Interval | None = None

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"throughput_interval": [round(v, 3) for v in self.throughput]}
        if self.p99_latency_us is not None:
            out["p99_latency_interval"] = [round(v, 1) for v in self.p99_latency_us]
        out["interval"] = {"from": self.basis, "n": self.n}
        return out

    @staticmethod
    def read(item: Mapping[str, Any]) -> Uncertainty | None:
        basis = item.get("interval") or {}
        throughput = item.get("throughput_interval")
        if not basis or not throughput:
            return None
        p99 = item.get("p99_latency_interval")
        return Uncertainty(
            str(basis["from"]),
            int(basis["n"]),
            (float(throughput[0]), float(throughput[1])),
            None if not p99 else (float(p99[0]), float(p99[1])),
        )


@dataclass(frozen=True)
class Summary:
    model: str
    release: str
    sweep: str
    rows: tuple[SummaryRow, ...]
    repeats: int | None = None  # --repeat N: each row the mean of N sweeps
    transports: tuple[tuple[str, tuple[SummaryRow, ...]], ...] = ()  # several compared: each one's rows


# ---------------------------------------------------------------------------- CSV / summary.json


def _number(text: str, source: str, line: int, column: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise AnalyzerError(
            f"{source}: line {line}, column '{column}': {text!r} is not a number",
            hint="the perf_analyzer output is damaged; rerun the benchmark",
        ) from None


def parse_perf_csv(text: str, source: str = CSV) -> list[SummaryRow]:
    """Rows of ``perf_analyzer -f … [--verbose-csv]`` in sweep order; unknown columns → extra."""
    lines = [(n, ln) for n, ln in enumerate(text.splitlines(), 1) if ln.strip()]
    if not lines:
        raise AnalyzerError(f"{source}: empty perf_analyzer CSV", hint="did perf_analyzer run?")
    header_line, header_text = lines[0]
    header = [h.strip() for h in next(csv.reader([header_text]))]
    trailing = len(header) > 1 and header[-1] == ""  # perf_analyzer ≤ 2.36 ends every line with a comma
    if trailing:
        header.pop()
    sweep_cols = [h for h in header if h in SWEEP_COLUMNS]
    if len(sweep_cols) != 1 or "Inferences/Second" not in header:
        raise AnalyzerError(
            f"{source}: line {header_line} is not a perf_analyzer CSV header "
            "(needs 'Concurrency' or 'Request Rate' and 'Inferences/Second')",
            hint="pass the file written by perf_analyzer -f",
        )
    sweep_col = sweep_cols[0]
    rows = []
    for (number, _), cells in zip(lines[1:], csv.reader(ln for _, ln in lines[1:]), strict=True):
        if trailing and len(cells) == len(header) + 1 and not cells[-1].strip():
            cells.pop()
        if len(cells) != len(header):
            raise AnalyzerError(f"{source}: line {number} has {len(cells)} fields, the header has {len(header)}")
        known: dict[str, Any] = {}
        extra: dict[str, str] = {}
        for name, cell in zip(header, cells, strict=True):
            if name in _COLUMNS:
                known[_COLUMNS[name]] = _number(cell.strip(), source, number, name)
            elif name != sweep_col:
                extra[name] = cell.strip()
        value = _number(cells[header.index(sweep_col)].strip(), source, number, sweep_col)
        rows.append(SummaryRow(sweep=SWEEP_COLUMNS[sweep_col], value=value, extra=extra, **known))
    if not rows:
        raise AnalyzerError(f"{source}: perf_analyzer CSV has a header but no rows")
    return sorted(rows, key=lambda r: r.value)


def _plain(value: float) -> float | int:
    return int(value) if float(value).is_integer() else float(value)


def summary_dict(model: str, release: str, rows: Sequence[SummaryRow]) -> dict[str, Any]:
    """The summary.json document for ``rows``."""
    sweep = rows[0].sweep if rows else "concurrency"
    out_rows = []
    for row in rows:
        item: dict[str, Any] = {row.sweep: _plain(row.value)}
        for key in SUMMARY_KEYS:
            item[key] = getattr(row, key)
        for key in _OPTIONAL_KEYS:
            if getattr(row, key) is not None:
                item[key] = getattr(row, key)
        if row.extra:
            item["extra"] = dict(row.extra)
        if row.uncertainty is not None:
            item.update(row.uncertainty.record())
        item["stable"] = row.unstable is None
        if row.unstable is not None:
            item["unstable"] = dict(row.unstable)
        out_rows.append(item)
    return {"model": model, "release": release, "sweep": sweep, "rows": out_rows}


def with_response_stats(rows: Sequence[SummaryRow], experiments: Sequence[ExperimentSummary]) -> list[SummaryRow]:
    """Each row with its experiment's per-response statistics (matched by sweep value)."""
    by_value = {float(e.value): e for e in experiments}
    out = []
    for row in rows:
        exp = by_value.get(float(row.value))
        if exp is None or not exp.window_count:
            out.append(row)
            continue
        stats = _response_stats(row, exp)
        out.append(replace(row, **{key: getattr(stats, key) for key in RESPONSE_KEYS}))
    return out


def _response_stats(row: SummaryRow, exp: ExperimentSummary) -> ResponseStats:
    """The export's reading of the responses that agrees with perf_analyzer's own count: its CSV's
    Response Throughput over Inferences/Second leaves null responses out, which perf_analyzer ≤ 2.51's
    export cannot show (see composer.analyzer.profile_export)."""
    exported, last_null = exp.response_stats(), exp.if_last_null
    try:
        theirs = float(row.extra["Response Throughput"]) / row.throughput_infer_per_sec
    except (KeyError, ValueError, ZeroDivisionError):
        return exported
    if last_null is None:
        return exported
    return min((exported, last_null), key=lambda stats: abs(stats.responses_per_request - theirs))


def summary_rows(csv_text: str, export: Path, *, with_responses: bool) -> list[SummaryRow]:
    """The CSV's rows; with per-response statistics from the profile export when asked (a decoupled
    model's run) and the export exists."""
    rows = parse_perf_csv(csv_text)
    if with_responses and export.exists():
        rows = with_response_stats(rows, summarize_profile_export(export))
    return rows


def _row_from_dict(item: Mapping[str, Any], sweep: str, source: str) -> SummaryRow:
    try:
        numbers: dict[str, Any] = {k: None if item.get(k) is None else float(item[k]) for k in NUMBER_KEYS}
        throughput = numbers.pop("throughput_infer_per_sec")
        if throughput is None:
            raise KeyError("throughput_infer_per_sec")
        extra = {str(k): str(v) for k, v in dict(item.get("extra") or {}).items()}
        unstable = None if item.get("stable", True) else dict(item.get("unstable") or {})
        uncertainty = Uncertainty.read(item)
        return SummaryRow(
            sweep, float(item[sweep]), throughput, extra=extra, uncertainty=uncertainty, unstable=unstable, **numbers
        )
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise AnalyzerError(f"{source}: row {dict(item)!r} is malformed ({exc})") from None


def load_summary(run_dir: Path) -> Summary:
    """summary.json of a run; a run without one is summarized from perf_analyzer.csv."""
    path = RunDir(run_dir).summary
    if not path.exists():
        return _summary_from_csv(run_dir)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        sweep = str(doc["sweep"])
        if sweep not in SWEEP_COLUMNS.values():
            raise ValueError(f"unknown sweep {sweep!r}")
        rows = tuple(_row_from_dict(item, sweep, str(path)) for item in doc["rows"])
        repeats = int(doc["repeats"]) if doc.get("repeats") else None
        transports = tuple(
            (str(t["transport"]), tuple(_row_from_dict(item, sweep, str(path)) for item in t["rows"]))
            for t in doc.get("transports") or ()
        )
        return Summary(str(doc["model"]), str(doc["release"]), sweep, rows, repeats, transports)
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise AnalyzerError(f"{path}: unreadable summary ({exc})", hint="rerun the lab") from None


def _summary_from_csv(run_dir: Path) -> Summary:
    files = RunDir(run_dir)
    csv_path = files.csv
    if not csv_path.exists():
        raise AnalyzerError(f"{run_dir}: neither {SUMMARY} nor {CSV} exists")
    rows = parse_perf_csv(csv_path.read_text(encoding="utf-8"), str(csv_path))
    manifest: dict[str, Any] = {}
    try:
        manifest = json.loads(files.manifest.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        pass
    model = manifest.get("model")
    name = model.get("name", "") if isinstance(model, dict) else ""
    return Summary(str(name), str(manifest.get("release", "")), rows[0].sweep, tuple(rows))


def read_csv_file(path: Path) -> list[SummaryRow]:
    """parse_perf_csv on a file, with errors naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AnalyzerError(f"{path}: cannot read perf_analyzer CSV ({exc})") from None
    return parse_perf_csv(text, str(path))
