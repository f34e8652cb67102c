"""Matching imported items to task problems by problem text, never by position.

Published generation files order and number their problems in their own way (a JSON
``index``, Qwen's ``idx``, lm-eval's ``doc_id``), so positions cannot be trusted to line up
with a task file. An item is matched by the text of its problem instead:

1. Texts are compared in :func:`match_form`: figure text removed (Asymptote ``[asy]...[/asy]``
   blocks, web addresses, and a one-word caption line such as ``Graph`` standing above an address),
   then :func:`normalise` (Unicode NFKC, every run of whitespace made one space, ends stripped).
   So line-break and spacing differences do not matter, and a source that dropped a problem's
   figure (as some published AIME 2024 files do) still matches it; every other character must
   be the same.
2. An item offers its texts in order of preference (e.g. Qwen's ``question`` field, then a
   rendered prompt). For each text, an exact match of the whole normalised text wins.
3. Otherwise the problem whose normalised question *occurs inside* the text is sought (a
   chat-formatted prompt holds the problem among template words). The search uses an index of
   each question's first :data:`ANCHOR_CHARS` characters, so one pass over the text finds
   every candidate; each candidate is then verified in full. If several problems occur, the
   longest wins when it is strictly the longest; otherwise the item is ambiguous.

Known limitation: a prompt that quotes several task problems (few-shot examples drawn from
the same benchmark) is matched to the longest of them or reported as ambiguous.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from ..core.records import Problem

ANCHOR_CHARS = 32
"""Length of the question prefix used to index problems (shorter questions use their length)."""

_WS = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Text with NFKC applied, whitespace runs collapsed to one space, stripped."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text)).strip()


_ASY = re.compile(r"\[asy\].*?\[/asy\]", re.DOTALL | re.IGNORECASE)
"""An Asymptote figure block as MATH/AIME problems write it."""
_CAPTIONED_URL = re.compile(r"(?m)^[ \t]*[A-Za-z]+[ \t]*:?[ \t]*\r?\n[ \t]*https?://\S+")
"""A one-word caption line (``Graph``, ``Diagram``) directly above a web address."""
_URL = re.compile(r"https?://\S+")
"""A web address (a link to a figure)."""


def strip_figures(text: str) -> str:
    """``text`` without figure material: ``[asy]...[/asy]`` blocks, web addresses and a one-word
    caption line above an address (each replaced by a space)."""
    if "[asy]" not in text.lower() and "://" not in text:
        return text
    text = _ASY.sub(" ", text)
    text = _CAPTIONED_URL.sub(" ", text)
    return _URL.sub(" ", text)


def match_form(text: str) -> str:
    """Text as compared for matching: :func:`strip_figures`, then :func:`normalise`."""
    return normalise(strip_figures(text))


MatchKind = Literal["exact", "contained", "ambiguous", "none"]
"""How an item was matched: its text equals a question (``exact``), a question occurs inside
its text (``contained``), several questions fit equally well (``ambiguous``), or none (``none``)."""


@dataclass(frozen=True)
class MatchOutcome:
    """The result of matching one item."""

    kind: MatchKind
    """See :data:`MatchKind`."""
    problem: Problem | None
    """The matched problem (``exact`` and ``contained`` only)."""
    text: str | None = None
    """The normalised item text the match was found in (for deriving the prompt's template)."""
    candidates: tuple[str, ...] = ()
    """Problem ids that fit equally well (``ambiguous`` only)."""


class ProblemIndex:
    """An index of one task's problems by normalised question text."""

    def __init__(self, problems: list[Problem]) -> None:
        if not problems:
            raise ValueError("cannot index an empty problem list")
        self.problems = problems
        self._questions = {p.problem_id: match_form(p.question) for p in problems}
        self._by_text: dict[str, list[Problem]] = {}
        for p in problems:
            self._by_text.setdefault(self._questions[p.problem_id], []).append(p)
        lengths = [len(q) for q in self._questions.values() if q]
        self._anchor = max(1, min(ANCHOR_CHARS, min(lengths) if lengths else 1))
        self._by_anchor: dict[str, list[Problem]] = {}
        for p in problems:
            q = self._questions[p.problem_id]
            if q:
                self._by_anchor.setdefault(q[: self._anchor], []).append(p)

    def question(self, problem: Problem) -> str:
        """The question of one of the indexed problems, in :func:`match_form`."""
        return self._questions[problem.problem_id]

    def match(self, texts: tuple[str, ...] | list[str]) -> MatchOutcome:
        """Match an item offering ``texts`` (most specific first); see the module docstring."""
        for raw in texts:
            text = match_form(raw)
            if not text:
                continue
            exact = self._by_text.get(text)
            if exact is not None:
                if len(exact) == 1:
                    return MatchOutcome("exact", exact[0], text)
                return MatchOutcome("ambiguous", None, text, tuple(p.problem_id for p in exact))
            found = self._contained(text)
            if not found:
                continue
            longest = max(len(self._questions[p.problem_id]) for p in found)
            best = [p for p in found if len(self._questions[p.problem_id]) == longest]
            if len(best) == 1:
                return MatchOutcome("contained", best[0], text)
            return MatchOutcome("ambiguous", None, text, tuple(sorted(p.problem_id for p in best)))
        return MatchOutcome("none", None)

    def _contained(self, text: str) -> list[Problem]:
        """Every indexed problem whose normalised question occurs in ``text``."""
        a = self._anchor
        found: dict[str, Problem] = {}
        by_anchor = self._by_anchor
        questions = self._questions
        for i in range(len(text) - a + 1):
            cands = by_anchor.get(text[i : i + a])
            if cands is None:
                continue
            for p in cands:
                if p.problem_id not in found and text.startswith(questions[p.problem_id], i):
                    found[p.problem_id] = p
        return list(found.values())


_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


def _gold_form(answer: str) -> str:
    """A gold answer reduced for comparison: NFKC, no whitespace, no surrounding ``$``."""
    text = "".join(unicodedata.normalize("NFKC", answer).split())
    while len(text) >= 2 and text.startswith("$") and text.endswith("$"):
        text = text[1:-1]
    return text


def same_gold(source: str, ours: str) -> bool:
    """Whether a source file's gold answer agrees with the task file's.

    Equal after :func:`_gold_form` (whitespace and ``$`` delimiters ignored), or both plain
    decimal numbers of equal value (``"070"`` = ``"70"``, ``"142.0"`` = ``"142"``). This is a
    sanity check on the source, not grading: a mismatch is counted and reported, and the unit
    is graded against the task file's answer.
    """
    a, b = _gold_form(source), _gold_form(ours)
    if a == b:
        return True
    a, b = a.replace(",", ""), b.replace(",", "")
    if _NUMBER.match(a) and _NUMBER.match(b):
        return float(a) == float(b)
    return False
