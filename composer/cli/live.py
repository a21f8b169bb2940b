"""A live view of a benchmark on a terminal (phase, sweep point, requests the server has answered);
plain lines elsewhere (CI), few of them: a count when a point ends or every ~10 s, never each second.
A model that answers nothing is said once, within seconds, not at perf_analyzer's timeout."""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

import click

from composer.runs.scraper import SUCCESS

if TYPE_CHECKING:
    from composer.runs.scraper import Completed

STALL_S = 5.0  # no request answered this long after perf_analyzer started: said once
PLAIN_EVERY_S = 10.0  # off a terminal, a count at most this often (besides one as a point ends)


def count_text(completed: Completed) -> str:
    """E.g. "12,345 requests completed (812/s)"."""
    rate = "" if completed.per_s is None else f" ({_rate(completed.per_s)}/s)"
    return f"{int(completed.requests):,} requests completed{rate}"


def _rate(per_s: float) -> str:
    return f"{per_s:,.0f}" if per_s == 0 or abs(per_s) >= 10 else f"{per_s:.1f}"


def stalled_note(completed: Completed) -> str | None:
    """The note for a model that has answered nothing STALL_S after perf_analyzer started, else None."""
    if completed.requests != 0 or completed.elapsed_s < STALL_S:
        return None
    return f"no request completed in {STALL_S:.0f} s yet (the server's {SUCCESS} for {completed.model} has not moved)"


class LiveView:
    def __init__(self, lab: str) -> None:
        self.lab = lab
        self._status: Any = None
        self._tty = sys.stderr.isatty()
        self._lock = threading.RLock()  # counts come from composer.runs.scraper's poll thread
        self._point: str | None = None
        self._count: Completed | None = None  # the latest count
        self._unshown: Completed | None = None  # off a terminal: a count not printed yet
        self._shown_at = time.monotonic()  # off a terminal: the last line about the measurement
        self._stall_said = False

    def __enter__(self) -> LiveView:
        if self._tty:
            from rich.console import Console

            self._status = Console(stderr=True).status(f"{self.lab}: starting perf_analyzer")
            self._status.__enter__()
        return self

    def say(self, message: str) -> None:
        with self._lock:
            if self._status is not None:
                self._status.console.print(f"tisbench: {message}", highlight=False, markup=False, soft_wrap=True)
            else:
                click.echo(f"tisbench: {message}", err=True)

    def point(self, point: str) -> None:
        with self._lock:
            if self._status is None:
                self._print_unshown()  # the point that ended: its count
                click.echo(f"tisbench: measuring at {point}", err=True)
                self._shown_at = time.monotonic()
            self._point = point
            if self._status is not None:
                self._status.update(self._status_line())

    def progress(self, completed: Completed) -> None:
        """The server's count while perf_analyzer runs: on the status line, or now and then a line."""
        with self._lock:
            note = None if self._stall_said else stalled_note(completed)
            if note is not None:
                self._stall_said = True
                self.say(note)
            self._count = completed
            if self._status is not None:
                self._status.update(self._status_line())
                return
            self._unshown = completed
            if completed.ended or time.monotonic() - self._shown_at >= PLAIN_EVERY_S:
                self._print_unshown()

    def _status_line(self) -> str:
        where = f"measuring at {self._point}" if self._point else "starting perf_analyzer"
        count = f" · {count_text(self._count)}" if self._count is not None else ""
        return f"{self.lab}: {where}{count}"

    def _print_unshown(self) -> None:
        if self._unshown is None:
            return
        where = f"{self._point} · " if self._point else ""
        click.echo(f"tisbench: {where}{count_text(self._unshown)}", err=True)
        self._unshown = None
        self._shown_at = time.monotonic()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        if self._status is not None:
            self._status.__exit__(kind, value, tb)
