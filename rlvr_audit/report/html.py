"""The self-contained HTML report: ``index.html`` rendered from ``index.md``.

``index.md`` is the single source of the report's sections (rendered from the sections by
:mod:`rlvr_audit.report.markdown`); :func:`render_report` renders it with markdown-it (CommonMark
+ tables) and post-processes the result into one file that opens from disk with no network:

- figures linked as ``![..](figures/x.png)`` are embedded as ``data:`` URIs (a figure outside the
  report folder, or missing, becomes a visible note, never a remote fetch);
- every table is sortable (click a header; numbers sort as numbers, family rows such as
  ``**Qwen2.5-Math**`` keep their block together);
- measured and cited numbers look different: rows marked ``**measured**`` / ``_cited_`` (a
  :class:`~rlvr_audit.core.section.Mark`, e.g. in the claims tables; a cell reading ``cited``),
  bold (measured) and italic ``_claimed ..._`` (cited) cells of the cross-family grids, and whole
  tables preceded by :data:`MEASURED_HOOK` / :data:`CITED_HOOK` (an HTML comment, invisible in
  Markdown viewers) get the ``measured`` / ``cited`` classes and a legend;
- the settings and manifest stay last; the per-sample browser (:mod:`rlvr_audit.report.browser`) is
  linked from a section inserted just before the settings.

Safety. Markdown sections carry names that came from files (checkpoint ids, imported model
names, run commands, response tails of the grader-disagreement examples); the Markdown renderer
(:mod:`rlvr_audit.report.markdown`) escapes all of it, so it is text here too. Raw HTML in the
Markdown is escaped and shown as text, except the line break ``<br>`` the tables use, the two
hooks above and other HTML comments (dropped, as Markdown viewers hide them); link targets go
through markdown-it's link validation (no ``javascript:``, ``vbscript:``, ``file:`` or
``data:`` links other than images). Every page carries a
Content-Security-Policy (:func:`content_security_policy`) that forbids every remote (and local
file) load: inline styles, ``data:`` images, and only the page's own inline scripts, allowed by
their SHA-256 hashes, so even a script that slipped past the escaping would not run.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from markdown_it import MarkdownIt

from ..core.errors import UsageError
from .markdown import CITED_HOOK, MEASURED_HOOK

if TYPE_CHECKING:
    from markdown_it.token import Token


__all__ = [
    "CITED_HOOK",
    "CSP",
    "DEFAULT_PAGE_SIZE",
    "MEASURED_HOOK",
    "HtmlOptions",
    "content_security_policy",
    "document",
    "json_script",
    "markdown_to_html",
    "render_report",
]

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
"""Content-Security-Policy of a generated page without script: no remote (or local file) loads of
any kind; inline styles and ``data:`` images only. Links still navigate (to the CSV tables and
browser pages beside the report). Pages with script add ``script-src`` with the hashes of their
own scripts (:func:`content_security_policy`)."""


def content_security_policy(scripts: Sequence[str] = ()) -> str:
    """:data:`CSP` plus ``script-src`` allowing exactly the inline ``scripts`` (by the SHA-256 of
    their UTF-8 text, as browsers hash an inline script's content); no script at all when empty.
    Injected inline scripts and event-handler attributes are refused by the browser."""
    if not scripts:
        return CSP + "; script-src 'none'"
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode("utf-8")).digest()).decode("ascii") + "'" for s in scripts
    )
    return f"{CSP}; script-src {hashes}"


DEFAULT_PAGE_SIZE = 500
"""Samples per page of the per-sample browser."""

FIGURE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}
"""Figure files that are embedded (by suffix)."""

_BR = re.compile(r"^<br\s*/?>$", re.IGNORECASE)
_HOOK = re.compile(r"^<!-- rlvr-audit: (measured|cited) -->$")
_COMMENT = re.compile(r"^<!--(?:(?!-->).)*-->$", re.DOTALL)
_FOLD = re.compile(r"^(?:<details(?: open)?><summary>[^<>]*</summary>|</details>)$")
"""The folds of :class:`~rlvr_audit.core.section.Fold` (summary text already escaped): passed through."""


@dataclass(frozen=True)
class HtmlOptions:
    """What :func:`write_html` writes besides ``index.html``."""

    browser: bool = True
    """Write the per-sample browser (``samples/<unit key>/``) and link it from the report."""
    page_size: int = DEFAULT_PAGE_SIZE
    """Samples per browser page (at least 1)."""
    progress: bool = False
    """Show a progress bar while writing the browser pages."""
    units: tuple[str, ...] | None = None
    """Globs choosing the units whose browser pages are written (``--browser units=...``; see
    :func:`rlvr_audit.report.browser.select_units`); ``None``: every unit."""

    def check(self) -> None:
        """Raise :class:`~rlvr_audit.core.errors.UsageError` for a page size below 1."""
        if isinstance(self.page_size, bool) or not isinstance(self.page_size, int) or self.page_size < 1:
            raise UsageError(f"browser page size must be a whole number of samples >= 1; got {self.page_size!r}")


# --------------------------------------------------------------------------------------
# Markdown -> HTML
# --------------------------------------------------------------------------------------


def _slug(text: str, used: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "section"
    slug, n = base, 2
    while slug in used:
        slug, n = f"{base}-{n}", n + 1
    used.add(slug)
    return slug


def _inline_text(token: Token) -> str:
    return "".join(c.content for c in (token.children or []) if c.type in ("text", "code_inline"))


def _markdown(root: Path | None) -> MarkdownIt:
    """A markdown-it renderer with the report's rules (see the module docstring)."""
    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])

    def html_inline(self: Any, tokens: list[Token], idx: int, options: Any, env: Any) -> str:
        content = tokens[idx].content
        return "<br>" if _BR.match(content.strip()) else html.escape(content)

    def html_block(self: Any, tokens: list[Token], idx: int, options: Any, env: Any) -> str:
        content = tokens[idx].content
        hook = _HOOK.match(content.strip())
        if hook:  # applies to a table right after it, else to nothing
            if idx + 1 < len(tokens) and tokens[idx + 1].type == "table_open":
                tokens[idx + 1].meta["kind"] = hook.group(1)
            return ""
        if _COMMENT.match(content.strip()):  # a comment: invisible in Markdown viewers, so here too
            return ""
        if _FOLD.match(content.strip()):
            return content.strip() + "\n"
        return f'<p class="raw">{html.escape(content)}</p>\n'

    def table_open(self: Any, tokens: list[Token], idx: int, options: Any, env: Any) -> str:
        kind = tokens[idx].meta.get("kind")
        tokens[idx].attrSet("class", "sortable" + (f" {kind}" if kind else ""))
        caption = f'<caption class="kind {kind}">{kind}</caption>' if kind else ""
        return '<div class="table-wrap">' + self.renderToken(tokens, idx, options, env) + caption

    def table_close(self: Any, tokens: list[Token], idx: int, options: Any, env: Any) -> str:
        return self.renderToken(tokens, idx, options, env) + "</div>\n"

    def heading_open(self: Any, tokens: list[Token], idx: int, options: Any, env: Any) -> str:
        text = _inline_text(tokens[idx + 1]) if idx + 1 < len(tokens) else ""
        slug = _slug(text, env.setdefault("slugs", set()))
        tokens[idx].attrSet("id", slug)
        if tokens[idx].tag == "h2":
            env.setdefault("toc", []).append((slug, text))
        return self.renderToken(tokens, idx, options, env)

    def image(self: Any, tokens: list[Token], idx: int, options: Any, env: Any) -> str:
        token = tokens[idx]
        alt = self.renderInlineAsText(token.children or [], options, env)
        src = str(token.attrGet("src") or "")
        data = _embed(root, src)
        if data is None:
            return f'<span class="missing-figure">[figure not embedded: {html.escape(alt or src)}]</span>'
        caption = html.escape(alt)
        return f'<figure><img src="{data}" alt="{caption}"><figcaption>{caption}</figcaption></figure>'

    md.add_render_rule("html_inline", html_inline)
    md.add_render_rule("html_block", html_block)
    md.add_render_rule("table_open", table_open)
    md.add_render_rule("table_close", table_close)
    md.add_render_rule("heading_open", heading_open)
    md.add_render_rule("image", image)
    return md


