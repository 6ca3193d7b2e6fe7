"""Tables of the command line (`keys list`, `models check`, `models list`) that never cut a value:
on a terminal, a table whose cells wrap in narrow windows; into a pipe, a log or CI, one line
per row, tab-separated, every id and path whole (for grep, cut and awk too)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text


def print_rows(console: Console, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """`rows` may hold rich markup (colours on a terminal; plain text elsewhere)."""
    if not console.is_terminal:
        for row in [list(headers), *rows]:
            print("\t".join(Text.from_markup(cell).plain for cell in row))
        return
    table = Table(*headers)
    for column in table.columns:
        column.overflow = "fold"
    for row in rows:
        table.add_row(*row)
    console.print(table)
