"""A fake server for the search tests: deterministic throughput with ±3 % window spread."""

from __future__ import annotations

from collections.abc import Callable

from composer.tuning.search import LoadFailed
from composer.tuning.space import Candidate
from composer.tuning.stats import Measurement, Window, measurement

SPREAD = (0.97, 1.0, 1.03)
DRIFT = (1.0, 0.96, 1.04, 0.98, 1.02)  # from one run to the next, as a shared machine drifts


def two_core_model(candidate: Candidate, concurrency: int) -> float:
    """infer/s: two cores, so a third instance adds nothing; batching helps while requests queue."""
    per_instance = 1000.0
    if candidate.dynamic_batching and candidate.max_batch_size > 1:
        per_instance *= min(candidate.max_batch_size, max(1, concurrency // candidate.instances)) ** 0.5
    capacity = min(candidate.instances, 2) * per_instance
    return min(concurrency * 900.0, capacity)


class FakeServer:
    def __init__(
        self,
        model: Callable[[Candidate, int], float] = two_core_model,
        refuse: Callable[[Candidate], str | None] = lambda c: None,
        drift: tuple[float, ...] = DRIFT,
    ) -> None:
        self.model, self.refuse, self.drift = model, refuse, drift
        self.calls: list[tuple[Candidate, int]] = []

    def __call__(self, candidate: Candidate, concurrency: int) -> Measurement:
        self.calls.append((candidate, concurrency))
        reason = self.refuse(candidate)
        if reason:
            raise LoadFailed(reason)
        rate = self.model(candidate, concurrency) * self.drift[len(self.calls) % len(self.drift)]
        latency = concurrency / rate * 1e6
        windows = [Window(int(rate * f), 1.0, latency / f) for f in SPREAD]
        return measurement(concurrency, windows)