def _embed(root: Path | None, src: str) -> str | None:
    """``data:`` URI of a figure at ``src`` relative to ``root``; ``None`` for anything that is not
    a relative path to an existing figure file inside ``root``."""
    if root is None or not src or re.match(r"^[a-z][a-z0-9+.-]*:", src, re.IGNORECASE) or src.startswith("/"):
        return None
    try:
        base = root.resolve()
        path = (base / unquote(src)).resolve()
        path.relative_to(base)
    except (OSError, ValueError):
        return None
    mime = FIGURE_TYPES.get(path.suffix.lower())
    if mime is None or not path.is_file():
        return None
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


_MEASURED_WORD = re.compile(r"<strong>measured</strong>")
_CITED_WORD = re.compile(r"<em>cited</em>|(?<=<td>)cited(?=</td>)")
_CLAIMED = re.compile(r"<em>(~?claimed\b)")
_ROW = re.compile(r"<tr>(.*?)</tr>", re.DOTALL)


def _mark_kinds(body: str) -> str:
    """Classes that make measured and cited numbers visibly distinct (see the module docstring)."""
    body = _MEASURED_WORD.sub('<strong class="kind measured">measured</strong>', body)
    body = _CITED_WORD.sub('<span class="kind cited">cited</span>', body)
    body = _CLAIMED.sub(r'<em class="cited">\1', body)

    def row(match: re.Match[str]) -> str:
        inner = match.group(1)
        # a cited baseline's row can hold a measured gain, never the other way round
        if 'class="kind cited"' in inner:
            return f'<tr class="cited">{inner}</tr>'
        if 'class="kind measured"' in inner:
            return f'<tr class="measured">{inner}</tr>'
        return match.group(0)

    return _ROW.sub(row, body)


