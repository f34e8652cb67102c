"""Grade many samples in worker processes, each under a wall-clock limit.

Math-Verify's timeouts use ``signal.alarm``: they only work in a process's main thread and
cannot interrupt code stuck in C (a catastrophic regular expression, a huge integer). So
every sample is graded in the main thread of a worker process of a ``pebble`` process pool,
scheduled on its own with ``timeout=``: a sample that runs past the limit gets its worker
killed (the pool starts a new one) and is graded ``timeout``, and the other samples carry on.
"""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pebble import ProcessExpired, ProcessPool

from . import GradeOutcome, Grader, get_grader


@dataclass(frozen=True)
class GradeTask:
    """One sample to grade."""

    key: tuple[Any, ...]
    """Opaque to grading and handed back to ``on_result``, e.g. ``(unit_key, problem_id, sample_idx)``."""
    completion: str
    """The model's completion."""
    gold: str
    """The gold answer as published."""
    truncated: bool
    """Whether the completion was cut at the token limit (``finish_reason == "length"``)."""


_WORKER_GRADERS: dict[str, Grader] = {}
"""Per worker process: the grader instance for each id, built on first use."""


def _grade_in_worker(grader_id: str, completion: str, gold: str, truncated: bool) -> GradeOutcome:
    """Runs in a worker process: grade one sample with a cached grader instance."""
    grader = _WORKER_GRADERS.get(grader_id)
    if grader is None:
        grader = _WORKER_GRADERS[grader_id] = get_grader(grader_id)
    return grader.grade(completion=completion, gold=gold, truncated=truncated)


def grade_many(
    tasks: Sequence[GradeTask],
    *,
    grader_id: str,
    workers: int | None = None,
    timeout: float = 10.0,
    on_result: Callable[[GradeTask, GradeOutcome], None] | None = None,
) -> list[GradeOutcome]:
    """Grade ``tasks`` with the grader ``grader_id``; outcomes come back in input order.

    Args:
        tasks: The samples to grade.
        grader_id: A key of :data:`rlvr_audit.graders.GRADERS`; an unknown id raises
            :class:`~rlvr_audit.errors.UnknownNameError` before any work starts.
        workers: Worker processes (``None``: ``os.cpu_count()``; never more than tasks).
        timeout: Wall-clock seconds one sample may take in its worker (counted from when the
            worker picks it up). Past it the worker is killed and the sample is graded
            ``timeout``. Keep it above the grader's own timeouts (math-verify: about 3 x 2 s
            at worst) so that those, which cost no worker restart, fire first.
        on_result: Called in the calling thread with each task and its outcome as soon as it
            is known (completion order, not input order), e.g. to append to the store. An
            exception it raises stops the pool and propagates.

    Returns:
        One :class:`~rlvr_audit.graders.GradeOutcome` per task, in the order of ``tasks``.
        A worker that dies (other than by the timeout) gives ``error`` for its sample.
    """
    get_grader(grader_id)  # validates the id; also imports the grader's libraries for forked workers
    if not timeout > 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers!r}")
    if not tasks:
        return []
    n_workers = min(workers or os.cpu_count() or 1, len(tasks))

    outcomes: list[GradeOutcome | None] = [None] * len(tasks)
    pool = ProcessPool(max_workers=n_workers)
    try:
        futures: dict[concurrent.futures.Future[GradeOutcome], int] = {
            pool.schedule(
                _grade_in_worker,
                args=(grader_id, task.completion, task.gold, task.truncated),
                timeout=timeout,
            ): index
            for index, task in enumerate(tasks)
        }
        for future in concurrent.futures.as_completed(futures):
            index = futures[future]
            outcome = _outcome_of(future, timeout)
            outcomes[index] = outcome
            if on_result is not None:
                on_result(tasks[index], outcome)
    except BaseException:
        pool.stop()
        raise
    else:
        pool.close()
    finally:
        pool.join()
    done = [outcome for outcome in outcomes if outcome is not None]
    if len(done) != len(tasks):  # as_completed yields every future; this would be a bug
        raise RuntimeError(f"grading lost {len(tasks) - len(done)} of {len(tasks)} outcomes")
    return done


def _outcome_of(future: concurrent.futures.Future[GradeOutcome], timeout: float) -> GradeOutcome:
    """The outcome of a finished future; a wall-clock timeout or dead worker becomes a verdict."""
    try:
        return future.result()
    except concurrent.futures.TimeoutError:
        return GradeOutcome("timeout", None, f"grading took over {timeout:g} s (worker killed)")
    except ProcessExpired as exc:
        return GradeOutcome("error", None, f"grading worker died (exit code {exc.exitcode})")
    except Exception as exc:  # one sample's failure must not stop the others
        return GradeOutcome("error", None, f"grading failed: {type(exc).__name__}: {exc}")
