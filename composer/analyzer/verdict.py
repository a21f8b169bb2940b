"""One perf_analyzer run judged by what it left, not by its exit status alone.

From 25.09 NGC's sdk images pip-install ``perf-analyzer``, whose ``perf_analyzer`` console script
runs the binary through ``subprocess.run`` and drops its status (``perf_analyzer/cli.py`` of the
2.60.0 wheel: ``main()`` returns nothing), so every run exits 0, failed or not. A run that exited
0 is therefore judged by its CSV (a row per sweep point asked) and by perf_analyzer's own error
lines; a non-zero status is perf_analyzer's own word and is taken as it is. Pure: no Docker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from composer.analyzer.perf_analyzer import error_lines
from composer.core.sweep import missing_points

STABILITY_FAILED = "Failed to obtain stable measurement"
OK, UNSTABLE = 0, 2  # perf_analyzer's own statuses: success (or a chosen stop, -l), first point unstable
_DROPPED = "its console script drops the status: judged by its output"


@dataclass(frozen=True)
class Verdict:
    reported: int  # the exit status the exec reported
    exit_code: int | None  # the status the run is judged to have: 0, 2 or a failure; None: failed, status lost
    note: str | None = None  # one line, when the reported status and the evidence disagree

    @property
    def failed(self) -> bool:
        return self.exit_code not in (OK, UNSTABLE)


def judge_run(reported: int, output: str, asked: Sequence[float], measured: Sequence[float] | None) -> Verdict:
    """The verdict of one run: ``measured`` holds the points of its CSV, None when it wrote none.

    perf_analyzer writes its CSV once the sweep ends: with a row for every point it measured, also
    when it stopped at an unstable point after the first (then with status 0), and no CSV when the
    first point was unstable (status 2) or anything else failed."""
    if reported != OK:
        return Verdict(reported, reported)
    missing = missing_points(asked, measured or ())
    if measured is not None and not missing:
        return Verdict(reported, OK)  # every point asked has its row: whatever it printed, it measured
    if STABILITY_FAILED in output:
        if measured:
            return Verdict(reported, OK)  # perf_analyzer's own status for a later point unstable
        return Verdict(reported, UNSTABLE, _note(measured, asked, f"printed {STABILITY_FAILED!r}"))
    if error_lines(output):
        return Verdict(reported, None, _note(measured, asked, "printed an error"))
    if measured:
        return Verdict(reported, OK)  # a chosen stop: -l, its latency limit, was reached
    return Verdict(reported, None, _note(measured, asked, "printed no error"))


def _note(measured: Sequence[float] | None, asked: Sequence[float], printed: str) -> str:
    if measured is None:
        left = "wrote no CSV"
    else:
        left = f"its CSV has {len(asked) - len(missing_points(asked, measured))} of the {len(asked)} points asked"
    return f"perf_analyzer exited 0 but {left} and {printed} ({_DROPPED})"
