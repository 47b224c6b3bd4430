"""Tables that fit the terminal: an id a user must type is never cut (its column keeps its
full width and never wraps), the other columns wrap, and when even that does not fit, the
least useful columns are left out (with a note saying which, and that ``--json`` has all)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.table import Table

from argus.cli.common import console

# Rich draws "│ " before each cell and " │" at the end: three characters a column, plus one.
_PER_COLUMN = 3
_NARROWEST = 8


@dataclass(frozen=True)
class Col:
    header: str
    key: bool = False
    """An id or name someone types back: shown whole, never wrapped, never left out."""
    drop: int = 0
    """Columns with a higher number are left out first when the terminal is narrow (0: kept)."""


def fit(columns: Sequence[Col], rows: Sequence[Sequence[str]], width: int | None = None,
        title: str | None = None) -> Table:
    width = width or console.width
    natural = [
        max([len(c.header), *(len(line) for r in rows for line in str(r[i]).splitlines())])
        for i, c in enumerate(columns)
    ]
    shown = list(range(len(columns)))

    def needed() -> int:
        return 1 + sum(
            _PER_COLUMN + (natural[i] if columns[i].key else min(natural[i], _NARROWEST))
            for i in shown
        )

    for i in sorted(shown, key=lambda i: -columns[i].drop):
        if needed() <= width or columns[i].drop == 0:
            break
        shown.remove(i)
    left_out = [columns[i].header for i in range(len(columns)) if i not in shown]
    caption = f"({', '.join(left_out)} left out to fit; --json shows all)" if left_out else None
    table = Table(title=title, caption=caption)
    for i in shown:
        c = columns[i]
        if c.key:
            table.add_column(c.header, no_wrap=True, min_width=natural[i], overflow="fold")
        else:
            table.add_column(c.header, overflow="fold")
    for r in rows:
        table.add_row(*(str(r[i]) for i in shown))
    return table
