"""The per-sample browser: static HTML pages of every stored sample, from the store only.

For each unit of a report (and each base unit its checkpoints are compared against) the
browser writes a folder ``samples/<unit key>/``::

    index.html         the unit: what it is, its estimates, the filters and a search over all
                       its samples (a compact JSON index), with links into the pages
    page-0001.html     samples 1..page_size in full, page-0002.html the next, ...

so a 100,000-sample store gives many pages of ``page_size`` samples (default 500), never one
huge page. Samples are in task order (the problem order of the task file), then sample index.
Each sample shows the problem, its gold answer, the rendered prompt (folded), the full
response (LaTeX as text; fenced code blocks highlighted with Pygments) and, for every grader,
the extracted answer and the verdict.

Filters (plain JavaScript, combined with AND; the state is kept in the page's ``#fragment`` and
carried by the page links), each under the grader chosen in the filter bar:

- verdict: ``correct``, *not correct* (any other verdict), or one verdict exactly;
- grader disagreement: the graders that graded the sample do not all call it correct or all
  not correct (the definition of :mod:`rlvr_audit.analysis.disagreement`);
- against the base (units with a base unit in the store, same task version, prompt and
  protocol; the base of the report's paired comparison): per *problem*, the checkpoint's fraction
  of correct samples is above (*gained*), below (*lost*) or equal to (*same*) the base's, under
  the chosen grader; *changed* = gained or lost. With one sample per problem this is exactly
  "the base's verdict differs". Problems the base did not grade are *unknown*;
- reasoning: *code* or *language* (the classifier the report passes in:
  :func:`rlvr_audit.analysis.behaviour.is_code_reasoning`, default definition);
- truncated: the engine stopped at the token limit (``finish_reason == "length"``) or a grader
  said ``truncated``;
- search: a case-insensitive substring of the problem text or the problem id.

Everything that came from a model or a dataset (problem, gold, prompt, response, extracted
answers, error messages, ids) is HTML-escaped into the page; the JavaScript reads only
``data-*`` codes, ``textContent`` and JSON embedded with :func:`rlvr_audit.report.html.json_script`,
and writes only with ``textContent`` and DOM methods (never ``innerHTML``). Pages carry the
report's Content-Security-Policy (:func:`rlvr_audit.report.html.content_security_policy`: no remote
loads, only the page's own script).

One module, one concept (over 800 lines): the browser's pages, its filter script and its styles
share one data contract (the ``data-*`` codes and the JSON index) that must change together.
"""

from __future__ import annotations

import html
import math
import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..core.errors import StoreError, UsageError
from ..core.records import Comparison, Estimate, Generation, Grade, Problem
from ..core.store import Store, UnitInfo
from .html import document, json_script

if TYPE_CHECKING:
    from ..core.ui import Progress

__all__ = [
    "BROWSER_ALL",
    "NOT_GRADED",
    "NOT_WRITTEN",
    "VERDICT_CODES",
    "SampleView",
    "UnitPages",
    "browser_units",
    "collect_samples",
    "flip_code",
    "page_file",
    "paginate",
    "parse_browser_units",
    "problem_scores",
    "render_index",
    "render_page",
    "render_response",
    "sample_anchor",
    "select_units",
    "split_fences",
    "unit_names",
    "write_browser",
]

VERDICT_CODES: dict[str, str] = {
    "correct": "c",
    "incorrect": "i",
    "no_answer": "n",
    "truncated": "t",
    "timeout": "o",
    "error": "e",
}
"""One-letter code of each verdict in the pages' ``data-v`` attributes and JSON index."""

NOT_GRADED = "-"
"""Code of a sample a grader has not graded."""

MAX_HIGHLIGHT_CHARS = 20_000
"""Code blocks longer than this are shown escaped but not highlighted (bounded work per sample)."""

SNIPPET_CHARS = 160
"""Characters of the problem text shown per result in a unit's index."""


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


class Results(Protocol):
    """What the browser shows of a report's analysis (an :class:`rlvr_audit.analysis.estimates.Analysis`)."""

    units: list[UnitInfo]
    estimates: list[Estimate]
    comparisons: list[Comparison]
    graders: list[str]


def _every_version(grader_id: str) -> str | None:
    return None


def _not_classified(text: str) -> bool:
    return False


@dataclass(frozen=True)
class BrowserSource:
    """Everything the per-sample browser reads: the store, the report's results, and how to tell
    a grader's current version and a code-reasoning response (passed in by the report's caller,
    so the report package needs no analysis)."""

    store: Store
    results: Results
    grader_version: Callable[[str], str | None] = field(default=_every_version)
    """A grader's current version (grades of other versions are not shown); ``None``: any."""
    is_code: Callable[[str], bool] = field(default=_not_classified)
    """Whether a response reasons in code."""


@dataclass(frozen=True)
class SampleView:
    """One sample as the browser shows it."""

    ordinal: int
    """Position in the unit's browser order (task order, then sample index), from 0."""
    problem_index: int
    """Position of the problem in the task file (problems missing from it come after all others)."""
    problem_id: str
    """The problem id."""
    sample_idx: int
    """Sample index within the problem."""
    question: str
    """Problem text (empty when the stored task file lacks the problem)."""
    gold: str
    """Gold answer as published."""
    prompt: str
    """The exact prompt string the engine was given."""
    completion: str
    """The full response."""
    finish_reason: str
    """``stop``, ``length`` or ``unknown``."""
    n_tokens: int | None
    """Generated tokens, where known."""
    grades: tuple[Grade | None, ...]
    """The grade of each grader of the unit (:attr:`UnitPages.graders` order); ``None``: not graded."""
    code: bool
    """Code reasoning (:func:`rlvr_audit.analysis.behaviour.is_code_reasoning`)."""
    flips: str
    """Per grader, the problem's change against the base: ``+`` gained, ``-`` lost, ``=`` same,
    ``?`` unknown; empty when the unit has no base."""

    @property
    def verdicts(self) -> str:
        """One :data:`VERDICT_CODES` letter per grader (:data:`NOT_GRADED` where ungraded)."""
        return "".join(NOT_GRADED if g is None else VERDICT_CODES[g.verdict] for g in self.grades)

    @property
    def truncated(self) -> bool:
        """Stopped at the token limit, or called ``truncated`` by a grader."""
        return self.finish_reason == "length" or any(g is not None and g.verdict == "truncated" for g in self.grades)

    @property
    def disagreement(self) -> bool:
        """The graders that graded this sample do not agree on whether it is correct."""
        graded = {g.verdict == "correct" for g in self.grades if g is not None}
        return len(graded) > 1


