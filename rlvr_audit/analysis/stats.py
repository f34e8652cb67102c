"""Statistics over graded samples: accuracy estimands, bootstrap intervals, paired tests.

Data model
----------
Data enters as a *correctness matrix*: a bool (or 0/1) array of shape ``(n_problems, k)``
whose row ``i`` holds the verdicts of the ``k`` samples drawn for problem ``i`` (``True`` =
the grader's verdict was ``correct``; every other verdict is a failure, see
:data:`rlvr_audit.core.records.Verdict`). :func:`per_problem_matrix` builds one from
:class:`~rlvr_audit.core.records.Grade` records. Every problem must have the same ``k``: ragged
input is a ValueError naming the first problem that differs, never padded or truncated.
Matrices used together (a paired comparison, the units of one :class:`ResamplingPlan`) must
hold the same problems in the same rows; :func:`align_problems` restricts two units to the
problems both have and refuses units that share none.

Estimands
---------
Problems are treated as a sample from a population of problems, and the samples of one
problem as draws from that problem's success probability ``p_i``.

- ``avg@k``: the expected accuracy of one sample on a random problem, ``E[p_i]``. Estimated
  by the mean over problems of each problem's mean over its ``k`` samples
  (:func:`avg_at_k`).
- ``pass@j`` (``j <= k``): the probability that at least one of ``j`` samples of a random
  problem is correct, ``E[1 - (1 - p_i)^j]``. Estimated by the mean over problems of the
  unbiased per-problem estimator of Chen et al. (2021) (:func:`pass_at_k`,
  :func:`pass_at_k_matrix`).
- ``maj@k``: the probability that the majority vote over ``k`` samples is correct
  (:func:`maj_at_k`; input is per-problem ``(extracted answer, correct)`` lists).
- Paired difference: for two systems evaluated on the same problems,
  ``delta = E[score_t,i - score_b,i]`` where ``score`` is the per-problem estimate above.
  Estimated by ``avg(treatment) - avg(baseline)`` over the shared problems.

Intervals
---------
Problems are the unit of every interval: a problem's ``k`` samples are correlated through
``p_i`` and are never treated as independent draws. Three methods (:data:`CI_METHODS`):

- ``wilson`` (the default, :data:`DEFAULT_CI_METHOD`): for one accuracy, the Wilson score
  interval of a proportion on an *effective number of problems* (:func:`wilson_ci`); for a
  paired gain, the MOVER combination of the two sides' Wilson intervals with the correlation of
  their per-problem scores (:func:`paired_wilson_ci`). No resampling: a function of the data.
- ``percentile``: cluster bootstrap, the ``(1 -+ level) / 2`` quantiles of the replicates
  (``np.quantile`` with linear interpolation, as ``scipy.stats.bootstrap(method='percentile')``).
- ``bca``: cluster bootstrap, bias-corrected and accelerated (as ``method='BCa'``).

The bootstrap replicates draw ``n_problems`` rows with replacement and recompute the mean of
the per-problem scores. Both bootstrap intervals give zero width when every problem scores the
same (e.g. 0 of n correct: ``[0, 0]``).

Why ``wilson`` is the default. At AIME size (30 problems) the bootstrap distribution of a mean
carried by a handful of informative problems is too narrow and too discrete: the percentile
interval covers 81.5% at 5.4% accuracy and 91.8% at 12% (30 x 8, icc 0.7), BCa 84.9% / 94.5%.
The Wilson score interval is the standard remedy for small binomial samples (Brown, Cai &
DasGupta 2001): its variance is evaluated at the hypothesised proportion, so it is skewed
towards 0.5 near the edges instead of collapsing. For clustered outcomes it is applied to an
effective sample size ``n_eff = n / d`` (Kish's design effect; Korn & Graubard 1998 use the same
effective size for survey proportions), where ``d`` is the per-problem scores' variance relative
to the largest a [0, 1] score with that mean can have (1 when each problem is all-or-nothing,
about ``1/k`` for ``k`` independent samples of equally hard problems). One change makes it hold
at 30 problems: ``d`` is shrunk towards the worst case by one pseudo-problem,
``d = (e rho + 1) / (e + 1)`` with ``e`` the informative problems (see :func:`wilson_ci`).
With one or two problems holding all the successes the observed spread says nothing about how
clustered the successes are; without the pseudo-problem the interval covered 65% of the
benchmarks with exactly one informative problem (30 x 8, icc 0.5, 3% accuracy) and 84-90%
overall at 3-5.4% accuracy (icc 0.3-0.7); a Student-t quantile instead (Korn & Graubard's
degrees-of-freedom correction) left it at 89-92%. The gain interval uses MOVER (Zou &
Donner 2008; for one sample per problem it is Newcombe's 1998 method 10, among the intervals
Fagerland, Lydersen & Laake 2014 recommend for paired proportions): it inherits the Wilson
intervals' behaviour near 0 and 1, and the pairing enters through the correlation.

Coverage at the 95% level (``benchmarks/stats_coverage.py``; simulated benchmarks with
``p_i ~ Beta`` of mean the true accuracy and intra-class correlation ``icc``, 4,000 per cell;
``icc = 0.7`` is :data:`DEFAULT_PROBLEM_ICC` and reproduces the issue's percentile figures;
``tests/test_stats_theory.py`` re-checks the required cells on every run):

==========================  =============================  ==========================================
cell                        ``wilson``                     percentile / BCa
==========================  =============================  ==========================================
accuracy, 30 x 8, 3-97%     93.5-96.9% (icc 0.7),          67.7-93.9% / 70.3-96.0% (icc 0.7)
                            94.0-96.6% (0.9), 94.2-97.3%
                            (0.5), 95.2-97.9% (0.3)
accuracy, 500 x 1, 3-97%    93.7-96.3% (exact, every       92.4-96.7% / 93.2-97.2% (exact)
                            0.1 point)
accuracy, 83 x 8, 3-97%     94.2-96.3% (icc 0.3, 0.7)      88.6-95.1% / 91.1-95.7%
accuracy, 500 x 4, 1-97%    94.2-95.8% (icc 0.3, 0.7)      93.2-95.6% / 94.3-96.0%
accuracy, 30 x 1, 3-97%     91.9-98.0% (exact)             58.7-96.5% / 53.9-98.6% (exact)
gain, 30 x 8, base 10-87%,  93.7-96.8% (icc 0.5, 0.7),      83.7-99.2% / 83.2-95.8% (mostly < 93%)
gains 0, 5, 10 points       93.8-97.4% (0.9); base 3-5.4%:
                            95.8-99.1%
gain, 500 x 1, base 3-87%   94.2-96.0%                     94.3-96.3% / 94.1-96.1%
==========================  =============================  ==========================================

Where coverage leaves 93-97%, and why:

- Thirty problems, accuracy (or base accuracy) below about 6% or above 94%: ``wilson`` covers up
  to 97.9% (up to 99.1% for gains). Such benchmarks have 0-2 problems with any success; in
  simulation the upper end never missed there (the bound has to cover the truth when every
  problem fails, 1-20% of the draws), so only the lower end misses, 2-5%. The exact paired
  test shows the same discreteness: under no gain the sign-flip test rejects in 0-2% of these
  benchmarks. Near-homogeneous difficulty (icc 0.1, not what math benchmarks look like) widens
  this to accuracies below 10% and above 90% (up to 98.4%): the pseudo-problem assumes
  clustering that the data cannot rule out.
- One sample on 30 problems (greedy AIME): 91.9-98.0%. Thirty Bernoulli outcomes are too
  discrete for the usual intervals to stay within 93-97% at every accuracy (exact coverage over
  3-97%: Clopper-Pearson 95.4-99.5%, Agresti-Coull 93.4-98.8%, Jeffreys 88.9-98.8%).

Each interval carries :data:`INTERVAL_FLAGS` for the data conditions under which coverage is
not established by the data (``no-variation``: every problem scored the same, e.g. 0 of n;
``few-informative``: fewer than :data:`FEW_INFORMATIVE` problems off the boundary;
``no-discordance`` / ``few-discordant`` for gains); the report prints them beside the cell.

Interval against exact test. The paired tests below (McNemar's exact test, the sign-flip
test) and the gain interval are different procedures and can disagree about significance. The
test conditions on the problems whose scores differ and asks whether the signs of the
differences are exchangeable; its level is guaranteed, and being exact and discrete it is
conservative (with ``m`` differing problems it cannot reach p < 0.05 below ``m = 6``). The
interval estimates the mean gain from a variance model that also uses the samples within a
problem, so with ``k`` samples it can call a gain carried by four problems significant, and it
can miss one the test finds. Measured disagreement (the share of simulated benchmarks where
exactly one of the two calls the gain significant), ``benchmarks/stats_coverage.py``: 500 x 1,
0-4.3% (0.8-1.9% under no gain); 30 x 8, 0.9-3.5% under no gain, 1.6-10.2% for 5- and
10-point gains at base accuracies 10-80%, up to 20% for 10-point gains at 3% or 87% (a gain carried by a few
problems: the interval calls it on fewer problems than the test can, the test calls some the
interval does not). Under no gain the interval excludes 0 in at most about 6% of benchmarks and
the test rejects in at most about 5%. The percentile bootstrap, narrower at AIME size, excluded
0 for gains whose exact p was 0.096-0.19. Both are reported; a comparison where they disagree
carries the flag ``test-disagrees`` (:func:`disagrees_with_test`), and a verdict must say
which of the two it rests on.

One plan per table: a :class:`ResamplingPlan` fixes the resampled problems once (as counts,
generated in bounded blocks from its own seed) and serves every unit and every comparison
evaluated on those problems, so comparisons are paired over the same resampled problems and a
whole table is one matrix product. :func:`bootstrap_ci` and :func:`paired_bootstrap_ci` are
the one-cell versions (a fresh plan per call). With ``method="wilson"`` the plan's
:meth:`~ResamplingPlan.intervals_from_scores` computes the same table without resampling.

Tests and multiplicity
----------------------
Paired tests of no difference (:func:`paired_test`): McNemar's exact test for one sample per
problem (:func:`mcnemar_exact`), the paired sign-flip permutation test for ``k`` samples
(:func:`paired_permutation_pvalue`). Over the comparisons of one table, :func:`holm` (family-wise
error) and :func:`benjamini_hochberg` (false discovery rate) adjust the p-values.

Power
-----
:func:`minimum_detectable_effect`, :func:`ci_half_width`, :func:`problems_needed` and
:func:`samples_per_problem_needed` share one documented variance model (between-problem
heterogeneity ``problem_icc``, base/treatment correlation ``pair_correlation``).
:func:`seed_spread` summarises runs that differ only in their seed.

Randomness comes only from the ``rng`` argument, a :class:`numpy.random.Generator`; the
same generator state, data and ``n_resamples`` give the same result.

Input validation happens in the ``_check_*`` / ``_as_*`` functions of this module;
every public function calls them first and they raise :class:`ValueError` (bad values:
empty, not 2-D, ragged, NaN, not 0/1, level outside (0, 1), ...) or :class:`TypeError` (an
argument of the wrong type, e.g. ``rng`` not a Generator) with a message that names the
offending input and, for data, the problem (row) at fault.

One module, one concept (over 800 lines): the statistics every analysis uses, validated in one
place (as scipy's ``stats/_resampling.py``, the model for it): estimands, the shared resampling
plan, paired tests, multiplicity, power; their checks and conventions are shared.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from ..core.records import Grade

__all__ = [
    "CI_METHODS",
    "CI_METHOD_TEXT",
    "DEFAULT_CI_METHOD",
    "DEFAULT_PAIR_CORRELATION",
    "DEFAULT_PROBLEM_ICC",
    "EXACT_PERMUTATION_MAX",
    "FEW_INFORMATIVE",
    "INTERVAL_FLAGS",
    "MAJ_TIES",
    "MCNEMAR_TEST",
    "RESAMPLING_METHODS",
    "SIGN_FLIP_EXACT_TEST",
    "SIGN_FLIP_MC_TEST",
    "Interval",
    "PairedTest",
    "ResamplingPlan",
    "SeedSpread",
    "TableIntervals",
    "align_problems",
    "avg_at_k",
    "benjamini_hochberg",
    "binomial_two_sided_half",
    "bootstrap_ci",
    "bootstrap_distribution",
    "check_bootstrap_options",
    "ci_half_width",
    "disagrees_with_test",
    "holm",
    "maj_at_k",
    "maj_at_k_scores",
    "mcnemar_counts",
    "mcnemar_exact",
    "minimum_detectable_effect",
    "paired_bootstrap_ci",
    "paired_permutation_pvalue",
    "paired_test",
    "paired_wilson_ci",
    "pass_at_k",
    "pass_at_k_matrix",
    "per_problem_matrix",
    "per_problem_scores",
    "problems_needed",
    "samples_per_problem_needed",
    "seed_spread",
    "wilson_ci",
]

EXACT_PERMUTATION_MAX = 16
""":func:`paired_permutation_pvalue` enumerates all ``2**m`` sign flips when the number ``m``
of problems with a nonzero difference is at most this; otherwise it samples them."""

_CHUNK_ELEMENTS = 1 << 22
"""Upper bound on the elements of one block of resampled indices (32 MiB of int64)."""

BOOTSTRAP_METHOD = "bootstrap-percentile(problems)"
PAIRED_BOOTSTRAP_METHOD = "paired-bootstrap-percentile(problems)"

WILSON_METHOD = "wilson-cluster(problems)"
PAIRED_WILSON_METHOD = "paired-mover-wilson(problems)"

CI_METHODS = ("wilson", "percentile", "bca")
"""Interval methods: the Wilson score interval with a cluster design effect (and its MOVER
paired difference), the percentile bootstrap, and the bias-corrected and accelerated (BCa)
bootstrap. See "Intervals" in the module docstring for when each covers."""

DEFAULT_CI_METHOD = "wilson"
"""The interval the analysis uses unless told otherwise (``--ci-method``)."""

CI_METHOD_TEXT: dict[str, str] = {
    "wilson": "Wilson score intervals over problems with a cluster design effect (MOVER for differences)",
    "percentile": "percentile cluster-bootstrap intervals (problems resampled)",
    "bca": "BCa cluster-bootstrap intervals (problems resampled)",
}
"""What each of :data:`CI_METHODS` is, in words for report text."""

RESAMPLING_METHODS = ("percentile", "bca")
"""The bootstrap methods (:func:`bootstrap_ci`, :func:`paired_bootstrap_ci` accept only these)."""

PSEUDO_PROBLEMS = 1.0
"""Weight of the worst-case pseudo-problem in the Wilson interval's design effect (see
:func:`wilson_ci`)."""

FEW_INFORMATIVE = 5
"""Fewer informative problems than this (problems off the nearer boundary for an estimate,
problems whose score differs between the units for a comparison) raise a flag."""

INTERVAL_FLAGS: dict[str, str] = {
    "no-variation": (
        "every problem has the same score (e.g. 0 of n correct): the data say nothing about the spread; "
        "wilson assumes the worst case (each problem all-or-nothing), bootstrap intervals have zero width"
    ),
    "few-informative": (
        f"fewer than {FEW_INFORMATIVE} problems are off the nearer boundary (not all wrong, or not all right): "
        "the interval's width rests mostly on the assumed worst-case design effect, not on the data"
    ),
    "no-discordance": (
        "no problem's score differs between the two units: the gain interval is the bound on the share of "
        "problems that could differ (wilson), or zero-width (bootstrap)"
    ),
    "few-discordant": (
        f"fewer than {FEW_INFORMATIVE} problems' scores differ between the two units: the gain rests on a handful "
        "of problems"
    ),
    "test-disagrees": (
        "the interval and the exact paired test disagree about significance at this level (one excludes 0, the "
        "other does not reject); neither is wrong: they are different procedures, see rlvr_audit.analysis.stats"
    ),
}
"""Flags an :class:`Interval` (and the Estimate/Comparison built from it) can carry, with their
meaning: conditions under which the stated coverage is not established by the data."""

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Interval:
    """A point estimate with a confidence interval."""

    value: float
    """The point estimate on the observed data (not the mean of the bootstrap replicates)."""
    ci_low: float
    """Lower end of the interval."""
    ci_high: float
    """Upper end of the interval."""
    level: float
    """Confidence level, e.g. 0.95."""
    method: str
    """How the interval was computed, e.g. ``bootstrap-percentile(problems)``."""
    se: float | None = field(default=None, compare=False)
    """Standard error: the standard deviation of the bootstrap replicates (bootstrap methods) or
    the cluster standard error ``sd(per-problem scores) / sqrt(n)`` (``wilson``), where computed."""
    flags: tuple[str, ...] = field(default=(), compare=False)
    """Keys of :data:`INTERVAL_FLAGS` that apply to this interval (empty: none)."""

    @property
    def width(self) -> float:
        """``ci_high - ci_low``."""
        return self.ci_high - self.ci_low


# --------------------------------------------------------------------------------------
# Input validation (the one place)
# --------------------------------------------------------------------------------------


def _ragged_error(name: str, rows: Sequence[object]) -> ValueError | None:
    """A ValueError naming the first row whose length differs from row 0, or ``None``."""
    try:
        lengths = [len(row) for row in rows]  # type: ignore[arg-type]
    except TypeError:
        return None
    for i, length in enumerate(lengths):
        if length != lengths[0]:
            return ValueError(
                f"{name} is ragged: every problem must have the same number of samples k, "
                f"but problem 0 has {lengths[0]} and problem {i} has {length}"
            )
    return None


def _as_correct_matrix(correct: npt.ArrayLike, name: str = "correct") -> BoolArray:
    """Validate a correctness matrix and return it as a bool array ``(n_problems, k)``."""
    try:
        arr = np.asarray(correct)
    except ValueError:  # numpy >= 1.24 refuses ragged nested sequences
        arr = None
    if arr is None or arr.dtype == object:
        rows = list(correct) if isinstance(correct, Iterable) else []
        ragged = _ragged_error(name, rows)
        if ragged is not None:
            raise ragged
        if arr is None:
            raise ValueError(f"{name} must be a 2-D array (n_problems, k) of 0/1 values")
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must hold only bool or 0/1 values; got objects it cannot convert") from None
    if arr.ndim >= 1 and arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: it has no problems (shape {arr.shape})")
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D with shape (n_problems, k); got {arr.ndim}-D shape {arr.shape}"
            + (" (use x[:, None] for one sample per problem)" if arr.ndim == 1 else "")
        )
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has no samples per problem (shape {arr.shape})")
    if arr.dtype == np.bool_:
        return arr
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{name} must hold bool or 0/1 numbers; got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        nan_rows = np.flatnonzero(np.isnan(arr).any(axis=1))
        if nan_rows.size:
            shown = ", ".join(str(i) for i in nan_rows[:5])
            more = f" and {nan_rows.size - 5} more" if nan_rows.size > 5 else ""
            raise ValueError(f"{name} has NaN in problem {shown}{more}")
    bad = (arr != 0) & (arr != 1)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"{name} must hold only 0/1 (or bool) values; problem {i} sample {j} is {arr[i, j]!r}")
    return np.asarray(arr == 1, dtype=np.bool_)


def _as_paired(baseline: npt.ArrayLike, treatment: npt.ArrayLike) -> tuple[BoolArray, BoolArray]:
    """Validate both sides of a paired comparison: same problems (rows), any k each."""
    b = _as_correct_matrix(baseline, "baseline")
    t = _as_correct_matrix(treatment, "treatment")
    if b.shape[0] != t.shape[0]:
        raise ValueError(
            f"baseline has {b.shape[0]} problems and treatment has {t.shape[0]}; a paired "
            "comparison needs the same problems in the same row order "
            "(align them with per_problem_matrix(..., problem_ids=shared_ids))"
        )
    return b, t


def _check_rng(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator, e.g. np.random.default_rng(seed); got {type(rng).__name__}"
        )
    return rng


def _check_n_resamples(n_resamples: object) -> int:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)):
        raise TypeError(f"n_resamples must be a positive integer; got {n_resamples!r}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer; got {n_resamples}")
    return int(n_resamples)


def _check_level(level: object) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating, np.integer)):
        raise TypeError(f"level must be a number in (0, 1); got {level!r}")
    value = float(level)
    if not 0.0 < value < 1.0:  # also refuses NaN
        raise ValueError(f"level must be in (0, 1), e.g. 0.95; got {level!r}")
    return value


_PASS_RE = re.compile(r"pass@([0-9]+)")


def _check_statistic(statistic: object, k: int) -> int | None:
    """Parse ``"avg"`` (returns ``None``) or ``"pass@j"`` with ``1 <= j <= k`` (returns ``j``)."""
    if statistic == "avg":
        return None
    match = _PASS_RE.fullmatch(statistic) if isinstance(statistic, str) else None
    if match is None:
        raise ValueError(f"statistic must be 'avg' or 'pass@j' (e.g. 'pass@4'); got {statistic!r}")
    j = int(match.group(1))
    if not 1 <= j <= k:
        raise ValueError(f"{statistic!r} needs 1 <= j <= k; there are k={k} samples per problem")
    return j


def _check_pass_args(n: object, c: object, k: object) -> tuple[int, int, int]:
    for label, v in (("n", n), ("c", c), ("k", k)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"pass_at_k: {label} must be an integer; got {v!r}")
    n_, c_, k_ = int(n), int(c), int(k)  # type: ignore[call-overload]
    if n_ < 1:
        raise ValueError(f"pass_at_k: n (samples per problem) must be >= 1; got {n_}")
    if not 0 <= c_ <= n_:
        raise ValueError(f"pass_at_k: c (correct samples) must be in [0, n={n_}]; got {c_}")
    if not 1 <= k_ <= n_:
        raise ValueError(f"pass_at_k: k must be in [1, n={n_}]; got k={k_}")
    return n_, c_, k_


# --------------------------------------------------------------------------------------
# From records
# --------------------------------------------------------------------------------------


def per_problem_matrix(
    grades: Iterable[Grade], *, problem_ids: Sequence[str] | None = None
) -> tuple[list[str], BoolArray]:
    """The correctness matrix of one unit under one grader.

    Returns ``(ids, correct)``: ``correct[i, j]`` is whether sample ``j`` of problem ``ids[i]``
    has verdict ``correct``. Rows are ordered by ``problem_ids`` when given (problems not in
    it are left out; use the shared ids of two units to align a paired comparison), otherwise
    by sorted problem id.

    Raises ValueError for: no grades; grades of several units or graders; two grades of one
    sample; a requested problem without grades; problems whose sample indices are not all
    ``0..k-1`` for a common ``k`` (the message names the problem).
    """
    by_problem: dict[str, dict[int, bool]] = {}
    units: set[str] = set()
    graders: set[str] = set()
    for g in grades:
        units.add(g.unit_key)
        graders.add(g.grader_id)
        samples = by_problem.setdefault(g.problem_id, {})
        if g.sample_idx in samples:
            raise ValueError(f"problem {g.problem_id!r} has two grades for sample {g.sample_idx}")
        samples[g.sample_idx] = g.verdict == "correct"
    if not by_problem:
        raise ValueError("no grades given")
    if len(units) > 1:
        raise ValueError(f"grades of several units mixed: {sorted(units)}; pass one unit's grades")
    if len(graders) > 1:
        raise ValueError(f"grades of several graders mixed: {sorted(graders)}; pass one grader's")
    if problem_ids is None:
        ids = sorted(by_problem)
    else:
        ids = list(problem_ids)
        if not ids:
            raise ValueError("problem_ids is empty")
        if len(set(ids)) != len(ids):
            dup = next(p for p in ids if ids.count(p) > 1)
            raise ValueError(f"problem_ids lists {dup!r} more than once")
        missing = [p for p in ids if p not in by_problem]
        if missing:
            shown = ", ".join(repr(p) for p in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise ValueError(f"no grades for problem {shown}{more}")
    k = len(by_problem[ids[0]])
    expected = set(range(k))
    for pid in ids:
        got = by_problem[pid]
        if set(got) != expected:
            raise ValueError(
                f"ragged grades: problem {pid!r} has samples {sorted(got)}, but every problem "
                f"must have samples 0..{k - 1} (k={k}, as problem {ids[0]!r})"
            )
    correct = np.array([[by_problem[pid][j] for j in range(k)] for pid in ids], dtype=np.bool_)
    return ids, correct


# --------------------------------------------------------------------------------------
# Point estimates
# --------------------------------------------------------------------------------------


def avg_at_k(correct: npt.ArrayLike) -> float:
    """``avg@k``: mean over problems of each problem's fraction of correct samples.

    With ``k = 1`` this is plain accuracy. Estimates ``E[p_i]``, the expected accuracy of a
    single sample on a random problem.
    """
    arr = _as_correct_matrix(correct)
    return float(np.mean(arr.mean(axis=1)))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimator of pass@k from ``n`` samples of which ``c`` are correct.

    ``pass@k = 1 - C(n - c, k) / C(n, k)`` (Chen et al. 2021, "Evaluating Large Language
    Models Trained on Code"): the probability that a uniformly random size-``k`` subset of the
    ``n`` samples holds at least one correct one; unbiased for ``1 - (1 - p)^k``. Computed in
    product form ``1 - prod_{i=n-c+1}^{n} (1 - k / i)``, which neither overflows nor loses
    precision for large ``n``. ``pass_at_k(n, c, 1) == c / n``.

    Raises ValueError unless ``1 <= k <= n`` and ``0 <= c <= n``.
    """
    n, c, k = _check_pass_args(n, c, k)
    return _pass_at_k(n, c, k)


