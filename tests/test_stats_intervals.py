"""rlvr_audit.analysis.stats: the default interval (Wilson with a cluster design effect, MOVER for gains) and
the interval flags, against scipy's Wilson interval and hand-worked cases. Coverage by simulation is
in test_stats_theory.py."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import scipy.stats

from rlvr_audit import api as audit
from rlvr_audit.analysis import interval_coverage as cov
from rlvr_audit.analysis import stats
from rlvr_audit.analysis.stats import (
    INTERVAL_FLAGS,
    Interval,
    ResamplingPlan,
    bootstrap_ci,
    disagrees_with_test,
    paired_bootstrap_ci,
    paired_wilson_ci,
    wilson_ci,
)
from rlvr_audit.cli import evaluate, probe
from rlvr_audit.core.records import Comparison, Estimate

Z = scipy.stats.norm.ppf(0.975)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def ones(x: int, n: int, k: int = 1) -> np.ndarray:
    """``n`` problems, the first ``x`` all right (all ``k`` samples), the rest all wrong."""
    out = np.zeros((n, k), dtype=bool)
    out[:x] = True
    return out


@pytest.mark.parametrize(("x", "n"), [(0, 25), (1, 30), (2, 5), (4, 5), (12, 30), (29, 30), (30, 30), (157, 500)])
@pytest.mark.parametrize("level", [0.95, 0.9])
def test_one_sample_per_problem_is_scipys_wilson_interval(x: int, n: int, level: float) -> None:
    ours = wilson_ci(ones(x, n), level=level)
    ref = scipy.stats.binomtest(x, n).proportion_ci(confidence_level=level, method="wilson")
    assert (ours.value, ours.ci_low, ours.ci_high) == pytest.approx((x / n, ref.low, ref.high), abs=1e-12)
    assert ours.method == "wilson-cluster(problems)" and ours.level == level


def test_all_or_nothing_problems_count_as_one_observation_each() -> None:
    """Each problem all right or all wrong (the most clustered data possible): k samples add nothing,
    the interval is Wilson's on the n problems."""
    assert wilson_ci(ones(7, 30, k=8)) == wilson_ci(ones(7, 30, k=1))


def test_independent_samples_narrow_the_interval_towards_n_times_k() -> None:
    """Equally hard problems, k independent samples each: the design effect is near 1/k, so the
    interval is close to Wilson's on all n k samples and far narrower than on n problems."""
    correct = rng(1).random((200, 8)) < 0.3
    ours = wilson_ci(correct)
    x = int(correct.sum())
    per_sample = scipy.stats.binomtest(x, 1600).proportion_ci(method="wilson")
    per_problem = scipy.stats.binomtest(round(x / 8), 200).proportion_ci(method="wilson")
    assert per_sample.high - per_sample.low <= ours.width < 1.3 * (per_sample.high - per_sample.low)
    assert ours.width < 0.5 * (per_problem.high - per_problem.low)


def test_design_effect_by_hand() -> None:
    """30 problems x 4 samples with scores 0, 1/4, 1/2, 1 (10 problems at 0): the formula of wilson_ci."""
    counts = np.array([0] * 10 + [1] * 8 + [2] * 7 + [4] * 5)
    correct = np.arange(4)[None, :] < counts[:, None]
    s = counts / 4
    theta, v = s.mean(), s.var(ddof=1)
    informative = min(np.count_nonzero(s > 0), np.count_nonzero(s < 1))  # 20 right at least once, 25 not all
    design = (informative * min(v / (theta * (1 - theta)), 1.0) + 1) / (informative + 1)
    n_eff = 30 / design
    center = (theta + Z**2 / (2 * n_eff)) / (1 + Z**2 / n_eff)
    half = Z / (1 + Z**2 / n_eff) * math.sqrt(theta * (1 - theta) / n_eff + Z**2 / (4 * n_eff**2))
    ours = wilson_ci(correct)
    assert (ours.ci_low, ours.ci_high) == pytest.approx((center - half, center + half), abs=1e-12)
    assert ours.se == pytest.approx(math.sqrt(v / 30))
    assert ours.flags == ()


