"""The grading engine: same outcomes as the plain calls, deduplication, shared timeouts.

The exactness claims of :mod:`rlvr_audit.grading.math_verify` are checked three ways: the
candidate scan against math-verify's own matching (corpus and random text), the fast path's
outcome against ``MathVerifyGrader.grade`` (random text, in-process), and the whole engine
against the plain loop on a corpus of long, realistic and hostile responses.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlvr_audit.core.errors import UnknownNameError
from rlvr_audit.grading import GRADERS, GradeOutcome, get_grader
from rlvr_audit.grading import engine as engine_module
from rlvr_audit.grading import math_verify as mv
from rlvr_audit.grading.corpus import CorpusItem, build_corpus, load_problems
from rlvr_audit.grading.engine import GradingEngine
from rlvr_audit.grading.math_verify import MathVerifyGrader
from rlvr_audit.grading.pool import GradeTask

MATH500 = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "benchmarks" / "math500.jsonl"

needs_fork = pytest.mark.skipif(
    multiprocessing.get_start_method() != "fork",
    reason="test graders registered in the test process reach workers only when they are forked",
)


@pytest.fixture(scope="module")
def problems() -> list[dict[str, str]]:
    if not MATH500.is_file():
        pytest.skip(f"benchmark data not found at {MATH500}")
    return load_problems(MATH500)


@pytest.fixture(scope="module")
def grader() -> MathVerifyGrader:
    return MathVerifyGrader()


def tasks_of(items: Sequence[CorpusItem]) -> list[GradeTask]:
    return [GradeTask((item.problem_id, item.sample_idx), item.completion, item.gold, item.truncated) for item in items]


def task(completion: str, gold: str, truncated: bool = False, key: Any = None) -> GradeTask:
    return GradeTask(key if key is not None else (completion, gold, truncated), completion, gold, truncated)


def boxed(answer: str) -> str:
    return f"Some reasoning with $x = 2$.\n\nThe final answer is $\\boxed{{{answer}}}$."


# --- the reference: math-verify's own candidate order (extract_target_from_pred) --------


def reference_candidates(text: str, configs: Sequence[Any]) -> tuple[int, list[Any]] | None:
    """What ``extract_target_from_pred`` tries, in order, up to the first group with a match."""
    from math_verify.parser import get_extraction_regexes

    patterns = [(p, t, pr) for ps, t in get_extraction_regexes(configs) for p, pr in ps]
    for priority, group in itertools.groupby(sorted(patterns, key=lambda x: x[2]), key=lambda x: x[2]):
        found = [(m, m.start(), m.end()) for p, _, _ in group for m in p.finditer(text)]
        if found:
            found = sorted(found, key=lambda x: (x[2], -x[1]), reverse=True)
            return priority, [(m.re.pattern, m.span(), m.groupdict()) for m, _, _ in found]
    return None


def scanned_candidates(grader: MathVerifyGrader, text: str) -> tuple[int, list[Any]] | None:
    found = mv._Scanner(grader._pred_config).scan(text)
    if found is None:
        return None
    priority, matches = found
    return priority, [(m.re.pattern, m.span(), m.groupdict()) for m, _ in matches]


def fast_outcome(grader: MathVerifyGrader, completion: str, gold: str, truncated: bool) -> GradeOutcome:
    """The engine's path for one sample, in-process: prepare, decide, plain call if undecided."""
    prepared = grader.prepare(completion)
    assert prepared is not None
    decision = grader.decide(prepared.head, gold, [prepared.tail])
    outcome = decision.outcome if decision.outcome is not None else decision.per_tail[0]
    if outcome is None:
        return grader.grade(completion=completion, gold=gold, truncated=truncated)
    if outcome.verdict == "no_answer" and truncated:
        return GradeOutcome("truncated", outcome.extracted, outcome.error)
    return outcome


# --- random LaTeX-like text --------------------------------------------------------------