@dataclass(frozen=True)
class UnitPages:
    """What :func:`write_browser` wrote for one unit."""

    unit: UnitInfo
    """The unit."""
    graders: tuple[str, ...]
    """Graders shown (the report's graders that graded this unit)."""
    n_samples: int
    """Samples stored (and shown)."""
    n_pages: int
    """Pages written (0 for a unit with no sample)."""
    page_size: int
    """Samples per page."""
    base: UnitInfo | None
    """The base unit the flips are computed against, if any."""
    folder: Path
    """The unit's folder (``samples/<unit key>``)."""
    written: bool = True
    """Whether its pages were written (``False``: left out by ``--browser units=...``; then
    ``n_samples`` and ``n_pages`` are 0 and ``folder`` does not exist)."""


def paginate(n: int, page_size: int) -> list[range]:
    """The ordinals of each page: ``ceil(n / page_size)`` consecutive ranges (none for ``n == 0``).

    Raises :class:`~rlvr_audit.core.errors.UsageError` for ``page_size < 1`` or ``n < 0``."""
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
        raise UsageError(f"browser page size must be a whole number of samples >= 1; got {page_size!r}")
    if n < 0:
        raise UsageError(f"number of samples must be >= 0; got {n}")
    return [range(start, min(start + page_size, n)) for start in range(0, n, page_size)]


def page_file(page: int) -> str:
    """File name of page ``page`` (from 0): ``page-0001.html``, ..."""
    return f"page-{page + 1:04d}.html"


def sample_anchor(problem_index: int, sample_idx: int) -> str:
    """The element id of a sample on its page (``p<problem index>-s<sample index>``)."""
    return f"p{problem_index}-s{sample_idx}"


def flip_code(treatment: float | None, base: float | None) -> str:
    """``+`` (treatment above base), ``-`` (below), ``=`` (equal), ``?`` (either unknown): fractions
    of correct samples of one problem."""
    if treatment is None or base is None:
        return "?"
    if math.isclose(treatment, base, abs_tol=1e-12):
        return "="
    return "+" if treatment > base else "-"


def problem_scores(
    store: Store,
    info: UnitInfo,
    graders: Sequence[str],
    grader_version: Callable[[str], str | None] = _every_version,
) -> dict[str, dict[str, float]]:
    """Per grader, per problem: the fraction of the problem's graded samples graded ``correct``
    (grades of the grader's current version, as the report counts them)."""
    out: dict[str, dict[str, float]] = {}
    k = info.spec.protocol.n
    for g in graders:
        counts: dict[str, list[int]] = {}
        for grade in store.read_grades(info.key, g, grader_version(g)):
            if grade.sample_idx >= k:
                continue
            c = counts.setdefault(grade.problem_id, [0, 0])
            c[0] += grade.verdict == "correct"
            c[1] += 1
        out[g] = {pid: right / total for pid, (right, total) in counts.items() if total}
    return out


def _order(generations: Sequence[Generation], problem_index: dict[str, int]) -> list[Generation]:
    extra = len(problem_index)
    return sorted(generations, key=lambda r: (problem_index.get(r.problem_id, extra), r.problem_id, r.sample_idx))


def collect_samples(
    store: Store,
    info: UnitInfo,
    graders: Sequence[str],
    *,
    problems: Sequence[Problem] | None = None,
    base: UnitInfo | None = None,
    grader_version: Callable[[str], str | None] = _every_version,
    is_code: Callable[[str], bool] = _not_classified,
) -> list[SampleView]:
    """Every stored sample of a unit in browser order, with its grades under ``graders`` (current
    versions), code-reasoning flag and, when ``base`` is given, flips against the base unit.

    ``problems``: the unit's task problems in task order (read from the store when omitted)."""
    if problems is None:
        problems = store.load_problems(info.spec.data_hash)
    index = {p.problem_id: i for i, p in enumerate(problems)}
    by_id = {p.problem_id: p for p in problems}
    grades = {
        g: {(r.problem_id, r.sample_idx): r for r in store.read_grades(info.key, g, grader_version(g))} for g in graders
    }
    mine = problem_scores(store, info, graders, grader_version) if base is not None else {}
    theirs = problem_scores(store, base, graders, grader_version) if base is not None else {}
    extra: dict[str, int] = {}
    out = []
    for ordinal, gen in enumerate(_order(store.read_generations(info.key), index)):
        pid = gen.problem_id
        if pid in index:
            p_index = index[pid]
        else:
            p_index = extra.setdefault(pid, len(index) + len(extra))
        problem = by_id.get(pid)
        flips = "".join(flip_code(mine[g].get(pid), theirs[g].get(pid)) for g in graders) if base is not None else ""
        out.append(
            SampleView(
                ordinal=ordinal,
                problem_index=p_index,
                problem_id=pid,
                sample_idx=gen.sample_idx,
                question=problem.question if problem else "",
                gold=problem.answer if problem else "",
                prompt=gen.prompt,
                completion=gen.completion,
                finish_reason=gen.finish_reason,
                n_tokens=gen.n_tokens,
                grades=tuple(grades[g].get((pid, gen.sample_idx)) for g in graders),
                code=is_code(gen.completion),
                flips=flips,
            )
        )
    return out


# --------------------------------------------------------------------------------------
# Rendering one response
# --------------------------------------------------------------------------------------

