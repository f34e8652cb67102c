"""The ``boxed_strict`` grader: the last ``\\boxed{}`` only, normalised string equality.

The strictest grader in common use: no symbolic or numeric equivalence, no prose fallback.
It bounds the other graders from below: an answer it accepts is written exactly as the gold
answer, up to LaTeX formatting.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from .base import GradeOutcome
from .latex import clip_answer, describe, last_boxed, matching_brace, too_long

IMPLEMENTATION_VERSION = "1"
"""Version of this grader's logic; bump it whenever a verdict could change."""

_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|textrm|textnormal|mathrm|mbox)\s*\{([^{}]*)\}")
"""A text-like command around a group with no nested braces; replaced by its content."""
_LEFT_RIGHT = re.compile(r"\\(?:left|right)(?![a-zA-Z])")
"""``\\left`` / ``\\right`` as sizing commands (not ``\\rightarrow``)."""
_SPACING = re.compile(r"(\\\\)|\\[!,:; ]|\\(?:quad|qquad|displaystyle)(?![a-zA-Z])")
"""A LaTeX line break ``\\\\`` (kept: group 1) or a spacing command (dropped)."""
_DEGREES = re.compile(r"\^\{?\\circ\}?|°")
"""A degree mark: ``^\\circ``, ``^{\\circ}`` or ``°``."""
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")
"""A plain decimal number, the whole answer (``070``, ``142.0``, ``.5``, ``-3``)."""


def normalize(answer: str) -> str:
    """The form of an answer that ``boxed_strict`` compares; applied to both sides.

    The rules, in order:

    1. ``\\dfrac`` and ``\\tfrac`` become ``\\frac``.
    2. ``\\text{X}``, ``\\textbf{X}``, ``\\textrm{X}``, ``\\textnormal{X}``, ``\\mathrm{X}`` and
       ``\\mbox{X}`` become ``X`` (innermost first, repeated; ``\\text{(C)}`` -> ``(C)``).
    3. ``\\left`` and ``\\right`` are dropped (``\\rightarrow`` is kept).
    4. Spacing is dropped: ``\\!``, ``\\,``, ``\\:``, ``\\;``, ``\\`` + space, ``\\quad``,
       ``\\qquad``, ``\\displaystyle`` and ``~`` (the line break ``\\\\`` is kept).
    5. Degree marks ``^\\circ``, ``^{\\circ}`` and ``°`` are dropped.
    6. Dollar signs are dropped, ``\\$`` and ``$`` alike.
    7. All whitespace is dropped.
    8. Shorthand arguments get braces: ``\\frac12`` -> ``\\frac{1}{2}``, ``\\frac{1}2`` ->
       ``\\frac{1}{2}``, ``\\sqrt2`` -> ``\\sqrt{2}`` (one character per missing brace group).
    9. Trailing full stops are dropped (``5.`` -> ``5``).
    10. If what is left is a plain decimal number, it is written canonically: no sign ``+``,
        no leading zeros, no trailing fractional zeros (``070`` -> ``70``, ``142.0`` -> ``142``,
        ``0.50`` -> ``0.5``, ``.5`` -> ``0.5``, ``-0`` -> ``0``).

    Nothing else changes: case is kept (``Evelyn`` is not ``evelyn``), and so are thousands
    separators (``10,080`` is not ``10080``), percent signs, units, ``x =`` prefixes, the
    order of elements, and the choice between ``\\frac{1}{2}``, ``1/2`` and ``0.5``.
    """
    text = answer.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    while True:
        unwrapped = _TEXT_WRAPPER.sub(r"\1", text)
        if unwrapped == text:
            break
        text = unwrapped
    text = _LEFT_RIGHT.sub("", text)
    text = _SPACING.sub(lambda m: m.group(1) or "", text).replace("~", "")
    text = _DEGREES.sub("", text)
    text = text.replace("\\$", "").replace("$", "")
    text = "".join(text.split())
    text = _brace_shorthand_arguments(text)
    text = text.rstrip(".")
    if _PLAIN_NUMBER.fullmatch(text):
        text = _canonical_number(text)
    return text


