"""Coverage of the interval methods of :mod:`rlvr_audit.analysis.stats`, by simulation with known truth.

The simulated benchmarks have heterogeneous problem difficulty, the situation the default
interval is chosen for (see "Intervals" in :mod:`rlvr_audit.analysis.stats`). Everything is vectorised
over datasets: a simulated dataset is one column of a score matrix ``(n_problems, n_datasets)``,
so one call of :meth:`rlvr_audit.analysis.stats.ResamplingPlan.intervals_from_scores` computes the
intervals of thousands of datasets. Used by ``tests/test_stats_theory.py`` (coverage tests) and
``benchmarks/stats_coverage.py`` (the full coverage table).

Model
-----
One unit: problem ``i`` has solve rate ``p_i ~ Beta(a, b)`` with mean ``accuracy`` and
intra-class correlation ``icc = 1 / (a + b + 1)`` (the correlation of two samples of one
problem; the parameterisation of :func:`rlvr_audit.analysis.stats.minimum_detectable_effect`); each of
its ``k`` samples is correct with probability ``p_i``. The estimand ``E[p_i]`` is ``accuracy``
exactly. With ``k = 1`` the outcomes are i.i.d. Bernoulli(``accuracy``) whatever the
difficulty distribution, so coverage is that of the binomial (:func:`binomial_coverage`
computes it exactly).

A pair (base, RLVR checkpoint): ``p_i ~ Beta`` (mean ``base``) and ``q_i ~ Beta`` (mean
``treatment``), both with intra-class correlation ``icc``, coupled by a Gaussian copula with
correlation ``latent_correlation`` (the two systems find the same problems hard); the samples
of the two sides are independent given ``(p_i, q_i)``. The true gain is ``treatment - base``
exactly. With ``k = 1`` a problem's pair of outcomes is one of four cells with probabilities
fixed by ``base``, ``treatment`` and ``E[p_i q_i]`` (estimated once per call by Monte Carlo:
an error there changes the simulated correlation slightly, never the true gain), so datasets
are multinomial draws.

All functions take an explicit :class:`numpy.random.Generator`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.special
import scipy.stats

from . import stats

FloatArray = npt.NDArray[np.float64]

__all__ = [
    "Agreement",
    "beta_parameters",
    "binomial_coverage",
    "paired_coverage",
    "paired_intervals",
    "significance_agreement",
    "simulate_pair",
    "simulate_unit",
    "unit_coverage",
    "unit_intervals",
]


def beta_parameters(accuracy: float, icc: float) -> tuple[float, float]:
    """``(a, b)`` of the Beta distribution with mean ``accuracy`` and intra-class correlation ``icc``."""
    if not 0.0 < accuracy < 1.0:
        raise ValueError(f"accuracy must be in (0, 1); got {accuracy!r}")
    if not 0.0 < icc < 1.0:
        raise ValueError(f"icc must be in (0, 1); got {icc!r}")
    concentration = (1.0 - icc) / icc
    return accuracy * concentration, (1.0 - accuracy) * concentration


def simulate_unit(
    *, n_problems: int, k: int, accuracy: float, icc: float, n_datasets: int, rng: np.random.Generator
) -> FloatArray:
    """Per-problem avg@k scores of ``n_datasets`` simulated benchmarks, shape ``(n_problems, n_datasets)``."""
    a, b = beta_parameters(accuracy, icc)
    p = rng.beta(a, b, size=(n_problems, n_datasets))
    return np.asarray(rng.binomial(k, p) / k, dtype=np.float64)


def _latent_pair(rng: np.random.Generator, size: tuple[int, ...], correlation: float) -> tuple[FloatArray, FloatArray]:
    z1 = rng.standard_normal(size)
    z2 = correlation * z1 + np.sqrt(1.0 - correlation**2) * rng.standard_normal(size)
    return scipy.special.ndtr(z1), scipy.special.ndtr(z2)


def simulate_pair(
    *,
    n_problems: int,
    k: int,
    base: float,
    treatment: float,
    icc: float,
    latent_correlation: float,
    n_datasets: int,
    rng: np.random.Generator,
) -> tuple[FloatArray, FloatArray]:
    """Per-problem avg@k scores of paired simulated benchmarks.

    Returns ``(base, treatment)``, each of shape ``(n_problems, n_datasets)``.
    """
    if not -1.0 < latent_correlation < 1.0:
        raise ValueError(f"latent_correlation must be in (-1, 1); got {latent_correlation!r}")
    ab, bb = beta_parameters(base, icc)
    at, bt = beta_parameters(treatment, icc)
    if k == 1:
        u1, u2 = _latent_pair(rng, (100_000,), latent_correlation)
        both = float(np.mean(scipy.special.betaincinv(ab, bb, u1) * scipy.special.betaincinv(at, bt, u2)))
        cells = np.array([both, base - both, treatment - both, 1.0 - base - treatment + both])
        cells = np.clip(cells, 0.0, None)
        counts = rng.multinomial(n_problems, cells / cells.sum(), size=n_datasets).T  # (4, n_datasets)
        row = np.arange(n_problems)[:, None]
        n11, n10, n01 = counts[0], counts[1], counts[2]
        b_scores = row < n11 + n10
        t_scores = (row < n11) | ((row >= n11 + n10) & (row < n11 + n10 + n01))
        return b_scores.astype(np.float64), t_scores.astype(np.float64)
    u1, u2 = _latent_pair(rng, (n_problems, n_datasets), latent_correlation)
    p = scipy.special.betaincinv(ab, bb, u1)
    q = scipy.special.betaincinv(at, bt, u2)
    return rng.binomial(k, p) / k, rng.binomial(k, q) / k


def unit_intervals(
    scores: FloatArray, *, method: str, level: float = 0.95, rng: np.random.Generator, n_resamples: int = 2_000
) -> tuple[FloatArray, FloatArray]:
    """``(low, high)`` of the interval of each column's mean (one plan for all columns)."""
    plan = stats.ResamplingPlan(scores.shape[0], n_resamples, rng=rng)
    ivs = plan.intervals_from_scores(scores, level=level, method=method).units
    return np.array([iv.ci_low for iv in ivs]), np.array([iv.ci_high for iv in ivs])