_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*([^\s`]*)[^`\n]*$")


def split_fences(text: str) -> list[tuple[str, str, str]]:
    """Split a response into ``(kind, language, text)`` segments, ``kind`` one of ``text``,
    ``fence`` (an opening or closing fence line) and ``code`` (a fenced block's content; an
    unclosed block runs to the end). Concatenating every segment's text gives ``text`` back."""
    segments: list[tuple[str, str, str]] = []
    buf: list[str] = []
    kind, lang, fence = "text", "", ""

    def flush() -> None:
        if buf:
            segments.append((kind, lang, "".join(buf)))
            buf.clear()

    for line in text.splitlines(keepends=True):
        bare = line.rstrip("\r\n")
        if kind == "text":
            m = _FENCE_OPEN.match(bare)
            if m:
                flush()
                segments.append(("fence", "", line))
                kind, lang, fence = "code", m.group(2).lower(), m.group(1)
                continue
        else:
            stripped = bare.strip()
            if (
                stripped
                and set(stripped) == {fence[0]}
                and len(stripped) >= len(fence)
                and len(bare) - len(bare.lstrip(" ")) <= 3
            ):
                flush()
                segments.append(("fence", "", line))
                kind, lang, fence = "text", "", ""
                continue
        buf.append(line)
    flush()
    return segments


@lru_cache(maxsize=64)
def _lexer(lang: str) -> Any:
    from pygments.lexers import PythonLexer, TextLexer, get_lexer_by_name  # only when a response has code to highlight
    from pygments.util import ClassNotFound  # only when a response has code to highlight

    options = {"stripnl": False, "ensurenl": False}
    if not lang:
        return PythonLexer(**options)
    try:
        return get_lexer_by_name(lang, **options)
    except ClassNotFound:
        return TextLexer(**options)


@lru_cache(maxsize=1)
def _formatter() -> Any:
    from pygments.formatters import HtmlFormatter  # only when a response has code to highlight

    return HtmlFormatter(nowrap=True)  # building one is slow (its stylesheet); it is stateless in use


def _highlight(code: str, lang: str) -> str:
    if len(code) > MAX_HIGHLIGHT_CHARS:
        return html.escape(code)
    from pygments import highlight  # only when a response has code to highlight

    return str(highlight(code, _lexer(lang), _formatter()))


def render_response(text: str) -> str:
    """A response as escaped HTML for a ``<pre>``: text (LaTeX included) as text, fence lines dimmed,
    fenced code blocks highlighted (Pygments; escaped by it) in ``<code class="hl">``."""
    parts = []
    for kind, lang, segment in split_fences(text):
        if kind == "code":
            safe_lang = re.sub(r"[^a-z0-9+#-]", "", lang)[:20] or "python"
            parts.append(f'<code class="hl lang-{safe_lang}">{_highlight(segment, lang)}</code>')
        elif kind == "fence":
            parts.append(f'<span class="fence">{html.escape(segment)}</span>')
        else:
            parts.append(html.escape(segment))
    return "".join(parts)


# --------------------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------------------

_e = html.escape

VERDICT_LABELS = {
    "correct": "correct",
    "wrong": "not correct",
    "i": "incorrect",
    "n": "no answer",
    "t": "truncated",
    "o": "timeout",
    "e": "error",
    "-": "not graded",
}
"""Options of the verdict filter: value -> label."""


def _filters(graders: Sequence[str], has_base: bool) -> str:
    grader_options = "".join(f'<option value="{i}">{_e(g)}</option>' for i, g in enumerate(graders))
    verdicts = '<option value="">any</option>' + "".join(
        f'<option value="{_e(v)}">{_e(label)}</option>' for v, label in VERDICT_LABELS.items()
    )
    flip = (
        '<label>Against base <select id="f-flip"><option value="">any</option><option value="changed">changed</option>'
        '<option value="+">gained</option><option value="-">lost</option><option value="=">same</option>'
        '<option value="?">unknown</option></select></label>'
        if has_base
        else '<label title="this unit has no base unit">Against base <select id="f-flip" disabled>'
        '<option value="">no base</option></select></label>'
    )
    return (
        '<div class="filters" role="search">'
        f'<label>Grader <select id="f-grader">{grader_options}</select></label>'
        f'<label>Verdict <select id="f-verdict">{verdicts}</select></label>'
        '<label>Graders <select id="f-agree"><option value="">any</option><option value="disagree">disagree</option>'
        '<option value="agree">agree</option></select></label>'
        f"{flip}"
        '<label>Reasoning <select id="f-style"><option value="">any</option><option value="code">code</option>'
        '<option value="language">language</option></select></label>'
        '<label>Truncated <select id="f-trunc"><option value="">any</option><option value="yes">truncated</option>'
        '<option value="no">not truncated</option></select></label>'
        '<label>Search <input id="f-search" type="search" placeholder="problem text or id" size="24"></label>'
        '<button type="button" id="f-reset">reset</button>'
        '<span id="count" class="count" aria-live="polite"></span>'
        "</div>"
    )


def _unit_title(info: UnitInfo) -> str:
    return f"{info.spec.checkpoint.checkpoint_id} · {info.task_display or info.spec.task} · {info.spec.template_id}"


def _protocol(info: UnitInfo) -> str:
    p = info.spec.protocol
    decoding = "greedy" if p.temperature == 0 else f"T={p.temperature:g}, top-p {p.top_p:g}"
    return f"{decoding}, {p.n} sample{'s' if p.n > 1 else ''}/problem, {p.max_new_tokens} tokens, seed {p.seed}"


def _page_nav(current: int | None, n_pages: int) -> str:
    """Links to every page (``keep`` class: the filter state is appended by the script)."""
    if n_pages == 0:
        return ""
    links = []
    for i in range(n_pages):
        if i == current:
            links.append(f'<strong aria-current="page">{i + 1}</strong>')
        else:
            links.append(f'<a class="keep" data-href="{page_file(i)}" href="{page_file(i)}">{i + 1}</a>')
    prev = (
        f'<a class="keep" rel="prev" data-href="{page_file(current - 1)}" href="{page_file(current - 1)}">‹ prev</a>'
        if current is not None and current > 0
        else ""
    )
    nxt = (
        f'<a class="keep" rel="next" data-href="{page_file(current + 1)}" href="{page_file(current + 1)}">next ›</a>'
        if current is not None and current + 1 < n_pages
        else ""
    )
    return f'<nav class="pages">Pages: {prev} {" ".join(links)} {nxt}</nav>'


def _verdict_badge(grade: Grade | None) -> str:
    if grade is None:
        return '<span class="v v-none">not graded</span>'
    return f'<span class="v v-{grade.verdict}">{_e(grade.verdict)}</span>'


def _sample_html(s: SampleView, graders: Sequence[str], base_link: str | None) -> str:
    badges = ['<span class="b code">code</span>' if s.code else '<span class="b lang">language</span>']
    if s.truncated:
        badges.append('<span class="b trunc">truncated</span>')
    if s.disagreement:
        badges.append('<span class="b dis">graders disagree</span>')
    if s.flips:
        changes = {c for c in s.flips if c in "+-"}
        if changes == {"+"}:
            badges.append('<span class="b gain">gained vs base</span>')
        elif changes == {"-"}:
            badges.append('<span class="b loss">lost vs base</span>')
        elif changes:
            badges.append('<span class="b mixed">changed vs base (depends on grader)</span>')
    rows = []
    for gid, grade in zip(graders, s.grades, strict=True):
        extracted = "" if grade is None or grade.extracted is None else f"<code>{_e(grade.extracted)}</code>"
        error = "" if grade is None or not grade.error else f'<div class="err">{_e(grade.error)}</div>'
        flip = ""
        if s.flips:
            i = graders.index(gid)
            flip = {"+": "gained", "-": "lost", "=": "same", "?": "unknown"}[s.flips[i]]
        rows.append(
            f"<tr><td>{_e(gid)}</td><td>{_verdict_badge(grade)}</td><td>{extracted or '–'}{error}</td>"
            + (f"<td>{flip}</td>" if s.flips else "")
            + "</tr>"
        )
    base_col = "<th>vs base</th>" if s.flips else ""
    tokens = f", {s.n_tokens} tokens" if s.n_tokens is not None else ""
    base = f' · <a class="base-link" href="{_e(base_link)}">the base model on this problem</a>' if base_link else ""
    question = _e(s.question) if s.question else '<span class="muted">(problem not in the stored task file)</span>'
    return (
        f'<article class="sample" id="{sample_anchor(s.problem_index, s.sample_idx)}" data-v="{_e(s.verdicts)}" '
        f'data-f="{_e(s.flips)}" data-code="{int(s.code)}" data-trunc="{int(s.truncated)}">\n'
        f'<h3>Problem <code class="pid">{_e(s.problem_id)}</code> · sample {s.sample_idx} '
        f'<span class="badges">{"".join(badges)}</span></h3>\n'
        f'<p class="meta">finish: {_e(s.finish_reason)}{tokens}{base}</p>\n'
        '<div class="two">\n'
        f'<div><h4>Problem</h4><pre class="question">{question}</pre>'
        f'<p>Gold answer: <code class="gold">{_e(s.gold) if s.gold else "–"}</code></p></div>\n'
        f'<div><h4>Graders</h4><table class="grades"><thead><tr><th>Grader</th><th>Verdict</th><th>Extracted</th>'
        f"{base_col}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>\n"
        "</div>\n"
        f'<details class="prompt"><summary>Rendered prompt ({len(s.prompt)} characters)</summary>'
        f"<pre>{_e(s.prompt)}</pre></details>\n"
        f'<h4>Response</h4><pre class="response">{render_response(s.completion)}</pre>\n'
        "</article>"
    )


def _breadcrumb(info: UnitInfo, page: int | None, n_pages: int) -> str:
    crumbs = ['<a href="../../index.html">report</a>']
    if page is None:
        crumbs.append(_e(_unit_title(info)))
    else:
        crumbs.append(f'<a class="keep" data-href="index.html" href="index.html">{_e(_unit_title(info))}</a>')
        crumbs.append(f"page {page + 1} of {n_pages}")
    return '<header class="crumbs">' + " › ".join(crumbs) + "</header>"


def render_page(
    info: UnitInfo,
    samples: Sequence[SampleView],
    graders: Sequence[str],
    *,
    page: int,
    n_pages: int,
    n_samples: int,
    has_base: bool,
    base_links: dict[str, str] | None = None,
) -> str:
    """One browser page of a unit (``samples``: this page's samples)."""
    first = samples[0].ordinal + 1 if samples else 0
    last = samples[-1].ordinal + 1 if samples else 0
    links = base_links or {}
    body = "\n".join(
        [
            _breadcrumb(info, page, n_pages),
            f"<h1>{_e(_unit_title(info))}</h1>",
            f'<p class="meta">Samples {first}–{last} of {n_samples} · {_e(_protocol(info))} · '
            f'<a class="keep" data-href="index.html" href="index.html">search all {n_samples} samples</a></p>',
            _filters(graders, has_base),
            _page_nav(page, n_pages),
            '<p id="none" class="muted" hidden>No sample on this page matches the filters.</p>',
            '<main id="samples">',
            *(_sample_html(s, graders, links.get(s.problem_id)) for s in samples),
            "</main>",
            _page_nav(page, n_pages),
        ]
    )
    return document(f"{_unit_title(info)} · page {page + 1}", body, style=_browser_style(), script=FILTER_SCRIPT)


def _estimates_table(info: UnitInfo, analysis: Results | None) -> str:
    if analysis is None:
        return ""
    rows = []
    for e in analysis.estimates:
        if e.unit_key != info.key:
            continue
        ci = f" [{100 * e.ci_low:.1f}, {100 * e.ci_high:.1f}]" if e.ci_low is not None and e.ci_high is not None else ""
        rows.append(
            f"<tr><td>{_e(e.grader_id)}</td><td>{_e(e.metric)}</td><td><strong>{100 * e.value:.1f}</strong>{ci}</td>"
            f"<td>{e.n_problems}</td></tr>"
        )
    for c in analysis.comparisons:
        if c.treatment_unit != info.key:
            continue
        rows.append(
            f"<tr><td>{_e(c.grader_id)}</td><td>gain over {_e(c.baseline)} ({_e(c.metric)})</td>"
            f"<td><strong>{100 * c.delta:+.1f}</strong> [{100 * c.ci_low:+.1f}, {100 * c.ci_high:+.1f}]</td>"
            f"<td>{c.n_problems}</td></tr>"
        )
    if not rows:
        return ""
    level = next((e.level for e in analysis.estimates if e.unit_key == info.key), 0.95)
    return (
        f"<h2>Estimates (measured; {round(100 * level)}% intervals, as in the report)</h2>"
        '<table class="estimates measured"><thead><tr><th>Grader</th><th>Metric</th><th>Value (%)</th>'
        f"<th>Problems</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def render_index(
    info: UnitInfo,
    samples: Sequence[SampleView],
    graders: Sequence[str],
    *,
    page_size: int,
    base: UnitInfo | None,
    analysis: Results | None = None,
    base_written: bool = True,
) -> str:
    """A unit's ``index.html``: description, estimates, filters, and a searchable JSON index of
    every sample with links into the pages (``base_written``: whether the base unit has pages to
    link to)."""
    n_pages = len(paginate(len(samples), page_size))
    spec = info.spec
    model = spec.checkpoint.model + (f"@{spec.checkpoint.revision}" if spec.checkpoint.revision else "")
    engine = spec.backend + (
        " (" + ", ".join(f"{k}={v}" for k, v in spec.engine_args.items()) + ")" if spec.engine_args else ""
    )
    facts = [
        ("Checkpoint", _e(spec.checkpoint.checkpoint_id)),
        ("Model", _e(model)),
        ("Task", _e(info.task_display or spec.task) + f" (<code>{_e(spec.task)}</code>)"),
        ("Prompt template", f"<code>{_e(spec.template_id)}</code>"),
        ("Protocol", _e(_protocol(info))),
        ("Engine", _e(engine)),
        ("Unit key", f"<code>{_e(info.key)}</code>"),
        ("Samples", f"{len(samples)} on {n_pages} page{'s' if n_pages != 1 else ''} of up to {page_size}"),
        ("Graders", _e(", ".join(graders)) or "none"),
    ]
    if base is not None:
        title = (
            f'<a href="../{_e(base.key)}/index.html">{_e(_unit_title(base))}</a>'
            if base_written
            else f'{_e(_unit_title(base))} (<span class="muted">{_e(NOT_WRITTEN)}</span>)'
        )
        facts.append(("Base unit", f"{title} (the flips filter compares each problem with it)"))
    problems: dict[int, tuple[str, str]] = {}
    rows = []
    for s in samples:
        problems.setdefault(s.problem_index, (s.problem_id, s.question))
        rows.append(
            [s.problem_index, s.sample_idx, s.ordinal // page_size, s.verdicts, s.flips, int(s.code), int(s.truncated)]
        )
    data = {
        "graders": list(graders),
        "problems": {str(i): [pid, q] for i, (pid, q) in problems.items()},
        "samples": rows,
        "pageSize": page_size,
    }
    body = "\n".join(
        [
            _breadcrumb(info, None, n_pages),
            f"<h1>{_e(_unit_title(info))}</h1>",
            '<table class="facts"><tbody>'
            + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts)
            + "</tbody></table>",
            _estimates_table(info, analysis),
            "<h2>Samples</h2>",
            _filters(graders, base is not None),
            _page_nav(None, n_pages),
            '<p class="muted">Matches per page (click to open the page with these filters):</p>'
            '<div id="page-counts" class="page-counts"></div>',
            '<div class="table-wrap"><table id="results" class="results"><thead><tr><th>Problem</th><th>Sample</th>'
            + "".join(f"<th>{_e(g)}</th>" for g in graders)
            + "<th>Flags</th><th>Problem text</th></tr></thead><tbody></tbody></table></div>",
            '<button type="button" id="more" hidden>show more</button>',
            json_script("index-data", data),
        ]
    )
    return document(f"{_unit_title(info)} · samples", body, style=BROWSER_STYLE, script=FILTER_SCRIPT)


def _browser_style() -> str:
    """CSS of a page of samples (the browser's and Pygments' highlighting classes)."""
    return BROWSER_STYLE + _pygments_css()


@lru_cache(maxsize=1)
def _pygments_css() -> str:
    from pygments.formatters import HtmlFormatter  # only when a response has code to highlight

    return str(HtmlFormatter(style="default").get_style_defs(".hl"))


BROWSER_STYLE = """
.crumbs { font-size: 13px; color: var(--muted); margin-bottom: .4rem; }
.meta, .muted { color: var(--muted); font-size: 13px; }
.filters { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center; padding: .6rem .8rem;
  background: #f6f7f9; border: 1px solid var(--line); border-radius: 6px; position: sticky; top: 0; z-index: 2; }
.filters label { font-size: 13px; } .filters select, .filters input { font-size: 13px; }
.count { font-weight: 600; margin-left: auto; }
nav.pages { margin: .8rem 0; font-size: 13px; line-height: 1.9; }
nav.pages a, nav.pages strong { margin-right: .35rem; }
article.sample { border: 1px solid var(--line); border-radius: 6px; padding: .6rem .9rem; margin: 1rem 0; }
article.sample h3 { margin: .1rem 0 .3rem; font-size: 1rem; }
article.sample h4 { margin: .6rem 0 .2rem; font-size: .9rem; }
.two { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 1rem; }
@media (max-width: 900px) { .two { grid-template-columns: 1fr; } }
pre { white-space: pre-wrap; word-break: break-word; background: #fafbfc; border: 1px solid var(--line);
  border-radius: 4px; padding: .5rem .7rem; margin: .2rem 0; max-height: 40rem; overflow: auto; }
pre.response code.hl { display: block; background: #f3f6fa; border-left: 3px solid #0b5cad; padding: .2rem .5rem;
  margin: 0; border-radius: 0; }
.fence { color: #8a929b; }
table.grades, table.facts, table.estimates, table.results { border-collapse: collapse; font-size: 13px; }
table.facts th { background: none; position: static; font-weight: 600; }
table.estimates { border-left: 3px solid var(--measured); } table.estimates strong { color: var(--measured); }
.v { padding: 0 .35em; border-radius: 3px; font-weight: 600; font-size: 12px; }
.v-correct { background: #e6f4ea; color: var(--ok); } .v-incorrect { background: #fce8e6; color: var(--bad); }
.v-no_answer, .v-truncated, .v-timeout, .v-error, .v-none { background: #fef7e0; color: var(--warn); }
.b { font-size: 11px; font-weight: 600; border-radius: 10px; padding: .05rem .5rem; margin-left: .3rem;
  border: 1px solid var(--line); }
.b.code { background: #e8f0fe; color: #1a4fa0; } .b.lang { color: var(--muted); }
.b.trunc { background: #fef7e0; color: var(--warn); } .b.dis { background: #f3e8fd; color: #6a1b9a; }
.b.gain { background: #e6f4ea; color: var(--ok); } .b.loss { background: #fce8e6; color: var(--bad); }
.b.mixed { background: #fef7e0; color: var(--warn); }
.err { color: var(--bad); font-size: 12px; white-space: pre-wrap; }
.page-counts a { margin-right: .6rem; font-size: 13px; }
table.results td.q { max-width: 48rem; }
td.v-c { color: var(--ok); } td.v-i { color: var(--bad); } td.v-n, td.v-t, td.v-o, td.v-e { color: var(--warn); }
"""
"""CSS of the browser pages (added to :data:`rlvr_audit.report.html.STYLE`)."""

FILTER_SCRIPT = r"""
(function () {
  "use strict";
  var KEYS = ["grader", "verdict", "agree", "flip", "style", "trunc", "search"];
  function field(k) { return document.getElementById("f-" + k); }
  function readState() {
    var s = {};
    KEYS.forEach(function (k) { var e = field(k); if (e && !e.disabled && e.value) { s[k] = e.value; } });
    return s;
  }
  function encode(s) {
    return Object.keys(s).map(function (k) {
      return encodeURIComponent(k) + "=" + encodeURIComponent(s[k]);
    }).join("&");
  }
  function decode(hash) {
    var s = {};
    if (hash.indexOf("=") < 0) { return s; }
    hash.split("&").forEach(function (part) {
      var kv = part.split("=");
      if (kv.length !== 2) { return; }
      try {
        var k = decodeURIComponent(kv[0]), v = decodeURIComponent(kv[1].replace(/\+/g, " "));
        if (KEYS.indexOf(k) >= 0) { s[k] = v; }
      } catch (err) { /* a malformed fragment is ignored */ }
    });
    return s;
  }
  function matches(r, s) {
    var g = parseInt(s.grader || "0", 10) || 0;
    var v = r.v.charAt(g) || "-";
    if (s.verdict) {
      if (s.verdict === "correct") { if (v !== "c") { return false; } }
      else if (s.verdict === "wrong") { if (v === "c" || v === "-") { return false; } }
      else if (v !== s.verdict) { return false; }
    }
    if (s.agree) {
      var graded = r.v.replace(/-/g, "");
      var split = graded.indexOf("c") >= 0 && /[^c]/.test(graded);
      if ((s.agree === "disagree") !== split) { return false; }
    }
    if (s.flip) {
      var f = r.f.charAt(g);
      if (s.flip === "changed") { if (f !== "+" && f !== "-") { return false; } }
      else if (f !== s.flip) { return false; }
    }
    if (s.style && (s.style === "code") !== r.code) { return false; }
    if (s.trunc && (s.trunc === "yes") !== r.trunc) { return false; }
    if (s.search && r.text().indexOf(s.search.toLowerCase()) < 0) { return false; }
    return true;
  }
  function keepLinks(s) {
    var hash = encode(s);
    document.querySelectorAll("a.keep").forEach(function (a) {
      a.setAttribute("href", a.getAttribute("data-href") + (hash ? "#" + hash : ""));
    });
    if (hash || location.hash.indexOf("=") >= 0) {
      try { history.replaceState(null, "", hash ? "#" + hash : location.pathname + location.search); }
      catch (err) { /* some browsers refuse for file: pages; the links still carry the state */ }
    }
  }
  function setCount(text) { var c = document.getElementById("count"); if (c) { c.textContent = text; } }

  // ---- a page of samples: show or hide the articles -----------------------------------
  function pageMode() {
    var records = [];
    document.querySelectorAll("article.sample").forEach(function (a) {
      var cache = null;
      records.push({
        el: a, v: a.getAttribute("data-v") || "", f: a.getAttribute("data-f") || "",
        code: a.getAttribute("data-code") === "1", trunc: a.getAttribute("data-trunc") === "1",
        text: function () {
          if (cache === null) {
            var q = a.querySelector(".question"), p = a.querySelector(".pid");
            cache = ((q ? q.textContent : "") + "\n" + (p ? p.textContent : "")).toLowerCase();
          }
          return cache;
        }
      });
    });
    return function (s) {
      var shown = 0;
      records.forEach(function (r) { var ok = matches(r, s); r.el.hidden = !ok; if (ok) { shown++; } });
      setCount(shown + " of " + records.length + " samples on this page");
      var none = document.getElementById("none");
      if (none) { none.hidden = shown > 0 || records.length === 0; }
    };
  }

  // ---- a unit's index: filter the JSON index, list matches -----------------------------
  function indexMode(node) {
    var data = JSON.parse(node.textContent);
    var limit = 200, step = 200, current = [];
    var records = data.samples.map(function (row) {
      var problem = data.problems[String(row[0])] || ["", ""];
      var cache = null;
      return {
        pi: row[0], si: row[1], page: row[2], v: row[3], f: row[4], code: row[5] === 1, trunc: row[6] === 1,
        pid: problem[0], q: problem[1],
        text: function () {
          if (cache === null) { cache = (problem[1] + "\n" + problem[0]).toLowerCase(); }
          return cache;
        }
      };
    });
    var tbody = document.querySelector("#results tbody");
    var more = document.getElementById("more");
    var counts = document.getElementById("page-counts");
    var labels = { c: "correct", i: "incorrect", n: "no answer", t: "truncated", o: "timeout", e: "error", "-": "-" };
    function pageName(p) { var n = String(p + 1); while (n.length < 4) { n = "0" + n; } return "page-" + n + ".html"; }
    function cell(tr, text, cls) {
      var td = document.createElement("td");
      td.textContent = text;
      if (cls) { td.className = cls; }
      tr.appendChild(td);
      return td;
    }
    function draw() {
      while (tbody.firstChild) { tbody.removeChild(tbody.firstChild); }
      current.slice(0, limit).forEach(function (r) {
        var tr = document.createElement("tr");
        var td = document.createElement("td");
        var a = document.createElement("a");
        a.setAttribute("href", pageName(r.page) + "#p" + r.pi + "-s" + r.si);
        a.textContent = r.pid;
        td.appendChild(a); tr.appendChild(td);
        cell(tr, String(r.si));
        for (var g = 0; g < data.graders.length; g++) {
          var code = r.v.charAt(g) || "-";
          cell(tr, labels[code] || code, "v-cell v-" + code);
        }
        var flags = [r.code ? "code" : "language"];
        if (r.trunc) { flags.push("truncated"); }
        if (r.f.indexOf("+") >= 0) { flags.push("gained"); }
        if (r.f.indexOf("-") >= 0) { flags.push("lost"); }
        cell(tr, flags.join(", "));
        cell(tr, r.q.length > 160 ? r.q.slice(0, 160) + "…" : r.q, "q");
        tbody.appendChild(tr);
      });
      more.hidden = current.length <= limit;
    }
    more.addEventListener("click", function () { limit += step; draw(); });
    return function (s) {
      current = records.filter(function (r) { return matches(r, s); });
      limit = step;
      draw();
      setCount(current.length + " of " + records.length + " samples match");
      var per = {};
      current.forEach(function (r) { per[r.page] = (per[r.page] || 0) + 1; });
      while (counts.firstChild) { counts.removeChild(counts.firstChild); }
      var hash = encode(s);
      Object.keys(per).map(Number).sort(function (a, b) { return a - b; }).forEach(function (p) {
        var a = document.createElement("a");
        a.className = "keep";
        a.setAttribute("data-href", pageName(p));
        a.setAttribute("href", pageName(p) + (hash ? "#" + hash : ""));
        a.textContent = "page " + (p + 1) + " (" + per[p] + ")";
        counts.appendChild(a);
      });
    };
  }

  var node = document.getElementById("index-data");
  var apply = node ? indexMode(node) : pageMode();
  function update() { var s = readState(); apply(s); keepLinks(s); }
  var initial = decode(location.hash.replace(/^#/, ""));
  KEYS.forEach(function (k) { var e = field(k); if (e && initial[k] !== undefined) { e.value = initial[k]; } });
  KEYS.forEach(function (k) {
    var e = field(k);
    if (e) { e.addEventListener(k === "search" ? "input" : "change", update); }
  });
  var reset = document.getElementById("f-reset");
  if (reset) {
    reset.addEventListener("click", function () {
      KEYS.forEach(function (k) {
        var e = field(k);
        if (e && !e.disabled) { e.value = e.tagName === "SELECT" ? e.options[0].value : ""; }
      });
      update();
    });
  }
  update();
})();
"""
"""The browser's plain JavaScript: filters, search, page links that keep the filter state."""


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


BROWSER_ALL = "all"
"""``--browser`` value that writes the pages of every unit (the default)."""

BROWSER_VALID = (
    "valid: --browser all (every unit) or --browser units=GLOB[,GLOB...] matching a unit's key, "
    "checkpoint id or 'checkpoint · task · prompt' label"
)
"""The valid ``--browser`` values, as the one-line error names them."""


def parse_browser_units(value: str) -> tuple[str, ...] | None:
    """The globs of a ``--browser`` value: ``None`` for ``all`` (every unit), the comma-separated
    globs of ``units=GLOB[,GLOB...]``.

    Raises :class:`~rlvr_audit.core.errors.UsageError` (one line naming the valid values) for
    anything else, ``units=`` without a glob, or an empty glob between commas."""
    text = value.strip()
    if text == BROWSER_ALL:
        return None
    if not text.startswith("units="):
        raise UsageError(f"unknown --browser {value!r}; {BROWSER_VALID}")
    globs = tuple(g.strip() for g in text[len("units=") :].split(","))
    if not globs or any(not g for g in globs):
        raise UsageError(f"--browser {value!r} has an empty glob; {BROWSER_VALID}")
    return globs


def unit_names(info: UnitInfo) -> tuple[str, ...]:
    """What a ``--browser units=`` glob is matched against (case-sensitively): the unit key, the
    checkpoint id and the unit's label as its pages and the report show it
    (``checkpoint · task · prompt template``)."""
    return (info.key, info.spec.checkpoint.checkpoint_id, _unit_title(info))


def select_units(units: Sequence[UnitInfo], globs: Sequence[str] | None) -> set[str]:
    """The keys of ``units`` that any of ``globs`` matches (see :func:`unit_names`); every key for
    ``globs`` ``None``.

    Raises :class:`~rlvr_audit.core.errors.UsageError` naming the units when a glob matches none
    of them (a typo must not silently write no page)."""
    if globs is None:
        return {u.key for u in units}
    chosen: set[str] = set()
    for glob in globs:
        hits = {u.key for u in units if any(fnmatchcase(name, glob) for name in unit_names(u))}
        if not hits:
            known = ", ".join(dict.fromkeys(u.spec.checkpoint.checkpoint_id for u in units)) or "none"
            raise UsageError(
                f"--browser units={glob!r} matches no unit of this report; {BROWSER_VALID} (checkpoints: {known})"
            )
        chosen |= hits
    return chosen


def _base_units(store: Store, analysis: Results) -> dict[str, UnitInfo]:
    """Treatment unit key -> its base unit (that of the report's first comparison of it)."""
    known = {u.key: u for u in analysis.units}
    out: dict[str, UnitInfo] = {}
    for c in analysis.comparisons:
        if c.treatment_unit in out:
            continue
        base = known.get(c.baseline_unit)
        if base is None:
            try:
                base = store.load_unit(c.baseline_unit)
            except StoreError:  # a base that vanished from the store: no flips, no link
                continue
            known[base.key] = base
        out[c.treatment_unit] = base
    return out


def browser_units(store: Store, analysis: Results) -> list[UnitInfo]:
    """The units the browser covers: the report's units, then every base unit they are compared
    with (what ``--browser units=`` globs are matched against)."""
    units: list[UnitInfo] = list(analysis.units)
    seen = {u.key for u in units}
    for b in _base_units(store, analysis).values():
        if b.key not in seen:
            units.append(b)
            seen.add(b.key)
    return units


def _graders_of(store: Store, info: UnitInfo, report_graders: Sequence[str]) -> tuple[str, ...]:
    stored = store.graders(info.key)
    chosen = [g for g in report_graders if g in stored] if report_graders else stored
    return tuple(chosen)


@dataclass
class _UnitResults:
    """The part of a report's results one unit's index shows (what a worker process is sent)."""

    units: list[UnitInfo]
    estimates: list[Estimate]
    comparisons: list[Comparison]
    graders: list[str]


@dataclass(frozen=True)
class _UnitJob:
    """Everything needed to write one unit's pages (picklable: sent to a worker process)."""

    store: Store
    info: UnitInfo
    graders: tuple[str, ...]
    problems: list[Problem]
    base: UnitInfo | None
    base_links: dict[str, str] | None
    base_written: bool
    page_size: int
    folder: Path
    results: _UnitResults
    grader_version: Callable[[str], str | None]
    is_code: Callable[[str], bool]


def _write_unit(job: _UnitJob) -> UnitPages:
    """Write one unit's pages and index (in this process or a worker; the same bytes either way)."""
    info, graders, base = job.info, job.graders, job.base
    samples = collect_samples(
        job.store,
        info,
        graders,
        problems=job.problems,
        base=base,
        grader_version=job.grader_version,
        is_code=job.is_code,
    )
    pages = paginate(len(samples), job.page_size)
    job.folder.mkdir(parents=True, exist_ok=True)
    for i, ordinals in enumerate(pages):
        chunk = samples[ordinals.start : ordinals.stop]
        (job.folder / page_file(i)).write_text(
            render_page(
                info,
                chunk,
                graders,
                page=i,
                n_pages=len(pages),
                n_samples=len(samples),
                has_base=base is not None,
                base_links=job.base_links,
            ),
            encoding="utf-8",
        )
    (job.folder / "index.html").write_text(
        render_index(
            info,
            samples,
            graders,
            page_size=job.page_size,
            base=base,
            analysis=job.results,
            base_written=job.base_written,
        ),
        encoding="utf-8",
    )
    return UnitPages(
        unit=info,
        graders=graders,
        n_samples=len(samples),
        n_pages=len(pages),
        page_size=job.page_size,
        base=base,
        folder=job.folder,
    )


PARALLEL_MIN_BYTES = 4 << 20
"""With ``workers=None``, write units in worker processes only when their generation files hold
more than this many bytes (below it, starting processes costs more than it saves)."""


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def write_browser(
    store: Store,
    analysis: Results,
    out_dir: Path,
    *,
    page_size: int = 500,
    progress: Progress | None = None,
    grader_version: Callable[[str], str | None] = _every_version,
    is_code: Callable[[str], bool] = _not_classified,
    units: Sequence[str] | None = None,
    workers: int | None = None,
) -> list[UnitPages]:
    """Write the browser of every unit in ``analysis`` (and of every base unit they are compared
    with) under ``out_dir/<unit key>/``; returns one :class:`UnitPages` per unit, report units
    first (``written`` ``False`` for a unit left out).

    ``units``: globs (``--browser units=...``, see :func:`select_units`) choosing the units whose
    pages are written; ``None``: every unit. A unit whose base has no pages shows no links to it.
    ``workers``: processes writing units at once (``None``: one per CPU, at most one per unit,
    when the units' generation files exceed :data:`PARALLEL_MIN_BYTES`; 1: in this process); the
    files are byte for byte the same whatever the number. The
    functions ``grader_version`` and ``is_code`` must be picklable (module-level) when
    ``workers`` is above 1.

    Reads the store one unit at a time per process (a unit's samples are in memory while its
    pages are written). Raises :class:`~rlvr_audit.core.errors.UsageError` for ``page_size < 1``
    or a glob that matches no unit, before anything is written.
    """
    paginate(0, page_size)  # validates page_size before anything is written
    out_dir = Path(out_dir)
    bases = _base_units(store, analysis)
    every = browser_units(store, analysis)
    chosen = select_units(every, units)
    problems_cache: dict[str, list[Problem]] = {}

    def problems_of(info: UnitInfo) -> list[Problem]:
        dh = info.spec.data_hash
        if dh not in problems_cache:
            problems_cache[dh] = store.load_problems(dh)
        return problems_cache[dh]

    # where each unit's first sample of each problem lands (for "the base on this problem" links)
    first_page: dict[str, dict[str, str]] = {}

    def locate(info: UnitInfo) -> dict[str, str]:
        if info.key not in first_page:
            index = {p.problem_id: i for i, p in enumerate(problems_of(info))}
            where: dict[str, str] = {}
            extra: dict[str, int] = {}
            for ordinal, gen in enumerate(_order(store.read_generations(info.key), index)):
                if gen.problem_id not in where:
                    p_index = index.get(gen.problem_id)
                    if p_index is None:
                        p_index = extra.setdefault(gen.problem_id, len(index) + len(extra))
                    anchor = sample_anchor(p_index, gen.sample_idx)
                    where[gen.problem_id] = f"../{info.key}/{page_file(ordinal // page_size)}#{anchor}"
            first_page[info.key] = where
        return first_page[info.key]

    jobs: list[_UnitJob] = []
    for info in every:
        if info.key not in chosen:
            continue
        base = bases.get(info.key)
        base_written = base is not None and base.key in chosen
        results = _UnitResults(
            units=[],
            estimates=[e for e in analysis.estimates if e.unit_key == info.key],
            comparisons=[c for c in analysis.comparisons if c.treatment_unit == info.key],
            graders=list(analysis.graders),
        )
        jobs.append(
            _UnitJob(
                store=store,
                info=info,
                graders=_graders_of(store, info, analysis.graders),
                problems=problems_of(info),
                base=base,
                base_links=locate(base) if base is not None and base_written else None,
                base_written=base_written,
                page_size=page_size,
                folder=out_dir / info.key,
                results=results,
                grader_version=grader_version,
                is_code=is_code,
            )
        )
    if workers is None:  # automatic: a pool only when the units are big enough to pay for it
        size = sum(_size(store.generations_path(job.info.key)) for job in jobs)
        n_workers = min(_cpus(), len(jobs)) if size >= PARALLEL_MIN_BYTES else 1
    else:
        n_workers = min(max(workers, 1), len(jobs))
    task = progress.add_task("browser pages", total=len(jobs)) if progress is not None else None
    done: dict[str, UnitPages] = {}
    if n_workers <= 1:
        for job in jobs:
            done[job.info.key] = _write_unit(job)
            if progress is not None and task is not None:
                progress.advance(task)
    else:
        # the platform's default start method, as the report's other worker pools
        # (:mod:`rlvr_audit.analysis.code_reasoning`): fork on Linux, so a script without a
        # ``__main__`` guard still works there
        pool = ProcessPoolExecutor(max_workers=n_workers)
        try:
            futures = [pool.submit(_write_unit, job) for job in jobs]
            for future in as_completed(futures):
                pages = future.result()
                done[pages.unit.key] = pages
                if progress is not None and task is not None:
                    progress.advance(task)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
    return [
        done.get(info.key)
        or UnitPages(
            unit=info,
            graders=(),
            n_samples=0,
            n_pages=0,
            page_size=page_size,
            base=bases.get(info.key),
            folder=out_dir / info.key,
            written=False,
        )
        for info in every
    ]


NOT_WRITTEN = "no sample pages (written only for --browser units=...)"
"""What the report and the unit indexes say in place of a link to a unit whose pages were not written."""


def browser_section(units: Sequence[UnitPages], folder: str = "samples") -> str:
    """HTML of the report's "Per-sample browser" section: one row per unit with its sample count and
    a link to ``<folder>/<unit key>/index.html`` (``units``: what :func:`write_browser` wrote)."""
    if not units:
        return ""
    rows = []
    for u in units:
        info = u.unit
        link = f"{folder}/{info.key}/index.html"
        counts = f"<td>{u.n_samples}</td><td>{u.n_pages}</td>" if u.written else "<td>–</td><td>–</td>"
        browse = (
            f'<a class="browse" href="{html.escape(link)}">browse samples</a>'
            if u.written
            else f'<span class="muted no-pages">{html.escape(NOT_WRITTEN)}</span>'
        )
        rows.append(
            "<tr>"
            f"<td>{html.escape(info.spec.checkpoint.checkpoint_id)}</td>"
            f"<td>{html.escape(info.task_display or info.spec.task)}</td>"
            f"<td><code>{html.escape(info.spec.template_id)}</code></td>"
            f"{counts}"
            f"<td>{html.escape(', '.join(u.graders)) or '-'}</td>"
            f"<td>{browse}</td>"
            "</tr>"
        )
    return (
        '<h2 id="per-sample-browser">Per-sample browser</h2>\n'
        "<p>Every stored sample of every unit: problem, gold answer, rendered prompt, full response, and each "
        "grader's extracted answer and verdict; filter by verdict, grader disagreement, change against the base "
        "model, code or language reasoning and truncation, or search the problem text.</p>\n"
        '<div class="table-wrap"><table class="sortable browser-units"><thead><tr><th>Checkpoint</th><th>Task</th>'
        "<th>Prompt</th><th>Samples</th><th>Pages</th><th>Graders</th><th>Browser</th></tr></thead>\n<tbody>"
        + "\n".join(rows)
        + "</tbody></table></div>\n"
    )
