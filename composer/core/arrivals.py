"""How requests arrive: at a constant rate or a Poisson process (perf_analyzer's
--request-distribution, with a request-rate sweep), or by a file of intervals between successive
requests (--request-intervals, in µs, one a line, looped over). Checked before anything starts;
recorded in the manifest. Pure.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer.core.errors import DatasetError, UsageError

DISTRIBUTIONS = ("constant", "poisson")
_MAX_INTERVALS = 1_000_000
_MAX_INTERVAL_US = 3_600_000_000  # an hour


@dataclass(frozen=True)
class Intervals:
    """A --request-intervals file as perf_analyzer reads it."""

    count: int
    mean_us: float
    min_us: int
    max_us: int

    @property
    def rate(self) -> float:
        """The request rate the file asks for, in infer/s."""
        return 1e6 / self.mean_us


def _name(prefix: str, key: str) -> str:
    """A field as the user wrote it: analyzer.request_intervals, or the flag --request-intervals."""
    return f"--{key.replace('_', '-')}" if prefix == "--" else f"{prefix}{key}"


def read_intervals(path: Path, field: str) -> Intervals:
    """The file's intervals: each non-empty line a whole number of µs > 0; one line at least."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"{field}: {path} does not exist", "put the interval file under dataset/") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{field}: {path} cannot be read ({exc})") from None
    values: list[int] = []
    for number, line in enumerate(text.splitlines(), 1):
        item = line.strip()
        if not item:
            continue
        try:
            value = int(item)
        except ValueError:
            value = -1
        if not 0 < value <= _MAX_INTERVAL_US:
            raise DatasetError(
                f"{field}: {path.name}, line {number}: {item!r} is not an interval",
                f"one whole number of microseconds a line, 1 to {_MAX_INTERVAL_US:,} (an hour)",
            )
        values.append(value)
        if len(values) > _MAX_INTERVALS:
            raise DatasetError(f"{field}: {path.name} holds over {_MAX_INTERVALS:,} intervals", "loop a shorter file")
    if not values:
        raise DatasetError(f"{field}: {path.name} holds no interval", "one whole number of microseconds a line")
    return Intervals(len(values), statistics.fmean(values), min(values), max(values))


@dataclass(frozen=True)
class Arrivals:
    """The arrival pattern of one benchmark."""

    distribution: str = "constant"
    intervals_file: str | None = None  # its path in the sdk container, relative to /workspace
    intervals: Intervals | None = None

    def check(self, sweep_kind: str, sweep_given: bool, field: str) -> None:
        """Refuse what perf_analyzer cannot run: a distribution other than constant with a concurrency
        sweep, an interval file beside a sweep or a distribution."""
        if self.distribution not in DISTRIBUTIONS:
            name = _name(field, "request_distribution")
            raise UsageError(f"{name}: {self.distribution!r} is unknown", "constant or poisson")
        if self.intervals_file is not None:
            if sweep_given:
                raise UsageError(
                    f"{_name(field, 'request_intervals')}: an interval file sets the load itself",
                    "drop concurrency/request_rate, or the interval file",
                )
            if self.distribution != "constant":
                raise UsageError(
                    f"{_name(field, 'request_distribution')}: {self.distribution} and request_intervals are both set",
                    "an interval file gives every request's time; choose one",
                )
        elif self.distribution != "constant" and sweep_kind != "request_rate":
            raise UsageError(
                f"{_name(field, 'request_distribution')}: {self.distribution} needs a request-rate sweep",
                "add --request-rate A[:B[:STEP]] (analyzer.request_rate): at concurrency N requests follow each other",
            )

    def argv(self) -> list[str]:
        if self.intervals_file is not None:
            return ["--request-intervals", self.intervals_file]
        return [] if self.distribution == "constant" else ["--request-distribution", self.distribution]

    def record(self, sweep_kind: str) -> dict[str, Any]:
        """The manifest's ``load_pattern``."""
        if self.intervals is not None:
            return {
                "mode": "request_intervals",
                "file": self.intervals_file,
                "intervals": self.intervals.count,
                "mean_interval_us": round(self.intervals.mean_us, 3),
                "min_interval_us": self.intervals.min_us,
                "max_interval_us": self.intervals.max_us,
                "rate_infer_per_sec": round(self.intervals.rate, 3),
            }
        return {"mode": sweep_kind, "distribution": self.distribution if sweep_kind == "request_rate" else None}


def resolve(
    dataset: Path,
    distribution: str,
    intervals: Path | None,
    sweep_kind: str,
    sweep_given: bool,
    field: str = "analyzer.",
) -> Arrivals:
    """The arrival pattern of a benchmark, checked: ``intervals`` is the interval file on this
    machine (it must lie under ``dataset``, the one folder the analyzer sees)."""
    if intervals is None:
        arrivals = Arrivals(distribution)
    else:
        arrivals = Arrivals(distribution, *intervals_in(dataset, intervals, field))
    arrivals.check(sweep_kind, sweep_given, field)
    return arrivals


def intervals_in(dataset: Path, intervals: Path, field: str) -> tuple[str, Intervals]:
    """An interval file under ``dataset``: its path in the analyzer, and what it holds."""
    host = intervals.resolve()
    if not host.is_relative_to(dataset.resolve()):
        raise UsageError(
            f"{_name(field, 'request_intervals')}: {intervals} is outside {dataset}",
            "only the stack's dataset/ is mounted in the analyzer; put the file there",
        )
    found = read_intervals(host, _name(field, "request_intervals"))
    return str(Path("dataset") / host.relative_to(dataset.resolve())), found