TOKENS = [
    "$", "$$", "\\[", "\\]", "\\(", "\\)", " [", "] ", "{", "}", "\\boxed{", "\\boxed{5}", "\\boxed{\\frac{1}{2}}",
    "\\frac{1}{2}", "\\frac{3}{4}", "answer", "Answer: ", "ANSWER", "final answer is ", "The final answer is ",
    " I hope", ". I hope it is correct.", "\n", "\n\n", " ", "and ", ", ", " or ", "%", "\\%", " percent", "3", "12",
    "-4", "0.5", "1,000", "x", "=", " = ", "+", "^2", "\\text{A}", "\\\\", "\\$", ".", ":", "**", "(1, 2)",
    "\\sqrt{2}", "\\pi", "ſ", "٣",
]  # fmt: skip
latex_like = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)
GOLDS = ["5", "\\frac{1}{2}", "12", "x", "0.5", "1000", "\\text{(A)}", "(1,2)", "50\\%"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=latex_like)
def test_scan_finds_what_math_verify_would_try(text: str) -> None:
    grader = MathVerifyGrader()
    assert scanned_candidates(grader, text) == reference_candidates(text, grader._pred_config)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=latex_like, gold=st.sampled_from(GOLDS), truncated=st.booleans())
def test_fast_path_outcome_equals_the_plain_call(text: str, gold: str, truncated: bool) -> None:
    grader = MathVerifyGrader()
    assert fast_outcome(grader, text, gold, truncated) == grader.grade(completion=text, gold=gold, truncated=truncated)


@pytest.mark.parametrize(
    "text",
    [
        "$$a = 1$$ then\n\n$$b = \\boxed{2}$$ and $\\boxed{3}$",
        "\\[ a \\] \\[ b\n\\boxed{2} \\]\n$\\boxed{4}$",
        "\\[ unclosed \\boxed{1} and later \\] \\[ \\boxed{2} \\]",
        "$x$ $y$ $$z$$$\\boxed{1}$ $$ \\boxed{2}$$",
        "line one \\( \\boxed{7} \\)\n [\\boxed{8}] \n",
        "\\boxed{1}" * 3 + "$\\boxed{2}$, $\\boxed{3}$ and $\\boxed{4}$",
        "no box at all: $1$ and 2",
        "Final Answer: The final answer is $5$. I hope it is correct.",
        "The answer: 42 and the answer is $\\frac{1}{2}$",
    ],
)
def test_scan_on_delimiter_corner_cases(grader: MathVerifyGrader, text: str) -> None:
    assert scanned_candidates(grader, text) == reference_candidates(text, grader._pred_config)


def test_scan_on_a_corpus(grader: MathVerifyGrader, problems: list[dict[str, str]]) -> None:
    items = build_corpus(problems[:40], samples=4, seed=11, hostile=True)
    for item in items:
        assert scanned_candidates(grader, item.completion) == reference_candidates(
            item.completion, grader._pred_config
        ), item.kind


# --- plain integers: decided without parsing ---------------------------------------------

ANSWER_STYLES = [
    "Some reasoning with $x = 2$.\n\nThe final answer is $\\boxed{%s}$.",
    "So the answer is %s",
    "Answer: %s.",
    "We get $y = 3$ and then %s",
    "Thus:\n\\[\n\\boxed{%s}\n\\]",
    "Final Answer: The final answer is $%s$. I hope it is correct.",
    "The total is %s%% of it",
    "The answer is 1,%s",
    "$\\boxed{%s}$ and $\\boxed{4}$",
]
integer_literals = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.tuples(st.sampled_from(["", "-"]), st.text("0", max_size=3), st.integers(0, 10**30)).map(
        lambda t: f"{t[0]}{t[1]}{t[2]}"
    ),
    st.integers(mv.MAX_INT_CHARS - 2, mv.MAX_INT_CHARS + 2).map(lambda n: "9" * n),
)


def check_shortcut(grader: MathVerifyGrader, completion: str, gold: str) -> GradeOutcome | None:
    """The shortcut's outcome, asserted equal (verdict, extracted, error) to the plain call's."""
    prepared = grader.prepare(completion)
    assert prepared is not None
    quick = grader.shortcut(prepared.head, gold)
    if quick is not None:
        assert quick == grader.grade(completion=completion, gold=gold, truncated=False)
    return quick


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answer=integer_literals, gold=integer_literals, same=st.booleans(), style=st.sampled_from(ANSWER_STYLES))
def test_integer_shortcut_equals_the_plain_call(answer: str, gold: str, same: bool, style: str) -> None:
    grader = MathVerifyGrader()
    check_shortcut(grader, style % answer, answer if same else gold)