def _pass_at_k(n: int, c: int, k: int) -> float:
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=np.float64)))


def _pass_table(n: int, k: int) -> FloatArray:
    """``table[c] = pass_at_k(n, c, k)`` for ``c = 0..n``."""
    return np.array([_pass_at_k(n, c, k) for c in range(n + 1)], dtype=np.float64)


def _per_problem_scores(correct: BoolArray, j: int | None) -> FloatArray:
    """Each problem's score: its mean (``j is None``) or its unbiased pass@j."""
    if j is None:
        return np.asarray(correct.mean(axis=1, dtype=np.float64), dtype=np.float64)
    counts = correct.sum(axis=1)
    return np.asarray(_pass_table(correct.shape[1], j)[counts], dtype=np.float64)


def per_problem_scores(correct: npt.ArrayLike, statistic: str = "avg") -> FloatArray:
    """Each problem's score, shape ``(n_problems,)``: the statistics below are their means.

    ``statistic="avg"``: the fraction of the problem's ``k`` samples that are correct;
    ``"pass@j"``: its unbiased pass@j (:func:`pass_at_k`). Feed these to
    :meth:`ResamplingPlan.intervals_from_scores`.
    """
    arr = _as_correct_matrix(correct)
    return _per_problem_scores(arr, _check_statistic(statistic, arr.shape[1]))


