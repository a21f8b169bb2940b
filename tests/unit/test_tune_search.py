"""quick and brute against a fake server: what each measures, where it stops, what it recommends."""

from __future__ import annotations

import pytest
from tune_fakes import FakeServer

from composer.tuning.search import ROUNDS, Search
from composer.tuning.space import Candidate, space_for, tune_settings
from composer.tuning.stats import Window, measurement

BATCHED = {"max_batch_size": 8, "dynamic_batching": {}, "instance_group": [{"count": 1, "kind": "KIND_CPU"}]}
UNBATCHED = {"max_batch_size": 0, "instance_group": [{"count": 1, "kind": "KIND_CPU"}]}
SPACE = {"instances": "1:3", "max_batch_size": "1:8", "concurrency": "1:8"}


def _search(config: dict, server: FakeServer, **flags: object) -> Search:
    settings = tune_settings(None, {**SPACE, **flags}, "s.yaml")
    return Search(space_for(settings, config), settings, server)


def test_brute_measures_every_point_of_the_grid_at_every_concurrency() -> None:
    server = FakeServer()
    search = _search(BATCHED, server, mode="brute")
    outcome = search.run()
    grid = search.space.grid()
    searched = {(c, n) for c, n in server.calls}
    assert searched == {(c, n) for c in grid for n in (1, 2, 4, 8)}
    finals = len(outcome.finals) * ROUNDS
    assert search.measurements == len(grid) * 4 + finals == len(server.calls)


def test_quick_measures_the_baseline_first_and_far_less_than_brute() -> None:
    quick_server, brute_server = FakeServer(), FakeServer()
    quick = _search(BATCHED, quick_server)
    brute = _search(BATCHED, brute_server, mode="brute")
    quick_outcome, brute_outcome = quick.run(), brute.run()
    assert quick_server.calls[0] == (Candidate(1, 8, True), 1)
    assert quick.measurements <= 0.5 * brute.measurements
    assert brute_outcome.best is not None and quick_outcome.best is not None
    quick_ties = {quick_outcome.best.candidate, *(f.candidate for f in quick_outcome.tied)}
    brute_ties = {brute_outcome.best.candidate, *(f.candidate for f in brute_outcome.tied)}
    assert quick_ties & brute_ties


def test_a_third_instance_on_two_cores_is_not_recommended() -> None:
    outcome = _search(UNBATCHED, FakeServer()).run()
    assert outcome.best is not None
    assert outcome.best.candidate == Candidate(2, 0, False)
    assert outcome.gain is not None and float(outcome.gain["low"]) > 0.5


def test_a_model_that_does_not_batch_never_gets_a_batch_size() -> None:
    server = FakeServer()
    _search(UNBATCHED, server).run()
    assert {c.max_batch_size for c, _ in server.calls} == {0}
    assert {c.dynamic_batching for c, _ in server.calls} == {False}


def test_concurrency_rises_until_the_budget_breaks() -> None:
    server = FakeServer(drift=(1.0,))
    search = _search(UNBATCHED, server, latency_budget_ms=1.5, instances="1")
    search.quick()
    # 1 instance serves 900/s at c=1 (1.1 ms), 1000/s at c=2 (2 ms: over the budget): stop there
    assert [n for _, n in server.calls] == [1, 2]
    trial = search.trials[Candidate(1, 0, False)]
    assert trial.chosen is not None and trial.chosen.concurrency == 1


def test_concurrency_stops_rising_with_throughput() -> None:
    server = FakeServer(drift=(1.0,))
    two = {"max_batch_size": 0, "instance_group": [{"count": 2}]}
    search = _search(two, server, instances="2", concurrency="1:64")
    search.quick()
    # 900, 1800, 2000 (above 1800's windows), 2000 again: not higher beyond noise, so 16 is never tried
    assert [n for _, n in server.calls] == [1, 2, 4, 8]


