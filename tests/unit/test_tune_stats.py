"""Intervals from measurement windows, ties, and the simplest-in-the-tie-set rule."""

from __future__ import annotations

from composer.tuning.space import Candidate, TuneSettings
from composer.tuning.stats import (
    Window,
    choose_point,
    gain,
    measurement,
    meets,
    pooled,
    recommend,
    tie_set,
    tied,
)


def _m(concurrency: int, rates: list[float], latency_us: float = 1000.0):
    return measurement(concurrency, [Window(int(r), 1.0, latency_us) for r in rates])


def test_the_interval_is_the_range_of_the_windows() -> None:
    m = _m(1, [900, 1000, 1100])
    assert m.throughput_interval == (900, 1100)
    assert m.throughput == 1000


def test_overlapping_intervals_are_tied_and_separate_ones_are_not() -> None:
    assert tied(_m(1, [900, 1100]), _m(1, [1050, 1200]), "throughput")
    assert not tied(_m(1, [900, 1000]), _m(1, [1050, 1200]), "throughput")


def test_pooled_rounds_have_the_confidence_interval_of_their_mean() -> None:
    p = pooled([_m(1, [990, 1010]), _m(1, [790, 810]), _m(1, [890, 910])])
    assert p.throughput == 900
    low, high = p.throughput_interval
    assert round(high - 900, 1) == round(4.303 * 100 / 3**0.5, 1)  # t(2) · sd / √3
    assert round(900 - low, 1) == round(high - 900, 1)
    assert len(p.windows) == 6


def test_drift_between_rounds_widens_the_pooled_interval() -> None:
    steady = pooled([_m(1, [900, 1100]), _m(1, [900, 1100]), _m(1, [910, 1090])])
    drifting = pooled([_m(1, [1190, 1210]), _m(1, [790, 810]), _m(1, [990, 1010])])
    assert steady.throughput_interval[1] - steady.throughput_interval[0] < 20
    assert drifting.throughput_interval[1] - drifting.throughput_interval[0] > 800


def test_a_pooled_interval_does_not_go_below_zero() -> None:
    p = pooled([_m(1, [100], 300.0), _m(1, [2000], 4000.0), _m(1, [150], 200.0)])
    assert p.throughput_interval[0] == 0.0 and p.throughput_interval[1] > 2000
    assert p.latency_interval[0] == 0.0 and p.latency_interval[1] > 4000


def test_the_budget_is_on_the_latency_percentile() -> None:
    settings = TuneSettings(latency_budget_ms=2)
    assert meets(_m(1, [1000], 1999), settings)
    assert not meets(_m(1, [1000], 2001), settings)
    assert not meets(_m(1, [1000]), TuneSettings(min_throughput=2000))


def test_the_operating_point_is_the_lowest_concurrency_tied_with_the_best() -> None:
    points = [_m(1, [500, 520]), _m(2, [980, 1010]), _m(4, [1000, 1020]), _m(8, [1005, 1015], 9000)]
    chosen = choose_point(points, TuneSettings(latency_budget_ms=5))
    assert chosen is not None and chosen.concurrency == 2


def test_the_recommendation_is_the_simplest_of_the_tie_set() -> None:
    a, b, c = Candidate(3, 8, True), Candidate(2, 8, True), Candidate(2, 4, False)
    results = {a: _m(1, [1000, 1100]), b: _m(1, [1050, 1090]), c: _m(1, [1080, 1120])}
    top, ties = tie_set(results, TuneSettings())
    assert top == c and set(ties) == {a, b, c}
    assert recommend(ties, baseline=Candidate(1, 8, True)) == c


def test_the_baseline_wins_when_it_is_tied() -> None:
    base, other = Candidate(2, 8, True), Candidate(1, 1, False)
    assert recommend([other, base], baseline=base) == base


def test_a_gain_has_its_worst_and_best_case() -> None:
    g = gain(_m(1, [1900, 2100]), _m(1, [900, 1100]), "throughput")
    assert g["value"] == 1.0
    assert g["low"] == round(1900 / 1100 - 1, 4)
    assert g["high"] == round(2100 / 900 - 1, 4)
