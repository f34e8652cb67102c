"""Grading stage: every grader over every stored generation, reading only the store.

Grades of different graders live side by side (one file per grader per unit) and never touch
the generations. Resumable: only samples without a grade from the current grader version are
graded, and grades are appended every ``save_every`` results.
"""

from __future__ import annotations

from dataclasses import dataclass

from .graders import GradeOutcome, get_grader
from .graders.pool import GradeTask, grade_many
from .records import Grade
from .store import Store
from .ui import Progress


@dataclass
class GradeSummary:
    """What a grading pass did."""

    graded: int = 0
    """Samples graded now."""
    reused: int = 0
    """Samples that already had a grade of the current grader version."""


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
    """Grade the stored generations of ``unit_keys`` with each grader in ``graders``."""
    instances = [get_grader(g) for g in graders]  # validates every id before any work
    summary = GradeSummary()
    plans: list[tuple[str, str, str, list[GradeTask]]] = []
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
                    key=(g.problem_id, g.sample_idx),
                    completion=g.completion,
                    gold=gold[g.problem_id],
                    truncated=g.finish_reason == "length",
                )
                for g in gens
                if (g.problem_id, g.sample_idx) not in have
            ]
            summary.reused += len(gens) - len(tasks)
            if tasks:
                plans.append((key, grader.grader_id, grader.version, tasks))
    total = sum(len(t) for *_, t in plans)
    task_id = progress.add_task("grading", total=total)
    for key, grader_id, version, tasks in plans:
        progress.update(task_id, description=f"grading {grader_id} · {key[:8]}")
        pending: list[Grade] = []

        def on_result(
            task: GradeTask,
            outcome: GradeOutcome,
            key: str = key,
            grader_id: str = grader_id,
            version: str = version,
            pending: list[Grade] = pending,
        ) -> None:
            pid, idx = task.key
            pending.append(
                Grade(
                    unit_key=key,
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
            if len(pending) >= save_every:
                store.append_grades(key, grader_id, pending)
                pending.clear()

        try:
            grade_many(tasks, grader_id=grader_id, workers=workers, timeout=timeout, on_result=on_result)
        finally:
            store.append_grades(key, grader_id, pending)  # keep what was graded, even on Ctrl-C
        summary.graded += len(tasks)
    progress.update(task_id, description="graded")
    return summary
