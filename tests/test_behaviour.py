"""Tests of rlvr_audit.analysis.behaviour: the code-reasoning detector on hand-labelled responses, the
behaviour flags, the per-unit summary and the strategy-transition table (the paper's Table 2)."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from rlvr_audit.analysis import behaviour
from rlvr_audit.analysis.behaviour import (
    BEHAVIOUR_CLASSES,
    CODE_DEFINITIONS,
    CODE_LINE_RULES,
    DEFAULT_DEFINITION,
    MIN_UNFENCED_CODE_LINES,
    REPEAT_MIN_COPIES,
    REPEAT_MIN_SPAN,
    classify_completion,
    detect_code,
    find_repetition,
    flag_completion,
    is_code_reasoning,
    problem_class,
    response_behaviour,
)
from rlvr_audit.analysis.behaviour_stats import TRANSITIONS, correctness_from_grades, summarize_unit, transition_table
from rlvr_audit.core.errors import UnknownNameError, UsageError
from rlvr_audit.core.records import Generation, Grade

ROOT = Path(__file__).resolve().parents[1]
CASES_PATH = Path(__file__).with_name("behaviour_cases.json")
CLAIMS = ROOT.parent / "shared" / "reference" / "claims.yaml"

CASES: list[dict[str, Any]] = json.loads(CASES_PATH.read_text(encoding="utf-8"))
BY_ID = {case["id"]: case for case in CASES}


def response(case_id: str) -> str:
    return str(BY_ID[case_id]["response"])


# --------------------------------------------------------------------------------------
# The hand-labelled table
# --------------------------------------------------------------------------------------


def test_case_table_is_well_formed_and_covers_the_required_kinds() -> None:
    assert len(CASES) >= 60
    assert len(BY_ID) == len(CASES), "case ids must be unique"
    for case in CASES:
        assert set(case) <= {
            "id",
            "category",
            "response",
            "labels",
            "note",
            "evidence",
            "behaviour",
            "finish_reason",
        }, case["id"]
        assert set(case["labels"]) == set(CODE_DEFINITIONS), case["id"]
        assert case["note"].strip(), case["id"]
    categories = Counter(case["category"] for case in CASES)
    for needed in (
        "fenced_python",
        "unfenced_code",
        "unlabelled_fence",
        "pseudo_code",
        "print_in_prose",
        "assignments",
        "latex_code_look",
        "prose_python",
        "other_language",
        "output_block",
        "sympy",
        "empty",
    ):
        assert categories[needed] >= 1, needed
    # both labels occur under both definitions, and the definitions disagree both ways
    pairs = Counter((c["labels"]["code_lines"], c["labels"]["mentions_python"]) for c in CASES)
    assert all(pairs[(a, b)] >= 5 for a in (True, False) for b in (True, False)), pairs


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_hand_labelled_case(case: dict[str, Any]) -> None:
    text = case["response"]
    evidence = detect_code(text)
    for name, expected in case["labels"].items():
        assert is_code_reasoning(text, name) is expected, f"{name}: {case['note']}"
        assert evidence.fired(name) is expected
    assert set(evidence.definitions_fired) == {n for n, v in case["labels"].items() if v}
    expected_evidence = case.get("evidence", {})
    if "code_blocks" in expected_evidence:
        assert [[b.start_line, b.end_line] for b in evidence.code_blocks] == expected_evidence["code_blocks"]
    if "code_lines" in expected_evidence:
        assert [line.line for line in evidence.code_lines] == expected_evidence["code_lines"]
    if "python_mentions" in expected_evidence:
        assert list(evidence.python_mentions) == expected_evidence["python_mentions"]


BEHAVIOUR_CASES = [c for c in CASES if "behaviour" in c]


def test_behaviour_class_cases_cover_every_class_and_the_loops_asked_for() -> None:
    classes = Counter(c["behaviour"] for c in BEHAVIOUR_CASES)
    assert set(classes) == set(BEHAVIOUR_CLASSES), classes
    loops = {c["id"] for c in BEHAVIOUR_CASES if c["behaviour"] == "degenerate"}
    assert {"degenerate-repeated-sentence", "degenerate-repeated-equation", "degenerate-repeated-boxed"} <= loops
    assert len(BEHAVIOUR_CASES) >= 14


@pytest.mark.parametrize("case", BEHAVIOUR_CASES, ids=[c["id"] for c in BEHAVIOUR_CASES])
def test_hand_labelled_behaviour_class(case: dict[str, Any]) -> None:
    got = classify_completion(case["response"], finish_reason=case.get("finish_reason", "stop"))
    assert got == case["behaviour"], case["note"]


def test_problem_class_is_the_majority_and_ties_go_by_priority() -> None:
    assert problem_class(["clean", "clean", "degenerate"]) == "clean"
    assert problem_class(["clean", "degenerate"]) == "degenerate"
    assert problem_class(["code", "no_answer", "code", "no_answer", "clean"]) == "no_answer"
    assert problem_class(["truncated"]) == "truncated"
    with pytest.raises(ValueError, match="unknown behaviour class 'loop'"):
        problem_class(["loop"])
    with pytest.raises(ValueError, match="at least one"):
        problem_class([])


def test_default_definition_is_code_lines() -> None:
    assert DEFAULT_DEFINITION == "code_lines"
    text = response("prose-mentions-python")
    assert is_code_reasoning(text) is False
    assert is_code_reasoning(text, "mentions_python") is True


def test_unknown_definition_names_the_valid_ones() -> None:
    with pytest.raises(UnknownNameError) as info:
        is_code_reasoning("print(1)\nprint(2)", "has_code")
    message = str(info.value)
    assert "has_code" in message and "code_lines" in message and "mentions_python" in message
    assert isinstance(info.value, UsageError) and info.value.exit_code == 2
    with pytest.raises(UnknownNameError):
        detect_code("x").fired("python")


def test_non_string_input_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="str"):
        detect_code(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="str"):
        find_repetition(b"abc")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# Evidence: what fired, where
# --------------------------------------------------------------------------------------


def test_evidence_reports_blocks_lines_and_mentions_with_line_numbers() -> None:
    text = "\n".join(
        [
            "We use Python here.",  # 1
            "```python",  # 2
            "x = 1",  # 3
            "```",  # 4
            "```output",  # 5
            "1",  # 6
            "```",  # 7
            "import math",  # 8
            "",  # 9
            "y = math.sqrt(16)  # four",  # 10
            "Then $z = x ** 2$ and PYTHON again.",  # 11
            "```",  # 12
            "print(y)",  # 13
        ]
    )
    ev = detect_code(text)
    assert ev.n_lines == 13
    assert [(b.start_line, b.end_line, b.language, b.closed, b.is_code) for b in ev.fenced_blocks] == [
        (2, 4, "python", True, True),
        (5, 7, "output", True, False),
        (12, 13, "", False, True),
    ]
    assert ev.fenced_blocks[1].reason == "output block"
    assert "code line 13" in ev.fenced_blocks[2].reason
    assert [(c.line, c.rule) for c in ev.code_lines] == [(8, "import"), (10, "assignment")]
    assert ev.code_lines[1].text == "y = math.sqrt(16)  # four"
    assert ev.python_mentions == (1, 2, 11)
    assert ev.definitions_fired == ("code_lines", "mentions_python")


def test_every_reported_rule_is_a_documented_rule() -> None:
    rules = {line.rule for case in CASES for line in detect_code(case["response"]).code_lines}
    assert rules <= set(CODE_LINE_RULES)
    assert {"import", "from_import", "print", "def", "assignment", "plain_assignment", "repl"} <= rules


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        ("def f(x):", "def"),
        ("def area(r) -> float:", "def"),
        ("class Account:", "class"),
        ("import numpy as np", "import"),
        ("import math, itertools", "import"),
        ("from sympy import symbols, solve", "from_import"),
        ("from math import *", "from_import"),
        ("print(f'{x:.2f}')", "print"),
        ("sp.solve(eq, x)", "call"),
        ("solve(x**2 - 4, x)", "call"),
        ("for i in range(10):", "for"),
        ("for a, b in pairs:", "for"),
        ("while n > 0:", "while"),
        ("elif n % 2 == 0:", "if"),
        ("else:", "else"),
        ("try:", "try"),
        ("except ZeroDivisionError:", "except"),
        ("with open(path) as fh:", "with"),
        ("return a + b", "return"),
        (">>> 2 + 2", "repl"),
        ("x = symbols('x')", "assignment"),
        ("n //= 10", "assignment"),
        ("a[0] = 1", "assignment"),
        ("self.rate = rate", "assignment"),
        ("ok = n % 2 == 0", "assignment"),
        ("total_cost = 3 * 4", "assignment"),
        ("answer = 42", "plain_assignment"),
        ("name = 'Evelyn'", "assignment"),
        ("x = 5, which is Alice's and Bob's share", "plain_assignment"),  # apostrophes are not strings
        # not code-style
        ("x^2 + y = 5", None),
        ("y = x^2", None),
        ("f(x) = 3x - 2", None),
        ("a_{n+1} = a_n + 1", None),
        ("The answer is 5.", None),
        ("print(the sum of digits)", None),
        ("import the values into the formula", None),
        ("from the first equation we get x", None),
        ("for each x in S:", None),
        ("r = \\sqrt{2}", None),
        ("sqrt(2)", None),
        ("# Step 1: factor", None),
        ("x" * 600 + " = [1]", None),
    ],
)
def test_code_line_rules(line: str, rule: str | None) -> None:
    assert behaviour._code_rule(line) == rule


def test_plain_assignments_count_only_next_to_strong_code_lines() -> None:
    assert detect_code("x = 5\ny = 7\nz = 12").code_lines == ()
    ev = detect_code("x = 5\n\nprint(x)\nThe answer is 5.\ny = 7")
    assert [(c.line, c.rule) for c in ev.code_lines] == [(1, "plain_assignment"), (3, "print")]
    assert ev.fired("code_lines")


def test_unfenced_threshold_is_two_code_lines() -> None:
    assert MIN_UNFENCED_CODE_LINES == 2
    one = "Prose first.\nprint(x)\nMore prose."
    two = "Prose first.\nprint(x)\nprint(y)\nMore prose."
    assert not is_code_reasoning(one)
    assert is_code_reasoning(two)


def test_math_regions_are_blanked_but_unclosed_openers_are_text() -> None:
    masked = behaviour._mask_math("a $x = 1$ b \\(y\\) c \\[\nz\n\\] d \\$5 e $$w$$ f")
    expected = ["a ", " " * 7, " b ", " " * 5, " c ", " " * 2, "\n \n", " " * 2, " d \\$5 e ", " " * 5, " f"]
    assert masked == "".join(expected)
    assert behaviour._mask_math("costs $5 and more") == "costs $5 and more"
    assert behaviour._mask_math("\\begin{align}\nx &= 1\n\\end{align}") == " " * 13 + "\n" + " " * 6 + "\n" + " " * 11
    # an unclosed display opener does not swallow the code after it
    assert is_code_reasoning("\\[ x = 1\nimport math\nprint(math.pi)")


def test_the_detector_never_executes_the_code(tmp_path: Path) -> None:
    target = tmp_path / "executed.txt"
    program = (
        "```python\n"
        f"open({str(target)!r}, 'w').write('ran')\n"
        "raise SystemExit(3)\n"
        "```\n"
        f"open({str(target)!r}, 'w').write('ran')\n"
        "__import__('os')._exit(4)\n"
    )
    assert is_code_reasoning(program)
    flag_completion(program)
    assert not target.exists()


def test_pathological_inputs_complete() -> None:
    """Linear-time design: these would take minutes with a backtracking regex or a quadratic scan."""
    same = "a" * 100_000
    assert not is_code_reasoning(same)
    assert flag_completion(same).repetition
    long_line = "".join("x = (y + $\\[{"[i % 13] for i in range(100_000))
    assert not is_code_reasoning(long_line)
    for text in ("$" * 100_001, "\\[" * 50_000, "\\(" * 50_000, "\\begin{align}x" * 10_000, "`" * 100_000):
        detect_code(text)
        flag_completion(text)
    fences = "```\n" * 20_000
    assert len(detect_code(fences).fenced_blocks) == 10_000
    mentions = "python " * 20_000
    assert detect_code(mentions).python_mentions == (1,)
    words = " ".join(("alpha", "beta", "gamma", "delta")[(i * 7) % 4] for i in range(30_000))
    assert flag_completion(words).repetition  # period "alpha delta gamma beta "
    near_misses = ("a" * 90 + "b") * 300  # many short recurrences to reject before the true unit
    found = find_repetition(near_misses)
    assert found is not None and found.period == 91
    assert find_repetition("".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(100_000))) is None


# --------------------------------------------------------------------------------------
# Behaviour flags
# --------------------------------------------------------------------------------------


def test_flags_truncated_empty_and_tokens() -> None:
    flags = flag_completion("The answer is \\boxed{5}.", finish_reason="length", n_tokens=3072)
    assert flags.truncated and not flags.empty and not flags.boxed_nothing and flags.n_tokens == 3072
    assert not flag_completion("x", finish_reason="stop").truncated
    assert not flag_completion("x").truncated  # unknown finish reason is not a truncation
    blank = flag_completion(" \n\t")
    assert blank.empty and blank.boxed_nothing and not blank.repetition and blank.n_tokens is None


@pytest.mark.parametrize(
    ("completion", "nothing"),
    [
        ("So the answer is \\(\\boxed{5}\\).", False),
        ("\\boxed{\\frac{14}{3}}", False),
        ("\\fbox{7}", False),
        ("First \\boxed{3}, then finally \\boxed{}", True),
        ("\\boxed{  }", True),
        ("The answer is 5.", True),
        ("The answer is \\boxed{\\frac{1}{2", True),
        ("", True),
    ],
)
def test_boxed_nothing(completion: str, nothing: bool) -> None:
    assert flag_completion(completion).boxed_nothing is nothing


def test_flag_input_errors() -> None:
    with pytest.raises(ValueError, match="finish_reason"):
        flag_completion("x", finish_reason="eos")
    with pytest.raises(ValueError, match="n_tokens"):
        flag_completion("x", n_tokens=-1)
    with pytest.raises(TypeError):
        flag_completion(None)  # type: ignore[arg-type]


def test_repetition_of_characters() -> None:
    text = "The decimal is 0." + "3" * 150 + " and so on."
    found = find_repetition(text)
    assert found is not None
    assert (found.period, found.unit, found.copies, found.span) == (1, "3", 150, 150)
    assert found.start == text.index("3")
    # a short run is not degenerate, however many copies
    assert find_repetition("The number is 1" + "0" * 60 + " exactly; " + "-" * 40 + " done." * 5) is None
    # a 12-character unit repeated 11 times spans 132 characters: degenerate; 10 times is not
    unit = "\\frac{1}{2}+"
    assert len(unit) == 12
    found = find_repetition("Sum: " + unit * 11 + "1")
    assert found is not None and (found.period, found.copies, found.unit, found.start) == (12, 11, unit, 5)
    assert find_repetition("Sum: " + unit * 10 + "1") is None


def test_repetition_of_lines_tolerates_whitespace_changes() -> None:
    sentence = "Therefore the final answer is 5 and we are done."
    lines = [sentence.replace(" ", "  " if i % 2 else " ") for i in range(12)]
    text = "Solution:\n" + "\n".join(lines)
    found = find_repetition(text)
    assert found is not None
    assert found.period == len(sentence) + 1 and found.copies == 12
    assert found.unit.strip() == sentence
    assert text[found.start :].lstrip().startswith("Therefore")
    assert find_repetition("Solution:\n" + "\n".join(lines[:10])) is None


def test_repetition_of_long_units_and_units_with_inner_repeats() -> None:
    paragraph = " ".join(f"word{i}" for i in range(40))
    found = find_repetition("Intro. " + " ".join([paragraph] * REPEAT_MIN_COPIES) + " end")
    assert found is not None and found.period == len(paragraph) + 1 and found.copies == 11
    assert find_repetition("Intro. " + " ".join([paragraph] * (REPEAT_MIN_COPIES - 1))) is None
    # a 41-character unit whose first 40 characters repeat with period 1
    found = find_repetition("x" + ("a" * 40 + "b") * 12)
    assert found is not None and found.period == 41 and found.copies == 12


def test_normal_solutions_have_no_repetition() -> None:
    assert REPEAT_MIN_SPAN == 100
    for case in CASES:
        if case.get("behaviour") != "degenerate":  # the hand-labelled loops are the exception
            assert find_repetition(case["response"]) is None, case["id"]


# --------------------------------------------------------------------------------------
# Records helpers
# --------------------------------------------------------------------------------------

CODE_TEXT = response("fenced-python-sympy-divisors")  # code under both definitions, boxed
LANG_TEXT = response("long-language-solution")  # language under both, boxed
PY_PROSE = response("prose-mentions-python")  # language (code_lines), mentions python
LOOP_TEXT = "Let me recompute. " * 20  # repetition, no box


def gen(
    unit: str,
    problem: str,
    sample: int,
    completion: str,
    *,
    finish: str = "stop",
    n_tokens: int | None = None,
    checkpoint: str = "qwen2.5-math-7b/base",
) -> Generation:
    return Generation(
        unit_key=unit,
        checkpoint_id=checkpoint,
        task="math500",
        problem_id=problem,
        template_id="qwen_math_default",
        sample_idx=sample,
        seed=sample,
        prompt="Q",
        prompt_hash="h",
        completion=completion,
        finish_reason=finish,  # type: ignore[arg-type]
        n_tokens=n_tokens,
        backend="scripted",
    )


def test_response_behaviour_reads_a_record() -> None:
    g = gen("u", "p1", 0, LOOP_TEXT, finish="length", n_tokens=4096)
    b = response_behaviour(g)
    assert (b.problem_id, b.sample_idx) == ("p1", 0)
    assert b.flags.repeat is not None and b.flags.repeat.unit.strip() == "Let me recompute."
    assert b.code == {"code_lines": False, "mentions_python": False}
    assert b.flags.truncated and b.flags.repetition and b.flags.boxed_nothing and b.flags.n_tokens == 4096


def test_correctness_from_grades() -> None:
    grades = [
        Grade(unit_key="u", problem_id="p1", sample_idx=0, grader_id="g", grader_version="1", verdict="correct"),
        Grade(unit_key="u", problem_id="p1", sample_idx=1, grader_id="g", grader_version="1", verdict="truncated"),
    ]
    assert correctness_from_grades(grades) == {("p1", 0): True, ("p1", 1): False}
    with pytest.raises(ValueError, match="two grades"):
        correctness_from_grades(grades + grades[:1])
    other = grades[0].model_copy(update={"grader_id": "h", "sample_idx": 2})
    with pytest.raises(ValueError, match="several graders"):
        correctness_from_grades([*grades, other])


# --------------------------------------------------------------------------------------
# Per-unit summary
# --------------------------------------------------------------------------------------


def small_unit() -> tuple[list[Generation], dict[tuple[str, int], bool]]:
    """3 problems x 2 samples; p2 has one code and one language sample.

    code: p1/0, p1/1, p2/0 (3 of 6); correct: p1/0, p2/0, p2/1 (3 of 6)
    accuracy | code = 2/3, accuracy | language = 1/3; truncated p1/1; empty p3/0; loop p3/1;
    boxed_nothing: p1/1 (cut before its box), p3/0, p3/1 -> 3 of 6; tokens 100, 200, 300, ?.
    """
    cut = CODE_TEXT[: CODE_TEXT.index("The prime factorization")]
    gens = [
        gen("u", "p1", 0, CODE_TEXT, n_tokens=100),
        gen("u", "p1", 1, cut, finish="length", n_tokens=300),
        gen("u", "p2", 0, CODE_TEXT, n_tokens=200),
        gen("u", "p2", 1, PY_PROSE),
        gen("u", "p3", 0, ""),
        gen("u", "p3", 1, LOOP_TEXT),
    ]
    correct = {("p1", 0): True, ("p1", 1): False, ("p2", 0): True, ("p2", 1): True, ("p3", 0): False, ("p3", 1): False}
    return gens, correct


def test_unit_summary_hand_computed() -> None:
    gens, correct = small_unit()
    s = summarize_unit(gens, correct=correct, rng=np.random.default_rng(0), n_resamples=500)
    assert (s.unit_key, s.checkpoint_id, s.task) == ("u", "qwen2.5-math-7b/base", "math500")
    assert s.template_id == "qwen_math_default"
    assert (s.definition, s.n_problems, s.n_responses, s.k) == ("code_lines", 3, 6, 2)
    assert (s.n_code, s.n_language, s.n_problems_code, s.n_problems_language) == (3, 3, 2, 2)
    expected = {
        "code_frequency": 3 / 6,
        "accuracy": 3 / 6,
        "accuracy_code": 2 / 3,
        "accuracy_language": 1 / 3,
        "code_minus_language": 1 / 3,
        "truncation_rate": 1 / 6,
        "repetition_rate": 1 / 6,
        "empty_rate": 1 / 6,
        "boxed_nothing_rate": 3 / 6,
    }
    for name, value in expected.items():
        interval = getattr(s, name)
        assert interval.value == pytest.approx(value), name
        assert interval.ci_low <= interval.value + 1e-12 and interval.value - 1e-12 <= interval.ci_high, name
        assert interval.level == 0.95 and "bootstrap-percentile(problems" in interval.method
    assert s.mean_tokens == pytest.approx(200.0) and s.n_tokens_known == 3
    assert s.n_resamples == 500
    # same generator state, same intervals
    again = summarize_unit(gens, correct=correct, rng=np.random.default_rng(0), n_resamples=500)
    assert again == s
    # the paper's definition: p2/1 mentions python, so 4 of 6 are "code"
    paper = summarize_unit(gens, correct=correct, rng=np.random.default_rng(1), definition="mentions_python")
    assert paper.n_code == 4 and paper.code_frequency.value == pytest.approx(4 / 6)
    assert paper.accuracy_code is not None and paper.accuracy_code.value == pytest.approx(3 / 4)


def test_unit_summary_without_correctness_or_without_code() -> None:
    gens, _ = small_unit()
    s = summarize_unit(gens, rng=np.random.default_rng(1), n_resamples=200)
    assert s.accuracy is None and s.accuracy_code is None and s.accuracy_language is None
    assert s.code_minus_language is None and s.code_frequency.value == pytest.approx(0.5)
    lang_only = [gen("v", f"p{i}", 0, LANG_TEXT) for i in range(4)]
    s = summarize_unit(lang_only, correct={(f"p{i}", 0): i < 3 for i in range(4)}, rng=np.random.default_rng(1))
    assert s.code_frequency == s.code_frequency.__class__(0.0, 0.0, 0.0, 0.95, s.code_frequency.method)
    assert s.accuracy_code is None and s.code_minus_language is None
    assert s.accuracy_language is not None and s.accuracy_language.value == pytest.approx(0.75)
    assert s.mean_tokens is None and s.n_tokens_known == 0 and s.k == 1


def test_unit_summary_intervals_match_theory_and_resample_problems() -> None:
    """k = 1: the code-frequency SE is the binomial sqrt(p(1 - p) / n). k = 4 with each problem's
    samples all code or all language: the SE is that of n_problems, not of n_problems * k."""
    n = 400
    gens = [gen("a", f"p{i:03d}", 0, CODE_TEXT if i % 2 else LANG_TEXT) for i in range(n)]
    correct = {(f"p{i:03d}", 0): (i % 10) < 6 if i % 2 else (i % 10) < 4 for i in range(n)}
    s = summarize_unit(gens, correct=correct, rng=np.random.default_rng(7), n_resamples=4000)
    assert s.code_frequency.se == pytest.approx(math.sqrt(0.25 / n), rel=0.1)
    assert s.accuracy_code is not None and s.accuracy_code.value == pytest.approx(0.6)
    assert s.accuracy_code.se == pytest.approx(math.sqrt(0.6 * 0.4 / 200), rel=0.15)
    half = 1.96 * math.sqrt(0.25 / n)
    assert s.code_frequency.ci_low == pytest.approx(0.5 - half, abs=0.012)
    assert s.code_frequency.ci_high == pytest.approx(0.5 + half, abs=0.012)
    clustered = [gen("b", f"p{i:03d}", j, CODE_TEXT if i % 2 else LANG_TEXT) for i in range(100) for j in range(4)]
    c = summarize_unit(clustered, rng=np.random.default_rng(7), n_resamples=4000)
    assert c.code_frequency.value == pytest.approx(0.5) and c.k == 4
    assert c.code_frequency.se == pytest.approx(math.sqrt(0.25 / 100), rel=0.1)


def test_unit_summary_bad_input() -> None:
    gens, correct = small_unit()
    rng = np.random.default_rng(0)
    with pytest.raises(UnknownNameError, match="mentions_python"):
        summarize_unit(gens, rng=rng, definition="python")
    with pytest.raises(ValueError, match="empty"):
        summarize_unit([], rng=rng)
    with pytest.raises(ValueError, match="several units"):
        summarize_unit([*gens, gen("other", "p9", 0, "x")], rng=rng)
    with pytest.raises(ValueError, match="two generations for sample 0"):
        summarize_unit([*gens, gens[0]], rng=rng)
    missing = dict(correct)
    del missing[("p3", 1)]
    with pytest.raises(ValueError, match=r"\('p3', 1\)"):
        summarize_unit(gens, correct=missing, rng=rng)
    with pytest.raises(ValueError, match="must be a bool"):
        summarize_unit(gens, correct={**correct, ("p1", 0): "yes"}, rng=rng)  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="Generator"):
        summarize_unit(gens, rng=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="level"):
        summarize_unit(gens, rng=rng, level=95)
    with pytest.raises(TypeError, match="Generation"):
        summarize_unit(["text"], rng=rng)  # type: ignore[list-item]


# --------------------------------------------------------------------------------------
# Transition table
# --------------------------------------------------------------------------------------


def pair_from_cells(
    cells: dict[str, tuple[int, int, int]],
) -> tuple[list[Generation], list[Generation], dict[tuple[str, int], bool], dict[tuple[str, int], bool]]:
    """k = 1 base and RLVR units; ``cells[label] = (n, correct before, correct after)``."""
    base: list[Generation] = []
    rlvr: list[Generation] = []
    base_ok: dict[tuple[str, int], bool] = {}
    rlvr_ok: dict[tuple[str, int], bool] = {}
    text = {"Code": CODE_TEXT, "Lang": LANG_TEXT}
    i = 0
    for label, (n, before, after) in cells.items():
        b, a = label.split("->")
        for j in range(n):
            pid = f"test/{i:04d}"
            base.append(gen("base", pid, 0, text[b]))
            rlvr.append(gen("rlvr", pid, 0, text[a], checkpoint="qwen2.5-math-7b/random"))
            base_ok[(pid, 0)] = j < before
            rlvr_ok[(pid, 0)] = j < after
            i += 1
    return base, rlvr, base_ok, rlvr_ok


def test_transition_table_hand_computed() -> None:
    # 10 problems: CC 4 (2 -> 3 correct), CL 1 (1 -> 0), LC 3 (0 -> 2), LL 2 (1 -> 1)
    base, rlvr, base_ok, rlvr_ok = pair_from_cells(
        {"Code->Code": (4, 2, 3), "Code->Lang": (1, 1, 0), "Lang->Code": (3, 0, 2), "Lang->Lang": (2, 1, 1)}
    )
    t = transition_table(base, rlvr, base_correct=base_ok, rlvr_correct=rlvr_ok)
    assert (t.base_unit, t.rlvr_unit, t.rlvr_checkpoint, t.n_problems) == ("base", "rlvr", "qwen2.5-math-7b/random", 10)
    assert t.acc_before == pytest.approx(0.4) and t.acc_after == pytest.approx(0.6) and t.gain == pytest.approx(0.2)
    rows = {r["transition"]: r for r in t.rows()}
    assert list(rows) == ["Code->Code", "Code->Lang", "Lang->Code", "Lang->Lang"]
    expected = {
        "Code->Code": (4, 0.5, 0.75, 0.1, 0.5),
        "Code->Lang": (1, 1.0, 0.0, -0.1, -0.5),
        "Lang->Code": (3, 0.0, 2 / 3, 0.2, 1.0),
        "Lang->Lang": (2, 0.5, 0.5, 0.0, 0.0),
    }
    for label, (n, before, after, contribution, share) in expected.items():
        row = rows[label]
        assert row["n_problems"] == n
        assert row["acc_before"] == pytest.approx(before) and row["acc_after"] == pytest.approx(after)
        assert row["contribution"] == pytest.approx(contribution) and row["share"] == pytest.approx(share)
    assert sum(c.contribution for c in t.cells) == pytest.approx(t.gain)
    assert sum(c.share for c in t.cells if c.share is not None) == pytest.approx(1.0)
    assert t.cell("language", "code").label == "Lang->Code"
    assert [(c.before, c.after) for c in t.cells] == list(TRANSITIONS)


def load_figure7() -> dict[str, Any]:
    claims = yaml.safe_load(CLAIMS.read_text(encoding="utf-8"))["claims"]
    return next(c for c in claims if c["id"] == "fig7.strategy_switching")["values"]


@pytest.mark.parametrize("reward", ["ground_truth", "majority_vote", "format_boxed"])
def test_transition_table_reproduces_the_papers_figure7_split(reward: str) -> None:
    """Synthetic units with the printed cell sizes and accuracies (rounded to whole problems)
    give back the paper's totals: 49.4 before, the printed after, and the step-150 code count."""
    fig = load_figure7()[reward]
    cells = {
        label: (v["n"], round(v["n"] * v["acc"][0] / 100), round(v["n"] * v["acc"][1] / 100))
        for label, v in fig.items()
        if "->" in label
    }
    base, rlvr, base_ok, rlvr_ok = pair_from_cells(cells)
    t = transition_table(base, rlvr, base_correct=base_ok, rlvr_correct=rlvr_ok)
    assert t.n_problems == 500
    assert round(100 * t.acc_before, 1) == fig["all"][0]
    assert round(100 * t.acc_after, 1) == fig["all"][1]
    for cell in t.cells:
        printed = fig[cell.label]
        assert cell.n_problems == printed["n"]
        assert round(100 * cell.acc_before, 1) == pytest.approx(printed["acc"][0], abs=0.05)
        assert round(100 * cell.acc_after, 1) == pytest.approx(printed["acc"][1], abs=0.05)
    assert t.cell("code", "code").n_problems + t.cell("language", "code").n_problems == fig["code_total_step150"]
    assert sum(c.share for c in t.cells if c.share is not None) == pytest.approx(1.0)
    assert sum(c.contribution for c in t.cells) == pytest.approx(t.gain)


