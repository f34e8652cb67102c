"""The ``math_verify`` grader: Hugging Face Math-Verify's extraction and comparison.

The library is imported when a grader is constructed, not when this module is imported, so
listing graders does not pay for sympy and the LaTeX parser.

Two ways to grade, with the same outcomes
-----------------------------------------

:meth:`MathVerifyGrader.grade` is the plain call: ``math_verify.parse`` on the whole
completion, then ``math_verify.verify`` against the parsed gold answer. It is the reference.

:meth:`MathVerifyGrader.prepare` and :meth:`MathVerifyGrader.decide` split the same work in
two for :mod:`rlvr_audit.grading.engine`, which grades many samples fast:

- ``prepare(completion)`` (cheap, regular expressions only) finds the *candidates*
  math-verify would try, in the order it would try them, and normalises the first one. Its
  result is ``(head, tail)``: ``head`` is the first candidate (normalised LaTeX strings, or
  the groups of a plain-number match), ``tail`` the raw later candidates of the same
  priority and whether anything could come after them.
- ``decide(head, gold, tails)`` (expensive: LaTeX parsing and sympy) parses the gold answer,
  tries the head, and compares. When the head parses, the outcome depends on nothing else,
  so every sample whose completion has this head and this gold answer gets it: the engine
  judges each distinct ``(head, gold)`` once. When the head does not parse, the outcome
  depends on the tail, and ``decide`` answers per tail; a tail that runs out while more
  candidates could follow is *undecided* and the engine grades that sample with
  :meth:`~MathVerifyGrader.grade`.

Why the outcomes are identical (the exactness argument, for math-verify 0.9.0)
-------------------------------------------------------------------------------

``parse`` (``extract_target_from_pred``) groups its patterns by priority and, group by
group, collects every match of every pattern of the group (``finditer`` over the whole
text), sorts them rightmost-first (by end, then leftmost start; a stable sort in pattern
order), and tries them in turn: ``extract_match`` gives a (value, text) pair, the text of
every tried match is kept as a fallback, the first match with a value ends the search, and
the result is ``[value, first fallback]``. If no match of a group has a value it goes on to
the next group. ``verify`` then compares the gold with each element of that list.

1. *Same candidates, same order.* :func:`scan` runs math-verify's own compiled patterns
   (``get_extraction_regexes``, the very objects ``parse`` uses) group by group, sorts the
   matches with the same key and stops at the first group that has any match. It only skips
   text where a pattern provably cannot match:

   - a pattern whose source starts with ``(?i:answer)`` or ``(?i:final answer`` only matches
     where that anchor matches, so its scan starts at the first match of the anchor
     (compiled with the pattern's flags), and is skipped when there is none;
   - ``(?P<first_latexBoxed>\\\\boxed{.+})`` starts with the literal ``\\boxed{``: its scan
     starts at the first ``\\boxed{``;
   - the boxed LaTeX-environment pattern needs a ``\\boxed{`` inside the first environment
     it matches. Each environment's content excludes something (``$$``: no ``$$``; ``\\[``: no
     ``\\]``; ``$``, ``\\(``, ``[``: no newline), so a match containing a box at ``b`` starts
     at or after ``min(last newline before b - 1, last "$$" before b - 1, last "\\]" before
     b - 1 or else the first "\\[")``; this bound only grows with ``b``, so no match starts
     before the bound of the *first* box, and ``finditer(text, bound)`` (lookbehinds still see
     the text before ``bound``) yields exactly the matches of a scan from 0;
   - patterns of the lowest priority are scanned from the start, as math-verify does.

2. *Same values.* A candidate's value and text depend only on its ``groupdict()``:
   ``extract_expr`` reads nothing else (so it is called on a stand-in holding the groups), and
   ``extract_latex`` normalises each LaTeX group (``normalize_latex``; ``boxed="last"`` for the
   ``latexBoxed`` group), then parses it (``parse_latex_cached``, percentages through
   ``convert_to_pct``) and joins several groups into a ``FiniteSet``. :func:`_latex_value`
   repeats those lines after normalisation; normalising the head in ``prepare`` and the
   rest in ``decide`` calls the same functions on the same strings. The head key therefore
   determines the value, and the value together with the head's text (the first fallback)
   determines what ``verify`` sees.
3. *Same verdicts and errors.* ``grade`` and ``decide`` share the gold parsing and the
   comparison (:meth:`MathVerifyGrader._compare`), check the gold first, and turn exceptions
   into the same ``error`` messages (an exception in ``normalize_latex`` or ``extract_expr``
   aborts ``parse``; ``decide`` replays it at the same point of the trial order).

4. *Plain integers need no parsing* (:meth:`MathVerifyGrader.shortcut`). When the head is a
   plain integer literal (a single LaTeX group, not a percentage, whose normalised text is
   ``-?[0-9]+``; or a plain-number match without decimals or percent whose number text, as
   ``extract_expr`` builds it, is ``-?[0-9]+``) and the stripped gold answer is one too, both
   at most :data:`MAX_INT_CHARS` characters, the verdict is ``int(head) == int(gold)`` and
   ``extracted`` is the head's text. Why, in math-verify 0.9.0 / latex2sympy2_extended 1.11:

   - the gold ``$<digits>$`` holds no ``\\boxed`` and no letters, so the only pattern that
     matches it is the LaTeX-environment pattern, whose rightmost-ending, leftmost-starting
     match is the whole ``$...$``; ``normalize_latex`` leaves ASCII digits and a leading
     ``-`` as they are (its rules rewrite commands, letters, units, ``/``, a leading ``.``
     and the literal ``0.5``); the parser's ``NUMBER`` rule strips leading zeros
     (``parse_number``) and gives ``sympy.Number``, an ``Integer`` (unary minus on an
     ``Integer`` evaluates to an ``Integer``). So the gold parses to ``[Integer(g), text]``;
     ``extract_latex`` gives the head ``[Integer(p), text]`` the same way, ``extract_expr``
     gives ``[Number(text), text]`` with leading zeros stripped as in ``extract_expr`` (only
     for canonical literals: ``Number`` reads its text as Python, which refuses ``-01``, so a
     signed literal with leading zeros makes the plain call fail and takes the usual path);
   - ``verify`` compares every pair: ``Integer`` with ``Integer`` is ``sympy_str_eq``
     (``a == b``, exact), then ``sympy_numeric_eq`` (both ``Integer``: ``a == b``), then
     ``simplify(a - b).is_zero`` (a non-zero integer: false), so exactly ``p == g``; a string
     with a sympy value is never equal; two strings are equal only if identical, which
     implies ``p == g``. Nothing here can raise or take long (``sympy_str_eq`` only raises
     on ``nan``/``zoo``);
   - past about 4,300 digits sympy cannot read the number (Python's integer string limit):
     the plain call then fails to parse it, hence the :data:`MAX_INT_CHARS` bound; ``[0-9]``
     rather than ``\\d``, which also matches other scripts' digits.

   ``tests/graders/test_engine.py`` checks verdict and ``extracted`` against :meth:`grade` on
   leading zeros, signs, huge integers and random integers.

5. *The same parses, done faster.* ``decide`` parses LaTeX with
   :func:`rlvr_audit.grading._two_stage.parse_latex`: ANTLR's SLL prediction first, the
   library's own LL parse whenever that attempt fails; by ANTLR's contract a successful SLL
   parse is the LL parse tree, so the value (or the failure) is ``parse_latex_cached``'s (that
   module gives the argument). It parses the gold answer with :func:`_parse_gold_fast`, which
   is ``parse``'s extraction loop over :class:`_Scanner`'s candidates (points 1 and 2) with
   that parser, under the same single ``parsing_timeout``. :meth:`~MathVerifyGrader.grade`
   calls the library unchanged. ``tests/graders/test_two_stage.py`` compares both with the
   library on every published gold answer, on the candidates of long responses, on tricky
   and adversarial answers and on random text.

The fast path is only used with math-verify versions whose parser it mirrors
(:data:`FAST_PATH_VERSIONS`); with any other version ``prepare`` returns ``None`` and every
sample takes the plain call. ``tests/graders/test_engine.py`` checks the argument on a
corpus of long, realistic and hostile completions and on random text.

Known differences, both at the edge of what is reproducible at all:

- Timeouts are measured per step. ``parse`` has one ``parsing_timeout`` for scanning and
  parsing together; the fast path gives the scan (``prepare``) and the parsing (``decide``)
  one each, so a completion whose scan and parse *together* take just over the limit, while
  each takes less, is graded ``timeout`` by the plain call and not by the fast path. Both
  are wall-clock measurements, which no two runs reproduce exactly anyway.
- The LaTeX parser recurses; an answer nested so deeply that it exhausts Python's recursion
  limit fails a few stack frames earlier or later in one path than in the other (the
  failure is caught and the candidate counts as unparsable in both). Such answers also run
  into the parsing timeout first in practice.

One module, one concept (over 800 lines): the grader and its fast path must give the library's
outcomes exactly, so the fast path's extraction and parsing sit beside the plain path they are
checked against.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from importlib import metadata
from typing import Any, NamedTuple

from ._starts import last_matches, matches_from_starts, matches_reaching, start_finder, syncs_after_letters
from ._two_stage import parse_latex
from .base import GradeOutcome
from .latex import antlr_version

IMPLEMENTATION_VERSION = "2"
"""Version of this grader's own logic; bump it whenever a verdict could change (2: math-verify's
own 5 s time limits instead of 2 s)."""

FAST_PATH_VERSIONS = frozenset({"0.9.0"})
"""math-verify versions whose ``parse`` the fast path (:meth:`MathVerifyGrader.prepare`) mirrors."""

MAX_TAIL = 8
"""Most candidates after the head that ``prepare`` hands on; a longer list is cut and marked
incomplete (a sample that needs the cut part is graded by the plain call)."""

MAX_INT_CHARS = 1000
"""Longest integer literal (sign included) :meth:`MathVerifyGrader.shortcut` decides without
parsing; longer ones take the parser (which fails past about 4,300 digits)."""

_PLAIN_INT = re.compile(r"-?[0-9]+")
"""A plain integer literal: ASCII digits only (``\\d`` would also match other scripts' digits)."""

_CANONICAL_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
"""An integer without leading zeros: what a plain-number candidate must be to take the shortcut."""

Candidate = tuple[Any, ...]
"""One match math-verify would try, as a hashable, picklable tuple tagged by its first item:

- ``("latex", ((normalised, is_percentage), ...))``: a LaTeX match, its groups normalised
  (the first group, then ``next1`` .. ``next5``);
- ``("latex_raw", ((text, is_boxed_group, is_percentage), ...))``: the same before
  normalisation (tail candidates are only normalised if they are reached);
- ``("expr", integer, decimal, is_percentage, expr)``: a plain number or expression match.

Heads may also be ``("none",)`` (nothing matched at all), ``("timeout",)`` (the scan ran past
``parsing_timeout``), ``("raise", description)`` (normalising the head raised) or
``("thread",)`` (called off the main thread)."""


class Tail(NamedTuple):
    """The candidates after the head, in trial order."""

    candidates: tuple[Candidate, ...]
    """Raw candidates of the head's priority group (at most :data:`MAX_TAIL`)."""
    more: bool
    """Whether candidates could follow these (a lower priority group, or the list was cut)."""


class Prepared(NamedTuple):
    """What :meth:`MathVerifyGrader.prepare` finds in a completion."""

    head: Candidate
    """The first candidate, normalised: with the gold answer it fixes the outcome whenever it parses."""
    tail: Tail
    """What math-verify would try if the head does not parse."""


class Decision(NamedTuple):
    """What :meth:`MathVerifyGrader.decide` concludes for one ``(head, gold)`` pair."""

    outcome: GradeOutcome | None
    """The outcome of every completion with this head and gold answer (any tail), or ``None``
    when the head does not parse and the outcome depends on the tail."""
    per_tail: tuple[GradeOutcome | None, ...]
    """With ``outcome`` ``None``: one outcome per tail passed in, ``None`` where the tail ran out
    and the plain call must decide. Empty otherwise."""


_NO_TAIL = Tail((), False)
_NONE_HEAD: Candidate = ("none",)


def normalize_gold(gold: str) -> str:
    """The gold answer as math-verify's LaTeX extractor expects it.

    Published gold answers are bare LaTeX fragments (``\\frac{14}{3}``, ``070``, ``142.0``,
    ``\\text{(C)}``, ``\\left( 3, \\frac{\\pi}{2} \\right)``). The extractor only reads LaTeX
    inside math delimiters, so the stripped answer is wrapped in ``$...$`` unless it is
    already delimited. Nothing else is rewritten: every gold answer of math500, amc, aime24
    and aime25 grades ``correct`` against itself with this rule alone.
    """
    text = gold.strip()
    if len(text) >= 2 and text.startswith("$") and text.endswith("$"):
        return text
    return f"${text}$"


@functools.lru_cache(maxsize=4096)
def _parse_gold(normalized_gold: str, parsing_timeout: int) -> tuple[Any, ...]:
    """Parsed gold (cached: a problem's gold is parsed once per process, not once per sample).

    Raises what math-verify raises (timeouts included); exceptions are not cached.
    """
    # heavy (sympy and the ANTLR parser, about a second): only when grading
    from math_verify import LatexExtractionConfig, parse

    parsed = parse(
        normalized_gold,
        extraction_config=(LatexExtractionConfig(),),
        parsing_timeout=parsing_timeout,
        raise_on_error=True,
    )
    return tuple(parsed)


@functools.lru_cache(maxsize=4096)
def _parse_gold_fast(normalized_gold: str, parsing_timeout: int) -> tuple[Any, ...]:
    """:func:`_parse_gold` by the fast path's means: the same result, or the same exception.

    ``parse(text, extraction_config=(LatexExtractionConfig(),), raise_on_error=True)`` runs
    ``extract_target_from_pred`` under one ``parsing_timeout``: candidates in trial order, group
    by group, each normalised and parsed, the first with a value wins, and the result is
    ``[value, first fallback text]`` (or just the first fallback text if none has a value).
    This does the same with :class:`_Scanner` (the same matches in the same order, module
    docstring point 1) and :func:`_candidate_value` (the same values, point 2; LaTeX parsed by
    :func:`rlvr_audit.grading._two_stage.parse_latex`). Exceptions are not cached.
    """
    from math_verify.utils import timeout  # heavy (sympy and the ANTLR parser, about a second): only when grading

    return tuple(timeout(timeout_seconds=parsing_timeout)(_extract_gold)(normalized_gold))


def _extract_gold(text: str) -> list[Any]:
    """``extract_target_from_pred`` for the gold configuration (``fallback_mode="first_match"``)."""
    scanner = _gold_scanner()
    fallbacks: list[str] = []
    for _, matches in scanner.scan_all(text):
        for match, pattern in matches:
            value, fallback = _candidate_value(_candidate(match, pattern, normalize=True), pattern.target)
            if fallback:
                fallbacks.append(fallback)
            if value is not None:
                return [value, *fallbacks[:1]]
    return fallbacks[:1]


@functools.cache
def _gold_scanner() -> _Scanner:
    # heavy (sympy and the ANTLR parser, about a second): only when grading
    from math_verify import LatexExtractionConfig

    return _Scanner((LatexExtractionConfig(),))


def _extracted_text(parsed: list[Any]) -> str:
    """Human-readable form of a parse result: its matched text, else the sympy value's str."""
    for item in reversed(parsed):
        if isinstance(item, str):
            return item
    return str(parsed[0])


def _describe(exc: BaseException) -> str:
    """One-line description of an exception (type and message, message cut to 200 chars)."""
    message = str(exc).strip().replace("\n", " ")
    if len(message) > 200:
        message = message[:197] + "..."
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


_OFF_MAIN_THREAD = GradeOutcome(
    "error", None, "math-verify only grades in a process's main thread (signal timeouts); use grade_many"
)


# --- the fast path: candidates as math-verify tries them ------------------------------------


@dataclass(frozen=True)
class _Groups:
    """Stands in for a ``re.Match`` where math-verify only reads ``groupdict()``."""

    items: tuple[tuple[str, str | None], ...]

    def groupdict(self) -> dict[str, str | None]:
        return dict(self.items)


_ANCHOR_FINAL = "(?i:final answer"
_ANCHOR_ANSWER = "(?i:answer)"
_HOPE = r"\s?I hope"
_BOXED_PLAIN = r"(?P<first_latexBoxed>\\boxed{.+})"
_BOX = "\\boxed{"
_LATEX_GROUP_PREFIXES = ("first", "next1", "next2", "next3", "next4", "next5")
"""``extract_latex`` reads the first ``first_latex*`` group with a value, then ``next1`` .. ``next5``."""


@dataclass(frozen=True)
class _Pattern:
    """One of math-verify's compiled patterns, with where in a text its matches can start."""

    regex: Any
    """The compiled pattern (math-verify's own object)."""
    target: Any
    """Its extraction config (math-verify's own object)."""
    is_latex: bool
    """Whether its target is ``LatexExtractionConfig`` (else ``ExprExtractionConfig``)."""
    role: str
    """``final`` / ``answer`` (the source starts with that anchor), ``boxed_plain`` (starts with
    the literal ``\\boxed{``), ``boxed_env`` (the boxed LaTeX-environment pattern) or ``full``."""
    anchor: Any = None
    """For ``final`` / ``answer``: the anchor alone, compiled with the pattern's flags."""
    required: str | None = None
    """A literal every match contains (``I hope``), or ``None``."""
    latex_groups: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """For LaTeX patterns: per prefix (``first``, ``next1`` ..), its ``<prefix>_latex*`` group
    names in the order ``groupdict()`` lists them."""
    starts: Any = None
    """For ``full`` patterns: a function giving a sorted superset of where matches can start
    (:func:`rlvr_audit.grading._starts.start_finder`), or ``None`` (scan every position)."""


class _Scanner:
    """math-verify's pattern groups for the prediction configs, classified for :meth:`scan`."""

    def __init__(self, configs: Sequence[Any]) -> None:

        # heavy (sympy and the ANTLR parser, about a second): only when grading
        from math_verify import LatexExtractionConfig

        # heavy (sympy and the ANTLR parser, about a second): only when grading
        from math_verify.parser import get_extraction_regexes

        flat: list[tuple[int, _Pattern]] = []
        for patterns, target in get_extraction_regexes(configs):
            is_latex = isinstance(target, LatexExtractionConfig)
            for regex, priority in patterns:
                source: str = regex.pattern
                names = sorted(regex.groupindex, key=regex.groupindex.__getitem__)
                latex_groups = (
                    tuple(
                        (prefix, tuple(n for n in names if n.startswith(f"{prefix}_latex")))
                        for prefix in _LATEX_GROUP_PREFIXES
                    )
                    if is_latex
                    else ()
                )
                required = "I hope" if _HOPE in source else None
                if source.startswith(_ANCHOR_FINAL):
                    anchor = re.compile("(?i:final answer)", regex.flags)
                    pattern = _Pattern(regex, target, is_latex, "final", anchor, required, latex_groups)
                elif source.startswith(_ANCHOR_ANSWER):
                    anchor = re.compile("(?i:answer)", regex.flags)
                    pattern = _Pattern(regex, target, is_latex, "answer", anchor, required, latex_groups)
                elif source == _BOXED_PLAIN:
                    pattern = _Pattern(regex, target, is_latex, "boxed_plain", None, required, latex_groups)
                elif is_latex and priority == target.boxed_match_priority and "\\\\boxed{" in source:
                    pattern = _Pattern(
                        regex, target, is_latex, "boxed_env", None, required, latex_groups, start_finder(regex)
                    )
                else:
                    pattern = _Pattern(
                        regex, target, is_latex, "full", None, required, latex_groups, start_finder(regex)
                    )
                flat.append((priority, pattern))
        # math-verify: sorted(all patterns, key=priority) (stable), then groupby priority.
        flat.sort(key=lambda item: item[0])
        self.groups: list[tuple[int, list[_Pattern]]] = [
            (priority, [p for _, p in items]) for priority, items in itertools.groupby(flat, key=lambda item: item[0])
        ]
        self.last_priority = self.groups[-1][0] if self.groups else 0

    def scan(self, text: str, *, first: int | None = None) -> tuple[int, list[tuple[Any, _Pattern]]] | None:
        """The first priority group with a match: ``(priority, [(match, pattern), ...])`` in
        math-verify's trial order, or ``None`` if no pattern matches anywhere.

        ``first``: only the first ``first`` matches of the list are needed, and whether there
        are more. The list then starts with exactly those and has more than ``first`` entries
        only if the whole list does (number patterns of the lowest priority are scanned from
        near the end: :func:`rlvr_audit.grading._starts.last_matches`).
        """
        return next(self.scan_all(text, first=first), None)

    def scan_all(self, text: str, *, first: int | None = None) -> Iterator[tuple[int, list[tuple[Any, _Pattern]]]]:
        """Every priority group with a match, in order, each as :meth:`scan` gives it (lazily)."""
        anchors: dict[str, list[int]] = {}
        for priority, patterns in self.groups:
            per_pattern: list[list[tuple[Any, int, int, _Pattern]]] = [[] for _ in patterns]
            late: list[int] = []
            for index, pattern in enumerate(patterns):
                if pattern.required is not None and pattern.required not in text:
                    continue
                if first is not None and pattern.role == "full" and syncs_after_letters(pattern.regex):
                    late.append(index)  # number patterns: from near the end, once the rest is known
                    continue
                per_pattern[index] = [(m, m.start(), m.end(), pattern) for m in self._matches(pattern, text, anchors)]
            for index in reversed(late):  # the plain-number pattern (the last) matches most: first
                # Matches left out rank below `first + 1` or more that are given (they end earlier).
                assert first is not None
                pattern = patterns[index]
                known = sorted((x[2], -x[1]) for matches in per_pattern for x in matches)
                if len(known) > first:
                    matches = matches_reaching(pattern.regex, text, known[-(first + 1)][0])
                else:
                    matches, _ = last_matches(pattern.regex, text, first + 1)
                per_pattern[index] = [(m, m.start(), m.end(), pattern) for m in matches]
            found = [x for matches in per_pattern for x in matches]
            if found:
                found.sort(key=lambda x: (x[2], -x[1]), reverse=True)
                yield priority, [(m, pattern) for m, _, _, pattern in found]

    @staticmethod
    def _matches(pattern: _Pattern, text: str, anchors: dict[str, list[int]]) -> Iterator[Any]:
        """Exactly ``pattern.regex.finditer(text)``, without trying where no match can start."""
        role = pattern.role
        if role == "full":
            if pattern.starts is None:
                return pattern.regex.finditer(text)
            return matches_from_starts(pattern.regex, text, pattern.starts(text))
        if role in ("final", "answer"):
            if role not in anchors:
                anchors[role] = [hit.start() for hit in pattern.anchor.finditer(text)]
            return matches_from_starts(pattern.regex, text, anchors[role])
        box = text.find(_BOX)
        if box < 0:
            return iter(())
        if role == "boxed_plain":
            return pattern.regex.finditer(text, box)
        return _boxed_env_matches(pattern.regex, text, box, pattern.starts)


def _positions(text: str, needle: str, start: int, stop: int) -> list[int]:
    """Every start of ``needle`` in ``text`` in ``[start, stop)`` (overlapping ones too)."""
    found = []
    at = text.find(needle, max(start, 0), stop + len(needle) - 1)
    while 0 <= at < stop:
        found.append(at)
        at = text.find(needle, at + 1, stop + len(needle) - 1)
    return found


def _boxed_env_matches(regex: Any, text: str, box: int, find_starts: Any = None) -> Iterator[Any]:
    """``regex.finditer(text)`` for the boxed LaTeX-environment pattern; ``box``: the first ``\\boxed{``.

    A match's first environment holds a box, and its content cannot hold a newline (``$``,
    ``\\(``, ``[``), a ``$$`` (``$$``) or a ``\\]`` (``\\[``). So before ``line`` (one before the
    first box's line) a match can only start at a ``$$`` no earlier than one before the last
    ``$$`` preceding the box, or at a ``\\[`` no earlier than one before the last ``\\]``
    preceding it; later boxes only raise these bounds. Those few positions are tried one by
    one (``regex.match``: the attempt ``finditer`` would make there), then the scan goes on
    from ``line`` as ``finditer`` does (only at possible starts, given ``find_starts``: see
    :mod:`rlvr_audit.grading._starts`).
    """
    line = max(text.rfind("\n", 0, box) - 1, 0)
    starts: list[int] = []
    if line > 0:
        last_dd = text.rfind("$$", 0, box)
        if last_dd >= 0:
            starts += _positions(text, "$$", last_dd - 1, line)
        last_close = text.rfind("\\]", 0, box)
        starts += _positions(text, "\\[", last_close - 1 if last_close >= 0 else 0, line)
        starts.sort()
    pos = 0
    for start in starts:
        if start < pos:
            continue
        match = regex.match(text, start)
        if match is not None:
            yield match
            pos = match.end()
    begin = max(pos, line)
    if find_starts is None:
        yield from regex.finditer(text, begin)
    else:
        yield from matches_from_starts(regex, text, (s for s in find_starts(text) if s >= begin))


def _candidate(match: Any, pattern: _Pattern, *, normalize: bool) -> Candidate:
    """A match as a candidate tuple, its LaTeX groups normalised if ``normalize``.

    Mirrors how ``extract_latex`` / ``extract_expr`` read the match (math-verify 0.9.0).
    """
    groups = match.groupdict()
    if pattern.is_latex:
        picked: list[tuple[str, bool, bool]] = []
        for prefix, names in pattern.latex_groups:
            for name in names:
                val = groups[name]
                if val:
                    is_boxed = name.split("_")[1] == "latexBoxed"
                    picked.append((val, is_boxed, bool(groups.get(f"{prefix}_percent"))))
                    break
        if not normalize:
            return ("latex_raw", tuple(picked))
        return ("latex", tuple((_normalize(val, is_boxed, pattern.target), pct) for val, is_boxed, pct in picked))
    integer = next((val for name, val in groups.items() if name.startswith("integer") and val), "")
    decimal = next((val for name, val in groups.items() if name.startswith("decimal") and val), "")
    return ("expr", integer, decimal, bool(groups.get("percent")), groups.get("expr", ""))


def _normalize(text: str, is_boxed: bool, target: Any) -> str:
    """``normalize_latex`` with the config ``extract_latex`` uses for this group."""

    # heavy (sympy and the ANTLR parser): only when grading
    from latex2sympy2_extended.latex2sympy2 import normalize_latex

    config = target.normalization_config
    if is_boxed:
        config = replace(config, boxed="last")
    return str(normalize_latex(text, config=config))


@functools.lru_cache(maxsize=8192)
def _parse_latex(text: str) -> Any:
    """math-verify's ``parse_latex_cached`` behind a larger cache (it keeps 20 results), parsed
    by :func:`rlvr_audit.grading._two_stage.parse_latex` (same results, faster).

    The same answer text recurs under different gold answers (``2``, ``\\frac{1}{2}``); a
    deterministic function with a bigger cache gives the same results. Exceptions (failed
    parses, timeouts) are not cached, as in math-verify.
    """
    return parse_latex(text)


def _latex_value(normalized: tuple[tuple[str, bool], ...]) -> tuple[Any, str]:
    """The tail of ``extract_latex`` after normalisation: parse each group, join several."""
    # heavy (sympy and the ANTLR parser, about a second): only when grading
    from math_verify.parser import FiniteSet, convert_to_pct

    exprs: list[Any] = []
    strs: list[str] = []
    for text, is_percentage in normalized:
        strs.append(text)
        try:
            parsed = _parse_latex(text)
            if is_percentage:
                parsed = convert_to_pct(parsed)
            exprs.append(parsed)
        except Exception:
            exprs.append(None)
    if not exprs:
        return None, ""
    if len(exprs) > 1 and all(expr is not None for expr in exprs):
        elements: list[Any] = []
        for expr in exprs:
            if isinstance(expr, FiniteSet):
                elements.extend(expr.args)
            else:
                elements.append(expr)
        return FiniteSet(*elements), " and ".join(strs)
    return exprs[0], strs[0]


def _candidate_value(candidate: Candidate, latex_target: Any) -> tuple[Any, str]:
    """``extract_match`` for a candidate tuple: ``(value or None, text)``. May raise as it does."""
    tag = candidate[0]
    if tag == "latex":
        return _latex_value(candidate[1])
    if tag == "latex_raw":
        return _latex_value(tuple((_normalize(val, boxed, latex_target), pct) for val, boxed, pct in candidate[1]))
    if tag == "expr":
        # heavy (sympy and the ANTLR parser, about a second): only when grading
        from math_verify.parser import extract_expr

        _, integer, decimal, is_percentage, expr = candidate
        value, text = extract_expr(
            _Groups(
                (
                    ("expr", expr),
                    ("integer", integer or None),
                    ("decimal", decimal or None),
                    ("percent", "%" if is_percentage else None),
                )
            )
        )
        return value, text
    raise ValueError(f"not a candidate: {candidate!r}")


def plain_integer(head: Candidate) -> str | None:
    """The text math-verify reports for ``head`` when it is a plain integer literal, else ``None``.

    A plain integer: a LaTeX candidate with one group, not a percentage, whose normalised text
    is ``-?[0-9]+``; or a plain-number candidate with no decimals and no percent whose number
    text (built as ``extract_expr`` does: spaces and commas dropped, leading zeros stripped) is
    ``-?(0|[1-9][0-9]*)`` (a sign keeps the zeros after it, and ``sympy.Number("-01")`` fails).
    At most :data:`MAX_INT_CHARS` characters. The module docstring (point 4) shows that such a
    head parses to that integer and reports that text.
    """
    tag = head[0]
    if tag == "latex":
        groups = head[1]
        if len(groups) != 1 or groups[0][1]:
            return None
        text: str = groups[0][0]
    elif tag == "expr":
        _, integer, decimal, is_percentage, _ = head
        if not integer or decimal or is_percentage:
            return None
        text = integer.translate(str.maketrans("", "", ", ")).lstrip("0") or "0"
        if not _CANONICAL_INT.fullmatch(text):  # "-01": sympy.Number reads it as Python, which refuses
            return None
    else:
        return None
    if len(text) > MAX_INT_CHARS or not _PLAIN_INT.fullmatch(text):
        return None
    return text


class MathVerifyGrader:
    """Grade with Math-Verify (``math_verify.parse`` + ``math_verify.verify``).

    Gold: :func:`normalize_gold` (wrap in ``$...$``), parsed with ``LatexExtractionConfig()``.
    Prediction: the whole completion parsed with ``LatexExtractionConfig()`` (default
    ``boxed_match_priority=50``) and ``ExprExtractionConfig()``: Math-Verify's own MATH-500
    setting. Extraction tries patterns by priority: "final answer is ... I hope" (0), then
    ``\\boxed{...}`` and "final answer ... is" (50), "answer:" (100), "answer" (200), and finally
    any LaTeX environment or plain number/expression (300); within one priority the rightmost
    match that parses wins. The answer is correct iff ``verify(gold, prediction)`` is true for
    some pair of parsed forms (sympy value or matched string).

    Verdicts: ``correct``/``incorrect`` when something was extracted; ``truncated`` (cut at the
    token limit) or ``no_answer`` when nothing was; ``timeout`` when Math-Verify's own
    parsing or comparison timeout fired; ``error`` when it raised, or when the gold answer
    itself cannot be parsed.

    Two ways to grade with the same outcomes: :meth:`grade` (the plain call on the whole
    completion) and :meth:`prepare` + :meth:`decide` (the fast path the grading engine uses;
    the module docstring gives the argument why the outcomes are identical).

    Timeouts are Math-Verify's ``signal.alarm`` timeouts (whole seconds, main thread only):
    ``parsing_timeout`` for each parse and ``verify_timeout`` for each comparison. Called
    off the main thread, :meth:`grade` returns ``error``; use
    :func:`rlvr_audit.grading.engine.grade_many`, which also enforces a hard wall-clock limit
    (a signal cannot interrupt code stuck in C, such as a huge integer power).

    Known issues (all inherited from Math-Verify 0.9.0 and latex2sympy2_extended 1.11):

    - No answer is rarely "no answer": without an anchor, the rightmost LaTeX fragment or
      plain number anywhere in the text is extracted. A completion cut mid-reasoning is
      therefore usually graded ``incorrect`` (or, by luck, ``correct``), and ``no_answer`` /
      ``truncated`` only arise from text that holds no number and no math at all.
    - ``\\boxed{}`` and "final answer is" have the same priority: ``\\boxed{3}. So the final
      answer is $5$`` extracts 5, unlike paper-style graders that always take the last box.
    - Several boxes close together (under 10 characters apart, or under 70 with "and", "or",
      "," or ";" between them) are joined into one set: ``\\boxed{3} then \\boxed{5}`` is
      ``{3, 5}`` and equals neither 3 nor 5.
    - Lenient on purpose: percentages (gold ``0.5`` equals ``50\\%``; gold ``50\\%`` equals
      ``50``), floats rounded to 6 decimals (``4.666667`` equals ``\\frac{14}{3}``, ``4.67``
      does not), units and ``\\text{ degrees}`` dropped, ``x = 5`` equals ``5``, case-folded
      text (``\\text{Evelyn}`` equals ``Evelyn``), choice letters (``\\text{(C)}`` equals
      ``C`` and ``(C)`` when they are in math or a box; "The answer is C" in prose extracts
      nothing).
    - Ambiguous pairs: ``(-2,1)`` parses as an open interval but ``(15,-29)`` as a tuple;
      gold intervals do not equal predicted inequalities (``-2<x<1``).
    - ``extracted`` is the text of the first candidate tried (the rightmost at the winning
      priority); if that one failed to parse and an earlier one was compared, ``extracted``
      shows the failed text.
    """

    grader_id = "math_verify"

    def __init__(self, *, parsing_timeout: int = 5, verify_timeout: int = 5) -> None:
        """Import Math-Verify and fix the timeouts (whole seconds, at least 1; the defaults are
        math-verify's own, so that a verdict is the one its documented loop gives)."""
        if parsing_timeout < 1 or verify_timeout < 1:
            raise ValueError("math-verify timeouts are whole seconds, at least 1")
        # heavy (sympy and the ANTLR parser, about a second): only when grading
        from math_verify import ExprExtractionConfig, LatexExtractionConfig

        self.parsing_timeout = int(parsing_timeout)
        self.verify_timeout = int(verify_timeout)
        library_version = metadata.version("math-verify")
        self.version = (
            f"{IMPLEMENTATION_VERSION}+math-verify=={library_version}"
            f"+latex2sympy2_extended=={metadata.version('latex2sympy2_extended')}"
            f"+antlr4-python3-runtime=={antlr_version()}"
        )
        self._latex_config = LatexExtractionConfig()
        self._pred_config = (self._latex_config, ExprExtractionConfig())
        self.fast_path = library_version in FAST_PATH_VERSIONS
        """Whether :meth:`prepare` mirrors this math-verify version (else it returns ``None``)."""
        self._scanner: _Scanner | None = None

    def with_time_scale(self, factor: float) -> MathVerifyGrader:
        """The same grader with both time limits multiplied by ``factor`` (rounded up to whole
        seconds): how the grading engine retries a sample that timed out."""
        return MathVerifyGrader(
            parsing_timeout=math.ceil(self.parsing_timeout * factor),
            verify_timeout=math.ceil(self.verify_timeout * factor),
        )

    # --- the plain call ----------------------------------------------------------------

    def grade(self, *, completion: str, gold: str, truncated: bool) -> GradeOutcome:
        """Grade one completion; see the class docstring for the verdicts."""
        if not _in_main_thread():
            return _OFF_MAIN_THREAD
        from math_verify import parse  # heavy (sympy and the ANTLR parser, about a second): only when grading

        # heavy (sympy and the ANTLR parser, about a second): only when grading
        from math_verify.errors import TimeoutException

        gold_parsed = self._gold(gold)
        if isinstance(gold_parsed, GradeOutcome):
            return gold_parsed
        try:
            pred = parse(
                completion,
                extraction_config=self._pred_config,
                parsing_timeout=self.parsing_timeout,
                raise_on_error=True,
            )
        except TimeoutException:
            return self._parse_timeout()
        except Exception as exc:
            return self._parse_error(exc)
        return self._compare(gold_parsed, pred, truncated=truncated)

    # --- the fast path -----------------------------------------------------------------

    def prepare(self, completion: str) -> Prepared | None:
        """The candidates math-verify would try on ``completion`` (cheap: regular expressions
        and one ``normalize_latex``), or ``None`` when this math-verify version has no fast path.

        Never raises: a scan past ``parsing_timeout`` gives the head ``("timeout",)``, an
        exception while normalising the head gives ``("raise", description)``. Main thread only
        (off it the head is ``("thread",)``).
        """
        if not self.fast_path:
            return None
        if not _in_main_thread():
            return Prepared(("thread",), _NO_TAIL)
        # heavy (sympy and the ANTLR parser, about a second): only when grading
        from math_verify.errors import TimeoutException
        from math_verify.utils import timeout  # heavy (sympy and the ANTLR parser, about a second): only when grading

        try:
            prepared: Prepared = timeout(timeout_seconds=self.parsing_timeout)(self._prepare)(completion)
        except TimeoutException:
            return Prepared(("timeout",), _NO_TAIL)
        except Exception as exc:  # normalize_latex raised: parse would raise the same
            return Prepared(("raise", _describe(exc)), _NO_TAIL)
        return prepared

    def _prepare(self, completion: str) -> Prepared:
        if self._scanner is None:
            self._scanner = _Scanner(self._pred_config)
        found = self._scanner.scan(completion, first=1 + MAX_TAIL)
        if found is None:
            return Prepared(_NONE_HEAD, _NO_TAIL)
        priority, matches = found
        head = _candidate(*matches[0], normalize=True)
        rest = matches[1 : 1 + MAX_TAIL]
        tail = Tail(
            tuple(_candidate(m, pattern, normalize=False) for m, pattern in rest),
            len(matches) - 1 > MAX_TAIL or priority != self._scanner.last_priority,
        )
        return Prepared(head, tail)

    def decide(self, head: Candidate, gold: str, tails: Sequence[Tail]) -> Decision:
        """The outcome for a prepared head and a gold answer (see :class:`Decision`).

        ``truncated`` plays no part: a completion with nothing to extract gets ``no_answer``,
        which the caller turns into ``truncated`` for a completion cut at the token limit.
        Never raises. Main thread only (off it: the ``error`` outcome :meth:`grade` gives).
        """
        if not _in_main_thread():
            return Decision(_OFF_MAIN_THREAD, ())
        quick = self.shortcut(head, gold)
        if quick is not None:
            return Decision(quick, ())
        # heavy (sympy and the ANTLR parser, about a second): only when grading
        from math_verify.errors import TimeoutException
        from math_verify.utils import timeout  # heavy (sympy and the ANTLR parser, about a second): only when grading

        gold_parsed = self._gold(gold, fast=True)
        if isinstance(gold_parsed, GradeOutcome):
            return Decision(gold_parsed, ())
        tag = head[0]
        if tag == "none":
            return Decision(self._compare(gold_parsed, [], truncated=False), ())
        if tag == "timeout":
            return Decision(self._parse_timeout(), ())
        if tag == "raise":
            return Decision(
                GradeOutcome("error", None, f"parsing the completion failed: {head[1]}"),
                (),
            )
        if tag == "thread":
            return Decision(_OFF_MAIN_THREAD, ())
        limit = timeout(timeout_seconds=self.parsing_timeout)
        try:
            value, text = limit(_candidate_value)(head, self._latex_config)
        except TimeoutException:
            return Decision(self._parse_timeout(), ())
        except Exception as exc:
            return Decision(self._parse_error(exc), ())
        if value is not None:
            pred = [value, text] if text else [value]
            return Decision(self._compare(gold_parsed, pred, truncated=False), ())
        per_tail: list[GradeOutcome | None] = []
        for tail in tails:
            try:
                rest = limit(self._continue)(text, tail)
            except TimeoutException:
                per_tail.append(self._parse_timeout())
                continue
            except Exception as exc:
                per_tail.append(self._parse_error(exc))
                continue
            per_tail.append(None if rest is None else self._compare(gold_parsed, rest, truncated=False))
        return Decision(None, tuple(per_tail))

    def shortcut(self, head: Candidate, gold: str) -> GradeOutcome | None:
        """The outcome for a plain-integer head and a plain-integer gold answer, without parsing.

        ``correct`` iff the two integers are equal, ``extracted`` the head's text (what
        :meth:`grade` reports); ``None`` unless both are plain integer literals (see
        :func:`plain_integer`; the gold answer stripped, at most :data:`MAX_INT_CHARS`
        characters). Exactly :meth:`decide`'s outcome (module docstring, point 4). Pure Python,
        any thread, microseconds.
        """
        if not self.fast_path:
            return None
        text = plain_integer(head)
        if text is None:
            return None
        target = gold.strip()
        if len(target) > MAX_INT_CHARS or not _PLAIN_INT.fullmatch(target):
            return None
        return GradeOutcome("correct" if int(text) == int(target) else "incorrect", text)

    def _continue(self, head_text: str, tail: Tail) -> list[Any] | None:
        """``extract_target_from_pred`` after a head that did not parse; ``None``: undecided."""
        fallbacks = [head_text] if head_text else []
        for candidate in tail.candidates:
            value, text = _candidate_value(candidate, self._latex_config)
            if text:
                fallbacks.append(text)
            if value is not None:
                return [value, *fallbacks[:1]]
        if tail.more:
            return None
        return fallbacks[:1]

    # --- shared by both paths ----------------------------------------------------------

    def _gold(self, gold: str, *, fast: bool = False) -> tuple[Any, ...] | GradeOutcome:
        """The parsed gold answer, or the outcome that grading stops with (``fast``: parsed by
        :func:`_parse_gold_fast`, the same result)."""
        # heavy (sympy and the ANTLR parser, about a second): only when grading
        from math_verify.errors import TimeoutException

        parse_gold = _parse_gold_fast if fast else _parse_gold
        try:
            gold_parsed = parse_gold(normalize_gold(gold), self.parsing_timeout)
        except TimeoutException:
            return GradeOutcome("timeout", None, f"parsing the gold answer took over {self.parsing_timeout} s")
        except Exception as exc:  # a grader reports failures as verdicts, never raises
            return GradeOutcome("error", None, f"parsing the gold answer failed: {_describe(exc)}")
        if not gold_parsed:
            return GradeOutcome("error", None, f"the gold answer {gold!r} holds no parsable answer")
        return gold_parsed

    def _parse_timeout(self) -> GradeOutcome:
        return GradeOutcome("timeout", None, f"parsing the completion took over {self.parsing_timeout} s")

    @staticmethod
    def _parse_error(exc: BaseException) -> GradeOutcome:
        return GradeOutcome("error", None, f"parsing the completion failed: {_describe(exc)}")

    def _compare(self, gold_parsed: tuple[Any, ...], pred: list[Any], *, truncated: bool) -> GradeOutcome:
        """Compare a parse result with the parsed gold answer, pair by pair."""
        from math_verify import verify  # heavy (sympy and the ANTLR parser, about a second): only when grading

        # heavy (sympy and the ANTLR parser, about a second): only when grading
        from math_verify.errors import TimeoutException

        if not pred:
            return GradeOutcome("truncated" if truncated else "no_answer", None)
        extracted = _extracted_text(pred)
        failure: str | None = None
        timed_out = False
        # Pair by pair (as verify does internally) so that one failing pair neither hides a
        # matching pair nor turns a failure into a silent "incorrect".
        for gold_item, pred_item in itertools.product(gold_parsed, pred):
            try:
                if verify(gold_item, pred_item, timeout_seconds=self.verify_timeout, raise_on_error=True):
                    return GradeOutcome("correct", extracted)
            except TimeoutException:
                timed_out = True
            except Exception as exc:  # reported as the error verdict below
                failure = failure or _describe(exc)
        if timed_out:
            message = f"comparing with the gold answer took over {self.verify_timeout} s"
            return GradeOutcome("timeout", extracted, message)
        if failure is not None:
            return GradeOutcome("error", extracted, f"comparing with the gold answer failed: {failure}")
        return GradeOutcome("incorrect", extracted)
