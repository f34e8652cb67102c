"""``rlvr-audit ls`` as a table that stays readable in a narrow terminal (80 columns).

A listing whose rows do not fit the terminal is not wrapped into one-letter columns: its long
cells are cut (``…``) and, where that is not enough, its least useful columns are left out, in
the order :data:`LEAVE_OUT` gives for the listing; a last line names what was left out. ``--wide``
shows every column in full; ``--format tsv`` / ``json`` always hold everything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["LEAVE_OUT", "Fitted", "fit"]

LEAVE_OUT: dict[str, tuple[str, ...]] = {
    "units": ("prompt", "graders", "T", "n", "generated"),
    "claims": ("exactness", "kind", "source", "baseline", "reward", "metric"),
    "checkpoints": ("prompt", "step", "reward", "model"),
    "tasks": ("dataset", "protocol"),
    "prompts": ("hash", "chat"),
    "graders": ("version",),
    "formats": ("default max new tokens",),
}
"""Per listing, the columns left out first when its rows do not fit, in order."""

WHOLE: dict[str, tuple[str, ...]] = {"units": ("unit",), "claims": ("id",)}
"""Per listing, columns never cut (ids a user copies into another command): wrapped, if need be,
at :data:`WRAP` characters."""

WRAP = 24
"""Width at which a :data:`WHOLE` cell is wrapped instead of cut."""

COMFORTABLE = 16
"""Columns are left out before cells are cut shorter than this; below it, down to :data:`MIN_CELL`."""

MIN_CELL = 10
"""Cells are never cut shorter than this."""


@dataclass(frozen=True)
class Fitted:
    """A listing cut to a width."""

    columns: list[str]
    """The columns shown."""
    rows: list[list[str]]
    """The cells shown (long ones cut, ending in ``…``)."""
    left_out: list[str]
    """Columns not shown."""
    cut: bool
    """Whether some cell was cut."""
    wrap: list[str]
    """Shown columns whose cells are never cut: the table wraps them."""


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: max(1, n - 1)] + "…"


def _width(widths: Sequence[int]) -> int:
    """Width of a table with these column widths (borders and one space of padding each side)."""
    return sum(widths) + 3 * len(widths) + 1


def _limits(natural: dict[str, int], whole: set[str], width: int, floor: int) -> dict[str, int] | None:
    """Cell lengths per column at which the columns fit ``width``, taken off the widest column
    one character at a time (never below ``floor``); ``None``: they do not fit."""
    limits = {c: min(n, WRAP) if c in whole else n for c, n in natural.items()}
    while _width(list(limits.values())) > width:
        widest = max((c for c in limits if c not in whole), key=lambda c: limits[c], default=None)
        if widest is None or limits[widest] <= floor:
            return None
        limits[widest] -= 1
    return limits


def fit(kind: str, rows: Sequence[dict[str, str]], width: int) -> Fitted:
    """The columns and cells of ``rows`` that fit ``width`` characters (see the module docstring):
    columns are left out (in :data:`LEAVE_OUT` order) before cells are cut below
    :data:`COMFORTABLE` characters, and cells are cut to at least :data:`MIN_CELL`."""
    columns = list(rows[0]) if rows else []
    whole = set(WHOLE.get(kind, ())) & set(columns)
    leave = [c for c in LEAVE_OUT.get(kind, ()) if c in columns]
    left_out: list[str] = []
    limits: dict[str, int] | None = None
    for floor in (COMFORTABLE, MIN_CELL):
        left_out = []
        while True:
            natural = {c: max(len(c), *(len(r.get(c, "")) for r in rows)) for c in columns if c not in left_out}
            limits = _limits(natural, whole, width, floor)
            if limits is not None or len(left_out) == len(leave):
                break
            left_out.append(leave[len(left_out)])
        if limits is not None:
            break
    shown = [c for c in columns if c not in left_out]
    keep = {c: 10**9 if c in whole else (limits or {}).get(c, MIN_CELL) for c in shown}
    cells = [[_cut(r.get(c, ""), keep[c]) for c in shown] for r in rows]
    cut = any(len(r.get(c, "")) > keep[c] for r in rows for c in shown)
    return Fitted(
        columns=[_cut(c, keep[c]) for c in shown],
        rows=cells,
        left_out=left_out,
        cut=cut,
        wrap=[c for c in shown if c in whole],
    )
