"""``rlvr-audit ls`` as a table that fits the terminal.

A listing with many columns (``ls claims``: 11, ``ls units``: 9) folded into 80 columns puts four
letters on a line (``pre.`` / ``fig1`` / ``.qwe`` ...). Instead, each row stays on one line: long
cells are cut with an ellipsis at :data:`CELL_CAP` characters, and the columns that matter least
(:data:`DROP_FIRST`) are left out, and named below the table, until the rest fits. ``--wide``
prints every column in full however wide that is; ``--format tsv`` and ``--format json`` are the
forms for scripts (never cut).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from rich.console import Console

ID_CAP = 44
"""Widest the first column (the id a user copies) is shown in a fitted table."""

CELL_CAP = 28
"""Widest any other cell is shown in a fitted table (longer ones end in ``…``)."""

MIN_CELL = 10
"""A column is shown at least this wide (or its header's or content's width, if less), else left out."""

ID_NEED = 24
"""The first column is shown at least this wide (or its content's width, if less)."""

DROP_FIRST: dict[str, tuple[str, ...]] = {
    "claims": ("exactness", "kind", "metric", "source", "model", "reward", "benchmark", "baseline"),
    "units": ("T", "n", "backend", "graders", "prompt", "generated"),
    "graders": ("version",),
    "checkpoints": ("step", "reward", "prompt", "base"),
    "tasks": ("dataset", "name"),
    "prompts": ("hash", "chat"),
    "formats": ("default max new tokens",),
}
"""Per listing, the columns left out first (in this order) when the table is too wide; the
claims' id already names source, model and reward."""

_GAP = 2
"""Characters between two columns (``box.SIMPLE_HEAD``, no edge padding)."""


def _natural(rows: Sequence[dict[str, str]], col: str) -> int:
    return max([len(col), *(len(r[col]) for r in rows)])


def fitted_columns(rows: Sequence[dict[str, str]], what: str, width: int) -> dict[str, int]:
    """The columns of ``rows`` shown in ``width`` characters, with their widths (in column order).

    Each column wants its content's width, capped at :data:`ID_CAP` (the first) or :data:`CELL_CAP`,
    and needs at least :data:`MIN_CELL`; columns are left out (:data:`DROP_FIRST`, then from the
    right, never the first) until what they need fits, then the room left is shared out (columns
    outside :data:`DROP_FIRST` first) up to what each wants, and what is still left up to each column's full width."""
    columns = list(rows[0])
    want = {c: min(_natural(rows, c), ID_CAP if i == 0 else max(CELL_CAP, len(c))) for i, c in enumerate(columns)}
    need = {c: min(want[c], max(ID_NEED if i == 0 else MIN_CELL, len(c))) for i, c in enumerate(columns)}
    shown = list(columns)
    order = [c for c in DROP_FIRST.get(what, ()) if c in columns]
    order += [c for c in reversed(columns[1:]) if c not in order]

    def gaps() -> int:
        return _GAP * (len(shown) - 1)

    for col in order:
        if sum(need[c] for c in shown) + gaps() <= width:
            break
        shown.remove(col)
    widths = {c: need[c] for c in shown}
    room = width - sum(widths.values()) - gaps()
    drop = DROP_FIRST.get(what, ())
    by_use = [c for c in shown if c not in drop] + [c for c in reversed(drop) if c in shown]
    for target in (want, {c: _natural(rows, c) for c in shown}):  # up to the caps, then beyond them
        for c in by_use:
            extra = max(0, min(room, target[c] - widths[c]))
            widths[c] += extra
            room -= extra
    if room < 0:  # the first column alone does not fit: cut it to what is left
        widths[shown[0]] = max(1, widths[shown[0]] + room)
    return widths


def print_table(
    rows: Sequence[dict[str, str]],
    *,
    what: str,
    wide: bool = False,
    legend: Sequence[str] = (),
    out: Console | None = None,
) -> None:
    """Print ``rows`` as a table: fitted to the terminal (:func:`fitted_columns`), or with every
    column in full if ``wide``, as plain text (no markup, no box: what a pipe or a log shows too).
    The names of left-out columns and the ``legend`` lines (what marks such as ``78.2*`` mean) follow."""
    out = out or Console()
    columns = list(rows[0])
    if wide:
        widths = {c: _natural(rows, c) for c in columns}
    else:
        widths = fitted_columns(rows, what, out.width)
    hidden = [c for c in columns if c not in widths]
    lines = [_line({c: c for c in widths}, widths), _line({c: "-" * w for c, w in widths.items()}, widths)]
    lines += [_line(row, widths) for row in rows]
    if hidden:
        lines.append(
            f"not shown at {out.width} columns: {', '.join(hidden)} "
            f"(rlvr-audit ls {what} --wide shows every column; --format tsv or json for scripts)"
        )
    lines += legend
    if not wide:  # notes and legend wrap at the terminal's width too
        notes = lines[len(rows) + 2 :]
        lines = lines[: len(rows) + 2] + [w for n in notes for w in textwrap.wrap(n, out.width, break_on_hyphens=False)]
    out.file.write("\n".join(lines) + "\n")


def _line(row: dict[str, str], widths: dict[str, int]) -> str:
    """One line of the table: each cell cut to its column's width (ending in ``…``) and padded."""
    cells = [_cut(" ".join(row[c].split()), w).ljust(w) for c, w in widths.items()]
    return (" " * _GAP).join(cells).rstrip()


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"
