"""rlvr_audit.analysis.stats against theory: multiplicity, McNemar, power, BCa, the shared resampling plan.

Reference values are hand-computed or come from scipy; simulation checks are seeded, so they
are deterministic, and sized to run in seconds.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.stats

from rlvr_audit.analysis import interval_coverage as cov
from rlvr_audit.analysis import stats
from rlvr_audit.analysis.stats import (
    Interval,
    ResamplingPlan,
    align_problems,
    benjamini_hochberg,
    binomial_two_sided_half,
    bootstrap_ci,
    ci_half_width,
    holm,
    maj_at_k,
    maj_at_k_scores,
    mcnemar_counts,
    mcnemar_exact,
    minimum_detectable_effect,
    paired_bootstrap_ci,
    paired_permutation_pvalue,
    paired_test,
    per_problem_scores,
    problems_needed,
    samples_per_problem_needed,
    seed_spread,
)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------------------
# Holm and Benjamini-Hochberg
# --------------------------------------------------------------------------------------

# (p-values, Holm, BH), adjusted by hand:
# Holm: sorted p times (m, m-1, ..., 1), running max, capped at 1.
# BH: sorted p times m / rank, running min from the largest, capped at 1.
MULTIPLICITY_CASES = [
    ([0.01], [0.01], [0.01]),
    # sorted .005 .01 .03 .04 -> Holm 4*.005=.02, 3*.01=.03, 2*.03=.06, 1*.04=.04 -> max .06
    # BH .005*4/1=.02, .01*4/2=.02, .03*4/3=.04, .04*4/4=.04
    ([0.01, 0.04, 0.03, 0.005], [0.03, 0.06, 0.06, 0.02], [0.02, 0.04, 0.04, 0.02]),
    # Holm caps at 1; BH keeps the running min from above: .5*3/2=.75 > .6*3/3=.6 -> .6
    ([0.5, 0.6, 0.001], [1.0, 1.0, 0.003], [0.6, 0.6, 0.003]),
    # ties keep the same adjusted value
    ([0.02, 0.02, 0.02], [0.06, 0.06, 0.06], [0.02, 0.02, 0.02]),
    ([0.0, 1.0], [0.0, 1.0], [0.0, 1.0]),
    ([], [], []),
]


@pytest.mark.parametrize(("p", "expected_holm", "expected_bh"), MULTIPLICITY_CASES)
def test_holm_and_bh_hand_computed(p: list[float], expected_holm: list[float], expected_bh: list[float]) -> None:
    np.testing.assert_allclose(holm(p), expected_holm, rtol=0, atol=1e-12)
    np.testing.assert_allclose(benjamini_hochberg(p), expected_bh, rtol=0, atol=1e-12)


def test_bh_matches_scipy_false_discovery_control() -> None:
    p = rng(1).random(37) ** 3
    np.testing.assert_allclose(benjamini_hochberg(p), scipy.stats.false_discovery_control(p), rtol=1e-12)


def test_adjusted_never_below_raw_and_bh_never_above_holm() -> None:
    p = rng(2).random(50) ** 2
    h, b = holm(p), benjamini_hochberg(p)
    assert np.all(h >= p) and np.all(b >= p) and np.all(b <= h + 1e-15)
    assert np.all((h <= 1) & (b <= 1))


@pytest.mark.parametrize("bad", [[0.1, float("nan")], [0.1, 1.5], [-0.01], [[0.1, 0.2]], ["x"]])
def test_bad_p_values(bad: object) -> None:
    for f in (holm, benjamini_hochberg):
        with pytest.raises(ValueError, match="p_values"):
            f(bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# McNemar
# --------------------------------------------------------------------------------------


def test_mcnemar_textbook_table() -> None:
    """Agresti (2013, Table 11.1 style): b = 3 discordant one way, c = 13 the other.

    Exact two-sided: 2 * P(Binomial(16, 1/2) <= 3) = 2 * (1 + 16 + 120 + 560) / 65536.
    """
    base = [1] * 3 + [0] * 13 + [1] * 20 + [0] * 10
    treat = [0] * 3 + [1] * 13 + [1] * 20 + [0] * 10
    assert mcnemar_counts(base, treat) == (3, 13)
    assert mcnemar_exact(base, treat) == pytest.approx(2 * 697 / 65536, rel=1e-12)


@pytest.mark.parametrize(("b", "c"), [(0, 0), (0, 1), (1, 0), (2, 2), (3, 13), (10, 4), (0, 9), (40, 61), (250, 300)])
def test_binomial_half_matches_scipy_binomtest(b: int, c: int) -> None:
    expected = 1.0 if b + c == 0 else scipy.stats.binomtest(c, b + c, 0.5).pvalue
    assert binomial_two_sided_half(b, c) == pytest.approx(expected, rel=1e-10, abs=1e-300)


@pytest.mark.parametrize("seed", range(4))
def test_mcnemar_equals_exact_sign_flip_test_for_k1(seed: int) -> None:
    gen = rng(seed)
    n = 30
    base = gen.random(n) < 0.5
    treat = np.where(gen.random(n) < 0.7, base, ~base)  # about 9 discordant: enumerated exactly
    b, c = mcnemar_counts(base, treat)
    if b + c <= 16:
        assert mcnemar_exact(base, treat) == pytest.approx(
            paired_permutation_pvalue(base[:, None], treat[:, None], rng=gen), abs=1e-12
        )


def test_mcnemar_accepts_one_column_matrices_and_validates() -> None:
    assert mcnemar_exact(np.ones((4, 1)), np.zeros((4, 1))) == pytest.approx(2 / 16)
    with pytest.raises(ValueError, match="baseline has 3 problems and treatment has 2"):
        mcnemar_exact([1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match="one sample per problem"):
        mcnemar_exact(np.ones((3, 2)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="treatment must hold only 0/1"):
        mcnemar_exact([1, 0], [1, 2])


# --------------------------------------------------------------------------------------
# Power
# --------------------------------------------------------------------------------------


def test_mde_monotone_in_n_and_k() -> None:
    ns = [30, 100, 500, 2_000, 10_000]
    mdes = [minimum_detectable_effect(n_problems=n, accuracy=0.5) for n in ns]
    assert all(a > b for a, b in itertools.pairwise(mdes))
    ks = [1, 2, 4, 8, 16, 64]
    mdes = [minimum_detectable_effect(n_problems=100, k=k, accuracy=0.3) for k in ks]
    assert all(a > b for a, b in itertools.pairwise(mdes))


def test_mde_magnitudes_for_math500_and_aime() -> None:
    math500 = minimum_detectable_effect(n_problems=500, k=1, accuracy=0.5)
    aime = minimum_detectable_effect(n_problems=30, k=8, accuracy=0.2)
    assert 0.03 < math500 < 0.10  # several points
    assert aime > 2 * math500


def test_mde_k1_is_connor_mcnemar_formula() -> None:
    """k=1: discordant fraction psi = 2 v (1 - icc * rho) at delta -> 0 (equal variances)."""
    mu, n, icc, rho = 0.5, 500, 0.7, 0.8
    d = minimum_detectable_effect(n_problems=n, accuracy=mu, problem_icc=icc, pair_correlation=rho)
    v_b, v_t = mu * (1 - mu), (mu + d) * (1 - mu - d)
    sigma2 = v_b + v_t - 2 * icc * rho * math.sqrt(v_b * v_t)
    z_a, z_b = scipy.stats.norm.ppf(0.975), scipy.stats.norm.ppf(0.8)
    assert d * math.sqrt(n) == pytest.approx(z_a * math.sqrt(sigma2 + d * d) + z_b * math.sqrt(sigma2), rel=1e-6)


def test_mde_respects_the_frechet_bound_for_perfect_correlation() -> None:
    """icc = rho = 1: every discordant problem favours the treatment, so the discordant
    fraction equals delta and McNemar needs about (z_a + z_b)^2 of them: delta ~ 7.8 / n."""
    d = minimum_detectable_effect(n_problems=500, accuracy=0.5, problem_icc=1.0, pair_correlation=1.0)
    z_a, z_b = scipy.stats.norm.ppf(0.975), scipy.stats.norm.ppf(0.8)
    assert d * math.sqrt(500) == pytest.approx(z_a * math.sqrt(d) + z_b * math.sqrt(d - d * d), rel=1e-6)
    assert 0.01 < d < 0.02


def test_mde_unreachable_is_inf_and_problems_needed_inverts_it() -> None:
    assert minimum_detectable_effect(n_problems=3, accuracy=0.97) == math.inf
    assert minimum_detectable_effect(n_problems=10, accuracy=1.0) == math.inf
    for n, k, acc in [(500, 1, 0.5), (30, 8, 0.2), (1_319, 4, 0.8)]:
        d = minimum_detectable_effect(n_problems=n, k=k, accuracy=acc)
        assert problems_needed(effect=d, k=k, accuracy=acc) == n
        assert problems_needed(effect=d * 1.05, k=k, accuracy=acc) < n


def test_samples_per_problem_needed() -> None:
    d = minimum_detectable_effect(n_problems=100, k=6, accuracy=0.3)
    assert samples_per_problem_needed(effect=d, n_problems=100, accuracy=0.3) == 6
    assert samples_per_problem_needed(effect=d * 1.2, n_problems=100, accuracy=0.3) < 6
    # the between-problem floor: no k detects 2 points on 30 problems
    assert samples_per_problem_needed(effect=0.02, n_problems=30, accuracy=0.3) is None


def test_ci_half_width_is_binomial_for_k1_and_shrinks_with_k() -> None:
    assert ci_half_width(n_problems=500, accuracy=0.5) == pytest.approx(1.959964 * math.sqrt(0.25 / 500), rel=1e-6)
    assert ci_half_width(n_problems=500, accuracy=0.5, problem_icc=0.1) == pytest.approx(
        ci_half_width(n_problems=500, accuracy=0.5, problem_icc=0.9)
    )
    w = [ci_half_width(n_problems=30, k=k, accuracy=0.2) for k in (1, 4, 16)]
    assert w[0] > w[1] > w[2] > 1.96 * math.sqrt(0.16 * 0.7 / 30)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"n_problems": 0, "accuracy": 0.5}, ValueError, "n_problems"),
        ({"n_problems": 10.0, "accuracy": 0.5}, TypeError, "n_problems"),
        ({"n_problems": 10, "k": 0, "accuracy": 0.5}, ValueError, "k must be"),
        ({"n_problems": 10, "accuracy": 1.5}, ValueError, "accuracy"),
        ({"n_problems": 10, "accuracy": 0.5, "alpha": 0}, ValueError, "alpha"),
        ({"n_problems": 10, "accuracy": 0.5, "power": 1}, ValueError, "power"),
        ({"n_problems": 10, "accuracy": 0.5, "problem_icc": -0.1}, ValueError, "problem_icc"),
        ({"n_problems": 10, "accuracy": 0.5, "pair_correlation": 2}, ValueError, "pair_correlation"),
    ],
)
def test_power_validation(kwargs: dict[str, object], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        minimum_detectable_effect(**kwargs)  # type: ignore[arg-type]


def test_effect_validation() -> None:
    with pytest.raises(ValueError, match="effect must be a gain in"):
        problems_needed(effect=0.6, accuracy=0.5)
    with pytest.raises(ValueError, match="effect must be a gain in"):
        samples_per_problem_needed(effect=0, n_problems=10, accuracy=0.5)


def test_power_at_the_mde_is_80_percent_for_mcnemar() -> None:
    """Simulate greedy benchmarks (n=500, k=1, 50%) with a true gain equal to the MDE.

    Each problem's pair of outcomes is drawn from the 2x2 table with the model's marginals
    (mu, mu + delta) and correlation icc * rho; McNemar's exact test at 0.05 should reject in
    about 80% of 4,000 replicates (Monte Carlo SE 0.6 points; the exact test's discreteness
    costs a little power).
    """
    n, mu, icc, rho = 500, 0.5, 0.7, 0.8
    delta = minimum_detectable_effect(n_problems=n, accuracy=mu)
    mt = mu + delta
    cov = icc * rho * math.sqrt(mu * (1 - mu) * mt * (1 - mt))
    p11 = mu * mt + cov
    p10, p01 = mu - p11, mt - p11  # base only, treatment only
    gen = rng(3)
    counts = gen.multinomial(n, [p11, p10, p01, 1 - p11 - p10 - p01], size=4_000)
    b, c = counts[:, 1], counts[:, 2]
    m = b + c
    pvals = np.minimum(1.0, 2 * scipy.stats.binom.cdf(np.minimum(b, c), m, 0.5))
    pvals[b == c] = 1.0
    assert 0.76 <= np.mean(pvals <= 0.05) <= 0.84


def test_power_at_the_mde_is_80_percent_for_k_samples() -> None:
    """k=8 samples on 200 problems: solve rates with the model's moments, sign-flip z test.

    Solve rates: p_i = mu + sqrt(icc v) * x_i and q_i = mu_t + sqrt(icc v_t) * y_i with
    (x_i, y_i) standard bivariate with correlation rho, drawn as a discrete symmetric
    two-point mixture so p and q stay in [0, 1]; the test is the large-sample sign-flip test
    (reject when |sum d| > 1.96 sqrt(sum d^2)).
    """
    n, k, mu, icc, rho = 200, 8, 0.4, 0.3, 0.8
    delta = minimum_detectable_effect(n_problems=n, k=k, accuracy=mu, problem_icc=icc, pair_correlation=rho)
    mt = mu + delta
    sb, st = math.sqrt(icc * mu * (1 - mu)), math.sqrt(icc * mt * (1 - mt))
    gen = rng(4)
    reps = 3_000
    x = gen.choice([-1.0, 1.0], size=(reps, n))
    y = np.where(gen.random((reps, n)) < (1 + rho) / 2, x, -x)  # Corr(x, y) = rho, Var = 1
    p, q = mu + sb * x, mt + st * y
    assert p.min() >= 0 and q.max() <= 1
    sb_ = gen.binomial(k, p) / k
    st_ = gen.binomial(k, q) / k
    d = st_ - sb_
    z = d.sum(axis=1) / np.sqrt((d * d).sum(axis=1))
    assert 0.76 <= np.mean(np.abs(z) > 1.959964) <= 0.84


# --------------------------------------------------------------------------------------
# Bootstrap against theory and scipy
# --------------------------------------------------------------------------------------


def heterogeneous(gen: np.random.Generator, n: int, k: int, mean: float, concentration: float) -> np.ndarray:
    """``n`` problems with ``p_i ~ Beta`` (mean ``mean``), ``k`` Bernoulli(p_i) samples each."""
    p = gen.beta(mean * concentration, (1 - mean) * concentration, size=n)
    return gen.random((n, k)) < p[:, None]


def quantile_mc_sd(se: float, q: float, n_resamples: int) -> float:
    """Monte Carlo sd of a bootstrap q-quantile of a normal replicate distribution with sd ``se``."""
    return math.sqrt(q * (1 - q) / n_resamples) / scipy.stats.norm.pdf(scipy.stats.norm.ppf(q)) * se


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_bootstrap_se_is_binomial_se(p: float) -> None:
    """Bernoulli(p), n=500, one sample each: bootstrap SE = sqrt(phat (1 - phat) / n) within MC error."""
    n, b = 500, 20_000
    correct = (rng(30).random(n) < p)[:, None]
    phat = correct.mean()
    plan = ResamplingPlan(n, b, rng=rng(31))
    se = plan.replicates(correct[:, 0].astype(float)).std(ddof=1)
    # sd of a sample sd over b draws ~ se / sqrt(2b) (0.5% here); allow 4 of them
    assert se == pytest.approx(math.sqrt(phat * (1 - phat) / n), rel=4 / math.sqrt(2 * b))
    assert bootstrap_ci(correct, rng=rng(32), n_resamples=b).se == pytest.approx(se, rel=0.03)


@pytest.mark.parametrize("method", ["percentile", "bca"])
@pytest.mark.parametrize(("n", "k", "mean"), [(500, 1, 0.5), (30, 8, 0.2), (200, 4, 0.85)])
def test_unit_interval_agrees_with_scipy_bootstrap(method: str, n: int, k: int, mean: float) -> None:
    correct = heterogeneous(rng(40 + n + k), n, k, mean, 1.5)
    b = 20_000
    ours = bootstrap_ci(correct, rng=rng(41), n_resamples=b, method=method)
    ref = scipy.stats.bootstrap(
        (correct.mean(axis=1),), np.mean, n_resamples=b, method=method, confidence_level=0.95, rng=rng(42)
    )
    # Monte Carlo error of two independent quantile estimates, plus one step of the lattice
    # the replicate means live on (multiples of 1 / (n k)): small benchmarks are lumpy
    tol = 4 * math.sqrt(2) * quantile_mc_sd(ours.se or 0.0, 0.025, b) * (1.5 if method == "bca" else 1) + 1 / (n * k)
    assert ours.value == pytest.approx(correct.mean(), abs=1e-12)
    assert ours.ci_low == pytest.approx(ref.confidence_interval.low, abs=tol)
    assert ours.ci_high == pytest.approx(ref.confidence_interval.high, abs=tol)
    assert ours.se == pytest.approx(ref.standard_error, rel=0.03)
    assert ours.method == f"bootstrap-{method}(problems)"


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_paired_interval_agrees_with_scipy_paired_bootstrap(method: str) -> None:
    gen = rng(43)
    n = 300
    p = gen.beta(0.7, 0.7, size=n)
    base = gen.random((n, 4)) < p[:, None]
    treat = gen.random((n, 4)) < np.clip(p + 0.06, 0, 1)[:, None]
    b = 20_000
    ours = paired_bootstrap_ci(base, treat, rng=rng(44), n_resamples=b, method=method)
    ref = scipy.stats.bootstrap(
        (treat.mean(axis=1), base.mean(axis=1)),
        lambda t, s, axis=-1: np.mean(t, axis=axis) - np.mean(s, axis=axis),
        paired=True,
        n_resamples=b,
        method=method,
        rng=rng(45),
    )
    tol = 6 * quantile_mc_sd(ours.se or 0.0, 0.025, b)
    assert ours.ci_low == pytest.approx(ref.confidence_interval.low, abs=tol)
    assert ours.ci_high == pytest.approx(ref.confidence_interval.high, abs=tol)
    assert ours.method == f"paired-bootstrap-{method}(problems)"


def test_bca_matches_scipy_on_the_same_replicates() -> None:
    """Same replicate distribution -> BCa quantile levels identical to scipy's formula.

    scipy's bootstrap accepts a previous result: feed it our replicates with ``n_resamples=0``
    so both compute BCa from the same bootstrap distribution.
    """
    correct = heterogeneous(rng(46), 60, 4, 0.15, 1.0)
    scores = correct.mean(axis=1)
    plan = ResamplingPlan(60, 5_000, rng=rng(47))
    reps = plan.replicates(scores)
    ours = plan.intervals_from_scores(scores, method="bca").units[0]
    prior = scipy.stats.bootstrap((scores,), np.mean, n_resamples=2, method="percentile", rng=rng(0))
    prior = type(prior)(
        confidence_interval=prior.confidence_interval, bootstrap_distribution=reps, standard_error=reps.std(ddof=1)
    )
    ref = scipy.stats.bootstrap((scores,), np.mean, n_resamples=0, method="BCa", bootstrap_result=prior)
    assert ours.ci_low == pytest.approx(ref.confidence_interval.low, abs=1e-12)
    assert ours.ci_high == pytest.approx(ref.confidence_interval.high, abs=1e-12)


def test_bca_shifts_a_skewed_interval_towards_the_long_tail() -> None:
    """AIME-like: 30 problems, 2 solved. The percentile interval is too short on the right."""
    correct = np.zeros((30, 1), dtype=bool)
    correct[:2] = True
    pct = bootstrap_ci(correct, rng=rng(48), n_resamples=20_000)
    bca = bootstrap_ci(correct, rng=rng(48), n_resamples=20_000, method="bca")
    assert bca.ci_high > pct.ci_high
    assert bca.ci_low <= pct.ci_low


@pytest.mark.parametrize(
    ("method", "n", "k", "concentration", "truth"),
    [
        ("percentile", 300, 1, None, 0.6),
        ("bca", 300, 1, None, 0.6),
        ("percentile", 200, 4, 2.0, 0.6),
        ("bca", 200, 4, 2.0, 0.6),
        ("bca", 100, 8, 1.0, 0.2),
    ],
)
def test_coverage_of_95_percent_intervals(
    method: str, n: int, k: int, concentration: float | None, truth: float
) -> None:
    """2,000 simulated benchmarks with known accuracy: the 95% interval covers it 93-97% of the time.

    Each dataset draws fresh problems (p_i ~ Beta with mean ``truth``, or p_i = truth for k=1
    Bernoulli data); the datasets are the columns of one plan, so all 2,000 intervals come
    from one vectorised pass (sharing the resampled indices across independent datasets does
    not bias each dataset's interval).
    """
    reps = 2_000
    gen = rng(50 + k + n)
    if concentration is None:
        data = gen.random((reps, n, k)) < truth
    else:
        p = gen.beta(truth * concentration, (1 - truth) * concentration, size=(reps, n))
        data = gen.random((reps, n, k)) < p[:, :, None]
    scores = data.mean(axis=2).T  # (n, reps)
    plan = ResamplingPlan(n, 2_000, rng=gen)
    ivs = plan.intervals_from_scores(scores, method=method).units
    covered = np.mean([iv.ci_low <= truth <= iv.ci_high for iv in ivs])
    assert 0.93 <= covered <= 0.97, covered


# --------------------------------------------------------------------------------------
# ResamplingPlan
# --------------------------------------------------------------------------------------


def test_plan_counts_are_a_bootstrap_and_repeat_on_every_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stats, "_CHUNK_ELEMENTS", 50 * 7)  # blocks of 7 replicates
    plan = ResamplingPlan(50, 100, rng=rng(60))
    first = np.concatenate(list(plan.count_blocks()))
    again = np.concatenate(list(plan.count_blocks()))
    np.testing.assert_array_equal(first, again)
    assert first.shape == (100, 50) and plan.block_size == 7
    assert np.all(first.sum(axis=1) == 50) and first.min() >= 0
    # each problem is drawn Binomial(50, 1/50) times per replicate: mean 1, variance 0.98
    assert first.mean() == pytest.approx(1.0)
    assert first.var() == pytest.approx(0.98, rel=0.1)


def test_plan_is_paired_and_same_as_the_one_off_functions() -> None:
    gen = rng(61)
    units = [heterogeneous(gen, 80, k, 0.5, 2.0) for k in (1, 4, 8)]
    ti = ResamplingPlan(80, 3_000, rng=rng(62)).intervals(units, pairs=[(0, 1), (2, 1)])
    for u, iv in zip(units, ti.units, strict=True):
        assert iv == bootstrap_ci(u, rng=rng(62), n_resamples=3_000)
    plan = ResamplingPlan(80, 3_000, rng=rng(62))
    reps = plan.replicates(np.stack([per_problem_scores(u) for u in units], axis=1))
    np.testing.assert_allclose(reps[:, 0], plan.replicates(per_problem_scores(units[0])), rtol=0, atol=1e-15)
    diff = reps[:, 1] - reps[:, 0]
    lo, hi = np.quantile(diff, [0.025, 0.975])
    assert (ti.pairs[0].ci_low, ti.pairs[0].ci_high) == pytest.approx((lo, hi), abs=1e-12)
    assert ti.pairs[0].value == pytest.approx(units[1].mean() - units[0].mean(), abs=1e-12)
    assert ti.pairs[1].value == pytest.approx(units[1].mean() - units[2].mean(), abs=1e-12)


def test_plan_pass_at_j_and_flat_columns() -> None:
    units = [np.ones((20, 4), dtype=bool), heterogeneous(rng(63), 20, 4, 0.4, 2.0)]
    ti = ResamplingPlan(20, 500, rng=rng(64)).intervals(units, statistic="pass@2", method="bca")
    assert ti.units[0] == Interval(1.0, 1.0, 1.0, 0.95, "bootstrap-bca(problems)")
    assert ti.units[0].se == 0.0
    assert ti.units[1].value == pytest.approx(stats.pass_at_k_matrix(units[1], 2))
    single = ResamplingPlan(1, 100, rng=rng()).intervals([[[1, 0, 1, 1]]], method="bca").units[0]
    assert (single.value, single.ci_low, single.ci_high) == (0.75, 0.75, 0.75)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: p.intervals([np.ones((5, 1)), np.ones((4, 1))]), r"units\[1\] has 4 problems but the plan has 5"),
        (lambda p: p.intervals([np.ones((5, 1)), [[1, 2]] * 5]), r"units\[1\] must hold only 0/1"),
        (lambda p: p.intervals([np.ones((5, 2))], statistic="pass@3"), r"units\[0\]: 'pass@3' needs"),
        (lambda p: p.intervals([]), "units is empty"),
        (lambda p: p.intervals([np.ones((5, 1))], pairs=[(0, 1)]), r"pairs\[0\]: treatment index"),
        (lambda p: p.intervals([np.ones((5, 1))], pairs=[(0,)]), r"pairs\[0\] must be a \(baseline, treatment\)"),
        (lambda p: p.intervals([np.ones((5, 1))], method="bc"), "method must be one of 'wilson', 'percentile', 'bca'"),
        (lambda p: p.replicates(np.ones(4)), "one row per problem of the plan"),
        (lambda p: p.replicates([np.nan] * 5), "NaN"),
    ],
)
def test_plan_validation(call: object, message: str) -> None:
    plan = ResamplingPlan(5, 10, rng=rng())
    with pytest.raises(ValueError, match=message):
        call(plan)  # type: ignore[operator]


def test_plan_constructor_validation() -> None:
    with pytest.raises(ValueError, match="n_problems"):
        ResamplingPlan(0, 10, rng=rng())
    with pytest.raises(ValueError, match="n_resamples"):
        ResamplingPlan(3, 0, rng=rng())
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        ResamplingPlan(3, 10, rng=0)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# align_problems, paired_test
# --------------------------------------------------------------------------------------


def test_align_problems_restricts_to_shared_in_treatment_order() -> None:
    shared, b, t = align_problems(["a", "b", "c"], [[1], [0], [1]], ["c", "d", "a"], [[0], [1], [1]])
    assert shared == ["c", "a"]
    np.testing.assert_array_equal(b, [[True], [True]])
    np.testing.assert_array_equal(t, [[False], [True]])
    with pytest.raises(ValueError, match="share no problems"):
        align_problems(["a"], [[1]], ["b"], [[1]])
    with pytest.raises(ValueError, match="baseline_ids lists 2 problems but baseline has 1 rows"):
        align_problems(["a", "b"], [[1]], ["b"], [[1]])
    with pytest.raises(ValueError, match="more than once"):
        align_problems(["a", "a"], [[1], [0]], ["a"], [[1]])


def test_paired_test_picks_the_test_by_k() -> None:
    base = np.array([[1], [0], [0], [0], [1]], dtype=bool)
    treat = np.array([[1], [1], [1], [0], [1]], dtype=bool)
    r = paired_test(base, treat, rng=rng())
    assert (r.test, r.p_value, r.n_discordant) == ("mcnemar-exact", 0.5, 2)
    r = paired_test(np.repeat(base, 2, axis=1), np.repeat(treat, 2, axis=1), rng=rng())
    assert (r.test, r.p_value) == ("sign-flip-exact", 0.5)
    gen = rng(65)
    big_b, big_t = gen.random((100, 4)) < 0.4, gen.random((100, 4)) < 0.6
    r = paired_test(big_b, big_t, rng=rng(1), n_resamples=2_000)
    assert r.test == "sign-flip-monte-carlo" and r.n_discordant > 16
    assert r.p_value == paired_permutation_pvalue(big_b, big_t, rng=rng(1), n_resamples=2_000)


# --------------------------------------------------------------------------------------
# Seeds and maj@k
# --------------------------------------------------------------------------------------


def test_seed_spread() -> None:
    s = seed_spread([0.50, 0.56, 0.53, 0.47])
    assert (s.n_seeds, s.min, s.max) == (4, 0.47, 0.56)
    assert s.mean == pytest.approx(0.515)
    assert s.sd == pytest.approx(np.std([0.50, 0.56, 0.53, 0.47], ddof=1))
    assert s.range == pytest.approx(0.09)
    with pytest.raises(ValueError, match="at least 2 seeds"):
        seed_spread([0.5])
    with pytest.raises(ValueError, match=r"values\[1\] is nan"):
        seed_spread([0.5, float("nan")])
    with pytest.raises(ValueError, match="1-D"):
        seed_spread([[0.5, 0.4]])


# (samples of one problem, expected maj score with ties="expected", with ties="first")
MAJ_CASES = [
    ([("4", True), ("4", True), ("5", False)], 1.0, 1.0),
    ([("5", False), ("4", True), ("5", False)], 0.0, 0.0),
    ([("4", True), ("5", False)], 0.5, 1.0),  # tie: half credit, or the first answer
    ([("5", False), ("4", True)], 0.5, 0.0),
    ([(None, False), (None, False), ("4", True)], 1.0, 1.0),  # no-answer samples do not vote
    ([(None, False), (None, False)], 0.0, 0.0),
    ([("4", True), ("4", False), ("5", False)], 1.0, 1.0),  # "4" was graded correct once
    ([("a", False), ("b", True), ("c", False), ("a", False), ("b", True), ("c", False)], 1 / 3, 0.0),
]


@pytest.mark.parametrize(("problem", "expected", "first"), MAJ_CASES)
def test_maj_at_k_hand_cases(problem: list[tuple[str | None, bool]], expected: float, first: float) -> None:
    assert maj_at_k_scores([problem]) == pytest.approx([expected])
    assert maj_at_k([problem], ties="first") == pytest.approx(first)


def test_maj_at_1_is_accuracy_and_bootstraps_on_a_plan() -> None:
    gen = rng(66)
    correct = gen.random(40) < 0.5
    samples = [[("x" if c else "y", bool(c))] for c in correct]
    assert maj_at_k(samples) == pytest.approx(correct.mean())
    iv = ResamplingPlan(40, 1_000, rng=rng(67)).intervals_from_scores(maj_at_k_scores(samples)).units[0]
    assert iv == bootstrap_ci(correct[:, None], rng=rng(67), n_resamples=1_000)


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        ([], "no problems"),
        ([[("4", True)], [("4", True), ("5", False)]], "ragged.*problem 1 has 2"),
        ([[("4", True, 1)]], r"samples\[0\]\[0\] must be an \(answer, correct\) pair"),
        ([[(4, True)]], "answer must be a string or None"),
        ([[("4", "yes")]], "correct must be a bool"),
        ([[]], "no samples"),
        ("abc", "sequence of problems"),
    ],
)
def test_maj_at_k_validation(samples: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        maj_at_k(samples)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ties must be one of"):
        maj_at_k([[("4", True)]], ties="random")


# --------------------------------------------------------------------------------------
# Coverage of the default interval (wilson) at the sizes that matter, by simulation
# --------------------------------------------------------------------------------------
#
# The model (rlvr_audit.analysis.interval_coverage): p_i ~ Beta with mean = the true accuracy and intra-class
# correlation icc; k samples per problem. icc = 0.7 is the project's default (DEFAULT_PROBLEM_ICC)
# and reproduces the figures for the percentile bootstrap (about 90% at 12% accuracy and 82%
# at 5.4%). Every cell is seeded; benchmarks/stats_coverage.py prints the full table.

AIME_ACCURACIES = (0.03, 0.054, 0.12, 0.3, 0.5, 0.7, 0.88, 0.97)


@pytest.mark.parametrize("icc", [0.7, 0.9])
def test_wilson_covers_93_to_97_percent_at_aime_size(icc: float) -> None:
    """30 problems x 8 samples, heterogeneous difficulty: 10,000 benchmarks per accuracy, 3-97%."""
    for accuracy in AIME_ACCURACIES:
        gen = np.random.default_rng([70, int(icc * 10), int(accuracy * 1000)])
        scores = cov.simulate_unit(n_problems=30, k=8, accuracy=accuracy, icc=icc, n_datasets=10_000, rng=gen)
        covered = cov.unit_coverage(scores, accuracy, method="wilson", rng=gen)
        assert 0.93 <= covered <= 0.97, (accuracy, covered)


def test_percentile_and_bca_under_cover_at_aime_size() -> None:
    """Why the default changed: the bootstrap intervals miss at low accuracy on 30 problems."""
    gen = np.random.default_rng(71)
    scores = cov.simulate_unit(n_problems=30, k=8, accuracy=0.054, icc=0.7, n_datasets=4_000, rng=gen)
    assert cov.unit_coverage(scores, 0.054, method="percentile", rng=gen) < 0.86
    assert cov.unit_coverage(scores, 0.054, method="bca", rng=gen) < 0.90
    assert cov.unit_coverage(scores, 0.054, method="wilson", rng=gen) >= 0.93


@pytest.mark.parametrize("icc", [0.3, 0.5])
def test_wilson_is_conservative_not_short_at_lower_heterogeneity(icc: float) -> None:
    """Less heterogeneous problems: still >= 93%; below 6% accuracy up to 98% (the upper end cannot
    miss there: the data are 0-2 problems with a success, see the stats module docstring)."""
    for accuracy in AIME_ACCURACIES:
        gen = np.random.default_rng([72, int(icc * 10), int(accuracy * 1000)])
        scores = cov.simulate_unit(n_problems=30, k=8, accuracy=accuracy, icc=icc, n_datasets=10_000, rng=gen)
        covered = cov.unit_coverage(scores, accuracy, method="wilson", rng=gen)
        assert 0.93 <= covered <= (0.98 if accuracy < 0.06 or accuracy > 0.94 else 0.97), (accuracy, covered)


def test_wilson_exact_coverage_at_math500_size() -> None:
    """500 problems x 1 sample: exact binomial coverage at every accuracy 3-97% in steps of 0.5 points
    (with one sample per problem the outcomes are i.i.d. whatever the difficulty distribution)."""
    grid = np.round(np.arange(0.03, 0.97 + 1e-9, 0.005), 3)
    exact = cov.binomial_coverage(n_problems=500, accuracies=grid, method="wilson", rng=rng(73))
    assert exact.min() >= 0.93 and exact.max() <= 0.97, (grid[exact.argmin()], exact.min(), exact.max())
    assert abs(exact.mean() - 0.95) < 0.003


GAIN_BASES = (0.054, 0.1, 0.2, 0.4, 0.6, 0.8)


@pytest.mark.parametrize("gain", [0.0, 0.05, 0.10])
def test_paired_wilson_covers_the_gain_at_aime_size(gain: float) -> None:
    """Checkpoint minus base over the same 30 problems x 8 samples (icc 0.7, latent correlation 0.8):
    93-97% from 10% base accuracy up; below 6% (almost no successes on either side) it is conservative."""
    for base in (0.03, *GAIN_BASES):
        gen = np.random.default_rng([74, int(gain * 100), int(base * 1000)])
        b, t = cov.simulate_pair(
            n_problems=30,
            k=8,
            base=base,
            treatment=base + gain,
            icc=0.7,
            latent_correlation=0.8,
            n_datasets=4_000,
            rng=gen,
        )
        covered = cov.paired_coverage(b, t, gain, method="wilson", rng=gen)
        assert 0.93 <= covered <= (0.99 if base < 0.06 else 0.97), (base, gain, covered)


@pytest.mark.parametrize("gain", [0.0, 0.05, 0.10])
def test_paired_wilson_covers_the_gain_at_math500_size(gain: float) -> None:
    """500 problems x 1 sample, heterogeneous difficulty shared by both systems: 93-97%."""
    for base in (0.03, *GAIN_BASES):
        gen = np.random.default_rng([75, int(gain * 100), int(base * 1000)])
        b, t = cov.simulate_pair(
            n_problems=500,
            k=1,
            base=base,
            treatment=base + gain,
            icc=0.7,
            latent_correlation=0.8,
            n_datasets=3_000,
            rng=gen,
        )
        covered = cov.paired_coverage(b, t, gain, method="wilson", rng=gen)
        assert 0.93 <= covered <= 0.97, (base, gain, covered)


@pytest.mark.parametrize(("n", "k"), [(30, 8), (500, 1)])
def test_interval_and_exact_test_agree_under_no_gain(n: int, k: int) -> None:
    """No true gain: the interval excludes 0 and the exact paired test rejects at about 5% or less,
    and they disagree on few datasets (the flag ``test-disagrees`` marks those)."""
    for base in (0.1, 0.5):
        gen = np.random.default_rng([76, n, int(base * 100)])
        b, t = cov.simulate_pair(
            n_problems=n, k=k, base=base, treatment=base, icc=0.7, latent_correlation=0.8, n_datasets=2_000, rng=gen
        )
        a = cov.significance_agreement(b, t, method="wilson", rng=gen)
        assert a.interval <= 0.07 and a.test <= 0.07 and a.disagree <= 0.035, (n, k, base, a)


def test_significance_agreement_uses_mcnemar_for_one_sample() -> None:
    """The simulation's test for k = 1 is McNemar's exact test, as in the analysis."""
    gen = rng(77)
    b, t = cov.simulate_pair(
        n_problems=60, k=1, base=0.4, treatment=0.5, icc=0.7, latent_correlation=0.8, n_datasets=200, rng=gen
    )
    a = cov.significance_agreement(b, t, method="wilson", rng=gen)
    p = np.array([mcnemar_exact(b[:, j], t[:, j]) for j in range(200)])
    assert a.test == pytest.approx(np.mean(p < 0.05))
