"""What a model takes, as perf_analyzer sees it: its input and output tensors (from Triton's
metadata and config), the JSON forms of each datatype, and the smallest input data it accepts. Pure."""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from composer.core.errors import DatasetError

ELEMENT_SIZE = {
    "BOOL": 1, "INT8": 1, "UINT8": 1, "INT16": 2, "UINT16": 2, "FP16": 2, "BF16": 2,
    "INT32": 4, "UINT32": 4, "FP32": 4, "INT64": 8, "UINT64": 8, "FP64": 8,
}  # fmt: skip
INT_RANGE = {f"INT{b}": (-(2 ** (b - 1)), 2 ** (b - 1) - 1) for b in (8, 16, 32, 64)} | {
    f"UINT{b}": (0, 2**b - 1) for b in (8, 16, 32, 64)
}
FLOATS = ("FP32", "FP64")
B64_ONLY = ("FP16", "BF16")


@dataclass(frozen=True)
class Tensor:
    """One model input or output; ``dims`` exclude the batch dim, -1 is variable."""

    name: str
    datatype: str
    dims: tuple[int, ...]
    optional: bool = False

    @property
    def is_variable(self) -> bool:
        return -1 in self.dims

    @property
    def fixed_count(self) -> int:
        return math.prod(d for d in self.dims if d != -1)


@dataclass(frozen=True)
class ModelInputs:
    """What perf_analyzer knows about a model's tensors, read from Triton's metadata + config."""

    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    max_batch_size: int

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any], config: Mapping[str, Any]) -> ModelInputs:
        """Build from ``get_model_metadata`` / ``get_model_config`` JSON (HTTP, or gRPC as_json)."""
        try:
            batch = int(config.get("max_batch_size", 0))
            optional = {i["name"] for i in config.get("input", []) if i.get("optional")}
            inputs = tuple(_tensor(t, batch, t["name"] in optional) for t in metadata["inputs"])
            outputs = tuple(_tensor(t, batch, False) for t in metadata.get("outputs", []))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DatasetError(
                f"model metadata for {metadata.get('name', '?')!r} is malformed ({exc!r})",
                "pass get_model_metadata() and get_model_config() JSON as Triton returns them",
            ) from exc
        return cls(inputs, outputs, max(batch, 0))


def _tensor(raw: Mapping[str, Any], max_batch_size: int, optional: bool) -> Tensor:
    dims = [int(d) for d in raw["shape"]]  # gRPC's as_json spells int64 dims as strings
    if max_batch_size > 0:
        dims = dims[1:]  # the batch dim, dropped exactly as perf_analyzer does
    return Tensor(str(raw["name"]), str(raw["datatype"]), tuple(dims), optional)


def skeleton(inputs: ModelInputs) -> dict[str, Any]:
    """A one-step input.json body that ``validate`` accepts; variable dims become 1."""
    return {"data": [{t.name: _example(t) for t in inputs.inputs}]}


def _example(tensor: Tensor) -> object:
    dims = [1 if d == -1 else d for d in tensor.dims]
    count, kind = math.prod(dims), tensor.datatype
    if kind in B64_ONLY:
        raw = base64.b64encode(bytes(count * ELEMENT_SIZE[kind])).decode("ascii")
        return {"content": {"b64": raw}, "shape": dims}
    samples: dict[str, object] = {"BYTES": "text", "BOOL": False, "FP32": 0.0, "FP64": 0.0}
    value = samples.get(kind, 0 if kind in INT_RANGE else None)
    if value is None:
        raise DatasetError(f"input {tensor.name!r}: datatype {kind} has no JSON input form")
    if tensor.dims.count(-1) > 1:  # a flat list could not say how to split over the -1 dims
        return {"content": [value] * count, "shape": dims}
    return [value] * count
