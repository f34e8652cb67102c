"""Render report sections (:mod:`rlvr_audit.core.section`) to Markdown.

All text goes through one routine, :func:`escape`: whatever a checkpoint id, a model name, a claim
field or a response tail holds, it comes out as literal text in CommonMark and GitHub Markdown
(no link, emphasis, heading, list, HTML or table cell break). Formatting comes only from the
section's structure (:class:`~rlvr_audit.core.section.Code`, ``Strong``, ``Emph``, ``Link``,
``Mark``, tables, headings). The escaping is minimal, so ordinary text reads as it is in the
Markdown source: a character is backslash-escaped only where it could start markup.

The HTML report is rendered from this Markdown (:mod:`rlvr_audit.report.html`); the marks
``**measured**`` and ``_cited_`` that it styles can only come from :class:`Mark` (text cannot
produce emphasis), and a table's ``kind`` becomes the comment hook before it
(:data:`MEASURED_HOOK`, :data:`CITED_HOOK`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from ..core.section import (
    BREAK,
    Block,
    BulletList,
    Code,
    Document,
    Emph,
    Figure,
    Fold,
    Heading,
    Link,
    Mark,
    Paragraph,
    Row,
    Section,
    Strike,
    Strong,
    Table,
    Text,
)

__all__ = ["CITED_HOOK", "MEASURED_HOOK", "code_span", "escape", "render_document", "render_section"]

MEASURED_HOOK = "<!-- rlvr-audit: measured -->"
"""Put on its own line (with a blank line after it) before a Markdown table whose numbers were all
measured by rlvr-audit: the HTML report marks the table ``measured``."""

CITED_HOOK = "<!-- rlvr-audit: cited -->"
"""Like :data:`MEASURED_HOOK`, for a table whose numbers are all cited from publications."""

_NEWLINES = re.compile(r"\r\n|\r|\n")
_ALWAYS = frozenset("\\`*<|&~")
_LINE_START = re.compile(r"^(\s*)([-+=#>]|\d+(?=[.)]))")


def escape(text: str, *, line_start: bool = False, heading: bool = False) -> str:
    """``text`` as literal Markdown text (one line: line breaks become spaces).

    Escaped: ``\\ ` * < | & ~`` always; ``_`` unless between two letters or digits (where it
    cannot open or close emphasis); ``]`` before ``(``, ``[`` or ``:`` (so no link or link
    definition forms); with ``line_start`` (text at the start of a line: a paragraph, a list
    item), a leading ``- + = # >`` or list number; in a ``heading``, every ``#``."""
    text = _NEWLINES.sub(" ", text)
    out = []
    n = len(text)
    for i, ch in enumerate(text):
        if ch in _ALWAYS:
            out.append("\\" + ch)
        elif ch == "_":
            before = text[i - 1] if i else ""
            after = text[i + 1] if i + 1 < n else ""
            out.append("_" if before.isalnum() and after.isalnum() else "\\_")
        elif ch == "]" and i + 1 < n and text[i + 1] in "([:":
            out.append("\\]")
        elif ch == "#" and heading:
            out.append("\\#")
        else:
            out.append(ch)
    escaped = "".join(out)
    if line_start:
        match = _LINE_START.match(escaped)
        if match:
            lead, mark = match.group(1), match.group(2)
            if mark.isdigit():  # "1." or "1)": escape the punctuation after the number
                rest = escaped[match.end() :]
                escaped = lead + mark + "\\" + rest
            elif not (mark == "#" and heading):
                escaped = lead + "\\" + escaped[len(lead) :]
        escaped = escaped.lstrip(" \t")  # leading indentation would make a code block
    return escaped


def code_span(text: str, *, in_table: bool = False) -> str:
    """``text`` as an inline code span: fenced with more backticks than any run inside it, padded
    when it starts or ends with a backtick; in a table cell ``|`` is written ``\\|``."""
    text = _NEWLINES.sub(" ", text)
    if in_table:
        text = text.replace("|", "\\|")
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or (text.startswith(" ") and text.endswith(" ")) else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _link_target(target: str) -> str:
    """A link destination kept literal: in ``<...>`` when it has spaces or parentheses."""
    if re.search(r"[\s()<>]", target):
        return "<" + re.sub(r"[<>\s]", lambda m: f"%{ord(m.group(0)):02X}", target) + ">"
    return target


def inline(content: Text, *, in_table: bool = False, line_start: bool = False, heading: bool = False) -> str:
    """Markdown of inline ``content``; adjacent text parts are escaped together."""
    single = (str, Code, Strong, Emph, Link, Mark, Strike)
    parts = [content] if isinstance(content, single) or content is BREAK else content
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            out.append(escape("".join(pending), line_start=line_start and not out, heading=heading))
            pending.clear()

    for part in parts:  # type: ignore[union-attr]
        if isinstance(part, str):
            pending.append(part)
            continue
        flush()
        if isinstance(part, Code):
            out.append(code_span(part.text, in_table=in_table))
        elif isinstance(part, Strong):
            out.append("**" + inline(part.content, in_table=in_table, heading=heading) + "**")
        elif isinstance(part, Emph):
            out.append("_" + inline(part.content, in_table=in_table, heading=heading) + "_")
        elif isinstance(part, Strike):
            out.append("~~" + inline(part.content, in_table=in_table, heading=heading) + "~~")
        elif isinstance(part, Mark):
            out.append("**measured**" if part.kind == "measured" else "_cited_")
        elif isinstance(part, Link):
            out.append(f"[{inline(part.content, in_table=in_table)}]({_link_target(part.target)})")
        elif part is BREAK:
            out.append("<br>")
        else:
            raise TypeError(f"not an inline part of a section: {part!r}")
    flush()
    return "".join(out)


def _table(table: Table) -> list[str]:
    lines = []
    if table.kind is not None:
        lines += [MEASURED_HOOK if table.kind == "measured" else CITED_HOOK, ""]
    width = len(table.header)
    lines.append("| " + " | ".join(inline(h, in_table=True) for h in table.header) + " |")
    lines.append("|" + "---|" * width)
    for row in table.rows:
        if isinstance(row, Row) and row.group:
            first = inline(Strong(row.cells[0]), in_table=True)
            lines.append("| " + first + " |" + " |" * (width - 1))
            continue
        cells = row.cells if isinstance(row, Row) else row
        lines.append("| " + " | ".join(inline(c, in_table=True) for c in cells) + " |")
    return lines


def _item(content: Text, indent: str) -> str:
    return f"{indent}- " + inline(content, line_start=True)


def render_blocks(blocks: Sequence[Block], *, level: int = 2) -> str:
    """Markdown of ``blocks`` (sub-headings at ``level + 1``), each followed by a blank line."""
    chunks: list[str] = []
    for block in blocks:
        if isinstance(block, Paragraph):
            chunks.append(inline(block.content, line_start=True))
        elif isinstance(block, Heading):
            chunks.append("#" * (level + 1) + " " + inline(block.content, heading=True))
        elif isinstance(block, Table):
            chunks.append("\n".join(_table(block)))
        elif isinstance(block, BulletList):
            lines = []
            for item in block.items:
                if isinstance(item, tuple):
                    content, sub = item
                    lines.append(_item(content, ""))
                    lines += [_item(s, "  ") for s in sub]
                else:
                    lines.append(_item(item, ""))
            chunks.append("\n".join(lines))
        elif isinstance(block, Figure):
            chunks.append(f"![{escape(block.caption)}](figures/{_link_target(block.file)})")
        elif isinstance(block, Fold):
            opening = "<details open>" if block.open else "<details>"
            summary = html.escape(_NEWLINES.sub(" ", block.summary), quote=False)
            chunks.append(f"{opening}<summary>{summary}</summary>")
            chunks.append(render_blocks(block.blocks, level=level).rstrip("\n"))
            chunks.append("</details>")
        else:
            raise TypeError(f"not a block of a section: {block!r}")
    return "".join(c + "\n\n" for c in chunks)


def render_section(section: Section, *, level: int = 2) -> str:
    """Markdown of one section: its ``##`` heading and blocks."""
    return "#" * level + " " + inline(section.title, heading=True) + "\n\n" + render_blocks(section.blocks, level=level)


def render_document(doc: Document) -> str:
    """The whole ``index.md`` of a report."""
    text = "# " + inline(doc.title, heading=True) + "\n\n" + render_blocks(doc.intro)
    text += "".join(render_section(s) for s in doc.sections)
    text += render_blocks(doc.outro)
    return text.rstrip("\n") + "\n"