def markdown_to_html(text: str, *, root: Path | None = None) -> tuple[str, list[tuple[str, str]]]:
    """Render report Markdown to an HTML fragment; returns ``(html, toc)`` with ``toc`` the
    ``(anchor id, title)`` of every level-2 heading. Figures are embedded from ``root`` (the
    report folder); see the module docstring for what is escaped and marked."""
    env: dict[str, Any] = {}
    md = _markdown(root)
    body = md.renderer.render(md.parse(text, env), md.options, env)
    return _mark_kinds(body), list(env.get("toc", []))


# --------------------------------------------------------------------------------------
# Page shell: CSS, JavaScript, JSON data
# --------------------------------------------------------------------------------------

STYLE = """
:root { --measured: #0b5cad; --measured-bg: #eaf2fb; --cited: #8a5a00; --cited-bg: #fff6e0;
  --line: #d9dde3; --muted: #5b6470; --ok: #137333; --bad: #b3261e; --warn: #8a5a00; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2329;
  margin: 0 auto; padding: 1.2rem 1.6rem 3rem; max-width: 1400px; }
h1 { font-size: 1.6rem; margin: .2rem 0 .6rem; } h2 { font-size: 1.25rem; margin-top: 2rem;
  border-bottom: 1px solid var(--line); padding-bottom: .2rem; } h3 { font-size: 1.05rem; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12.5px; }
code { background: #f3f4f6; padding: 0 .25em; border-radius: 3px; }
a { color: #0b5cad; }
nav.toc { font-size: 13px; margin: .4rem 0 1rem; display: flex; flex-wrap: wrap; gap: .2rem .9rem; }
nav.toc a { white-space: nowrap; }
.legend { display: flex; gap: 1rem; flex-wrap: wrap; font-size: 13px; margin: .4rem 0 1rem; }
.legend span { padding: .15rem .5rem; border-radius: 3px; }
.legend .measured, .kind.measured { background: var(--measured-bg); color: var(--measured);
  border-left: 3px solid var(--measured); font-weight: 600; }
.legend .cited, .kind.cited { background: var(--cited-bg); color: var(--cited); border-left: 3px dashed var(--cited);
  font-style: italic; }
.kind { padding: 0 .35em; border-radius: 3px; font-size: 12px; }
.table-wrap { overflow-x: auto; margin: .6rem 0 1rem; }
table { border-collapse: collapse; font-size: 13px; }
caption.kind { caption-side: top; text-align: left; width: max-content; margin-bottom: .2rem; }
th, td { border: 1px solid var(--line); padding: .3rem .5rem; vertical-align: top; text-align: left; }
th { background: #f6f7f9; position: sticky; top: 0; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[aria-sort=ascending]::after { content: " \\25B2"; font-size: 10px; }
table.sortable th[aria-sort=descending]::after { content: " \\25BC"; font-size: 10px; }
tr.group td { background: #f0f2f5; }
table.measured td strong, td strong { color: var(--measured); }
table.measured { border-left: 3px solid var(--measured); }
table.cited { border-left: 3px dashed var(--cited); }
table.cited td { color: var(--cited); font-style: italic; }
table tr.group td strong { color: inherit; }
tr.measured td { background: var(--measured-bg); }
tr.cited td { background: var(--cited-bg); }
em.cited, td em.cited { color: var(--cited); }
figure { margin: .8rem 0; } figure img { max-width: 100%; border: 1px solid var(--line); }
figcaption { font-size: 12px; color: var(--muted); }
.missing-figure { color: var(--bad); font-size: 12px; }
p.raw { white-space: pre-wrap; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12.5px; }
"""
"""CSS shared by the report and the browser pages."""

