"""Scoring graders on the truth set: Wilson intervals, accuracy / false-accept / false-reject
tables and disagreement patterns, checked against hand-computed values."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy.stats import norm

from rlvr_audit.grading.adjudication import (
    CASE_COLUMNS,
    accuracy_table,
    compare_on_split,
    grade_truth_cases,
    pattern_accuracy,
    pattern_of,
    wilson_interval,
)
from rlvr_audit.grading.truth import TruthCase


def wilson_by_hand(k: int, n: int, level: float) -> tuple[float, float]:
    z = norm.ppf(0.5 + level / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize(
    ("k", "n", "level"), [(0, 10, 0.95), (10, 10, 0.95), (7, 20, 0.95), (95, 100, 0.9), (1, 3, 0.99)]
)
def test_wilson_interval_is_the_textbook_formula(k: int, n: int, level: float) -> None:
    assert wilson_interval(k, n, level=level) == pytest.approx(wilson_by_hand(k, n, level), abs=1e-9)


def test_wilson_interval_edge_cases() -> None:
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)  # the classic 0/10 bound
    assert all(math.isnan(x) for x in wilson_interval(0, 0))
    with pytest.raises(ValueError, match="level"):
        wilson_interval(1, 2, level=1.0)


def rows(spec: list[tuple[str, str, str, str, bool]]) -> pd.DataFrame:
    """(case, split, category, truth, accepted) for one grader 'g'."""
    out = []
    for case, split, category, truth, accepted in spec:
        out.append(
            {
                "case_id": case,
                "split": split,
                "category": category,
                "truth": truth,
                "grader": "g",
                "verdict": "correct" if accepted else "incorrect",
                "extracted": None,
                "accepted": accepted,
                "right": accepted == (truth == "correct"),
            }
        )
    return pd.DataFrame(out, columns=CASE_COLUMNS)


def test_accuracy_false_accept_and_false_reject_by_hand() -> None:
    graded = rows(
        [
            ("a", "tune", "unit", "correct", True),
            ("b", "tune", "unit", "correct", False),  # false reject
            ("c", "tune", "wrong", "incorrect", True),  # false accept
            ("d", "tune", "wrong", "incorrect", False),
            ("e", "held_out", "unit", "correct", True),
            ("f", "held_out", "wrong", "incorrect", False),
        ]
    )
    table = accuracy_table(graded).set_index(["split", "category"])
    tune = table.loc[("tune", "all")]
    assert (tune["n"], tune["n_right"], tune["accuracy"]) == (4, 2, 0.5)
    assert (tune["false_accepts"], tune["n_truly_incorrect"], tune["false_accept_rate"]) == (1, 2, 0.5)
    assert (tune["false_rejects"], tune["n_truly_correct"], tune["false_reject_rate"]) == (1, 2, 0.5)
    assert (tune["accuracy_low"], tune["accuracy_high"]) == pytest.approx(wilson_by_hand(2, 4, 0.95))
    unit = table.loc[("tune", "unit")]
    assert unit["n_truly_incorrect"] == 0 and math.isnan(unit["false_accept_rate"])
    assert table.loc[("held_out", "all"), "accuracy"] == 1.0
    everything = table.loc[("all", "all")]
    assert (everything["n"], everything["n_right"]) == (6, 4)
    with pytest.raises(ValueError, match="missing columns"):
        accuracy_table(graded.drop(columns=["right"]))


def test_patterns_and_who_is_right_on_them() -> None:
    assert pattern_of({"a": True, "b": False, "c": True}) == "a, c | b"
    assert pattern_of({"a": True, "b": True}) is None
    spec = {  # case -> (truth, {grader: accepted})
        "x1": ("correct", {"mv": True, "bs": False}),
        "x2": ("correct", {"mv": True, "bs": False}),
        "x3": ("incorrect", {"mv": True, "bs": False}),
        "y1": ("correct", {"mv": False, "bs": True}),
        "z1": ("correct", {"mv": True, "bs": True}),  # agreement: not a pattern
    }
    graded = pd.DataFrame(
        [
            {
                "case_id": c,
                "split": "tune",
                "category": "plain",
                "truth": truth,
                "grader": g,
                "verdict": "correct" if ok else "incorrect",
                "extracted": None,
                "accepted": ok,
                "right": ok == (truth == "correct"),
            }
            for c, (truth, acc) in spec.items()
            for g, ok in acc.items()
        ],
        columns=CASE_COLUMNS,
    )
    table = pattern_accuracy(graded, ["mv", "bs"]).set_index(["pattern", "grader"])
    assert table.loc[("mv | bs", "mv"), ["n", "n_right"]].tolist() == [3, 2]
    assert table.loc[("mv | bs", "bs"), ["n", "n_right"]].tolist() == [3, 1]
    assert table.loc[("bs | mv", "bs"), "accuracy"] == 1.0
    assert list(dict.fromkeys(table.index.get_level_values(0))) == ["mv | bs", "bs | mv"]  # most cases first


def case(id: str, split: str, response: str, gold: str, verdict: str) -> TruthCase:
    return TruthCase(
        id=id,
        split=split,  # type: ignore[arg-type]
        source="test",
        task="math500",
        problem_id=id,
        problem="p",
        gold=gold,
        response_tail=response,
        response_chars=len(response),
        truncated=False,
        verdict=verdict,  # type: ignore[arg-type]
        category="plain",
        reason="r",
        constructed=True,
    )


def test_grading_cases_in_worker_processes_and_comparing_a_split() -> None:
    cases = [
        case("boxed", "held_out", "So $\\boxed{4}$.", "4", "correct"),
        case("prose", "held_out", "The answer is 4.", "4", "correct"),
        case("wrong", "tune", "So $\\boxed{5}$.", "4", "incorrect"),
    ]
    graded = grade_truth_cases(cases, ["math_verify", "boxed_strict"], workers=1, timeout=30)
    assert list(graded.columns) == CASE_COLUMNS and len(graded) == 6
    by = graded.set_index(["case_id", "grader"])
    assert (
        by.loc[("prose", "boxed_strict"), "verdict"] == "no_answer" and not by.loc[("prose", "boxed_strict"), "right"]
    )
    assert by.loc[("prose", "math_verify"), "right"] and by.loc[("wrong", "math_verify"), "right"]
    held = compare_on_split(graded, split="held_out")
    assert (held.n, held.right, held.left_out) == (2, {"math_verify": 2, "boxed_strict": 1}, ())
    assert held.beats_all("math_verify") and not held.beats_all("boxed_strict")
    slow = graded.copy()
    slow.loc[(slow["case_id"] == "prose") & (slow["grader"] == "math_verify"), "verdict"] = "timeout"
    assert compare_on_split(slow, split="held_out").left_out == ("prose",)
    assert compare_on_split(slow, split="held_out").right == {"math_verify": 1, "boxed_strict": 1}
