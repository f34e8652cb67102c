"""Gain anatomy: which change of behaviour a paired gain came from.

An RLVR checkpoint's gain over its base is often a change of *behaviour* rather than of
mathematics: a base model that loops until the token limit, runs out of tokens or never boxes
its answer loses those problems for reasons any reward can fix. This module splits a paired
gain by the behaviour class (:data:`~rlvr_audit.analysis.behaviour.BEHAVIOUR_CLASSES`, defined
once in :mod:`rlvr_audit.analysis.behaviour`) of each problem's base response, of its trained
response, and of both (the transition table, the paper's code-transition table generalised to
every class).

Estimand. Over the ``N`` problems both units have graded, problem ``i`` has accuracy ``a_i``
in the base unit and ``b_i`` in the trained one (the share of its samples graded correct,
kept as an exact fraction), a base class ``c_i`` and a trained class ``t_i``
(:func:`~rlvr_audit.analysis.behaviour.problem_class`: the majority class of its samples). The
gain ``G = (1/N) sum_i (b_i - a_i)`` splits exactly as::

    G = sum_c P_c,   P_c = (1/N) sum_{i: c_i = c} (b_i - a_i) = (n_c / N) (acc_after_c - acc_before_c)

and the same holds by trained class and by transition cell ``(c, t)``. The parts are exact
fractions (:class:`fractions.Fraction`), so they add up to the gain exactly, not up to
rounding. Each part's interval is a percentile bootstrap over problems (a problem keeps its
class in every replicate, so ``n_c`` varies across replicates as it would across benchmarks
drawn from the same population); every part and the total share one resampling plan.

"Gain on clean problems" is a different estimand: the mean of ``b_i - a_i`` over the problems
whose base class is ``clean`` (the gain a reader can credit to better reasoning, when the base
model already answered in clean language), with the project's default paired interval
(:func:`~rlvr_audit.analysis.stats.paired_wilson_ci`) and exact paired test
(:func:`~rlvr_audit.analysis.stats.paired_test`: McNemar's exact test with one sample per
problem).

Computation. :func:`gain_anatomy_columns` works on each unit's classified responses as arrays
(:class:`~rlvr_audit.analysis.behaviour_stats.ResponseColumns`, what the report reads from the
store's column cache) and its correctness per response: classes and accuracies per problem by
counting, each exact part summed per distinct denominator (a handful of :class:`~fractions.Fraction`
operations per part, none per response). :func:`gain_anatomy` takes records and converts them.

Known issues: truncation is only known for responses with a finish reason or a token count;
imported responses have neither, so no problem of an imported unit is ``truncated`` (a cut-off
response counts as ``degenerate`` or ``no_answer`` by its text), and
:attr:`GainAnatomy.truncation_unknown_base` says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from ..core.records import Comparison, Generation
from . import stats
from .behaviour import (
    BEHAVIOUR_CLASSES,
    DEFAULT_DEFINITION,
    BehaviourClass,
    get_definition,
)
from .behaviour_stats import Behaviours, Correctness, ResponseColumns, _columns_of, _correct_of, _group

__all__ = [
    "DEGENERATE_OR_TRUNCATED",
    "PART_METHOD",
    "AnatomyPart",
    "CleanGain",
    "ComparisonAnatomy",
    "GainAnatomy",
    "ProblemAnatomy",
    "gain_anatomy",
    "gain_anatomy_columns",
    "response_classes",
]

PART_METHOD = "bootstrap-percentile(problems)"
"""Method string of the parts' intervals."""

DEGENERATE_OR_TRUNCATED: tuple[BehaviourClass, BehaviourClass] = ("degenerate", "truncated")
"""Base classes whose problems a reward can win back without teaching any mathematics."""


@dataclass(frozen=True)
class ProblemAnatomy:
    """One shared problem: its class and accuracy in each unit."""

    problem_id: str
    """Problem id."""
    before: BehaviourClass
    """Class in the base unit (majority of its samples)."""
    after: BehaviourClass
    """Class in the trained unit."""
    acc_before: Fraction
    """Share of the base unit's samples graded correct."""
    acc_after: Fraction
    """Share of the trained unit's samples graded correct."""


