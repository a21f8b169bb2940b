"""The tune space and settings: ranges, powers of two, flags over stack.yaml over defaults."""

from __future__ import annotations

import pytest

from composer.core.errors import ConfigError, UsageError
from composer.tuning.space import Candidate, Range, baseline_of, parse_range, space_for, tune_settings

BATCHED = {"max_batch_size": 8, "dynamic_batching": {}, "instance_group": [{"count": 1, "kind": "KIND_CPU"}]}
UNBATCHED = {"max_batch_size": 0, "instance_group": [{"count": 2, "kind": "KIND_CPU"}]}


def test_a_range_is_a_to_b_and_a_single_number_is_itself() -> None:
    assert parse_range("1:4", "--instances", 64) == Range(1, 4)
    assert parse_range("3", "--instances", 64) == Range(3, 3)


@pytest.mark.parametrize("text", ["0:4", "4:1", "a:b", "1:2:3", "1:99"])
def test_a_bad_range_names_its_flag(text: str) -> None:
    with pytest.raises(UsageError, match="--instances"):
        parse_range(text, "--instances", 64)


def test_batch_sizes_and_concurrencies_move_by_powers_of_two() -> None:
    assert Range(1, 64).powers_of_two() == (1, 2, 4, 8, 16, 32, 64)
    assert Range(3, 20).powers_of_two() == (4, 8, 16)
    assert Range(3, 3).powers_of_two() == (3,)


def test_flags_win_over_the_stack_section_which_wins_over_defaults() -> None:
    settings = tune_settings(
        {"instances": "1:2", "latency_budget_ms": 5, "mode": "brute"}, {"mode": "quick", "concurrency": "1:8"}, "s.yaml"
    )
    assert settings.instances == Range(1, 2)
    assert settings.latency_budget_ms == 5.0 and settings.budget_us == 5000.0
    assert settings.mode == "quick"
    assert settings.concurrency == Range(1, 8)
    assert settings.max_batch_size == Range(1, 64)  # default


def test_a_stack_section_error_names_the_file_and_field() -> None:
    with pytest.raises(ConfigError, match=r"s.yaml: tune.objective"):
        tune_settings({"objective": "speed"}, {}, "s.yaml")
    with pytest.raises(ConfigError, match=r"unknown key 'tune.instance'"):
        tune_settings({"instance": "1:2"}, {}, "s.yaml")


def test_yaml_booleans_are_accepted_for_dynamic_batching() -> None:
    assert tune_settings({"dynamic_batching": False}, {}, "s.yaml").dynamic_batching == "off"


def test_the_baseline_is_the_served_configuration() -> None:
    assert baseline_of(BATCHED) == Candidate(1, 8, True)
    assert baseline_of(UNBATCHED) == Candidate(2, 0, False)
    assert baseline_of({"max_batch_size": 4}) == Candidate(1, 4, False)


def test_a_model_that_does_not_batch_searches_instances_and_concurrency_only() -> None:
    space = space_for(tune_settings(None, {"instances": "1:3"}, "s.yaml"), UNBATCHED)
    assert space.max_batch_sizes == (0,) and space.dynamic_batching == (False,)
    assert {c.max_batch_size for c in space.grid()} == {0}
    assert len(space.grid()) == 3


def test_the_grid_is_ordered_simplest_first() -> None:
    space = space_for(tune_settings(None, {"instances": "1:2", "max_batch_size": "1:2"}, "s.yaml"), BATCHED)
    grid = space.grid()
    assert grid[0] == Candidate(1, 1, False)
    assert grid[-1] == Candidate(2, 2, True)
    assert len(grid) == 8


def test_stack_yaml_tune_section_is_read_and_its_keys_checked(tmp_path) -> None:
    import shutil
    from pathlib import Path

    from composer.core.config import load_stack

    stack = tmp_path / "s"
    shutil.copytree(Path(__file__).resolve().parents[2] / "stacks/quickstart", stack)
    (stack / "stack.yaml").write_text('tune:\n  instances: "1:2"\n  latency_budget_ms: 5\n')
    loaded = load_stack(stack)
    settings = tune_settings(dict(loaded.tune), {}, str(loaded.file))
    assert settings.instances == Range(1, 2) and settings.latency_budget_ms == 5
    (stack / "stack.yaml").write_text("tune:\n  instance: 2\n")
    with pytest.raises(ConfigError, match="tune.instance.*"):
        load_stack(stack)
