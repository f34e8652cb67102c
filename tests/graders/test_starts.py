"""Finding answers at the cost of the answer region: the same matches as math-verify's scan.

:mod:`rlvr_audit.grading._starts` tries math-verify's patterns only where a match can start,
and scans the number patterns from near the end of a response. Both are checked here against
``finditer`` (what math-verify runs) on real long responses, on tricky fragments and on
random text: every match, or (for the scan from the end) the candidates math-verify would try
first and whether there are more.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlvr_audit.grading import _starts
from rlvr_audit.grading import math_verify as mv
from rlvr_audit.grading.math_verify import MAX_TAIL, MathVerifyGrader

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real_generations" / "sky-t1"


@pytest.fixture(scope="module")
def scanner() -> mv._Scanner:
    return mv._Scanner(MathVerifyGrader()._pred_config)


def real_responses(every: int) -> list[str]:
    if not REAL.is_dir():
        pytest.skip(f"real generations not found at {REAL}")
    texts = []
    for path in sorted(REAL.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            texts.extend(json.loads(line)["code"])
    return texts[::every]


def spans(matches: Any) -> list[tuple[tuple[int, int], dict[str, Any]]]:
    return [(m.span(), m.groupdict()) for m in matches]


def reference(text: str) -> tuple[int, list[Any]] | None:
    """math-verify's own candidate list: every pattern's finditer, by priority, rightmost first."""
    from math_verify.parser import get_extraction_regexes

    config = MathVerifyGrader()._pred_config
    patterns = [(p, pr) for ps, _ in get_extraction_regexes(config) for p, pr in ps]
    for priority, group in itertools.groupby(sorted(patterns, key=lambda x: x[1]), key=lambda x: x[1]):
        found = [(m, m.start(), m.end()) for p, _ in group for m in p.finditer(text)]
        if found:
            found.sort(key=lambda x: (x[2], -x[1]), reverse=True)
            return priority, [(m.re.pattern, m.span(), m.groupdict()) for m, _, _ in found]
    return None


def check_text(scanner: mv._Scanner, text: str) -> None:
    """Every pattern's matches, and the first candidates of the scan from the end."""
    anchors: dict[str, list[int]] = {}
    box = text.find("\\boxed{")
    for _, patterns in scanner.groups:
        for pattern in patterns:
            if pattern.role == "boxed_env" and box < 0:
                continue
            if pattern.required is not None and pattern.required not in text:
                continue
            assert spans(scanner._matches(pattern, text, anchors)) == spans(pattern.regex.finditer(text)), pattern.role
            if _starts.syncs_after_letters(pattern.regex):
                everything = spans(pattern.regex.finditer(text))
                last, complete = _starts.last_matches(pattern.regex, text, 3)
                assert complete or len(last) >= 3
                assert spans(last) == everything[len(everything) - len(last) :]
                for floor in (0, len(text) // 3, len(text) - 5):
                    reaching = spans(_starts.matches_reaching(pattern.regex, text, floor))
                    assert reaching == everything[len(everything) - len(reaching) :]
                    assert [m for m in everything if m[0][1] >= floor] == [m for m in reaching if m[0][1] >= floor]
    expected = reference(text)
    found = scanner.scan(text, first=1 + MAX_TAIL)
    if expected is None:
        assert found is None
        return
    assert found is not None
    priority, matches = found
    given = [(m.re.pattern, m.span(), m.groupdict()) for m, _ in matches]
    assert priority == expected[0]
    assert given[: 1 + MAX_TAIL] == expected[1][: 1 + MAX_TAIL]
    assert (len(given) > 1 + MAX_TAIL) == (len(expected[1]) > 1 + MAX_TAIL)


def test_the_patterns_are_the_ones_whose_starts_are_known(scanner: mv._Scanner) -> None:
    """With math-verify 0.9.0 every lowest-priority pattern is tried only at possible starts."""
    full = [p for _, ps in scanner.groups for p in ps if p.role == "full"]
    assert full and all(p.starts is not None for p in full)
    assert sum(_starts.syncs_after_letters(p.regex) for p in full) == 2


def test_real_long_responses(scanner: mv._Scanner) -> None:
    texts = real_responses(every=6)
    assert len(texts) > 80
    for text in texts:
        check_text(scanner, text)


def test_real_responses_without_their_answer_region(scanner: mv._Scanner) -> None:
    """Cut before their final box, the responses fall through to the lowest priority."""
    for text in real_responses(every=9):
        cut = text[: text.find("\\boxed")] if "\\boxed" in text else text
        check_text(scanner, cut[-20_000:])


TOKENS = [
    "$", "$$", "\\$", "\\[", "\\]", "\\(", "\\)", " [", "] ", "[", "]", "{", "}", "\\frac{1}{2}", "-\\frac{3}{4}",
    "\\frac{-2}{3.5}", "\\boxed{5}", "answer", "Answer: ", "final answer is ", " I hope", "\n", "\n\n", " ", "\t",
    "\u00a0", "=", " = ", "and ", ", ", " or ", "%", "\\%", " percent", "percentage", " Pct", "3", "12", "-4", "0.5",
    ".25", "1,000", "1 000", "٣", "x", "b", "P", "e", "**", "(", ")", "+", "×", "÷", "/", "^", ":", "$5", "€", "ſ",
]  # fmt: skip
latex_like = st.lists(st.sampled_from(TOKENS), max_size=60).map("".join)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=latex_like)
def test_random_text(text: str) -> None:
    check_text(mv._Scanner(MathVerifyGrader()._pred_config), text)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(latex_like, min_size=20, max_size=60))
def test_random_long_text(parts: list[str]) -> None:
    """Longer than the first window of the scan from the end, so that it starts mid-text."""
    text = " words in between ".join(parts) * 8
    check_text(mv._Scanner(MathVerifyGrader()._pred_config), text)