@dataclass(frozen=True)
class AnatomyPart:
    """The problems of one base class, one trained class, or one transition cell, and their part of the gain."""

    before: BehaviourClass | None
    """Base class of the problems; ``None``: any (a part by trained class)."""
    after: BehaviourClass | None
    """Trained class of the problems; ``None``: any (a part by base class)."""
    n_problems: int
    """Problems in the part."""
    acc_before: Fraction | None
    """Mean base accuracy over these problems (``None`` when there are none)."""
    acc_after: Fraction | None
    """Mean trained accuracy over these problems."""
    contribution: Fraction
    """``(n_problems / N) * (acc_after - acc_before)``: this part of the gain, exact (0 when empty)."""
    interval: stats.Interval
    """Percentile bootstrap interval of :attr:`contribution` (problems resampled)."""
    share: Fraction | None
    """``contribution / gain``; ``None`` when the gain is 0 (can be negative or above 1)."""

    @property
    def label(self) -> str:
        """``degenerate`` (base class), ``-> clean`` (trained class) or ``degenerate -> clean``."""
        if self.after is None:
            return str(self.before)
        if self.before is None:
            return f"-> {self.after}"
        return f"{self.before} -> {self.after}"


@dataclass(frozen=True)
class CleanGain:
    """The gain on the problems whose base response was clean language with a boxed answer."""

    n_problems: int
    """Problems whose base class is ``clean``."""
    gain: Fraction | None
    """Mean of ``acc_after - acc_before`` over them; ``None`` when there are none."""
    interval: stats.Interval | None
    """Paired interval (:func:`~rlvr_audit.analysis.stats.paired_wilson_ci`); ``None`` without
    such problems or when the samples per problem differ."""
    p_value: float | None
    """Exact paired test of no difference (:func:`~rlvr_audit.analysis.stats.paired_test`)."""
    test: str | None
    """Which test gave :attr:`p_value` (McNemar's exact test with one sample per problem)."""


@dataclass(frozen=True)
class GainAnatomy:
    """A paired gain split by behaviour class (see the module docstring)."""

    base_unit: str
    """Unit key of the base (before) side."""
    rlvr_unit: str
    """Unit key of the trained (after) side."""
    base_checkpoint: str
    """Checkpoint id of the base side."""
    rlvr_checkpoint: str
    """Checkpoint id of the trained side."""
    definition: str
    """Code definition of the ``code`` class."""
    n_problems: int
    """Problems both units have (``N``)."""
    acc_before: Fraction
    """Base accuracy over them (mean per-problem accuracy)."""
    acc_after: Fraction
    """Trained accuracy over them."""
    gain_interval: stats.Interval
    """Percentile bootstrap interval of the gain, on the parts' resampling plan."""
    by_base: tuple[AnatomyPart, ...]
    """One part per base class, in :data:`BEHAVIOUR_CLASSES` order (empty ones included)."""
    by_rlvr: tuple[AnatomyPart, ...]
    """One part per trained class, in the same order."""
    transitions: tuple[AnatomyPart, ...]
    """One cell per (base class, trained class), base class major, all 25."""
    clean: CleanGain
    """The gain on problems where the base response was clean."""
    truncation_unknown_base: int
    """Base responses whose truncation is unknown (imported: no finish reason, no token count)."""
    truncation_unknown_rlvr: int
    """Trained responses whose truncation is unknown."""
    problems: tuple[ProblemAnatomy, ...] = field(repr=False)
    """Per problem, in sorted id order."""

    @property
    def gain(self) -> Fraction:
        """``acc_after - acc_before``, exact (equals the sum of every set of parts)."""
        return self.acc_after - self.acc_before

    def base_part(self, cls: BehaviourClass) -> AnatomyPart:
        """The part of base class ``cls``."""
        return self.by_base[BEHAVIOUR_CLASSES.index(cls)]

    def rlvr_part(self, cls: BehaviourClass) -> AnatomyPart:
        """The part of trained class ``cls``."""
        return self.by_rlvr[BEHAVIOUR_CLASSES.index(cls)]

    def cell(self, before: BehaviourClass, after: BehaviourClass) -> AnatomyPart:
        """The transition cell ``before -> after``."""
        n = len(BEHAVIOUR_CLASSES)
        return self.transitions[BEHAVIOUR_CLASSES.index(before) * n + BEHAVIOUR_CLASSES.index(after)]

    @property
    def degenerate_or_truncated(self) -> Fraction:
        """The part of the gain from problems whose base response was degenerate or truncated."""
        return sum((self.base_part(c).contribution for c in DEGENERATE_OR_TRUNCATED), Fraction(0))

    @property
    def n_degenerate_or_truncated(self) -> int:
        """Problems whose base response was degenerate or truncated."""
        return sum(self.base_part(c).n_problems for c in DEGENERATE_OR_TRUNCATED)


