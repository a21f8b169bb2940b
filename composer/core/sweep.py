"""Load sweeps: ``A[:B[:STEP]]`` for perf_analyzer's --concurrency-range / --request-rate-range."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from composer.core.errors import UsageError

KINDS = ("concurrency", "request_rate")
_MAX_CONCURRENCY = 4096
_MAX_RATE = 1_000_000.0


@dataclass(frozen=True)
class Sweep:
    kind: str  # "concurrency" | "request_rate"
    start: float
    end: float
    step: float

    @property
    def flag(self) -> str:
        return "--concurrency-range" if self.kind == "concurrency" else "--request-rate-range"

    def argument(self) -> str:
        return ":".join(_number(v) for v in (self.start, self.end, self.step))

    def points(self) -> list[float]:
        values, value = [], self.start
        while value <= self.end + 1e-9:
            values.append(value)
            value += self.step
        return values


def same_point(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def missing_points(asked: Sequence[float], measured: Sequence[float]) -> list[float]:
    """The points of ``asked`` that ``measured`` lacks, in sweep order."""
    return [p for p in asked if not any(same_point(p, m) for m in measured)]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def parse_sweep(text: str, kind: str, *, field: str | None = None) -> Sweep:
    """Parse ``A``, ``A:B`` or ``A:B:STEP``; concurrency takes whole numbers ≥ 1."""
    field = field or f"--{kind.replace('_', '-')}"
    form = "A, A:B or A:B:STEP with A ≤ B, e.g. 1:4:1"
    parts = str(text).strip().split(":")
    if not 1 <= len(parts) <= 3 or not all(parts):
        raise UsageError(f"{field}: {text!r} is not a range", form)
    try:
        values = [int(p) if kind == "concurrency" else float(p) for p in parts]
    except ValueError:
        what = "whole numbers" if kind == "concurrency" else "numbers"
        raise UsageError(f"{field}: {text!r} must be {what}", form) from None
    start = values[0]
    end = values[1] if len(values) > 1 else start
    step = values[2] if len(values) > 2 else 1
    limit = _MAX_CONCURRENCY if kind == "concurrency" else _MAX_RATE
    if not (0 < start <= end <= limit) or step <= 0:
        raise UsageError(f"{field}: {text!r} is out of range", f"{form}; values from 1 to {limit:g}, STEP > 0")
    if (end - start) / step > 1000:
        raise UsageError(f"{field}: {text!r} has more than 1000 sweep points", "use a larger STEP")
    return Sweep(kind, float(start), float(end), float(step))
