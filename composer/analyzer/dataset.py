"""perf_analyzer input data: read the JSON file, check it against the model, derive ``--shape``.

Pure logic. The rules are those of perf_analyzer's data loader (data_loader.cc, perf_utils.cc), so
a file we accept never stops it with "... needs to have its shape fully defined. See the --shape
option.". Beyond the documented forms, the loader: reads ``32`` as an integer and refuses it for
FP32/FP64; takes FP16/BF16 only as b64; sends every flat list of an input with its one ``--shape``
and checks each explicit ``"shape"`` against that ``--shape`` too; wants every output in each
``validation_data`` step and can only size outputs whose dims are all fixed.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import json
import math
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer.analyzer.model_inputs import B64_ONLY, ELEMENT_SIZE, FLOATS, INT_RANGE, ModelInputs, Tensor
from composer.core.errors import DatasetError, TisbenchError, UsageError

_TOP_LEVEL_KEYS = ("data", "validation_data")
_STEP_EXTRA_KEYS = ("model",)  # perf_analyzer's loader lets this key through in any step
SHAPE_FORM = "--shape takes NAME:DIMS with positive dims, e.g. age:1 or image:3,224,224"
CONTENT_SHAPE = '{"content": [...], "shape": [...]}'
DATA_FORM = 'write {"data": [{"INPUT": [...]}, ...]}, one object per request'


@dataclass(frozen=True)
class _Entry:
    """One step's value for one tensor: its element count and its explicit shape, if any."""

    step: str
    count: int
    shape: tuple[int, ...] | None


def load_dataset(path: Path) -> dict[str, Any]:
    """Read and parse a perf_analyzer input-data JSON file and check its top-level layout."""
    if not path.exists():
        raise DatasetError(f"input data file {path} does not exist", "check the path")
    if path.is_dir():
        raise DatasetError(f"input data {path} is a directory", "give the JSON file itself")
    try:
        dataset = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path} is not UTF-8 text ({exc.reason})", "save it as UTF-8 JSON") from exc
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise DatasetError(f"{path} is not valid JSON: {exc.msg} at {where}", "fix the JSON syntax there") from exc
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror}", "check its permissions") from exc
    _check_top_level(dataset, str(path))
    return dict(dataset)


def _check_top_level(dataset: object, source: str) -> None:
    if not isinstance(dataset, dict):
        raise DatasetError(f"{source}: the top level is {_kind(dataset)}, not an object", DATA_FORM)
    for key in dataset:
        if key not in _TOP_LEVEL_KEYS:
            hint = _did_you_mean(key, _TOP_LEVEL_KEYS) or 'only "data" and "validation_data" are read'
            raise DatasetError(f"{source}: unknown top-level key {key!r}", hint)
    data = dataset.get("data")
    if not isinstance(data, list) or not data:
        found = "missing" if data is None else "an empty list" if data == [] else _kind(data)
        raise DatasetError(f'{source}: "data" is {found}; it must be a non-empty list of steps', DATA_FORM)


def validate(dataset: Mapping[str, Any], inputs: ModelInputs, source: str) -> None:
    """Raise DatasetError, naming file, step and tensor, for anything perf_analyzer would refuse."""
    _validated(dataset, inputs, source)


def read_inputs(
    dataset: Mapping[str, Any],
    inputs: ModelInputs,
    user_shapes: Mapping[str, Sequence[int]],
    *,
    derive: bool,
    source: str = "input data",
) -> tuple[dict[str, list[int]], dict[str, int]]:
    """``validate``, the ``--shape`` values (``derive_shapes`` when ``derive``, else the user's), and
    each input's largest element count over the steps of ``data`` — from one walk of the data."""
    entries = _validated(dataset, inputs, source)
    shapes = _shapes(entries, inputs, user_shapes, source) if derive else {k: list(v) for k, v in user_shapes.items()}
    return shapes, {name: max((e.count for e in found), default=0) for name, found in entries.items()}


def _validated(dataset: Mapping[str, Any], inputs: ModelInputs, source: str) -> dict[str, list[_Entry]]:
    entries = _collect(dataset, inputs, source)
    if "validation_data" not in dataset:
        return entries
    steps = _steps(dataset, "validation_data", source)
    if _layout(dataset["data"]) != _layout(dataset["validation_data"]):
        hint = "give one validation step per data step, in the same streams"
        raise DatasetError(f'{source}: "validation_data" does not line up with "data"', hint)
    for where, step in steps:
        for tensor, value in _step_values(step, inputs.outputs, "output", f"{source}, {where}"):
            at = f"{source}, {where}, output {tensor.name!r}"
            if tensor.is_variable:
                raise DatasetError(
                    f"{at}: perf_analyzer cannot validate an output with variable dims {list(tensor.dims)}",
                    'remove "validation_data": perf_analyzer sizes outputs by the model shape only',
                )
            _read_entry(value, tensor, at, where)
    return entries