def test_zero_of_n_is_a_real_bound_with_a_flag() -> None:
    """0 of 25 correct: [0, z^2 / (25 + z^2)] (the percentile bootstrap gives [0, 0]); both say so."""
    ours = wilson_ci(ones(0, 25, k=8))
    assert (ours.ci_low, ours.ci_high) == pytest.approx((0.0, Z**2 / (25 + Z**2)))
    assert ours.ci_high > 0.13 and ours.flags == ("no-variation",)
    pct = bootstrap_ci(ones(0, 25, k=8), rng=rng(), n_resamples=200)
    assert (pct.ci_low, pct.ci_high) == (0.0, 0.0) and pct.flags == ("no-variation",)
    full = wilson_ci(ones(25, 25, k=8))
    assert (full.ci_low, full.ci_high) == pytest.approx((1 - Z**2 / (25 + Z**2), 1.0))


@pytest.mark.parametrize(
    ("x", "flags"), [(0, ("no-variation",)), (1, ("few-informative",)), (4, ("few-informative",)), (5, ())]
)
def test_few_informative_problems_are_flagged(x: int, flags: tuple[str, ...]) -> None:
    assert wilson_ci(ones(x, 30, k=4)).flags == flags
    assert wilson_ci(~ones(x, 30, k=4)).flags == flags  # symmetric: problems not all right


def test_pass_at_j_uses_the_same_interval_on_its_scores() -> None:
    correct = rng(2).random((40, 4)) < rng(3).beta(0.5, 0.5, size=40)[:, None]
    scores = stats.per_problem_scores(correct, "pass@2")
    ours = wilson_ci(correct, statistic="pass@2")
    plan = ResamplingPlan(40, 10, rng=rng())
    assert ours == plan.intervals_from_scores(scores, method="wilson").units[0]
    assert ours.value == pytest.approx(scores.mean())


def test_paired_one_sample_is_newcombes_method_10() -> None:
    """One sample per problem: MOVER on the two Wilson intervals with the phi correlation
    (Newcombe 1998, method 10), computed here from scipy's Wilson ends."""
    base = np.array([1] * 20 + [0] * 20 + [1] * 3 + [0] * 7, dtype=bool)[:, None]
    treat = np.array([1] * 20 + [0] * 20 + [0] * 3 + [1] * 7, dtype=bool)[:, None]
    n = 50
    xb, xt = int(base.sum()), int(treat.sum())
    wb = scipy.stats.binomtest(xb, n).proportion_ci(method="wilson")
    wt = scipy.stats.binomtest(xt, n).proportion_ci(method="wilson")
    phi = float(np.corrcoef(base[:, 0], treat[:, 0])[0, 1])
    pb, pt = xb / n, xt / n
    low = pt - pb - math.sqrt((pt - wt.low) ** 2 + (wb.high - pb) ** 2 - 2 * phi * (pt - wt.low) * (wb.high - pb))
    high = pt - pb + math.sqrt((wt.high - pt) ** 2 + (pb - wb.low) ** 2 - 2 * phi * (wt.high - pt) * (pb - wb.low))
    ours = paired_wilson_ci(base, treat)
    assert (ours.value, ours.ci_low, ours.ci_high) == pytest.approx((pt - pb, low, high), abs=1e-12)
    assert ours.method == "paired-mover-wilson(problems)" and ours.flags == ()
    assert ours.se == pytest.approx((treat[:, 0].astype(float) - base[:, 0]).std(ddof=1) / math.sqrt(n))


def test_pairing_narrows_the_gain_interval() -> None:
    """Strongly correlated systems: the paired interval is narrower than combining the two
    intervals as if independent (r = 0) and contains the estimate."""
    gen = rng(4)
    p = gen.beta(0.5, 0.5, size=60)
    base = gen.random((60, 4)) < p[:, None]
    treat = gen.random((60, 4)) < np.clip(p + 0.1, 0, 1)[:, None]
    paired = paired_wilson_ci(base, treat)
    b, t = wilson_ci(base), wilson_ci(treat)
    independent = math.hypot(t.value - t.ci_low, b.ci_high - b.value) + math.hypot(
        t.ci_high - t.value, b.value - b.ci_low
    )
    assert paired.ci_low <= paired.value <= paired.ci_high
    assert paired.width < 0.8 * independent


