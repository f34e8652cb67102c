"""The fast path's parsing equals math-verify's: two-stage LaTeX parsing and the gold answers.

:mod:`rlvr_audit.grading._two_stage` parses with ANTLR's SLL prediction first and falls back
to the library's own LL parse; :func:`rlvr_audit.grading.math_verify._parse_gold_fast` extracts
the gold answer with the fast path's scanner. Both must give exactly what the library gives
(the same sympy value, structurally, or a failure where it fails), on real answers, on the
candidates of long responses and on random LaTeX-like text.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlvr_audit.grading import _two_stage
from rlvr_audit.grading import math_verify as mv
from rlvr_audit.grading.corpus import build_corpus, load_problems

BENCHMARKS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "benchmarks"

# Shapes where a naive parser (or a naive reading of SLL) could go wrong: set/relation
# ambiguities, intervals versus tuples, equation chains (parse_latex_cached's retry on the
# last part), complex numbers (is_real), syntax errors at the very end, and a grammar
# decision that needs full-context (LL) prediction.
TRICKY = [
    "(-2,1)",
    "(15,-29)",
    "[1,2)",
    "(1,2]",
    "1,2",
    "333,333",
    "3,333",
    "0,111",
    "1, 2, 3",
    "\\{1,2\\}",
    "x \\in [-2,7]",
    "-2<x<1",
    "a=b=3",
    "a = 1, b = 2",
    "x=1=2=3",
    "f(q(1)) = f(b+1) = (b+1) - 3 = b-2",
    "1+2i",
    "\\sqrt{-1}",
    "\\frac{1}{2",
    "\\frac{1}{2}}",
    "(3, \\frac{\\pi}{2})",
    "\\left( 3, \\frac{\\pi}{2} \\right)",
    "(2,12)\\cup(12,102)",
    "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}",
    "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4",
    "x^2+y^2=1, x>0",
    "1 \\le x \\le 2",
    "\\text{(C)}",
    "50\\%",
    "10^{10}",
    "\\lambda \\cdot \\lambda x(1 - x) (1 - \\lambda x(1 - x)) - x.",
    "(n - 1,1),",
    "",
    " ",
    "}",
    "\\",
    "$",
    "((((((1))))))",
    "{" * 40 + "1" + "}" * 40,
    "a_{1}, a_{2}, \\ldots",
    "\\log_2{3} \\cdot \\log_3{4}",
]


def shape(value: Any) -> str:
    """A structural fingerprint of a parse result (``srepr``: classes and arguments)."""
    from sympy import srepr

    return value if isinstance(value, str) else srepr(value)


def library(text: str) -> str:
    from math_verify.parser import parse_latex_cached

    try:
        return shape(parse_latex_cached(text))
    except Exception as exc:
        return f"raised {type(exc).__name__}"


def two_stage(text: str) -> str:
    try:
        return shape(_two_stage.parse_latex(text))
    except Exception as exc:
        return f"raised {type(exc).__name__}"


def stage_one(text: str) -> str | None:
    """The SLL attempt alone (``None`` if it bails): shows that stage 1 really decides."""
    converter = _two_stage._converter_class()(None, True, False, config=_two_stage._defaults()[0])
    converter.stage_one = True
    try:
        return shape(super(type(converter), converter).parse(text))
    except Exception:
        return None


def test_two_stage_is_available_for_the_installed_versions() -> None:
    assert _two_stage.available()


@pytest.mark.parametrize("text", TRICKY)
def test_two_stage_parse_equals_the_library_on_tricky_answers(text: str) -> None:
    assert two_stage(text) == library(text)


def test_stage_one_decides_most_answers_and_agrees_when_it_does() -> None:
    texts = ["\\frac{14}{3}", "(3, \\frac{\\pi}{2})", "x \\in [-2,7]", "\\sqrt{2}+1", "y = 2x + 3", "\\text{(C)}"]
    decided = [(text, stage_one(text)) for text in texts]
    assert all(result is not None for _, result in decided)
    for text, result in decided:
        assert result == library(text)
    assert stage_one("\\frac{1}{2") is None  # a syntax error: stage 2 (the library) decides


# Answers where SLL prediction bails out but the library's LL parse succeeds: an "SLL only"
# shortcut would call them unparsable and change the verdict; stage 2 must take them.
NEEDS_LL = [
    "x^3+3x-6",
    "5r^5",
    "\\pi r^2",
    "x^2-5x+6>0",
    "864 \\mbox{ inches}^2",
    "[ \\frac{\\pi^2}{8}, \\frac{5 \\pi^2}{4} ]",
    "5+b=8 \\Rightarrow b=3",
]


@pytest.mark.parametrize("text", NEEDS_LL)
def test_answers_that_need_full_context_are_parsed_by_the_library(text: str) -> None:
    assert stage_one(text) is None
    assert not library(text).startswith("raised")
    assert two_stage(text) == library(text)


def test_two_stage_parse_equals_the_library_on_corpus_answers() -> None:
    """Every candidate math-verify would try in long responses, and every published gold answer."""
    problems = load_problems(BENCHMARKS / "math500.jsonl") if (BENCHMARKS / "math500.jsonl").is_file() else []
    if not problems:
        pytest.skip(f"benchmark data not found in {BENCHMARKS}")
    items = build_corpus(problems[:40], samples=8, seed=11)
    grader = mv.MathVerifyGrader()
    texts: dict[str, None] = {}
    for item in items:
        prepared = grader.prepare(item.completion)
        assert prepared is not None
        for candidate in (prepared.head, *prepared.tail.candidates):
            if candidate[0] == "latex":
                texts.update((text, None) for text, _ in candidate[1])
            elif candidate[0] == "latex_raw":
                config = grader._latex_config
                texts.update((mv._normalize(text, boxed, config), None) for text, boxed, _ in candidate[1])
    for problem in problems:
        texts[problem["answer"].strip()] = None
    assert len(texts) > 300
    differences = [text for text in texts if two_stage(text) != library(text)]
    assert not differences


latex_atoms = st.sampled_from(
    [
        "1",
        "23",
        "-",
        "+",
        "x",
        "y",
        "=",
        "<",
        "\\le",
        ",",
        ";",
        "(",
        ")",
        "[",
        "]",
        "\\{",
        "\\}",
        "{",
        "}",
        "\\frac{1}{2}",
        "\\frac",
        "\\sqrt{3}",
        "\\pi",
        "i",
        "^",
        "_",
        "\\cdot",
        "\\cup",
        "\\infty",
        "\\text{A}",
        "\\%",
        "!",
        "|",
        " ",
        ".",
        "\\in",
        "\\pm",
        "\\begin{pmatrix}",
        "\\end{pmatrix}",
        "&",
        "\\\\",
    ]
)
latex_like = st.lists(latex_atoms, max_size=14).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=latex_like)
def test_two_stage_parse_equals_the_library_on_random_text(text: str) -> None:
    assert two_stage(text) == library(text)


# --- the gold answer by the fast path ------------------------------------------------------

ADVERSARIAL_GOLDS = [
    "",
    " ",
    "$",
    "$$",
    "$5$",
    "5$",
    "$5",
    "\\$5",
    "\\boxed{3}",
    "\\(3\\)",
    "\\[3\\]",
    "$1$ and $2$",
    "3 \\text{ and } 4",
    "\\text{(C)}",
    "1,2",
    "1, -2",
    "(-2,1)",
    "x \\in [-2,7]",
    "\\frac{1}{2",
    "}",
    "50\\%",
    "0.5",
    "070",
    "142.0",
    "the final answer is 3",
    "Answer: 4",
    "$a$ $b$",
    "\\left( 3, \\frac{\\pi}{2} \\right)",
    "\\begin{pmatrix} -2 \\\\ -14 \\end{pmatrix}",
]


def gold_library(gold: str) -> list[str] | str:
    try:
        return [shape(v) for v in mv._parse_gold(mv.normalize_gold(gold), 2)]
    except Exception as exc:
        return f"raised {type(exc).__name__}: {exc}"


def gold_fast(gold: str) -> list[str] | str:
    try:
        return [shape(v) for v in mv._parse_gold_fast(mv.normalize_gold(gold), 2)]
    except Exception as exc:
        return f"raised {type(exc).__name__}: {exc}"


@pytest.mark.parametrize("gold", ADVERSARIAL_GOLDS)
def test_fast_gold_equals_the_library_on_adversarial_golds(gold: str) -> None:
    assert gold_fast(gold) == gold_library(gold)


def test_fast_gold_equals_the_library_on_every_published_gold() -> None:
    golds = [row["answer"] for path in sorted(BENCHMARKS.glob("*.jsonl")) for row in load_problems(path)]
    if not golds:
        pytest.skip(f"benchmark data not found in {BENCHMARKS}")
    differences = [gold for gold in golds if gold_fast(gold) != gold_library(gold)]
    assert not differences


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.lists(st.sampled_from(["$", "\\boxed{", "\\(", "\\)", "\\[", "\\]", " and "]), max_size=3).flatmap(
        lambda extra: latex_like.map(lambda t: t + "".join(extra))
    )
)
def test_fast_gold_equals_the_library_on_random_text(text: str) -> None:
    assert gold_fast(text) == gold_library(text)


# --- timeouts ------------------------------------------------------------------------------


def test_a_failed_stage_one_does_not_eat_into_the_timeout() -> None:
    """The alarm math-verify set is pushed back by the time stage 1 spent."""
    previous = signal.signal(signal.SIGALRM, lambda *_: None)
    try:
        signal.setitimer(signal.ITIMER_REAL, 5.0)
        _two_stage._extend_alarm(3.0)
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 7.5 < remaining <= 8.0
        signal.setitimer(signal.ITIMER_REAL, 0)
        _two_stage._extend_alarm(3.0)  # no alarm pending: none is started
        assert signal.getitimer(signal.ITIMER_REAL)[0] == 0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
