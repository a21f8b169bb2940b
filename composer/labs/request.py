"""What a benchmark was asked for on the command line, apart from the machinery that runs it:
commands build one before anything heavy is imported."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from composer.analyzer.inputs import InputChoice
from composer.core.arrivals import Arrivals, resolve
from composer.core.sweep import Sweep

if TYPE_CHECKING:
    from composer.core.config import Stack


@dataclass(frozen=True)
class BenchRequest:
    """What the command line asked for; None means: take it from the stack file."""

    model: str | None = None
    sweep: Sweep | None = None
    input_data: Path | None = None
    shapes: dict[str, list[int]] = field(default_factory=dict)
    protocol: str | None = None
    measurement_requests: int | None = None
    measurement_interval_ms: int | None = None
    extra_args: tuple[str, ...] = ()
    auto_shape: bool = True
    out: Path | None = None
    timeout_s: float | None = None
    repeat: int = 1  # whole sweeps, one after another (A B C A B C): intervals across them
    require_stable: bool = False  # a point perf_analyzer never called stable fails the run (exit 5)
    request_distribution: str | None = None  # constant | poisson
    request_intervals: Path | None = None  # an interval file under the stack's dataset/
    protocols: tuple[str, ...] = ()  # several: one lab compares them (--protocol http,grpc)
    shared_memories: tuple[str, ...] = ()  # several: compared too (--shared-memory none,system)

    def arrivals(self, stack: Stack) -> Arrivals:
        """The arrival pattern asked for, over stack.yaml's; checked (exit 2 before anything starts)."""
        a = stack.analyzer
        intervals = self.request_intervals
        if intervals is None and a.request_intervals is not None and self.sweep is None:
            intervals = stack.directory / a.request_intervals
        sweep = self.sweep or a.sweep
        field = "--" if (self.request_distribution or self.request_intervals) else "analyzer."
        return resolve(
            stack.dataset_dir,
            self.request_distribution or a.request_distribution,
            intervals,
            sweep.kind,
            self.sweep is not None or (a.sweep_set and self.request_intervals is None),
            field,
        )

    def input_choice(self) -> InputChoice:
        return InputChoice(self.input_data, self.shapes, self.auto_shape)