def pass_at_k_matrix(correct: npt.ArrayLike, k: int) -> float:
    """``pass@k`` of a correctness matrix: mean over problems of :func:`pass_at_k`.

    ``correct`` has shape ``(n_problems, n)``; ``k`` must satisfy ``1 <= k <= n``. Estimates
    ``E[1 - (1 - p_i)^k]`` over problems.
    """
    arr = _as_correct_matrix(correct)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"pass_at_k_matrix: k must be an integer; got {k!r}")
    j = _check_statistic(f"pass@{k}", arr.shape[1])
    return float(np.mean(_per_problem_scores(arr, j)))


# --------------------------------------------------------------------------------------
# Bootstrap: one resampling plan per table
# --------------------------------------------------------------------------------------


def _check_method(method: object, allowed: tuple[str, ...] = CI_METHODS) -> str:
    if method not in allowed:
        raise ValueError(f"method must be one of {', '.join(repr(m) for m in allowed)}; got {method!r}")
    return str(method)


def _ndtr(x: FloatArray) -> FloatArray:
    """Standard normal CDF, elementwise."""
    arr = np.asarray(x, dtype=np.float64)
    cdf = NormalDist().cdf
    return np.array([cdf(float(v)) if np.isfinite(v) else float(v > 0) for v in arr.ravel()]).reshape(arr.shape)


def _ndtri(p: FloatArray) -> FloatArray:
    """Standard normal quantile, elementwise, for ``0 < p < 1``."""
    inv = NormalDist().inv_cdf
    return np.array([inv(float(v)) for v in np.ravel(p)], dtype=np.float64).reshape(np.shape(p))


def _sorted_quantiles(sorted_reps: FloatArray, q: FloatArray) -> FloatArray:
    """Per-column quantiles ``q[j]`` of column-sorted replicates ``(B, m)``, numpy's 'linear' rule.

    ``q`` has shape ``(m,)``; the result is ``x[h] + (h - floor h)(x[h + 1] - x[h])`` at
    ``h = q (B - 1)``, what ``np.quantile`` and ``scipy.stats.quantile`` return by default.
    """
    b = sorted_reps.shape[0]
    h = np.clip(q, 0.0, 1.0) * (b - 1)
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, b - 1)
    cols = np.arange(sorted_reps.shape[1])
    x_lo, x_hi = sorted_reps[lo, cols], sorted_reps[hi, cols]
    return np.asarray(x_lo + (h - lo) * (x_hi - x_lo), dtype=np.float64)


def _bca_levels(scores: FloatArray, reps: FloatArray, theta: FloatArray, level: float) -> tuple[FloatArray, FloatArray]:
    """BCa quantile levels ``(alpha_1, alpha_2)`` per column (Efron & Tibshirani 1993, 14.3).

    ``scores`` ``(n, m)`` per-problem scores (the statistic is their column mean), ``reps``
    ``(B, m)`` bootstrap replicates, ``theta`` ``(m,)`` the observed means. Bias correction
    ``z0 = Phi^-1(mid-rank share of replicates below theta)`` (ties count half, as scipy);
    acceleration ``a = sum U^3 / (6 (sum U^2)^(3/2))`` from the jackknife (leave one problem
    out) values ``U_i = (n - 1)(mean of the jackknife means - jackknife mean i)``. Columns
    without spread are handled by the caller.
    """
    n, b = scores.shape[0], reps.shape[0]
    tol = 1e-12 * np.maximum(1.0, np.abs(theta))
    below = np.count_nonzero(reps < theta - tol, axis=0) + np.count_nonzero(reps <= theta + tol, axis=0)
    share = np.clip(below / (2.0 * b), 0.5 / b, 1.0 - 0.5 / b)  # never +-inf (see bca docs)
    z0 = _ndtri(share)
    jack = (scores.sum(axis=0) - scores) / (n - 1)
    u = (n - 1) * (jack.mean(axis=0) - jack)
    den = (u * u).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(den > 0, (u**3).sum(axis=0) / (6.0 * den**1.5), 0.0)
    z_lo = NormalDist().inv_cdf((1.0 - level) / 2.0)
    out = []
    for z in (z_lo, -z_lo):
        num = z0 + z
        denom = 1.0 - a * num
        with np.errstate(invalid="ignore", divide="ignore"):
            adj = np.where(denom > 0, z0 + num / denom, np.sign(num) * np.inf)
        out.append(_ndtr(adj))
    return out[0], out[1]


@dataclass(frozen=True)
class TableIntervals:
    """Intervals of one table computed on one :class:`ResamplingPlan` (see :meth:`ResamplingPlan.intervals`)."""

    units: list[Interval]
    """One interval per unit (column), in input order."""
    pairs: list[Interval]
    """One interval of ``treatment - baseline`` per requested pair, in input order."""


_KEPT_ELEMENTS = 1 << 23
"""Plans of at most this many counts (replicates x problems: 64 MiB as float64) are kept."""
_KEPT_PLANS = 2
"""How many plans' counts are kept (the most recently made)."""
_KEPT_BLOCKS: dict[tuple[object, ...], list[FloatArray]] = {}


