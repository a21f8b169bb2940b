"""The profile export's projected size decides whether a run asks perf_analyzer for it."""

from __future__ import annotations

from composer.analyzer import export_size
from composer.analyzer.model_inputs import ModelInputs, Tensor

# NVIDIA's qa/python_models/non_contiguous: one rank-5 FP32 input, three outputs of its size.
NON_CONTIGUOUS = ModelInputs(
    (Tensor("INPUT0", "FP32", (-1, -1, -1, -1, -1)),),
    tuple(Tensor(f"OUTPUT{i}", "FP32", (-1, -1, -1, -1, -1)) for i in range(3)),
    0,
)
SMALL = ModelInputs((Tensor("IN", "INT32", (4,)),), (Tensor("OUT", "FP32", (2, 3)),), 0)


def test_variable_outputs_count_as_large_as_the_largest_input() -> None:
    assert export_size.values_per_request(NON_CONTIGUOUS, {"INPUT0": 6600}) == 4 * 6600
    assert export_size.values_per_request(SMALL, {"IN": 4}) == 4 + 6


def test_non_contiguous_at_tisbench_defaults_leaves_the_export_out() -> None:
    values = export_size.values_per_request(NON_CONTIGUOUS, {"INPUT0": 6600})
    projected = export_size.projected_bytes(values, "count_windows", 200, points=1)
    assert projected == 26400 * 8 * 200 * 10
    note = export_size.left_out(projected)
    assert note is not None and "~403 MB" in note and "budget 128 MB" in note


def test_small_tensors_keep_the_export_even_over_a_long_sweep() -> None:
    values = export_size.values_per_request(SMALL, {"IN": 4})
    assert export_size.left_out(export_size.projected_bytes(values, "count_windows", 2000, points=16)) is None
    assert export_size.left_out(export_size.projected_bytes(values, "time_windows", 5000, points=4)) is None
