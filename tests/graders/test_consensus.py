"""The ``consensus`` grader: its rule, its version, its place among the graders, and its
accuracy on the truth set's held-out split against every single grader."""

from __future__ import annotations

import pytest

from rlvr_audit.grading import GRADERS, GradeOutcome, get_grader
from rlvr_audit.grading.adjudication import compare_on_split, grade_truth_cases
from rlvr_audit.grading.consensus import IMPLEMENTATION_VERSION, MEMBERS, ConsensusGrader, consensus_outcome, finished
from rlvr_audit.grading.engine import grade_many
from rlvr_audit.grading.pool import GradeTask
from rlvr_audit.grading.truth import DEFAULT_TRUTH_SET, load_truth_set

OK = GradeOutcome("correct", "5")
WRONG = GradeOutcome("incorrect", "7")
NONE = GradeOutcome("no_answer", None)


def outcomes(mv: GradeOutcome, paper: GradeOutcome, box: str | None) -> dict[str, GradeOutcome]:
    boxed = GradeOutcome("correct", box) if box is not None else NONE
    return {"math_verify": mv, "paper": paper, "boxed_strict": boxed}


FINISHED = "So the answer is 5."
CUT = "so the answer might be 5, but let me check the case n ="


@pytest.mark.parametrize(
    ("mv", "paper", "box", "text", "verdict", "extracted"),
    [
        # a final box: math_verify decides, whatever paper says and however the text ends
        (OK, WRONG, "5", FINISHED, "correct", "5"),
        (WRONG, OK, "7", FINISHED, "incorrect", "7"),
        (OK, WRONG, "5", CUT, "correct", "5"),
        # no box, finished: either reader's 'correct' counts, math_verify first
        (OK, WRONG, None, FINISHED, "correct", "5"),
        (WRONG, OK, None, FINISHED, "correct", "5"),
        (NONE, WRONG, None, FINISHED, "no_answer", None),
        # no box, stopped mid-sentence: no answer was committed to
        (OK, OK, None, CUT, "incorrect", "5"),
        (WRONG, OK, None, CUT, "incorrect", "7"),
        (NONE, NONE, None, CUT, "no_answer", None),
    ],
)
def test_the_rule(
    mv: GradeOutcome, paper: GradeOutcome, box: str | None, text: str, verdict: str, extracted: str | None
) -> None:
    out = consensus_outcome(outcomes(mv, paper, box), completion=text)
    assert (out.verdict, out.extracted, out.error) == (verdict, extracted, None)


def test_the_truncated_flag_only_names_a_missing_answer() -> None:
    grader = ConsensusGrader()
    cut = "Let me compute 2 + 2 and then"
    assert grader.grade(completion=cut, gold="4", truncated=True) == grader.grade(
        completion=cut, gold="4", truncated=False
    )
    assert grader.grade(completion="no digits at all", gold="4", truncated=True).verdict == "truncated"


def test_a_member_missing_is_an_error_not_a_guess() -> None:
    with pytest.raises(ValueError, match="missing: boxed_strict"):
        consensus_outcome({"math_verify": OK, "paper": OK}, completion=FINISHED)


@pytest.mark.parametrize(
    ("text", "done"),
    [
        ("Thus the answer is 5.", True),
        ("The answer is **194**", True),
        ("\\[ \\boxed{5} \\]", True),
        ("$$x = 5$$", True),
        ("is it? Yes!", True),
        ("print(x)\n```", True),
        ("Therefore, the value is:", False),
        ("Let me try x = 3 and", False),
        ("so 2 + 2 = 4\n\n", False),
        ("", False),
    ],
)
def test_finished(text: str, done: bool) -> None:
    assert finished(text) is done


def test_registered_and_versioned_with_its_members() -> None:
    assert "consensus" in GRADERS
    grader = get_grader("consensus")
    assert isinstance(grader, ConsensusGrader) and grader.grader_id == "consensus"
    assert grader.version.startswith(f"{IMPLEMENTATION_VERSION}(")
    for member in MEMBERS:  # a new version of any member is a new consensus version
        assert f"{member}={get_grader(member).version}" in grader.version


def test_it_runs_in_the_worker_processes_with_the_plain_calls_outcome() -> None:
    tasks = [
        GradeTask(key=(0,), completion="We get $\\boxed{\\frac{1}{2}}$.", gold="0.5", truncated=False),
        GradeTask(
            key=(1,),
            completion="Facing north, 2250 - 6*360 = 90 degrees, so the final answer is east.",
            gold="\\text{east}",
            truncated=False,
        ),
        GradeTask(
            key=(2,),
            completion="Hence 16 + 112i, and the modulus is 16 sqrt(5). But earlier I got 16, so",
            gold="16",
            truncated=False,
        ),
    ]
    got = grade_many(tasks, grader_id="consensus", workers=2, timeout=30)
    assert [o.verdict for o in got] == ["correct", "correct", "incorrect"]
    plain = ConsensusGrader()
    assert got == [plain.grade(completion=t.completion, gold=t.gold, truncated=t.truncated) for t in tasks]


def test_it_beats_every_single_grader_on_the_held_out_split() -> None:
    # The bar: consensus, chosen on the tune split, beats each grader on the 100 held-out
    # cases (timeouts, which depend on the machine's load, left out). Fails if a member or the
    # rule changes in a way that loses that.
    held_out = load_truth_set(DEFAULT_TRUTH_SET).split("held_out")
    graders = ["math_verify", "paper", "boxed_strict", "minerva", "consensus"]
    comparison = compare_on_split(grade_truth_cases(held_out, graders, workers=2, timeout=30))
    assert comparison.n >= 97, comparison.left_out
    assert comparison.beats_all("consensus"), comparison.right