def test_transition_table_majority_rule_for_several_samples() -> None:
    # p1: base 2/3 code -> code; rlvr 1/2 code... (k differs per unit: fine) -> tie is language
    base = [gen("b", "p1", j, t) for j, t in enumerate([CODE_TEXT, CODE_TEXT, LANG_TEXT])]
    base += [gen("b", "p2", j, t) for j, t in enumerate([LANG_TEXT, LANG_TEXT, CODE_TEXT])]
    rlvr = [gen("r", "p1", j, t) for j, t in enumerate([CODE_TEXT, LANG_TEXT])]
    rlvr += [gen("r", "p2", j, t) for j, t in enumerate([CODE_TEXT, CODE_TEXT])]
    base_ok = {("p1", 0): True, ("p1", 1): False, ("p1", 2): False, ("p2", 0): False, ("p2", 1): False, ("p2", 2): True}
    rlvr_ok = {("p1", 0): True, ("p1", 1): True, ("p2", 0): True, ("p2", 1): False}
    t = transition_table(base, rlvr, base_correct=base_ok, rlvr_correct=rlvr_ok)
    p1, p2 = t.problems
    assert (p1.code_share_before, p1.code_share_after, p1.before, p1.after) == (2 / 3, 0.5, "code", "language")
    assert (p2.before, p2.after) == ("language", "code")
    assert t.cell("code", "language").n_problems == 1 and t.cell("language", "code").n_problems == 1
    assert t.cell("code", "language").acc_before == pytest.approx(1 / 3)
    assert t.cell("code", "language").acc_after == pytest.approx(1.0)
    assert t.acc_before == pytest.approx(1 / 3) and t.acc_after == pytest.approx(0.75)
    empty = t.cell("code", "code")
    assert (empty.n_problems, empty.acc_before, empty.contribution, empty.share) == (0, None, 0.0, 0.0)