def paired_intervals(
    base: FloatArray,
    treatment: FloatArray,
    *,
    method: str,
    level: float = 0.95,
    rng: np.random.Generator,
    n_resamples: int = 2_000,
) -> tuple[FloatArray, FloatArray]:
    """``(low, high)`` of the interval of ``mean(treatment) - mean(base)`` for each column pair."""
    m = base.shape[1]
    plan = stats.ResamplingPlan(base.shape[0], n_resamples, rng=rng)
    pairs = [(j, m + j) for j in range(m)]
    ivs = plan.intervals_from_scores(np.concatenate([base, treatment], axis=1), pairs=pairs, level=level, method=method)
    return np.array([iv.ci_low for iv in ivs.pairs]), np.array([iv.ci_high for iv in ivs.pairs])


def _covered(low: FloatArray, high: FloatArray, truth: float) -> float:
    tol = 1e-12
    return float(np.mean((low <= truth + tol) & (truth - tol <= high)))


def unit_coverage(
    scores: FloatArray,
    truth: float,
    *,
    method: str,
    level: float = 0.95,
    rng: np.random.Generator,
    n_resamples: int = 2_000,
) -> float:
    """Share of the columns of ``scores`` whose interval covers ``truth``."""
    low, high = unit_intervals(scores, method=method, level=level, rng=rng, n_resamples=n_resamples)
    return _covered(low, high, truth)


