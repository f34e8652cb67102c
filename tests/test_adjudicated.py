"""Adjudicated disagreements (a store's disagreement patterns joined with the truth set's rates)
and gain verdicts under each grader, against hand-counted values."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from test_disagreement import PROBLEMS, _grades, _unit

from rlvr_audit.analysis.adjudicated import (
    STORE_PATTERN_COLUMNS,
    adjudicated_disagreements,
    gain_verdict,
    gain_verdicts,
    store_patterns,
)
from rlvr_audit.analysis.estimates import grader_version
from rlvr_audit.core.store import Store
from rlvr_audit.grading.adjudication import PATTERN_COLUMNS

ALL = {(p.problem_id, i) for p in PROBLEMS for i in range(2)}


def test_store_patterns_count_each_units_disagreements(tmp_path: Path) -> None:
    st = Store(tmp_path / "store")
    info = _unit(st)
    mv, bs = grader_version("math_verify"), grader_version("boxed_strict")
    assert mv is not None and bs is not None
    # math_verify accepts 6 of 8, boxed_strict 3 of those; judge (unregistered: any version) all 8
    st.append_grades(info.key, "math_verify", _grades(info, "math_verify", mv, ALL - {("p1", 1), ("p3", 0)}))
    st.append_grades(info.key, "boxed_strict", _grades(info, "boxed_strict", bs, {("p0", 0), ("p0", 1), ("p2", 0)}))
    st.append_grades(info.key, "judge", _grades(info, "judge", "p1:some-model", ALL))
    frame = store_patterns(st, [info], ["math_verify", "boxed_strict"])
    assert list(frame.columns) == STORE_PATTERN_COLUMNS
    assert frame[["pattern", "n_samples", "n_common"]].values.tolist() == [["math_verify | boxed_strict", 3, 8]]
    assert frame.loc[0, "checkpoint"] == "f/rl" and frame.loc[0, "unit_key"] == info.key
    three = store_patterns(st, [info], ["math_verify", "boxed_strict", "judge"])
    assert dict(zip(three["pattern"], three["n_samples"], strict=True)) == {
        "judge, math_verify | boxed_strict": 3,
        "judge | boxed_strict, math_verify": 2,
    }
    assert store_patterns(st, [info], ["math_verify", "paper"]).empty  # paper never graded it

    rates = pd.DataFrame(
        [
            ["math_verify | boxed_strict", "math_verify", 40, 36, 0.9, 0.77, 0.96, 0.95],
            ["math_verify | boxed_strict", "boxed_strict", 40, 4, 0.1, 0.04, 0.23, 0.95],
        ],
        columns=PATTERN_COLUMNS,
    )
    joined = adjudicated_disagreements(frame, rates)
    assert joined[["grader", "n_samples", "n_truth", "n_truth_right", "accuracy"]].values.tolist() == [
        ["math_verify", 3, 40, 36, 0.9],
        ["boxed_strict", 3, 40, 4, 0.1],
    ]
    unknown = adjudicated_disagreements(three, rates)  # patterns the truth set has no case of
    assert (unknown["n_truth"] == 0).all() and unknown["accuracy"].isna().all()


def test_gain_verdicts_say_when_the_grader_changes_the_conclusion() -> None:
    assert gain_verdict(0.01, 0.2) == "gain" and gain_verdict(-0.3, -0.1) == "loss"
    assert gain_verdict(-0.01, 0.2) == "no detectable change" and gain_verdict(float("nan"), 1) == "not computed"
    key = {"checkpoint": "q/rl", "base": "q/base", "task": "math500", "prompt": "t", "metric": "avg@1"}
    other = {**key, "checkpoint": "q/rl2"}
    comparisons = pd.DataFrame(
        [
            {**key, "grader": "math_verify", "delta": 0.042, "ci_low": 0.01, "ci_high": 0.07},
            {**key, "grader": "consensus", "delta": 0.010, "ci_low": -0.02, "ci_high": 0.04},
            {**other, "grader": "math_verify", "delta": 0.10, "ci_low": 0.05, "ci_high": 0.15},
            {**other, "grader": "consensus", "delta": 0.09, "ci_low": 0.04, "ci_high": 0.14},
        ]
    )
    table = gain_verdicts(comparisons).set_index("checkpoint")
    assert table.loc["q/rl", "changes"] and not table.loc["q/rl2", "changes"]
    assert table.loc["q/rl", "verdicts"] == {"math_verify": "gain", "consensus": "no detectable change"}
    assert table.loc["q/rl", "summary"] == "+4.2 (gain) under math_verify; +1.0 (no detectable change) under consensus"
    only = gain_verdicts(comparisons, graders=["consensus"])
    assert not only["changes"].any() and only["graders"].tolist() == [["consensus"], ["consensus"]]
    with pytest.raises(ValueError, match="missing columns: ci_high"):
        gain_verdicts(comparisons.drop(columns=["ci_high"]))


def test_truth_rates_grade_a_truth_file(tmp_path: Path) -> None:
    from rlvr_audit.analysis.adjudicated import truth_rates
    from rlvr_audit.grading.truth import DEFAULT_TRUTH_SET

    lines = DEFAULT_TRUTH_SET.read_text(encoding="utf-8").splitlines()
    header, cases = json.loads(lines[0]), [json.loads(x) for x in lines[1:]]
    picked = [c for c in cases if c["split"] == "tune"][:4] + [c for c in cases if c["split"] == "held_out"][:2]
    header.update(n_cases=len(picked), n_held_out=2, second_pass=[])
    small = tmp_path / "truth.jsonl"
    small.write_text("\n".join(json.dumps(x) for x in [header, *picked]) + "\n", encoding="utf-8")
    rates = truth_rates(["math_verify", "boxed_strict"], truth_path=small, workers=1, timeout=30)
    assert len(rates.graded) == 12
    overall = rates.accuracy[rates.accuracy["category"] == "all"].set_index(["split", "grader"])
    assert overall.loc[("all", "math_verify"), "n"] == 6 and overall.loc[("held_out", "boxed_strict"), "n"] == 2
    right = rates.graded.groupby("grader")["right"].sum()
    assert overall.loc[("all", "math_verify"), "n_right"] == right["math_verify"]
    assert set(rates.patterns["grader"]) <= {"math_verify", "boxed_strict"}
