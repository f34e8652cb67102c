"""Tests of rlvr_audit.analysis.stats: against brute force, theory, scipy, and by simulated coverage."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
import scipy.stats

from rlvr_audit.analysis.stats import (
    EXACT_PERMUTATION_MAX,
    Interval,
    avg_at_k,
    bootstrap_ci,
    bootstrap_distribution,
    paired_bootstrap_ci,
    paired_permutation_pvalue,
    pass_at_k,
    pass_at_k_matrix,
    per_problem_matrix,
)
from rlvr_audit.core.records import Grade, Verdict


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def heterogeneous(
    gen: np.random.Generator, n: int, k: int, mean: float = 0.6, concentration: float = 2.0
) -> np.ndarray:
    """``n`` problems with ``p_i ~ Beta`` (mean ``mean``), ``k`` Bernoulli(p_i) samples each."""
    p = gen.beta(mean * concentration, (1 - mean) * concentration, size=n)
    return gen.random((n, k)) < p[:, None]


# --------------------------------------------------------------------------------------
# pass@k
# --------------------------------------------------------------------------------------


def brute_pass_at_k(n: int, c: int, k: int) -> Fraction:
    """Fraction of the size-k subsets of n samples (c correct) holding a correct one."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    hits = sum(any(samples[i] for i in s) for s in subsets)
    return Fraction(hits, len(subsets))


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_matches_subset_enumeration(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(float(brute_pass_at_k(n, c, k)), abs=1e-12)


# (n, c, k, expected) harvested by hand / exact arithmetic
PASS_AT_K_CASES = [
    (10, 3, 1, 0.3),
    (8, 0, 8, 0.0),
    (8, 8, 1, 1.0),
    (8, 1, 8, 1.0),
    (4, 2, 2, 5 / 6),  # 1 - C(2,2)/C(4,2) = 1 - 1/6
    (5, 1, 2, 0.4),  # 1 - C(4,2)/C(5,2) = 1 - 6/10
    (16, 4, 8, 1 - 495 / 12870),  # 1 - C(12,8)/C(16,8)
]


@pytest.mark.parametrize(("n", "c", "k", "expected"), PASS_AT_K_CASES)
def test_pass_at_k_known_values(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("n", "c"), [(1, 0), (1, 1), (7, 3), (64, 17), (1000, 999)])
def test_pass_at_1_is_fraction_correct(n: int, c: int) -> None:
    assert pass_at_k(n, c, 1) == pytest.approx(c / n, abs=1e-12)


@pytest.mark.parametrize(("n", "c", "k"), [(1000, 10, 100), (2000, 3, 500), (5000, 1, 4999)])
def test_pass_at_k_stable_for_large_n(n: int, c: int, k: int) -> None:
    exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
    assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-10)


def test_pass_at_k_matrix_is_mean_over_problems() -> None:
    correct = np.array(
        [
            [1, 0, 0, 0],
            [1, 1, 0, 0],
            [0, 0, 0, 0],
            [1, 1, 1, 1],
        ]
    )
    for k in range(1, 5):
        expected = np.mean([pass_at_k(4, int(c), k) for c in correct.sum(axis=1)])
        assert pass_at_k_matrix(correct, k) == pytest.approx(expected, abs=1e-12)
    assert pass_at_k_matrix(correct, 1) == pytest.approx(avg_at_k(correct))
    assert pass_at_k_matrix(correct, 2) == pytest.approx((0.5 + 5 / 6 + 0 + 1) / 4)


# --------------------------------------------------------------------------------------
# avg@k
# --------------------------------------------------------------------------------------


AVG_AT_K_CASES = [
    ([[1]], 1.0),
    ([[0]], 0.0),
    ([[1], [0], [1], [1]], 0.75),
    ([[1, 0], [1, 1], [0, 0]], 0.5),
    ([[True, False, False, False], [True, True, True, False]], 0.5),
    ([[1, 1, 1, 1, 1, 1, 1, 0]], 0.875),
]


