"""The math_verify grader: the case table, every benchmark gold answer, failure paths."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from rlvr_audit.core.errors import UnknownNameError
from rlvr_audit.core.records import VERDICTS
from rlvr_audit.grading import GRADERS, GradeOutcome, get_grader
from rlvr_audit.grading.math_verify import MathVerifyGrader, normalize_gold

HERE = Path(__file__).resolve().parent
CASES: list[dict[str, Any]] = json.loads((HERE / "cases.json").read_text(encoding="utf-8"))
BENCHMARKS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "benchmarks"
BENCHMARK_FILES = {"math500": 500, "amc": 83, "aime24": 30, "aime25": 30}
"""Benchmark file stem -> expected number of rows."""


def boxed(answer: str) -> str:
    """The completion used to grade a gold answer against itself."""
    return f"The final answer is $\\boxed{{{answer}}}$."


def load_benchmark(name: str) -> list[dict[str, Any]]:
    """Rows of ``../shared/data/benchmarks/<name>.jsonl``; skips the test if it is absent."""
    path = BENCHMARKS / f"{name}.jsonl"
    if not path.is_file():
        pytest.skip(f"benchmark data not found at {path} (the shared data folder is not checked out)")
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="module")
def grader() -> MathVerifyGrader:
    return MathVerifyGrader()


# --- the case table -------------------------------------------------------------------


def test_case_table_is_well_formed() -> None:
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    for case in CASES:
        assert set(case) <= {"id", "completion", "gold", "truncated", "verdict", "note"}, case["id"]
        assert case["verdict"] in VERDICTS, case["id"]
        assert isinstance(case["truncated"], bool), case["id"]
    verdicts = {case["verdict"] for case in CASES}
    assert {"correct", "incorrect", "no_answer", "truncated", "error"} <= verdicts
    truncated_correct = [case for case in CASES if case["truncated"] and case["verdict"] == "correct"]
    assert truncated_correct, "the table needs a truncated-but-correct case"


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_case_table(grader: MathVerifyGrader, case: dict[str, Any]) -> None:
    outcome = grader.grade(completion=case["completion"], gold=case["gold"], truncated=case["truncated"])
    assert outcome.verdict == case["verdict"], (outcome, case.get("note", ""))
    if outcome.verdict in ("correct", "incorrect"):
        assert outcome.extracted, "an extracted answer is reported for correct/incorrect"
        assert outcome.error is None
    elif outcome.verdict in ("no_answer", "truncated"):
        assert outcome.extracted is None and outcome.error is None
    else:
        assert outcome.error


# --- every benchmark gold answer ------------------------------------------------------


@pytest.mark.parametrize("name", list(BENCHMARK_FILES))
def test_every_gold_answer_grades_correct_against_itself(grader: MathVerifyGrader, name: str) -> None:
    rows = load_benchmark(name)
    assert len(rows) == BENCHMARK_FILES[name]
    failures = []
    for row in rows:
        outcome = grader.grade(completion=boxed(row["answer"]), gold=row["answer"], truncated=False)
        if outcome.verdict != "correct":
            failures.append((row["id"], row["answer"], outcome))
    assert not failures, f"{len(failures)} gold answers do not grade correct against themselves: {failures}"


def test_math500_reference_solutions_grade_correct(grader: MathVerifyGrader) -> None:
    """Full-length real text: MATH's reference solution (ends in a box) against its gold answer."""
    rows = load_benchmark("math500")
    failures = []
    for row in rows:
        outcome = grader.grade(completion=row["solution"], gold=row["answer"], truncated=False)
        if outcome.verdict != "correct":
            failures.append((row["id"], row["answer"], outcome))
    assert not failures, failures


@pytest.mark.parametrize("name", ["aime24", "aime25"])
def test_aime_leading_zeros_are_harmless(grader: MathVerifyGrader, name: str) -> None:
    rows = load_benchmark(name)
    assert any(row["answer"].startswith("0") for row in rows), "the data should hold zero-padded answers"
    for row in rows:
        value = int(row["answer"])
        right = grader.grade(completion=boxed(str(value)), gold=row["answer"], truncated=False)
        wrong = grader.grade(completion=boxed(str(value + 1)), gold=row["answer"], truncated=False)
        assert (right.verdict, wrong.verdict) == ("correct", "incorrect"), (row["id"], row["answer"])


def test_amc_float_answers_equal_their_integers(grader: MathVerifyGrader) -> None:
    rows = load_benchmark("amc")
    integral = [row for row in rows if float(row["answer"]).is_integer()]
    assert len(integral) > len(rows) // 2 and all(row["answer"].endswith(".0") for row in integral)
    for row in integral:
        value = int(float(row["answer"]))
        right = grader.grade(completion=boxed(str(value)), gold=row["answer"], truncated=False)
        wrong = grader.grade(completion=boxed(str(value + 1)), gold=row["answer"], truncated=False)
        assert (right.verdict, wrong.verdict) == ("correct", "incorrect"), (row["id"], row["answer"])