@pytest.mark.parametrize(
    ("completion", "gold", "expected"),
    [
        (boxed("070"), "70", GradeOutcome("correct", "070")),  # AIME gold with a leading zero
        (boxed("70"), "070", GradeOutcome("correct", "70")),
        (boxed("-5"), "-5", GradeOutcome("correct", "-5")),
        (boxed("-0"), "0", GradeOutcome("correct", "-0")),
        (boxed("5"), "-5", GradeOutcome("incorrect", "5")),
        ("So the answer is 007", "7", GradeOutcome("correct", "7")),  # plain number: zeros stripped
        (boxed("9" * 1000), "9" * 1000, GradeOutcome("correct", "9" * 1000)),
        (boxed("1" + "0" * 999), "1" + "0" * 998 + "1", GradeOutcome("incorrect", "1" + "0" * 999)),
        (boxed("12"), "  12 ", GradeOutcome("correct", "12")),  # the gold answer is stripped
    ],
)
def test_integer_shortcut_cases(grader: MathVerifyGrader, completion: str, gold: str, expected: GradeOutcome) -> None:
    assert check_shortcut(grader, completion, gold) == expected


@pytest.mark.parametrize(
    ("completion", "gold"),
    [
        (boxed("5"), "$5$"),  # a delimited gold answer: parsed as usual
        (boxed("5"), "5.0"),
        (boxed("5.0"), "5"),
        (boxed("1,000"), "1000"),
        (boxed("5\\%"), "5"),
        ("The total is 50% of it", "50"),
        (boxed("\\frac{4}{2}"), "2"),
        ("The answer is \u0663\u0664.", "34"),  # Arabic-Indic digits are not [0-9]
        (boxed("3"), "\u0663"),
        (boxed("9" * 1001), "9" * 1001),  # past MAX_INT_CHARS: the parser decides
        ("So the answer is -01", "-1"),  # a plain number sympy cannot read: the plain call fails
        ("$\\boxed{2}$ and $\\boxed{4}$", "2"),  # two boxes joined into a set
    ],
)
def test_integer_shortcut_declines_everything_else(grader: MathVerifyGrader, completion: str, gold: str) -> None:
    assert check_shortcut(grader, completion, gold) is None
    assert fast_outcome(grader, completion, gold, False) == grader.grade(
        completion=completion, gold=gold, truncated=False
    )


def test_integer_answers_are_decided_in_the_parent() -> None:
    tasks = [task(boxed("070"), "70"), task(boxed("71"), "70"), task(boxed("\\frac{1}{2}"), "70")]
    with GradingEngine(workers=1) as engine:
        outcomes = engine.grade(tasks, grader_id="math_verify")
    assert outcomes == [
        GradeOutcome("correct", "070"),
        GradeOutcome("incorrect", "71"),
        GradeOutcome("incorrect", "\\frac{1}{2}"),
    ]
    assert (engine.stats.shortcut, engine.stats.keys) == (2, 1)


# --- the engine against the plain loop ---------------------------------------------------


def same(fast: GradeOutcome, plain: GradeOutcome) -> bool:
    """Identical outcomes; two timeouts are the same whatever their messages say (the engine
    runs a step that timed out again alone with longer limits, so its message names those)."""
    return fast == plain or fast.verdict == plain.verdict == "timeout"