@pytest.mark.parametrize(("correct", "expected"), AVG_AT_K_CASES)
def test_avg_at_k_hand_values(correct: list[list[int]], expected: float) -> None:
    assert avg_at_k(correct) == pytest.approx(expected, abs=1e-15)
    assert isinstance(avg_at_k(correct), float)


# --------------------------------------------------------------------------------------
# bootstrap_ci
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "statistic"), [(1, "avg"), (4, "avg"), (4, "pass@2")])
def test_bootstrap_agrees_with_scipy_percentile(k: int, statistic: str) -> None:
    correct = heterogeneous(rng(1), n=300, k=k)
    ours = bootstrap_ci(correct, rng=rng(2), n_resamples=20_000, statistic=statistic)
    if statistic == "avg":
        scores = correct.mean(axis=1)
    else:
        scores = np.array([pass_at_k(k, int(c), 2) for c in correct.sum(axis=1)])
    ref = scipy.stats.bootstrap(
        (scores,),
        np.mean,
        n_resamples=20_000,
        method="percentile",
        confidence_level=0.95,
        rng=rng(3),
    )
    assert ours.value == pytest.approx(scores.mean(), abs=1e-12)
    # Monte Carlo standard error of a 2.5% quantile at B=20,000 here is ~0.0006 per endpoint.
    assert ours.ci_low == pytest.approx(ref.confidence_interval.low, abs=0.004)
    assert ours.ci_high == pytest.approx(ref.confidence_interval.high, abs=0.004)
    assert ours.method == "bootstrap-percentile(problems)"
    assert ours.level == 0.95


def test_bootstrap_se_matches_binomial_for_k1() -> None:
    n, c = 400, 120
    correct = np.zeros((n, 1), dtype=bool)
    correct[:c] = True
    p = c / n
    reps = bootstrap_distribution(correct, rng=rng(4), n_resamples=20_000)
    # The bootstrap variance of a mean is the plug-in variance / n: here p(1-p)/n exactly.
    assert reps.std(ddof=1) == pytest.approx(math.sqrt(p * (1 - p) / n), rel=0.03)
    ci = bootstrap_ci(correct, rng=rng(4), n_resamples=20_000)
    assert ci.width == pytest.approx(2 * 1.96 * math.sqrt(p * (1 - p) / n), rel=0.05)


def test_bootstrap_se_is_between_problem_se_for_k4() -> None:
    correct = heterogeneous(rng(5), n=250, k=4)
    scores = correct.mean(axis=1)
    reps = bootstrap_distribution(correct, rng=rng(6), n_resamples=20_000)
    assert reps.std(ddof=1) == pytest.approx(scores.std(ddof=0) / math.sqrt(250), rel=0.03)
    assert reps.mean() == pytest.approx(scores.mean(), abs=0.002)


@pytest.mark.parametrize(("k", "heterogeneity"), [(1, None), (4, 2.0)])
def test_bootstrap_coverage(k: int, heterogeneity: float | None) -> None:
    """1,000 simulated benchmarks with true accuracy 0.6: the 95% interval covers it ~95%.

    For k=4 every dataset draws fresh problems with p_i ~ Beta(1.2, 0.8) (mean 0.6), so the
    estimand E[p_i] is only estimated well when problems, not samples, are resampled.
    """
    gen = rng(7 + k)
    n, truth, reps = 200, 0.6, 1_000
    covered = 0
    for _ in range(reps):
        if heterogeneity is None:
            data = gen.random((n, k)) < truth
        else:
            data = heterogeneous(gen, n, k, mean=truth, concentration=heterogeneity)
        ci = bootstrap_ci(data, rng=gen, n_resamples=1_000)
        covered += ci.ci_low <= truth <= ci.ci_high
    assert 0.93 <= covered / reps <= 0.97, covered / reps


