"""Adjudicated disagreements and gains under each grader, from a store and the truth set.

The report's grader-disagreement section says *that* graders disagree; these functions say
*who is right* and *what it changes*, as plain DataFrames for the report to render:

- :func:`truth_rates`: the truth set (``rlvr_audit/grading/data/grader_truth.jsonl``) graded by the given
  graders: accuracy / false-accept / false-reject rates per grader and category
  (:func:`~rlvr_audit.grading.adjudication.accuracy_table`) and per disagreement pattern
  (:func:`~rlvr_audit.grading.adjudication.pattern_accuracy`).
- :func:`store_patterns`: per unit, how many samples show each disagreement pattern
  (``math_verify, paper | boxed_strict, minerva``: who accepts | who rejects).
- :func:`adjudicated_disagreements`: the two joined: "``n`` samples of this unit are
  accepted by ``math_verify`` and ``paper`` and rejected by the others; on adjudicated cases
  of this kind ``math_verify`` is right in X% [lo, hi] of ``n_truth``".
- :func:`gain_verdicts`: per RLVR gain of a comparisons table, its verdict (gain, loss, no
  detectable change) under each grader, and whether it changes with the grader (e.g. under
  ``consensus`` or ``judge`` against ``math_verify``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..core.store import Store, UnitInfo
from ..grading.adjudication import ALL, accuracy_table, grade_truth_cases, pattern_accuracy, pattern_of
from ..grading.truth import DEFAULT_TRUTH_SET, load_truth_set
from .estimates import grader_version


@dataclass(frozen=True)
class TruthRates:
    """What the truth set says about a list of graders."""

    graded: pd.DataFrame
    """Per case and grader (:data:`~rlvr_audit.grading.adjudication.CASE_COLUMNS`)."""
    accuracy: pd.DataFrame
    """Per split, grader and category (:data:`~rlvr_audit.grading.adjudication.ACCURACY_COLUMNS`)."""
    patterns: pd.DataFrame
    """Per disagreement pattern and grader, over every case
    (:data:`~rlvr_audit.grading.adjudication.PATTERN_COLUMNS`)."""


def truth_rates(
    graders: Sequence[str],
    *,
    truth_path: Path = DEFAULT_TRUTH_SET,
    level: float = 0.95,
    workers: int | None = None,
    timeout: float = 10.0,
) -> TruthRates:
    """Grade the truth set with ``graders`` (worker processes) and compute its rates.

    The pattern rates pool both splits: the held-out split exists so that no rule is tuned on
    it, and reporting on it is measuring. A grader that is not registered (``judge``) cannot
    be run here; see ``benchmarks/grader_truth.py --judge-endpoint``.
    """
    truth = load_truth_set(truth_path)
    graded = grade_truth_cases(truth.cases, graders, workers=workers, timeout=timeout)
    return TruthRates(
        graded=graded,
        accuracy=accuracy_table(graded, level=level, splits=("tune", "held_out", ALL)),
        patterns=pattern_accuracy(graded, graders, level=level),
    )


STORE_PATTERN_COLUMNS = ["checkpoint", "task", "prompt", "unit_key", "pattern", "n_samples", "n_common"]
"""Columns of :func:`store_patterns`."""


def store_patterns(store: Store, units: Sequence[UnitInfo], graders: Sequence[str]) -> pd.DataFrame:
    """Per unit, how many samples show each disagreement pattern of ``graders`` (current versions).

    A unit lacking grades of any of ``graders`` is skipped; ``n_common`` is the number of its
    samples every grader graded. Grades of a grader that is not registered (``judge``) are
    read whatever their version.
    """
    rows = []
    for info in units:
        accepted: dict[str, dict[tuple[str, int], bool]] = {}
        for g in graders:
            grades = store.read_grades(info.key, g, grader_version(g))
            if not grades:
                break
            accepted[g] = {(x.problem_id, x.sample_idx): x.verdict == "correct" for x in grades}
        else:
            common = set.intersection(*(set(v) for v in accepted.values())) if accepted else set()
            counts: dict[str, int] = {}
            for key in common:
                p = pattern_of({g: accepted[g][key] for g in graders})
                if p is not None:
                    counts[p] = counts.get(p, 0) + 1
            spec = info.spec
            for p, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
                rows.append(
                    {
                        "checkpoint": spec.checkpoint.checkpoint_id,
                        "task": spec.task,
                        "prompt": spec.template_id,
                        "unit_key": info.key,
                        "pattern": p,
                        "n_samples": n,
                        "n_common": len(common),
                    }
                )
    return pd.DataFrame(rows, columns=STORE_PATTERN_COLUMNS)


def adjudicated_disagreements(patterns: pd.DataFrame, rates: pd.DataFrame) -> pd.DataFrame:
    """:func:`store_patterns` rows joined with the truth set's
    :func:`~rlvr_audit.grading.adjudication.pattern_accuracy` rows.

    One row per unit, pattern and grader: the store's count of samples with that pattern and
    the truth set's accuracy of the grader on cases with the same pattern (``n_truth`` cases,
    0 with ``NaN`` rates when the truth set has none). This is what the report's
    disagreement section cites.
    """
    merged = patterns.merge(rates, on="pattern", how="left")
    merged = merged.rename(columns={"n": "n_truth", "n_right": "n_truth_right"})
    merged["n_truth"] = merged["n_truth"].fillna(0).astype(int)
    return merged


# --- gains under each grader -------------------------------------------------------------

GAIN_KEY = ["checkpoint", "base", "task", "prompt", "metric"]
"""The columns that identify one gain across graders in a comparisons table."""


def gain_verdict(ci_low: float, ci_high: float) -> str:
    """``gain`` (interval above 0), ``loss`` (below 0) or ``no detectable change`` (covers 0)."""
    if math.isnan(ci_low) or math.isnan(ci_high):
        return "not computed"
    if ci_low > 0:
        return "gain"
    if ci_high < 0:
        return "loss"
    return "no detectable change"


GAIN_VERDICT_COLUMNS = [*GAIN_KEY, "graders", "verdicts", "deltas", "changes", "summary"]
"""Columns of :func:`gain_verdicts`: ``verdicts``/``deltas`` map grader -> value."""


def gain_verdicts(comparisons: pd.DataFrame, *, graders: Sequence[str] | None = None) -> pd.DataFrame:
    """Per gain (:data:`GAIN_KEY`), its verdict under each grader and whether it changes.

    ``comparisons`` has the report's comparison columns (``grader``, ``delta``, ``ci_low``,
    ``ci_high`` and :data:`GAIN_KEY`). ``graders`` restricts and orders the graders compared
    (default: all, in order of appearance). ``summary`` is one sentence for the report, e.g.
    ``+4.2 (gain) under math_verify; +1.0 (no detectable change) under consensus``.
    """
    needed = {*GAIN_KEY, "grader", "delta", "ci_low", "ci_high"}
    missing = needed - set(comparisons.columns)
    if missing:
        raise ValueError(f"comparisons is missing columns: {', '.join(sorted(missing))}")
    order = list(graders) if graders is not None else list(dict.fromkeys(comparisons["grader"]))
    rows = []
    for key, group in comparisons.groupby(GAIN_KEY, sort=False, dropna=False):
        by_grader = {str(r.grader): r for r in group.itertuples(index=False)}
        present = [g for g in order if g in by_grader]
        if not present:
            continue
        verdicts = {g: gain_verdict(float(by_grader[g].ci_low), float(by_grader[g].ci_high)) for g in present}
        deltas = {g: float(by_grader[g].delta) for g in present}
        summary = "; ".join(f"{100 * deltas[g]:+.1f} ({verdicts[g]}) under {g}" for g in present)
        rows.append(
            {
                **dict(zip(GAIN_KEY, key, strict=True)),
                "graders": present,
                "verdicts": verdicts,
                "deltas": deltas,
                "changes": len(set(verdicts.values())) > 1,
                "summary": summary,
            }
        )
    return pd.DataFrame(rows, columns=GAIN_VERDICT_COLUMNS)


__all__ = [
    "GAIN_KEY",
    "GAIN_VERDICT_COLUMNS",
    "STORE_PATTERN_COLUMNS",
    "TruthRates",
    "adjudicated_disagreements",
    "gain_verdict",
    "gain_verdicts",
    "grader_version",
    "store_patterns",
    "truth_rates",
]
