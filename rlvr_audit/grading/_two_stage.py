"""LaTeX parsing as math-verify does it, with ANTLR's two-stage parsing strategy.

math-verify parses a LaTeX answer with ``parse_latex_cached`` (``latex2sympy`` from
latex2sympy2_extended, an ANTLR 4 grammar), whose parser runs in ANTLR's default ``LL``
prediction mode and raises on the first syntax error (its error listener raises). Much of
that parse is spent in adaptive prediction, and ``LL`` mode retries every conflicting SLL
decision with the full parser context, a slow path whose results are not cached.

:func:`parse_latex` gives exactly ``parse_latex_cached``'s result (same value or same
failure) by the *two-stage* strategy ANTLR documents for this purpose:

1. parse with ``PredictionMode.SLL`` and ``BailErrorStrategy`` (no error listener, no
   recovery: the first error ends the attempt);
2. if that attempt raises anything (a syntax error, or an input that needs full-context
   prediction; also a lexer error or a failing conversion), parse again exactly as the
   library does (``LL`` mode, its raising error listeners) and return or raise what that gives.

Why it is exact: ANTLR's contract for ``PredictionMode.SLL`` (``antlr4/atn/PredictionMode.py``)
is that the parser "will either return a correct parse tree (i.e. the same parse tree that
would be returned with the LL prediction mode), or it will report a syntax error". The
library's parse succeeds only without any reported error (its listener raises on the first),
so when stage 1 returns a tree it is the tree stage 2 would return, and the conversion to
sympy (``_Latex2Sympy.parse`` after ``parser.math()``, which only reads the tree) is the same
code on the same tree. When stage 1 fails, stage 2 *is* the library's call. Both stages share
the grammar's DFA cache, which holds prediction results only and never changes a decision.

Timeouts: the time a failed stage 1 took is added to a pending math-verify timeout
(``SIGALRM``), so that stage 2 has the time the library's call would have had. A stage 1 that
alone runs past the deadline (slower than the library's whole call would have been: SLL
prediction does a subset of LL's work) is a timeout, as ever at the edge of a wall-clock limit.
``tests/graders/test_engine.py`` compares the two on every answer of a corpus and on random text.

Used only by the engine's fast path (:meth:`rlvr_audit.grading.math_verify.MathVerifyGrader.decide`);
:meth:`~rlvr_audit.grading.math_verify.MathVerifyGrader.grade`, the reference, calls the
library unchanged. When the library internals it relies on are missing (:func:`available` is false),
:func:`parse_latex` calls ``parse_latex_cached`` itself.
"""

from __future__ import annotations

import functools
import inspect
import signal
import threading
import time
from typing import Any


@functools.cache
def _converter_class() -> Any:
    """A ``_Latex2Sympy`` whose parser runs stage 1 when ``stage_one`` is set, or ``None``."""
    try:
        from antlr4.atn.PredictionMode import PredictionMode  # type: ignore[import-untyped]
        from antlr4.error.ErrorStrategy import BailErrorStrategy  # type: ignore[import-untyped]

        # heavy (sympy and the ANTLR parser): only when grading
        from latex2sympy2_extended.latex2sympy2 import _Latex2Sympy
    except ImportError:
        return None
    if not (callable(getattr(_Latex2Sympy, "create_parser", None)) and callable(getattr(_Latex2Sympy, "parse", None))):
        return None

    class TwoStage(_Latex2Sympy):
        stage_one = False

        def create_parser(self, latex_str: str) -> Any:
            parser = super().create_parser(latex_str)
            if self.stage_one:
                parser.removeErrorListeners()
                parser._interp.predictionMode = PredictionMode.SLL
                parser._errHandler = BailErrorStrategy()
            return parser

        def parse(self, latex_str: str) -> Any:
            started = time.monotonic()
            self.stage_one = True
            try:
                return super().parse(latex_str)
            except Exception:  # whatever went wrong, the library's own parse decides
                pass
            finally:
                self.stage_one = False
            _extend_alarm(time.monotonic() - started)
            return super().parse(latex_str)

    return TwoStage


def _extend_alarm(seconds: float) -> None:
    """Push a pending ``SIGALRM`` (math-verify's timeouts) back by ``seconds``.

    A failed stage 1 is time the library's call would not have spent: the deadline moves so
    that stage 2 has what the library's parse would have had (``signal.alarm`` and
    ``setitimer(ITIMER_REAL)`` are the same timer). Nothing happens without a pending alarm or
    off the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    remaining, interval = signal.getitimer(signal.ITIMER_REAL)
    if remaining > 0:
        signal.setitimer(signal.ITIMER_REAL, remaining + seconds, interval)


@functools.cache
def _defaults() -> tuple[Any, Any]:
    """``latex2sympy``'s default ``conversion_config`` and math-verify's ``should_treat_as_complex``."""

    from latex2sympy2_extended.latex2sympy2 import latex2sympy  # heavy (sympy and the ANTLR parser): only when grading

    # heavy (sympy and the ANTLR parser, about a second): only when grading
    from math_verify.grader import should_treat_as_complex

    return inspect.signature(latex2sympy).parameters["conversion_config"].default, should_treat_as_complex


def available() -> bool:
    """Whether the two-stage parser can be built against the installed latex2sympy2_extended."""
    return _converter_class() is not None


def _latex2sympy(latex: str) -> Any:
    """``latex2sympy(latex, is_real=..., convert_degrees=False, normalization_config=None)``."""
    conversion_config, should_treat_as_complex = _defaults()
    converter = _converter_class()(None, not should_treat_as_complex(latex), False, config=conversion_config)
    return converter.parse(latex)


def parse_latex(latex: str) -> Any:
    """``math_verify.parser.parse_latex_cached(latex)`` (without its cache): same value, or raises.

    Line by line the library function: parse the text; if that raises and the text has an
    equation chain (``get_last_eq``), parse its last part instead, else re-raise.
    """
    if _converter_class() is None:
        # heavy (sympy and the ANTLR parser, about a second): only when grading
        from math_verify.parser import parse_latex_cached

        return parse_latex_cached(latex)
    from math_verify.parser import get_last_eq  # heavy (sympy and the ANTLR parser, about a second): only when grading

    try:
        return _latex2sympy(latex)
    except Exception as e:
        last_eq_latex = get_last_eq(latex)
        if last_eq_latex != latex:
            return _latex2sympy(last_eq_latex)
        raise e