def test_bootstrap_seeded_reproducibility() -> None:
    correct = heterogeneous(rng(8), n=100, k=4)
    a = bootstrap_ci(correct, rng=rng(42), n_resamples=2_000)
    b = bootstrap_ci(correct, rng=rng(42), n_resamples=2_000)
    c = bootstrap_ci(correct, rng=rng(43), n_resamples=2_000)
    assert a == b
    assert (a.ci_low, a.ci_high) != (c.ci_low, c.ci_high)
    assert a.value == c.value
    da = bootstrap_distribution(correct, rng=rng(42), n_resamples=2_000)
    db = bootstrap_distribution(correct, rng=rng(42), n_resamples=2_000)
    np.testing.assert_array_equal(da, db)


def test_bootstrap_in_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Large inputs are resampled in blocks of replicates; the result is still a bootstrap."""
    from rlvr_audit.analysis import stats

    correct = heterogeneous(rng(9), n=64, k=2)
    monkeypatch.setattr(stats, "_CHUNK_ELEMENTS", 64 * 7)  # blocks of 7 replicates
    reps = bootstrap_distribution(correct, rng=rng(10), n_resamples=1_000)
    assert reps.shape == (1_000,)
    assert np.all(np.isfinite(reps))
    scores = correct.mean(axis=1)
    assert reps.std() == pytest.approx(scores.std() / 8, rel=0.15)


@pytest.mark.parametrize("value", [0, 1])
@pytest.mark.parametrize("statistic", ["avg", "pass@1", "pass@3"])
def test_degenerate_data_gives_zero_width(value: int, statistic: str) -> None:
    correct = np.full((50, 4), value)
    ci = bootstrap_ci(correct, rng=rng(), n_resamples=500, statistic=statistic)
    assert ci == Interval(float(value), float(value), float(value), 0.95, ci.method)
    assert ci.width == 0.0


def test_single_problem_gives_zero_width() -> None:
    ci = bootstrap_ci([[1, 0, 1, 1]], rng=rng(), n_resamples=100)
    assert (ci.value, ci.ci_low, ci.ci_high) == (0.75, 0.75, 0.75)


def test_level_changes_width() -> None:
    correct = heterogeneous(rng(11), n=200, k=1)
    w90 = bootstrap_ci(correct, rng=rng(1), n_resamples=5_000, level=0.90).width
    w99 = bootstrap_ci(correct, rng=rng(1), n_resamples=5_000, level=0.99).width
    assert w90 < w99


# --------------------------------------------------------------------------------------
# paired_bootstrap_ci
# --------------------------------------------------------------------------------------


def test_paired_identical_inputs_is_zero() -> None:
    correct = heterogeneous(rng(12), n=100, k=4)
    ci = paired_bootstrap_ci(correct, correct.copy(), rng=rng(), n_resamples=1_000)
    assert (ci.value, ci.ci_low, ci.ci_high) == (0.0, 0.0, 0.0)
    assert ci.method == "paired-bootstrap-percentile(problems)"


def correlated_pair(gen: np.random.Generator, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Baseline and treatment sharing problem difficulty; treatment is +0.08 easier."""
    p = gen.beta(1.0, 1.0, size=n)
    baseline = gen.random((n, 4)) < p[:, None]
    treatment = gen.random((n, 8)) < np.clip(p + 0.08, 0, 1)[:, None]
    return baseline, treatment


def test_paired_narrower_than_unpaired_on_correlated_data() -> None:
    baseline, treatment = correlated_pair(rng(13))
    paired = paired_bootstrap_ci(baseline, treatment, rng=rng(14), n_resamples=5_000)
    gen = rng(15)
    unpaired_reps = bootstrap_distribution(treatment, rng=gen, n_resamples=5_000) - bootstrap_distribution(
        baseline, rng=gen, n_resamples=5_000
    )
    lo, hi = np.quantile(unpaired_reps, [0.025, 0.975])
    assert paired.value == pytest.approx(avg_at_k(treatment) - avg_at_k(baseline), abs=1e-12)
    assert paired.width < 0.7 * (hi - lo)
    assert paired.ci_low > 0  # a real +0.08 gain is detected


