"""The input data a bench sends, checked against the model before anything runs. Pure.

Where the model's configuration is complete on disk, this runs before the first Docker call
(``lab``, ``check``, ``matrix``): a dataset refusal is then the only thing that happens. A
configuration Triton completes at load is checked the same way against what the server serves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer.analyzer.dataset import load_dataset, read_inputs
from composer.analyzer.model_inputs import ModelInputs
from composer.core.config import Stack
from composer.core.errors import UsageError
from composer.core.modelconfig import read_disk_model


@dataclass(frozen=True)
class InputChoice:
    """What the command line says about the input data; None/empty: the stack file's."""

    input_data: Path | None = None
    shapes: Mapping[str, Sequence[int]] | None = None
    auto_shape: bool = True


def container_input_path(stack: Stack, override: Path | None) -> tuple[Path, str]:
    """Host path of the input data and its path inside the analyzer (dataset/ is mounted there)."""
    host = (override if override is not None else stack.input_data_path).resolve()
    dataset = stack.dataset_dir.resolve()
    if not host.is_relative_to(dataset):
        raise UsageError(
            f"--input-data {override}: outside {dataset}",
            "only the stack's dataset/ is mounted in the analyzer; put the file there",
        )
    return host, str(Path("dataset") / host.relative_to(dataset))


def input_shapes(stack: Stack, choice: InputChoice, model_inputs: ModelInputs) -> dict[str, list[int]]:
    """Validate the input data against the model; the ``--shape`` values perf_analyzer needs."""
    return input_shapes_and_counts(stack, choice, model_inputs)[0]


def input_shapes_and_counts(
    stack: Stack, choice: InputChoice, model_inputs: ModelInputs
) -> tuple[dict[str, list[int]], dict[str, int]]:
    """``input_shapes``, and each input's largest element count (what one request carries), from
    one read of the input data."""
    host_input, _ = container_input_path(stack, choice.input_data)
    user_shapes = {
        **{k: list(v) for k, v in stack.analyzer.shapes},
        **{k: list(v) for k, v in (choice.shapes or {}).items()},
    }
    dataset = load_dataset(host_input)
    return read_inputs(dataset, model_inputs, user_shapes, derive=choice.auto_shape, source=str(host_input))


@dataclass(frozen=True)
class Preflight:
    """The offline check's outcome: the shapes a bench would pass, or why it waits for the server."""

    shapes: dict[str, list[int]] | None
    deferred: str | None = None  # set when the config is Triton's to complete
    config: dict[str, Any] | None = None  # the complete config from disk, when there is one

    def note(self) -> str | None:
        if self.deferred is None:
            return None
        return (
            f"{self.deferred}: Triton completes its configuration at load, so the input data is checked "
            "against the configuration the server serves, once the model is loaded"
        )


def preflight(stack: Stack, choice: InputChoice) -> Preflight:
    """Check the input data against config.pbtxt without Docker, where config.pbtxt says it all."""
    disk = read_disk_model(stack.models_dir, stack.model)
    if disk.metadata is None or disk.config is None:
        container_input_path(stack, choice.input_data)  # a bad --input-data path is known offline all the same
        return Preflight(None, disk.completed_by_triton)
    return Preflight(
        input_shapes(stack, choice, ModelInputs.from_metadata(disk.metadata, disk.config)), None, disk.config
    )
