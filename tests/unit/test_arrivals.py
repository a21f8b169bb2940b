"""Arrival patterns: constant or Poisson request-rate sweeps, interval files, checked before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from composer.core.arrivals import Arrivals, read_intervals, resolve
from composer.core.errors import DatasetError, ExitStatus, UsageError


def _dataset(tmp_path: Path, text: str | None = "1000\n2000\n\n3000\n") -> Path:
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    if text is not None:
        (dataset / "intervals.txt").write_text(text)
    return dataset


def test_an_interval_file_is_read_as_perf_analyzer_reads_it(tmp_path: Path) -> None:
    arrivals = resolve(_dataset(tmp_path), "constant", tmp_path / "dataset" / "intervals.txt", "concurrency", False)
    assert arrivals.argv() == ["--request-intervals", "dataset/intervals.txt"]
    record = arrivals.record("concurrency")
    assert record["mode"] == "request_intervals" and record["intervals"] == 3
    assert record["mean_interval_us"] == 2000 and record["rate_infer_per_sec"] == 500


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("1000\nfast\n", "intervals.txt, line 2: 'fast' is not an interval"),
        ("0\n", "line 1: '0' is not an interval"),
        ("-5\n", "line 1: '-5' is not an interval"),
        ("1.5\n", "line 1: '1.5' is not an interval"),
        ("\n\n", "holds no interval"),
    ],
)
def test_a_malformed_interval_file_is_bad_input_naming_the_line(tmp_path: Path, text: str, said: str) -> None:
    dataset = _dataset(tmp_path, text)
    with pytest.raises(DatasetError) as raised:
        resolve(dataset, "constant", dataset / "intervals.txt", "concurrency", False)
    assert said in raised.value.message and raised.value.exit_code == ExitStatus.BAD_INPUT
    assert raised.value.message.startswith("analyzer.request_intervals: ")


def test_an_interval_file_outside_dataset_or_missing_is_refused(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path)
    (tmp_path / "elsewhere.txt").write_text("1000\n")
    with pytest.raises(UsageError, match="is outside"):
        resolve(dataset, "constant", tmp_path / "elsewhere.txt", "concurrency", False, "--")
    with pytest.raises(DatasetError, match="does not exist"):
        read_intervals(dataset / "none.txt", "--request-intervals")


def test_poisson_takes_a_request_rate_sweep_only() -> None:
    assert Arrivals("poisson").argv() == ["--request-distribution", "poisson"]
    Arrivals("poisson").check("request_rate", True, "--")
    with pytest.raises(UsageError) as raised:
        Arrivals("poisson").check("concurrency", False, "--")
    assert raised.value.message == "--request-distribution: poisson needs a request-rate sweep"
    assert Arrivals("constant").argv() == []


def test_an_interval_file_is_the_load_itself_not_beside_a_sweep_or_a_distribution(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path)
    with pytest.raises(UsageError, match="an interval file sets the load itself"):
        resolve(dataset, "constant", dataset / "intervals.txt", "request_rate", True)
    with pytest.raises(UsageError, match="poisson and request_intervals are both set"):
        resolve(dataset, "poisson", dataset / "intervals.txt", "request_rate", False)


def test_the_manifest_records_the_pattern_of_a_sweep() -> None:
    assert Arrivals("poisson").record("request_rate") == {"mode": "request_rate", "distribution": "poisson"}
    assert Arrivals().record("concurrency") == {"mode": "concurrency", "distribution": None}
