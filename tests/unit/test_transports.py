"""The transports one lab compares: every protocol with every kind of shared memory, interleaved."""

from __future__ import annotations

from typing import Any

import pytest
from bench_settings import bench_settings

from composer.labs import repeats
from composer.labs.repeats import Repeat, run_repeats, variants


def test_one_transport_is_the_run_as_it_is_and_several_are_every_combination() -> None:
    base = bench_settings(protocol="http", shared_memory="system", output_shm_bytes=65536)
    ((label, only),) = variants(base, (), ())
    assert label == "" and (only.protocol, only.shared_memory) == ("http", "system")
    compared = variants(base, ("http", "grpc"), ("none", "system"))
    assert [label for label, _ in compared] == ["http", "http+system shm", "grpc", "grpc+system shm"]
    assert [(s.protocol, s.shared_memory, s.output_shm_bytes) for _, s in compared] == [
        ("http", "none", None),
        ("http", "system", 65536),
        ("grpc", "none", None),
        ("grpc", "system", 65536),
    ]


def test_transports_and_repeats_interleave_with_their_own_attempt_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[tuple[int, str]] = []

    def fake(settings: Any, retries: int, runner: Any, on_result: Any, say: Any, number: int, keep: bool) -> Any:
        ran.append((number, settings.protocol))
        result = type("R", (), {"attempt": type("A", (), {"number": number})()})()
        return [result], []

    monkeypatch.setattr(repeats, "run_attempts", fake)  # the sweeps' order is what is tested, not perf_analyzer
    compared = variants(bench_settings(), ("http", "grpc"), ())
    done = run_repeats(compared, 3, 2, None, print, print, lambda: "")  # type: ignore[arg-type]
    assert ran == [(1, "http"), (2, "grpc"), (3, "http"), (4, "grpc")]  # A B A B
    assert [(r.number, r.label) for r in done] == [(1, "http"), (1, "grpc"), (2, "http"), (2, "grpc")]
    assert all(isinstance(r, Repeat) for r in done)
