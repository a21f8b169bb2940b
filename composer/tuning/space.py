"""The search space of `tisbench tune` and its settings: command-line flags over stack.yaml's
``tune:`` section over defaults. Pure: a model's served config in, candidates out.

A candidate is ``{instances, max_batch_size, dynamic_batching}``: the count of each instance group,
the model's max_batch_size, and whether the dynamic batcher is on. max_batch_size and concurrency
move by powers of two; a model with ``max_batch_size: 0`` does not batch, so only its instances
and concurrency are searched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from composer.core.errors import ConfigError, UsageError
from composer.core.tune_keys import TUNE_KEYS

MODES = ("quick", "brute")
OBJECTIVES = ("throughput", "latency")
BATCHING = ("auto", "on", "off")
PERCENTILES = (50, 90, 95, 99)
_MAX_INSTANCES = 64
_MAX_BATCH = 4096
_MAX_CONCURRENCY = 4096


@dataclass(frozen=True, order=True)
class Candidate:
    """One model configuration; ordered simplest first (fewest instances, smallest batch, no batcher)."""

    instances: int
    max_batch_size: int
    dynamic_batching: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "instances": self.instances,
            "max_batch_size": self.max_batch_size,
            "dynamic_batching": self.dynamic_batching,
        }

    def label(self) -> str:
        batching = (
            f" batch {self.max_batch_size}{' dyn' if self.dynamic_batching else ''}" if self.max_batch_size else ""
        )
        return f"{self.instances} inst{batching}"

    def moved(self, dimension: str, value: int | bool) -> Candidate:
        """The same candidate with one dimension set to ``value``."""
        changes: dict[str, Any] = {dimension: value}
        return replace(self, **changes)

    def slug(self) -> str:
        return f"i{self.instances}-b{self.max_batch_size}-{'dyn' if self.dynamic_batching else 'nodyn'}"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Candidate:
        return cls(int(data["instances"]), int(data["max_batch_size"]), bool(data["dynamic_batching"]))


@dataclass(frozen=True)
class Range:
    low: int
    high: int

    def every(self) -> tuple[int, ...]:
        return tuple(range(self.low, self.high + 1))

    def powers_of_two(self) -> tuple[int, ...]:
        values, value = [], 1
        while value <= self.high:
            if value >= self.low:
                values.append(value)
            value *= 2
        return tuple(values) or (self.low,)


@dataclass(frozen=True)
class TuneSettings:
    """What the search optimises and within which limits."""

    mode: str = "quick"
    objective: str = "throughput"
    latency_budget_ms: float | None = None
    min_throughput: float | None = None
    percentile: int = 99
    instances: Range = Range(1, 4)
    max_batch_size: Range = Range(1, 64)
    dynamic_batching: str = "auto"
    concurrency: Range = Range(1, 64)
    max_measurements: int = 200

    @property
    def budget_us(self) -> float | None:
        return None if self.latency_budget_ms is None else self.latency_budget_ms * 1000

    def constraints(self) -> dict[str, Any]:
        return {
            "latency_budget_ms": self.latency_budget_ms,
            "percentile": self.percentile,
            "min_throughput": self.min_throughput,
        }


def parse_range(text: Any, field: str, high_limit: int) -> Range:
    """``A:B`` or ``A`` → a Range of whole numbers within 1…high_limit."""
    parts = str(text).strip().split(":")
    try:
        if len(parts) > 2:
            raise ValueError
        low, high = int(parts[0]), int(parts[-1])
    except ValueError:
        raise UsageError(f"{field}: {text!r} is not a range", "write A:B or A, e.g. 1:4") from None
    if not 1 <= low <= high <= high_limit:
        raise UsageError(f"{field}: {text!r} must satisfy 1 ≤ A ≤ B ≤ {high_limit}", "e.g. 1:4")
    return Range(low, high)


def _choice(value: Any, allowed: tuple[Any, ...], field: str) -> Any:
    if value not in allowed:
        raise UsageError(f"{field}: {value!r} is not one of {', '.join(map(str, allowed))}", "pick one of them")
    return value


def _positive(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise UsageError(f"{field}: {value!r} must be a number above 0", "e.g. 5")
    return float(value)


def _field(key: str, value: Any, field: str) -> Any:
    """One value of the tune settings, checked; ``field`` names where it came from."""
    if key in ("latency_budget_ms", "min_throughput"):
        return _positive(value, field)
    if key == "objective":
        return _choice(value, OBJECTIVES, field)
    if key == "mode":
        return _choice(value, MODES, field)
    if key == "dynamic_batching":
        return _choice({True: "on", False: "off"}.get(value, value), BATCHING, field)
    if key == "percentile":
        return _choice(value, PERCENTILES, field)
    if key == "instances":
        return parse_range(value, field, _MAX_INSTANCES)
    if key == "max_batch_size":
        return parse_range(value, field, _MAX_BATCH)
    if key == "concurrency":
        return parse_range(value, field, _MAX_CONCURRENCY)
    if key == "max_measurements":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"{field}: {value!r} must be a whole number above 0", "e.g. 60")
        return value
    raise AssertionError(key)


def tune_settings(section: Mapping[str, Any] | None, flags: Mapping[str, Any], source: str) -> TuneSettings:
    """Flags (None: not given) over stack.yaml's ``tune:`` section over the defaults."""
    settings = TuneSettings()
    for key, value in (section or {}).items():
        if key not in TUNE_KEYS:
            raise ConfigError(f"{source}: unknown key 'tune.{key}'", f"allowed keys: {', '.join(TUNE_KEYS)}")
        if value is None:
            continue
        try:
            settings = replace(settings, **{key: _field(key, value, f"{source}: tune.{key}")})
        except UsageError as exc:
            raise ConfigError(exc.message, exc.hint) from None
    for key, value in flags.items():
        if value is not None:
            settings = replace(settings, **{key: _field(key, value, "--" + key.replace("_", "-"))})
    return settings


