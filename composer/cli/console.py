"""Terminal output: tables with rich; wide and unwrapped when not a terminal (CI logs, pipes)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], title: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Table(title=title)
    for header in headers:
        out.add_column(header, overflow="fold")
    for row in rows:
        out.add_row(*(str(cell) for cell in row))
    Console(width=None if sys.stdout.isatty() else 240).print(out)


def prepare_console() -> None:
    """Import rich's console and table ahead of time (≈0.1 s), for a command that waits anyway."""
    import rich.console  # noqa: F401
    import rich.table  # noqa: F401
