"""A live view of a benchmark on a terminal (phase, sweep point); plain lines elsewhere (CI)."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

import click


class LiveView:
    def __init__(self, lab: str) -> None:
        self.lab = lab
        self._status: Any = None
        self._tty = sys.stderr.isatty()

    def __enter__(self) -> LiveView:
        if self._tty:
            from rich.console import Console

            self._status = Console(stderr=True).status(f"{self.lab}: starting perf_analyzer")
            self._status.__enter__()
        return self

    def say(self, message: str) -> None:
        if self._status is not None:
            self._status.console.print(f"tisbench: {message}", highlight=False, markup=False, soft_wrap=True)
        else:
            click.echo(f"tisbench: {message}", err=True)

    def point(self, point: str) -> None:
        if self._status is not None:
            self._status.update(f"{self.lab}: measuring at {point}")
        else:
            click.echo(f"tisbench: measuring at {point}", err=True)

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        if self._status is not None:
            self._status.__exit__(kind, value, tb)