def paired_coverage(
    base: FloatArray,
    treatment: FloatArray,
    truth: float,
    *,
    method: str,
    level: float = 0.95,
    rng: np.random.Generator,
    n_resamples: int = 2_000,
) -> float:
    """Share of the column pairs whose gain interval covers ``truth``."""
    low, high = paired_intervals(base, treatment, method=method, level=level, rng=rng, n_resamples=n_resamples)
    return _covered(low, high, truth)


def binomial_coverage(
    *,
    n_problems: int,
    accuracies: npt.ArrayLike,
    method: str,
    level: float = 0.95,
    rng: np.random.Generator,
    n_resamples: int = 2_000,
) -> FloatArray:
    """Exact coverage at one sample per problem: ``sum_x P(X = x) [interval(x) covers p]``, ``X ~ Bin(n, p)``.

    One interval per possible count ``x = 0..n`` (the data of a one-sample benchmark are its
    count, whatever the order), weighted by the binomial probabilities at each accuracy.
    """
    x = np.arange(n_problems + 1)
    scores = (np.arange(n_problems)[:, None] < x[None, :]).astype(np.float64)
    low, high = unit_intervals(scores, method=method, level=level, rng=rng, n_resamples=n_resamples)
    p = np.asarray(accuracies, dtype=np.float64)
    pmf = scipy.stats.binom.pmf(x[None, :], n_problems, p[:, None])
    inside = (low[None, :] <= p[:, None] + 1e-12) & (p[:, None] - 1e-12 <= high[None, :])
    return np.asarray((pmf * inside).sum(axis=1), dtype=np.float64)


@dataclass(frozen=True)
class Agreement:
    """How often a gain interval and the exact paired test call a difference significant."""

    interval: float
    """Share of datasets whose interval excludes 0."""
    test: float
    """Share whose paired test has ``p < 1 - level``."""
    disagree: float
    """Share where exactly one of the two calls the difference significant."""


def significance_agreement(
    base: FloatArray,
    treatment: FloatArray,
    *,
    method: str,
    level: float = 0.95,
    rng: np.random.Generator,
    n_resamples: int = 2_000,
    n_signs: int = 2_000,
) -> Agreement:
    """Interval against test over the column pairs, with the tests :func:`rlvr_audit.analysis.stats.paired_test` runs.

    One sample per problem on both sides: McNemar's exact test (exactly as the analysis).
    Otherwise the sign-flip test on the per-problem differences with ``n_signs`` random sign
    vectors shared by all datasets (``p = (count + 1) / (n_signs + 1)``; the analysis enumerates
    all sign vectors up to 16 differing problems, so its p-values differ by Monte Carlo error).
    """
    low, high = paired_intervals(base, treatment, method=method, level=level, rng=rng, n_resamples=n_resamples)
    diff = treatment - base
    if np.all((base == 0) | (base == 1)) and np.all((treatment == 0) | (treatment == 1)):
        b = np.count_nonzero(diff < 0, axis=0)
        c = np.count_nonzero(diff > 0, axis=0)
        m = b + c
        p = np.where(m == 0, 1.0, np.minimum(1.0, 2.0 * scipy.stats.binom.cdf(np.minimum(b, c), np.maximum(m, 1), 0.5)))
    else:
        observed = np.abs(diff.sum(axis=0))
        count = np.zeros(diff.shape[1])
        for start in range(0, n_signs, 500):
            signs = rng.integers(0, 2, size=(min(500, n_signs - start), diff.shape[0])) * 2.0 - 1.0
            count += np.count_nonzero(np.abs(signs @ diff) >= observed[None, :] - 1e-9, axis=0)
        p = (count + 1.0) / (n_signs + 1.0)
    excludes = (low > 0) | (high < 0)
    alpha = 1.0 - level
    rejects = (p < alpha) & ~np.isclose(p, alpha, rtol=1e-9, atol=0.0)  # as stats.disagrees_with_test
    return Agreement(
        interval=float(np.mean(excludes)), test=float(np.mean(rejects)), disagree=float(np.mean(excludes != rejects))
    )
