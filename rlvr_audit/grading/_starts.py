"""``regex.finditer(text)`` for math-verify's patterns, trying only where a match can start.

Why: math-verify's lowest-priority patterns (any LaTeX environment, any number) have no
literal prefix, so Python's ``re`` tries their large alternations at *every* position of a
response: for a long chain of thought that is most of the cost of finding its answer, and
the cost grows with the response, not with the answer. Every match of these patterns starts
at one of a few characters, though, and those can be found at C speed with literal or
character-class searches. :func:`matches_from_starts` then makes exactly the attempts
``finditer`` would make that could succeed:

``finditer`` tries ``regex.match(text, p)`` at ``p = 0, 1, 2, ...``; after a match ``m`` it
goes on from ``m.end()`` (the patterns here never match the empty string). An attempt at a
position that is not a *possible start* fails, so skipping it changes nothing. Given a
sorted superset of the possible starts, trying ``regex.match(text, s)`` at each one that is
not before the end of the previous match yields the same matches, in the same order.
``regex.match(text, s)`` is the attempt ``finditer`` makes at ``s``: lookbehinds still see
the text before ``s`` and ``^`` still matches only at the real start of the text.

The possible starts of each pattern (math-verify 0.9.0; the pattern source is checked by its
SHA-256, and any other pattern is scanned with plain ``finditer``):

- the LaTeX-environment pattern (and its boxed variant of priority 50, whose alternatives are
  the same less the fraction): its first item is one of ``$$``, ``\\[``, ``$``, ``\\(``,
  ``\\s\\[`` (a whitespace character, then ``[``) and ``-?\\frac{``; so a match starts at a ``$``,
  at a ``\\`` followed by ``[`` or ``(``, at ``\\frac{`` or the ``-`` before it, or at a
  whitespace character followed by ``[``;
- the two number patterns: ``(?:^|\\s|\\=)(?:\\*\\*)?`` then (expression) ``-?\\(?-?\\d`` or
  (number) an optional currency sign, then ``-``, a digit or ``.``; so a match starts at
  position 0 or at a whitespace character or ``=`` that is followed, after an optional
  ``**`` and at most one more character, by ``-``, ``.``, ``(`` or a digit (``\\d`` with the
  pattern's own flags, so every Unicode digit).

The number patterns match a lot (every number of a response), and only the last few matches
of the lowest priority are ever tried (the head and :data:`~rlvr_audit.grading.math_verify.
MAX_TAIL` more, rightmost first). :func:`last_matches` finds them from near the end: no
character of a number match is an ASCII letter other than those of ``percent``,
``percentage`` and ``Pct`` (the patterns are case-sensitive), so at a position ``q`` right
after any other ASCII letter no match can be in progress, ``finditer`` is at ``q`` in its
search, and ``regex.finditer(text, q)`` yields exactly the matches of a full scan that start
at or after ``q`` (every earlier one ends before ``q``). The window grows until it holds
enough matches or reaches the start of the text.

Patterns that begin with an anchor (``(?i:answer)``, ``(?i:final answer``) start where the
anchor matches; :mod:`rlvr_audit.grading.math_verify` passes those positions in.
``tests/graders/test_starts.py`` compares every pattern with ``finditer`` on real responses,
on tricky fragments and on random text.
"""

from __future__ import annotations

import hashlib
import heapq
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

_LATEX_ENVIRONMENT = "56e8adcc9eb37d34"
"""SHA-256 prefix of math-verify 0.9.0's LaTeX-environment pattern (priority 300)."""
_BOXED_ENVIRONMENT = "9a5a5d83c484d9c4"
"""... and of its boxed LaTeX-environment pattern (priority 50), whose starts are a subset."""
_NUMBERS = frozenset({"e66c09aa9f69b520", "50c18c99ede007f7"})
"""SHA-256 prefixes of its expression and number patterns (priority 300)."""

_DOLLAR = re.compile(r"\$")
_BRACKET_OPEN = re.compile(r"\\[\[(]")
_FRAC = re.compile(r"\\frac\{")
_SPACE_BRACKET = re.compile(r"\s\[")


