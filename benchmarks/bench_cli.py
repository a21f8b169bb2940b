"""P4: ``tisbench --help`` start-up time ÷ ``python -c pass`` on the same interpreter.

Both commands run alternately, so load from other processes hits both; each repeat is the
ratio of the medians of ``runs`` starts.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from labkit import PYTHON, TISBENCH, run_quiet


def p4_cli_start(repeats: int, runs: int, say: Callable[[str], None]) -> dict[str, Any]:
    baseline_argv = [str(PYTHON), "-c", "pass"]
    help_argv = [str(TISBENCH), "--help"]
    run_quiet(help_argv, 60)  # warm the page cache and .pyc files once, outside the measurement
    samples, detail = [], []
    for r in range(repeats):
        base, cand = [], []
        for _ in range(runs):
            base.append(run_quiet(baseline_argv, 60))
            cand.append(run_quiet(help_argv, 60))
        b, c = statistics.median(base), statistics.median(cand)
        samples.append(c / b)
        detail.append({"python_c_pass_median_s": b, "tisbench_help_median_s": c, "runs": runs})
        say(f"P4 {r + 1}/{repeats}: tisbench --help {c * 1000:.0f} ms, python -c pass {b * 1000:.0f} ms → {c / b:.2f}")
    return {"samples": samples, "repeats": detail}