def test_paired_agrees_with_scipy_paired_bootstrap() -> None:
    baseline, treatment = correlated_pair(rng(16))
    ours = paired_bootstrap_ci(baseline, treatment, rng=rng(17), n_resamples=20_000)
    ref = scipy.stats.bootstrap(
        (treatment.mean(axis=1), baseline.mean(axis=1)),
        lambda t, b, axis=-1: np.mean(t, axis=axis) - np.mean(b, axis=axis),
        paired=True,
        n_resamples=20_000,
        method="percentile",
        rng=rng(18),
    )
    assert ours.ci_low == pytest.approx(ref.confidence_interval.low, abs=0.004)
    assert ours.ci_high == pytest.approx(ref.confidence_interval.high, abs=0.004)


def test_paired_pass_at_j() -> None:
    baseline, treatment = correlated_pair(rng(19))
    ci = paired_bootstrap_ci(baseline, treatment, rng=rng(), n_resamples=1_000, statistic="pass@4")
    assert ci.value == pytest.approx(pass_at_k_matrix(treatment, 4) - pass_at_k_matrix(baseline, 4), abs=1e-12)
    with pytest.raises(ValueError, match="pass@8"):
        paired_bootstrap_ci(baseline, treatment, rng=rng(), statistic="pass@8")  # k_b = 4


# --------------------------------------------------------------------------------------
# paired_permutation_pvalue
# --------------------------------------------------------------------------------------


def brute_sign_flip_p(d: np.ndarray) -> float:
    observed = abs(d.sum())
    signs = itertools.product((-1, 1), repeat=len(d))
    flips = [abs(np.dot(s, d)) >= observed - 1e-12 for s in signs]
    return sum(flips) / len(flips)


# (baseline, treatment, expected p) checked by hand
PERMUTATION_CASES = [
    ([[0]] * 5, [[1]] * 5, 2 / 32),  # d = [1,1,1,1,1]: only all-plus and all-minus reach 5
    ([[0]] * 5 + [[1]] * 3, [[1]] * 8, 2 / 32),  # ties (d = 0) change nothing
    ([[1]] * 5, [[0]] * 5, 2 / 32),  # two-sided
    ([[0], [0], [1]], [[1], [1], [0]], 1.0),  # d = [1, 1, -1]: every |sum| >= 1
    ([[0, 0], [0, 0], [0, 1]], [[1, 1], [1, 0], [1, 1]], 2 / 8),  # d = [1, .5, .5]
    ([[0]], [[1]], 1.0),  # one problem: both signs reach |d|
]


@pytest.mark.parametrize(("baseline", "treatment", "expected"), PERMUTATION_CASES)
def test_permutation_exact_hand_cases(baseline: list[list[int]], treatment: list[list[int]], expected: float) -> None:
    assert paired_permutation_pvalue(baseline, treatment, rng=rng()) == pytest.approx(expected)


def test_permutation_identical_inputs_is_one() -> None:
    correct = heterogeneous(rng(20), n=200, k=4)
    assert paired_permutation_pvalue(correct, correct, rng=rng()) == 1.0


@pytest.mark.parametrize("seed", range(5))
def test_permutation_exact_matches_brute_force(seed: int) -> None:
    gen = rng(100 + seed)
    n = int(gen.integers(3, 12))
    baseline = gen.random((n, 3)) < 0.5
    treatment = gen.random((n, 2)) < 0.6
    d = treatment.mean(axis=1) - baseline.mean(axis=1)
    got = paired_permutation_pvalue(baseline, treatment, rng=gen)
    assert got == pytest.approx(brute_sign_flip_p(d), abs=1e-12)