@dataclass(frozen=True)
class ComparisonAnatomy:
    """The gain anatomy of one RLVR-vs-base comparison of a report."""

    comparison: Comparison
    """The comparison (units, task, template, grader, its own interval and test)."""
    anatomy: GainAnatomy
    """Its anatomy."""
    family: str
    """Family of the trained checkpoint."""
    reward: str | None
    """Its RLVR reward, when registered."""
    step: int | None
    """Its training step, when registered."""
    protocol: str
    """Sampling protocol of both units, in words."""


def gain_anatomy(
    base: Iterable[Generation],
    rlvr: Iterable[Generation],
    *,
    base_correct: Correctness,
    rlvr_correct: Correctness,
    rng: np.random.Generator,
    n_resamples: int = 10_000,
    level: float = 0.95,
    definition: str = DEFAULT_DEFINITION,
    base_behaviours: Behaviours | None = None,
    rlvr_behaviours: Behaviours | None = None,
) -> GainAnatomy:
    """The gain anatomy of a trained unit against its base on their shared problems.

    Args:
        base: The base unit's generations (the *before* side).
        rlvr: The trained unit's generations (the *after* side).
        base_correct: ``{(problem_id, sample_idx): bool}`` for every base generation.
        rlvr_correct: The same for every trained generation.
        rng: The bootstrap's generator (the parts' intervals and, for several samples per
            problem, the permutation test on clean problems).
        n_resamples: Bootstrap replicates.
        level: Confidence level.
        definition: Code definition of the ``code`` class.
        base_behaviours: Already computed response behaviours of the base generations, by
            ``(problem_id, sample_idx)``; missing ones are computed here.
        rlvr_behaviours: The same for the trained generations.

    Problems present in one unit only are left out. Raises ValueError for empty or mixed-unit
    inputs, duplicate samples, missing correctness, both sides the same unit, no shared problem,
    bad ``n_resamples`` or ``level``; UnknownNameError for an unknown ``definition``. The records
    become arrays and go to :func:`gain_anatomy_columns` (same result, same random draws).
    """
    get_definition(definition)
    stats.check_bootstrap_options(n_resamples=n_resamples, level=level, method="percentile")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator; got {rng!r}")
    before_unit = _group(base, "base", base_behaviours)
    after_unit = _group(rlvr, "rlvr", rlvr_behaviours)
    if before_unit.unit_key == after_unit.unit_key:
        raise ValueError(f"base and rlvr are the same unit ({before_unit.unit_key}); pass two different units")
    before_ok = _correct_of(before_unit, base_correct, "base_correct")
    after_ok = _correct_of(after_unit, rlvr_correct, "rlvr_correct")
    return gain_anatomy_columns(
        _columns_of(before_unit),
        np.array([ok for row in before_ok for ok in row], dtype=bool),
        _columns_of(after_unit),
        np.array([ok for row in after_ok for ok in row], dtype=bool),
        rng=rng,
        n_resamples=n_resamples,
        level=level,
        definition=definition,
    )


def response_classes(cols: ResponseColumns, definition: str = DEFAULT_DEFINITION) -> npt.NDArray[np.int64]:
    """Per response, the index in :data:`BEHAVIOUR_CLASSES` of its class
    (:func:`~rlvr_audit.analysis.behaviour.behaviour_class`, on the arrays)."""
    if definition not in cols.code:
        raise ValueError(f"unit {cols.unit_key} has no code column for definition {definition!r}")
    index = {c: i for i, c in enumerate(BEHAVIOUR_CLASSES)}
    # the first class that applies: the rules in reverse order, each overriding the later ones
    out = np.full(len(cols), index["clean"], dtype=np.int64)
    out[cols.code[definition]] = index["code"]
    out[cols.boxed_nothing] = index["no_answer"]
    out[cols.truncated] = index["truncated"]
    out[cols.repetition] = index["degenerate"]
    return out


@dataclass(frozen=True)
class _Side:
    """One unit's problems as arrays (problem order: sorted ids)."""

    cls: npt.NDArray[np.int64]
    """Per problem, its class's index in :data:`BEHAVIOUR_CLASSES`."""
    right: npt.NDArray[np.int64]
    """Per problem, samples graded correct."""
    total: npt.NDArray[np.int64]
    """Per problem, samples."""
    unknown: int
    """Responses whose truncation is unknown."""