def test_a_candidate_that_does_not_load_is_recorded_and_the_search_goes_on() -> None:
    server = FakeServer(refuse=lambda c: "instance_group count 3 refused" if c.instances == 3 else None)
    search = _search(UNBATCHED, server, mode="brute")
    outcome = search.run()
    refused = search.trials[Candidate(3, 0, False)]
    assert refused.status == "load_failed" and refused.reason == "instance_group count 3 refused"
    assert outcome.best is not None and outcome.best.candidate == Candidate(2, 0, False)


def test_the_baseline_is_kept_when_nothing_beats_it_beyond_noise() -> None:
    flat = FakeServer(model=lambda c, n: 1000.0 + c.instances * 5)
    outcome = _search(UNBATCHED, flat, mode="brute").run()
    assert outcome.best is not None and outcome.best.candidate == Candidate(1, 0, False)


def test_finalists_are_re_measured_interleaved() -> None:
    flat = FakeServer(model=lambda c, n: 1000.0 + c.instances * 5)
    search = _search(UNBATCHED, flat, mode="brute", concurrency="1")
    search.run()
    finals = flat.calls[len(search.space.grid()) :]
    finalists = [f.candidate for f in search.finals]
    assert len(finalists) == 3
    assert [c for c, _ in finals] == finalists * ROUNDS


def test_no_candidate_that_meets_the_budget_names_the_closest() -> None:
    outcome = _search(UNBATCHED, FakeServer(), latency_budget_ms=0.5).run()
    assert outcome.best is None and outcome.closest is not None
    candidate, point = outcome.closest
    assert point.concurrency == 1


def test_the_measurement_budget_is_never_exceeded() -> None:
    server = FakeServer()
    search = _search(BATCHED, server, mode="brute", max_measurements=10)
    search.run()
    assert len(server.calls) == search.measurements == 10
    assert search.budget_spent


def test_an_interrupted_search_still_has_a_partial_answer() -> None:
    server = FakeServer()
    calls = 0

    def measure(candidate: Candidate, concurrency: int):
        nonlocal calls
        calls += 1
        if calls == 6:
            raise KeyboardInterrupt
        return server(candidate, concurrency)

    settings = tune_settings(None, SPACE, "s.yaml")
    search = Search(space_for(settings, UNBATCHED), settings, measure)
    with pytest.raises(KeyboardInterrupt):
        search.run()
    outcome = search.outcome()
    assert outcome.baseline is not None and outcome.best is not None


def test_a_measurement_needs_a_window() -> None:
    with pytest.raises(ValueError):
        measurement(1, [])
    assert measurement(2, [Window(100, 0.5, 10.0)]).throughput == 200


def test_a_finalist_over_the_budget_when_re_measured_steps_down_to_a_lower_concurrency() -> None:
    """Its operating point is the highest concurrency that met the budget in the search, the edge of
    the budget: re-measured slower (the machine drifts), it steps down instead of meeting nothing."""
    server = FakeServer(drift=(1.0,))
    search = _search(UNBATCHED, server, latency_budget_ms=2.5, instances="1", concurrency="1:4")
    search.quick()
    assert [n for _, n in server.calls] == [1, 2, 4]  # c=2 met the budget (2 ms), c=4 broke it (4 ms)
    server.drift = (0.7,)  # from now on 30 % slower: c=2 takes 2.9 ms, c=1 1.6 ms
    outcome = search.final_round()
    assert [n for _, n in server.calls[3:]] == [2] * ROUNDS + [1] * ROUNDS
    assert outcome.best is not None and outcome.best.result.concurrency == 1
    assert outcome.best.missed_at == (2,) and outcome.best.rounds == ROUNDS


def test_a_finalist_with_no_lower_point_that_met_the_budget_stays_where_it_missed() -> None:
    server = FakeServer(drift=(1.0,))
    search = _search(UNBATCHED, server, latency_budget_ms=1.5, instances="1", concurrency="1:4")
    search.quick()
    server.drift = (0.5,)  # c=1 now 2.2 ms: over the budget, and there is nothing below it
    outcome = search.final_round()
    assert [n for _, n in server.calls[2:]] == [1] * ROUNDS
    assert outcome.best is None and outcome.finals[0].missed_at == ()