class ResamplingPlan:
    """The resampled problems shared by every unit and comparison of one table.

    A plan fixes ``n_resamples`` bootstrap replicates of a benchmark of ``n_problems``
    problems: replicate ``r`` draws ``n_problems`` problem indices uniformly with replacement
    (as ``scipy.stats.bootstrap`` does) and is stored as the count of each problem in it. Every
    unit evaluated on these problems (rows in the same order) is resampled with the same
    replicates, so a paired difference between two units is the difference of their
    replicates: comparisons are paired over the same resampled problems, and a whole table is
    a single matrix product ``counts (B, n) @ scores (n, m) / n``.

    Memory is bounded: counts are generated in blocks of at most ``_CHUNK_ELEMENTS`` elements,
    never all at once, from a seed the plan draws from ``rng`` at construction. Every pass
    over the plan regenerates the same blocks, so calling :meth:`replicates` twice (or for
    different units) sees identical replicates, and results depend only on the state of
    ``rng`` when the plan was made, ``n_problems`` and ``n_resamples``.
    """

    def __init__(self, n_problems: int, n_resamples: int = 10_000, *, rng: np.random.Generator) -> None:
        """Draw the plan's seed from ``rng`` (which advances it).

        Raises TypeError/ValueError for a non-Generator ``rng`` or non-positive sizes.
        """
        if isinstance(n_problems, bool) or not isinstance(n_problems, (int, np.integer)) or n_problems < 1:
            raise ValueError(f"n_problems must be a positive integer; got {n_problems!r}")
        self.n_problems = int(n_problems)
        """Rows (problems) of every matrix the plan resamples."""
        self.n_resamples = _check_n_resamples(n_resamples)
        """Bootstrap replicates."""
        gen = _check_rng(rng)
        self._entropy = [int(x) for x in gen.integers(0, 2**32, size=4, dtype=np.uint64)]

    def __repr__(self) -> str:
        return f"ResamplingPlan(n_problems={self.n_problems}, n_resamples={self.n_resamples})"

    @property
    def block_size(self) -> int:
        """Replicates per generated block (depends on ``n_problems`` only)."""
        return max(1, _CHUNK_ELEMENTS // self.n_problems)

    def count_blocks(self) -> Iterator[npt.NDArray[np.int64]]:
        """The replicates as blocks of counts, shape ``(b, n_problems)``; each row sums to ``n_problems``.

        Row ``r`` of the concatenated blocks says how often each problem was drawn in replicate
        ``r``. The same blocks come back on every call.
        """
        n = self.n_problems
        gen = np.random.default_rng(np.random.SeedSequence(self._entropy))
        block = self.block_size
        for start in range(0, self.n_resamples, block):
            b = min(block, self.n_resamples - start)
            idx = gen.integers(0, n, size=(b, n))
            idx += (np.arange(b, dtype=np.int64) * n)[:, None]
            yield np.bincount(idx.ravel(), minlength=b * n).reshape(b, n)

    def _float_blocks(self) -> Iterable[FloatArray]:
        """:meth:`count_blocks` as float64, kept for the next pass over the same plan (a report
        summarises many units on one problem set: same seed, same counts) when small enough
        (:data:`_KEPT_ELEMENTS`; the last :data:`_KEPT_PLANS` plans). The counts are the same
        either way; only the work of drawing them again is saved."""
        key = (tuple(self._entropy), self.n_problems, self.n_resamples)
        kept = _KEPT_BLOCKS.get(key)
        if kept is not None:
            return kept
        if self.n_problems * self.n_resamples > _KEPT_ELEMENTS:
            return (c.astype(np.float64) for c in self.count_blocks())
        kept = [c.astype(np.float64) for c in self.count_blocks()]
        _KEPT_BLOCKS[key] = kept
        while len(_KEPT_BLOCKS) > _KEPT_PLANS:
            del _KEPT_BLOCKS[next(iter(_KEPT_BLOCKS))]
        return kept

    def replicates(self, scores: npt.ArrayLike) -> FloatArray:
        """Bootstrap replicates of the mean of per-problem ``scores``.

        ``scores`` is ``(n_problems,)`` or ``(n_problems, m)`` (one column per unit, rows the
        plan's problems); returns ``(n_resamples,)`` or ``(n_resamples, m)``: entry ``[r, j]``
        is the mean of column ``j`` over the problems of replicate ``r``.
        """
        s = self._as_scores(scores, "scores")
        flat = s.ndim == 1
        s2 = s[:, None] if flat else s
        out = np.empty((self.n_resamples, s2.shape[1]), dtype=np.float64)
        start = 0
        for counts in self._float_blocks():
            stop = start + counts.shape[0]
            np.matmul(counts, s2, out=out[start:stop])
            start = stop
        out /= self.n_problems
        return out[:, 0] if flat else out

    def _as_scores(self, scores: npt.ArrayLike, name: str) -> FloatArray:
        s = np.asarray(scores, dtype=np.float64)
        if s.ndim not in (1, 2) or s.shape[0] != self.n_problems:
            raise ValueError(
                f"{name} must have one row per problem of the plan ({self.n_problems}); got shape {s.shape}"
            )
        if not np.all(np.isfinite(s)):
            raise ValueError(f"{name} has NaN or infinite values")
        return s

    def intervals_from_scores(
        self,
        scores: npt.ArrayLike,
        *,
        pairs: Sequence[tuple[int, int]] = (),
        level: float = 0.95,
        method: str = "percentile",
    ) -> TableIntervals:
        """Intervals for the column means of ``scores`` ``(n_problems, m)`` and for paired differences.

        Column ``j`` holds one unit's per-problem scores (any statistic that is a mean over
        problems: avg@k, unbiased pass@j, maj@k). ``pairs`` lists ``(baseline, treatment)``
        column indices; pair intervals are of ``mean(treatment) - mean(baseline)``, with
        replicates ``replicates[:, treatment] - replicates[:, baseline]`` (paired by
        construction). ``method``: ``"percentile"`` (the ``(1 -+ level) / 2`` quantiles of the
        replicates), ``"bca"`` (bias-corrected and accelerated; see :func:`bootstrap_ci`) or
        ``"wilson"`` (no resampling: :func:`wilson_ci` per unit, :func:`paired_wilson_ci` per
        pair; needs scores in [0, 1]). One pass over the plan serves every unit and pair. With
        the bootstrap methods a column (or difference) that is the same on every problem gets
        the zero-width interval at its value. Every interval carries its
        :data:`INTERVAL_FLAGS`.
        """
        s = self._as_scores(scores, "scores")
        if s.ndim == 1:
            s = s[:, None]
        lvl = _check_level(level)
        how = _check_method(method)
        m = s.shape[1]
        pair_list = [_check_pair(p, m, i) for i, p in enumerate(pairs)]
        if how == "wilson":
            return _wilson_table(s, pair_list, lvl)
        reps = self.replicates(s)
        if pair_list:
            base_idx = np.array([b for b, _ in pair_list], dtype=np.int64)
            treat_idx = np.array([t for _, t in pair_list], dtype=np.int64)
            all_scores = np.concatenate([s, s[:, treat_idx] - s[:, base_idx]], axis=1)
            all_reps = np.concatenate([reps, reps[:, treat_idx] - reps[:, base_idx]], axis=1)
            theta = np.concatenate([s.mean(axis=0), s[:, treat_idx].mean(axis=0) - s[:, base_idx].mean(axis=0)])
        else:
            all_scores, all_reps, theta = s, reps, s.mean(axis=0)
        low, high, se = _interval_columns(all_scores, all_reps, theta, lvl, how)
        methods = [f"bootstrap-{how}(problems)"] * m + [f"paired-bootstrap-{how}(problems)"] * len(pair_list)
        flags = _unit_flags(s) + _pair_flags(all_scores[:, m:])
        ivs = [
            Interval(float(theta[j]), float(low[j]), float(high[j]), lvl, methods[j], se=float(se[j]), flags=flags[j])
            for j in range(all_scores.shape[1])
        ]
        return TableIntervals(units=ivs[:m], pairs=ivs[m:])

    def intervals(
        self,
        units: Sequence[npt.ArrayLike],
        *,
        pairs: Sequence[tuple[int, int]] = (),
        level: float = 0.95,
        method: str = "percentile",
        statistic: str = "avg",
    ) -> TableIntervals:
        """Intervals of ``statistic`` for many units, and of paired differences, in one pass.

        ``units`` are correctness matrices ``(n_problems, k_u)`` over the plan's problems in
        the same row order (``k_u`` may differ between units; align units with
        :func:`align_problems`). ``statistic`` is ``"avg"`` or ``"pass@j"`` (``j`` at most
        every unit's ``k``). ``pairs`` are ``(baseline, treatment)`` indices into ``units``.
        Errors name the unit (by index) at fault.
        """
        if not len(units):
            raise ValueError("units is empty: give at least one correctness matrix")
        cols = []
        for i, u in enumerate(units):
            arr = _as_correct_matrix(u, f"units[{i}]")
            if arr.shape[0] != self.n_problems:
                raise ValueError(
                    f"units[{i}] has {arr.shape[0]} problems but the plan has {self.n_problems}; every unit of "
                    "a plan must hold the same problems in the same row order (see align_problems)"
                )
            try:
                j = _check_statistic(statistic, arr.shape[1])
            except ValueError as e:
                raise ValueError(f"units[{i}]: {e}") from None
            cols.append(_per_problem_scores(arr, j))
        return self.intervals_from_scores(np.stack(cols, axis=1), pairs=pairs, level=level, method=method)


def check_bootstrap_options(*, n_resamples: int, level: float, method: str) -> None:
    """Validate interval options up front (``method`` one of :data:`CI_METHODS`; the errors of
    :func:`bootstrap_ci` for bad values)."""
    _check_n_resamples(n_resamples)
    _check_level(level)
    _check_method(method)


def _check_pair(pair: object, m: int, i: int) -> tuple[int, int]:
    items: tuple[object, ...] = tuple(pair) if isinstance(pair, (tuple, list)) else ()
    if len(items) != 2:
        raise ValueError(f"pairs[{i}] must be a (baseline, treatment) pair of column indices; got {pair!r}")
    out: list[int] = []
    for label, v in zip(("baseline", "treatment"), items, strict=True):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < m:
            raise ValueError(f"pairs[{i}]: {label} index must be an integer in [0, {m}); got {v!r}")
        out.append(int(v))
    return out[0], out[1]


def _interval_columns(
    scores: FloatArray, reps: FloatArray, theta: FloatArray, level: float, method: str
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(low, high, se)`` per column of replicates ``reps`` ``(B, m)``."""
    b, m = reps.shape
    flat = np.ptp(scores, axis=0) == 0  # every problem the same: no sampling variation
    if method == "bca" and scores.shape[0] > 1:
        q_lo, q_hi = _bca_levels(scores, reps, theta, level)
    else:
        alpha = (1.0 - level) / 2.0
        q_lo, q_hi = np.full(m, alpha), np.full(m, 1.0 - alpha)
    ordered = np.sort(reps, axis=0)
    low = _sorted_quantiles(ordered, q_lo)
    high = _sorted_quantiles(ordered, q_hi)
    se = reps.std(axis=0, ddof=1) if b > 1 else np.zeros(m)
    low, high, se = np.where(flat, theta, low), np.where(flat, theta, high), np.where(flat, 0.0, se)
    return low, high, se


def bootstrap_distribution(
    correct: npt.ArrayLike,
    *,
    rng: np.random.Generator,
    n_resamples: int = 10_000,
    statistic: str = "avg",
) -> FloatArray:
    """The bootstrap replicates behind :func:`bootstrap_ci`, shape ``(n_resamples,)``.

    Replicate ``b`` is the mean of the per-problem scores (``statistic``: ``"avg"`` for each
    problem's mean, ``"pass@j"`` for its unbiased pass@j) over ``n_problems`` problems drawn
    with replacement (a fresh :class:`ResamplingPlan` from ``rng``). Their standard deviation
    is the bootstrap standard error.
    """
    arr = _as_correct_matrix(correct)
    j = _check_statistic(statistic, arr.shape[1])
    plan = ResamplingPlan(arr.shape[0], _check_n_resamples(n_resamples), rng=_check_rng(rng))
    return plan.replicates(_per_problem_scores(arr, j))


def bootstrap_ci(
    correct: npt.ArrayLike,
    *,
    rng: np.random.Generator,
    n_resamples: int = 10_000,
    level: float = 0.95,
    statistic: str = "avg",
    method: str = "percentile",
) -> Interval:
    """Bootstrap interval of ``avg@k`` or ``pass@j``, resampling problems.

    Estimand: ``E[p_i]`` for ``statistic="avg"`` (see :func:`avg_at_k`) or
    ``E[1 - (1 - p_i)^j]`` for ``statistic="pass@j"`` (see :func:`pass_at_k_matrix`), over the
    population of problems the benchmark is taken to sample. ``value`` is the estimate on the
    observed data; ``se`` the standard deviation of the replicates (:func:`bootstrap_distribution`).

    ``method="percentile"``: the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the
    replicates. ``method="bca"``: bias-corrected and accelerated (Efron 1987), the quantiles
    at ``Phi(z0 + (z0 + z) / (1 - a (z0 + z)))`` for ``z = z_((1 -+ level) / 2)``, with ``z0``
    from the share of replicates below the estimate and ``a`` from the jackknife over problems
    (as ``scipy.stats.bootstrap(method='BCa')``, except that a share of 0 or 1 is clipped to
    ``1/(2B)`` away from the edge instead of giving NaN). BCa corrects the percentile
    interval's skew near accuracies of 0 or 1 and its first-order coverage error.

    For many units or comparisons over the same problems use one :class:`ResamplingPlan`.

    Known issues: both intervals are slightly too narrow for small ``n_problems`` (they
    ignore the ``n / (n - 1)`` variance correction); a benchmark where every problem scores
    the same gives a zero-width interval.
    """
    arr = _as_correct_matrix(correct)
    j = _check_statistic(statistic, arr.shape[1])
    gen = _check_rng(rng)
    b = _check_n_resamples(n_resamples)
    lvl = _check_level(level)
    how = _check_method(method, RESAMPLING_METHODS)
    plan = ResamplingPlan(arr.shape[0], b, rng=gen)
    return plan.intervals_from_scores(_per_problem_scores(arr, j), level=lvl, method=how).units[0]


def paired_bootstrap_ci(
    baseline: npt.ArrayLike,
    treatment: npt.ArrayLike,
    *,
    rng: np.random.Generator,
    n_resamples: int = 10_000,
    level: float = 0.95,
    statistic: str = "avg",
    method: str = "percentile",
) -> Interval:
    """Paired bootstrap interval of ``treatment - baseline``.

    ``baseline`` ``(n_problems, k_b)`` and ``treatment`` ``(n_problems, k_t)`` hold the same
    problems in the same rows (``k_b`` and ``k_t`` may differ). Estimand:
    ``delta = E[s_t,i - s_b,i]``, with ``s`` the per-problem score (mean of samples for
    ``"avg"``, unbiased pass@j for ``"pass@j"``, ``j <= min(k_b, k_t)``); ``value`` is
    ``mean(s_t) - mean(s_b)``. Each replicate draws one set of problems and uses it for both
    sides, so the between-problem variation shared by both systems cancels. ``method`` as in
    :func:`bootstrap_ci` (BCa's jackknife runs over the per-problem differences).

    Identical inputs give ``Interval(0, 0, 0, ...)``.
    """
    b, t = _as_paired(baseline, treatment)
    j = _check_statistic(statistic, min(b.shape[1], t.shape[1]))
    gen = _check_rng(rng)
    n_b = _check_n_resamples(n_resamples)
    lvl = _check_level(level)
    how = _check_method(method, RESAMPLING_METHODS)
    scores = np.stack([_per_problem_scores(b, j), _per_problem_scores(t, j)], axis=1)
    plan = ResamplingPlan(b.shape[0], n_b, rng=gen)
    return plan.intervals_from_scores(scores, pairs=[(0, 1)], level=lvl, method=how).pairs[0]


# --------------------------------------------------------------------------------------
# Wilson score interval with a cluster design effect (the default), MOVER paired differences
# --------------------------------------------------------------------------------------


def _z_two_sided(level: float) -> float:
    return NormalDist().inv_cdf(0.5 + level / 2.0)


def _informative(scores: FloatArray) -> npt.NDArray[np.int64]:
    """Per column: problems off the nearer boundary, ``min(#{s_i > 0}, #{s_i < 1})``."""
    return np.asarray(
        np.minimum(np.count_nonzero(scores > 0, axis=0), np.count_nonzero(scores < 1, axis=0)), dtype=np.int64
    )


def _wilson_bounds(p: FloatArray, n_eff: FloatArray, z: float) -> tuple[FloatArray, FloatArray]:
    """Wilson score bounds of a proportion ``p`` on ``n_eff`` (effective) observations."""
    z2 = z * z
    denom = 1.0 + z2 / n_eff
    center = (p + z2 / (2.0 * n_eff)) / denom
    half = z / denom * np.sqrt(np.maximum(p * (1.0 - p), 0.0) / n_eff + z2 / (4.0 * n_eff * n_eff))
    low = np.where(p <= 0.0, 0.0, np.clip(center - half, 0.0, 1.0))
    high = np.where(p >= 1.0, 1.0, np.clip(center + half, 0.0, 1.0))
    return np.minimum(low, p), np.maximum(high, p)


def _wilson_columns(scores: FloatArray, level: float) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """``(theta, low, high, se)`` of the column means of ``scores`` ``(n, m)`` in [0, 1] (see :func:`wilson_ci`)."""
    n = scores.shape[0]
    theta = scores.mean(axis=0)
    var = scores.var(axis=0, ddof=1) if n > 1 else np.zeros_like(theta)
    spread = theta * (1.0 - theta)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(spread > 0, var / spread, 1.0)
    relative = np.clip(relative, 0.0, 1.0)
    informative = _informative(scores)
    design = (informative * relative + PSEUDO_PROBLEMS) / (informative + PSEUDO_PROBLEMS)
    low, high = _wilson_bounds(theta, n / design, _z_two_sided(level))
    return theta, low, high, np.sqrt(var / n)


def _mover_columns(
    base: FloatArray,
    treat: FloatArray,
    level: float,
    b_iv: tuple[FloatArray, FloatArray, FloatArray],
    t_iv: tuple[FloatArray, FloatArray, FloatArray],
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """``(delta, low, high, se)`` of ``mean(treat) - mean(base)`` per column (see :func:`paired_wilson_ci`)."""
    (mb, lb, ub), (mt, lt, ut) = b_iv, t_iv
    n = base.shape[0]
    cb, ct = base - mb, treat - mt
    den = np.sqrt((cb * cb).sum(axis=0) * (ct * ct).sum(axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(den > 0, (cb * ct).sum(axis=0) / den, 0.0)
    r = np.clip(r, -1.0, 1.0)
    delta = mt - mb
    down_t, up_b = mt - lt, ub - mb
    up_t, down_b = ut - mt, mb - lb
    low = delta - np.sqrt(np.maximum(down_t**2 + up_b**2 - 2.0 * r * down_t * up_b, 0.0))
    high = delta + np.sqrt(np.maximum(up_t**2 + down_b**2 - 2.0 * r * up_t * down_b, 0.0))
    diff = treat - base
    same = ~np.any(diff != 0, axis=0)
    z = _z_two_sided(level)
    bound = z * z / (n + z * z)  # Wilson upper bound of the share of problems that differ, at 0 of n
    low = np.where(same, -bound, np.clip(low, -1.0, 1.0))
    high = np.where(same, bound, np.clip(high, -1.0, 1.0))
    se = np.sqrt(diff.var(axis=0, ddof=1) / n) if n > 1 else np.zeros_like(delta)
    return delta, np.minimum(low, delta), np.maximum(high, delta), se


def _unit_flags(scores: FloatArray) -> list[tuple[str, ...]]:
    """:data:`INTERVAL_FLAGS` of each column's mean."""
    flat = np.ptp(scores, axis=0) == 0
    informative = _informative(scores)
    return [
        ("no-variation",) if f else ("few-informative",) if i < FEW_INFORMATIVE else ()
        for f, i in zip(flat.tolist(), informative.tolist(), strict=True)
    ]


def _pair_flags(diff: FloatArray) -> list[tuple[str, ...]]:
    """:data:`INTERVAL_FLAGS` of each column of per-problem differences."""
    differing = np.count_nonzero(diff != 0, axis=0)
    return [
        ("no-discordance",) if d == 0 else ("few-discordant",) if d < FEW_INFORMATIVE else ()
        for d in differing.tolist()
    ]


def _check_unit_scores(scores: FloatArray) -> None:
    bad = np.argwhere((scores < 0) | (scores > 1))
    if bad.size:
        i, j = bad[0]
        raise ValueError(
            f"the wilson interval needs per-problem scores in [0, 1]; problem {i} of column {j} is "
            f"{scores[i, j]!r} (use method='percentile' or 'bca' for other scores)"
        )


def _wilson_table(s: FloatArray, pairs: list[tuple[int, int]], level: float) -> TableIntervals:
    """Wilson intervals of every column of ``s`` and MOVER intervals of every pair."""
    _check_unit_scores(s)
    theta, low, high, se = _wilson_columns(s, level)
    flags = _unit_flags(s)
    units = [
        Interval(float(theta[j]), float(low[j]), float(high[j]), level, WILSON_METHOD, se=float(se[j]), flags=flags[j])
        for j in range(s.shape[1])
    ]
    if not pairs:
        return TableIntervals(units=units, pairs=[])
    b = np.array([p[0] for p in pairs], dtype=np.int64)
    t = np.array([p[1] for p in pairs], dtype=np.int64)
    delta, p_low, p_high, p_se = _mover_columns(
        s[:, b], s[:, t], level, (theta[b], low[b], high[b]), (theta[t], low[t], high[t])
    )
    p_flags = _pair_flags(s[:, t] - s[:, b])
    out = [
        Interval(
            float(delta[i]),
            float(p_low[i]),
            float(p_high[i]),
            level,
            PAIRED_WILSON_METHOD,
            se=float(p_se[i]),
            flags=p_flags[i],
        )
        for i in range(len(pairs))
    ]
    return TableIntervals(units=units, pairs=out)


def wilson_ci(correct: npt.ArrayLike, *, level: float = 0.95, statistic: str = "avg") -> Interval:
    """Wilson score interval of ``avg@k`` or ``pass@j`` with a cluster design effect (the default interval).

    Estimand as :func:`bootstrap_ci`. With ``s_i`` the per-problem scores (in [0, 1]),
    ``theta = mean(s)``, ``v`` their sample variance (``ddof=1``) and ``n`` problems:

    - relative spread ``rho = v / (theta (1 - theta))``, clipped to [0, 1]: 1 when each problem
      is all-or-nothing (the most a [0, 1] score with mean ``theta`` can vary), ``1/k`` for
      ``k`` independent samples of equally hard problems;
    - ``e`` informative problems, ``min(#{s_i > 0}, #{s_i < 1})``; the design factor
      ``d = (e rho + 1) / (e + 1)`` adds one pseudo-problem of the worst case ``rho = 1``
      (:data:`PSEUDO_PROBLEMS`), which matters only when few problems carry information;
    - the Wilson score interval of a proportion ``theta`` on ``n_eff = n / d`` observations at
      ``z = z_((1 + level) / 2)``.

    With ``k = 1`` (or whenever ``rho = 1``) this is the plain Wilson interval on ``n``
    problems; all problems the same (e.g. 0 of n) gives ``[0, z^2 / (n + z^2)]``. No
    resampling, hence no ``rng``: the result is a function of the data. ``se`` is the cluster
    standard error ``sqrt(v / n)``. ``flags`` as :data:`INTERVAL_FLAGS`. Coverage: see the
    module docstring.
    """
    arr = _as_correct_matrix(correct)
    j = _check_statistic(statistic, arr.shape[1])
    lvl = _check_level(level)
    return _wilson_table(_per_problem_scores(arr, j)[:, None], [], lvl).units[0]


def paired_wilson_ci(
    baseline: npt.ArrayLike, treatment: npt.ArrayLike, *, level: float = 0.95, statistic: str = "avg"
) -> Interval:
    """MOVER interval of ``treatment - baseline`` from the two :func:`wilson_ci` intervals (the default).

    Estimand and inputs as :func:`paired_bootstrap_ci`. With ``(l_b, u_b)``, ``(l_t, u_t)`` each
    side's Wilson interval around ``theta_b``, ``theta_t`` and ``r`` the correlation of the
    two sides' per-problem scores over the shared problems (0 if either side has no spread),
    the method of variance estimates recovery (Zou & Donner 2008; Newcombe 1998, method 10 for
    one sample per problem) gives, for ``delta = theta_t - theta_b``::

        low  = delta - sqrt((theta_t - l_t)^2 + (u_b - theta_b)^2 - 2 r (theta_t - l_t)(u_b - theta_b))
        high = delta + sqrt((u_t - theta_t)^2 + (theta_b - l_b)^2 - 2 r (u_t - theta_t)(theta_b - l_b))

    The pairing enters through ``r``: the between-problem variation the two systems share cancels.
    When no problem's score differs the interval is ``[-u, u]`` with ``u = z^2 / (n + z^2)``,
    the Wilson upper bound of the share of problems that differ (flag ``no-discordance``).
    ``se`` is ``sd(s_t - s_b) / sqrt(n)``. Deterministic (no ``rng``).
    """
    b, t = _as_paired(baseline, treatment)
    j = _check_statistic(statistic, min(b.shape[1], t.shape[1]))
    lvl = _check_level(level)
    scores = np.stack([_per_problem_scores(b, j), _per_problem_scores(t, j)], axis=1)
    return _wilson_table(scores, [(0, 1)], lvl).pairs[0]


def disagrees_with_test(interval: Interval, p_value: float | None) -> bool:
    """Whether an interval of a difference and a test of no difference disagree about significance.

    The interval calls the difference significant when it excludes 0; the test when
    ``p_value < 1 - interval.level``. ``False`` when there is no p-value. See the module
    docstring for why the paired interval and the exact paired test can disagree.
    """
    if p_value is None:
        return False
    excludes = interval.ci_low > 0 or interval.ci_high < 0
    alpha = 1.0 - interval.level
    rejects = p_value < alpha and not math.isclose(p_value, alpha, rel_tol=1e-9)  # 1 - 0.95 is 0.05000000000000004
    return bool(excludes != rejects)


def align_problems(
    baseline_ids: Sequence[str],
    baseline: npt.ArrayLike,
    treatment_ids: Sequence[str],
    treatment: npt.ArrayLike,
) -> tuple[list[str], BoolArray, BoolArray]:
    """Restrict two units to the problems both have, in the treatment's order.

    Returns ``(shared_ids, baseline_rows, treatment_rows)``. The comparison is then over
    ``len(shared_ids)`` problems, which callers must report. Raises ValueError when the ids
    do not match the matrices' rows, an id repeats, or the units share no problem (a paired
    comparison is undefined then; it never silently falls back to unpaired data).
    """
    b = _as_correct_matrix(baseline, "baseline")
    t = _as_correct_matrix(treatment, "treatment")
    for name, ids, arr in (("baseline", baseline_ids, b), ("treatment", treatment_ids, t)):
        if len(ids) != arr.shape[0]:
            raise ValueError(f"{name}_ids lists {len(ids)} problems but {name} has {arr.shape[0]} rows")
        if len(set(ids)) != len(ids):
            raise ValueError(f"{name}_ids lists a problem more than once")
    b_row = {pid: i for i, pid in enumerate(baseline_ids)}
    shared = [pid for pid in treatment_ids if pid in b_row]
    if not shared:
        raise ValueError(
            f"baseline and treatment share no problems ({len(baseline_ids)} and {len(treatment_ids)} problems); "
            "a paired comparison needs problems graded on both sides"
        )
    t_row = {pid: i for i, pid in enumerate(treatment_ids)}
    return shared, b[[b_row[p] for p in shared]], t[[t_row[p] for p in shared]]


# --------------------------------------------------------------------------------------
# Paired permutation test
# --------------------------------------------------------------------------------------


def paired_permutation_pvalue(
    baseline: npt.ArrayLike,
    treatment: npt.ArrayLike,
    *,
    rng: np.random.Generator,
    n_resamples: int = 10_000,
) -> float:
    """Two-sided sign-flip permutation p-value for no difference between paired systems.

    Per-problem differences ``d_i = mean_t,i - mean_b,i`` (rows aligned as in
    :func:`paired_bootstrap_ci`). Null hypothesis: each ``d_i`` is symmetric about 0 (the two
    systems are exchangeable on every problem). Statistic ``|sum_i d_i|``; the p-value is the
    fraction of sign vectors ``s`` with ``|sum_i s_i d_i| >= |sum_i d_i|``.

    Problems with ``d_i = 0`` do not change the statistic and are dropped. With ``m <=``
    :data:`EXACT_PERMUTATION_MAX` nonzero differences all ``2**m`` sign vectors are enumerated
    (exact; ``rng`` unused). Otherwise ``n_resamples`` random sign vectors are drawn and
    ``p = (count + 1) / (n_resamples + 1)`` (never 0, valid for Monte Carlo). Comparisons are
    exact: differences are handled as integers ``c_t,i * k_b - c_b,i * k_t``.

    Identical inputs give ``1.0``.
    """
    b, t = _as_paired(baseline, treatment)
    gen = _check_rng(rng)
    n_b = _check_n_resamples(n_resamples)
    k_b, k_t = b.shape[1], t.shape[1]
    diff = t.sum(axis=1, dtype=np.int64) * k_b - b.sum(axis=1, dtype=np.int64) * k_t
    diff = diff[diff != 0]
    m = diff.shape[0]
    observed = abs(int(diff.sum()))
    if m <= EXACT_PERMUTATION_MAX:
        codes = np.arange(1 << m, dtype=np.int64)[:, None]
        signs = ((codes >> np.arange(m, dtype=np.int64)) & 1) * 2 - 1
        count = int(np.count_nonzero(np.abs(signs @ diff) >= observed))
        return float(count / (1 << m))
    count = 0
    block = max(1, _CHUNK_ELEMENTS // m)
    for start in range(0, n_b, block):
        size = min(block, n_b - start)
        signs = gen.integers(0, 2, size=(size, m), dtype=np.int64) * 2 - 1
        count += int(np.count_nonzero(np.abs(signs @ diff) >= observed))
    return (count + 1) / (n_b + 1)


# --------------------------------------------------------------------------------------
# McNemar's exact test (one sample per problem)
# --------------------------------------------------------------------------------------


def _as_outcomes(x: npt.ArrayLike, name: str) -> BoolArray:
    """Validate a per-problem 0/1 vector (1-D, or 2-D with one sample per problem)."""
    arr = np.asarray(x)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D (one 0/1 outcome per problem); got shape {arr.shape}"
            + (
                " — McNemar's test is for one sample per problem, use paired_permutation_pvalue for k > 1"
                if arr.ndim == 2
                else ""
            )
        )
    return _as_correct_matrix(arr[:, None], name)[:, 0]


def mcnemar_counts(baseline: npt.ArrayLike, treatment: npt.ArrayLike) -> tuple[int, int]:
    """The discordant counts ``(b, c)`` of a paired 2x2 table.

    ``b`` = problems the baseline solves and the treatment does not, ``c`` = problems the
    treatment solves and the baseline does not. Inputs as in :func:`mcnemar_exact`.
    """
    base = _as_outcomes(baseline, "baseline")
    treat = _as_outcomes(treatment, "treatment")
    if base.shape[0] != treat.shape[0]:
        raise ValueError(
            f"baseline has {base.shape[0]} problems and treatment has {treat.shape[0]}; McNemar's test "
            "needs the same problems in the same order"
        )
    return int(np.count_nonzero(base & ~treat)), int(np.count_nonzero(~base & treat))


def binomial_two_sided_half(b: int, c: int) -> float:
    """Exact two-sided p-value of ``b`` successes out of ``b + c`` Bernoulli(1/2) trials.

    ``min(1, 2 * P(X <= min(b, c)))`` with ``X ~ Binomial(b + c, 1/2)``, computed in exact
    integer arithmetic (no underflow for large ``b + c``). Equals
    ``scipy.stats.binomtest(b, b + c, 0.5).pvalue``. ``b = c = 0`` gives ``1.0``.
    """
    for label, v in (("b", b), ("c", c)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{label} must be a non-negative integer count; got {v!r}")
    m, low = int(b) + int(c), min(int(b), int(c))
    if m == 0 or 2 * low == m:
        return 1.0
    tail = sum(math.comb(m, i) for i in range(low + 1))
    return min(1.0, float(Fraction(2 * tail, 1 << m)))


def mcnemar_exact(baseline: npt.ArrayLike, treatment: npt.ArrayLike) -> float:
    """McNemar's exact two-sided test of equal accuracy for paired one-sample outcomes.

    ``baseline`` and ``treatment`` are 1-D bool/0-1 vectors with one outcome per problem, the
    same problems in the same order (an ``(n, 1)`` matrix is accepted too). Null hypothesis:
    on problems where the two systems disagree, each is equally likely to be the one that is
    right (marginal homogeneity). The p-value is the exact two-sided binomial test of the
    discordant count ``c`` out of ``b + c`` at probability 1/2 (see :func:`mcnemar_counts`,
    :func:`binomial_two_sided_half`); concordant problems do not enter. No discordant problem
    gives ``1.0``.

    For one sample per problem this equals the exact sign-flip test of
    :func:`paired_permutation_pvalue` (its statistic is ``|c - b|``).
    """
    b, c = mcnemar_counts(baseline, treatment)
    return binomial_two_sided_half(b, c)


# --------------------------------------------------------------------------------------
# Multiplicity
# --------------------------------------------------------------------------------------


def _as_p_values(p_values: npt.ArrayLike) -> FloatArray:
    try:
        arr = np.asarray(p_values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("p_values must be a 1-D sequence of numbers in [0, 1]") from None
    if arr.ndim != 1:
        raise ValueError(f"p_values must be 1-D; got shape {arr.shape}")
    bad = np.flatnonzero(~((arr >= 0) & (arr <= 1)))  # NaN fails both comparisons
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"p_values must be in [0, 1] (no NaN or None); p_values[{i}] is {arr[i]!r}")
    return arr


def holm(p_values: npt.ArrayLike) -> FloatArray:
    """Holm's step-down adjusted p-values (family-wise error rate), in the input order.

    For ``m`` p-values sorted ascending ``p_(1) <= ... <= p_(m)``, the adjusted value of
    ``p_(i)`` is ``max_{j <= i} min(1, (m - j + 1) * p_(j))``. Rejecting every hypothesis with
    adjusted ``p <= alpha`` controls the probability of any false rejection at ``alpha`` under
    arbitrary dependence. An empty input gives an empty array.
    """
    p = _as_p_values(p_values)
    m = p.shape[0]
    if m == 0:
        return np.empty(0, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out = np.empty(m, dtype=np.float64)
    out[order] = np.maximum.accumulate(scaled)
    return out


def benjamini_hochberg(p_values: npt.ArrayLike) -> FloatArray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), in the input order.

    For ``m`` p-values sorted ascending, the adjusted value of ``p_(i)`` is
    ``min_{j >= i} min(1, m * p_(j) / j)``. Rejecting every hypothesis with adjusted
    ``p <= q`` controls the expected fraction of false rejections among rejections at ``q``
    for independent or positively dependent tests. An empty input gives an empty array.
    """
    p = _as_p_values(p_values)
    m = p.shape[0]
    if m == 0:
        return np.empty(0, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, m * p[order] / np.arange(1, m + 1))
    out = np.empty(m, dtype=np.float64)
    out[order] = np.minimum.accumulate(scaled[::-1])[::-1]
    return out


# --------------------------------------------------------------------------------------
# Power
# --------------------------------------------------------------------------------------

DEFAULT_PROBLEM_ICC = 0.7
"""Default share of a single sample's outcome variance due to differences between problems."""

DEFAULT_PAIR_CORRELATION = 0.8
"""Default correlation, across problems, of the baseline's and the treatment's solve rates."""


def _check_fraction(name: str, value: object, *, open_low: bool = False, open_high: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number; got {value!r}")
    v = float(value)
    low_ok = v > 0.0 if open_low else v >= 0.0
    high_ok = v < 1.0 if open_high else v <= 1.0
    if not (low_ok and high_ok):  # also refuses NaN
        lo, hi = "(" if open_low else "[", ")" if open_high else "]"
        raise ValueError(f"{name} must be in {lo}0, 1{hi}; got {value!r}")
    return v


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a positive integer; got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value}")
    return int(value)


def _design_factor(k: int, icc: float) -> float:
    """``Var(mean of k samples of a random problem) / (mu (1 - mu))``: ``icc + (1 - icc) / k``."""
    return icc + (1.0 - icc) / k


def _paired_sd(accuracy: float, effect: float, k: int, icc: float, rho: float) -> float:
    """Standard deviation of one problem's paired difference ``s_t,i - s_b,i`` (see the model)."""
    v_b = accuracy * (1.0 - accuracy)
    t = accuracy + effect
    v_t = t * (1.0 - t)
    # Cov(p_i, q_i) = Cov of one baseline and one treatment sample of a problem, so it cannot
    # exceed the Frechet bound of two binary variables with these means
    cov = min(rho * icc * math.sqrt(v_b * v_t), min(accuracy, t) - accuracy * t)
    var = (v_b + v_t) * _design_factor(k, icc) - 2.0 * cov
    return math.sqrt(max(var, 0.0))


def _power_args(
    n_problems: int | None, k: int, accuracy: float, alpha: float, power: float, icc: float, rho: float
) -> tuple[int | None, int, float, float, float, float, float]:
    n = None if n_problems is None else _check_count("n_problems", n_problems)
    return (
        n,
        _check_count("k", k),
        _check_fraction("accuracy", accuracy),
        _check_fraction("alpha", alpha, open_low=True, open_high=True),
        _check_fraction("power", power, open_low=True, open_high=True),
        _check_fraction("problem_icc", icc),
        _check_fraction("pair_correlation", rho),
    )


def _z(p: float) -> float:
    return NormalDist().inv_cdf(p)


def _n_for_effect(effect: float, accuracy: float, k: int, alpha: float, power: float, icc: float, rho: float) -> float:
    """Real-valued number of problems at which ``effect`` has exactly ``power`` (Connor 1987)."""
    sd = _paired_sd(accuracy, effect, k, icc, rho)
    return ((_z(1 - alpha / 2) * math.sqrt(sd * sd + effect * effect) + _z(power) * sd) / effect) ** 2


def minimum_detectable_effect(
    *,
    n_problems: int,
    k: int = 1,
    accuracy: float,
    alpha: float = 0.05,
    power: float = 0.8,
    problem_icc: float = DEFAULT_PROBLEM_ICC,
    pair_correlation: float = DEFAULT_PAIR_CORRELATION,
) -> float:
    """Smallest true paired gain a two-sided paired test at ``alpha`` detects with ``power``.

    Returns a fraction (0.05 = 5 accuracy points): the gain ``delta`` of a treatment over a
    baseline of accuracy ``accuracy`` that a two-sided level-``alpha`` paired test over
    ``n_problems`` problems with ``k`` samples per problem on each side detects with probability
    ``power``. ``math.inf`` if no gain up to ``1 - accuracy`` reaches that power.

    Variance model. Problem ``i`` has solve rates ``p_i`` (baseline) and ``q_i`` (treatment);
    each side's per-problem score is the mean of ``k`` Bernoulli samples. With ``mu = accuracy``,
    ``mu_t = mu + delta``, ``v = mu (1 - mu)``, ``v_t = mu_t (1 - mu_t)``:

    - ``Var(p_i) = problem_icc * v`` (``problem_icc`` is the intra-class correlation of two
      samples of one problem: 0 = every problem equally hard, 1 = each problem always or never
      solved), likewise ``Var(q_i) = problem_icc * v_t``; so one side's per-problem score has
      variance ``v * (problem_icc + (1 - problem_icc) / k)`` (the usual design effect);
    - ``Corr(p_i, q_i) = pair_correlation`` across problems (the two systems find the same
      problems hard); sampling noise is independent between the sides;
    - hence the per-problem difference ``d_i`` has variance
      ``sigma^2 = (v + v_t)(icc + (1 - icc)/k) - 2 c`` with
      ``c = pair_correlation icc sqrt(v v_t)``, capped at ``min(mu, mu_t) - mu mu_t`` (``c`` is
      also the covariance of one baseline and one treatment sample of a problem, two binary
      variables, which cannot exceed that Frechet bound; the cap only matters when
      ``problem_icc * pair_correlation`` is near 1).

    With ``k = 1`` only the product ``icc * pair_correlation`` matters: it is the correlation of
    the two systems' outcomes on a problem, and ``sigma^2 + delta^2`` is the discordant
    fraction of McNemar's table. The defaults (``problem_icc=0.7``, ``pair_correlation=0.8``)
    describe strongly heterogeneous math benchmarks evaluated on a checkpoint and its own
    base (about 22% discordant problems at 50% accuracy); other values can be measured from
    stored generations. The paired tests of this module (McNemar, sign flips) standardise by
    ``sqrt(sum d_i^2)``, i.e. the null variance ``sigma^2 + delta^2``; the normal approximation
    of their power (Connor 1987, the McNemar sample-size formula generalised to ``k``) gives
    ``delta sqrt(n) = z_(1-alpha/2) sqrt(sigma^2 + delta^2) + z_power sigma``, solved for
    ``delta``.

    Decreasing in ``n_problems`` and (for ``problem_icc < 1``) in ``k``. The approximation
    needs enough discordant problems (tens); for tiny benchmarks treat it as a lower bound.
    """
    n, k_, mu, a, pw, icc, rho = _power_args(n_problems, k, accuracy, alpha, power, problem_icc, pair_correlation)
    assert n is not None
    hi = 1.0 - mu
    if hi <= 0.0 or _n_for_effect(hi, mu, k_, a, pw, icc, rho) > n:
        return math.inf

    def needed(delta: float) -> float:
        return _n_for_effect(delta, mu, k_, a, pw, icc, rho)

    # n needed falls as delta grows; bisect for the smallest delta with needed(delta) <= n.
    lo = 0.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid <= 0.0 or needed(mid) > n:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return hi


def ci_half_width(
    *,
    n_problems: int,
    k: int = 1,
    accuracy: float,
    level: float = 0.95,
    problem_icc: float = DEFAULT_PROBLEM_ICC,
) -> float:
    """Expected half-width of one system's accuracy interval (a fraction), normal approximation.

    ``z_((1+level)/2) * sqrt(accuracy (1 - accuracy) (problem_icc + (1 - problem_icc) / k) /
    n_problems)``, the standard error of ``avg@k`` under the variance model of
    :func:`minimum_detectable_effect`. With ``k = 1`` it is the binomial
    ``z sqrt(p (1 - p) / n)`` whatever ``problem_icc``. The bootstrap intervals of this module
    have about this half-width.
    """
    n, k_, mu, _, _, icc, _ = _power_args(n_problems, k, accuracy, 0.05, 0.8, problem_icc, 0.0)
    lvl = _check_level(level)
    assert n is not None
    return _z(0.5 + lvl / 2) * math.sqrt(mu * (1 - mu) * _design_factor(k_, icc) / n)


def problems_needed(
    *,
    effect: float,
    k: int = 1,
    accuracy: float,
    alpha: float = 0.05,
    power: float = 0.8,
    problem_icc: float = DEFAULT_PROBLEM_ICC,
    pair_correlation: float = DEFAULT_PAIR_CORRELATION,
) -> int:
    """Problems needed for a paired test to detect a true gain ``effect`` with ``power``.

    The smallest ``n`` with :func:`minimum_detectable_effect` ``(n_problems=n, ...) <= effect``
    (same variance model and parameters): ``ceil(((z_(1-alpha/2) sqrt(sigma^2 + effect^2) +
    z_power sigma) / effect)^2)``. ``effect`` must be in ``(0, 1 - accuracy]``.
    """
    _, k_, mu, a, pw, icc, rho = _power_args(None, k, accuracy, alpha, power, problem_icc, pair_correlation)
    eff = _check_effect(effect, mu)
    return max(1, math.ceil(_n_for_effect(eff, mu, k_, a, pw, icc, rho) - 1e-9))


def samples_per_problem_needed(
    *,
    effect: float,
    n_problems: int,
    accuracy: float,
    alpha: float = 0.05,
    power: float = 0.8,
    problem_icc: float = DEFAULT_PROBLEM_ICC,
    pair_correlation: float = DEFAULT_PAIR_CORRELATION,
    max_k: int = 1024,
) -> int | None:
    """Samples per problem ``k`` needed for a paired test over ``n_problems`` to detect ``effect``.

    The smallest ``k <= max_k`` with :func:`minimum_detectable_effect` ``<= effect`` (same
    variance model). ``None`` when no ``k`` up to ``max_k`` suffices: more samples only remove
    within-problem noise, and the between-problem part of the variance
    (``problem_icc * (1 - pair_correlation)``) sets a floor that only more problems lower.
    """
    n, _, mu, a, pw, icc, rho = _power_args(n_problems, 1, accuracy, alpha, power, problem_icc, pair_correlation)
    eff = _check_effect(effect, mu)
    kmax = _check_count("max_k", max_k)
    assert n is not None

    def ok(k: int) -> bool:
        return _n_for_effect(eff, mu, k, a, pw, icc, rho) <= n + 1e-9

    if not ok(kmax):
        return None
    lo, hi = 0, kmax  # ok(hi) holds; find the smallest
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


def _check_effect(effect: object, accuracy: float) -> float:
    if isinstance(effect, bool) or not isinstance(effect, (int, float, np.floating, np.integer)):
        raise TypeError(f"effect must be a number (a fraction, 0.05 = 5 points); got {effect!r}")
    eff = float(effect)
    if not 0.0 < eff <= 1.0 - accuracy:
        raise ValueError(
            f"effect must be a gain in (0, 1 - accuracy] = (0, {1 - accuracy:.4g}] as a fraction "
            f"(0.05 = 5 points); got {effect!r}"
        )
    return eff


# --------------------------------------------------------------------------------------
# The paired test appropriate to k
# --------------------------------------------------------------------------------------

MCNEMAR_TEST = "mcnemar-exact"
SIGN_FLIP_EXACT_TEST = "sign-flip-exact"
SIGN_FLIP_MC_TEST = "sign-flip-monte-carlo"


@dataclass(frozen=True)
class PairedTest:
    """The result of :func:`paired_test`."""

    p_value: float
    """Two-sided p-value of no difference."""
    test: str
    """Which test: ``mcnemar-exact``, ``sign-flip-exact`` or ``sign-flip-monte-carlo``."""
    n_discordant: int
    """Problems whose per-problem scores differ (the only ones that carry information)."""


def paired_test(
    baseline: npt.ArrayLike,
    treatment: npt.ArrayLike,
    *,
    rng: np.random.Generator,
    n_resamples: int = 10_000,
) -> PairedTest:
    """Two-sided exact test of no difference between paired systems, chosen by ``k``.

    One sample per problem on both sides: McNemar's exact test (:func:`mcnemar_exact`; no
    randomness). Otherwise the paired sign-flip permutation test of
    :func:`paired_permutation_pvalue` on the per-problem mean differences, exact (all sign
    vectors) for at most :data:`EXACT_PERMUTATION_MAX` problems with a nonzero difference,
    Monte Carlo with ``n_resamples`` draws from ``rng`` above that. For ``k = 1`` both tests
    give the same p-value; the name says which one was run.
    """
    b, t = _as_paired(baseline, treatment)
    gen = _check_rng(rng)
    n_b = _check_n_resamples(n_resamples)
    k_b, k_t = b.shape[1], t.shape[1]
    diff = t.sum(axis=1, dtype=np.int64) * k_b - b.sum(axis=1, dtype=np.int64) * k_t
    m = int(np.count_nonzero(diff))
    if k_b == 1 and k_t == 1:
        return PairedTest(mcnemar_exact(b[:, 0], t[:, 0]), MCNEMAR_TEST, m)
    p = paired_permutation_pvalue(b, t, rng=gen, n_resamples=n_b)
    return PairedTest(p, SIGN_FLIP_EXACT_TEST if m <= EXACT_PERMUTATION_MAX else SIGN_FLIP_MC_TEST, m)


# --------------------------------------------------------------------------------------
# Seeds
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedSpread:
    """Spread of one metric across runs that differ only in their sampling seed."""

    n_seeds: int
    """Runs (seeds)."""
    mean: float
    """Mean of the metric over seeds."""
    sd: float
    """Sample standard deviation over seeds (``ddof=1``)."""
    min: float
    """Smallest value."""
    max: float
    """Largest value."""

    @property
    def range(self) -> float:
        """``max - min``: the gap a cherry-picked seed can open."""
        return self.max - self.min


def seed_spread(values: npt.ArrayLike) -> SeedSpread:
    """Seed-to-seed spread of a metric: ``values[s]`` is the metric (e.g. avg@k) of seed ``s``.

    All seeds must be of one setting (same checkpoint, task, prompt, protocol but the seed).
    ``sd`` estimates how much a single run moves with the seed; with one sample per problem
    and greedy decoding it is 0 up to engine nondeterminism. Needs at least two finite values.
    """
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("values must be a 1-D sequence of numbers, one per seed") from None
    if arr.ndim != 1:
        raise ValueError(f"values must be 1-D (one number per seed); got shape {arr.shape}")
    if arr.shape[0] < 2:
        raise ValueError(f"seed_spread needs at least 2 seeds; got {arr.shape[0]}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(f"values[{int(bad[0])}] is {float(arr[bad[0]])}; every seed needs a finite value")
    return SeedSpread(
        n_seeds=int(arr.shape[0]),
        mean=float(arr.mean()),
        sd=float(arr.std(ddof=1)),
        min=float(arr.min()),
        max=float(arr.max()),
    )


# --------------------------------------------------------------------------------------
# maj@k
# --------------------------------------------------------------------------------------

MAJ_TIES = ("expected", "first")
"""Tie handling of :func:`maj_at_k`."""


def maj_at_k_scores(samples: Sequence[Sequence[tuple[str | None, bool]]], *, ties: str = "expected") -> FloatArray:
    """Per-problem majority-vote scores, shape ``(n_problems,)``; see :func:`maj_at_k`."""
    if ties not in MAJ_TIES:
        raise ValueError(f"ties must be one of {', '.join(repr(t) for t in MAJ_TIES)}; got {ties!r}")
    if isinstance(samples, (str, bytes)) or not isinstance(samples, Sequence):
        raise ValueError("samples must be a sequence of problems, each a sequence of (answer, correct) pairs")
    if not samples:
        raise ValueError("samples is empty: it has no problems")
    k: int | None = None
    out = np.empty(len(samples), dtype=np.float64)
    for i, problem in enumerate(samples):
        if isinstance(problem, (str, bytes)) or not isinstance(problem, Sequence):
            raise ValueError(f"samples[{i}] must be a sequence of (answer, correct) pairs; got {problem!r}")
        if k is None:
            k = len(problem)
            if k == 0:
                raise ValueError("samples[0] has no samples")
        elif len(problem) != k:
            raise ValueError(
                f"samples is ragged: every problem must have the same number of samples k, but problem 0 has "
                f"{k} and problem {i} has {len(problem)}"
            )
        votes: dict[str, int] = {}
        right: dict[str, bool] = {}
        for j, pair in enumerate(problem):
            try:
                answer, correct = pair
            except (TypeError, ValueError):
                raise ValueError(f"samples[{i}][{j}] must be an (answer, correct) pair; got {pair!r}") from None
            if answer is not None and not isinstance(answer, str):
                raise ValueError(f"samples[{i}][{j}]: answer must be a string or None; got {answer!r}")
            if not isinstance(correct, (bool, np.bool_)) and correct not in (0, 1):
                raise ValueError(f"samples[{i}][{j}]: correct must be a bool (or 0/1); got {correct!r}")
            if answer is None:
                continue
            votes[answer] = votes.get(answer, 0) + 1
            right[answer] = right.get(answer, False) or bool(correct)
        if not votes:
            out[i] = 0.0
            continue
        top = max(votes.values())
        tied = [a for a, v in votes.items() if v == top]  # in order of first appearance
        out[i] = float(right[tied[0]]) if ties == "first" else sum(right[a] for a in tied) / len(tied)
    return out


def maj_at_k(samples: Sequence[Sequence[tuple[str | None, bool]]], *, ties: str = "expected") -> float:
    """``maj@k``: accuracy of the majority-vote answer over ``k`` samples, averaged over problems.

    ``samples[i]`` lists problem ``i``'s ``k`` samples as ``(extracted answer, correct)``:
    the answer as a string (``None`` when nothing was extracted) and whether the grader judged
    that sample correct. Every problem must have the same ``k``. Answers vote by exact string
    equality, so normalise them first (e.g. the grader's canonical form) if ``"1/2"`` and
    ``"0.5"`` should count as one. Samples without an answer do not vote; a problem where no
    sample has an answer scores 0. An answer is correct if a sample carrying it was graded
    correct (samples with the same answer can differ only through per-sample verdicts such
    as truncation).

    Ties between the most-voted answers: ``ties="expected"`` (default) scores the fraction of
    tied answers that are correct, i.e. the expected score of breaking the tie uniformly at
    random (deterministic, no seed); ``ties="first"`` takes the tied answer that appeared
    first, as ``collections.Counter.most_common`` does. With ``k = 1`` maj@1 is accuracy
    (a missing answer counts as wrong). Estimates the probability that a majority vote over
    ``k`` samples of a random problem is correct; bootstrap it by passing
    :func:`maj_at_k_scores` to :meth:`ResamplingPlan.intervals_from_scores`.
    """
    return float(np.mean(maj_at_k_scores(samples, ties=ties)))
