"""Every grader: gold answers against themselves, hostile inputs, random LaTeX-like text, listing.

Runs each registered grader (math_verify, paper, boxed_strict, minerva, consensus) through the same
checks: no crash, a valid verdict, and the invariants of the two-step extract/judge contract.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from rlvr_audit.cli import app
from rlvr_audit.core.records import VERDICTS
from rlvr_audit.grading import GRADERS, GradeOutcome, Grader, get_grader
from rlvr_audit.grading.engine import grade_many
from rlvr_audit.grading.math_verify import MathVerifyGrader
from rlvr_audit.grading.minerva import MinervaGrader
from rlvr_audit.grading.paper import PaperGrader
from rlvr_audit.grading.pool import GradeTask

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT.parent / "shared" / "data" / "benchmarks"
ALL_GRADERS = ("math_verify", "paper", "boxed_strict", "minerva", "consensus")
TWO_STEP_GRADERS = ("paper", "boxed_strict", "minerva")
"""Graders with the extract/judge interface the grading engine caches on."""

KNOWN_SELF_MISMATCHES: dict[str, dict[str, str]] = {
    "paper": {
        # Qwen2.5-Math's unit list holds "pm" and "a" and "east", removed wherever they stand alone:
        "test/intermediate_algebra/662.json": "1 \\pm \\sqrt{19}",
        "test/precalculus/768.json": "3 \\pm 2 \\sqrt{2}",
        "test/intermediate_algebra/2015.json": "\\{1\\pm\\sqrt{5},-2\\}",
        "test/intermediate_algebra/431.json": "(a+5)(b+2)",
        "test/prealgebra/105.json": "\\text{east}",
    },
}
"""Gold answers a grader does not grade correct against ``\\boxed{<gold>}``, by problem id.

