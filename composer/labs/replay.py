"""Requests of the input data sent once from this machine through tritonclient, step by step: to
size shared memory's output regions from real answers, and to find which output and step a
validation mismatch is (perf_analyzer names neither)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from composer.analyzer.inputs import container_input_path
from composer.analyzer.model_inputs import ModelInputs
from composer.analyzer.perf_analyzer import BenchSettings
from composer.analyzer.probe import StepTensor
from composer.analyzer.validation import first_mismatch
from composer.engine import containers as engine
from composer.labs.handle import LabHandle

Infer = Callable[[list[StepTensor]], dict[str, Any]]


def infer_with(http: Any, triton: Any, model: str, inputs: ModelInputs) -> Infer:
    """One request of a step's tensors; its outputs as {name: numpy array}. ``http`` is
    tritonclient.http, ``triton`` its client on the lab's server."""

    def infer(tensors: list[StepTensor]) -> dict[str, Any]:
        sent = []
        for t in tensors:
            item = http.InferInput(t.name, list(t.array.shape), t.datatype)
            item.set_data_from_numpy(t.array)
            sent.append(item)
        result = triton.infer(model, sent)
        answered = {o.name: result.as_numpy(o.name) for o in inputs.outputs}
        return {name: array for name, array in answered.items() if array is not None}

    return infer


def server_client(lab: LabHandle) -> tuple[Any, Any]:
    """tritonclient.http and a client of it on the lab's server, through its published HTTP port."""
    from composer.engine.tritonhttp import http_module

    http = http_module()
    url = f"{engine.probe_host(lab.stack.server.host)}:{lab.http_port}"
    return http, http.InferenceServerClient(url=url, connection_timeout=5, network_timeout=30)


def data_file(lab: LabHandle, input_data: Path | None) -> Path:
    return container_input_path(lab.stack, input_data)[0]


def explain_mismatch(
    lab: LabHandle, input_data: Path | None, settings: BenchSettings, inputs: ModelInputs
) -> str | None:
    """The first output and step that differ from validation_data, or None (also when the replay
    itself fails: perf_analyzer's own words then stand)."""
    http, triton = server_client(lab)
    try:
        dataset = json.loads(data_file(lab, input_data).read_text(encoding="utf-8"))
        return first_mismatch(dataset, inputs, settings.shapes, infer_with(http, triton, lab.stack.model, inputs))
    except Exception:  # noqa: BLE001 - a replay that cannot run leaves perf_analyzer's own message
        return None
    finally:
        triton.close()
