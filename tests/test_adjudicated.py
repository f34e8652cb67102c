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


def _case(case_id: str, split: str, truth: str, accepted: dict[str, bool], timeout: str | None = None) -> list[dict]:
    return [
        {
            "case_id": case_id,
            "split": split,
            "category": "plain",
            "truth": truth,
            "grader": g,
            "verdict": "timeout" if g == timeout else ("correct" if ok else "incorrect"),
            "extracted": None,
            "accepted": ok,
            "right": ok == (truth == "correct"),
        }
        for g, ok in accepted.items()
    ]


def test_split_rates_count_cases_disagreements_and_patterns_by_hand() -> None:
    from rlvr_audit.analysis.adjudicated import SPLIT_RATE_COLUMNS, split_rates

    rows = [
        *_case("a", "held_out", "correct", {"mv": True, "bs": True}),
        *_case("b", "held_out", "correct", {"mv": True, "bs": False}),  # mv right
        *_case("c", "held_out", "incorrect", {"mv": True, "bs": False}),  # bs right
        *_case("d", "held_out", "incorrect", {"mv": True, "bs": False}),  # bs right
        *_case("e", "held_out", "correct", {"mv": False, "bs": True}),  # bs right
        *_case("f", "held_out", "correct", {"mv": False, "bs": False}, timeout="bs"),  # left out
        *_case("g", "tune", "correct", {"mv": True, "bs": False}),  # another split
    ]
    rates = split_rates(pd.DataFrame(rows), ["mv", "bs"])
    assert list(rates.columns) == SPLIT_RATE_COLUMNS and (rates["split"] == "held_out").all()
    got = {
        (r.scope, r.pattern, r.grader): (r.n, r.n_right, r.false_accepts, r.false_rejects) for r in rates.itertuples()
    }
    assert got == {
        ("cases", "", "mv"): (5, 2, 2, 1),
        ("cases", "", "bs"): (5, 4, 0, 1),
        ("disagreements", "", "mv"): (4, 1, 2, 1),
        ("disagreements", "", "bs"): (4, 3, 0, 1),
        ("pattern", "mv | bs", "mv"): (3, 1, 2, 0),
        ("pattern", "mv | bs", "bs"): (3, 2, 0, 1),
        ("pattern", "bs | mv", "mv"): (1, 0, 0, 1),
        ("pattern", "bs | mv", "bs"): (1, 1, 0, 0),
    }
    assert rates.loc[0, "accuracy"] == pytest.approx(0.4) and rates.loc[0, "accuracy_low"] < 0.4
    # a split without disagreements: rows with zero counts and no rates
    calm = split_rates(pd.DataFrame(_case("a", "held_out", "correct", {"mv": True, "bs": True})), ["mv", "bs"])
    none = calm[calm["scope"] == "disagreements"]
    assert (
        none["n"].tolist() == [0, 0]
        and none["accuracy"].isna().all()
        and set(calm["scope"]) == {"cases", "disagreements"}
    )


def test_adjudication_blocks_cite_rates_patterns_and_unmeasured_graders() -> None:
    from rlvr_audit.analysis.adjudicated import Adjudication, add_adjudication, split_rates
    from rlvr_audit.core.section import Section
    from rlvr_audit.report.markdown import render_section

    rows = [
        *_case("b", "held_out", "correct", {"math_verify": True, "paper": False}),
        *_case("c", "held_out", "incorrect", {"math_verify": True, "paper": False}),
        *_case("d", "held_out", "correct", {"math_verify": True, "paper": True}),
    ]
    rates = split_rates(pd.DataFrame(rows), ["math_verify", "paper"])
    rates.loc[rates["pattern"] == "math_verify | paper", "n_store_samples"] = 7
    unknown = rates[rates["scope"] == "cases"].assign(
        scope="pattern", pattern="paper | math_verify", n=0, n_store_samples=2, accuracy=float("nan")
    )
    adj = Adjudication(
        split="held_out",
        graders=["math_verify", "paper"],
        unmeasured=["judge"],
        n_cases=3,
        left_out=("x",),
        rates=pd.concat([rates, unknown], ignore_index=True),
    )
    section = add_adjudication(Section("Grader disagreement"), adj)
    assert section.tables["grader_adjudication.csv"] is adj.rates
    md = render_section(section)
    assert "accuracy on the 3 held-out cases" in md and "the 2 of those cases" in md
    assert "1 cases on which a grader timed out are left out" in md
    assert "| `math_verify` | 66.7 [" in md and "| 50.0 (1/2) |" in md  # paper rejects 1 of 2 truly correct
    assert "`judge` not measured here" in md
    first, second = (line for line in md.splitlines() if line.startswith("- "))
    assert first.startswith("- 7 samples accepted by `math_verify` and rejected by `paper`: on adjudicated")
    assert "(2 held-out cases), `math_verify` is right in 50.0% [" in first
    assert second == "- 2 samples accepted by `paper` and rejected by `math_verify`: no held-out case of this kind."
    assert add_adjudication(Section("x"), None).blocks == []


