"""The keys of stack.yaml's ``tune:`` section, each also a `tisbench tune` flag. Pure and light:
`tisbench --help` reads it without loading the stack reader (yaml)."""

TUNE_KEYS = (
    "latency_budget_ms",
    "min_throughput",
    "objective",
    "mode",
    "percentile",
    "instances",
    "max_batch_size",
    "dynamic_batching",
    "concurrency",
    "max_measurements",
)