def test_identical_units_give_the_discordance_bound() -> None:
    """No problem differs: the gain can be at most the share of problems that could differ,
    bounded by Wilson at 0 of n; the bootstrap gives zero width. Both flag it."""
    correct = rng(5).random((40, 4)) < 0.5
    ours = paired_wilson_ci(correct, correct.copy())
    bound = Z**2 / (40 + Z**2)
    assert (ours.value, ours.ci_low, ours.ci_high) == pytest.approx((0.0, -bound, bound))
    assert ours.flags == ("no-discordance",)
    pct = paired_bootstrap_ci(correct, correct.copy(), rng=rng(), n_resamples=200)
    assert pct.width == 0.0 and pct.flags == ("no-discordance",)


def test_few_discordant_problems_are_flagged() -> None:
    base = ones(10, 40)
    treat = ones(13, 40)  # 3 problems differ
    assert paired_wilson_ci(base, treat).flags == ("few-discordant",)
    assert paired_wilson_ci(base, ones(15, 40)).flags == ()


def test_intervals_stay_in_range_and_contain_the_estimate() -> None:
    gen = rng(6)
    for _ in range(200):
        n, k = int(gen.integers(1, 40)), int(gen.integers(1, 9))
        base = gen.random((n, k)) < gen.random()
        treat = gen.random((n, k)) < gen.random()
        for iv in (wilson_ci(base), wilson_ci(treat)):
            assert 0.0 <= iv.ci_low <= iv.value <= iv.ci_high <= 1.0
        d = paired_wilson_ci(base, treat)
        assert -1.0 <= d.ci_low <= d.value <= d.ci_high <= 1.0


def test_table_of_the_plan_matches_the_one_cell_functions() -> None:
    gen = rng(7)
    units = [gen.random((35, 4)) < p for p in (0.2, 0.4, 0.45)]
    plan = ResamplingPlan(35, 10, rng=rng())
    table = plan.intervals(units, pairs=[(0, 1), (0, 2)], method="wilson")
    assert table.units == [wilson_ci(u) for u in units]
    assert table.pairs == [paired_wilson_ci(units[0], units[1]), paired_wilson_ci(units[0], units[2])]
    assert [iv.flags for iv in table.units] == [wilson_ci(u).flags for u in units]


def test_wilson_is_deterministic_and_needs_scores_in_the_unit_interval() -> None:
    plan = ResamplingPlan(3, 10, rng=rng())
    with pytest.raises(
        ValueError, match=r"wilson interval needs per-problem scores in \[0, 1\]; problem 1 of column 0"
    ):
        plan.intervals_from_scores(np.array([0.5, 1.5, 0.2]), method="wilson")
    a = ResamplingPlan(3, 10, rng=rng(1)).intervals_from_scores(np.array([0.5, 1.0, 0.2]), method="wilson")
    b = ResamplingPlan(3, 10, rng=rng(2)).intervals_from_scores(np.array([0.5, 1.0, 0.2]), method="wilson")
    assert a == b


@pytest.mark.parametrize("bad", ["wilson", "bc"])
def test_bootstrap_functions_take_only_resampling_methods(bad: str) -> None:
    with pytest.raises(ValueError, match="method must be one of 'percentile', 'bca'"):
        bootstrap_ci([[1], [0]], rng=rng(), method=bad)


def test_wilson_validation() -> None:
    with pytest.raises(ValueError, match="level"):
        wilson_ci([[1], [0]], level=1.5)
    with pytest.raises(ValueError, match="needs 1 <= j <= k"):
        wilson_ci([[1, 0]], statistic="pass@3")
    with pytest.raises(ValueError, match="same problems in the same row order"):
        paired_wilson_ci(np.ones((3, 1)), np.ones((2, 1)))


@pytest.mark.parametrize(
    ("low", "high", "p", "disagree"),
    [
        (0.01, 0.2, 0.01, False),  # both significant
        (-0.01, 0.2, 0.3, False),  # neither
        (0.01, 0.2, 0.0625, True),  # the interval excludes 0, the test does not reject
        (-0.2, 0.001, 0.02, True),  # the test rejects, the interval includes 0
        (-0.2, -0.01, 0.04, False),
        (0.01, 0.2, None, False),  # no test
        (0.0, 0.2, 0.05, False),  # touching 0 is not excluding it; p = alpha is not below it
    ],
)
def test_disagrees_with_test(low: float, high: float, p: float | None, disagree: bool) -> None:
    assert disagrees_with_test(Interval(0.1, low, high, 0.95, "x"), p) is disagree


