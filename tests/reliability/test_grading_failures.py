"""Grading timeouts and errors are visible, recoverable and independent of machine load (issue 13.6).

Before: 60 correct answers graded with ``--timeout 0.02`` were all stored as ``timeout`` with
nothing said; re-grading with ``--timeout 10`` graded nothing; the default limit (2 s) was below
math-verify's own (5 s); and two gradings of one store gave different verdicts under load.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import pytest
from reliability_helpers import ROOT, cli, first_problems, make_store, needs_data, one_line, run_cli

from rlvr_audit.core.records import Grade
from rlvr_audit.core.store import Store
from rlvr_audit.grading import GRADERS, GradeOutcome
from rlvr_audit.grading.engine import GradingEngine
from rlvr_audit.grading.math_verify import MathVerifyGrader
from rlvr_audit.grading.pool import GradeTask
from rlvr_audit.grading.runner import failure_counts

pytestmark = needs_data


def grade(tmp: Path, store: Path, *args: str) -> str:
    r = run_cli(cli("grade", "--store", str(store), "--config-dir", str(ROOT), "--quiet", *args), tmp)
    assert r.returncode == 0, r.stdout + r.stderr
    return one_line(r.stdout + r.stderr)


def latest(store: Path) -> dict[tuple[str, int], Grade]:
    s = Store(store)
    (key,) = s.unit_keys()
    version = MathVerifyGrader().version
    return {(g.problem_id, g.sample_idx): g for g in s.read_grades(key, "math_verify", version)}


def test_timeouts_are_reported_and_retry_regrades_exactly_those(tmp_path: Path) -> None:
    problems = first_problems(24)
    # half the answers are long expressions (~800 characters: 50-200 ms to parse on any machine),
    # half plain integers (decided without the parser, so they never time out)
    long = "+".join(f"\\frac{{{i}}}{{{i + 1}}}" for i in range(1, 60))
    responses = [
        f"We compute.\n\nThe final answer is $\\boxed{{{long if i % 2 else p['answer']}}}$."
        for i, p in enumerate(problems)
    ]
    store = make_store(tmp_path, responses)
    out = grade(tmp_path, store, "--timeout", "0.002")
    graded = latest(store)
    timeouts = {k for k, g in graded.items() if g.verdict == "timeout"}
    assert len(timeouts) >= 5  # 2 ms cannot parse 800 characters of LaTeX, even run again alone with 8 ms
    # the summary names the unit, the grader and the counts
    assert f"toy/rl · math500 · no_template · math_verify: {len(timeouts)} timeout, 0 error of 24 graded" in out
    assert "grade --retry timeout,error" in out
    frame = failure_counts(Store(store))
    assert frame[["checkpoint_id", "grader_id", "graded", "timeout", "error"]].to_dict("records") == [
        {"checkpoint_id": "toy/rl", "grader_id": "math_verify", "graded": 24, "timeout": len(timeouts), "error": 0}
    ]
    assert all(g.limit_s in (0.002, 0.008) for g in graded.values())
    assert all(g.limit_s == 0.008 for k, g in graded.items() if k in timeouts)  # run again alone with 4x the limit

    before = {k: g for k, g in graded.items() if k not in timeouts}
    out = grade(tmp_path, store, "--retry", "timeout,error", "--timeout", "10")
    assert f"re-graded {len(timeouts)} samples" in out
    assert "no timeout or error verdicts in the graded units" in out
    after = latest(store)
    assert {k for k, g in after.items() if g.attempt == 1} == timeouts  # exactly those were graded again
    assert {k: g for k, g in after.items() if k not in timeouts} == before  # the others untouched
    reference = MathVerifyGrader()
    by_id = {p["id"]: (r, p["answer"]) for p, r in zip(problems, responses, strict=True)}
    for k in timeouts:
        response, gold = by_id[k[0]]
        expected = reference.grade(completion=response, gold=gold, truncated=False)
        assert (after[k].verdict, after[k].extracted, after[k].limit_s) == (expected.verdict, expected.extracted, 10.0)
    # append-only: the superseded grades are still in the file; every reader takes the latest
    lines = (next((store / "units").iterdir()) / "grades" / "math_verify.jsonl").read_text().splitlines()
    assert len(lines) == 24 + len(timeouts)
    assert failure_counts(Store(store))["timeout"].tolist() == [0]
    # nothing left to retry, nothing left to grade
    assert "done: 1 units; 0 graded" in grade(tmp_path, store, "--retry", "timeout")
    assert "done: 1 units; 0 graded" in grade(tmp_path, store)


def test_retry_names_the_valid_verdicts(tmp_path: Path) -> None:
    store = make_store(tmp_path, ["The answer is $\\boxed{2}$."])
    r = run_cli(cli("grade", "--store", str(store), "--config-dir", str(ROOT), "--retry", "timeout,slow"), tmp_path)
    assert r.returncode == 2
    assert "--retry: unknown verdict 'slow'; valid: timeout, error" in one_line(r.stdout + r.stderr)
    assert not (next((store / "units").iterdir()) / "grades").exists()  # nothing written


def test_default_limits_are_at_least_math_verify_own() -> None:
    import inspect

    from math_verify import parse, verify

    from rlvr_audit.cli.evaluate import grade as grade_command

    own_parse = inspect.signature(parse).parameters["parsing_timeout"].default
    own_verify = inspect.signature(verify).parameters["timeout_seconds"].default
    grader = MathVerifyGrader()
    assert grader.parsing_timeout >= own_parse == 5
    assert grader.verify_timeout >= own_verify == 5
    assert inspect.signature(grade_command).parameters["timeout"].default >= 5


def test_every_grade_records_its_limit_and_the_antlr_runtime(tmp_path: Path) -> None:
    store = make_store(tmp_path, ["The answer is $\\boxed{\\frac{1}{2}}$.", "Answer: 4", "nothing"])
    grade(tmp_path, store, "--timeout", "7.5", "--graders", "math_verify,boxed_strict")
    s = Store(store)
    (key,) = s.unit_keys()
    grades = s.read_grades(key, "math_verify") + s.read_grades(key, "boxed_strict")
    assert len(grades) == 6
    assert {(g.limit_s, g.antlr_version) for g in grades} == {(7.5, metadata.version("antlr4-python3-runtime"))}
    assert "antlr4-python3-runtime==" in grades[0].grader_version  # a grade from ANTLR 4.9 is another version


class SlowGrader:
    """Takes 1.2 s on "slow": over a 0.5 s limit, under 4 x 0.5 s."""

    grader_id = "test_slow"
    version = "1"

    def grade(self, *, completion: str, gold: str, truncated: bool) -> GradeOutcome:
        if completion == "slow":
            time.sleep(1.2)
        return GradeOutcome("correct" if completion == gold else "incorrect", completion)


@pytest.mark.skipif(multiprocessing.get_start_method() != "fork", reason="test graders reach workers by fork")
def test_a_sample_that_times_out_is_retried_alone_with_a_longer_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(GRADERS, SlowGrader.grader_id, SlowGrader)
    tasks = [GradeTask(("u", str(i), 0), c, "slow", False) for i, c in enumerate(["a", "slow", "b"])]
    with GradingEngine(workers=2, timeout=0.5) as engine:
        outcomes = engine.grade(tasks, grader_id=SlowGrader.grader_id)
    assert [o.verdict for o in outcomes] == ["incorrect", "correct", "incorrect"]
    assert [engine.limit_for(t) for t in tasks] == [0.5, 2.0, 0.5]
    assert engine.stats.retried == 1 and engine.stats.retry_timeouts == 0


def test_readers_take_the_latest_attempt(tmp_path: Path) -> None:
    store = make_store(tmp_path, ["The answer is $\\boxed{2}$."])
    s = Store(store)
    (key,) = s.unit_keys()
    (gen,) = s.read_generations(key)
    base = {"unit_key": key, "problem_id": gen.problem_id, "sample_idx": 0, "grader_id": "math_verify"}
    version = MathVerifyGrader().version
    s.append_grades(key, "math_verify", [Grade(**base, grader_version=version, verdict="timeout", attempt=0)])
    s.append_grades(key, "math_verify", [Grade(**base, grader_version=version, verdict="correct", attempt=2)])
    s.append_grades(key, "math_verify", [Grade(**base, grader_version=version, verdict="error", attempt=1)])
    s.append_grades(key, "math_verify", [Grade(**base, grader_version="old", verdict="incorrect", attempt=5)])
    assert [g.verdict for g in Store(store).read_grades(key, "math_verify", version)] == ["correct"]
    assert failure_counts(Store(store))["timeout"].tolist() == [0]


# --- the same verdicts however loaded the machine is -----------------------------------------


def busy() -> None:
    while True:
        pass


@contextmanager
def cpu_load() -> Iterator[None]:
    """Busy-loop processes, two per core, while the block runs."""
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    procs = [context.Process(target=busy, daemon=True) for _ in range(2 * (os.cpu_count() or 1))]
    for p in procs:
        p.start()
    try:
        yield
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.join()


SLOW = [f"(x+y+{k})^{{30}}-(x-y)^{{30}}" for k in (2, 3, 4)]
"""Wrong answers whose comparison with sympy takes about a second on a quiet core: over the old
2 s limit under load, well under math-verify's own 5 s on a quiet machine."""


def test_grading_the_same_store_twice_gives_identical_verdicts_under_cpu_load(tmp_path: Path) -> None:
    responses = [f"So the answer is \\boxed{{{a}}}." for a in SLOW]
    responses += ["The answer is $\\boxed{\\frac{1}{2}}$.", "Answer: 4", "The final answer is $\\boxed{x}$."]
    quiet, loaded = tmp_path / "quiet", tmp_path / "loaded"
    quiet.mkdir()
    store = make_store(quiet, responses)
    shutil.copytree(store, loaded / "store")  # before any grading: the copy has no verdict cache either
    grade(quiet, store, "--workers", "2")
    first = {k: (g.verdict, g.extracted) for k, g in latest(store).items()}
    assert {v for v, _ in first.values()} <= {"correct", "incorrect"}, first  # decided within math-verify's limits
    assert sum(v == "incorrect" for v, _ in first.values()) >= len(SLOW)
    with cpu_load():
        grade(loaded, loaded / "store", "--workers", "2")
    assert {k: (g.verdict, g.extracted) for k, g in latest(loaded / "store").items()} == first
