"""A pull as the user sees it: rich progress bars per image on a terminal, a line per image elsewhere."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from rich.filesize import decimal

from composer.engine.pull import LayerTally


class PullView:
    """Shows the pulls of one command; ``quiet`` (or no terminal) prints one line when each starts and ends."""

    def __init__(self, say: Callable[[str], None], *, quiet: bool | None = None) -> None:
        self._say = say
        self._quiet = not sys.stderr.isatty() if quiet is None else quiet
        self._tallies: dict[str, LayerTally] = {}
        self._began: dict[str, float] = {}
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> PullView:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def start(self, ref: str) -> None:
        self._tallies[ref], self._began[ref] = LayerTally(), time.monotonic()
        if self._quiet:
            self._say(f"pulling {ref}")
            return
        if self._progress is None:
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TextColumn("{task.fields[layers]}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.start()
        self._tasks[ref] = self._progress.add_task(f"pull {ref}", total=None, layers="layers 0/0")

    def event(self, ref: str, event: Mapping[str, Any]) -> None:
        tally = self._tallies[ref]
        tally.add(event)
        if self._progress is not None and ref in self._tasks:
            self._progress.update(
                self._tasks[ref],
                completed=tally.bytes_done,
                total=tally.bytes_total or None,
                layers=f"layers {len(tally.finished)}/{len(tally.layers)}",
            )

    def done(self, ref: str) -> None:
        tally = self._tallies[ref]
        seconds = time.monotonic() - self._began[ref]
        line = f"pulled {ref}: {len(tally.layers)} layers, {decimal(tally.bytes_total)} in {seconds:.1f} s"
        if self._progress is not None and ref in self._tasks:
            self._progress.update(self._tasks[ref], completed=tally.bytes_total, total=tally.bytes_total or 1)
            self._progress.console.print(f"tisbench: {line}", highlight=False, markup=False)
        else:
            self._say(line)
