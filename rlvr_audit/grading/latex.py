"""Text helpers shared by the graders: brace matching, the last box, the answer-length limit.

Pure functions on strings, linear in the length of their input (no regular expression here
can backtrack), so they are safe on hostile completions: a megabyte of text, ten thousand
nested braces, a box that never closes.
"""

from __future__ import annotations

import re
from importlib import metadata

from .base import GradeOutcome

MAX_ANSWER_CHARS = 1000
"""Longest extracted answer a grader compares, in characters.

Gold answers of math500, amc, aime24 and aime25 are at most 53 characters and a 3x3 matrix is
under 200, so a longer "answer" is a grader's extraction gone wrong (a box around a whole
derivation) or a hostile input. Graders do not compare such answers: :func:`clip_answer`
shortens them for the record and :func:`too_long` turns them into the ``error`` verdict.
"""

_BOX_OPENING = re.compile(r"\\(?:boxed|fbox)\s*\{")
"""``\\boxed{`` or ``\\fbox{``, optionally with spaces before the brace."""


def matching_brace(text: str, open_index: int) -> int | None:
    """Index of the ``}`` that closes the ``{`` at ``open_index``, or ``None`` if it never closes.

    Escaped characters are skipped: ``\\{`` and ``\\}`` are literal braces, not grouping, and
    ``\\\\`` (a LaTeX line break) does not escape the character after it.

    Raises:
        ValueError: ``text[open_index]`` is not ``{``.
    """
    if not 0 <= open_index < len(text) or text[open_index] != "{":
        raise ValueError(f"no opening brace at index {open_index}")
    depth = 0
    i = open_index
    n = len(text)
    while i < n:
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` or ``\\fbox{...}`` in ``text``, brace-matched.

    "Last" is the box whose command starts last, so the inner box of ``\\boxed{\\boxed{5}}``
    wins. Returns ``None`` when there is no box, or when the last box never closes (a
    completion cut inside its final answer has no final answer). The content is returned as
    written, surrounding whitespace included.
    """
    last = None
    for match in _BOX_OPENING.finditer(text):
        last = match
    if last is None:
        return None
    open_index = last.end() - 1
    close_index = matching_brace(text, open_index)
    if close_index is None:
        return None
    return text[open_index + 1 : close_index]


def clip_answer(answer: str) -> str:
    """``answer`` unchanged if it is at most :data:`MAX_ANSWER_CHARS` long, else its start.

    A clipped answer keeps its first :data:`MAX_ANSWER_CHARS` characters and says how many
    were left off, so it is still longer than the limit and :func:`too_long` still rejects it.
    """
    if len(answer) <= MAX_ANSWER_CHARS:
        return answer
    return f"{answer[:MAX_ANSWER_CHARS]} ...[{len(answer) - MAX_ANSWER_CHARS} more characters]"


def too_long(extracted: str) -> GradeOutcome | None:
    """The ``error`` outcome for an answer over :data:`MAX_ANSWER_CHARS` characters, else ``None``."""
    if len(extracted) <= MAX_ANSWER_CHARS:
        return None
    return GradeOutcome(
        "error",
        clip_answer(extracted),
        f"the extracted answer is longer than {MAX_ANSWER_CHARS} characters; not compared",
    )


def describe(exc: BaseException) -> str:
    """One-line description of an exception (type and message, message cut to 200 characters)."""
    message = str(exc).strip().replace("\n", " ")
    if len(message) > 200:
        message = message[:197] + "..."
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def antlr_version() -> str | None:
    """The installed ANTLR Python runtime's version, ``None`` without one. latex2sympy2_extended
    parses LaTeX with it and ships a parser per runtime version, and verdicts differ between
    them (math-verify under ANTLR 4.9 and 4.13), so it is part of graders' versions and keys."""
    try:
        return metadata.version("antlr4-python3-runtime")
    except metadata.PackageNotFoundError:
        return None
