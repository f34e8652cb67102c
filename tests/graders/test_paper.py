"""The paper grader: the case table, Qwen2.5-Math extraction, PRM800K equivalence, safety bounds."""

from __future__ import annotations

import json
import signal
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from rlvr_audit.core.records import VERDICTS
from rlvr_audit.grading import GRADERS, GradeOutcome, get_grader
from rlvr_audit.grading import paper as paper_module
from rlvr_audit.grading._timeout import NotMainThreadError, TimeLimitExceeded, time_limit
from rlvr_audit.grading.paper import (
    PaperGrader,
    extract_answer,
    grade_answer,
    mathd_normalize,
    prm800k_normalize,
    should_allow_eval,
    split_tuple,
    strip_string,
    sympy_equal,
)

HERE = Path(__file__).resolve().parent
CASES: list[dict[str, Any]] = json.loads((HERE / "paper_cases.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def grader() -> PaperGrader:
    return PaperGrader()


# --- the case table -------------------------------------------------------------------


def test_case_table_is_well_formed() -> None:
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    for case in CASES:
        assert set(case) == {"id", "completion", "gold", "truncated", "verdict", "note"}, case["id"]
        assert case["verdict"] in VERDICTS, case["id"]
    assert {"correct", "incorrect", "no_answer", "truncated", "error"} <= {case["verdict"] for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_case_table(grader: PaperGrader, case: dict[str, Any]) -> None:
    outcome = grader.grade(completion=case["completion"], gold=case["gold"], truncated=case["truncated"])
    assert outcome.verdict == case["verdict"], (outcome, case["note"])
    if outcome.verdict in ("correct", "incorrect"):
        assert outcome.extracted and outcome.error is None
    elif outcome.verdict in ("no_answer", "truncated"):
        assert outcome.extracted is None and outcome.error is None
    else:
        assert outcome.error


# --- extraction -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("so $\\boxed{3}$, but the final answer is 5", "3"),  # the last box, not the later prose
        ("$\\boxed{1}$ and later $\\boxed{2}$", "2"),
        ("final answer is $7$. I hope it is correct. Also $\\boxed{3}$.", "7"),  # Minerva sentence first
        ("final answer is $7$, I hope. $\\boxed{3}$.", "3"),  # needs "$. I hope"
        ("The answer is: 12.", "12"),
        ("Thus the final answer is 12", "12"),
        ("答案是 12\n\n其他", "12"),
        ("we get 3, then 1,234 apples", "1234"),  # last number, commas removed
        ("we get -3.5", "-3.5"),
        ("\\boxed 5$ and more", "5"),  # no brace: up to the next $
        ("\\boxed{\\frac{1}{2}", "\\frac{1}{2}"),  # never closed: to the end of the text
        ("<think>1 + 1 = 2</think><answer> 2 </answer>", "2"),
        ("<answer>1</answer> then <answer>\\frac{3}{4}</answer>", "\\frac{3}{4}"),  # the last tag
        ("<answer>so the answer is 9</answer>", "9"),
        ("nothing numeric here", None),
        ("$\\boxed{}$", None),  # empty after normalisation
        ("$\\boxed{\\text{east}}$", None),  # a unit word, erased
    ],
)
def test_extract_answer(completion: str, expected: str | None) -> None:
    assert extract_answer(completion) == expected


@pytest.mark.parametrize(
    ("raw", "stripped"),
    [
        ("\\dfrac{1}{2}", "\\frac{1}{2}"),
        ("\\frac12", "\\frac{1}{2}"),
        ("3/4", "\\frac{3}{4}"),
        ("\\sqrt{2}/2", "\\frac{\\sqrt{2}}{2}"),
        ("\\sqrt2", "\\sqrt{2}"),
        ("5 \\text{ miles}", "5"),
        ("\\text{Evelyn}", "Evelyn"),
        ("x = 5", "5"),
        ("k=5", "5"),
        ("50\\%", "50"),
        ("2.000", "2"),
        (".5", "0.5"),
        ("\\left( 1, 2 \\right)", "(1,2)"),
        ("90^\\circ", "90"),
        ("\\$18.90", "18.90"),
        ("five", "5"),
        ("x + one", "1"),  # word2number reads any number word
        ("infinity", "\\infty"),
        ("\\begin{bmatrix}1\\end{bmatrix}", "\\begin{pmatrix}1\\end{pmatrix}"),
        ("3j", "3i"),
        ("2 and 3", "23"),
        ("(a+5)(b+2)", "(+5)(b+2)"),  # "a" is a unit word
        ("10 cm", "10"),
    ],
)
def test_strip_string(raw: str, stripped: str) -> None:
    assert strip_string(raw) == stripped


# --- equivalence ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "normalized"),
    [
        ("\\text{(C)}", "(C)"),
        ("0.5", "\\frac{1}{2}"),
        ("\\dfrac{3}{4}", "\\frac{3}{4}"),
        ("5 \\text{ cents}", "5"),
        ("5 \\text{ cm} \\text{ wide}", "5 \\text{ cm} \\text{ wide}"),  # two units: the original gives up
        ("\\frac", "\\frac"),  # a bare \frac makes the original fail: the answer is kept
        ("\\sqrt3", "\\sqrt{3}"),
    ],
)
def test_mathd_normalize(answer: str, normalized: str) -> None:
    assert mathd_normalize(answer) == normalized


