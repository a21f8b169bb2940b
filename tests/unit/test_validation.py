"""Which output and step a validation mismatch is (perf_analyzer says only that one differs)."""

from __future__ import annotations

from typing import Any

import numpy as np

from composer.analyzer.model_inputs import ModelInputs, Tensor
from composer.analyzer.validation import first_mismatch, has_validation

ADD_SUB = ModelInputs(
    (Tensor("INPUT0", "FP32", (4,)), Tensor("INPUT1", "FP32", (4,))),
    (Tensor("OUTPUT0", "FP32", (4,)), Tensor("OUTPUT1", "FP32", (4,))),
    0,
)
DATA = {
    "data": [{"INPUT0": [1, 2, 3, 4], "INPUT1": [10, 20, 30, 40]}, {"INPUT0": [5, 5, 5, 5], "INPUT1": [1, 1, 1, 1]}],
    "validation_data": [{"OUTPUT0": [11, 22, 33, 44]}, {"OUTPUT0": [6, 6, 6, 6], "OUTPUT1": [4, 4, 4, 4]}],
}


def _add_sub(off_by: float = 0.0) -> Any:
    def infer(tensors: Any) -> dict[str, Any]:
        a, b = (t.array for t in tensors)
        total = a + b
        total.reshape(-1)[-1] += off_by
        return {"OUTPUT0": total, "OUTPUT1": a - b}

    return infer


def test_a_model_that_answers_as_expected_has_no_mismatch() -> None:
    assert has_validation(DATA) and not has_validation({"data": DATA["data"]})
    assert first_mismatch(DATA, ADD_SUB, {}, _add_sub()) is None


def test_the_first_differing_output_and_step_are_named_with_both_values() -> None:
    line = first_mismatch(DATA, ADD_SUB, {}, _add_sub(off_by=-1))
    assert line == "output 'OUTPUT0', step 0: expected [11, 22, 33, 44], got [11, 22, 33, 43]"


def test_an_output_the_model_does_not_answer_is_named() -> None:
    def infer(tensors: Any) -> dict[str, Any]:
        return {"OUTPUT1": np.zeros(4, dtype=np.float32)}

    assert first_mismatch(DATA, ADD_SUB, {}, infer) == "output 'OUTPUT0', step 0: the model did not answer it"
