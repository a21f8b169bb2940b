"""A model's config.pbtxt → the metadata and config JSON Triton would serve for it. Pure.

For labs whose server the host cannot reach (a Swarm service in dnsrr mode publishes no port),
shapes are derived from the model repository itself. The text is parsed with protobuf's
``text_format`` into Triton's own ``ModelConfig`` message, so the grammar and every field name
are Triton's, and the dicts have the form ``ModelInputs.from_metadata`` reads from a live server.

``model_config_pb2`` ships inside tritonclient as ``tritonclient/grpc/model_config_pb2.py``, but
importing it through ``tritonclient.grpc`` runs that package's ``__init__``, which needs grpcio
(only the HTTP client is a dependency). The generated module itself needs nothing but protobuf,
so it is loaded from its file.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from composer.core.errors import ConfigError

CONFIG_FILE = "config.pbtxt"
_PB2 = "tritonclient.grpc.model_config_pb2"


@cache
def _model_config_pb2() -> ModuleType:
    if _PB2 in sys.modules:  # tritonclient.grpc was imported: reuse its descriptors
        return sys.modules[_PB2]
    try:
        package = importlib.util.find_spec("tritonclient")
        roots = list(package.submodule_search_locations or []) if package else []
        path = next(Path(r) / "grpc" / "model_config_pb2.py" for r in roots if (Path(r) / "grpc").is_dir())
        spec = importlib.util.spec_from_file_location("_tisbench_model_config_pb2", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except (StopIteration, ImportError, AssertionError) as exc:
        raise ConfigError(
            f"cannot load Triton's model config schema from tritonclient ({exc})",
            "install tisbench's dependencies (protobuf ≥ 6.33.5 with tritonclient ≥ 2.73)",
        ) from None
    return module


def new_model_config() -> Any:
    """An empty ``inference.ModelConfig`` message (Triton's own schema)."""
    return _model_config_pb2().ModelConfig()


def parse_model_config(text: str, source: str, model: str) -> dict[str, Any]:
    """config.pbtxt text → the config JSON (``get_model_config``'s form, defaults included)."""
    from google.protobuf import json_format, text_format

    pb2 = _model_config_pb2()
    message = pb2.ModelConfig()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as exc:
        reason = re.sub(r"^\d+:\d+ : (?:'.*?': )?", "", str(exc))
        raise ConfigError(
            f"{source}:{exc.GetLine()}:{exc.GetColumn()}: {reason}",
            "fix the model configuration (Triton would refuse it too)",
        ) from None
    if message.name and message.name != model:
        raise ConfigError(
            f"{source}: name {message.name!r} differs from its directory {model!r}",
            "Triton refuses this model; make them equal",
        )
    message.name = model
    config: dict[str, Any] = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    for tensor in config.get("input", []) + config.get("output", []):
        tensor["dims"] = [int(d) for d in tensor.get("dims", [])]  # int64 comes out as strings
    return config


def metadata_from_config(config: dict[str, Any], versions: list[str]) -> dict[str, Any]:
    """The ``get_model_metadata`` JSON Triton derives from a config: batch dim -1 first when batching."""
    batch = [-1] if int(config.get("max_batch_size", 0)) > 0 else []

    def tensors(key: str) -> list[dict[str, Any]]:
        return [
            {
                "name": t["name"],
                "datatype": _datatype(str(t.get("data_type", "TYPE_INVALID"))),
                "shape": batch + [int(d) for d in t.get("dims", [])],
            }
            for t in config.get(key, [])
        ]

    return {
        "name": config["name"],
        "versions": versions,
        "platform": config.get("platform") or config.get("backend", ""),
        "inputs": tensors("input"),
        "outputs": tensors("output"),
    }


def _datatype(config_type: str) -> str:
    """TYPE_FP32 → FP32; TYPE_STRING is BYTES on the wire."""
    name = config_type.removeprefix("TYPE_")
    return "BYTES" if name == "STRING" else name


def model_versions(model_dir: Path) -> list[str]:
    """Numeric version directories, ascending (Triton's layout)."""
    return sorted((p.name for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=int)


@dataclass(frozen=True)
class DiskModel:
    """A model as its repository directory tells it: the complete config, or why Triton completes it.

    Triton auto-completes a configuration that is missing, empty or partial (a python model's
    ``auto_complete_config``), so only the server's ``GET /v2/models/<m>/config`` after load is
    the whole truth then; ``completed_by_triton`` says why, and ``metadata``/``config`` are None.
    """

    metadata: dict[str, Any] | None
    config: dict[str, Any] | None
    completed_by_triton: str | None = None

    @property
    def source(self) -> str:
        return (
            CONFIG_FILE if self.completed_by_triton is None else f"server (auto-completed: {self.completed_by_triton})"
        )


_AUTO_COMPLETE = re.compile(r"^\s*def\s+auto_complete_config\s*\(", re.MULTILINE)


def _defines_auto_complete(model_dir: Path) -> bool:
    """A python model whose model.py (any version) has Triton fill in its config at load."""
    for version in model_versions(model_dir):
        try:
            if _AUTO_COMPLETE.search((model_dir / version / "model.py").read_text(encoding="utf-8")):
                return True
        except (OSError, UnicodeDecodeError):
            continue
    return False


def read_disk_model(models_dir: Path, model: str) -> DiskModel:
    """What config.pbtxt says of ``model``, when it says all of it; a config Triton would refuse raises."""
    model_dir = models_dir / model
    path = model_dir / CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return DiskModel(None, None, f"{model} has no {CONFIG_FILE}")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path} ({exc})", "check the file") from None
    config = parse_model_config(text, str(path), model)
    if config == parse_model_config("", str(path), model):  # nothing set but comments and blanks
        return DiskModel(None, None, f"{path.name} of {model} is empty")
    if _defines_auto_complete(model_dir):
        return DiskModel(None, None, f"{model}'s model.py defines auto_complete_config")
    if not config.get("input") or not config.get("output"):
        missing = "inputs" if not config.get("input") else "outputs"
        return DiskModel(None, None, f"{path.name} of {model} declares no {missing}")
    return DiskModel(metadata_from_config(config, model_versions(model_dir)), config)


def read_model_facts(models_dir: Path, model: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metadata, config) for ``model`` of a model repository, read from its config.pbtxt; for
    labs whose server cannot be asked (swarm), so an auto-completed config is an error here."""
    disk = read_disk_model(models_dir, model)
    if disk.metadata is None or disk.config is None:
        raise ConfigError(
            f"{models_dir / model}: {disk.completed_by_triton}, so its inputs are known only to a running server, "
            "which this lab cannot ask",
            "write a complete config.pbtxt (inputs and outputs), or use --engine local",
        )
    return disk.metadata, disk.config