def test_permutation_monte_carlo_agrees_with_exact() -> None:
    """20 nonzero differences (> EXACT_PERMUTATION_MAX): Monte Carlo vs full enumeration."""
    gen = rng(21)
    n = 20
    assert n > EXACT_PERMUTATION_MAX
    baseline = np.zeros((n, 1), dtype=bool)
    treatment = np.ones((n, 1), dtype=bool)
    treatment[:7] = False
    baseline[:7] = True  # d = [-1]*7 + [1]*13: sum 6
    d = np.r_[-np.ones(7), np.ones(13)]
    codes = np.arange(1 << n, dtype=np.int64)[:, None]
    signs = ((codes >> np.arange(n)) & 1) * 2 - 1
    exact = float(np.mean(np.abs(signs @ d) >= abs(d.sum())))
    b = 20_000
    got = paired_permutation_pvalue(baseline, treatment, rng=gen, n_resamples=b)
    assert got == pytest.approx(exact, abs=4 * math.sqrt(exact * (1 - exact) / b) + 1 / b)


def test_permutation_monte_carlo_never_zero_and_seeded() -> None:
    baseline = np.zeros((40, 2), dtype=bool)
    treatment = np.ones((40, 2), dtype=bool)
    p = paired_permutation_pvalue(baseline, treatment, rng=rng(1), n_resamples=999)
    assert p == pytest.approx(1 / 1000)
    a, b = correlated_pair(rng(22), n=60)
    p1 = paired_permutation_pvalue(a, b, rng=rng(5), n_resamples=2_000)
    p2 = paired_permutation_pvalue(a, b, rng=rng(5), n_resamples=2_000)
    assert p1 == p2
    assert 0 < p1 <= 1


# --------------------------------------------------------------------------------------
# per_problem_matrix
# --------------------------------------------------------------------------------------


def grade(pid: str, idx: int, verdict: Verdict = "correct", **kw: str) -> Grade:
    fields = {"unit_key": "u1", "grader_id": "math_verify", "grader_version": "1"} | kw
    return Grade(problem_id=pid, sample_idx=idx, verdict=verdict, **fields)


def test_per_problem_matrix_builds_rows() -> None:
    grades = [
        grade("b", 1, "incorrect"),
        grade("a", 0),
        grade("b", 0),
        grade("a", 1, "truncated"),
    ]
    ids, correct = per_problem_matrix(grades)
    assert ids == ["a", "b"]
    np.testing.assert_array_equal(correct, [[True, False], [True, False]])
    ids, correct = per_problem_matrix(grades, problem_ids=["b"])
    assert ids == ["b"]
    np.testing.assert_array_equal(correct, [[True, False]])


@pytest.mark.parametrize(
    ("grades", "problem_ids", "message"),
    [
        ([], None, "no grades"),
        ([grade("a", 0), grade("a", 0)], None, "two grades for sample 0"),
        ([grade("a", 0), grade("b", 0, unit_key="u2")], None, "several units"),
        ([grade("a", 0), grade("b", 0, grader_id="strict")], None, "several graders"),
        ([grade("a", 0), grade("a", 1), grade("b", 0)], None, "problem 'b'"),
        ([grade("a", 0), grade("b", 1)], None, "problem 'b'"),
        ([grade("a", 0)], ["a", "z"], "no grades for problem 'z'"),
        ([grade("a", 0)], ["a", "a"], "more than once"),
    ],
)
def test_per_problem_matrix_validation(grades: list[Grade], problem_ids: list[str] | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        per_problem_matrix(grades, problem_ids=problem_ids)


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


BAD_MATRICES = [
    ([], "empty"),
    (np.zeros((0, 4)), "empty"),
    ([[]], "no samples"),
    (np.zeros(5), "2-D"),
    (np.zeros((2, 2, 2)), "2-D"),
    ([[1, 0], [1, 0], [1]], "ragged.*problem 2 has 1"),
    (np.array([[1, 0], [1]], dtype=object), "ragged.*problem 1"),
    ([[1.0, 0.0], [1.0, 0.0], [np.nan, 1.0]], "NaN in problem 2"),
    ([[1, 2]], "0/1.*problem 0 sample 1"),
    ([[0.5]], "0/1"),
    ([["a", "b"]], "dtype"),
    (np.array([[1, None]], dtype=object), "NaN in problem 0"),  # None becomes NaN
    (np.array([[1, "x"]], dtype=object), "convert"),
]


@pytest.mark.parametrize(("bad", "message"), BAD_MATRICES)
def test_bad_matrix_is_a_value_error(bad: object, message: str) -> None:
    for call in (
        lambda: avg_at_k(bad),  # type: ignore[arg-type]
        lambda: pass_at_k_matrix(bad, 1),  # type: ignore[arg-type]
        lambda: bootstrap_ci(bad, rng=rng()),  # type: ignore[arg-type]
    ):
        with pytest.raises(ValueError, match=message):
            call()
    with pytest.raises(ValueError, match="treatment.*" + message):
        paired_bootstrap_ci([[1]], bad, rng=rng())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="baseline.*" + message):
        paired_permutation_pvalue(bad, [[1]], rng=rng())  # type: ignore[arg-type]