_SYNC_LETTERS = frozenset("bdfhijklmoqsuvwxyzABCDEFGHIJKLMNOQRSTUVWXYZ")
"""ASCII letters that no number match contains (all but ``p e r c n t a g P``)."""
_WINDOW = 2048
"""First window of :func:`last_matches`, in characters (it grows fourfold)."""
_SYNC_SEARCH = 512
"""How far back from a window's edge :func:`last_matches` looks for a letter to start at."""


def source_id(regex: Any) -> str:
    """The first 16 hex digits of the SHA-256 of a compiled pattern's source."""
    return hashlib.sha256(regex.pattern.encode("utf-8")).hexdigest()[:16]


def _latex_starts(text: str) -> Iterator[int]:
    """Every position where a LaTeX-environment match can start, ascending (duplicates possible)."""
    frac: list[int] = []
    for m in _FRAC.finditer(text):
        at = m.start()
        if at > 0 and text[at - 1] == "-":
            frac.append(at - 1)
        frac.append(at)
    return heapq.merge(
        (m.start() for m in _DOLLAR.finditer(text)),
        (m.start() for m in _BRACKET_OPEN.finditer(text)),
        frac,
        (m.start() for m in _SPACE_BRACKET.finditer(text)),
    )


def _number_starts(flags: int) -> Callable[[str], Iterator[int]]:
    """Possible starts of the number patterns: 0, and ``[\\s=]`` before a number-like character."""
    before = re.compile(r"[\s=](?=(?:\*\*)?.?[-.(\d])", flags | re.DOTALL)

    def starts(text: str) -> Iterator[int]:
        yield 0
        for m in before.finditer(text):
            yield m.start()

    return starts


def syncs_after_letters(regex: Any) -> bool:
    """Whether :func:`last_matches` may scan ``regex`` from near the end (the number patterns)."""
    return source_id(regex) in _NUMBERS


def last_matches(regex: Any, text: str, need: int) -> tuple[list[Any], bool]:
    """The last matches of ``regex.finditer(text)``, in order: at least ``need`` of them, or all.

    Returns ``(matches, complete)``: ``complete`` when ``matches`` is the whole list, else
    ``matches`` holds at least ``need`` matches and every match of the full scan left out ends
    before the first one given. Only for patterns :func:`syncs_after_letters` accepts.
    """
    window = _WINDOW
    while True:
        edge = len(text) - window
        if edge <= 0:
            return list(regex.finditer(text)), True
        start = next(
            (q for q in range(edge, max(edge - _SYNC_SEARCH, 0), -1) if text[q - 1] in _SYNC_LETTERS),
            None,
        )
        if start is not None:
            found = list(regex.finditer(text, start))
            if len(found) >= need:
                return found, False
        window *= 4


def matches_reaching(regex: Any, text: str, floor: int) -> list[Any]:
    """Every match of ``regex.finditer(text)`` that ends at or after ``floor`` (and perhaps a few
    that end before it), in order. Only for patterns :func:`syncs_after_letters` accepts.

    Scans from the last position ``q <= floor`` right after a letter no match contains: a
    match of the full scan that starts before ``q`` ends before ``q``, so before ``floor``.
    """
    start = next((q for q in range(min(floor, len(text)), 0, -1) if text[q - 1] in _SYNC_LETTERS), 0)
    return list(regex.finditer(text, start))


def start_finder(regex: Any) -> Callable[[str], Iterable[int]] | None:
    """A function giving a sorted superset of ``regex``'s match starts in a text, or ``None``
    when ``regex`` is not one of the patterns this module knows (scan it with ``finditer``)."""
    known = source_id(regex)
    if known in (_LATEX_ENVIRONMENT, _BOXED_ENVIRONMENT):
        return _latex_starts
    if known in _NUMBERS:
        return _number_starts(regex.flags)
    return None


def matches_from_starts(regex: Any, text: str, starts: Iterable[int]) -> Iterator[Any]:
    """Exactly ``regex.finditer(text)``, given a sorted superset ``starts`` of its match starts.

    ``regex`` must never match the empty string (true of every pattern this is used for:
    each begins with at least one literal character or an anchor).
    """
    pos = 0
    for start in starts:
        if start < pos:
            continue
        match = regex.match(text, start)
        if match is not None:
            yield match
            pos = match.end()
