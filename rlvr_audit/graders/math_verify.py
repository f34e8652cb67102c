"""The ``math_verify`` grader: Hugging Face Math-Verify's extraction and comparison.

The library is imported when a grader is constructed, not when this module is imported, so
listing graders does not pay for sympy and the LaTeX parser.
"""

from __future__ import annotations

import functools
import itertools
import threading
from importlib import metadata
from typing import Any

from . import GradeOutcome

IMPLEMENTATION_VERSION = "1"
"""Version of this grader's own logic; bump it whenever a verdict could change."""


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
    from math_verify import LatexExtractionConfig, parse

    parsed = parse(
        normalized_gold,
        extraction_config=(LatexExtractionConfig(),),
        parsing_timeout=parsing_timeout,
        raise_on_error=True,
    )
    return tuple(parsed)


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

    Timeouts are Math-Verify's ``signal.alarm`` timeouts (whole seconds, main thread only):
    ``parsing_timeout`` for each parse and ``verify_timeout`` for each comparison. Called
    off the main thread, :meth:`grade` returns ``error``; use
    :func:`rlvr_audit.graders.pool.grade_many`, which also enforces a hard wall-clock limit
    (a signal cannot interrupt a regular expression stuck in C).

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

    def __init__(self, *, parsing_timeout: int = 2, verify_timeout: int = 2) -> None:
        """Import Math-Verify and fix the timeouts (whole seconds, at least 1)."""
        if parsing_timeout < 1 or verify_timeout < 1:
            raise ValueError("math-verify timeouts are whole seconds, at least 1")
        from math_verify import ExprExtractionConfig, LatexExtractionConfig

        self.parsing_timeout = int(parsing_timeout)
        self.verify_timeout = int(verify_timeout)
        self.version = (
            f"{IMPLEMENTATION_VERSION}+math-verify=={metadata.version('math-verify')}"
            f"+latex2sympy2_extended=={metadata.version('latex2sympy2_extended')}"
        )
        self._pred_config = (LatexExtractionConfig(), ExprExtractionConfig())

    def grade(self, *, completion: str, gold: str, truncated: bool) -> GradeOutcome:
        """Grade one completion; see the class docstring for the verdicts."""
        if threading.current_thread() is not threading.main_thread():
            return GradeOutcome(
                "error", None, "math-verify only grades in a process's main thread (signal timeouts); use grade_many"
            )
        from math_verify import parse, verify
        from math_verify.errors import TimeoutException

        try:
            gold_parsed = _parse_gold(normalize_gold(gold), self.parsing_timeout)
        except TimeoutException:
            return GradeOutcome("timeout", None, f"parsing the gold answer took over {self.parsing_timeout} s")
        except Exception as exc:  # a grader reports failures as verdicts, never raises
            return GradeOutcome("error", None, f"parsing the gold answer failed: {_describe(exc)}")
        if not gold_parsed:
            return GradeOutcome("error", None, f"the gold answer {gold!r} holds no parsable answer")

        try:
            pred = parse(
                completion,
                extraction_config=self._pred_config,
                parsing_timeout=self.parsing_timeout,
                raise_on_error=True,
            )
        except TimeoutException:
            return GradeOutcome("timeout", None, f"parsing the completion took over {self.parsing_timeout} s")
        except Exception as exc:
            return GradeOutcome("error", None, f"parsing the completion failed: {_describe(exc)}")
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