SORT_SCRIPT = r"""
(function () {
  "use strict";
  function key(cell) {
    var text = (cell.textContent || "").trim();
    var m = text.replace(/\u2212/g, "-").match(/^[~\u2248]?\s*([+-]?\d+(?:\.\d+)?(?:e[+-]?\d+)?)/i);
    return m ? { num: parseFloat(m[1]), text: text.toLowerCase() } : { num: NaN, text: text.toLowerCase() };
  }
  function compare(a, b) {
    var an = !isNaN(a.num), bn = !isNaN(b.num);
    if (an && bn) { return a.num - b.num; }
    if (an !== bn) { return an ? -1 : 1; }
    return a.text < b.text ? -1 : a.text > b.text ? 1 : 0;
  }
  function isGroup(row) {
    if (row.cells.length < 2 || !row.cells[0].querySelector("strong")) { return false; }
    for (var i = 1; i < row.cells.length; i++) { if ((row.cells[i].textContent || "").trim()) { return false; } }
    return true;
  }
  function sortTable(table, col, th) {
    var body = table.tBodies[0];
    if (!body) { return; }
    var dir = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) { c.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
    var sign = dir === "ascending" ? 1 : -1;
    var blocks = [], current = { head: null, rows: [] };
    Array.prototype.forEach.call(body.rows, function (row, i) {
      if (isGroup(row)) { row.classList.add("group"); blocks.push(current); current = { head: row, rows: [] }; }
      else { current.rows.push({ row: row, i: i, k: row.cells[col] ? key(row.cells[col]) : key(row) }); }
    });
    blocks.push(current);
    blocks.forEach(function (block) {
      block.rows.sort(function (a, b) { return sign * compare(a.k, b.k) || a.i - b.i; });
      if (block.head) { body.appendChild(block.head); }
      block.rows.forEach(function (r) { body.appendChild(r.row); });
    });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    if (!table.tHead || !table.tHead.rows.length) { return; }
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.tabIndex = 0;
      th.title = "Sort by this column";
      th.addEventListener("click", function () { sortTable(table, col, th); });
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortTable(table, col, th); }
      });
    });
    if (table.tBodies[0]) {
      Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
        if (isGroup(row)) { row.classList.add("group"); }
      });
    }
  });
})();
"""
"""Plain JavaScript that makes every ``table.sortable`` sortable by clicking a header."""


def json_script(element_id: str, data: Any) -> str:
    """``<script type="application/json">`` holding ``data``, safe to embed in HTML: ``<``, ``>``
    and ``&`` are written as ``\\u003c`` ``\\u003e`` ``\\u0026`` (so ``</script>`` and ``<!--``
    in the data cannot end or change the element); read it with ``JSON.parse(el.textContent)``."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return f'<script type="application/json" id="{html.escape(element_id)}">{text}</script>'


def document(title: str, body: str, *, style: str = "", script: str = "") -> str:
    """A whole HTML page: its Content-Security-Policy (:func:`content_security_policy` of
    ``script``), the shared :data:`STYLE` plus ``style``, ``body`` (trusted, already escaped HTML)
    and ``script`` (trusted inline JavaScript) at the end of the body."""
    policy = content_security_policy([script] if script else [])
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{html.escape(policy)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<link rel="icon" href="data:,">\n'
        f"<title>{html.escape(title)}</title>\n"
        f"<style>{STYLE}{style}</style>\n</head>\n<body>\n{body}\n"
        + (f"<script>{script}</script>\n" if script else "")
        + "</body>\n</html>\n"
    )


LEGEND = (
    '<div class="legend"><span class="measured">measured: computed by rlvr-audit from stored generations</span>'
    '<span class="cited">cited: a published number copied from the claims ledger</span></div>'
)
"""The legend shown under the report's title."""


def _insert_before_settings(body: str, section: str) -> str:
    """Insert ``section`` before the ``Settings`` heading (so settings and manifest stay last);
    appended at the end when the report has no such heading."""
    match = re.search(r'<h2 id="settings[^"]*">', body)
    if match is None:
        return body + section
    return body[: match.start()] + section + body[match.start() :]


def _title(markdown_text: str) -> str:
    for line in markdown_text.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return "rlvr-audit report"


def render_report(markdown_text: str, *, root: Path | None, extra_section: str = "") -> str:
    """The whole ``index.html`` of a report from its Markdown: title, legend, table of contents,
    the sections, ``extra_section`` (trusted HTML, e.g. the browser links) before the settings."""
    body, toc = markdown_to_html(markdown_text, root=root)
    if extra_section:
        body = _insert_before_settings(body, extra_section)
        match = re.search(r'<h2 id="([^"]+)">(.*?)</h2>', extra_section)
        if match:
            at = next((i for i, (slug, _) in enumerate(toc) if slug.startswith("settings")), len(toc))
            toc.insert(at, (match.group(1), html.unescape(match.group(2))))
    nav = "".join(f'<a href="#{html.escape(slug)}">{html.escape(text)}</a>' for slug, text in toc)
    # the legend goes right after the title (the first </h1>)
    head, sep, rest = body.partition("</h1>")
    if sep:
        body = head + sep + "\n" + LEGEND + (f'\n<nav class="toc">{nav}</nav>' if nav else "") + rest
    else:
        body = LEGEND + body
    return document(_title(markdown_text), body, script=SORT_SCRIPT)
