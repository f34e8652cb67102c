"""The boxed_strict grader: the case table, each normalisation rule, box extraction."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from rlvr_audit.core.records import VERDICTS
from rlvr_audit.grading import GRADERS, GradeOutcome, get_grader
from rlvr_audit.grading.boxed_strict import BoxedStrictGrader, normalize
from rlvr_audit.grading.latex import MAX_ANSWER_CHARS, clip_answer, last_boxed, matching_brace, too_long

HERE = Path(__file__).resolve().parent
CASES: list[dict[str, Any]] = json.loads((HERE / "boxed_strict_cases.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def grader() -> BoxedStrictGrader:
    return BoxedStrictGrader()


def test_case_table_is_well_formed() -> None:
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    for case in CASES:
        assert set(case) == {"id", "completion", "gold", "truncated", "verdict", "note"}, case["id"]
        assert case["verdict"] in VERDICTS, case["id"]
    assert {"correct", "incorrect", "no_answer", "truncated", "error"} <= {case["verdict"] for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_case_table(grader: BoxedStrictGrader, case: dict[str, Any]) -> None:
    outcome = grader.grade(completion=case["completion"], gold=case["gold"], truncated=case["truncated"])
    assert outcome.verdict == case["verdict"], (outcome, case["note"])
    if outcome.verdict in ("correct", "incorrect"):
        assert outcome.extracted and outcome.error is None
    elif outcome.verdict in ("no_answer", "truncated"):
        assert outcome.extracted is None and outcome.error is None
    else:
        assert outcome.error


# --- the normalisation rules, one by one (see normalize's docstring) ----------------------


@pytest.mark.parametrize(
    ("answer", "normalized"),
    [
        ("\\dfrac{1}{2}", "\\frac{1}{2}"),  # 1
        ("\\tfrac{1}{2}", "\\frac{1}{2}"),
        ("\\text{(C)}", "(C)"),  # 2
        ("\\textbf{\\text{yes}}", "yes"),
        ("\\mbox{ cm}", "cm"),
        ("\\left( 1, 2 \\right]", "(1,2]"),  # 3
        ("x \\rightarrow 2", "x\\rightarrow2"),
        ("10,\\!080", "10,080"),  # 4
        ("a\\,b\\;c\\:d\\ e~f\\quad g", "abcdefg"),
        ("\\displaystyle\\frac{1}{2}", "\\frac{1}{2}"),
        ("1 \\\\ 2", "1\\\\2"),  # the line break stays
        ("90^\\circ", "90"),  # 5
        ("90^{\\circ}", "90"),
        ("90°", "90"),
        ("\\$18.50", "18.5"),  # 6 (and 10)
        ("$x$", "x"),
        ("3 \\sqrt{13}\n", "3\\sqrt{13}"),  # 7
        ("\\frac12", "\\frac{1}{2}"),  # 8
        ("\\frac{1}2", "\\frac{1}{2}"),
        ("\\frac1{2}", "\\frac{1}{2}"),
        ("\\frac{\\sqrt3}{2}", "\\frac{\\sqrt{3}}{2}"),
        ("\\sqrt[3]2", "\\sqrt[3]{2}"),
        ("\\frac\\pi2", "\\frac\\pi2"),  # a command argument is left alone
        ("5.", "5"),  # 9
        ("070", "70"),  # 10
        ("142.0", "142"),
        ("0.50", "0.5"),
        (".5", "0.5"),
        ("+5", "5"),
        ("-0", "0"),
        # Kept as written:
        ("Evelyn", "Evelyn"),
        ("50\\%", "50\\%"),
        ("x=5", "x=5"),
        ("1/2", "1/2"),
        ("2,1", "2,1"),
    ],
)
def test_normalize(answer: str, normalized: str) -> None:
    assert normalize(answer) == normalized


@pytest.mark.parametrize(
    ("answer", "gold", "correct"),
    [
        ("\\frac12", "0.5", False),  # no numeric equivalence
        ("\\frac{1}{2}", "\\frac12", True),  # notation only
        ("1,-2", "-2,1", False),  # order matters
        ("C", "\\text{(C)}", False),
        ("\\$32,\\!348", "\\$32,\\!348", True),
        ("32348", "\\$32,\\!348", False),
    ],
)
def test_judge(grader: BoxedStrictGrader, answer: str, gold: str, correct: bool) -> None:
    assert grader.judge(extracted=answer, gold=gold).verdict == ("correct" if correct else "incorrect")


# --- box extraction (rlvr_audit.grading.latex) ----------------------------------------


@pytest.mark.parametrize(
    ("text", "content"),
    [
        ("so $\\boxed{5}$.", "5"),
        ("\\boxed{1} then \\boxed{2}", "2"),
        ("\\boxed{\\boxed{5}}", "5"),
        ("\\fbox{5}", "5"),
        ("\\boxed {5}", "5"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{\\{1,2\\}}", "\\{1,2\\}"),  # escaped braces are characters
        ("\\boxed{a\\}b}", "a\\}b"),
        ("\\boxed{1 \\\\ 2}", "1 \\\\ 2"),  # a line break does not escape the brace after it
        ("\\boxed{1} and \\boxed{2", None),  # the last box never closes
        ("\\boxed 5", None),  # no brace group
        ("the answer is 5", None),
        ("\\boxedx{5}", None),
    ],
)
def test_last_boxed(text: str, content: str | None) -> None:
    assert last_boxed(text) == content


def test_matching_brace() -> None:
    assert matching_brace("{a{b}c}d", 0) == 6
    assert matching_brace("{a{b}c}d", 2) == 4
    assert matching_brace("{" * 10_000 + "}" * 9_999, 0) is None
    with pytest.raises(ValueError, match="no opening brace"):
        matching_brace("abc", 1)


def test_long_answers_are_clipped_and_rejected(grader: BoxedStrictGrader) -> None:
    answer = "1+" * 2000 + "1"
    clipped = clip_answer(answer)
    assert clipped.startswith(answer[:MAX_ANSWER_CHARS]) and clipped.endswith(
        f"[{len(answer) - MAX_ANSWER_CHARS} more characters]"
    )
    assert clip_answer("5") == "5" and too_long("5") is None
    extracted = grader.extract(f"\\boxed{{{answer}}}")
    assert extracted == clipped
    outcome = grader.judge(extracted=extracted, gold=answer)  # not compared, even against itself
    assert outcome.verdict == "error" and outcome.error is not None and str(MAX_ANSWER_CHARS) in outcome.error


def test_works_off_the_main_thread(grader: BoxedStrictGrader) -> None:
    outcomes: list[GradeOutcome] = []
    thread = threading.Thread(
        target=lambda: outcomes.append(grader.grade(completion="\\boxed{5}", gold="5", truncated=False))
    )
    thread.start()
    thread.join()
    assert outcomes == [GradeOutcome("correct", "5")]


def test_failure_inside_the_grader_is_an_error_verdict(
    grader: BoxedStrictGrader, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rlvr_audit.grading import boxed_strict

    def broken(answer: str) -> str:
        raise RuntimeError("bug")

    monkeypatch.setattr(boxed_strict, "normalize", broken)
    assert grader.grade(completion="\\boxed{5}", gold="5", truncated=False) == GradeOutcome(
        "error", "5", "normalising failed: RuntimeError: bug"
    )


def test_version_and_registry(grader: BoxedStrictGrader) -> None:
    assert GRADERS["boxed_strict"] is BoxedStrictGrader and isinstance(get_grader("boxed_strict"), BoxedStrictGrader)
    assert grader.grader_id == "boxed_strict" and grader.version == "1"
