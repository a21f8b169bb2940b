"""Output checks: input data with ``validation_data`` makes perf_analyzer compare every response
with the expected outputs, but on a mismatch it says only "Output doesn't match expected output"
(after its generic "Failed to maintain requested inference load"). Which output, at which step,
is found by sending the steps once more and comparing as perf_analyzer does (byte for byte). Pure:
the infer call is the caller's."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from composer.analyzer.model_inputs import ModelInputs
from composer.analyzer.probe import StepTensor, flat_steps, step_tensors

MISMATCH = "doesn't match expected"  # perf_analyzer's "Output doesn't match expected output" and "… size"
_SHOWN = 8  # values shown of each side


def has_validation(dataset: Mapping[str, Any]) -> bool:
    return bool(dataset.get("validation_data"))


def first_mismatch(
    dataset: Mapping[str, Any],
    model: ModelInputs,
    shapes: Mapping[str, Sequence[int]],
    infer: Callable[[list[StepTensor]], dict[str, Any]],
) -> str | None:
    """The first output and step whose answer differs from ``validation_data``, as one line; None
    when every step answers as expected."""
    steps, expected = flat_steps(dataset), flat_steps(dataset, "validation_data")
    for index, (step, wanted) in enumerate(zip(steps, expected, strict=False)):
        answered = infer(step_tensors(step, model, shapes))
        for tensor in step_tensors(wanted, model, {}, "outputs"):
            got = answered.get(tensor.name)
            if got is None:
                return f"output {tensor.name!r}, step {index}: the model did not answer it"
            if not _same(tensor.array, got):
                return (
                    f"output {tensor.name!r}, step {index}: expected {_values(tensor.array)}, got {_values(got)}"
                )
    return None


def _same(expected: Any, got: Any) -> bool:
    if expected.dtype == object or got.dtype == object:
        return [bytes(v) for v in expected.reshape(-1)] == [bytes(v) for v in got.reshape(-1)]
    same_bytes = expected.reshape(-1).tobytes() == got.astype(expected.dtype).reshape(-1).tobytes()
    return bool(expected.size == got.size and same_bytes)


def _values(array: Any) -> str:
    flat = array.reshape(-1).tolist()
    shown = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in flat[:_SHOWN]]
    text = ", ".join(repr(v) if isinstance(v, str) else f"{v:g}" if isinstance(v, float) else str(v) for v in shown)
    return f"[{text}{', …' if len(flat) > _SHOWN else ''}]"