def derive_shapes(
    dataset: Mapping[str, Any],
    inputs: ModelInputs,
    user_shapes: Mapping[str, Sequence[int]],
    *,
    source: str = "input data",
) -> dict[str, list[int]]:
    """The ``--shape`` each variable input needs, in input order; user shapes win.

    An input whose every step carries its own ``"shape"`` needs none (and gets none unless the
    user gives one); a flat list fixes the shape from its length when only one dim is variable.
    """
    return _shapes(_collect(dataset, inputs, source), inputs, user_shapes, source)


def _shapes(
    entries: Mapping[str, list[_Entry]], inputs: ModelInputs, user_shapes: Mapping[str, Sequence[int]], source: str
) -> dict[str, list[int]]:
    _check_user_shapes(user_shapes, inputs)
    shapes: dict[str, list[int]] = {}
    for tensor in inputs.inputs:
        flat = [e for e in entries[tensor.name] if e.shape is None]
        if not tensor.is_variable or not (flat or tensor.name in user_shapes):
            continue
        error: type[TisbenchError]
        if tensor.name in user_shapes:
            shape, error = tuple(user_shapes[tensor.name]), UsageError
            origin = f"--shape {_shape_arg(tensor.name, shape)}"
        else:
            shape, error = _shape_from_count(tensor, flat[0], source), DatasetError
            origin = f"the list in {flat[0].step}"
        for entry in entries[tensor.name]:
            at = f"{source}, {entry.step}, input {tensor.name!r}"
            if entry.shape is None and entry.count != math.prod(shape):
                hint = f"give {math.prod(shape)} values, or a {CONTENT_SHAPE} entry"
                raise error(
                    f"{at}: {origin} makes the shape {list(shape)}, but this step has {_values(entry.count)}", hint
                )
            if entry.shape is not None and entry.shape != shape:
                raise error(
                    f"{at}: shape {list(entry.shape)} differs from {list(shape)} set by {origin}",
                    "perf_analyzer checks every explicit shape against the input's --shape; "
                    f"use {list(shape)} here, or give every step of {tensor.name!r} its own shape and no --shape",
                )
        shapes[tensor.name] = list(shape)
    return shapes


def format_shape_args(shapes: Mapping[str, Sequence[int]]) -> list[str]:
    """``["--shape", "age:1", ...]`` in the mapping's order (derive_shapes gives input order)."""
    return [arg for name, dims in shapes.items() for arg in ("--shape", _shape_arg(name, dims))]


def parse_shape_option(text: str) -> tuple[str, list[int]]:
    """Parse a CLI ``--shape IN:DIMS``; the name ends at the last colon, as in perf_analyzer."""
    name, colon, dims_text = text.rpartition(":")
    try:
        dims = [int(part) for part in dims_text.split(",")]
    except ValueError:
        dims = []
    if not colon or not name or not dims or min(dims) <= 0:
        raise UsageError(f"--shape {text!r} is not NAME:DIMS", SHAPE_FORM)
    return name, dims


def _collect(dataset: Mapping[str, Any], model: ModelInputs, source: str) -> dict[str, list[_Entry]]:
    """Check every step of ``data``; return each input's entries in step order."""
    _check_top_level(dataset, source)
    found: dict[str, list[_Entry]] = {t.name: [] for t in model.inputs}
    for where, step in _steps(dataset, "data", source):
        for tensor, value in _step_values(step, model.inputs, "input", f"{source}, {where}"):
            found[tensor.name].append(_read_entry(value, tensor, f"{source}, {where}, input {tensor.name!r}", where))
    for tensor in model.inputs:
        flat = [e for e in found[tensor.name] if e.shape is None]
        odd = next((e for e in flat if e.count != flat[0].count), None)
        if tensor.is_variable and odd is not None:
            raise DatasetError(
                f"{source}, input {tensor.name!r}: inconsistent shapes across steps: "
                f"{flat[0].step} has {_values(flat[0].count)}, {odd.step} has {odd.count}",
                f"perf_analyzer sends all flat lists with one --shape; give each step a {CONTENT_SHAPE} entry",
            )
    return found


