"""A run directory and every file name in it: the one place that spells them. Pure (paths only).

Every layer that reads or writes a run uses it: the analyzer writes the CSV and export, the labs
the manifest and logs, runs the summary and server metrics, reports the reports and charts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.json"
SUMMARY = "summary.json"
CSV = "perf_analyzer.csv"
REPEATS = "repeats"
PROFILE_EXPORT = "profile_export.json"
SERVER_METRICS = "server_metrics.json"
LOGS = "logs"
ANALYZER_LOG = "perf_analyzer.log"
SERVER_LOG = "triton_server.log"
METRICS = "metrics"  # the raw /metrics scrapes
CHARTS = "charts"
CLIENTS = "clients"  # swarm runs: one directory per perf_analyzer replica
REPORTS = {"md": "report.md", "html": "report.html"}


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def manifest(self) -> Path:
        return self.path / MANIFEST

    @property
    def summary(self) -> Path:
        return self.path / SUMMARY

    @property
    def csv(self) -> Path:
        return self.path / CSV

    @property
    def profile_export(self) -> Path:
        return self.path / PROFILE_EXPORT

    @property
    def server_metrics(self) -> Path:
        return self.path / SERVER_METRICS

    @property
    def logs(self) -> Path:
        return self.path / LOGS

    @property
    def analyzer_log(self) -> Path:
        return self.logs / ANALYZER_LOG

    @property
    def server_log(self) -> Path:
        return self.logs / SERVER_LOG

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    @property
    def charts(self) -> Path:
        return self.path / CHARTS

    def chart(self, name: str) -> Path:
        return self.charts / name

    def report(self, fmt: str) -> Path:
        return self.path / REPORTS[fmt]

    def client(self, slot: int) -> ClientDir:
        return ClientDir(self.path / CLIENTS / f"client-{slot}")

    def repeat(self, number: int) -> RunDir:
        """Where repeat ``number`` of a --repeat run keeps its perf_analyzer files (the first: the run itself)."""
        return self if number == 1 else RunDir(self.path / REPEATS / f"repeat-{number}")


@dataclass(frozen=True)
class ClientDir:
    """One swarm replica's outputs: its CSV, export and log side by side."""

    path: Path

    @property
    def csv(self) -> Path:
        return self.path / CSV

    @property
    def profile_export(self) -> Path:
        return self.path / PROFILE_EXPORT

    @property
    def log(self) -> Path:
        return self.path / ANALYZER_LOG
