"""Input-data steps as tensors, and shared memory's output regions sized from real answers."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bench_settings import bench_settings

from composer.analyzer.model_inputs import ModelInputs, Tensor
from composer.analyzer.probe import flat_steps, needs_sizing, step_tensors, wire_bytes
from composer.core.errors import UsageError
from composer.core.sweep import Sweep
from composer.labs.shared_memory import check_shared_ipc, size_regions

VARIABLE = ModelInputs((Tensor("IN", "FP32", (-1,)),), (Tensor("OUT", "FP32", (-1,)),), 0)
STRINGS = ModelInputs((Tensor("TEXT", "BYTES", (1,)),), (Tensor("ECHO", "BYTES", (1,)),), 8)


def test_a_flat_list_takes_the_shape_flag_and_a_batching_model_a_batch_dim() -> None:
    (tensor,) = step_tensors({"IN": [1, 2, 3, 4]}, VARIABLE, {"IN": [2, 2]})
    assert tensor.array.shape == (2, 2) and tensor.array.dtype == np.float32
    (text,) = step_tensors({"TEXT": ["kim"]}, STRINGS, {})
    assert text.array.shape == (1, 1) and text.array[0, 0] == b"kim"


def test_content_shape_and_b64_forms_are_read_as_perf_analyzer_reads_them() -> None:
    (shaped,) = step_tensors({"IN": {"content": [1, 2, 3], "shape": [3]}}, VARIABLE, {})
    assert shaped.array.tolist() == [1, 2, 3]
    raw = np.array([1.5, 2.5], dtype="<f4").tobytes()
    (b64,) = step_tensors({"IN": {"b64": base64.b64encode(raw).decode()}}, VARIABLE, {})
    assert b64.array.tolist() == [1.5, 2.5]
    strings = struct.pack("<I", 2) + b"hi"
    (text,) = step_tensors({"TEXT": {"b64": base64.b64encode(strings).decode()}}, STRINGS, {})
    assert text.array.reshape(-1).tolist() == [b"hi"]


def test_streams_are_flattened_in_order() -> None:
    assert flat_steps({"data": [[{"a": 1}, {"a": 2}], [{"a": 3}]]}) == [{"a": 1}, {"a": 2}, {"a": 3}]


def test_bytes_outputs_take_their_length_prefixes() -> None:
    assert wire_bytes(np.array([b"abc", b"de"], dtype=np.object_), "BYTES") == 4 + 3 + 4 + 2
    assert wire_bytes(np.zeros(16, dtype=np.float32), "FP32") == 64
    assert needs_sizing(VARIABLE) and needs_sizing(STRINGS)
    assert not needs_sizing(ModelInputs((), (Tensor("O", "FP32", (16,)),), 0))


def _settings(shapes: dict[str, list[int]]) -> Any:
    return bench_settings(shapes=shapes, shared_memory="system", sweep=Sweep("concurrency", 1, 4, 1))


def test_output_regions_are_sized_from_the_largest_answer_of_the_data(tmp_path: Path) -> None:
    data = tmp_path / "input.json"
    data.write_text(json.dumps({"data": [{"IN": [1.0] * 10}, {"IN": [1.0] * 30000}]}))
    asked: list[int] = []

    def infer(tensors: Any) -> dict[str, Any]:  # an identity model: the answer as large as the request
        asked.append(tensors[0].array.size)
        return {"OUT": tensors[0].array}

    regions = size_regions(_settings({}), VARIABLE, data, infer, 1 << 30)
    assert asked == [10, 30000] and regions.probed_steps == 2
    assert regions.output_bytes == 122880  # 120,000 bytes, to whole 4 KB pages: not perf_analyzer's 100 KB default
    assert regions.input_bytes == 4 * 30010


def test_regions_larger_than_the_servers_dev_shm_are_refused_naming_the_field(tmp_path: Path) -> None:
    data = tmp_path / "input.json"
    data.write_text(json.dumps({"data": [{"IN": [1.0] * 300000}]}))
    with pytest.raises(UsageError) as raised:
        size_regions(_settings({}), VARIABLE, data, lambda t: {"OUT": t[0].array}, 1 << 20)
    assert raised.value.message.startswith("server.shm_size: 1,048,576 bytes of /dev/shm are below")
    assert raised.value.hint == "raise server.shm_size to at least 3m"


def test_a_lab_without_a_shared_ipc_namespace_is_refused() -> None:
    server = {"Id": "abc", "Name": "/lab-triton_server-1"}
    check_shared_ipc(server, {"HostConfig": {"IpcMode": "container:lab-triton_server-1"}}, "lab")
    with pytest.raises(UsageError, match="does not share the server's IPC namespace"):
        check_shared_ipc(server, {"HostConfig": {"IpcMode": "private"}}, "lab")


def test_the_bench_modules_do_not_import_numpy() -> None:
    """`tisbench lab` imports them on a thread while Triton boots, beside the main thread's import of
    tritonclient (numpy): two threads initializing numpy at once fail (seen: "numpy._core.umath
    failed to import", exit 70)."""
    import subprocess
    import sys

    code = "import sys, composer.labs.bench, composer.reports.run_report; print('numpy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
