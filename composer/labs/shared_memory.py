"""Shared memory for one benchmark: the lab must share the server's IPC namespace with the analyzer
(its design does, composer.core.designer), the output regions are sized from what the model really
answers for the input data (one request per step, up to PROBE_STEPS, from this machine), and the
regions must fit the server's /dev/shm. Refused with one line, before perf_analyzer runs."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer.analyzer.model_inputs import ModelInputs
from composer.analyzer.perf_analyzer import BenchSettings
from composer.analyzer.probe import (
    PROBE_STEPS,
    flat_steps,
    input_bytes,
    needs_sizing,
    step_tensors,
    wire_bytes,
)
from composer.core.errors import AnalyzerError, UsageError
from composer.labs.handle import LabHandle
from composer.labs.replay import Infer, data_file, infer_with

PAGE = 4096


@dataclass(frozen=True)
class Regions:
    kind: str
    output_bytes: int | None  # --output-shared-memory-size; None: perf_analyzer sizes the outputs itself
    input_bytes: int
    needed_bytes: int
    shm_size: int
    probed_steps: int

    def record(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "output_region_bytes": self.output_bytes,
            "input_bytes": self.input_bytes,
            "needed_bytes": self.needed_bytes,
            "server_shm_size": self.shm_size,
            "probed_steps": self.probed_steps,
        }


def check_shared_ipc(server: dict[str, Any], analyzer: dict[str, Any], lab: str) -> None:
    """The analyzer must run in the server's IPC namespace (a lab brought up without shared memory does not)."""
    mode = str(analyzer.get("HostConfig", {}).get("IpcMode") or "")
    server_ids = (server.get("Id", ""), server.get("Name", "").lstrip("/"))
    if not mode.startswith("container:") or mode.partition(":")[2] not in server_ids:
        raise UsageError(
            f"lab {lab}: its analyzer does not share the server's IPC namespace, so shared memory cannot work",
            "bring the lab up with analyzer.shared_memory set in stack.yaml (tisbench down, then up), "
            "or run tisbench lab --shared-memory system",
        )


def size_regions(
    settings: BenchSettings, model: ModelInputs, data_file: Path, infer: Infer, shm_size: int
) -> Regions:
    """The regions of this run; ``infer(tensors)`` sends one request and returns its outputs as
    {name: numpy array}."""
    dataset = json.loads(data_file.read_text(encoding="utf-8"))
    steps = [step_tensors(step, model, settings.shapes) for step in flat_steps(dataset)]
    inputs = input_bytes(steps)
    output = None
    probed = 0
    if needs_sizing(model):
        largest = 0
        for tensors in steps[:PROBE_STEPS]:
            try:
                answered = infer(tensors)
            except Exception as exc:  # the client's errors: an InferenceServerException, a socket error
                raise AnalyzerError(f"sizing shared memory: the model refused a request of the data ({exc})") from None
            probed += 1
            by_name = {t.name: t.datatype for t in model.outputs}
            largest = max([largest, *(wire_bytes(a, by_name.get(n, "")) for n, a in answered.items())])
        output = max(PAGE, math.ceil(largest / PAGE) * PAGE)
    # perf_analyzer registers one region per input of every step and one per output, shared by all
    # requests in flight (its infer_data_manager_shm), so the need does not grow with the load.
    outputs = (output or _fixed_output_bytes(model)) * max(len(model.outputs), 1)
    needed = inputs + outputs
    if needed > shm_size:
        raise UsageError(
            f"server.shm_size: {shm_size:,} bytes of /dev/shm are below the {needed:,} that perf_analyzer's "
            f"shared-memory regions need (inputs {inputs:,}, outputs {outputs:,})",
            f"raise server.shm_size to at least {math.ceil(needed / 2**20)}m",
        )
    return Regions(settings.shared_memory, output, inputs, needed, shm_size, probed)


def _fixed_output_bytes(model: ModelInputs) -> int:
    from composer.analyzer.model_inputs import ELEMENT_SIZE

    sizes = [math.prod(t.dims) * ELEMENT_SIZE.get(t.datatype, 8) for t in model.outputs if not t.is_variable]
    return max(sizes, default=PAGE) * max(model.max_batch_size, 1)


def regions_for(
    lab: LabHandle,
    input_data: Path | None,
    settings: BenchSettings,
    inputs: ModelInputs,
    containers: dict[str, dict[str, Any]],
    http: Any,
    triton: Any,
) -> Regions | None:
    """Shared memory's regions for this run, sized and checked (None: the run uses none); ``http``
    is tritonclient.http, ``triton`` its client on the lab's server."""
    if settings.shared_memory == "none":
        return None
    check_shared_ipc(containers["server"], containers["sdk"], lab.name)

    shm = int(containers["server"].get("HostConfig", {}).get("ShmSize") or 0)
    infer = infer_with(http, triton, lab.stack.model, inputs)
    return size_regions(settings, inputs, data_file(lab, input_data), infer, shm)
