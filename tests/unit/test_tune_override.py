"""Candidates as Triton takes them: the load API's config override and best/config.pbtxt."""

from __future__ import annotations

import json
from pathlib import Path

from composer.core.modelconfig import parse_model_config
from composer.tuning.override import config_pbtxt, configured, disk_config, override_json
from composer.tuning.space import Candidate, baseline_of

ROOT = Path(__file__).resolve().parents[2]
SERVED = json.loads((ROOT / "tests/fixtures/batched_model_config.json").read_text())
BATCHED_PBTXT = (ROOT / "tests/e2e/stacks/batched/models/batched_model/config.pbtxt").read_text()


def test_the_override_is_the_served_config_with_the_candidates_three_fields() -> None:
    override = json.loads(override_json(SERVED, Candidate(3, 4, True)))
    assert baseline_of(override) == Candidate(3, 4, True)
    assert override["input"] == SERVED["input"] and override["backend"] == SERVED["backend"]


def test_preferred_batch_sizes_above_the_new_max_are_dropped() -> None:
    served = {**SERVED, "dynamic_batching": {"preferred_batch_size": [4, 8], "max_queue_delay_microseconds": "0"}}
    assert configured(served, Candidate(1, 4, True))["dynamic_batching"]["preferred_batch_size"] == [4]
    assert "preferred_batch_size" not in configured(served, Candidate(1, 2, True))["dynamic_batching"]


def test_turning_the_batcher_off_removes_it() -> None:
    assert "dynamic_batching" not in configured(SERVED, Candidate(1, 8, False))


def test_every_instance_group_gets_the_count() -> None:
    config = {"instance_group": [{"count": 1, "kind": "KIND_GPU", "gpus": [0]}, {"count": 2, "kind": "KIND_GPU"}]}
    assert [g["count"] for g in configured(config, Candidate(4, 0, False))["instance_group"]] == [4, 4]


def test_config_pbtxt_is_the_users_file_with_the_candidate_and_parses_as_triton_would() -> None:
    text = config_pbtxt(disk_config(BATCHED_PBTXT), Candidate(2, 16, False))
    parsed = parse_model_config(text, "best/config.pbtxt", "batched_model")
    assert baseline_of(parsed) == Candidate(2, 16, False)
    assert "default_model_filename" not in text  # the user's settings, not the server's defaults
    assert [i["name"] for i in parsed["input"]] == ["x", "k"]