def test_gains_by_grader_keep_seeds_apart_and_summarise_only_changes() -> None:
    from rlvr_audit.analysis.adjudicated import gains_by_grader_section, verdict_change_summary
    from rlvr_audit.core.section import Section
    from rlvr_audit.report.markdown import render_section

    key = {"checkpoint": "q/rl", "base": "q/base", "task": "math500", "prompt": "t", "metric": "avg@1"}
    rows = []
    for seed, (mv, cons) in enumerate(
        [((0.05, 0.01, 0.09), (0.04, 0.01, 0.07)), ((0.05, 0.01, 0.09), (0.0, -0.1, 0.1))]
    ):
        units = {"treatment_unit": f"rl{seed}", "baseline_unit": f"base{seed}"}
        rows.append({**key, **units, "grader": "math_verify", "delta": mv[0], "ci_low": mv[1], "ci_high": mv[2]})
        rows.append({**key, **units, "grader": "consensus", "delta": cons[0], "ci_low": cons[1], "ci_high": cons[2]})
    comparisons = pd.DataFrame(rows)
    table = gain_verdicts(comparisons)
    assert table["treatment_unit"].tolist() == ["rl0", "rl1"] and table["changes"].tolist() == [False, True]
    section = gains_by_grader_section(comparisons)
    assert section is not None
    csv = section.tables["gain_verdicts.csv"]
    assert len(csv) == 4 and csv.groupby("treatment_unit")["changes"].first().to_dict() == {"rl0": False, "rl1": True}
    md = render_section(section)
    assert "for 1 of 2 gains" in md and "| +0.0 [-10.0, +10.0] no detectable change | changes with the grader |" in md
    summary = verdict_change_summary(comparisons)
    assert summary is not None
    text = render_section(Section("s", [summary]))
    assert "The verdict on 1 of 2 gains changes with the grader" in text
    assert "+5.0 (gain) under math_verify; +0.0 (no detectable change) under consensus." in text
    steady = comparisons[comparisons["treatment_unit"] == "rl0"]
    assert verdict_change_summary(steady) is None and verdict_change_summary(steady.iloc[0:0]) is None
    assert gains_by_grader_section(steady[steady["grader"] == "consensus"]) is None  # one grader: nothing to compare


def test_adjudication_for_report_joins_the_stores_patterns_with_the_held_out_rates(tmp_path: Path) -> None:
    from rlvr_audit.analysis.adjudicated import SPLIT_RATE_COLUMNS, adjudication_for_report

    st = Store(tmp_path / "store")
    info = _unit(st)
    mv, bs = grader_version("math_verify"), grader_version("boxed_strict")
    assert mv is not None and bs is not None
    # boxed_strict accepts 3 samples math_verify rejects, and math_verify 1 that boxed_strict rejects
    st.append_grades(info.key, "math_verify", _grades(info, "math_verify", mv, {("p0", 0), ("p1", 0)}))
    st.append_grades(
        info.key, "boxed_strict", _grades(info, "boxed_strict", bs, {("p0", 0), ("p2", 0), ("p2", 1), ("p3", 1)})
    )
    assert adjudication_for_report(st, [info], ["math_verify", "judge"]) is None  # one rule-based grader
    adj = adjudication_for_report(st, [info], ["math_verify", "boxed_strict", "judge"], workers=2, timeout=30)
    assert adj is not None and adj.graders == ["math_verify", "boxed_strict"] and adj.unmeasured == ["judge"]
    assert adj.split == "held_out" and adj.n_cases == 100 - len(adj.left_out)
    rates = adj.rates
    assert list(rates.columns) == SPLIT_RATE_COLUMNS and (rates["split"] == "held_out").all()
    patterns = rates[rates["scope"] == "pattern"].groupby("pattern")
    store_counts = patterns["n_store_samples"].first().to_dict()
    assert store_counts["boxed_strict | math_verify"] == 3 and store_counts["math_verify | boxed_strict"] == 1
    n_truth = patterns["n"].first()
    assert n_truth["math_verify | boxed_strict"] > 0  # held-out cases boxed_strict rejects and math_verify accepts
    # every held-out case is counted once in "cases", the disagreements are the sum of the patterns
    cases = rates[rates["scope"] == "cases"].set_index("grader")
    assert cases.loc["math_verify", "n"] == adj.n_cases
    disagreements = rates[rates["scope"] == "disagreements"].set_index("grader")
    assert disagreements.loc["math_verify", "n"] == n_truth.sum()
    if n_truth["boxed_strict | math_verify"] == 0:  # a store pattern the split has no case of: no rates
        none = rates[rates["pattern"] == "boxed_strict | math_verify"]
        assert none["accuracy"].isna().all() and (none["n"] == 0).all()
