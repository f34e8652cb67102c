"""Grader disagreement: accuracies side by side, disagreement counts and examples."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlvr_audit.analysis.disagreement import disagreement_frame, disagreement_section, grader_disagreements
from rlvr_audit.analysis.estimates import grader_version
from rlvr_audit.core.records import CheckpointRef, Generation, Grade, Problem, SamplingProtocol, UnitSpec
from rlvr_audit.core.store import Store, UnitInfo
from rlvr_audit.report.markdown import render_section

PROBLEMS = [Problem(task="math500", problem_id=f"p{i}", question=f"q{i}", answer=str(i)) for i in range(4)]


def _unit(store: Store) -> UnitInfo:
    spec = UnitSpec(
        checkpoint=CheckpointRef(checkpoint_id="f/rl", model="org/m", revision="main"),
        task="math500",
        data_hash="d" * 16,
        template_id="qwen_math_default",
        template_hash="t" * 16,
        protocol=SamplingProtocol(n=2, temperature=0.6, max_new_tokens=64),
        backend="scripted",
    )
    info = UnitInfo(key=spec.key, spec=spec)
    store.ensure_unit(info)
    store.save_problems(spec.data_hash, PROBLEMS)
    store.append_generations(
        info.key,
        [
            Generation(
                unit_key=info.key,
                checkpoint_id="f/rl",
                task="math500",
                problem_id=p.problem_id,
                template_id="qwen_math_default",
                sample_idx=i,
                seed=0,
                prompt="p",
                prompt_hash="h",
                completion=f"work for {p.problem_id} sample {i} " + "x" * 500 + f" so \\boxed{{{p.answer}}}",
                finish_reason="stop",
                n_tokens=10,
                backend="scripted",
            )
            for p in PROBLEMS
            for i in range(2)
        ],
    )
    return info


def _grades(info: UnitInfo, grader_id: str, version: str, correct: set[tuple[str, int]]) -> list[Grade]:
    return [
        Grade(
            unit_key=info.key,
            problem_id=p.problem_id,
            sample_idx=i,
            grader_id=grader_id,
            grader_version=version,
            extracted=f"{grader_id}-{p.problem_id}-{i}",
            verdict="correct" if (p.problem_id, i) in correct else "incorrect",
        )
        for p in PROBLEMS
        for i in range(2)
    ]


@pytest.fixture
def store(tmp_path: Path) -> tuple[Store, UnitInfo]:
    st = Store(tmp_path / "store")
    return st, _unit(st)


def test_counts_accuracies_pairs_and_examples(store: tuple[Store, UnitInfo]) -> None:
    st, info = store
    version = grader_version("math_verify")
    assert version is not None
    all_keys = {(p.problem_id, i) for p in PROBLEMS for i in range(2)}
    # math_verify: 6 of 8 correct; "lenient" (unregistered id: every stored version counts): all 8.
    st.append_grades(info.key, "math_verify", _grades(info, "math_verify", version, all_keys - {("p1", 1), ("p3", 0)}))
    st.append_grades(info.key, "lenient", _grades(info, "lenient", "1", all_keys))
    # stale grades of an old math_verify version never enter
    st.append_grades(info.key, "math_verify", _grades(info, "math_verify", "0-old", set()))

    [d] = grader_disagreements(st, [info], ["math_verify", "lenient"], max_examples=5)
    assert d.graders == ["lenient", "math_verify"]
    assert d.n_common == 8
    assert d.accuracy == {"lenient": 1.0, "math_verify": 0.75}
    assert d.n_disagree == 2
    assert d.pairwise == {("lenient", "math_verify"): (2, 0)}
    # examples come in task order with both graders' extractions, the gold and the response tail
    assert [(e.problem_id, e.sample_idx) for e in d.examples] == [("p1", 1), ("p3", 0)]
    ex = d.examples[0]
    assert ex.gold == "1"
    assert ex.verdicts == {"lenient": "correct", "math_verify": "incorrect"}
    assert ex.extracted["math_verify"] == "math_verify-p1-1"
    assert ex.response_tail.startswith("…") and ex.response_tail.endswith("\\boxed{1}")

    md = render_section(disagreement_section([d]))
    assert "| f/rl | math500 | `qwen_math_default` | 100.0 | 75.0 | 8 | 2 (25.0%) |" in md
    assert "`lenient` only 2, `math_verify` only 0" in md
    assert "p3 #0" in md

    frame = disagreement_frame([d])
    assert list(frame["grader"]) == ["lenient", "math_verify"]
    assert list(frame["accuracy"]) == [1.0, 0.75]


def test_only_common_samples_and_single_grader_units(store: tuple[Store, UnitInfo]) -> None:
    st, info = store
    version = grader_version("math_verify")
    assert version is not None
    assert grader_disagreements(st, [info], ["math_verify", "lenient"]) == []  # nothing graded
    grades = _grades(info, "math_verify", version, {("p0", 0)})
    st.append_grades(info.key, "math_verify", grades)
    assert grader_disagreements(st, [info], ["math_verify", "lenient"]) == []  # one grader only
    st.append_grades(info.key, "lenient", _grades(info, "lenient", "1", set())[:3])  # p0#0, p0#1, p1#0
    [d] = grader_disagreements(st, [info], ["math_verify", "lenient"], max_examples=0)
    assert d.n_common == 3
    assert d.n_disagree == 1 and d.examples == []
    assert "one grader only" in render_section(disagreement_section([]))