def _side(cols: ResponseColumns, correct: npt.NDArray[np.bool_], definition: str, name: str) -> _Side:
    n = len(cols)
    if n == 0:
        raise ValueError(f"{name} is empty: no responses given")
    correct = np.asarray(correct)
    if correct.dtype != np.bool_ or correct.shape != (n,):
        raise ValueError(f"{name} correctness must be {n} bools, one per response; got {correct.dtype} {correct.shape}")
    order = np.lexsort((cols.sample_idx, cols.row))
    row, idx = cols.row[order], cols.sample_idx[order]
    dup = (row[1:] == row[:-1]) & (idx[1:] == idx[:-1])
    if dup.any():
        at = int(np.flatnonzero(dup)[0]) + 1
        raise ValueError(f"{name}: problem {cols.problem_ids[row[at]]!r} has two responses for sample {idx[at]}")
    k, p = len(BEHAVIOUR_CLASSES), len(cols.problem_ids)
    counts = np.bincount(cols.row * k + response_classes(cols, definition), minlength=p * k).reshape(p, k)
    return _Side(
        cls=counts.argmax(axis=1),  # the most frequent class; a tie: the first in BEHAVIOUR_CLASSES
        right=np.bincount(cols.row[correct], minlength=p).astype(np.int64),
        total=np.bincount(cols.row, minlength=p).astype(np.int64),
        unknown=int(n - np.count_nonzero(cols.truncation_known)),
    )


def _exact_sum(num: npt.NDArray[np.int64], den: npt.NDArray[np.int64]) -> Fraction:
    """``sum(Fraction(num[i], den[i]))``, summed per distinct denominator."""
    total = Fraction(0)
    for d in np.unique(den).tolist():
        total += Fraction(int(num[den == d].sum()), d)
    return total


def gain_anatomy_columns(
    base: ResponseColumns,
    base_correct: npt.NDArray[np.bool_],
    rlvr: ResponseColumns,
    rlvr_correct: npt.NDArray[np.bool_],
    *,
    rng: np.random.Generator,
    n_resamples: int = 10_000,
    level: float = 0.95,
    definition: str = DEFAULT_DEFINITION,
) -> GainAnatomy:
    """:func:`gain_anatomy` from each unit's classified responses as arrays (what the report reads
    from the store's column cache) and their correctness, one bool per response in the columns'
    order; the same result and the same random draws as the record path.

    Raises ValueError for empty sides, duplicate samples, correctness of the wrong shape, both
    sides the same unit, no shared problem, a missing code column, bad ``n_resamples`` or
    ``level``; UnknownNameError for an unknown ``definition``.
    """
    get_definition(definition)
    stats.check_bootstrap_options(n_resamples=n_resamples, level=level, method="percentile")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator; got {rng!r}")
    if base.unit_key == rlvr.unit_key:
        raise ValueError(f"base and rlvr are the same unit ({base.unit_key}); pass two different units")
    b_side = _side(base, base_correct, definition, "base")
    t_side = _side(rlvr, rlvr_correct, definition, "rlvr")
    t_index = {pid: i for i, pid in enumerate(rlvr.problem_ids)}
    shared = sorted(set(base.problem_ids) & set(t_index))
    if not shared:
        raise ValueError(
            f"base ({base.unit_key}) and rlvr ({rlvr.unit_key}) share no problem; "
            "a gain anatomy needs the same problems on both sides"
        )
    b_index = {pid: i for i, pid in enumerate(base.problem_ids)}
    bi = np.array([b_index[p] for p in shared], dtype=np.int64)
    ti = np.array([t_index[p] for p in shared], dtype=np.int64)
    b_cls, t_cls = b_side.cls[bi], t_side.cls[ti]
    b_num, b_den = b_side.right[bi], b_side.total[bi]
    t_num, t_den = t_side.right[ti], t_side.total[ti]
    classes = BEHAVIOUR_CLASSES
    problems = tuple(
        ProblemAnatomy(p, classes[b], classes[t], Fraction(bn, bd), Fraction(tn, td))
        for p, b, t, bn, bd, tn, td in zip(
            shared,
            b_cls.tolist(),
            t_cls.tolist(),
            b_num.tolist(),
            b_den.tolist(),
            t_num.tolist(),
            t_den.tolist(),
            strict=True,
        )
    )
    n = len(shared)
    acc_before = _exact_sum(b_num, b_den) / n
    acc_after = _exact_sum(t_num, t_den) / n
    gain = acc_after - acc_before
    groups: list[tuple[BehaviourClass | None, BehaviourClass | None]] = [(c, None) for c in classes]
    groups += [(None, c) for c in classes]
    groups += [(b, a) for b in classes for a in classes]
    # float(acc_after - acc_before) per problem: one correctly rounded division of the exact
    # numerator by the exact denominator (both far below 2**53), as Fraction.__float__ gives
    diff = (t_num * b_den - b_num * t_den).astype(np.float64) / (t_den * b_den).astype(np.float64)
    columns = np.zeros((n, len(groups) + 1))
    masks: list[npt.NDArray[np.bool_]] = []
    for j, (b, a) in enumerate(groups):
        mask = np.ones(n, dtype=bool)
        if b is not None:
            mask &= b_cls == classes.index(b)
        if a is not None:
            mask &= t_cls == classes.index(a)
        masks.append(mask)
        columns[:, j] = diff * mask.astype(np.float64)
    columns[:, -1] = diff
    reps = stats.ResamplingPlan(n, n_resamples, rng=rng).replicates(columns)
    alpha = (1.0 - level) / 2.0
    lows, highs = np.quantile(reps, [alpha, 1.0 - alpha], axis=0)
    ses = reps.std(axis=0, ddof=1) if n_resamples > 1 else np.zeros(columns.shape[1])

    def interval(j: int, value: Fraction) -> stats.Interval:
        return stats.Interval(float(value), float(lows[j]), float(highs[j]), level, PART_METHOD, se=float(ses[j]))

    parts: list[AnatomyPart] = []
    for j, ((b, a), mask) in enumerate(zip(groups, masks, strict=True)):
        m = int(np.count_nonzero(mask))
        before_sum = _exact_sum(b_num[mask], b_den[mask])
        after_sum = _exact_sum(t_num[mask], t_den[mask])
        contribution = (after_sum - before_sum) / n
        parts.append(
            AnatomyPart(
                before=b,
                after=a,
                n_problems=m,
                acc_before=before_sum / m if m else None,
                acc_after=after_sum / m if m else None,
                contribution=contribution,
                interval=interval(j, contribution),
                share=contribution / gain if gain else None,
            )
        )
    k = len(classes)
    clean = b_cls == classes.index("clean")
    return GainAnatomy(
        base_unit=base.unit_key,
        rlvr_unit=rlvr.unit_key,
        base_checkpoint=base.checkpoint_id,
        rlvr_checkpoint=rlvr.checkpoint_id,
        definition=definition,
        n_problems=n,
        acc_before=acc_before,
        acc_after=acc_after,
        gain_interval=interval(len(groups), gain),
        by_base=tuple(parts[:k]),
        by_rlvr=tuple(parts[k : 2 * k]),
        transitions=tuple(parts[2 * k :]),
        clean=_clean_gain(
            parts[classes.index("clean")],
            (base, base_correct, bi[clean]),
            (rlvr, rlvr_correct, ti[clean]),
            rng=rng,
            n_resamples=n_resamples,
            level=level,
        ),
        truncation_unknown_base=b_side.unknown,
        truncation_unknown_rlvr=t_side.unknown,
        problems=problems,
    )