These are the graders' documented behaviour (see each class's "Known issues"), kept here so
that a change in either direction fails the test."""


def boxed(answer: str) -> str:
    """The completion used to grade a gold answer against itself."""
    return f"The final answer is $\\boxed{{{answer}}}$."


def all_gold_rows() -> list[dict[str, Any]]:
    """Every row of the four benchmarks; skips the test if the shared data is absent."""
    if not BENCHMARKS.is_dir():
        pytest.skip(f"benchmark data not found at {BENCHMARKS} (the shared data folder is not checked out)")
    rows: list[dict[str, Any]] = []
    for name in ("math500", "amc", "aime24", "aime25"):
        with (BENCHMARKS / f"{name}.jsonl").open(encoding="utf-8") as f:
            rows += [json.loads(line) for line in f if line.strip()]
    return rows


@pytest.fixture(scope="module")
def graders() -> dict[str, Grader]:
    """One instance per grader, with short in-process timeouts so random text stays fast."""
    return {
        "math_verify": MathVerifyGrader(parsing_timeout=1, verify_timeout=1),
        "paper": PaperGrader(sympy_timeout=1),
        "boxed_strict": get_grader("boxed_strict"),
        "minerva": MinervaGrader(timeout=1),
        "consensus": get_grader("consensus"),
    }


def test_registry_holds_all_graders() -> None:
    assert tuple(GRADERS) == ALL_GRADERS


def test_ls_graders_lists_all_with_versions() -> None:
    result = CliRunner().invoke(app, ["ls", "graders", "--format", "tsv", "--config-dir", str(ROOT)])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    rows = {line.split("\t")[0]: line.split("\t") for line in lines[1:]}
    assert set(rows) == set(ALL_GRADERS)
    for grader_id, row in rows.items():
        assert get_grader(grader_id).version in row, row


# --- every benchmark gold answer ------------------------------------------------------


@pytest.mark.parametrize("grader_id", ALL_GRADERS)
def test_every_gold_answer_grades_correct_against_itself(graders: dict[str, Grader], grader_id: str) -> None:
    rows = all_gold_rows()
    assert len(rows) == 643
    grader = graders[grader_id]
    failures = {}
    for row in rows:
        outcome = grader.grade(completion=boxed(row["answer"]), gold=row["answer"], truncated=False)
        if outcome.verdict != "correct":
            failures[row["id"]] = row["answer"]
    assert failures == KNOWN_SELF_MISMATCHES.get(grader_id, {})


# --- hostile inputs through the pool ----------------------------------------------------

HOSTILE: dict[str, str] = {
    "power_tower": "The value is $\\boxed{10^{10^{10^{10}}}}$.",
    "nested_braces": "So $\\boxed{" + "{" * 10_000 + "1" + "}" * 10_000 + "}$.",
    "megabyte_prose_then_box": "We try again and again to find it. " * 30_000 + "So the answer is $\\boxed{5}$.",
    "megabyte_latex_no_box": "$\\frac{1}{2}+x^{2}$ " * 55_000,
    "megabyte_box": "$\\boxed{" + "1+" * 500_000 + "1}$",
}
"""Completions that make a parser or sympy work hard; the gold answer is 5."""

_NOT_CORRECT = {"incorrect", "no_answer", "timeout", "error"}
HOSTILE_VERDICTS: dict[str, dict[str, set[str]]] = {
    # math_verify's extraction is its own (and evolves separately): only "finishes, never
    # wrongly correct" is pinned for it.
    "math_verify": {
        "power_tower": _NOT_CORRECT,
        "nested_braces": _NOT_CORRECT,
        "megabyte_prose_then_box": {"correct", "timeout", "error"},
        "megabyte_latex_no_box": _NOT_CORRECT,
        "megabyte_box": _NOT_CORRECT,
    },
    "paper": {
        "power_tower": {"incorrect"},  # "^{" keeps sympy away
        "nested_braces": {"error"},  # over the length limit
        "megabyte_prose_then_box": {"correct"},
        "megabyte_latex_no_box": {"incorrect"},  # the last number, 2
        "megabyte_box": {"error"},
    },
    "boxed_strict": {
        "power_tower": {"incorrect"},
        "nested_braces": {"error"},
        "megabyte_prose_then_box": {"correct"},
        "megabyte_latex_no_box": {"no_answer"},
        "megabyte_box": {"error"},
    },
    "consensus": {  # math_verify's outcome when there is a box; the pool may stop the three members
        "power_tower": _NOT_CORRECT,
        "nested_braces": _NOT_CORRECT,
        "megabyte_prose_then_box": {"correct", "timeout", "error"},
        "megabyte_latex_no_box": _NOT_CORRECT,
        "megabyte_box": _NOT_CORRECT,
    },
    "minerva": {
        "power_tower": {"timeout"},  # sympy evaluates the tower; the alarm or the pool stops it
        "nested_braces": {"error"},
        "megabyte_prose_then_box": {"correct"},
        "megabyte_latex_no_box": {"no_answer"},
        "megabyte_box": {"error"},
    },
}


@pytest.mark.parametrize("grader_id", ALL_GRADERS)
def test_hostile_inputs_finish_within_the_limit_and_the_run_continues(grader_id: str) -> None:
    tasks = [GradeTask(("first", 0), boxed("5"), "5", False)]
    tasks += [GradeTask((name, 0), completion, "5", False) for name, completion in HOSTILE.items()]
    tasks += [GradeTask(("last", 0), boxed("6"), "5", False)]
    start = time.monotonic()
    outcomes = grade_many(tasks, grader_id=grader_id, workers=2, timeout=3.0)
    # Each sample gets at most 3 s once a worker takes it: 7 samples on 2 workers, plus start-up.
    assert time.monotonic() - start < 60
    verdicts = {task.key[0]: outcome.verdict for task, outcome in zip(tasks, outcomes, strict=True)}
    assert verdicts.pop("first") == "correct" and verdicts.pop("last") == "incorrect"
    for name, verdict in verdicts.items():
        assert verdict in HOSTILE_VERDICTS[grader_id][name], (name, verdict)
    for outcome in outcomes:
        assert outcome.extracted is None or len(outcome.extracted) < 1100  # long answers are clipped


# --- random LaTeX-like text -------------------------------------------------------------

_ATOMS = [
    "0", "1", "2", "7", "42", "3.5", "-", "+", "=", "^", "_", ",", ".", "/", "(", ")", "[", "]", " ", "\n",
    "x", "y", "C", "\\pi", "\\infty", "\\sqrt", "\\frac", "\\dfrac", "\\left(", "\\right)", "\\!", "\\,",
    "\\\\", "^\\circ", "\\%", "\\$", "$", "\\text{", "\\mbox{", "\\pm", "{", "}", "\\{", "\\}", "\\boxed{",
    "\\fbox{", "\\boxed ", "boxed", "The answer is ", "the final answer is $", "$. I hope it is correct.",
    "Final Answer: The final answer is ", "<answer>", "</answer>", "答案是", "ки", "five", "east", " and ",
    "cm", "inf", "**", "!", "^{", "10^{10}", "\\begin{pmatrix}", "\\end{pmatrix}", "&", "\\cdot", "\\le",
]  # fmt: skip
latex_like = st.lists(st.one_of(st.sampled_from(_ATOMS), st.text(max_size=3)), max_size=30).map("".join)
"""Random text built from LaTeX commands, braces, answer phrases and arbitrary characters."""

_ANSWER_ATOMS = [
    "0", "1", "2", "3", "9", "x", "y", "a", "C", "+", "-", "=", ",", ".", "/", "(", ")", "[", "]", " ", "^",
    "_", "\\pi", "\\sqrt", "\\frac", "\\dfrac", "\\cdot", "\\infty", "\\left(", "\\right)", "^\\circ", "\\%",
    "\\!", "\\text{cm}", "\\text{ ways}",
]  # fmt: skip
answers = st.recursive(
    st.lists(st.sampled_from(_ANSWER_ATOMS), max_size=6).map("".join),
    lambda inner: st.lists(st.one_of(inner, inner.map(lambda s: "{" + s + "}")), max_size=4).map("".join),
    max_leaves=12,
)
"""Random answer-like LaTeX with balanced braces (no ``$``, no box, no answer sentence)."""

_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check_outcome(outcome: GradeOutcome) -> None:
    """The invariants every outcome keeps, whatever the grader and the input."""
    assert outcome.verdict in VERDICTS
    if outcome.verdict in ("correct", "incorrect"):
        assert outcome.extracted is not None and outcome.error is None
    elif outcome.verdict in ("no_answer", "truncated"):
        assert outcome.extracted is None and outcome.error is None
    else:
        assert outcome.error


def _check_grader(grader: Grader, completion: str, gold: str) -> None:
    outcome = grader.grade(completion=completion, gold=gold, truncated=False)
    _check_outcome(outcome)
    cut = grader.grade(completion=completion, gold=gold, truncated=True)
    _check_outcome(cut)
    if outcome.verdict == "no_answer":
        assert cut.verdict == "truncated"
    elif "timeout" not in (outcome.verdict, cut.verdict):
        assert cut == outcome  # the flag only matters when there is no answer


def _check_two_step(grader: Any, completion: str, gold: str) -> None:
    extracted = grader.extract(completion)
    assert extracted is None or (isinstance(extracted, str) and extracted != "")
    assert grader.extract(completion) == extracted  # deterministic
    outcome = grader.grade(completion=completion, gold=gold, truncated=False)
    if extracted is None:
        assert outcome.verdict == "no_answer"
    elif outcome.verdict != "timeout":
        assert outcome == grader.judge(extracted=extracted, gold=gold)


@pytest.mark.parametrize("grader_id", ALL_GRADERS)
@_SETTINGS
@given(completion=latex_like, gold=st.one_of(answers, st.sampled_from(["5", "\\frac{14}{3}", "070", "\\text{(C)}"])))
def test_random_text_never_crashes(graders: dict[str, Grader], grader_id: str, completion: str, gold: str) -> None:
    _check_grader(graders[grader_id], completion, gold)
    if grader_id in TWO_STEP_GRADERS:
        _check_two_step(graders[grader_id], completion, gold)


@_SETTINGS
@given(answer=answers)
def test_boxed_strict_accepts_any_boxed_gold(graders: dict[str, Grader], answer: str) -> None:
    outcome = graders["boxed_strict"].grade(completion=boxed(answer), gold=answer, truncated=False)
    assert outcome.verdict == ("correct" if answer.strip() else "no_answer"), outcome


@_SETTINGS
@given(answer=answers)
def test_minerva_accepts_any_boxed_gold(graders: dict[str, Grader], answer: str) -> None:
    minerva = graders["minerva"]
    assert isinstance(minerva, MinervaGrader)
    outcome = minerva.grade(completion=boxed(answer), gold=answer, truncated=False)
    if minerva.normalize_gold(answer):
        assert outcome.verdict == "correct", outcome
    else:  # Minerva's normalisation removed everything (a unit word, spaces)
        assert outcome.verdict == "no_answer", outcome


@pytest.mark.parametrize("grader_id", ALL_GRADERS)
@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(completions=st.lists(latex_like, min_size=6, max_size=6))
def test_random_text_through_the_pool_matches_in_process(
    graders: dict[str, Grader], grader_id: str, completions: list[str]
) -> None:
    tasks = [GradeTask(("unit", f"p{i}", 0), text, "5", i % 2 == 0) for i, text in enumerate(completions)]
    outcomes = grade_many(tasks, grader_id=grader_id, workers=2, timeout=10.0)
    grader = get_grader(grader_id)  # as the workers build it
    for task, outcome in zip(tasks, outcomes, strict=True):
        _check_outcome(outcome)
        if outcome.verdict not in ("timeout", "error"):
            assert outcome == grader.grade(completion=task.completion, gold=task.gold, truncated=task.truncated)