@pytest.mark.parametrize(
    ("answer", "normalized"),
    [
        ("\\text{Evelyn}", "evelyn"),
        ("\\frac{1}{2}", "1/2"),
        ("\\frac{x+1}{2}", "x+1/2"),  # pylatexenc drops the parentheses, as in PRM800K
        ("\\sqrt{3}", "sqrt(3)"),
        ("3\\frac{1}{2}", "3+1/2"),  # mixed number
        ("10,\\!080", "10080"),
        ("1,000,000", "1000000"),
        ("142.0", "142"),
        ("5 million", "5*10^6"),
        ("1 or 2", "1,2"),
        ("30 degrees", "30"),
        ("\\pi", "pi"),
    ],
)
def test_prm800k_normalize(answer: str, normalized: str) -> None:
    assert prm800k_normalize(answer) == normalized


@pytest.mark.parametrize(
    ("expr", "elements"),
    [("(1,2]", ["1", "2"]), ("[1, 2, 3)", ["1", "2", "3"]), ("(1,(2))", ["(1,(2))"]), ("5", ["5"]), ("", [])],
)
def test_split_tuple(expr: str, elements: list[str]) -> None:
    assert split_tuple(expr) == elements


@pytest.mark.parametrize(
    ("expr", "allowed"),
    [
        ("(x+1)-(1+x)", True),
        ("(sqrt(3)/3)-(1/sqrt(3))", True),  # sqrt does not count as letters
        ("(x+y)-(z)", False),  # three letters
        ("(x^{2})-(x^2)", False),  # ^{
        ("(2^(3))-(8)", False),  # ^(
        ("(2^3^2)-(512)", False),  # tower
        ("(2^10)-(1024)", False),  # two-digit exponent
        ("(10**10**10)-(5)", False),  # added: ** never reaches sympy
        ("((((2)^2)^2)^2)-(256)", True),
        ("(((((2)^2)^2)^2)^2)-(65536)", False),  # added: more than three ")^"
        ("(9!)-(362880)", False),  # added: ! is not an allowed token
        ("(x=1)-(1)", False),
        ("(x<1)-(1)", False),
        ("(x.y)-(1)", False),
        ("(x[0])-(1)", False),
        ("('x')-(1)", False),
    ],
)
def test_should_allow_eval(expr: str, allowed: bool) -> None:
    assert should_allow_eval(expr) is allowed


def test_sympy_never_sees_python_code(tmp_path: Path) -> None:
    """parse_expr ends in eval; only arithmetic on numbers and plain names gets that far."""
    target = tmp_path / "pwned"
    for attack in [
        f"__import__('os').system('touch {target}')",
        f"open('{target}', 'w')",
        "(1).__class__",
        "id(1)",
    ]:
        assert sympy_equal("1", attack) is False
    assert not target.exists()
    namespace = paper_module._sympy_namespace()
    assert namespace["__builtins__"] == {}
    assert "id" not in namespace and "open" not in namespace and "eval" not in namespace


def test_sympy_equal() -> None:
    assert sympy_equal("sqrt(3)/3", "1/sqrt(3)")
    assert sympy_equal("x^2-1", "(x-1)(x+1)")  # implicit multiplication
    assert sympy_equal("2pi", "pi*2")
    assert not sympy_equal("x^2-1", "(x-1)(x-1)")
    assert not sympy_equal("1", "(")  # does not parse