def _brace_shorthand_arguments(text: str) -> str:
    """``\\frac12`` -> ``\\frac{1}{2}`` and ``\\sqrt2`` -> ``\\sqrt{2}`` (whitespace already removed).

    For each ``\\frac`` (two arguments) and ``\\sqrt`` (one, after an optional ``[n]``), an
    argument that is a brace group is kept and a single character is wrapped in braces.
    """
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        if text.startswith("\\frac", i) and not text[i + 5 : i + 6].isalpha():
            command, arguments = "\\frac", 2
        elif text.startswith("\\sqrt", i) and not text[i + 5 : i + 6].isalpha():
            command, arguments = "\\sqrt", 1
        else:
            out.append(text[i])
            i += 1
            continue
        out.append(command)
        i += len(command)
        if command == "\\sqrt" and i < n and text[i] == "[":
            close = text.find("]", i)
            if close < 0:
                continue
            out.append(text[i : close + 1])
            i = close + 1
        for _ in range(arguments):
            if i >= n:
                break
            if text[i] == "{":
                close_brace = matching_brace(text, i)
                if close_brace is None:
                    break
                # The group's content may hold shorthand of its own (\frac{\sqrt2}{2}).
                out.append("{" + _brace_shorthand_arguments(text[i + 1 : close_brace]) + "}")
                i = close_brace + 1
            elif text[i] in "\\}":
                break
            else:
                out.append("{" + text[i] + "}")
                i += 1
    return "".join(out)


def _canonical_number(text: str) -> str:
    """A plain decimal number without sign ``+``, leading zeros or trailing fractional zeros."""
    try:
        value = Decimal(text)
    except InvalidOperation:  # cannot happen for a _PLAIN_NUMBER match; keep the text if it does
        return text
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


class BoxedStrictGrader:
    """Last box only, normalised string equality (the strictest common practice).

    Two steps (the grading engine caches the second on ``(grader, extracted, gold)``):

    - :meth:`extract`: the content of the last ``\\boxed{...}`` or ``\\fbox{...}`` in the
      completion, brace-matched, as written (surrounding spaces stripped). ``None`` when there
      is no box, when the last box never closes, or when it is empty.
    - :meth:`judge`: ``correct`` iff :func:`normalize` gives the same string for the extracted
      answer and the gold answer, else ``incorrect``; ``error`` for an answer over
      :data:`~rlvr_audit.grading.latex.MAX_ANSWER_CHARS` characters.

    :meth:`grade` runs both: ``truncated`` (cut at the token limit) or ``no_answer`` when
    nothing is extracted. No sympy, no timeouts: every step is linear in the input.

    Known issues (by design; this grader is a lower bound):

    - Notation is not mathematics: ``\\frac{1}{2}`` is not ``0.5`` nor ``1/2``, ``(C)`` is not
      ``C``, ``x=5`` is not ``5``, ``10,\\!080`` is not ``10080``, and ``5.4 \\text{ cents}`` is
      not ``5.4``. Only the rules listed in :func:`normalize` are forgiven.
    - An answer outside a box ("The answer is 5") is ``no_answer``, however clear it is.
    - A box left unclosed at the end of the completion hides any earlier box: the final
      answer was cut, so there is none.
    """

    grader_id = "boxed_strict"
    version = IMPLEMENTATION_VERSION

    def extract(self, completion: str) -> str | None:
        """The last box's content (stripped, clipped to the length limit), or ``None``."""
        content = last_boxed(completion)
        if content is None or not content.strip():
            return None
        return clip_answer(content.strip())

    def judge(self, *, extracted: str, gold: str) -> GradeOutcome:
        """``correct`` iff ``normalize(extracted) == normalize(gold)``; depends only on the two."""
        rejected = too_long(extracted)
        if rejected is not None:
            return rejected
        try:
            same = normalize(extracted) == normalize(gold)
        except Exception as exc:  # a grader reports failures as verdicts, never raises
            return GradeOutcome("error", extracted, f"normalising failed: {describe(exc)}")
        return GradeOutcome("correct" if same else "incorrect", extracted)

    def grade(self, *, completion: str, gold: str, truncated: bool) -> GradeOutcome:
        """:meth:`extract`, then :meth:`judge`; ``truncated``/``no_answer`` when nothing is extracted."""
        try:
            extracted = self.extract(completion)
        except Exception as exc:
            return GradeOutcome("error", None, f"extracting the answer failed: {describe(exc)}")
        if extracted is None:
            return GradeOutcome("truncated" if truncated else "no_answer", None)
        return self.judge(extracted=extracted, gold=gold)
