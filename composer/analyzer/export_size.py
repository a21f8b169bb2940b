"""How big perf_analyzer's profile export will be, before asking for it.

The export holds every request's input tensors and every response's output tensors as JSON
numbers, and perf_analyzer builds it in memory before writing it (≈13× the file: 24 GB of RSS for
NVIDIA's qa/python_models/non_contiguous at 876-request windows, 6,600 FP32 values in and 19,800
out per request, which the OOM killer ended). tisbench asks for it only where the projection fits
a budget; otherwise the run leaves it out, says so, and its report has no per-request charts.
"""

from __future__ import annotations

from collections.abc import Mapping

from composer.analyzer.model_inputs import ModelInputs

BUDGET_BYTES = 128 * 1024**2  # an export up to this size: ≈1.7 GB of perf_analyzer memory
BYTES_PER_VALUE = 8  # one tensor element as JSON text in the export (7.0 measured for FP32 0.0…6599.0)
MAX_TRIALS = 10  # perf_analyzer's default --max-trials: the most windows it measures per point
ASSUMED_REQUESTS_PER_S = 1000  # time windows: the request count is not known before the run


def values_per_request(model: ModelInputs, input_counts: Mapping[str, int]) -> int:
    """Tensor elements one request and its response put into the export: the inputs as the input
    data gives them; each output at its fixed size, or, where a dim is variable, as large as the
    largest input (the shape an output copies or reshapes from, as NVIDIA's examples do)."""
    largest = max(input_counts.values(), default=1)
    outputs = sum(largest if t.is_variable else max(t.fixed_count, 1) for t in model.outputs)
    return sum(input_counts.values()) + outputs


def projected_bytes(values: int, window_mode: str, window_size: int, points: int) -> int:
    """The export of one run of ``points`` sweep points, each measuring up to MAX_TRIALS windows."""
    if window_mode == "count_windows":
        requests = window_size
    else:
        requests = ASSUMED_REQUESTS_PER_S * window_size // 1000
    return values * BYTES_PER_VALUE * requests * MAX_TRIALS * max(points, 1)


def left_out(projected: int) -> str | None:
    """The line saying why the export is left out, or None when it fits the budget."""
    if projected <= BUDGET_BYTES:
        return None
    return (
        f"profile export left out: it would hold ~{projected / 1024**2:,.0f} MB of request and response "
        f"tensors (perf_analyzer builds it in memory, ~13×; budget {BUDGET_BYTES // 1024**2} MB); "
        "the summary comes from its CSV, without the latency histogram and timeline"
    )
