"""Report sections as values: what an analysis shows, with no Markdown or HTML in it.

Every analysis returns :class:`Section` values; the report package (:mod:`rlvr_audit.report`)
renders every section the same way to Markdown, HTML and CSV, escaping all text for the
format it writes. So text that came from data or configuration (checkpoint ids, model names,
claim fields, response tails) is never markup, whatever characters it holds.

A section is a title and a list of blocks (:class:`Paragraph`, :class:`Heading`,
:class:`Table`, :class:`BulletList`, :class:`Figure`), plus the machine-readable tables
written beside the report (``tables/<name>.csv``). Text inside blocks is a sequence of
inline parts: a plain ``str`` is text (always escaped), and :class:`Code`, :class:`Strong`,
:class:`Emph`, :class:`Link`, :data:`BREAK` and :class:`Mark` carry the formatting.
:class:`Mark` says a number was **measured** by rlvr-audit or *cited* from a publication; a
:class:`Table` can say the same of all its numbers (``kind``).

A figure is a file name, its caption and a function that draws it at a given path (called by
the report writer inside the report's build folder).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeAlias

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BREAK",
    "Block",
    "BulletList",
    "Code",
    "Document",
    "Emph",
    "Figure",
    "Fold",
    "Heading",
    "Inline",
    "Kind",
    "Link",
    "Mark",
    "Paragraph",
    "Row",
    "Section",
    "Strike",
    "Strong",
    "Table",
    "Text",
    "table_links",
]

Kind = Literal["measured", "cited"]
"""Where a number comes from: computed by rlvr-audit from stored generations, or copied from a
publication (the claims ledger)."""


@dataclass(frozen=True)
class Code:
    """Literal text shown as code (an id, a template name, a response tail)."""

    text: str


@dataclass(frozen=True)
class Strong:
    """Emphasised strongly (bold)."""

    content: Text


@dataclass(frozen=True)
class Emph:
    """Emphasised (italics)."""

    content: Text


@dataclass(frozen=True)
class Link:
    """A link: ``content`` shown, ``target`` a relative path or an ``http(s)`` URL."""

    content: Text
    target: str


@dataclass(frozen=True)
class Mark:
    """The word saying where a number comes from (``measured`` or ``cited``), styled as such."""

    kind: Kind


@dataclass(frozen=True)
class _Break:
    """A line break inside a table cell or a paragraph."""


BREAK = _Break()
"""A line break inside a table cell or a paragraph."""


@dataclass(frozen=True)
class Strike:
    """Struck-out content (a superseded number, a reversed claim)."""

    content: Text


Inline: TypeAlias = str | Code | Strong | Emph | Link | Mark | _Break | Strike
"""One inline part: a plain ``str`` is text and is always escaped by the renderer."""

Text: TypeAlias = str | Inline | Sequence[Inline]
"""Inline content: one part or a sequence of parts."""


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of inline content."""

    content: Text


@dataclass(frozen=True)
class Heading:
    """A sub-heading inside a section (one level below the section's title)."""

    content: Text


@dataclass(frozen=True)
class Row:
    """A table row: its cells; ``group`` marks a group header row (its first cell names the group,
    e.g. a model family; the others are empty)."""

    cells: Sequence[Text]
    group: bool = False


@dataclass(frozen=True)
class Table:
    """A table shown in the report (the CSV tables are :attr:`Section.tables`)."""

    header: Sequence[Text]
    rows: Sequence[Row | Sequence[Text]]
    kind: Kind | None = None
    """All numbers of the table are measured (or all cited); ``None``: mixed or not said."""


@dataclass(frozen=True)
class BulletList:
    """A bulleted list; an item is its content, or ``(content, sub-items)``."""

    items: Sequence[Text | tuple[Text, Sequence[Text]]]


@dataclass(frozen=True)
class Figure:
    """A figure file under ``figures/`` with its caption; ``draw(path)`` writes it."""

    file: str
    caption: str
    draw: Callable[[Path], object] = field(compare=False, repr=False)


@dataclass(frozen=True)
class Fold:
    """Blocks folded under a one-line ``summary`` (``<details>`` in Markdown and HTML): shown
    collapsed unless ``open``."""

    summary: str
    blocks: Sequence[Block]
    open: bool = False


Block: TypeAlias = Paragraph | Heading | Table | BulletList | Figure | Fold
"""One block of a section."""


@dataclass
class Section:
    """One section of a report: a title, its blocks and its machine-readable tables."""

    title: Text
    blocks: list[Block] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    """File name under ``tables/`` -> frame (written as CSV without the index)."""

    @property
    def figures(self) -> list[Figure]:
        """The figures of the section, in order."""
        return [b for b in self.blocks if isinstance(b, Figure)]


@dataclass
class Document:
    """A whole report: title, opening paragraphs, sections, closing paragraphs."""

    title: Text
    intro: list[Block] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    outro: list[Block] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    """Tables written beside the sections' own."""


def table_links(files: Sequence[tuple[str, str]], *, lead: str = "Tables: ", tail: str = ".") -> Paragraph:
    """A paragraph linking CSV tables: ``files`` is ``(file name under tables/, note)`` pairs
    (``note``, e.g. ``"(fractions)"``, follows the link; ``""`` for none)."""
    parts: list[Inline] = [lead]
    for i, (name, note) in enumerate(files):
        if i:
            parts.append(", ")
        parts.append(Link(Code(f"tables/{name}"), f"tables/{name}"))
        if note:
            parts.append(f" {note}")
    parts.append(tail)
    return Paragraph(parts)
