"""config.pbtxt read locally gives the metadata and config a live Triton serves for the same model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from composer.analyzer.model_inputs import ModelInputs
from composer.core.errors import ConfigError
from composer.core.modelconfig import metadata_from_config, parse_model_config, read_disk_model, read_model_facts
from composer.core.shipped import quickstart_stack

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
SEED = (quickstart_stack() / "models", "seed_model")
BATCHED = (REPO / "tests" / "e2e" / "stacks" / "batched" / "models", "batched_model")


def _fixture(name: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize(
    ("repo", "fixture"), [(SEED, "seed_model"), (BATCHED, "batched_model")], ids=["seed", "batched"]
)
def test_local_facts_equal_what_triton_2_51_served(repo: tuple[Path, str], fixture: str) -> None:
    """The fixtures are get_model_metadata / get_model_config answers of a real tritonserver 2.51."""
    metadata, config = read_model_facts(*repo)
    served_config = _fixture(f"{fixture}_config.json")
    assert metadata == _fixture(f"{fixture}_metadata.json")
    assert config["input"] == served_config["input"]
    assert config["output"] == served_config["output"]
    assert config["max_batch_size"] == served_config["max_batch_size"]
    assert ModelInputs.from_metadata(metadata, config) == ModelInputs.from_metadata(
        _fixture(f"{fixture}_metadata.json"), served_config
    )


def test_batching_model_gets_a_leading_variable_batch_dim() -> None:
    metadata, _ = read_model_facts(*BATCHED)
    assert [t["shape"] for t in metadata["inputs"]] == [[-1, -1], [-1, 2]]


def test_string_inputs_are_bytes_on_the_wire() -> None:
    metadata, _ = read_model_facts(*SEED)
    assert {t["name"]: t["datatype"] for t in metadata["inputs"]} == {
        "data_path": "BYTES",
        "age": "FP32",
        "gender": "FP32",
        "name": "BYTES",
    }


def test_optional_input_is_kept_for_the_dataset_check() -> None:
    config = parse_model_config(
        'input [{ name: "a" data_type: TYPE_INT64 dims: [ 3 ] optional: true }]', "config.pbtxt", "m"
    )
    inputs = ModelInputs.from_metadata(metadata_from_config(config, ["1"]), config)
    assert inputs.inputs[0].optional and inputs.inputs[0].dims == (3,)
    assert inputs.inputs[0].datatype == "INT64"


def test_missing_name_is_the_directory_name() -> None:
    config = parse_model_config('input [{ name: "a" data_type: TYPE_FP32 dims: [ 1 ] }]', "config.pbtxt", "dir_name")
    assert config["name"] == "dir_name"


FULL = (
    'backend: "python"\ninput [{ name: "a" data_type: TYPE_FP32 dims: [ 1 ] }]\n'
    'output [{ name: "b" data_type: TYPE_FP32 dims: [ 1 ] }]\n'
)


def _model(tmp_path: Path, text: str | None, versions: tuple[str, ...] = ("1",)) -> Path:
    model = tmp_path / "models" / "m"
    model.mkdir(parents=True)
    for version in versions:
        (model / version).mkdir()
    if text is not None:
        (model / "config.pbtxt").write_text(text, encoding="utf-8")
    return tmp_path / "models"


def test_versions_are_sorted_as_numbers(tmp_path: Path) -> None:
    models = _model(tmp_path, FULL, ("10", "2", "1", "notes"))
    metadata, _ = read_model_facts(models, "m")
    assert metadata["versions"] == ["1", "2", "10"]


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        pytest.param('input [{ name: "a" data_typ: TYPE_FP32 }]', "config.pbtxt:1:", id="unknown-field"),
        pytest.param('input [{ name: "a" data_type: FP32 }]', "config.pbtxt:1:", id="bad-enum"),
        pytest.param('name: "other"\ninput [{ name: "a" }]', "differs from its directory 'm'", id="name-mismatch"),
        pytest.param('backend: "onnxruntime"', "declares no inputs", id="auto-complete-only"),
    ],
)
def test_bad_config_is_a_config_error_naming_the_file(tmp_path: Path, text: str | None, expect: str) -> None:
    models = _model(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        read_model_facts(models, "m")
    assert expect in raised.value.message
    assert str(models / "m") in raised.value.message
    assert raised.value.hint


@pytest.mark.parametrize(
    ("text", "model_py", "why"),
    [
        pytest.param(None, "", "m has no config.pbtxt", id="missing"),
        pytest.param("", "", "config.pbtxt of m is empty", id="empty"),
        pytest.param("# only a comment\n\n", "", "config.pbtxt of m is empty", id="comments-only"),
        pytest.param('backend: "python"', "", "config.pbtxt of m declares no inputs", id="backend-only"),
        pytest.param(
            FULL,
            "class TritonPythonModel:\n    @staticmethod\n    def auto_complete_config(c):\n        return c\n",
            "m's model.py defines auto_complete_config",
            id="python-auto-complete",
        ),
    ],
)
def test_a_config_triton_completes_is_deferred_to_the_server(
    tmp_path: Path, text: str | None, model_py: str, why: str
) -> None:
    models = _model(tmp_path, text)
    (models / "m" / "1").mkdir(exist_ok=True)
    (models / "m" / "1" / "model.py").write_text(model_py, encoding="utf-8")

    disk = read_disk_model(models, "m")

    assert (disk.metadata, disk.config, disk.completed_by_triton) == (None, None, why)
    assert disk.source == f"server (auto-completed: {why})"


def test_a_complete_config_is_read_from_disk(tmp_path: Path) -> None:
    models = _model(tmp_path, FULL)

    disk = read_disk_model(models, "m")

    assert disk.completed_by_triton is None and disk.source == "config.pbtxt"
    assert disk.metadata is not None and [t["name"] for t in disk.metadata["inputs"]] == ["a"]