def _matrix(
    cols: ResponseColumns, correct: npt.NDArray[np.bool_], rows: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_] | None:
    """The correctness of problems ``rows`` (in that order), one row of samples each, in sample
    order; ``None`` when their numbers of samples differ."""
    order = np.lexsort((cols.sample_idx, cols.row))
    row, ok = cols.row[order], np.asarray(correct)[order]
    sizes = np.bincount(row, minlength=len(cols.problem_ids))[rows]
    if np.any(sizes != sizes[0]):
        return None
    starts = np.searchsorted(row, rows)
    return ok[starts[:, None] + np.arange(int(sizes[0]))[None, :]]


def _clean_gain(
    part: AnatomyPart,
    before: tuple[ResponseColumns, npt.NDArray[np.bool_], npt.NDArray[np.int64]],
    after: tuple[ResponseColumns, npt.NDArray[np.bool_], npt.NDArray[np.int64]],
    *,
    rng: np.random.Generator,
    n_resamples: int,
    level: float,
) -> CleanGain:
    """The gain on the problems of base class ``clean`` (``part``; ``before`` and ``after``: each
    unit's columns, correctness and the rows of those problems)."""
    if not part.n_problems:
        return CleanGain(0, None, None, None, None)
    assert part.acc_before is not None and part.acc_after is not None
    gain = part.acc_after - part.acc_before
    bm, tm = _matrix(*before), _matrix(*after)
    if bm is None or tm is None:  # ragged: no matrix test
        return CleanGain(part.n_problems, gain, None, None, None)
    iv = stats.paired_wilson_ci(bm, tm, level=level)
    test = stats.paired_test(bm, tm, rng=rng, n_resamples=n_resamples)
    return CleanGain(part.n_problems, gain, iv, test.p_value, test.test)
