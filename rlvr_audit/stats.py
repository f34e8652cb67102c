"""Statistics over graded samples: accuracy estimands, bootstrap intervals, paired tests.

Data model
----------
Every function takes a *correctness matrix*: a bool (or 0/1) array of shape
``(n_problems, k)`` whose row ``i`` holds the verdicts of the ``k`` samples drawn for
problem ``i`` (``True`` = the grader's verdict was ``correct``; every other verdict is a
failure, see :data:`rlvr_audit.records.Verdict`). :func:`per_problem_matrix` builds one from
:class:`~rlvr_audit.records.Grade` records.

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
- Paired difference: for two systems evaluated on the same problems,
  ``delta = E[score_t,i - score_b,i]`` where ``score`` is the per-problem estimate above.
  Estimated by ``avg(treatment) - avg(baseline)`` over the shared problems.

Intervals
---------
Problems are the unit of resampling (a cluster bootstrap): each bootstrap replicate draws
``n_problems`` rows with replacement and recomputes the mean of the per-problem scores.
A problem's ``k`` samples are never resampled individually, since they are correlated
through ``p_i``; resampling them would understate the variance. Paired intervals reuse the
same row indices for both systems. Intervals are percentile intervals
(``np.quantile`` with linear interpolation, as ``scipy.stats.bootstrap(method='percentile')``).
Data with no variation across problems (e.g. all correct) gives a zero-width interval.

Randomness comes only from the ``rng`` argument, a :class:`numpy.random.Generator`; the
same generator state, data and ``n_resamples`` give the same result.

Input validation happens in the ``_check_*`` / ``_as_*`` functions at the top of this module;
every public function calls them first and they raise :class:`ValueError` (bad values:
empty, not 2-D, ragged, NaN, not 0/1, level outside (0, 1), ...) or :class:`TypeError` (an
argument of the wrong type, e.g. ``rng`` not a Generator) with a message that names the
offending input and, for data, the problem (row) at fault.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from .records import Grade

__all__ = [
    "EXACT_PERMUTATION_MAX",
    "Interval",
    "avg_at_k",
    "bootstrap_ci",
    "bootstrap_distribution",
    "paired_bootstrap_ci",
    "paired_permutation_pvalue",
    "pass_at_k",
    "pass_at_k_matrix",
    "per_problem_matrix",
]

EXACT_PERMUTATION_MAX = 16
""":func:`paired_permutation_pvalue` enumerates all ``2**m`` sign flips when the number ``m``
of problems with a nonzero difference is at most this; otherwise it samples them."""

_CHUNK_ELEMENTS = 1 << 22
"""Upper bound on the elements of one block of resampled indices (32 MiB of int64)."""

BOOTSTRAP_METHOD = "bootstrap-percentile(problems)"
PAIRED_BOOTSTRAP_METHOD = "paired-bootstrap-percentile(problems)"

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
# Bootstrap
# --------------------------------------------------------------------------------------


def _resampled_means(scores: FloatArray, rng: np.random.Generator, n_resamples: int) -> FloatArray:
    """Means of ``scores`` over ``n_resamples`` draws of ``len(scores)`` rows with replacement.

    Indices are drawn as blocks of at most :data:`_CHUNK_ELEMENTS`; the block size depends only
    on ``len(scores)``, so results depend only on the generator state, the data and
    ``n_resamples``.
    """
    return _resampled_means_multi((scores,), rng, n_resamples)[0]


def _resampled_means_multi(
    columns: tuple[FloatArray, ...], rng: np.random.Generator, n_resamples: int
) -> list[FloatArray]:
    """Like :func:`_resampled_means` for several aligned score vectors (same indices for all)."""
    n = columns[0].shape[0]
    out = [np.empty(n_resamples, dtype=np.float64) for _ in columns]
    block = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, n_resamples, block):
        stop = min(start + block, n_resamples)
        idx = rng.integers(0, n, size=(stop - start, n))
        for col, dest in zip(columns, out, strict=True):
            dest[start:stop] = col[idx].mean(axis=1)
    return out


def _percentile_interval(replicates: FloatArray, level: float) -> tuple[float, float]:
    alpha = 1.0 - level
    low, high = np.quantile(replicates, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


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
    with replacement. Their standard deviation is the bootstrap standard error.
    """
    arr = _as_correct_matrix(correct)
    j = _check_statistic(statistic, arr.shape[1])
    gen = _check_rng(rng)
    b = _check_n_resamples(n_resamples)
    return _resampled_means(_per_problem_scores(arr, j), gen, b)


def bootstrap_ci(
    correct: npt.ArrayLike,
    *,
    rng: np.random.Generator,
    n_resamples: int = 10_000,
    level: float = 0.95,
    statistic: str = "avg",
) -> Interval:
    """Percentile bootstrap interval of ``avg@k`` or ``pass@j``, resampling problems.

    Estimand: ``E[p_i]`` for ``statistic="avg"`` (see :func:`avg_at_k`) or
    ``E[1 - (1 - p_i)^j]`` for ``statistic="pass@j"`` (see :func:`pass_at_k_matrix`), over the
    population of problems the benchmark is taken to sample. ``value`` is the estimate on the
    observed data; the interval is the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of
    :func:`bootstrap_distribution`.

    Known issues: the percentile interval is slightly too narrow for small ``n_problems``
    (it ignores the ``n / (n - 1)`` variance correction) and can sit off-centre for
    accuracies near 0 or 1; a benchmark where every problem scores the same gives a
    zero-width interval.
    """
    arr = _as_correct_matrix(correct)
    j = _check_statistic(statistic, arr.shape[1])
    gen = _check_rng(rng)
    b = _check_n_resamples(n_resamples)
    lvl = _check_level(level)
    scores = _per_problem_scores(arr, j)
    low, high = _percentile_interval(_resampled_means(scores, gen, b), lvl)
    return Interval(float(np.mean(scores)), low, high, lvl, BOOTSTRAP_METHOD)


def paired_bootstrap_ci(
    baseline: npt.ArrayLike,
    treatment: npt.ArrayLike,
    *,
    rng: np.random.Generator,
    n_resamples: int = 10_000,
    level: float = 0.95,
    statistic: str = "avg",
) -> Interval:
    """Paired percentile bootstrap interval of ``treatment - baseline``.

    ``baseline`` ``(n_problems, k_b)`` and ``treatment`` ``(n_problems, k_t)`` hold the same
    problems in the same rows (``k_b`` and ``k_t`` may differ). Estimand:
    ``delta = E[s_t,i - s_b,i]``, with ``s`` the per-problem score (mean of samples for
    ``"avg"``, unbiased pass@j for ``"pass@j"``, ``j <= min(k_b, k_t)``); ``value`` is
    ``mean(s_t) - mean(s_b)``. Each replicate draws one set of problem indices and uses it for
    both sides, so the between-problem variation shared by both systems cancels.

    Identical inputs give ``Interval(0, 0, 0, ...)``.
    """
    b, t = _as_paired(baseline, treatment)
    j = _check_statistic(statistic, min(b.shape[1], t.shape[1]))
    gen = _check_rng(rng)
    n_b = _check_n_resamples(n_resamples)
    lvl = _check_level(level)
    s_b = _per_problem_scores(b, j)
    s_t = _per_problem_scores(t, j)
    (reps,) = _resampled_means_multi((s_t - s_b,), gen, n_b)
    low, high = _percentile_interval(reps, lvl)
    return Interval(float(np.mean(s_t) - np.mean(s_b)), low, high, lvl, PAIRED_BOOTSTRAP_METHOD)


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