def test_paired_row_mismatch() -> None:
    with pytest.raises(ValueError, match="baseline has 3 problems and treatment has 2"):
        paired_bootstrap_ci(np.ones((3, 1)), np.ones((2, 4)), rng=rng())
    with pytest.raises(ValueError, match="same problems"):
        paired_permutation_pvalue(np.ones((3, 1)), np.ones((2, 1)), rng=rng())


@pytest.mark.parametrize("level", [0, 1, 1.5, -0.1, float("nan"), 95])
def test_bad_level(level: float) -> None:
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci([[1]], rng=rng(), level=level)
    with pytest.raises(ValueError, match="level"):
        paired_bootstrap_ci([[1]], [[1]], rng=rng(), level=level)


@pytest.mark.parametrize(
    ("n", "c", "k", "message"),
    [
        (3, 1, 4, "k must be in"),
        (3, 1, 0, "k must be in"),
        (3, 4, 1, "c .* must be in"),
        (3, -1, 1, "c .* must be in"),
        (0, 0, 1, "n .* must be >= 1"),
    ],
)
def test_bad_pass_at_k(n: int, c: int, k: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pass_at_k(n, c, k)


def test_bad_statistic_and_k() -> None:
    correct = np.ones((5, 4))
    with pytest.raises(ValueError, match="needs 1 <= j <= k"):
        pass_at_k_matrix(correct, 5)
    with pytest.raises(ValueError, match="needs 1 <= j <= k"):
        bootstrap_ci(correct, rng=rng(), statistic="pass@0")
    with pytest.raises(ValueError, match="'avg' or 'pass@j'"):
        bootstrap_ci(correct, rng=rng(), statistic="median")
    with pytest.raises(TypeError, match="integer"):
        pass_at_k_matrix(correct, 2.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -5])
def test_bad_n_resamples(bad: int) -> None:
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_ci([[1]], rng=rng(), n_resamples=bad)
    with pytest.raises(ValueError, match="n_resamples"):
        paired_permutation_pvalue([[1]], [[0]], rng=rng(), n_resamples=bad)


@pytest.mark.parametrize("bad", [0, None, np.random.RandomState(0)])
def test_rng_must_be_a_generator(bad: object) -> None:
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        bootstrap_ci([[1]], rng=bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        paired_permutation_pvalue([[1]], [[0]], rng=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["BCa", "basic", None])
def test_bad_interval_method(bad: object) -> None:
    with pytest.raises(ValueError, match="method must be one of 'percentile', 'bca'"):
        bootstrap_ci([[1], [0]], rng=rng(), method=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="method must be one of"):
        paired_bootstrap_ci([[1], [0]], [[0], [1]], rng=rng(), method=bad)  # type: ignore[arg-type]


def test_interval_reports_the_bootstrap_se() -> None:
    correct = heterogeneous(rng(23), n=150, k=2)
    ci = bootstrap_ci(correct, rng=rng(24), n_resamples=4_000)
    reps = bootstrap_distribution(correct, rng=rng(24), n_resamples=4_000)
    assert ci.se == pytest.approx(reps.std(ddof=1), rel=1e-12)
    assert ci.se == pytest.approx(correct.mean(axis=1).std() / math.sqrt(150), rel=0.05)
