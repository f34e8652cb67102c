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

from ..core.records import Comparison, Generation
from . import stats
from .behaviour import (
    BEHAVIOUR_CLASSES,
    DEFAULT_DEFINITION,
    BehaviourClass,
    behaviour_class,
    get_definition,
    problem_class,
)
from .behaviour_stats import Behaviours, Correctness, _correct_of, _group

__all__ = [
    "DEGENERATE_OR_TRUNCATED",
    "PART_METHOD",
    "AnatomyPart",
    "CleanGain",
    "ComparisonAnatomy",
    "GainAnatomy",
    "ProblemAnatomy",
    "gain_anatomy",
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


def _mean(values: list[Fraction]) -> Fraction | None:
    return sum(values, Fraction(0)) / len(values) if values else None


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
    bad ``n_resamples`` or ``level``; UnknownNameError for an unknown ``definition``.
    """
    get_definition(definition)
    stats.check_bootstrap_options(n_resamples=n_resamples, level=level, method="percentile")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator; got {rng!r}")
    before_unit = _group(base, "base", base_behaviours)
    after_unit = _group(rlvr, "rlvr", rlvr_behaviours)
    if before_unit.unit_key == after_unit.unit_key:
        raise ValueError(f"base and rlvr are the same unit ({before_unit.unit_key}); pass two different units")
    sides = []
    unknown = []
    for unit, correct, name in (
        (before_unit, base_correct, "base_correct"),
        (after_unit, rlvr_correct, "rlvr_correct"),
    ):
        right = _correct_of(unit, correct, name)
        rows: dict[str, tuple[BehaviourClass, Fraction, list[bool]]] = {}
        n_unknown = 0
        for pid, responses, oks in zip(unit.problem_ids, unit.responses, right, strict=True):
            classes = [behaviour_class(b, definition) for _, b in responses]
            n_unknown += sum(not b.flags.truncation_known for _, b in responses)
            rows[pid] = (problem_class(classes), Fraction(sum(oks), len(oks)), oks)
        sides.append(rows)
        unknown.append(n_unknown)
    before, after = sides
    shared = sorted(set(before) & set(after))
    if not shared:
        raise ValueError(
            f"base ({before_unit.unit_key}) and rlvr ({after_unit.unit_key}) share no problem; "
            "a gain anatomy needs the same problems on both sides"
        )
    problems = tuple(ProblemAnatomy(p, before[p][0], after[p][0], before[p][1], after[p][1]) for p in shared)
    n = len(problems)
    acc_before = sum((p.acc_before for p in problems), Fraction(0)) / n
    acc_after = sum((p.acc_after for p in problems), Fraction(0)) / n
    gain = acc_after - acc_before
    groups: list[tuple[BehaviourClass | None, BehaviourClass | None]] = [(c, None) for c in BEHAVIOUR_CLASSES]
    groups += [(None, c) for c in BEHAVIOUR_CLASSES]
    groups += [(b, a) for b in BEHAVIOUR_CLASSES for a in BEHAVIOUR_CLASSES]
    diff = np.array([float(p.acc_after - p.acc_before) for p in problems])
    columns = np.zeros((n, len(groups) + 1))
    members_of: list[list[ProblemAnatomy]] = []
    for j, (b, a) in enumerate(groups):
        mask = [(b is None or p.before == b) and (a is None or p.after == a) for p in problems]
        members_of.append([p for p, m in zip(problems, mask, strict=True) if m])
        columns[:, j] = diff * np.array(mask, dtype=np.float64)
    columns[:, -1] = diff
    reps = stats.ResamplingPlan(n, n_resamples, rng=rng).replicates(columns)
    alpha = (1.0 - level) / 2.0
    lows, highs = np.quantile(reps, [alpha, 1.0 - alpha], axis=0)
    ses = reps.std(axis=0, ddof=1) if n_resamples > 1 else np.zeros(columns.shape[1])

    def interval(j: int, value: Fraction) -> stats.Interval:
        return stats.Interval(float(value), float(lows[j]), float(highs[j]), level, PART_METHOD, se=float(ses[j]))

    parts: list[AnatomyPart] = []
    for j, ((b, a), members) in enumerate(zip(groups, members_of, strict=True)):
        contribution = sum((p.acc_after - p.acc_before for p in members), Fraction(0)) / n
        parts.append(
            AnatomyPart(
                before=b,
                after=a,
                n_problems=len(members),
                acc_before=_mean([p.acc_before for p in members]),
                acc_after=_mean([p.acc_after for p in members]),
                contribution=contribution,
                interval=interval(j, contribution),
                share=contribution / gain if gain else None,
            )
        )
    k = len(BEHAVIOUR_CLASSES)
    return GainAnatomy(
        base_unit=before_unit.unit_key,
        rlvr_unit=after_unit.unit_key,
        base_checkpoint=before_unit.checkpoint_id,
        rlvr_checkpoint=after_unit.checkpoint_id,
        definition=definition,
        n_problems=n,
        acc_before=acc_before,
        acc_after=acc_after,
        gain_interval=interval(len(groups), gain),
        by_base=tuple(parts[:k]),
        by_rlvr=tuple(parts[k : 2 * k]),
        transitions=tuple(parts[2 * k :]),
        clean=_clean_gain(problems, before, after, rng=rng, n_resamples=n_resamples, level=level),
        truncation_unknown_base=unknown[0],
        truncation_unknown_rlvr=unknown[1],
        problems=problems,
    )


def _clean_gain(
    problems: tuple[ProblemAnatomy, ...],
    before: dict[str, tuple[BehaviourClass, Fraction, list[bool]]],
    after: dict[str, tuple[BehaviourClass, Fraction, list[bool]]],
    *,
    rng: np.random.Generator,
    n_resamples: int,
    level: float,
) -> CleanGain:
    clean = [p for p in problems if p.before == "clean"]
    if not clean:
        return CleanGain(0, None, None, None, None)
    gain = sum((p.acc_after - p.acc_before for p in clean), Fraction(0)) / len(clean)
    b = [before[p.problem_id][2] for p in clean]
    t = [after[p.problem_id][2] for p in clean]
    if len({len(r) for r in b}) > 1 or len({len(r) for r in t}) > 1:  # ragged: no matrix test
        return CleanGain(len(clean), gain, None, None, None)
    bm, tm = np.array(b, dtype=bool), np.array(t, dtype=bool)
    iv = stats.paired_wilson_ci(bm, tm, level=level)
    test = stats.paired_test(bm, tm, rng=rng, n_resamples=n_resamples)
    return CleanGain(len(clean), gain, iv, test.p_value, test.test)
