"""The minerva grader: the case table, reuse of lm-eval's code, the equivalence, timeouts."""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from rlvr_audit.core.errors import AuditError
from rlvr_audit.core.records import VERDICTS
from rlvr_audit.grading import GRADERS, GradeOutcome, get_grader
from rlvr_audit.grading import minerva as minerva_module
from rlvr_audit.grading.minerva import INVALID_ANSWER, MinervaGrader, load_lm_eval_minerva, sympy_equivalent

HERE = Path(__file__).resolve().parent
CASES: list[dict[str, Any]] = json.loads((HERE / "minerva_cases.json").read_text(encoding="utf-8"))


def _lm_eval_utils() -> Path:
    """The installed lm-eval's minerva_math/utils.py."""
    spec = importlib.util.find_spec("lm_eval")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent / "tasks" / "minerva_math" / "utils.py"


LM_EVAL_UTILS = _lm_eval_utils()


@pytest.fixture(scope="module")
def grader() -> MinervaGrader:
    return MinervaGrader()


def test_case_table_is_well_formed() -> None:
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    for case in CASES:
        assert set(case) == {"id", "completion", "gold", "truncated", "verdict", "note"}, case["id"]
        assert case["verdict"] in VERDICTS, case["id"]
    assert {"correct", "incorrect", "no_answer", "truncated", "error"} <= {case["verdict"] for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_case_table(grader: MinervaGrader, case: dict[str, Any]) -> None:
    outcome = grader.grade(completion=case["completion"], gold=case["gold"], truncated=case["truncated"])
    assert outcome.verdict == case["verdict"], (outcome, case["note"])
    if outcome.verdict in ("correct", "incorrect"):
        assert outcome.extracted and outcome.error is None
    elif outcome.verdict in ("no_answer", "truncated"):
        assert outcome.extracted is None and outcome.error is None
    else:
        assert outcome.error


# --- lm-eval's code, reused -----------------------------------------------------------


def test_functions_are_lm_evals_own() -> None:
    lm = load_lm_eval_minerva()
    assert lm.source == LM_EVAL_UTILS
    for function in (lm.last_boxed_only_string, lm.remove_boxed, lm.get_unnormalized_answer, lm.normalize_final_answer):
        assert Path(function.__code__.co_filename) == LM_EVAL_UTILS  # compiled from lm-eval's file, not copied
    assert len(lm.source_hash) == 12 and int(lm.source_hash, 16) >= 0
    assert lm.get_unnormalized_answer("no sentence here") == INVALID_ANSWER


@pytest.fixture()
def fake_lm_eval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A stand-in lm_eval package whose minerva_math/utils.py each test writes."""
    package = tmp_path / "lm_eval"
    (package / "tasks" / "minerva_math").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "lm_eval":
            return importlib.util.spec_from_file_location("lm_eval", package / "__init__.py")
        return real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    load_lm_eval_minerva.cache_clear()
    yield package / "tasks" / "minerva_math" / "utils.py"
    load_lm_eval_minerva.cache_clear()


def test_a_missing_function_is_a_clear_error(fake_lm_eval: Path) -> None:
    source = LM_EVAL_UTILS.read_text(encoding="utf-8")
    fake_lm_eval.write_text(source.replace("def remove_boxed(", "def unbox("), encoding="utf-8")
    with pytest.raises(AuditError, match=r"no longer defines remove_boxed; the minerva grader reuses"):
        load_lm_eval_minerva()


def test_changed_behaviour_is_a_clear_error(fake_lm_eval: Path) -> None:
    source = LM_EVAL_UTILS.read_text(encoding="utf-8")
    fake_lm_eval.write_text(source.replace("def normalize_final_answer(", "def _old(") + _REVERSING, encoding="utf-8")
    with pytest.raises(AuditError, match="changed"):
        load_lm_eval_minerva()


_REVERSING = """

def normalize_final_answer(final_answer: str) -> str:
    return final_answer[::-1]
"""


def test_a_broken_file_is_a_clear_error(fake_lm_eval: Path) -> None:
    fake_lm_eval.write_text("def last_boxed_only_string(:\n", encoding="utf-8")
    with pytest.raises(AuditError, match="cannot read lm-eval"):
        load_lm_eval_minerva()


# --- extraction and equivalence --------------------------------------------------------


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("Final Answer: The final answer is $5$. I hope it is correct.", "5"),
        # lm-eval appends "I hope it is correct." to the text, but its pattern also needs ". " before it:
        ("Final Answer: The final answer is 5", None),
        ("Final Answer: The final answer is 5. ", "5"),
        (
            "Final Answer: The final answer is $1$. I hope it is correct.\n"
            "Final Answer: The final answer is $2$. I hope it is correct.",
            "1",
        ),  # the first sentence
        ("final answer: the final answer is $5$. I hope it is correct.", None),  # case-sensitive, no box
        ("so \\boxed{3} and \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("so \\boxed 7$ and", "7"),  # lm-eval's "\boxed " form
        ("\\fbox{\\frac12}", "\\frac{1}{2}"),
        ("\\boxedx{5}", None),  # found by lm-eval, but not a box it can read
        ("\\boxed{5", None),  # never closed
        ("\\boxed{\\text{ cm}}", None),  # a unit and nothing else
        ("\\boxed{x = 2\\text{ feet}}", "2"),
    ],
)
def test_extract(grader: MinervaGrader, completion: str, expected: str | None) -> None:
    assert grader.extract(completion) == expected


def test_sympy_equivalent() -> None:
    assert sympy_equivalent("0.5", "\\frac{1}{2}")
    assert sympy_equivalent("\\frac{1}{\\sqrt{3}}", "\\frac{\\sqrt{3}}{3}")
    assert sympy_equivalent("2x+2", "2(x+1)")
    assert not sympy_equivalent("2x+2", "2(x+2)")
    assert not sympy_equivalent("\\frac{", "1")  # does not parse: not equivalent, as in lm-eval


def test_own_timeout_gives_timeout_in_process() -> None:
    grader = MinervaGrader(timeout=0.5)
    outcome = grader.grade(completion="$\\boxed{10^{10^{10^{10}}}}$", gold="5", truncated=False)
    assert outcome == GradeOutcome("timeout", "10^{10^{10^{10}}}", "comparing with the gold answer took over 0.5 s")


def test_off_the_main_thread_only_the_sympy_step_is_refused(grader: MinervaGrader) -> None:
    outcomes: list[GradeOutcome] = []

    def work() -> None:
        outcomes.append(grader.grade(completion="\\boxed{5}", gold="5", truncated=False))
        outcomes.append(grader.grade(completion="\\boxed{0.5}", gold="\\frac12", truncated=False))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert outcomes[0] == GradeOutcome("correct", "5")
    assert outcomes[1].verdict == "error" and outcomes[1].error is not None and "main thread" in outcomes[1].error


def test_grade_is_extract_then_judge(grader: MinervaGrader) -> None:
    for case in CASES:
        extracted = grader.extract(case["completion"])
        outcome = grader.grade(completion=case["completion"], gold=case["gold"], truncated=case["truncated"])
        if extracted is None:
            assert outcome.verdict in ("no_answer", "truncated"), case["id"]
        else:
            assert outcome == grader.judge(extracted=extracted, gold=case["gold"]), case["id"]


def test_version_and_registry(grader: MinervaGrader) -> None:
    assert GRADERS["minerva"] is MinervaGrader and isinstance(get_grader("minerva"), MinervaGrader)
    assert grader.version == (
        f"1+lm-eval=={metadata.version('lm_eval')}+minerva_math-{load_lm_eval_minerva().source_hash}"
        f"+latex2sympy2_extended=={metadata.version('latex2sympy2_extended')}+sympy=={metadata.version('sympy')}"
        f"+antlr4-python3-runtime=={metadata.version('antlr4-python3-runtime')}"
    )
    with pytest.raises(ValueError, match="positive"):
        MinervaGrader(timeout=-1)
    assert minerva_module.IMPLEMENTATION_VERSION == "1"
