"""tune.json has the fields the issue names, for a finished, an empty and an interrupted search."""

from __future__ import annotations

import json

from tune_fakes import FakeServer

from composer.tuning.document import tune_document
from composer.tuning.search import Search
from composer.tuning.space import space_for, tune_settings

UNBATCHED = {"max_batch_size": 0, "instance_group": [{"count": 1, "kind": "KIND_CPU"}]}
FACTS = {"model": "m", "release": "24.10"}


def _run(**flags: object) -> tuple[Search, dict]:
    settings = tune_settings(None, {"instances": "1:3", "concurrency": "1:8", **flags}, "s.yaml")
    search = Search(space_for(settings, UNBATCHED), settings, FakeServer())
    outcome = search.run()
    status = "ok" if outcome.best else "no_candidate"
    return search, tune_document(search, outcome, status=status, facts=FACTS)


def test_a_finished_search_documents_best_tied_baseline_and_gain() -> None:
    search, doc = _run()
    json.dumps(doc)  # serialisable as is
    assert doc["status"] == "ok" and doc["model"] == "m"
    assert doc["measurements"] == search.measurements and doc["wall_s"] >= 0
    best = doc["best"]
    assert best["config"] == {"instances": 2, "max_batch_size": 0, "dynamic_batching": False}
    assert set(best) >= {"config", "concurrency", "throughput_infer_per_sec", "throughput_interval", "p99_latency_us"}
    low, high = best["throughput_interval"]
    assert low <= best["throughput_infer_per_sec"] <= high
    assert doc["baseline"]["config"]["instances"] == 1
    assert set(doc["gain_over_baseline"]) >= {"value", "low", "high"}
    assert all(t["config"] != best["config"] for t in doc["tied"])
    first = doc["candidates"][0]
    assert first["baseline"] and first["status"] == "measured" and first["rows"][0]["concurrency"] == 1
    assert doc["recommendation"].startswith("use 2 inst at concurrency")


def test_a_search_where_nothing_meets_the_budget_names_the_closest() -> None:
    _, doc = _run(latency_budget_ms=0.5)
    assert doc["status"] == "no_candidate" and doc["best"] is None
    assert doc["closest"]["concurrency"] == 1
    assert doc["recommendation"].startswith("no candidate met the constraints; the closest:")


def test_a_finalist_that_stepped_down_says_where_it_missed() -> None:
    settings = tune_settings(None, {"instances": "1", "concurrency": "1:4", "latency_budget_ms": 2.5}, "s.yaml")
    server = FakeServer(drift=(1.0,))
    search = Search(space_for(settings, UNBATCHED), settings, server)
    search.quick()
    server.drift = (0.7,)  # re-measured 30 % slower: concurrency 2 breaks the budget, 1 meets it
    doc = tune_document(search, search.final_round(), status="ok", facts=FACTS)
    assert doc["best"]["concurrency"] == 1 and doc["best"]["missed_constraints_at"] == [2]
    assert "missed_constraints_at" not in doc["candidates"][0]
