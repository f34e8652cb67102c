"""Grading stage: every grader over every stored generation, reading only the store.

Grades of different graders live side by side (one file per grader per unit) and never touch
the generations. Resumable: only samples without a grade from the current grader version are
graded, and each unit's grades are appended every ``save_every`` results, so an interrupted
pass (Ctrl-C) keeps what was graded and the next pass grades the rest.

All units of a pass go through one :class:`~rlvr_audit.grading.engine.GradingEngine` per
call: one set of worker processes, and one verdict cache, so an answer repeated across
samples, prompts and checkpoints of the same task is judged once.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.records import Grade
from ..core.store import Store
from ..core.ui import Progress
from . import GradeOutcome, get_grader
from .engine import GradingEngine
from .pool import GradeTask


@dataclass
class GradeSummary:
    """What a grading pass did."""

    graded: int = 0
    """Samples graded now."""
    reused: int = 0
    """Samples that already had a grade of the current grader version."""
    distinct_answers: int = 0
    """Distinct (grader, extracted answer, gold) judged; the rest of ``graded`` came from the cache."""
    full_gradings: int = 0
    """Samples graded by the grader's plain call (no fast path, or the fast path could not decide)."""


def grade_units(
    store: Store,
    unit_keys: list[str],
    *,
    graders: list[str],
    workers: int | None,
    timeout: float,
    progress: Progress,
    save_every: int = 500,
) -> GradeSummary:
    """Grade the stored generations of ``unit_keys`` with each grader in ``graders``.

    Args:
        store: Where generations are read and grades appended.
        unit_keys: The units to grade (units without generations are skipped).
        graders: Grader ids; every id is validated before any work starts.
        workers: Worker processes (``None``: one per CPU).
        timeout: Wall-clock seconds one grading step of one sample may take.
        progress: Advanced by one per graded sample.
        save_every: Grades held per unit before they are appended to the store.

    Returns:
        How many samples were graded, reused, judged and graded by the plain call.
    """
    if save_every < 1:
        raise ValueError(f"save_every must be at least 1, got {save_every!r}")
    instances = [get_grader(g) for g in graders]  # validates every id before any work
    summary = GradeSummary()
    plans: dict[str, list[GradeTask]] = {grader.grader_id: [] for grader in instances}
    versions = {grader.grader_id: grader.version for grader in instances}
    for key in unit_keys:
        info = store.load_unit(key)
        gens = store.read_generations(key)
        if not gens:
            continue
        gold = {p.problem_id: p.answer for p in store.load_problems(info.spec.data_hash)}
        for grader in instances:
            have = {(g.problem_id, g.sample_idx) for g in store.read_grades(key, grader.grader_id, grader.version)}
            tasks = [
                GradeTask(
                    key=(key, g.problem_id, g.sample_idx),
                    completion=g.completion,
                    gold=gold[g.problem_id],
                    truncated=g.finish_reason == "length",
                )
                for g in gens
                if (g.problem_id, g.sample_idx) not in have
            ]
            summary.reused += len(gens) - len(tasks)
            plans[grader.grader_id] += tasks
    total = sum(len(tasks) for tasks in plans.values())
    task_id = progress.add_task("grading", total=total)
    with GradingEngine(workers=workers, timeout=timeout) as engine:
        for grader_id, tasks in plans.items():
            if not tasks:
                continue
            version = versions[grader_id]
            units = len({task.key[0] for task in tasks})
            progress.update(task_id, description=f"grading {grader_id} · {units} unit{'s' if units != 1 else ''}")
            pending: dict[str, list[Grade]] = {}

            def on_result(
                task: GradeTask,
                outcome: GradeOutcome,
                grader_id: str = grader_id,
                version: str = version,
                pending: dict[str, list[Grade]] = pending,
            ) -> None:
                unit_key, pid, idx = task.key
                grades = pending.setdefault(unit_key, [])
                grades.append(
                    Grade(
                        unit_key=unit_key,
                        problem_id=pid,
                        sample_idx=idx,
                        grader_id=grader_id,
                        grader_version=version,
                        extracted=outcome.extracted,
                        verdict=outcome.verdict,
                        error=outcome.error,
                    )
                )
                progress.advance(task_id)
                if len(grades) >= save_every:
                    store.append_grades(unit_key, grader_id, grades)
                    grades.clear()

            try:
                engine.grade(tasks, grader_id=grader_id, on_result=on_result)
            finally:
                for unit_key, grades in pending.items():  # keep what was graded, even on Ctrl-C
                    if grades:
                        store.append_grades(unit_key, grader_id, grades)
            summary.graded += len(tasks)
        summary.distinct_answers = engine.stats.keys + engine.stats.tail_keys
        summary.full_gradings = engine.stats.full
    progress.update(task_id, description="graded")
    return summary
