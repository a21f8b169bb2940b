"""Terminal output: tables with rich, plain when not a terminal (CI logs stay readable)."""

from __future__ import annotations

from collections.abc import Sequence


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], title: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Table(title=title, show_lines=False)
    for header in headers:
        out.add_column(header)
    for row in rows:
        out.add_row(*(str(cell) for cell in row))
    Console().print(out)