@pytest.mark.parametrize(
    ("gold", "answer"),
    [
        ("070", "70"),
        ("142.0", "142"),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\pi/2)"),
        ("p - q", "p-q"),
        ("\\frac{14}{3}", "\\dfrac{14}{3}"),
        ("\\text{(C)}", "C"),
    ],
)
def test_harmless_forms(grader: MathVerifyGrader, gold: str, answer: str) -> None:
    assert grader.grade(completion=boxed(answer), gold=gold, truncated=False).verdict == "correct"


# --- gold normalisation, version, registry ------------------------------------------


@pytest.mark.parametrize(
    ("gold", "expected"),
    [("070", "$070$"), ("  \\frac{1}{2}\n", "$\\frac{1}{2}$"), ("$5$", "$5$"), ("\\$32,\\!348", "$\\$32,\\!348$")],
)
def test_normalize_gold(gold: str, expected: str) -> None:
    assert normalize_gold(gold) == expected


def test_version_names_the_library_versions(grader: MathVerifyGrader) -> None:
    assert grader.grader_id == "math_verify"
    assert grader.version.startswith(f"2+math-verify=={metadata.version('math-verify')}+")
    assert grader.version.endswith(f"+antlr4-python3-runtime=={metadata.version('antlr4-python3-runtime')}")
    assert f"latex2sympy2_extended=={metadata.version('latex2sympy2_extended')}" in grader.version


def test_registry() -> None:
    assert GRADERS["math_verify"] is MathVerifyGrader
    assert isinstance(get_grader("math_verify"), MathVerifyGrader)
    with pytest.raises(UnknownNameError, match=r"valid graders: .*math_verify"):
        get_grader("math-verify")


def test_grade_outcome_rejects_unknown_verdicts() -> None:
    with pytest.raises(ValueError, match="unknown verdict"):
        GradeOutcome("right", "5")  # type: ignore[arg-type]


def test_importing_graders_does_not_import_math_verify() -> None:
    code = "import sys, rlvr_audit.grading.pool; print(sorted(m for m in ('math_verify', 'sympy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_grader_module_can_be_imported_first() -> None:
    code = "from rlvr_audit.grading.math_verify import MathVerifyGrader; print(MathVerifyGrader.grader_id)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "math_verify"


# --- failure paths --------------------------------------------------------------------


def test_math_verify_own_timeout_gives_timeout() -> None:
    """A tower of powers makes sympy evaluate a huge integer; math-verify's alarm stops it."""
    grader = MathVerifyGrader(verify_timeout=1)
    start = time.monotonic()
    outcome = grader.grade(completion=boxed("10^{10^{10^{10}}}"), gold="5", truncated=False)
    assert time.monotonic() - start < 5
    assert outcome.verdict == "timeout"
    assert outcome.extracted == "10^{10^{10^{10}}}"
    assert outcome.error is not None and "comparing" in outcome.error


def test_comparison_failure_is_an_error_verdict(grader: MathVerifyGrader, monkeypatch: pytest.MonkeyPatch) -> None:
    import math_verify

    def broken_verify(*args: object, **kwargs: object) -> bool:
        raise RuntimeError("sympy blew up")

    monkeypatch.setattr(math_verify, "verify", broken_verify)
    outcome = grader.grade(completion=boxed("5"), gold="5", truncated=False)
    assert outcome == GradeOutcome("error", "5", "comparing with the gold answer failed: RuntimeError: sympy blew up")


def test_comparison_timeout_is_a_timeout_verdict(grader: MathVerifyGrader, monkeypatch: pytest.MonkeyPatch) -> None:
    import math_verify
    from math_verify.errors import TimeoutException

    def slow_verify(*args: object, **kwargs: object) -> bool:
        raise TimeoutException("Timeout during comparison")

    monkeypatch.setattr(math_verify, "verify", slow_verify)
    outcome = grader.grade(completion=boxed("5"), gold="5", truncated=False)
    assert outcome.verdict == "timeout" and outcome.extracted == "5"


def test_parse_failure_is_an_error_verdict(grader: MathVerifyGrader, monkeypatch: pytest.MonkeyPatch) -> None:
    import math_verify

    real_parse = math_verify.parse

    def parse(pred: str, *args: Any, **kwargs: Any) -> Any:
        if "boxed" in pred:
            raise ValueError("bad regex day")
        return real_parse(pred, *args, **kwargs)

    monkeypatch.setattr(math_verify, "parse", parse)
    outcome = grader.grade(completion=boxed("5"), gold="5", truncated=False)
    assert outcome == GradeOutcome("error", None, "parsing the completion failed: ValueError: bad regex day")


def test_off_main_thread_is_an_error_not_a_crash(grader: MathVerifyGrader) -> None:
    outcomes: list[GradeOutcome] = []
    thread = threading.Thread(
        target=lambda: outcomes.append(grader.grade(completion=boxed("5"), gold="5", truncated=False))
    )
    thread.start()
    thread.join()
    assert outcomes[0].verdict == "error"
    assert outcomes[0].error is not None and "main thread" in outcomes[0].error


def test_timeouts_must_be_whole_seconds() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        MathVerifyGrader(parsing_timeout=0)
