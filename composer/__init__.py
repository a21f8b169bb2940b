"""tisbench: reproducible, isolated Triton + perf_analyzer benchmark labs."""

__version__ = "0.1.0"