def _instance_groups(config: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(config.get("instance_group") or [])


def baseline_of(config: Mapping[str, Any]) -> Candidate:
    """The model's own configuration (as the server serves it) as a candidate."""
    groups = _instance_groups(config)
    instances = int(groups[0].get("count", 1)) if groups else 1
    return Candidate(instances, int(config.get("max_batch_size", 0) or 0), "dynamic_batching" in config)


def batching_choices(settings: TuneSettings, config: Mapping[str, Any]) -> tuple[bool, ...]:
    """Which dynamic-batching values the search may try for this model."""
    if int(config.get("max_batch_size", 0) or 0) == 0 or "sequence_batching" in config:
        return (baseline_of(config).dynamic_batching,)
    return {"auto": (False, True), "on": (True,), "off": (False,)}[settings.dynamic_batching]


@dataclass(frozen=True)
class Space:
    """The values each dimension may take, and where the search starts."""

    baseline: Candidate
    instances: tuple[int, ...]
    max_batch_sizes: tuple[int, ...]
    dynamic_batching: tuple[bool, ...]
    concurrencies: tuple[int, ...]

    @property
    def batches(self) -> bool:
        return self.baseline.max_batch_size > 0

    def grid(self) -> list[Candidate]:
        """Every candidate of the space, simplest first."""
        return sorted(
            Candidate(i, b, d) for i in self.instances for b in self.max_batch_sizes for d in self.dynamic_batching
        )


def space_for(settings: TuneSettings, config: Mapping[str, Any]) -> Space:
    baseline = baseline_of(config)
    batches = baseline.max_batch_size > 0
    return Space(
        baseline=baseline,
        instances=settings.instances.every(),
        max_batch_sizes=settings.max_batch_size.powers_of_two() if batches else (0,),
        dynamic_batching=batching_choices(settings, config),
        concurrencies=settings.concurrency.powers_of_two(),
    )