@pytest.mark.parametrize(
    ("given", "gold", "correct"),
    [
        ("\\frac{1}{2}", "0.5", True),
        ("\\frac{2}{4}", "\\frac{1}{2}", False),  # fractions must match exactly
        ("4.0", "4", True),
        ("\\frac{8}{2}", "4", False),  # integer gold, non-integer-looking answer
        ("(3,\\frac{\\pi}{2})", "\\left( 3, \\frac{\\pi}{2} \\right)", True),
        ("[3,\\frac{\\pi}{2}]", "\\left( 3, \\frac{\\pi}{2} \\right)", False),  # brackets differ
        ("(3,\\frac{\\pi}{2},1)", "\\left( 3, \\frac{\\pi}{2} \\right)", False),  # lengths differ
        ("", "5", False),
    ],
)
def test_grade_answer(given: str, gold: str, correct: bool) -> None:
    assert grade_answer(given, gold, equal_under_sympy=sympy_equal) is correct


# --- timeouts, threads, failures --------------------------------------------------------


def _slow_sympy(ground_truth: str, given: str) -> bool:
    time.sleep(30)
    return True


def _slow_sympy_swallowing(ground_truth: str, given: str) -> bool:
    try:
        time.sleep(30)
    except BaseException:  # code that swallows everything must not hide the timeout
        return False
    return True


@pytest.mark.parametrize("slow", [_slow_sympy, _slow_sympy_swallowing])
def test_slow_sympy_is_a_timeout_verdict(monkeypatch: pytest.MonkeyPatch, slow: Any) -> None:
    monkeypatch.setattr(paper_module, "sympy_equal", slow)
    grader = PaperGrader(sympy_timeout=0.2)
    handler_before = signal.getsignal(signal.SIGALRM)
    outcome = grader.judge(extracted="\\sqrt{3}/3", gold="\\frac{1}{\\sqrt{3}}")  # would sleep 30 s
    assert outcome == GradeOutcome("timeout", "\\sqrt{3}/3", "comparing with the gold answer took over 0.2 s")
    assert signal.getsignal(signal.SIGALRM) == handler_before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_failure_inside_the_grader_is_an_error_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(given: str, gold: str, **kwargs: Any) -> bool:
        raise RuntimeError("normaliser bug")

    monkeypatch.setattr(paper_module, "grade_answer", broken)
    outcome = PaperGrader().grade(completion="$\\boxed{5}$", gold="5", truncated=False)
    assert outcome == GradeOutcome("error", "5", "comparing with the gold answer failed: RuntimeError: normaliser bug")


def test_off_the_main_thread_only_the_sympy_step_is_refused(grader: PaperGrader) -> None:
    outcomes: list[GradeOutcome] = []

    def work() -> None:
        outcomes.append(grader.judge(extracted="5", gold="5.0"))  # string equality: no sympy
        outcomes.append(grader.judge(extracted="\\frac{1}{\\sqrt{3}}", gold="\\frac{\\sqrt{3}}{3}"))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert outcomes[0] == GradeOutcome("correct", "5")
    assert outcomes[1].verdict == "error" and outcomes[1].error is not None and "main thread" in outcomes[1].error


def test_grade_is_extract_then_judge(grader: PaperGrader) -> None:
    for case in CASES:
        extracted = grader.extract(case["completion"])
        outcome = grader.grade(completion=case["completion"], gold=case["gold"], truncated=case["truncated"])
        if extracted is None:
            assert outcome.verdict in ("no_answer", "truncated"), case["id"]
        else:
            assert outcome == grader.judge(extracted=extracted, gold=case["gold"]), case["id"]


def test_version_and_registry(grader: PaperGrader) -> None:
    assert GRADERS["paper"] is PaperGrader and isinstance(get_grader("paper"), PaperGrader)
    assert grader.version == (
        f"1+sympy=={metadata.version('sympy')}+pylatexenc=={metadata.version('pylatexenc')}"
        f"+word2number=={metadata.version('word2number')}"
    )
    with pytest.raises(ValueError, match="positive"):
        PaperGrader(sympy_timeout=0)


# --- the in-process time limit (rlvr_audit.grading._timeout) ------------------------------


def test_time_limit_interrupts_and_restores() -> None:
    with pytest.raises(TimeLimitExceeded), time_limit(0.05) as limit:
        time.sleep(5)
    assert limit.fired
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    with time_limit(5) as quick:
        pass
    assert not quick.fired


def test_time_limit_re_arms_an_outer_timer() -> None:
    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(signum))
    try:
        signal.setitimer(signal.ITIMER_REAL, 30)
        with time_limit(1):
            pass
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 20 < left <= 30  # the outer timer runs on, minus the time spent
        assert signal.getsignal(signal.SIGALRM) is not None and not fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_time_limit_refuses_other_threads_and_bad_limits() -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with time_limit(1):
                pass
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert len(errors) == 1 and isinstance(errors[0], NotMainThreadError)
    with pytest.raises(ValueError, match="positive"), time_limit(0):
        pass