def _steps(dataset: Mapping[str, Any], key: str, source: str) -> list[tuple[str, Any]]:
    """Label every step: "step 3", or "stream 1 step 2" in the multi-stream (sequence) form."""
    streams, label = dataset.get(key), ("" if key == "data" else f"{key} ")
    if not isinstance(streams, list) or not streams:
        raise DatasetError(f'{source}: "{key}" must be a non-empty list', DATA_FORM)
    steps: list[tuple[str, Any]] = []
    if all(isinstance(s, list) for s in streams):
        for index, stream in enumerate(streams):
            if not stream:
                raise DatasetError(f"{source}: {label}stream {index} is empty", "give it steps or remove it")
            steps += [(f"{label}stream {index} step {i}", step) for i, step in enumerate(stream)]
    elif any(isinstance(s, list) for s in streams):
        hint = "use a list of step objects, or a list of streams that are lists of step objects"
        raise DatasetError(f'{source}: "{key}" mixes steps (objects) and streams (lists)', hint)
    else:
        steps = [(f"{label}step {i}", step) for i, step in enumerate(streams)]
    for where, step in steps:
        if not isinstance(step, dict):
            hint = 'a step maps tensor names to values: {"INPUT": [...]}'
            raise DatasetError(f"{source}, {where}: a step is {_kind(step)}, not an object", hint)
    return steps


def _layout(streams: list[Any]) -> list[int]:
    return [len(s) if isinstance(s, list) else -1 for s in streams]


def _step_values(
    step: Mapping[str, Any], tensors: Sequence[Tensor], role: str, where: str
) -> Iterator[tuple[Tensor, Any]]:
    names = [t.name for t in tensors]
    for key in step:
        if key not in names and key not in _STEP_EXTRA_KEYS:
            hint = _did_you_mean(key, names) or f"the model's {role}s are {', '.join(names)}"
            raise DatasetError(f"{where}: {key!r} is not an {role} of the model", hint)
    for tensor in tensors:
        if tensor.name in step:
            yield tensor, step[tensor.name]
        elif not tensor.optional:
            hint = f'perf_analyzer needs every {role} in every step; add "{tensor.name}"'
            raise DatasetError(f"{where}: {role} {tensor.name!r} is missing", hint)


def _read_entry(value: object, tensor: Tensor, at: str, step: str) -> _Entry:
    shape: tuple[int, ...] | None = None
    content = value
    if isinstance(value, dict):
        extra = sorted(set(value) - {"content", "shape", "b64"})
        if extra:
            raise DatasetError(f"{at}: unknown key {extra[0]!r}", 'use "content", "shape" or "b64"')
        raw_shape = value.get("shape")
        if raw_shape is not None:
            if not isinstance(raw_shape, list) or not all(_is_int(d) and d >= 0 for d in raw_shape):
                hint = "give each dim as a whole number ≥ 0 (-1 is for the model, not for data)"
                raise DatasetError(f'{at}: "shape" {json.dumps(raw_shape)} is not a list of sizes', hint)
            shape = tuple(raw_shape)
        if "b64" in value:
            content = {"b64": value["b64"]}
        elif "content" in value:
            content = value["content"]
        else:
            raise DatasetError(f'{at}: "content" is missing', f"write {CONTENT_SHAPE}")
    if isinstance(content, list):
        count = _check_values(content, tensor, at)
    elif isinstance(content, dict) and "b64" in content:
        count = _b64_count(content["b64"], tensor, at)
    else:
        hint = f'give a flat list, {CONTENT_SHAPE} or {{"b64": "..."}}'
        raise DatasetError(f"{at}: {_kind(content)} is not tensor data", hint)
    _check_fits(count, shape, tensor, at)
    return _Entry(step, count, shape)


def _check_values(values: list[Any], tensor: Tensor, at: str) -> int:
    kind = tensor.datatype
    if kind in B64_ONLY:
        hint = f'give {{"b64": "<little-endian {kind} bytes>"}} instead'
        raise DatasetError(f"{at}: perf_analyzer cannot read {kind} values from a JSON list", hint)
    for index, item in enumerate(values):
        if kind == "BYTES":
            ok, want = isinstance(item, str), "a string"
        elif kind == "BOOL":
            ok, want = isinstance(item, bool), "true or false"
        elif kind in FLOATS:
            ok, want = isinstance(item, float), "a number with a decimal point, like 32.0"
        elif kind in INT_RANGE:
            low, high = INT_RANGE[kind]
            ok, want = _is_int(item) and low <= item <= high, f"an integer from {low} to {high}"
        else:
            raise DatasetError(f"{at}: datatype {kind} has no JSON list form", 'give {"b64": "..."}')
        if not ok:
            hint = f"fix the value, or check that the model's {kind} input is the one meant"
            if kind in FLOATS and _is_int(item):
                hint = f"perf_analyzer reads {item} as an integer and refuses it for {kind}; write {item}.0"
            raise DatasetError(f"{at}: value {index} ({json.dumps(item)}) is not {want}", hint)
    return len(values)