def test_transition_table_zero_gain_and_partial_overlap() -> None:
    base = [gen("b", p, 0, CODE_TEXT) for p in ("p1", "p2", "p3")]
    rlvr = [gen("r", p, 0, LANG_TEXT) for p in ("p2", "p3", "p4")]
    ok = {(p, 0): p == "p2" for p in ("p1", "p2", "p3", "p4")}
    t = transition_table(base, rlvr, base_correct=ok, rlvr_correct=ok)
    assert (t.n_problems, t.n_base_only, t.n_rlvr_only) == (2, 1, 1)
    assert t.gain == 0 and all(c.share is None for c in t.cells)
    assert t.cell("code", "language").n_problems == 2


def test_transition_table_bad_input() -> None:
    base = [gen("b", "p1", 0, CODE_TEXT)]
    ok = {("p1", 0): True}
    with pytest.raises(ValueError, match="same unit"):
        transition_table(base, base, base_correct=ok, rlvr_correct=ok)
    with pytest.raises(ValueError, match="share no problem"):
        transition_table(base, [gen("r", "p2", 0, CODE_TEXT)], base_correct=ok, rlvr_correct={("p2", 0): True})
    with pytest.raises(ValueError, match="rlvr_correct has no correctness"):
        transition_table(base, [gen("r", "p1", 0, CODE_TEXT)], base_correct=ok, rlvr_correct={})
    with pytest.raises(UnknownNameError, match="code_lines"):
        transition_table(base, base, base_correct=ok, rlvr_correct=ok, definition="nope")
    with pytest.raises(ValueError, match="rlvr is empty"):
        transition_table(base, [], base_correct=ok, rlvr_correct=ok)