def test_engine_equals_the_plain_math_verify_loop_on_a_corpus(
    grader: MathVerifyGrader, problems: list[dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Long realistic responses (8 per problem) plus hostile ones: every outcome identical."""
    monkeypatch.setattr(engine_module, "RETRY_FACTOR", 1.2)  # hostile answers time out twice: keep it short
    items = build_corpus(problems[:24], samples=8, seed=5, hostile=True)
    assert len(items) > 200
    # A generous hard limit: this test is about outcomes, so math-verify's own 5 s alarms
    # (identical in both paths) must fire first even on a busy machine.
    with GradingEngine(workers=2, timeout=60) as engine:
        fast = engine.grade(tasks_of(items), grader_id="math_verify")
    plain = [grader.grade(completion=i.completion, gold=i.gold, truncated=i.truncated) for i in items]
    differences = [(i.kind, f, p) for i, f, p in zip(items, fast, plain, strict=True) if not same(f, p)]
    # math-verify's alarms are wall-clock: on a heavily loaded machine a 0.2 s comparison can
    # take over 2 s in one path and not the other. A difference where one side is a timeout is
    # graded again, both ways; a real difference stays.
    timing = [
        n for n, (f, p) in enumerate(zip(fast, plain, strict=True)) if f != p and "timeout" in (f.verdict, p.verdict)
    ]
    if timing and len(timing) == len(differences):
        again = [items[n] for n in timing]
        with GradingEngine(workers=2, timeout=60) as retry:
            fast_again = retry.grade(tasks_of(again), grader_id="math_verify")
        plain_again = [grader.grade(completion=i.completion, gold=i.gold, truncated=i.truncated) for i in again]
        differences = [(i.kind, f, p) for i, f, p in zip(again, fast_again, plain_again, strict=True) if not same(f, p)]
    assert not differences
    verdicts = {o.verdict for o in plain}
    assert {"correct", "incorrect", "no_answer", "truncated", "timeout"} <= verdicts
    by_kind = {i.kind: o for i, o in zip(items, fast, strict=True)}
    assert by_kind["hostile:tower"].verdict == "timeout"  # sympy stopped by math-verify's own alarm
    assert by_kind["hostile:nested-braces"].verdict == "timeout"
    # Answers repeat: far fewer judgements than samples; integer answers need none.
    stats = engine.stats
    assert stats.samples == len(items)
    assert stats.keys + stats.tail_keys + stats.full < len(items) // 2
    assert stats.shortcut > len(items) // 4


@pytest.mark.parametrize("grader_id", [g for g in GRADERS if g != "math_verify"])
def test_engine_equals_the_plain_loop_for_two_step_graders(grader_id: str, problems: list[dict[str, str]]) -> None:
    items = build_corpus(problems[:8], samples=8, seed=2)
    instance = get_grader(grader_id)
    with GradingEngine(workers=2) as engine:
        fast = engine.grade(tasks_of(items), grader_id=grader_id)
    plain = [instance.grade(completion=i.completion, gold=i.gold, truncated=i.truncated) for i in items]
    assert fast == plain
    assert engine.stats.keys < len(items)


def test_truncation_only_changes_the_verdict_of_a_completion_with_no_answer() -> None:
    prose = "I do not know how to do this; let me think about it differently."
    tasks = [task(prose, "5", truncated=True), task(prose, "5", truncated=False), task(boxed("5"), "5", truncated=True)]
    with GradingEngine(workers=1) as engine:
        outcomes = engine.grade(tasks, grader_id="math_verify")
    assert [o.verdict for o in outcomes] == ["truncated", "no_answer", "correct"]
    assert engine.stats.completions == 2  # the identical completion was prepared once


def test_repeated_answers_are_judged_once_and_the_cache_outlives_a_call() -> None:
    tasks = [
        task(f"Attempt {i}: we get $y = {i}$.\n\nSo the answer is $\\boxed{{{answer}}}$.", gold, key=i)
        for i, (answer, gold) in enumerate(
            [("x+7", "x+7"), ("x+7", "x+7"), ("x+8", "x+7"), ("x+7", "x+7"), ("x+7", "x+9"), ("x+8", "x+7")]
        )
    ]  # not plain integers, which need no judging at all
    with GradingEngine(workers=2) as engine:
        first = engine.grade(tasks, grader_id="math_verify")
        assert [o.verdict for o in first] == ["correct", "correct", "incorrect", "correct", "incorrect", "incorrect"]
        assert (engine.stats.completions, engine.stats.keys) == (6, 3)  # (x+7, x+7), (x+8, x+7), (x+7, x+9)
        again = engine.grade(tasks, grader_id="math_verify")
    assert again == first
    assert engine.stats.keys == 3  # nothing judged twice


def test_unknown_grader_and_bad_settings() -> None:
    with pytest.raises(UnknownNameError, match="valid graders"):
        GradingEngine().grade([task("x", "1")], grader_id="nope")
    with pytest.raises(ValueError, match="timeout"):
        GradingEngine(timeout=0)
    with pytest.raises(ValueError, match="workers"):
        GradingEngine(workers=0)
    assert GradingEngine().grade([], grader_id="math_verify") == []


# --- failures ----------------------------------------------------------------------------


class TwoStepForTest:
    """Test-only grader with the extract/judge contract.

    extract: the text after ``ANSWER:``; ``die`` kills the worker, ``raise`` raises.
    judge: sleeps far past any limit on ``slow``; else correct iff equal to the gold.
    """

    grader_id = "two_step_for_test"
    version = "0"

    def extract(self, completion: str) -> str | None:
        if completion == "die":
            os._exit(7)
        if completion == "raise":
            raise RuntimeError("cannot read")
        _, sep, answer = completion.partition("ANSWER:")
        return answer.strip() or None if sep else None

    def judge(self, *, extracted: str, gold: str) -> GradeOutcome:
        if extracted == "slow":
            time.sleep(60)
        return GradeOutcome("correct" if extracted == gold else "incorrect", extracted)

    def grade(self, *, completion: str, gold: str, truncated: bool) -> GradeOutcome:
        try:
            extracted = self.extract(completion)
        except Exception as exc:
            return GradeOutcome("error", None, f"extracting failed: {exc}")
        if extracted is None:
            return GradeOutcome("truncated" if truncated else "no_answer", None)
        return self.judge(extracted=extracted, gold=gold)


@needs_fork
def test_a_stuck_key_times_out_once_for_every_sample_that_shares_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(GRADERS, TwoStepForTest.grader_id, TwoStepForTest)
    tasks = [
        task("first try ANSWER: slow", "1"),
        task("ANSWER: 1", "1"),
        task("second try ANSWER: slow", "1"),
        task("ANSWER: 2", "1"),
        task("third try ANSWER: slow", "1"),
        task("nothing here", "1", truncated=True),
    ]
    with GradingEngine(workers=2, timeout=0.5) as engine:
        outcomes = engine.grade(tasks, grader_id=TwoStepForTest.grader_id)
    assert [o.verdict for o in outcomes] == ["timeout", "correct", "timeout", "incorrect", "timeout", "truncated"]
    assert outcomes[0] == outcomes[2] == outcomes[4]
    # run again alone, once, with four times the limit, before it is recorded as a timeout
    assert outcomes[0].error == "grading took over 2 s (worker killed), run alone after taking over 0.5 s"
    assert engine.stats.timed_out == 2  # the stuck key ran twice (the retry alone), not six times
    assert engine.stats.retried == 1 and engine.stats.retry_timeouts == 1
    assert all(engine.limit_for(t) == 2.0 for t in (tasks[0], tasks[2], tasks[4]))
    assert engine.limit_for(tasks[1]) == 0.5
    assert engine.stats.keys == 3  # slow, 1, 2 (nothing extracted needs no judge)


@needs_fork
def test_a_dying_or_raising_extraction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(GRADERS, TwoStepForTest.grader_id, TwoStepForTest)
    tasks = [task("ANSWER: 1", "1"), task("die", "1"), task("raise", "1"), task("ANSWER: 3", "1")]
    with GradingEngine(workers=1) as engine:
        outcomes = engine.grade(tasks, grader_id=TwoStepForTest.grader_id)
    assert outcomes[0].verdict == "correct" and outcomes[3].verdict == "incorrect"
    assert outcomes[1] == GradeOutcome("error", None, "grading worker died (exit code 7)")
    # An extraction that raises is graded by the plain call, which reports it its own way.
    assert outcomes[2] == GradeOutcome("error", None, "extracting failed: cannot read")
    assert engine.stats.full == 1


@needs_fork
def test_without_a_fast_path_every_sample_takes_the_plain_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mv, "FAST_PATH_VERSIONS", frozenset())  # as with an unknown math-verify version
    grader = MathVerifyGrader()
    assert grader.prepare(boxed("1")) is None
    tasks = [task(boxed("1"), "1"), task(boxed("2"), "1"), task(boxed("1"), "1", key="again")]
    with GradingEngine(workers=2) as engine:
        outcomes = engine.grade(tasks, grader_id="math_verify")
    assert outcomes == [grader.grade(completion=t.completion, gold=t.gold, truncated=t.truncated) for t in tasks]
    assert (engine.stats.keys, engine.stats.full) == (0, 2)  # identical samples share one call
