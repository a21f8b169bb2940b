"""The input data's steps as tensors a client can send, and what the model answers with: for
sizing perf_analyzer's shared-memory output regions from real responses, and for finding which
output and step a validation mismatch is. Pure: the infer call is the caller's.

A step's tensor takes the shape perf_analyzer would give it: the entry's own "shape", else the
--shape value, else the model's dims; with a batch dim of 1 in front when the model batches.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from composer.analyzer.model_inputs import ModelInputs, Tensor

PROBE_STEPS = 64  # at most this many steps are sent to size the output regions
# numpy's dtype names by Triton datatype. numpy is imported where arrays are made, never at import:
# `tisbench lab` imports this module on a thread while Triton boots, beside the main thread's
# tritonclient import of numpy, and two threads initializing numpy at once fail.
_NUMPY = {
    "BOOL": "bool", "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64",
    "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32", "UINT64": "uint64",
    "FP16": "float16", "FP32": "float32", "FP64": "float64",
}  # fmt: skip


@dataclass(frozen=True)
class StepTensor:
    name: str
    datatype: str
    array: Any  # numpy.ndarray, object dtype for BYTES


def flat_steps(dataset: Mapping[str, Any], key: str = "data") -> list[Mapping[str, Any]]:
    """Every step of ``data`` (or ``validation_data``) in order, streams one after another."""
    streams = dataset.get(key) or []
    if all(isinstance(s, list) for s in streams):
        return [step for stream in streams for step in stream]
    return list(streams)


def step_tensors(
    step: Mapping[str, Any], model: ModelInputs, shapes: Mapping[str, Sequence[int]], tensors: str = "inputs"
) -> list[StepTensor]:
    """One step's values as arrays (the data was validated before: composer.analyzer.dataset)."""
    out = []
    for tensor in getattr(model, tensors):
        if tensor.name not in step:
            continue  # an optional input left out
        out.append(_tensor(step[tensor.name], tensor, shapes.get(tensor.name), model.max_batch_size > 0))
    return out


def _tensor(value: Any, tensor: Tensor, shape_flag: Sequence[int] | None, batched: bool) -> StepTensor:
    import numpy as np

    shape = value.get("shape") if isinstance(value, dict) else None
    content = value.get("content", value) if isinstance(value, dict) else value
    if isinstance(value, dict) and "b64" in value:
        content = {"b64": value["b64"]}
    if isinstance(content, dict):
        raw = base64.b64decode(content["b64"])
        array = _from_bytes(raw, tensor.datatype)
    elif tensor.datatype == "BYTES":
        array = np.array([_as_bytes(v) for v in _flatten(content)], dtype=object)
    else:
        array = np.array(_flatten(content), dtype=_NUMPY[tensor.datatype])
    dims = list(shape or shape_flag or tensor.dims)
    if -1 in dims:  # one variable dim left: what the values make of it
        known = math.prod(d for d in dims if d != -1)
        dims = [array.size // known if d == -1 else d for d in dims]
    array = array.reshape(([1] if batched else []) + dims)
    return StepTensor(tensor.name, tensor.datatype, array)


def _flatten(values: Any) -> list[Any]:
    if isinstance(values, list):
        return [item for v in values for item in _flatten(v)]
    return [values]


def _as_bytes(value: Any) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else str(value).encode("utf-8")


def _from_bytes(raw: bytes, datatype: str) -> Any:
    import numpy as np

    if datatype != "BYTES":
        return np.frombuffer(raw, dtype=np.dtype(_NUMPY[datatype]).newbyteorder("<"))
    items, offset = [], 0
    while offset + 4 <= len(raw):
        size = int.from_bytes(raw[offset : offset + 4], "little")
        items.append(raw[offset + 4 : offset + 4 + size])
        offset += 4 + size
    return np.array(items, dtype=object)


def wire_bytes(array: Any, datatype: str) -> int:
    """The bytes an output takes in a shared-memory region: BYTES elements each with a 4-byte length."""
    if datatype == "BYTES":
        return int(sum(4 + len(item if isinstance(item, bytes) else str(item).encode()) for item in array.flat))
    return int(array.nbytes)


def needs_sizing(model: ModelInputs) -> bool:
    """perf_analyzer sizes fixed-shape numeric outputs itself; a variable or BYTES one needs
    --output-shared-memory-size (its default, 100 KB, truncates a larger answer)."""
    return any(t.is_variable or t.datatype == "BYTES" for t in model.outputs)


def input_bytes(steps: Sequence[Sequence[StepTensor]]) -> int:
    """What the input regions hold: every step's tensors (perf_analyzer registers them all)."""
    return sum(wire_bytes(t.array, t.datatype) for step in steps for t in step)