def _b64_count(encoded: object, tensor: Tensor, at: str) -> int:
    try:
        if not isinstance(encoded, str):
            raise ValueError("not a string")
        raw = base64.b64decode(encoded)
    except (ValueError, binascii.Error) as exc:
        raise DatasetError(f'{at}: "b64" is not base64 ({exc})', "encode the raw bytes as base64") from exc
    if tensor.datatype == "BYTES":
        return _count_strings(raw, at)
    size = ELEMENT_SIZE.get(tensor.datatype, 0)
    if not size or len(raw) % size:
        hint = f"encode {size or '?'} little-endian bytes per value"
        raise DatasetError(f"{at}: {len(raw)} bytes are not a whole number of {tensor.datatype} values", hint)
    return len(raw) // size


def _count_strings(raw: bytes, at: str) -> int:
    """BYTES elements are each a 4-byte little-endian length, then that many bytes."""
    offset = count = 0
    while offset + 4 <= len(raw):
        offset += 4 + struct.unpack_from("<I", raw, offset)[0]
        count += 1
    if offset != len(raw):
        hint = "prefix every string with its length as a 4-byte little-endian integer"
        raise DatasetError(f'{at}: "b64" BYTES data is not length-prefixed strings', hint)
    return count


def _check_fits(count: int, shape: tuple[int, ...] | None, tensor: Tensor, at: str) -> None:
    dims = list(tensor.dims)
    if shape is not None:
        if len(shape) != len(dims) or any(d not in (-1, s) for d, s in zip(dims, shape, strict=True)):
            hint = "keep the rank and the fixed dims; only -1 dims may change"
            raise DatasetError(f"{at}: shape {list(shape)} does not fit the model shape {dims} (no batch dim)", hint)
        if count != math.prod(shape):
            hint = "make the content match the shape"
            raise DatasetError(f"{at}: {_values(count)} but shape {list(shape)} holds {math.prod(shape)}", hint)
    elif not tensor.is_variable and count != math.prod(dims):
        hint = "give one batch-1 request per step, flattened row-major"
        raise DatasetError(f"{at}: {_values(count)} but the model shape {dims} holds {math.prod(dims)}", hint)
    elif tensor.is_variable and (count == 0 or tensor.fixed_count == 0 or count % tensor.fixed_count):
        many = f"a positive multiple of {tensor.fixed_count} values" if tensor.fixed_count > 1 else "at least one value"
        hint = f"give {many}, or a {CONTENT_SHAPE} entry"
        raise DatasetError(f"{at}: {_values(count)} cannot fill the model shape {dims}", hint)


def _shape_from_count(tensor: Tensor, entry: _Entry, source: str) -> tuple[int, ...]:
    if tensor.dims.count(-1) > 1:
        raise DatasetError(
            f"{source}, {entry.step}, input {tensor.name!r}: a flat list cannot tell how to spread "
            f"{_values(entry.count)} over the model shape {list(tensor.dims)}",
            f"pass --shape {tensor.name}:DIMS, or give each step a {CONTENT_SHAPE} entry",
        )
    size = entry.count // tensor.fixed_count
    return tuple(size if d == -1 else d for d in tensor.dims)


def _check_user_shapes(user_shapes: Mapping[str, Sequence[int]], model: ModelInputs) -> None:
    known = {t.name: list(t.dims) for t in model.inputs}
    for name, dims in user_shapes.items():
        if name not in known:
            hint = _did_you_mean(name, list(known)) or f"its inputs are {', '.join(known)}"
            raise UsageError(f"--shape {name}: the model has no input {name!r}", hint)
        model_dims = known[name]
        fits = len(dims) == len(model_dims) and all(d in (-1, s) for d, s in zip(model_dims, dims, strict=True))
        if not fits or min(dims, default=1) <= 0:
            raise UsageError(
                f"--shape {_shape_arg(name, dims)} does not fit the model shape {model_dims}",
                "give one positive size per dim, keep the fixed dims, leave out the batch dim (that is -b)",
            )


def _shape_arg(name: str, dims: Sequence[int]) -> str:
    return f"{name}:{','.join(str(d) for d in dims)}"


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f"did you mean {close[0]!r}?" if close else ""


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _values(count: int) -> str:
    return f"{count} value" if count == 1 else f"{count} values"


def _kind(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")
