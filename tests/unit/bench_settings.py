"""perf_analyzer settings as tests write them: the quickstart's defaults, with the fields a test changes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from composer.analyzer.perf_analyzer import BenchSettings
from composer.core.sweep import Sweep

BASE = BenchSettings(
    model="seed_model",
    sweep=Sweep("concurrency", 1, 4, 1),
    protocol="http",
    input_data="dataset/input.json",
    measurement_requests=200,
    measurement_interval_ms=None,
    shapes={},
    extra_args=(),
    timeout_s=600,
    profile_export=False,
)


def bench_settings(**changes: Any) -> BenchSettings:
    return replace(BASE, **changes)
