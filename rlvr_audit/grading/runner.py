"""Grading stage: every grader over every stored generation, reading only the store.

Grades of different graders live side by side (one file per grader per unit) and never touch
the generations. Resumable: only samples without a grade from the current grader version are
graded, and each unit's grades are appended every ``save_every`` results, so an interrupted
pass (Ctrl-C) keeps what was graded and the next pass grades the rest.

All units of a pass go through one :class:`~rlvr_audit.grading.engine.GradingEngine` per
call: one set of worker processes, and one verdict cache, so an answer repeated across
samples, prompts and checkpoints of the same task is judged once. The store's persistent
verdict cache (:mod:`rlvr_audit.grading.cache`, ``cache=False`` to bypass it) carries those
judgements to the next pass.

Timeouts and errors are never final by accident: a step that times out is run again alone
with longer limits before ``timeout`` is stored, every pass counts the ``timeout`` and
``error`` verdicts of each unit and grader (:func:`failure_counts`), and ``retry`` re-grades
exactly the samples whose latest grade has one of the given verdicts. A re-grade is appended
with ``attempt`` one higher than the grade it supersedes; the store's readers use the latest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..core.errors import UnknownNameError
from ..core.records import Grade
from ..core.store import Store
from ..core.ui import Progress
from . import GradeOutcome, get_grader
from .cache import VerdictCache
from .engine import GradingEngine
from .latex import antlr_version
from .pool import GradeTask

if TYPE_CHECKING:
    import pandas as pd

RETRYABLE = ("timeout", "error")
"""Verdicts ``grade --retry`` can re-grade."""


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
    regraded: int = 0
    """Of ``graded``: samples re-graded by ``retry`` (their new grade supersedes the old one)."""
    retried_alone: int = 0
    """Grading steps that timed out and were run again alone with longer limits."""
    cache: dict[str, int] | None = None
    """The persistent verdict cache's work in this pass (``hits``: distinct answers found,
    ``judged``: distinct answers judged now, ``samples``: samples served from it); ``None``
    when it was not used (``cache=False``, or it could not be opened)."""
    failures: list[dict[str, Any]] = field(default_factory=list)
    """:func:`failure_counts` of the graded units, as records (one per unit and grader)."""


def grade_units(
    store: Store,
    unit_keys: list[str],
    *,
    graders: list[str],
    workers: int | None,
    timeout: float,
    progress: Progress,
    save_every: int = 500,
    retry: Iterable[str] = (),
    cache: bool = True,
) -> GradeSummary:
    """Grade the stored generations of ``unit_keys`` with each grader in ``graders``.

    Args:
        store: Where generations are read and grades appended.
        unit_keys: The units to grade (units without generations are skipped).
        graders: Grader ids; every id is validated before any work starts.
        workers: Worker processes (``None``: one per CPU).
        timeout: Wall-clock seconds one grading step of one sample may take (a step that
            times out is run again alone with 4 times the limit before ``timeout`` is stored).
        progress: Advanced by one per graded sample.
        save_every: Grades held per unit before they are appended to the store.
        retry: Verdicts (of :data:`RETRYABLE`) to re-grade: only samples whose latest grade by
            the current grader version has one of them are graded, each stored with
            ``attempt`` one higher. Empty: grade the samples without a grade (the default).
        cache: Read and write the store's persistent verdict cache.

    Returns:
        How many samples were graded, reused, judged and graded by the plain call.
    """
    if save_every < 1:
        raise ValueError(f"save_every must be at least 1, got {save_every!r}")
    retry = frozenset(retry)
    unknown = sorted(retry - set(RETRYABLE))
    if unknown:
        raise ValueError(f"cannot retry verdicts {', '.join(unknown)}; valid: {', '.join(RETRYABLE)}")
    instances = [get_grader(g) for g in graders]  # validates every id before any work
    summary = GradeSummary()
    plans: dict[str, list[GradeTask]] = {grader.grader_id: [] for grader in instances}
    versions = {grader.grader_id: grader.version for grader in instances}
    attempts: dict[tuple[str, str, str, int], int] = {}
    for key in unit_keys:
        info = store.load_unit(key)
        gens = store.read_generations(key)
        if not gens:
            continue
        gold = {p.problem_id: p.answer for p in store.load_problems(info.spec.data_hash)}
        for grader in instances:
            have = {(g.problem_id, g.sample_idx): g for g in store.read_grades(key, grader.grader_id, grader.version)}
            if retry:
                again = {k: g for k, g in have.items() if g.verdict in retry}
                for (pid, idx), g in again.items():
                    attempts[(grader.grader_id, key, pid, idx)] = g.attempt + 1
                wanted = [g for g in gens if (g.problem_id, g.sample_idx) in again]
                summary.regraded += len(wanted)
            else:
                wanted = [g for g in gens if (g.problem_id, g.sample_idx) not in have]
            tasks = [
                GradeTask(
                    key=(key, g.problem_id, g.sample_idx),
                    completion=g.completion,
                    gold=gold[g.problem_id],
                    truncated=g.finish_reason == "length",
                )
                for g in wanted
            ]
            summary.reused += len(gens) - len(tasks)
            plans[grader.grader_id] += tasks
    total = sum(len(tasks) for tasks in plans.values())
    task_id = progress.add_task("grading", total=total)
    runtime = antlr_version()
    if total:  # a store that cannot take the grades is refused before any grading work
        store.check_writable("grading")
    verdict_cache = _open_cache(store) if cache and total else None
    try:
        with GradingEngine(workers=workers, timeout=timeout, cache=verdict_cache) as engine:
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
                    engine: GradingEngine = engine,
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
                            limit_s=engine.limit_for(task),
                            antlr_version=runtime,
                            attempt=attempts.get((grader_id, unit_key, pid, idx), 0),
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
            summary.retried_alone = engine.stats.retried
        if verdict_cache is not None:
            samples = {f"{g}\x00{versions[g]}": len(tasks) for g, tasks in plans.items() if tasks}
            verdict_cache.record_passes(samples)
            stats = list(verdict_cache.stats.values())
            summary.cache = {
                "hits": sum(s.hits for s in stats),
                "judged": sum(s.judged for s in stats),
                "samples": sum(s.samples for s in stats),
            }
    finally:
        if verdict_cache is not None:
            verdict_cache.close()
    progress.update(task_id, description="graded")
    graded_units = sorted({task.key[0] for tasks in plans.values() for task in tasks})
    if graded_units:
        frame = failure_counts(store, graded_units, graders=list(versions), versions=versions)
        summary.failures = frame.to_dict("records")
    return summary


def _open_cache(store: Store) -> Any:
    return VerdictCache.open(store.root)


FAILURE_COLUMNS = [
    "unit_key",
    "checkpoint_id",
    "task",
    "template_id",
    "grader_id",
    "grader_version",
    "graded",
    "timeout",
    "error",
]
"""Columns of :func:`failure_counts`."""


def failure_counts(
    store: Store,
    unit_keys: list[str] | None = None,
    *,
    graders: list[str] | None = None,
    versions: dict[str, str] | None = None,
) -> pd.DataFrame:
    """``timeout`` and ``error`` verdicts per unit and grader, from the latest stored grades.

    One row per unit and grader with grades of the grader's current version (or of
    ``versions[grader]``): the unit, its checkpoint, task and prompt template, the grader and
    version, the samples graded, and how many of their latest grades are ``timeout`` and
    ``error`` (columns :data:`FAILURE_COLUMNS`). Graders no longer registered are left out
    unless ``versions`` names their version.

    Args:
        store: The store to read.
        unit_keys: Units to count (default: every unit of the store).
        graders: Grader ids (default: every grader with a grades file in each unit).
        versions: Grader version to count per grader id (default: the current one).
    """
    current: dict[str, str | None] = dict(versions or {})

    def version_of(grader_id: str) -> str | None:
        if grader_id not in current:
            try:
                current[grader_id] = get_grader(grader_id).version
            except UnknownNameError:
                current[grader_id] = None
        return current[grader_id]

    rows = []
    for key in unit_keys if unit_keys is not None else store.unit_keys():
        info = store.load_unit(key)
        for grader_id in graders if graders is not None else store.graders(key):
            version = version_of(grader_id)
            if version is None:
                continue
            grades = store.read_grades(key, grader_id, version)
            if not grades:
                continue
            rows.append(
                {
                    "unit_key": key,
                    "checkpoint_id": info.spec.checkpoint.checkpoint_id,
                    "task": info.spec.task,
                    "template_id": info.spec.template_id,
                    "grader_id": grader_id,
                    "grader_version": version,
                    "graded": len(grades),
                    "timeout": sum(g.verdict == "timeout" for g in grades),
                    "error": sum(g.verdict == "error" for g in grades),
                }
            )
    return pd.DataFrame(rows, columns=FAILURE_COLUMNS)
