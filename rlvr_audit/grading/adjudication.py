"""Which grader is right: graders scored on the truth set, and what that says about a store.

Three steps, each a pure function returning a pandas DataFrame (nothing here renders):

1. :func:`grade_truth_cases` grades every truth-set case (:mod:`rlvr_audit.grading.truth`)
   with each grader, in worker processes like any grading pass: one row per case and grader.
2. :func:`accuracy_table` turns those rows into rates with intervals, per split, grader and
   category: **accuracy** (the verdict matches the truth; ``correct`` vs anything else),
   **false-accept rate** (graded ``correct`` among the cases that are truly incorrect) and
   **false-reject rate** (graded anything but ``correct`` among the truly correct ones).
   Intervals are Wilson score intervals (``scipy.stats.binomtest(...).proportion_ci(method=
   "wilson")``): unlike the normal approximation they stay inside [0, 1] and keep close to
   their level for the small counts a category has.
3. Disagreement *patterns*: which graders accept a sample and which reject it (e.g.
   ``math_verify, paper | boxed_strict, minerva``). :func:`pattern_accuracy` says, for the
   truth-set cases with each pattern, how often each grader is right.
   :mod:`rlvr_audit.analysis.adjudicated` counts the same patterns in a store and joins the two, which
   is what a report cites: "on adjudicated disagreements of this kind, ``math_verify`` is
   right in X% [lo, hi] of n cases".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
from scipy.stats import binomtest

from . import get_grader
from .engine import GradingEngine
from .pool import GradeTask
from .truth import TruthCase

CASE_COLUMNS = ["case_id", "split", "category", "truth", "grader", "verdict", "extracted", "accepted", "right"]
"""Columns of :func:`grade_truth_cases`: ``accepted`` = graded ``correct``; ``right`` =
``accepted`` equals ``truth == "correct"``."""

ACCURACY_COLUMNS = [
    "split",
    "grader",
    "category",
    "n",
    "n_right",
    "accuracy",
    "accuracy_low",
    "accuracy_high",
    "n_truly_incorrect",
    "false_accepts",
    "false_accept_rate",
    "false_accept_low",
    "false_accept_high",
    "n_truly_correct",
    "false_rejects",
    "false_reject_rate",
    "false_reject_low",
    "false_reject_high",
    "level",
]
"""Columns of :func:`accuracy_table` (rates as fractions; ``NaN`` where the count is 0)."""

ALL = "all"
"""The ``category`` (and ``split``) value of rows that pool every category (split)."""


def grade_truth_cases(
    cases: Sequence[TruthCase],
    graders: Sequence[str],
    *,
    workers: int | None = None,
    timeout: float = 10.0,
    on_result: Callable[[], None] | None = None,
) -> pd.DataFrame:
    """Grade each case's ``response_tail`` against its gold with each grader (worker processes).

    Args:
        cases: Truth-set cases.
        graders: Registered grader ids (an unknown id raises before any work, naming the valid ones).
        workers: Worker processes (``None``: one per CPU).
        timeout: Wall-clock seconds one grading step may take (see :class:`~rlvr_audit.grading.engine.GradingEngine`).
        on_result: Called once per graded (case, grader), e.g. to advance a progress bar.

    Returns:
        One row per case and grader, :data:`CASE_COLUMNS`, cases in input order, graders in
        the order given.
    """
    for grader_id in graders:
        get_grader(grader_id)
    tasks = [
        GradeTask(key=(i,), completion=c.response_tail, gold=c.gold, truncated=c.truncated) for i, c in enumerate(cases)
    ]
    rows: list[dict[str, object]] = []

    def tick(task: GradeTask, outcome: object) -> None:
        if on_result is not None:
            on_result()

    with GradingEngine(workers=workers, timeout=timeout) as engine:
        for grader_id in graders:
            outcomes = engine.grade(tasks, grader_id=grader_id, on_result=tick)
            for case, outcome in zip(cases, outcomes, strict=True):
                accepted = outcome.verdict == "correct"
                rows.append(
                    {
                        "case_id": case.id,
                        "split": case.split,
                        "category": case.category,
                        "truth": case.verdict,
                        "grader": grader_id,
                        "verdict": outcome.verdict,
                        "extracted": outcome.extracted,
                        "accepted": accepted,
                        "right": accepted == (case.verdict == "correct"),
                    }
                )
    return pd.DataFrame(rows, columns=CASE_COLUMNS)


def wilson_interval(successes: int, n: int, *, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (``(nan, nan)`` when ``n == 0``).

    Computed by ``scipy.stats.binomtest(successes, n).proportion_ci(level, method="wilson")``.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if n == 0:
        return (float("nan"), float("nan"))
    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return (float(ci.low), float(ci.high))


def _rate(k: int, n: int, level: float) -> tuple[float, float, float]:
    low, high = wilson_interval(k, n, level=level)
    return (k / n if n else float("nan"), low, high)


def _accuracy_row(split: str, grader: str, category: str, rows: pd.DataFrame, level: float) -> dict[str, object]:
    n = len(rows)
    n_right = int(rows["right"].sum())
    truly_incorrect = rows[rows["truth"] != "correct"]
    truly_correct = rows[rows["truth"] == "correct"]
    fa = int(truly_incorrect["accepted"].sum())
    fr = int((~truly_correct["accepted"].astype(bool)).sum())
    acc, acc_lo, acc_hi = _rate(n_right, n, level)
    far, fa_lo, fa_hi = _rate(fa, len(truly_incorrect), level)
    frr, fr_lo, fr_hi = _rate(fr, len(truly_correct), level)
    return {
        "split": split,
        "grader": grader,
        "category": category,
        "n": n,
        "n_right": n_right,
        "accuracy": acc,
        "accuracy_low": acc_lo,
        "accuracy_high": acc_hi,
        "n_truly_incorrect": len(truly_incorrect),
        "false_accepts": fa,
        "false_accept_rate": far,
        "false_accept_low": fa_lo,
        "false_accept_high": fa_hi,
        "n_truly_correct": len(truly_correct),
        "false_rejects": fr,
        "false_reject_rate": frr,
        "false_reject_low": fr_lo,
        "false_reject_high": fr_hi,
        "level": level,
    }


def accuracy_table(
    graded: pd.DataFrame, *, level: float = 0.95, splits: Iterable[str] = ("tune", "held_out", ALL)
) -> pd.DataFrame:
    """Accuracy, false-accept and false-reject rates with Wilson intervals (:data:`ACCURACY_COLUMNS`).

    One row per split (``all`` pools them), grader and category, plus a row per split and
    grader with ``category == "all"``; graders in the order they first appear in ``graded``,
    categories by name after ``all``.
    """
    missing = set(CASE_COLUMNS) - set(graded.columns)
    if missing:
        raise ValueError(f"graded is missing columns: {', '.join(sorted(missing))}")
    rows = []
    graders = list(dict.fromkeys(graded["grader"]))
    for split in splits:
        part = graded if split == ALL else graded[graded["split"] == split]
        for grader in graders:
            mine = part[part["grader"] == grader]
            rows.append(_accuracy_row(split, grader, ALL, mine, level))
            for category in sorted(set(mine["category"])):
                rows.append(_accuracy_row(split, grader, category, mine[mine["category"] == category], level))
    return pd.DataFrame(rows, columns=ACCURACY_COLUMNS)


# --- disagreement patterns -------------------------------------------------------------


def pattern_of(accepted: Mapping[str, bool]) -> str | None:
    """The disagreement pattern of one sample: ``"a, b | c, d"`` (accepting | rejecting graders,
    each side sorted), or ``None`` when all graders agree."""
    yes = sorted(g for g, ok in accepted.items() if ok)
    no = sorted(g for g, ok in accepted.items() if not ok)
    if not yes or not no:
        return None
    return f"{', '.join(yes)} | {', '.join(no)}"


PATTERN_COLUMNS = ["pattern", "grader", "n", "n_right", "accuracy", "accuracy_low", "accuracy_high", "level"]
"""Columns of :func:`pattern_accuracy`."""


def pattern_accuracy(graded: pd.DataFrame, graders: Sequence[str], *, level: float = 0.95) -> pd.DataFrame:
    """For every disagreement pattern of ``graders`` on the truth set, how often each is right.

    ``graded`` is :func:`grade_truth_cases` output (any split; pass one split to keep the
    held-out cases apart). Only cases graded by all of ``graders`` count; agreements are left
    out. Rows (:data:`PATTERN_COLUMNS`) by pattern (most cases first), then grader in the
    given order.
    """
    wide = graded[graded["grader"].isin(graders)].pivot_table(
        index="case_id", columns="grader", values="accepted", aggfunc="first"
    )
    truth = graded.drop_duplicates("case_id").set_index("case_id")["truth"]
    wide = wide.dropna()
    patterns: dict[str, list[str]] = {}
    for case_id, row in wide.iterrows():
        p = pattern_of({g: bool(row[g]) for g in graders})
        if p is not None:
            patterns.setdefault(p, []).append(str(case_id))
    rows = []
    for p, ids in sorted(patterns.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        for g in graders:
            right = int(sum(bool(wide.loc[i, g]) == (truth[i] == "correct") for i in ids))
            acc, lo, hi = _rate(right, len(ids), level)
            rows.append(
                {
                    "pattern": p,
                    "grader": g,
                    "n": len(ids),
                    "n_right": right,
                    "accuracy": acc,
                    "accuracy_low": lo,
                    "accuracy_high": hi,
                    "level": level,
                }
            )
    return pd.DataFrame(rows, columns=PATTERN_COLUMNS)


@dataclass(frozen=True)
class SplitComparison:
    """Graders' right answers on one split, leaving out cases on which any of them timed out."""

    split: str
    """The split compared."""
    n: int
    """Cases compared."""
    right: dict[str, int]
    """Grader id -> cases it got right, over those ``n``."""
    left_out: tuple[str, ...]
    """Cases left out because some grader's verdict was ``timeout`` (a timeout is not a
    verdict: it depends on the machine's load, e.g. math-verify's own 2 s limits)."""

    def beats_all(self, challenger: str) -> bool:
        """Whether ``challenger`` is right on more cases than every other grader."""
        return all(self.right[challenger] > k for g, k in self.right.items() if g != challenger)


def compare_on_split(graded: pd.DataFrame, *, split: str = "held_out") -> SplitComparison:
    """Right answers per grader on ``split`` (``all``: every case), timeouts left out."""
    part = graded if split == ALL else graded[graded["split"] == split]
    left_out = tuple(sorted(set(part.loc[part["verdict"] == "timeout", "case_id"])))
    kept = part[~part["case_id"].isin(left_out)]
    right = {str(g): int(k) for g, k in kept.groupby("grader", sort=False)["right"].sum().items()}
    return SplitComparison(split=split, n=int(kept["case_id"].nunique()), right=right, left_out=left_out)


__all__ = [
    "ACCURACY_COLUMNS",
    "ALL",
    "CASE_COLUMNS",
    "PATTERN_COLUMNS",
    "SplitComparison",
    "accuracy_table",
    "compare_on_split",
    "grade_truth_cases",
    "pattern_accuracy",
    "pattern_of",
    "wilson_interval",
]
