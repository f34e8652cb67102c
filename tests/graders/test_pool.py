"""grade_many and ChunkPool: worker processes, input order, per-item wall-clock limits, failures."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import pytest

from rlvr_audit.core.errors import UnknownNameError
from rlvr_audit.grading import GRADERS, GradeOutcome
from rlvr_audit.grading.engine import grade_many
from rlvr_audit.grading.math_verify import MathVerifyGrader
from rlvr_audit.grading.pool import ChunkPool, GradeTask, ItemFailure

BENCHMARKS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "benchmarks"

needs_fork = pytest.mark.skipif(
    multiprocessing.get_start_method() != "fork",
    reason="test graders registered in the test process reach workers only when they are forked",
)


def boxed(answer: str) -> str:
    """A completion that states ``answer`` as the final answer."""
    return f"The final answer is $\\boxed{{{answer}}}$."


def task(index: int, completion: str, gold: str, truncated: bool = False) -> GradeTask:
    return GradeTask(key=("unit", f"p{index}", 0), completion=completion, gold=gold, truncated=truncated)


class SlowGrader:
    """Test-only grader: sleeps far past any timeout on the completion ``slow``."""

    grader_id = "slow_for_test"
    version = "0"

    def grade(self, *, completion: str, gold: str, truncated: bool) -> GradeOutcome:
        if completion == "slow":
            time.sleep(60)
        return GradeOutcome("correct" if completion == gold else "incorrect", completion)


class MisbehavingGrader:
    """Test-only grader: kills its worker on ``die``, raises (against the protocol) on ``raise``."""

    grader_id = "misbehaving_for_test"
    version = "0"

    def grade(self, *, completion: str, gold: str, truncated: bool) -> GradeOutcome:
        if completion == "die":
            os._exit(3)
        if completion == "raise":
            raise RuntimeError("boom")
        return GradeOutcome("correct" if completion == gold else "incorrect", completion)


def test_results_come_back_in_input_order_and_match_in_process_grading() -> None:
    golds = [str(n) for n in range(40)]
    tasks = []
    for i, gold in enumerate(golds):
        kind = i % 4
        completion = {0: boxed(gold), 1: boxed(str(int(gold) + 1)), 2: "No idea.", 3: "Thinking about the"}[kind]
        tasks.append(task(i, completion, gold, truncated=kind == 3))
    seen: list[tuple[GradeTask, GradeOutcome]] = []
    outcomes = grade_many(tasks, grader_id="math_verify", workers=2, on_result=lambda t, o: seen.append((t, o)))

    grader = MathVerifyGrader()
    expected = [grader.grade(completion=t.completion, gold=t.gold, truncated=t.truncated) for t in tasks]
    assert outcomes == expected
    assert [o.verdict for o in outcomes[:4]] == ["correct", "incorrect", "no_answer", "truncated"]
    # on_result saw every task exactly once, each with its own outcome.
    assert sorted(t.key for t, _ in seen) == sorted(t.key for t in tasks)
    by_key = {t.key: o for t, o in seen}
    assert [by_key[t.key] for t in tasks] == outcomes


def test_every_benchmark_gold_through_the_pool() -> None:
    """All 643 gold answers, graded the way the grade stage does it; also a coarse speed check."""
    if not BENCHMARKS.is_dir():
        pytest.skip(f"benchmark data not found at {BENCHMARKS}")
    rows = []
    for path in sorted(BENCHMARKS.glob("*.jsonl")):
        with path.open(encoding="utf-8") as f:
            rows += [json.loads(line) for line in f if line.strip()]
    assert len(rows) == 643
    tasks = [task(i, boxed(row["answer"]), row["answer"]) for i, row in enumerate(rows)]
    start = time.monotonic()
    outcomes = grade_many(tasks, grader_id="math_verify", workers=2)
    elapsed = time.monotonic() - start
    wrong = [(row["id"], row["answer"], o) for row, o in zip(rows, outcomes, strict=True) if o.verdict != "correct"]
    assert not wrong
    assert elapsed < 60, f"grading 643 short answers took {elapsed:.1f} s"


def test_stuck_answer_times_out_and_the_rest_come_back() -> None:
    """Outer timeout (1 s) below math-verify's own (5 s): the worker is killed, others carry on;
    the stuck answer is run again alone with 4 s (and math-verify's limits at 20 s), killed again."""
    tasks = [
        task(0, boxed("5"), "5"),
        task(1, boxed("10^{10^{10^{10}}}"), "5"),
        task(2, boxed("6"), "6"),
        task(3, boxed("7"), "8"),
    ]
    start = time.monotonic()
    outcomes = grade_many(tasks, grader_id="math_verify", workers=2, timeout=1.0)
    assert time.monotonic() - start < 8
    assert [o.verdict for o in outcomes] == ["correct", "timeout", "correct", "incorrect"]
    assert outcomes[1].error == "grading took over 4 s (worker killed), run alone after taking over 1 s"


@needs_fork
def test_slow_grader_times_out_within_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(GRADERS, SlowGrader.grader_id, SlowGrader)
    tasks = [task(0, "a", "a"), task(1, "slow", "a"), task(2, "b", "a"), task(3, "c", "c")]
    start = time.monotonic()
    outcomes = grade_many(tasks, grader_id=SlowGrader.grader_id, workers=2, timeout=0.5)
    assert time.monotonic() - start < 5
    assert [o.verdict for o in outcomes] == ["correct", "timeout", "incorrect", "correct"]
    assert outcomes[1].extracted is None


@needs_fork
def test_dead_worker_or_raising_grader_is_an_error_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(GRADERS, MisbehavingGrader.grader_id, MisbehavingGrader)
    tasks = [task(0, "a", "a"), task(1, "die", "a"), task(2, "b", "b"), task(3, "raise", "a"), task(4, "c", "d")]
    outcomes = grade_many(tasks, grader_id=MisbehavingGrader.grader_id, workers=1)
    assert [o.verdict for o in outcomes] == ["correct", "error", "correct", "error", "incorrect"]
    assert outcomes[1].error is not None and "exit code 3" in outcomes[1].error
    assert outcomes[3].error == "grading failed: RuntimeError: boom"


def test_unknown_grader_id() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown grader 'nope'; valid graders: .*math_verify"):
        grade_many([task(0, boxed("1"), "1")], grader_id="nope")


def test_unknown_grader_id_is_caught_even_with_no_tasks() -> None:
    with pytest.raises(UnknownNameError):
        grade_many([], grader_id="nope")
    assert grade_many([], grader_id="math_verify") == []


@pytest.mark.parametrize(("kwargs", "message"), [({"timeout": 0}, "timeout"), ({"workers": 0}, "workers")])
def test_invalid_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        grade_many([task(0, boxed("1"), "1")], grader_id="math_verify", **kwargs)


def test_default_workers_and_a_single_worker() -> None:
    tasks = [task(i, boxed(str(i)), str(i)) for i in range(5)]
    assert [o.verdict for o in grade_many(tasks, grader_id="math_verify")] == ["correct"] * 5
    assert [o.verdict for o in grade_many(tasks, grader_id="math_verify", workers=1)] == ["correct"] * 5


def test_on_result_exception_stops_the_pool() -> None:
    class Stop(Exception):
        pass

    def on_result(t: GradeTask, o: GradeOutcome) -> None:
        raise Stop

    tasks = [task(i, boxed(str(i)), str(i)) for i in range(20)]
    start = time.monotonic()
    with pytest.raises(Stop):
        grade_many(tasks, grader_id="math_verify", workers=2, on_result=on_result)
    assert time.monotonic() - start < 10


# --- ChunkPool: chunks of items, each under its own limit --------------------------------


def _work(kind: str, value: int) -> int:
    """Test-only item function: ``sleep`` runs past any limit, ``late`` just past a short one."""
    if kind == "sleep":
        time.sleep(60)
    if kind == "late":
        time.sleep(0.4)
    if kind == "die":
        os._exit(5)
    if kind == "raise":
        raise ValueError(f"bad {value}")
    return value * 10


def _drain(pool: ChunkPool) -> dict[object, object]:
    results: dict[object, object] = {}
    while pool.pending:
        for token, result in pool.collect():
            assert token not in results, "every item yields exactly one result"
            results[token] = result
    return results


@needs_fork
def test_chunk_pool_kills_only_the_stuck_item_and_reruns_the_rest_of_its_chunk() -> None:
    pool = ChunkPool(workers=2, limit=0.5)
    try:
        pool.submit(_work, [("ok", 1), ("sleep", 2), ("ok", 3), ("ok", 4)], ["a", "b", "c", "d"])
        pool.submit(_work, [("ok", 5)], ["e"])
        results = _drain(pool)
    finally:
        pool.stop()
    assert results == {
        "a": 10,
        "b": ItemFailure("timeout", "0.5", killed=True),
        "c": 30,
        "d": 40,
        "e": 50,
    }


@needs_fork
def test_chunk_pool_item_that_finishes_past_the_limit_is_a_timeout() -> None:
    pool = ChunkPool(workers=1, limit=0.2, poll=30)  # the parent never looks in time: the worker reports it
    try:
        pool.submit(_work, [("ok", 1), ("late", 2), ("ok", 3)], [1, 2, 3])
        results = _drain(pool)
    finally:
        pool.stop()
    assert results == {1: 10, 2: ItemFailure("timeout", "0.2"), 3: 30}


@needs_fork
def test_chunk_pool_dead_worker_and_raising_item_fail_only_themselves() -> None:
    pool = ChunkPool(workers=1, limit=5)
    try:
        pool.submit(_work, [("ok", 1), ("die", 2), ("raise", 3), ("ok", 4)], [1, 2, 3, 4])
        results = _drain(pool)
    finally:
        pool.stop()
    assert results == {1: 10, 2: ItemFailure("died", "5"), 3: ItemFailure("raised", "ValueError: bad 3"), 4: 40}


def test_chunk_pool_arguments() -> None:
    with pytest.raises(ValueError, match="workers"):
        ChunkPool(workers=0, limit=1)
    with pytest.raises(ValueError, match="limit"):
        ChunkPool(workers=1, limit=0)
    pool = ChunkPool(workers=1, limit=1)
    try:
        with pytest.raises(ValueError, match="2 items but 1 tokens"):
            pool.submit(_work, [("ok", 1), ("ok", 2)], ["a"])
        pool.submit(_work, [], [])
        assert pool.pending == 0 and pool.collect() == []
    finally:
        pool.close()
