"""The searches of `tisbench tune`, written against an injected ``measure(candidate, concurrency)``.

brute: every candidate of the grid at every concurrency, no early stop. quick: coordinate search
from the baseline, one dimension at a time (instances, dynamic batching, max_batch_size: the
batch size acts only through a batcher, so the batcher is settled first), each dimension followed
while a step is better beyond noise, up first, down when up does not help. For each quick
candidate concurrency rises by powers of two until the latency budget breaks or throughput stops
rising beyond noise (a point whose throughput is not above the best point's window range). Then
the finalists (the best, everything tied with it, and the baseline) are re-measured interleaved,
A B C A B C, and the recommendation is the simplest of the final tie set.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from composer.tuning.space import Candidate, Space, TuneSettings
from composer.tuning.stats import (
    Measurement,
    better,
    choose_point,
    gain,
    meets,
    pooled,
    rank_key,
    recommend,
    tie_set,
    tied,
    violation,
)

ROUNDS = 3  # interleaved re-measurements of each finalist
MAX_FINALISTS = 4  # the best, up to two tied with it, and the baseline: 12 re-measurements, with reloads


class LoadFailed(Exception):
    """The server refused the candidate's configuration; the message is Triton's reason."""


class MeasureFailed(Exception):
    """perf_analyzer could not measure the candidate at this concurrency; the message says why."""


Measure = Callable[[Candidate, int], Measurement]


@dataclass
class Trial:
    """One candidate as the search saw it: its points, its operating point, what went wrong."""

    candidate: Candidate
    points: list[Measurement] = field(default_factory=list)
    status: str = "measured"  # measured | load_failed | failed | partial (measurement budget spent)
    reason: str | None = None
    chosen: Measurement | None = None

    def closest(self, settings: TuneSettings) -> Measurement | None:
        """The point nearest to meeting the constraints (for a search where none met them)."""
        return min(self.points, key=lambda p: (violation(p, settings), -p.throughput), default=None)


@dataclass
class Final:
    """A finalist after the interleaved rounds: pooled over them (or its search point, without rounds)."""

    candidate: Candidate
    result: Measurement
    rounds: int
    missed_at: tuple[int, ...] = ()  # concurrencies whose rounds broke the constraints (stepped down from)


@dataclass
class Outcome:
    best: Final | None
    tied: list[Final]
    baseline: Final | None
    finals: list[Final]
    gain: dict[str, float | str] | None
    closest: tuple[Candidate, Measurement] | None = None


class BudgetSpent(Exception):
    """--max-measurements reached."""


class Search:
    """Holds every trial and measurement so far, so an interrupted search still has a partial answer."""

    def __init__(
        self,
        space: Space,
        settings: TuneSettings,
        measure: Measure,
        on_trial: Callable[[Trial], None] = lambda t: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.space, self.settings, self._measure, self.on_trial = space, settings, measure, on_trial
        self.trials: dict[Candidate, Trial] = {}
        self.measurements = 0
        self.finals: list[Final] = []
        self.budget_spent = False
        self._clock = clock
        self.started = clock()

    def measure(self, candidate: Candidate, concurrency: int) -> Measurement:
        if self.measurements >= self.settings.max_measurements:
            self.budget_spent = True
            raise BudgetSpent
        self.measurements += 1
        return self._measure(candidate, concurrency)

    def wall_s(self) -> float:
        return self._clock() - self.started

    def evaluate(self, candidate: Candidate, *, ramp: bool = True) -> Trial:
        """Measure a candidate (once: a second ask returns the first trial)."""
        if candidate in self.trials:
            return self.trials[candidate]
        trial = self.trials[candidate] = Trial(candidate)
        try:
            self._points(trial, ramp)
        except LoadFailed as exc:
            trial.status, trial.reason = "load_failed", str(exc)
        except MeasureFailed as exc:
            trial.status, trial.reason = ("failed" if not trial.points else "measured"), str(exc)
        except BudgetSpent:
            trial.status, trial.reason = "partial", "the measurement budget (--max-measurements) was spent"
        trial.chosen = choose_point(trial.points, self.settings)
        if trial.points or trial.status != "partial":
            self.on_trial(trial)
        return trial

    def _points(self, trial: Trial, ramp: bool) -> None:
        budget = self.settings.budget_us
        top: Measurement | None = None
        for concurrency in self.space.concurrencies:
            point = self.measure(trial.candidate, concurrency)
            trial.points.append(point)
            if not ramp:
                continue
            if budget is not None and point.latency_us > budget:
                return
            if top is not None and point.throughput <= top.throughput_interval[1]:
                return  # not above the best so far beyond its windows' spread: throughput stopped rising
            top = point

    def brute(self) -> None:
        for candidate in [self.space.baseline, *(c for c in self.space.grid() if c != self.space.baseline)]:
            self.evaluate(candidate, ramp=False)
            if self.budget_spent:
                return

    def quick(self) -> None:
        current = self.evaluate(self.space.baseline)
        for dimension, values in self._dimensions():
            current = self._follow(current, dimension, values)
            if self.budget_spent:
                return

    def _dimensions(self) -> Iterator[tuple[str, tuple[int | bool, ...]]]:
        yield "instances", self.space.instances
        if self.space.batches:
            yield "dynamic_batching", self.space.dynamic_batching
            yield "max_batch_size", self.space.max_batch_sizes

    def _follow(self, current: Trial, dimension: str, values: tuple[int | bool, ...]) -> Trial:
        """Step along one dimension while each step is better beyond noise: up first, then down."""
        here = getattr(current.candidate, dimension)
        up = sorted(v for v in values if v > here)
        down = sorted((v for v in values if v < here), reverse=True)
        for direction in (up, down):
            moved = False
            for value in direction:
                trial = self.evaluate(current.candidate.moved(dimension, value))
                if self.budget_spent or not self._improves(trial, current):
                    break
                current, moved = trial, True
            if moved or self.budget_spent:
                break
        return current

    def _improves(self, trial: Trial, current: Trial) -> bool:
        if trial.chosen is None:
            if current.chosen is not None or not trial.points or not current.points:
                return False
            near, here = trial.closest(self.settings), current.closest(self.settings)
            assert near is not None and here is not None
            return violation(near, self.settings) < violation(here, self.settings)
        return current.chosen is None or better(trial.chosen, current.chosen, self.settings.objective)

    def run(self) -> Outcome:
        """The search of the settings' mode, then the interleaved finals."""
        (self.quick if self.settings.mode == "quick" else self.brute)()
        return self.final_round()

    def finalists(self) -> list[Trial]:
        objective = self.settings.objective
        ranked = sorted(
            (t for t in self.trials.values() if t.chosen is not None),
            key=lambda t: -rank_key(t.chosen, objective),  # type: ignore[arg-type]
        )
        if not ranked:
            return []
        top = ranked[0]
        assert top.chosen is not None
        chosen = [top] + [t for t in ranked[1:] if tied(t.chosen, top.chosen, objective)][: MAX_FINALISTS - 2]  # type: ignore[arg-type]
        baseline = self.trials.get(self.space.baseline)
        if baseline is not None and baseline.points and baseline not in chosen:
            chosen.append(baseline)
        return chosen

    def _operating_point(self, trial: Trial) -> Measurement:
        point = trial.chosen or trial.closest(self.settings)
        assert point is not None
        return point

    def final_round(self) -> Outcome:
        """Re-measure the finalists interleaved at their operating points. A finalist whose rounds
        break the constraints there (its operating point is the highest concurrency that met them
        in the search, so the edge of the budget) steps down to its next point that met them, and
        those finalists get their rounds again: a configuration that meets the budget at a lower
        load is not reported as meeting nothing."""
        finalists = self.finalists()
        at = {t.candidate: self._operating_point(t).concurrency for t in finalists}
        results: dict[Candidate, Final] = {}
        pending = finalists
        while pending:
            rounds = self._interleaved(pending, at)
            stepped = []
            for trial in pending:
                got, before = rounds[trial.candidate], results.get(trial.candidate)
                if not got:  # no round (budget spent, or it failed to load): what the search or last rounds had
                    results.setdefault(trial.candidate, Final(trial.candidate, self._operating_point(trial), 0))
                    continue
                missed = () if before is None else (*before.missed_at, before.result.concurrency)
                final = results[trial.candidate] = Final(trial.candidate, pooled(got), len(got), missed)
                if not meets(final.result, self.settings):
                    lower = self._step_down(trial, at[trial.candidate])
                    if lower is not None:
                        at[trial.candidate] = lower
                        stepped.append(trial)
            pending = stepped
        self.finals = [results[t.candidate] for t in finalists]
        return self.outcome()

    def _interleaved(self, trials: list[Trial], at: dict[Candidate, int]) -> dict[Candidate, list[Measurement]]:
        """ROUNDS interleaved re-measurements (A B C A B C …) at the given concurrencies, as many
        as the measurement budget allows (none when it allows fewer than one each)."""
        count = min(ROUNDS, (self.settings.max_measurements - self.measurements) // len(trials))
        rounds: dict[Candidate, list[Measurement]] = {t.candidate: [] for t in trials}
        for _ in range(count):
            for trial in trials:  # interleaved, so drift hits all alike
                try:
                    rounds[trial.candidate].append(self.measure(trial.candidate, at[trial.candidate]))
                except (LoadFailed, MeasureFailed):
                    continue
        return rounds

    def _step_down(self, trial: Trial, concurrency: int) -> int | None:
        """The concurrency of the trial's operating point among its points below ``concurrency``."""
        below = choose_point((p for p in trial.points if p.concurrency < concurrency), self.settings)
        return below.concurrency if below is not None else None

    def outcome(self) -> Outcome:
        """The answer from what has been measured so far (also for an interrupted search)."""
        finals = self.finals or [Final(t.candidate, self._operating_point(t), 0) for t in self.finalists()]
        by_candidate = {f.candidate: f for f in finals}
        _, ties = tie_set({f.candidate: f.result for f in finals}, self.settings)
        chosen = recommend(ties, self.space.baseline)
        baseline = by_candidate.get(self.space.baseline)
        if baseline is None:
            trial = self.trials.get(self.space.baseline)
            if trial is not None and trial.points:
                baseline = Final(self.space.baseline, self._operating_point(trial), 0)
        best = by_candidate[chosen] if chosen is not None else None
        return Outcome(
            best=best,
            tied=[by_candidate[c] for c in ties if c != chosen],
            baseline=baseline,
            finals=finals,
            gain=gain(best.result, baseline.result, self.settings.objective) if best and baseline else None,
            closest=None if best else self.closest(),
        )

    def closest(self) -> tuple[Candidate, Measurement] | None:
        near = [(t.candidate, p) for t in self.trials.values() if (p := t.closest(self.settings)) is not None]
        return min(near, key=lambda cp: (violation(cp[1], self.settings), -cp[1].throughput), default=None)
