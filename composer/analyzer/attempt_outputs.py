"""The outputs of several perf_analyzer attempts at one sweep, merged into the run's single
perf_analyzer.csv and profile_export.json, in sweep order, with only the points each one measured.

An attempt that stopped at an unstable point left that point's experiment in its profile export
but not in its CSV: the export is filtered to the CSV's points. Exports can be hundreds of MB, so
they are rewritten from a stream of parse events, never loaded whole.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import ijson

from composer.analyzer.attempts import AttemptResult
from composer.core.errors import AnalyzerError
from composer.core.fsutil import write_atomic
from composer.core.run_dir import PROFILE_EXPORT, RunDir

try:
    _ijson: Any = ijson.get_backend("yajl2_c")
except ImportError:  # pragma: no cover - the C backend ships in ijson's wheels
    _ijson = ijson

SWEEP_HEADERS = ("Concurrency", "Request Rate")


def write_outputs(
    run_dir: Path, results: Sequence[AttemptResult], kept: Mapping[int, float] | None = None
) -> str | None:
    """perf_analyzer.csv and profile_export.json of the run from its attempts; the CSV text, or None
    when no attempt measured a point. ``kept``: attempt number → the point it gave up on as unstable
    whose experiment stays in the export (the CSV has no row for it). A lone complete attempt's
    export is kept byte for byte; the export is left out when an attempt that measured points has none."""
    kept = kept or {}
    measured = [r for r in results if r.csv]
    if not measured:
        return None
    files = RunDir(run_dir)
    text = merge_csv([r.csv for r in measured if r.csv])
    write_atomic(files.csv, text)
    exports = [r.export for r in measured if r.export]
    if len(exports) != len(measured):
        return text
    if len(measured) == 1 and measured[0].complete:
        write_atomic(files.profile_export, exports[0])
        return text
    parts = []
    try:
        for result, export in zip(measured, exports, strict=True):
            part = run_dir / f".attempt-{result.attempt.number}.{PROFILE_EXPORT}"
            write_atomic(part, export)
            extra = (kept[result.attempt.number],) if result.attempt.number in kept else ()
            parts.append((part, (*result.measured, *extra)))
        merged = run_dir / f".{PROFILE_EXPORT}.merging"
        merge_exports(parts, merged)
        os.replace(merged, files.profile_export)
    finally:
        for part, _ in parts:
            part.unlink(missing_ok=True)
        (run_dir / f".{PROFILE_EXPORT}.merging").unlink(missing_ok=True)
    return text


def merge_csv(texts: Sequence[str]) -> str:
    """perf_analyzer CSVs of one sweep → one CSV: the union of their columns, rows in sweep order."""
    if len(texts) == 1:
        return texts[0]
    columns: list[str] = []
    rows: list[dict[str, str]] = []
    for text in texts:
        reader = csv.DictReader(io.StringIO(text))
        columns += [c for c in reader.fieldnames or () if c not in columns]
        rows += list(reader)
    sweep = next((c for c in columns if c in SWEEP_HEADERS), None)
    if sweep is not None:
        rows.sort(key=lambda row: float(row.get(sweep) or 0))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def merge_exports(parts: Sequence[tuple[Path, Iterable[float]]], dest: Path) -> None:
    """Profile exports → one, keeping of each (path, values) the experiments at those sweep values;
    the top-level fields (version, service_kind, …) come from the first part."""
    header: dict[str, Any] = {}
    with dest.open("w", encoding="utf-8") as out:
        out.write('{"experiments":[')
        first = True
        for index, (path, values) in enumerate(parts):
            keep = {float(v) for v in values}
            fields: dict[str, Any] = {}
            try:
                with path.open("rb") as stream:
                    first = _copy_experiments(stream, keep, out, first, fields)
            except (OSError, ijson.JSONError) as exc:
                raise AnalyzerError(f"{path}: cannot merge this profile export ({exc})") from None
            if index == 0:
                header = fields
        out.write("]")
        for key, value in header.items():
            out.write(f",{json.dumps(key)}:{json.dumps(value)}")
        out.write("}")


class _Writer:
    """JSON text from ijson's basic_parse events (commas and nesting tracked per container)."""

    def __init__(self, write: Callable[[str], Any]) -> None:
        self.write = write
        self.fresh = [True]  # per open container: nothing written in it yet
        self.after_key = False

    def _separate(self) -> None:
        if self.after_key:
            self.after_key = False
        elif not self.fresh[-1]:
            self.write(",")
        self.fresh[-1] = False

    def event(self, event: str, value: Any) -> None:
        if event in ("end_map", "end_array"):
            self.fresh.pop()
            self.write("}" if event == "end_map" else "]")
            return
        self._separate()
        if event in ("start_map", "start_array"):
            self.fresh.append(True)
            self.write("{" if event == "start_map" else "[")
        elif event == "map_key":
            self.write(json.dumps(value) + ":")
            self.after_key = True
            self.fresh[-1] = False
        else:
            self.write(json.dumps(value))


def _copy_experiments(stream: IO[bytes], keep: set[float], out: IO[str], first: bool, fields: dict[str, Any]) -> bool:
    """Append the kept experiments of one export to ``out`` and collect its top-level scalars into
    ``fields``; returns whether ``out`` still holds no experiment. An experiment's events are held
    back only until its sweep value (which perf_analyzer writes first) decides whether it stays.

    Depths: 1 root · 2 the experiments array · 3 one experiment · 4 its "experiment" mapping."""
    depth, key1, key3, key4 = 0, "", "", ""
    held: list[tuple[str, Any]] = []
    verdict: bool | None = None
    writer: _Writer | None = None
    for event, value in _ijson.basic_parse(stream, use_float=True):
        if event in ("end_map", "end_array"):
            depth -= 1
        if key1 == "experiments" and depth >= 2:  # an experiment's own events, its start and end included
            if event == "map_key" and depth == 3:
                key3 = value
            elif event == "map_key" and depth == 4:
                key4 = value
            elif event == "number" and depth == 4 and key3 == "experiment" and key4 == "value":
                verdict = float(value) in keep
            if writer is not None:
                writer.event(event, value)
            elif verdict is None:
                held.append((event, value))
            elif verdict:
                out.write("" if first else ",")
                first, writer = False, _Writer(out.write)
                for item in (*held, (event, value)):
                    writer.event(*item)
            if depth == 2 and event == "end_map":
                held, verdict, writer, key3 = [], None, None, ""
        elif depth == 1 and event == "map_key":
            key1 = value
        elif depth == 1 and event in ("string", "number", "boolean", "null"):
            fields[key1] = value
        if event in ("start_map", "start_array"):
            depth += 1
    return first