def test_flags_are_documented_and_do_not_change_equality() -> None:
    assert set(INTERVAL_FLAGS) == {
        "no-variation",
        "few-informative",
        "no-discordance",
        "few-discordant",
        "test-disagrees",
    }
    assert all(len(text) > 40 for text in INTERVAL_FLAGS.values())
    assert Interval(0.0, 0.0, 0.1, 0.95, "x", flags=("no-variation",)) == Interval(0.0, 0.0, 0.1, 0.95, "x")


def test_the_default_is_wilson_everywhere() -> None:
    """One default: the statistics module, the library options, the CLI's three report commands."""
    assert stats.DEFAULT_CI_METHOD == audit.DEFAULT_CI_METHOD == audit.ReportOptions().ci_method == "wilson"
    assert audit.CI_METHODS == stats.CI_METHODS
    for command in (evaluate.run, evaluate.report, probe.probe_contamination):
        assert inspect.signature(command).parameters["ci_method"].default == stats.DEFAULT_CI_METHOD


def test_records_without_flags_still_load() -> None:
    """Records written before interval flags existed validate, with no flags."""
    est = {
        "unit_key": "u",
        "checkpoint_id": "c",
        "task": "t",
        "template_id": "p",
        "grader_id": "g",
        "metric": "avg@1",
        "value": 0.5,
        "ci_low": 0.4,
        "ci_high": 0.6,
        "level": 0.95,
        "method": "bootstrap-percentile(problems)",
        "n_problems": 10,
        "n_samples": 1,
        "seed": 0,
    }
    assert Estimate.model_validate(est).interval_flags == ()
    comp = {
        "baseline": "b",
        "treatment": "t",
        "baseline_unit": "ub",
        "treatment_unit": "ut",
        "task": "t",
        "template_id": "p",
        "grader_id": "g",
        "metric": "avg@1",
        "baseline_value": 0.4,
        "treatment_value": 0.5,
        "delta": 0.1,
        "ci_low": 0.0,
        "ci_high": 0.2,
        "level": 0.95,
        "method": "paired-bootstrap-percentile(problems)",
        "n_problems": 10,
        "seed": 0,
    }
    loaded = Comparison.model_validate(comp)
    assert loaded.interval_flags == ()
    again = Comparison.model_validate_json(
        loaded.model_copy(update={"interval_flags": ("test-disagrees",)}).model_dump_json()
    )
    assert again.interval_flags == ("test-disagrees",)


@pytest.mark.parametrize(("accuracy", "icc"), [(0.03, 0.7), (0.5, 0.3), (0.88, 0.9)])
def test_simulated_difficulty_has_the_stated_mean_and_icc(accuracy: float, icc: float) -> None:
    """The coverage model's Beta: mean = accuracy, Var(p_i) = icc * accuracy (1 - accuracy) (scipy's moments)."""
    a, b = cov.beta_parameters(accuracy, icc)
    mean, var = scipy.stats.beta(a, b).stats(moments="mv")
    assert (float(mean), float(var)) == pytest.approx((accuracy, icc * accuracy * (1 - accuracy)))
    scores = cov.simulate_unit(n_problems=20_000, k=8, accuracy=accuracy, icc=icc, n_datasets=1, rng=rng(8))
    assert scores.mean() == pytest.approx(accuracy, abs=0.01)
    base, treat = cov.simulate_pair(
        n_problems=20_000,
        k=1,
        base=accuracy,
        treatment=accuracy,
        icc=icc,
        latent_correlation=0.8,
        n_datasets=1,
        rng=rng(9),
    )
    assert (base.mean(), treat.mean()) == pytest.approx((accuracy, accuracy), abs=0.01)
    with pytest.raises(ValueError, match="icc must be in"):
        cov.beta_parameters(accuracy, 1.0)
