"""perf_analyzer input data: loading, validation against the model, --shape derivation."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import pytest

from composer.analyzer.dataset import (
    derive_shapes,
    format_shape_args,
    load_dataset,
    parse_shape_option,
    read_inputs,
    validate,
)
from composer.analyzer.model_inputs import ModelInputs, Tensor, skeleton
from composer.core.errors import DatasetError, UsageError
from composer.core.shipped import quickstart_stack

SRC = "input.json"

SEED_METADATA: dict[str, Any] = {
    "name": "seed_model",
    "versions": ["1"],
    "platform": "python",
    "inputs": [
        {"name": "data_path", "datatype": "BYTES", "shape": [-1]},
        {"name": "age", "datatype": "FP32", "shape": [-1]},
        {"name": "gender", "datatype": "FP32", "shape": [-1]},
        {"name": "name", "datatype": "BYTES", "shape": [-1]},
    ],
    "outputs": [{"name": "score", "datatype": "FP32", "shape": [-1]}],
}
SEED = ModelInputs.from_metadata(SEED_METADATA, {"name": "seed_model", "max_batch_size": 0})
SEED_STEP: dict[str, Any] = {"data_path": ["file_path"], "age": [32.0], "gender": [0.0], "name": ["kim"]}


def seed_step(**changes: Any) -> dict[str, Any]:
    step = dict(SEED_STEP, **changes)
    return {k: v for k, v in step.items() if v is not None}


def model(*inputs: tuple[str, str, list[int]], outputs: tuple[tuple[str, str, list[int]], ...] = ()) -> ModelInputs:
    """A non-batching model; specs are (name, datatype, dims)."""
    metadata = {
        "name": "m",
        "inputs": [{"name": n, "datatype": d, "shape": s} for n, d, s in inputs],
        "outputs": [{"name": n, "datatype": d, "shape": s} for n, d, s in outputs],
    }
    return ModelInputs.from_metadata(metadata, {"max_batch_size": 0})


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def error_text(exc: pytest.ExceptionInfo[Any]) -> str:
    return str(exc.value.one_line())


# --- model metadata -------------------------------------------------------------------------


def test_seed_metadata_keeps_every_input_with_its_datatype_and_dims() -> None:
    assert SEED.max_batch_size == 0
    assert SEED.inputs[0] == Tensor("data_path", "BYTES", (-1,))
    assert [t.name for t in SEED.inputs] == ["data_path", "age", "gender", "name"]
    assert SEED.outputs == (Tensor("score", "FP32", (-1,)),)


def test_batched_model_drops_the_batch_dim_from_every_tensor() -> None:
    metadata = {
        "name": "b",
        "inputs": [
            {"name": "x", "datatype": "FP32", "shape": [-1, -1]},
            {"name": "y", "datatype": "INT32", "shape": [-1, 2]},
        ],
        "outputs": [{"name": "z", "datatype": "FP32", "shape": [-1, 4]}],
    }
    batched = ModelInputs.from_metadata(metadata, {"max_batch_size": 8})
    assert batched.max_batch_size == 8
    assert [t.dims for t in batched.inputs] == [(-1,), (2,)]
    assert batched.outputs[0].dims == (4,)


def test_grpc_style_string_dims_and_optional_inputs_from_config_are_understood() -> None:
    metadata = {"name": "g", "inputs": [{"name": "x", "datatype": "INT64", "shape": ["-1", "3"]}]}
    config = {"max_batch_size": 4, "input": [{"name": "x", "optional": True}]}
    assert ModelInputs.from_metadata(metadata, config).inputs == (Tensor("x", "INT64", (3,), optional=True),)


def test_malformed_metadata_is_a_dataset_error_naming_the_model() -> None:
    with pytest.raises(DatasetError, match="'broken'"):
        ModelInputs.from_metadata({"name": "broken", "inputs": [{"name": "x"}]}, {})


# --- the seed model ----------------------------------------------------------------------------


def test_seed_dataset_validates_and_gives_every_input_shape_one() -> None:
    dataset = {"data": [SEED_STEP]}
    validate(dataset, SEED, SRC)
    shapes = derive_shapes(dataset, SEED, {})
    assert shapes == {"data_path": [1], "age": [1], "gender": [1], "name": [1]}
    assert format_shape_args(shapes) == [
        "--shape", "data_path:1", "--shape", "age:1", "--shape", "gender:1", "--shape", "name:1",
    ]  # fmt: skip


def test_the_quickstart_stack_dataset_loads_and_validates() -> None:
    path = quickstart_stack() / "dataset" / "input.json"
    dataset = load_dataset(path)
    validate(dataset, SEED, str(path))
    assert set(derive_shapes(dataset, SEED, {})) == {"data_path", "age", "gender", "name"}


# --- shapes from flat lists ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dims", "values", "shape"),
    [
        ([-1], [1.0, 2.0, 3.0], [3]),
        ([-1, 3], [1.0, 2.0, 3.0], [1, 3]),
        ([-1, 3], [0.0] * 6, [2, 3]),
        ([2, -1], [0.0] * 4, [2, 2]),
    ],
)
def test_a_flat_list_fixes_the_one_variable_dim(dims: list[int], values: list[float], shape: list[int]) -> None:
    m = model(("x", "FP32", dims))
    assert derive_shapes({"data": [{"x": values}]}, m, {}) == {"x": shape}


def test_batched_model_shapes_leave_out_the_batch_dim_and_skip_fixed_inputs() -> None:
    metadata = {
        "name": "b",
        "inputs": [
            {"name": "x", "datatype": "FP32", "shape": [-1, -1]},
            {"name": "y", "datatype": "INT32", "shape": [-1, 2]},
        ],
    }
    batched = ModelInputs.from_metadata(metadata, {"max_batch_size": 8})
    dataset = {"data": [{"x": [1.0, 2.0, 3.0], "y": [1, 2]}]}
    validate(dataset, batched, SRC)
    assert derive_shapes(dataset, batched, {}) == {"x": [3]}


def test_batched_model_data_holds_one_batch_1_request_per_step() -> None:
    metadata = {"name": "b", "inputs": [{"name": "y", "datatype": "INT32", "shape": [-1, 2]}]}
    batched = ModelInputs.from_metadata(metadata, {"max_batch_size": 8})
    with pytest.raises(DatasetError) as exc:
        validate({"data": [{"y": [1, 2, 3, 4]}]}, batched, SRC)
    assert "input.json, step 0, input 'y': 4 values but the model shape [2] holds 2" in error_text(exc)


def test_several_variable_dims_and_a_flat_list_ask_for_shape() -> None:
    m = model(("img", "UINT8", [-1, -1]))
    with pytest.raises(DatasetError) as exc:
        derive_shapes({"data": [{"img": [0] * 16}]}, m, {}, source=SRC)
    assert "input.json, step 0, input 'img'" in error_text(exc)
    assert "--shape img:" in error_text(exc)
    assert derive_shapes({"data": [{"img": [0] * 16}]}, m, {"img": [4, 4]}) == {"img": [4, 4]}


# --- content/shape and b64 forms ----------------------------------------------------------------


def test_explicit_shapes_may_differ_per_step_and_need_no_shape_option() -> None:
    m = model(("INPUT", "INT32", [-1, -1]))
    dataset = {
        "data": [
            {"INPUT": {"content": [1] * 16, "shape": [2, 8]}},
            {"INPUT": {"content": [1] * 16, "shape": [8, 2]}},
        ]
    }
    validate(dataset, m, SRC)
    assert derive_shapes(dataset, m, {}) == {}


def test_content_without_shape_is_a_flat_list() -> None:
    m = model(("x", "FP32", [-1]))
    assert derive_shapes({"data": [{"x": {"content": [1.0, 2.0]}}]}, m, {}) == {"x": [2]}


def test_a_flat_step_next_to_explicit_shapes_must_agree_with_them() -> None:
    m = model(("x", "FP32", [-1]))
    agreeing = {"data": [{"x": {"content": [1.0, 2.0], "shape": [2]}}, {"x": [3.0, 4.0]}]}
    assert derive_shapes(agreeing, m, {}) == {"x": [2]}
    clashing = {"data": [{"x": {"content": [1.0, 2.0, 3.0], "shape": [3]}}, {"x": [3.0, 4.0]}]}
    with pytest.raises(DatasetError) as exc:
        derive_shapes(clashing, m, {}, source=SRC)
    assert "input.json, step 0, input 'x': shape [3] differs from [2] set by the list in step 1" in error_text(exc)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"content": [1, 2, 3], "shape": [2, 2]}, "3 values but shape [2, 2] holds 4"),
        ({"content": [1, 2, 3, 4], "shape": [4]}, "shape [4] does not fit the model shape [-1, 2]"),
        ({"content": [1, 2, 3, 4], "shape": [2, 3]}, "shape [2, 3] does not fit the model shape [-1, 2]"),
        ({"content": [1, 2], "shape": [-1, 2]}, '"shape" [-1, 2] is not a list of sizes'),
        ({"shape": [1, 2]}, '"content" is missing'),
        ({"content": [1, 2], "shapes": [1, 2]}, "unknown key 'shapes'"),
        ({"content": "1,2"}, "a string is not tensor data"),
        (7, "a number is not tensor data"),
    ],
)
def test_bad_content_shape_entries_are_refused(value: object, message: str) -> None:
    m = model(("x", "INT32", [-1, 2]))
    with pytest.raises(DatasetError) as exc:
        validate({"data": [{"x": [1, 2]}, {"x": value}]}, m, SRC)
    assert f"input.json, step 1, input 'x': {message}" in error_text(exc)


def test_b64_with_shape_gives_that_shape_and_without_one_the_byte_count_does() -> None:
    m = model(("x", "FP32", [-1]))
    two_floats = b64(struct.pack("<2f", 1.0, 2.0))
    assert derive_shapes({"data": [{"x": {"b64": two_floats}}]}, m, {}) == {"x": [2]}
    for value in ({"b64": two_floats, "shape": [2]}, {"content": {"b64": two_floats}, "shape": [2]}):
        dataset = {"data": [{"x": value}]}
        validate(dataset, m, SRC)
        assert derive_shapes(dataset, m, {}) == {}


def test_b64_bytes_tensors_count_length_prefixed_strings() -> None:
    m = model(("s", "BYTES", [-1]))
    raw = b"".join(struct.pack("<I", len(s)) + s for s in (b"kim", b"lee"))
    assert derive_shapes({"data": [{"s": {"b64": b64(raw)}}]}, m, {}) == {"s": [2]}
    with pytest.raises(DatasetError, match="not length-prefixed"):
        validate({"data": [{"s": {"b64": b64(b"kim")}}]}, m, SRC)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"b64": b64(bytes(6))}, "6 bytes are not a whole number of FP32 values"),
        ({"b64": 12}, '"b64" is not base64'),
        ({"b64": b64(bytes(8)), "shape": [3]}, "2 values but shape [3] holds 3"),
    ],
)
def test_bad_b64_entries_are_refused(value: object, message: str) -> None:
    with pytest.raises(DatasetError) as exc:
        validate({"data": [{"x": value}]}, model(("x", "FP32", [-1])), SRC)
    assert f"input.json, step 0, input 'x': {message}" in error_text(exc)


def test_fp16_takes_b64_but_not_a_json_list() -> None:
    m = model(("h", "FP16", [-1]))
    validate({"data": [{"h": {"b64": b64(bytes(4))}}]}, m, SRC)
    with pytest.raises(DatasetError, match="cannot read FP16 values from a JSON list"):
        validate({"data": [{"h": [1.0]}]}, m, SRC)


# --- value types ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("datatype", "values"),
    [
        ("BYTES", ["kim", ""]),
        ("BOOL", [True, False]),
        ("FP32", [32.0, -1.5, 1e3]),
        ("FP64", [0.0]),
        ("INT8", [-128, 127]),
        ("UINT8", [0, 255]),
        ("INT32", [-(2**31), 2**31 - 1]),
        ("INT64", [2**40]),
        ("UINT64", [2**64 - 1]),
    ],
)
def test_values_of_the_right_type_are_accepted(datatype: str, values: list[Any]) -> None:
    validate({"data": [{"x": values}]}, model(("x", datatype, [-1])), SRC)


@pytest.mark.parametrize(
    ("datatype", "value", "message"),
    [
        ("FP32", 32, "value 1 (32) is not a number with a decimal point"),
        ("FP64", "1.0", 'value 1 ("1.0") is not a number with a decimal point'),
        ("INT32", 1.5, "value 1 (1.5) is not an integer"),
        ("INT32", True, "value 1 (true) is not an integer"),
        ("INT8", 128, "value 1 (128) is not an integer from -128 to 127"),
        ("UINT16", -1, "value 1 (-1) is not an integer from 0 to 65535"),
        ("BOOL", 1, "value 1 (1) is not true or false"),
        ("BYTES", 3, "value 1 (3) is not a string"),
    ],
)
def test_a_value_of_the_wrong_type_names_step_input_and_position(datatype: str, value: object, message: str) -> None:
    good = {"FP32": 0.0, "FP64": 0.0, "INT32": 0, "INT8": 0, "UINT16": 0, "BOOL": False, "BYTES": "a"}[datatype]
    m = model(("x", datatype, [-1]))
    with pytest.raises(DatasetError) as exc:
        validate({"data": [{"x": [good, good]}, {"x": [good, value]}]}, m, SRC)
    assert f"input.json, step 1, input 'x': {message}" in error_text(exc)


def test_an_integer_for_fp32_explains_that_perf_analyzer_refuses_it() -> None:
    with pytest.raises(DatasetError) as exc:
        validate({"data": [seed_step(age=[32])]}, SEED, SRC)
    assert "write 32.0" in error_text(exc)


# --- steps and names --------------------------------------------------------------------------


def test_a_missing_input_names_the_step_and_the_input() -> None:
    with pytest.raises(DatasetError) as exc:
        validate({"data": [SEED_STEP, SEED_STEP, seed_step(gender=None)]}, SEED, SRC)
    assert "input.json, step 2: input 'gender' is missing" in error_text(exc)


def test_an_optional_input_may_be_left_out() -> None:
    metadata = {
        "name": "o",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [1]}, {"name": "y", "datatype": "FP32", "shape": [1]}],
    }
    m = ModelInputs.from_metadata(metadata, {"input": [{"name": "x"}, {"name": "y", "optional": True}]})
    validate({"data": [{"x": [1.0]}]}, m, SRC)


@pytest.mark.parametrize(
    ("key", "hint"),
    [("agee", "did you mean 'age'?"), ("zzz", "the model's inputs are data_path, age, gender, name")],
)
def test_an_unknown_input_is_refused_with_a_suggestion(key: str, hint: str) -> None:
    with pytest.raises(DatasetError) as exc:
        validate({"data": [SEED_STEP, dict(SEED_STEP, **{key: [1.0]})]}, SEED, SRC)
    assert f"input.json, step 1: '{key}' is not an input of the model" in error_text(exc)
    assert hint in error_text(exc)


def test_the_model_key_is_tolerated_in_a_step_as_perf_analyzer_does() -> None:
    validate({"data": [seed_step(model="seed_model")]}, SEED, SRC)


def test_flat_lists_of_different_lengths_across_steps_are_inconsistent() -> None:
    dataset = {"data": [SEED_STEP, SEED_STEP, SEED_STEP, seed_step(age=[1.0, 2.0])]}
    with pytest.raises(DatasetError) as exc:
        validate(dataset, SEED, SRC)
    assert "input.json, input 'age': inconsistent shapes across steps: step 0 has 1 value, step 3 has 2" in error_text(
        exc
    )
    assert '{"content": [...], "shape": [...]}' in error_text(exc)


@pytest.mark.parametrize(
    ("dims", "values", "message"),
    [
        ([4], [1.0, 2.0], "2 values but the model shape [4] holds 4"),
        ([-1], [], "0 values cannot fill the model shape [-1]"),
        ([-1, 3], [1.0, 2.0, 3.0, 4.0], "4 values cannot fill the model shape [-1, 3]"),
    ],
)
def test_a_flat_list_must_fit_the_model_dims(dims: list[int], values: list[float], message: str) -> None:
    with pytest.raises(DatasetError) as exc:
        validate({"data": [{"x": values}]}, model(("x", "FP32", dims)), SRC)
    assert f"input.json, step 0, input 'x': {message}" in error_text(exc)


def test_multi_stream_data_is_checked_and_labelled_by_stream_and_step() -> None:
    m = model(("INPUT", "BYTES", [1]))
    streams = {"data": [[{"INPUT": ["1"]}, {"INPUT": ["2"]}], [{"INPUT": ["1"]}]]}
    validate(streams, m, SRC)
    with pytest.raises(DatasetError) as exc:
        validate({"data": [[{"INPUT": ["1"]}], [{"INPUT": ["1"]}, {"INPUT": [1]}]]}, m, SRC)
    assert "input.json, stream 1 step 1, input 'INPUT': value 0 (1) is not a string" in error_text(exc)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([{"x": [1.0]}, [{"x": [1.0]}]], '"data" mixes steps (objects) and streams (lists)'),
        ([[{"x": [1.0]}], []], "stream 1 is empty"),
        ([{"x": [1.0]}, 3], "step 1: a step is a number, not an object"),
    ],
)
def test_malformed_step_layouts_are_refused(data: list[Any], message: str) -> None:
    with pytest.raises(DatasetError) as exc:
        validate({"data": data}, model(("x", "FP32", [1])), SRC)
    assert f"input.json{', ' if message.startswith('step') else ': '}{message}" in error_text(exc)


# --- validation_data ----------------------------------------------------------------------------


def test_validation_data_aligned_with_data_and_fixed_outputs_is_accepted() -> None:
    m = model(("x", "INT32", [4]), outputs=(("y", "INT32", [4]),))
    validate({"data": [{"x": [1, 1, 1, 1]}], "validation_data": [{"y": [2, 2, 2, 2]}]}, m, SRC)


@pytest.mark.parametrize(
    ("validation_data", "message"),
    [
        ([{"y": [2, 2, 2, 2]}, {"y": [2, 2, 2, 2]}], '"validation_data" does not line up with "data"'),
        ([{}], "validation_data step 0: output 'y' is missing"),
        ([{"y": [2, 2]}], "validation_data step 0, output 'y': 2 values but the model shape [4] holds 4"),
        ([{"y": [2, 2, 2, 2], "q": [1]}], "validation_data step 0: 'q' is not an output of the model"),
    ],
)
def test_bad_validation_data_is_refused(validation_data: list[Any], message: str) -> None:
    m = model(("x", "INT32", [4]), outputs=(("y", "INT32", [4]),))
    with pytest.raises(DatasetError) as exc:
        validate({"data": [{"x": [1, 1, 1, 1]}], "validation_data": validation_data}, m, SRC)
    assert message in error_text(exc)
    assert error_text(exc).startswith("input.json")


def test_validation_data_for_a_variable_output_is_refused_because_perf_analyzer_cannot_size_it() -> None:
    dataset = {"data": [SEED_STEP], "validation_data": [{"score": [1.0]}]}
    with pytest.raises(DatasetError) as exc:
        validate(dataset, SEED, SRC)
    assert "validation_data step 0, output 'score': perf_analyzer cannot validate" in error_text(exc)


# --- user shapes ----------------------------------------------------------------------------------


def test_a_user_shape_wins_and_is_checked_against_the_data() -> None:
    dataset = {"data": [seed_step(age=[1.0, 2.0])]}
    assert derive_shapes(dataset, SEED, {"age": [2]})["age"] == [2]
    with pytest.raises(UsageError) as exc:
        derive_shapes({"data": [SEED_STEP]}, SEED, {"age": [2]}, source=SRC)
    assert (
        "input.json, step 0, input 'age': --shape age:2 makes the shape [2], but this step has 1 value"
        in error_text(exc)
    )


def test_a_user_shape_must_match_every_explicit_shape_in_the_data() -> None:
    m = model(("x", "INT32", [-1, -1]))
    dataset = {"data": [{"x": {"content": [1] * 4, "shape": [2, 2]}}, {"x": {"content": [1] * 4, "shape": [1, 4]}}]}
    with pytest.raises(UsageError) as exc:
        derive_shapes(dataset, m, {"x": [2, 2]}, source=SRC)
    assert "input.json, step 1, input 'x': shape [1, 4] differs from [2, 2] set by --shape x:2,2" in error_text(exc)


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ({"age": [1, 1]}, "--shape age:1,1 does not fit the model shape [-1]"),
        ({"age": [0]}, "--shape age:0 does not fit the model shape [-1]"),
        ({"agee": [1]}, "--shape agee: the model has no input 'agee' — did you mean 'age'?"),
    ],
)
def test_bad_user_shapes_are_usage_errors(user: dict[str, list[int]], message: str) -> None:
    with pytest.raises(UsageError) as exc:
        derive_shapes({"data": [SEED_STEP]}, SEED, user)
    assert message in error_text(exc)


def test_a_user_shape_for_a_fixed_input_must_equal_its_dims() -> None:
    m = model(("x", "FP32", [-1, 3]), ("y", "FP32", [2]))
    dataset = {"data": [{"x": [0.0] * 3, "y": [0.0, 0.0]}]}
    assert derive_shapes(dataset, m, {"x": [1, 3], "y": [2]}) == {"x": [1, 3]}
    with pytest.raises(UsageError, match=r"--shape x:1,4 does not fit the model shape \[-1, 3\]"):
        derive_shapes(dataset, m, {"x": [1, 4]})


# --- --shape parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("age:1", ("age", [1])), ("x:3,224,224", ("x", [3, 224, 224])), ("ns:input:2", ("ns:input", [2]))],
)
def test_shape_option_parses_name_and_dims(text: str, expected: tuple[str, list[int]]) -> None:
    assert parse_shape_option(text) == expected


@pytest.mark.parametrize("text", ["age", "age:", ":1", "age:0", "age:-1", "age:1,x", "age:1,,2"])
def test_bad_shape_option_names_the_flag_and_the_form(text: str) -> None:
    with pytest.raises(UsageError) as exc:
        parse_shape_option(text)
    assert f"--shape {text!r}" in error_text(exc)
    assert "NAME:DIMS" in error_text(exc)


# --- skeleton -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "m",
    [
        SEED,
        model(("img", "UINT8", [-1, -1, 3]), ("flag", "BOOL", [1]), ("h", "FP16", [-1, 2]), ("n", "INT64", [2, 2])),
        ModelInputs.from_metadata(
            {"name": "b", "inputs": [{"name": "x", "datatype": "FP64", "shape": [-1, -1]}]}, {"max_batch_size": 8}
        ),
    ],
)
def test_skeleton_round_trips_through_validate_and_derive_shapes(m: ModelInputs, tmp_path: Path) -> None:
    path = tmp_path / "input.json"
    path.write_text(json.dumps(skeleton(m)))
    dataset = load_dataset(path)
    validate(dataset, m, str(path))
    shapes = derive_shapes(dataset, m, {})
    for tensor in m.inputs:
        value = dataset["data"][0][tensor.name]
        needs_shape = tensor.is_variable and isinstance(value, list)
        assert shapes.get(tensor.name) == ([1 if d == -1 else d for d in tensor.dims] if needs_shape else None)


def test_seed_skeleton_gives_shape_one_for_every_input() -> None:
    assert derive_shapes(skeleton(SEED), SEED, {}) == {"data_path": [1], "age": [1], "gender": [1], "name": [1]}


# --- loading --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"data": [\n  {"age": [1.0],}\n]}',
            "is not valid JSON: Expecting property name enclosed in double quotes at line 2 column",
        ),
        ("[1, 2]", "the top level is a list, not an object"),
        ('{"steps": []}', "unknown top-level key 'steps'"),
        ('{"validation_dta": [], "data": [{}]}', "did you mean 'validation_data'?"),
        ('{"validation_data": [{}]}', '"data" is missing'),
        ('{"data": []}', '"data" is an empty list'),
        ('{"data": {"age": [1.0]}}', '"data" is an object'),
    ],
)
def test_load_refuses_files_perf_analyzer_cannot_use(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "input.json"
    path.write_text(text)
    with pytest.raises(DatasetError) as exc:
        load_dataset(path)
    assert str(path) in error_text(exc)
    assert message in error_text(exc)


def test_load_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "nope.json")


def test_load_refuses_a_directory(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="is a directory"):
        load_dataset(tmp_path)


def test_load_refuses_non_utf8_text(tmp_path: Path) -> None:
    path = tmp_path / "input.json"
    path.write_bytes(b'{"data": ["\xff"]}')
    with pytest.raises(DatasetError, match="is not UTF-8"):
        load_dataset(path)


def test_load_reports_an_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "input.json"
    path.write_text('{"data": [{}]}')

    def refuse(*_: object, **__: object) -> str:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_text", refuse)
    with pytest.raises(DatasetError) as exc:
        load_dataset(path)
    assert f"cannot read {path}: Permission denied" in error_text(exc)


def test_read_inputs_gives_derive_shapes_and_each_inputs_largest_count_from_one_walk() -> None:
    m = ModelInputs(inputs=(Tensor("x", "FP32", (-1,)), Tensor("y", "INT32", (2,))), outputs=(), max_batch_size=0)
    dataset = {"data": [{"x": {"content": [1.0, 2.0], "shape": [2]}, "y": [1, 2]},
                        {"x": {"content": [1.0, 2.0, 3.0], "shape": [3]}, "y": [3, 4]}]}
    assert read_inputs(dataset, m, {}, derive=True, source=SRC) == (derive_shapes(dataset, m, {}), {"x": 3, "y": 2})
    assert read_inputs(dataset, m, {"x": [3]}, derive=False, source=SRC) == ({"x": [3]}, {"x": 3, "y": 2})
    with pytest.raises(DatasetError, match="input 'y'"):  # validated either way
        read_inputs({"data": [{"x": [1.0], "y": [1, 2, 3]}]}, m, {}, derive=False, source=SRC)
