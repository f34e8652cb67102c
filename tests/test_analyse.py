"""rlvr_audit.analysis.estimates: one resampling plan per table, the test by k, adjusted p-values, shared problems."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from rlvr_audit.analysis import stats
from rlvr_audit.analysis.estimates import analyse, grader_version, plan_for
from rlvr_audit.core.records import CheckpointRef, Grade, Problem, SamplingProtocol, UnitSpec
from rlvr_audit.core.store import Store, UnitInfo

DATA_HASH = "ab" * 8
N = 40
PIDS = [f"p{i:02d}" for i in range(N)]


def make_unit(store: Store, name: str, correct: np.ndarray, *, base: str | None, problems: list[str] = PIDS) -> str:
    """A unit of checkpoint ``toy/<name>`` with ``correct[i, j]`` the verdict of sample j of ``problems[i]``."""
    k = correct.shape[1]
    spec = UnitSpec(
        checkpoint=CheckpointRef(checkpoint_id=f"toy/{name}", model=f"org/{name}"),
        task="math500",
        data_hash=DATA_HASH,
        template_id="qwen_math_default",
        template_hash="t" * 16,
        protocol=SamplingProtocol(n=k, temperature=0.0 if k == 1 else 0.6, max_new_tokens=64),
        backend="scripted",
    )
    info = UnitInfo(key=spec.key, spec=spec, family="toy", base=None if base is None else f"toy/{base}")
    store.ensure_unit(info)
    version = grader_version("math_verify")
    assert version is not None
    store.append_grades(
        info.key,
        "math_verify",
        [
            Grade(
                unit_key=info.key,
                problem_id=pid,
                sample_idx=j,
                grader_id="math_verify",
                grader_version=version,
                verdict="correct" if correct[i, j] else "incorrect",
            )
            for i, pid in enumerate(problems)
            for j in range(k)
        ],
    )
    return info.key


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "store")
    s.save_problems(DATA_HASH, [Problem(task="math500", problem_id=p, question="q", answer="1") for p in PIDS])
    return s


def outcomes(seed: int, p: float, k: int = 1, n: int = N) -> np.ndarray:
    return np.random.default_rng(seed).random((n, k)) < p


def test_a_table_shares_one_plan_and_adjusts_p_values(store: Store) -> None:
    base = outcomes(1, 0.4)
    make_unit(store, "base", base, base=None)
    rl_a, rl_b = outcomes(2, 0.7), outcomes(3, 0.45)
    make_unit(store, "rl_a", rl_a, base="base")
    make_unit(store, "rl_b", rl_b, base="base")
    a = analyse(store, seed=7, n_resamples=2_000, ci_method="percentile")
    est = {e.checkpoint_id: e for e in a.estimates}
    comp = {c.treatment: c for c in a.comparisons}
    assert set(comp) == {"toy/rl_a", "toy/rl_b"}

    # every interval of the table comes from the one plan of (seed, task version, problems)
    plan = plan_for(7, DATA_HASH, tuple(PIDS), 2_000)
    reps = plan.replicates(np.stack([base[:, 0], rl_a[:, 0], rl_b[:, 0]], axis=1).astype(float))
    for j, name in enumerate(["toy/base", "toy/rl_a", "toy/rl_b"]):
        lo, hi = np.quantile(reps[:, j], [0.025, 0.975])
        assert (est[name].ci_low, est[name].ci_high) == pytest.approx((lo, hi), abs=1e-12)
        assert est[name].se == pytest.approx(reps[:, j].std(ddof=1))
    lo, hi = np.quantile(reps[:, 1] - reps[:, 0], [0.025, 0.975])
    c = comp["toy/rl_a"]
    assert (c.ci_low, c.ci_high) == pytest.approx((lo, hi), abs=1e-12)
    assert c.delta == pytest.approx(rl_a.mean() - base.mean())
    assert c.n_problems == N and c.test == "mcnemar-exact"

    # Holm and BH over the grader's two comparisons
    p = sorted([comp["toy/rl_a"].p_value or 0.0, comp["toy/rl_b"].p_value or 0.0])
    small = min(comp.values(), key=lambda x: x.p_value or 0.0)
    large = max(comp.values(), key=lambda x: x.p_value or 0.0)
    assert small.p_holm == pytest.approx(min(1.0, 2 * p[0]))
    assert large.p_holm == pytest.approx(max(min(1.0, 2 * p[0]), p[1]))
    assert small.p_bh == pytest.approx(min(2 * p[0], p[1]))
    assert large.p_bh == pytest.approx(p[1])
    assert (small.p_holm_grader, large.p_bh_grader) == (small.p_holm, large.p_bh)  # one grader: the same family

    # a unit's numbers do not depend on which other units are analysed
    rl_key = comp["toy/rl_a"].treatment_unit
    alone = analyse(store, unit_keys=[rl_key], seed=7, n_resamples=2_000, ci_method="percentile")
    assert list(alone.estimates) == [e for e in a.estimates if e.unit_key == rl_key]
    alone_c = alone.comparisons[0]
    assert (alone_c.ci_low, alone_c.ci_high, alone_c.p_value) == (c.ci_low, c.ci_high, c.p_value)
    assert alone_c.p_holm == c.p_value  # a family of one


def test_k_samples_use_the_sign_flip_test_and_bca(store: Store) -> None:
    make_unit(store, "base", outcomes(4, 0.3, k=4), base=None)
    make_unit(store, "rl", outcomes(5, 0.6, k=4), base="base")
    a = analyse(store, seed=1, n_resamples=1_000, ci_method="bca")
    (c,) = a.comparisons
    assert c.test == "sign-flip-monte-carlo" and c.metric == "avg@4"
    assert c.method == "paired-bootstrap-bca(problems)"
    assert {e.metric for e in a.estimates} == {"avg@4", "pass@4"}
    assert all(e.method == "bootstrap-bca(problems)" for e in a.estimates)
    assert 0 < c.p_value <= 0.01  # type: ignore[operator]


def test_default_interval_is_wilson_with_flags(store: Store) -> None:
    """The default: Wilson intervals per unit, MOVER per gain, exactly stats.wilson_ci / paired_wilson_ci,
    with the interval flags carried onto the records (0 of n correct: ``no-variation``, not [0, 0])."""
    base = np.zeros((N, 4), dtype=bool)  # 0 of 40 problems solved
    rl = outcomes(8, 0.15, k=4)
    make_unit(store, "base", base, base=None)
    make_unit(store, "rl", rl, base="base")
    a = analyse(store, seed=3, n_resamples=200)
    assert a.ci_method == stats.DEFAULT_CI_METHOD == "wilson"
    est = {(e.checkpoint_id, e.metric): e for e in a.estimates}
    zero = est[("toy/base", "avg@4")]
    expected = stats.wilson_ci(base)
    assert (zero.value, zero.ci_low, zero.ci_high) == (0.0, 0.0, pytest.approx(expected.ci_high))
    assert (
        zero.ci_high > 0.08 and zero.interval_flags == ("no-variation",) and zero.method == "wilson-cluster(problems)"
    )
    got = est[("toy/rl", "avg@4")]
    assert (got.ci_low, got.ci_high) == pytest.approx((stats.wilson_ci(rl).ci_low, stats.wilson_ci(rl).ci_high))
    assert est[("toy/rl", "pass@4")].ci_high == pytest.approx(stats.wilson_ci(rl, statistic="pass@4").ci_high)
    (c,) = a.comparisons
    ref = stats.paired_wilson_ci(base, rl)
    assert (c.ci_low, c.ci_high, c.se) == pytest.approx((ref.ci_low, ref.ci_high, ref.se))
    assert c.method == "paired-mover-wilson(problems)"
    disagree = (c.ci_low > 0) != ((c.p_value or 1.0) < 0.05)
    assert ("test-disagrees" in c.interval_flags) == disagree


def test_test_disagreement_is_flagged(store: Store) -> None:
    """Five problems go from wrong to right, nothing else differs: McNemar's exact p is 2/32 = 0.0625
    (not significant at 5%) while the interval excludes 0; the comparison says so."""
    base = np.zeros((N, 1), dtype=bool)
    base[:20] = True
    rl = base.copy()
    rl[20:25] = True
    make_unit(store, "base", base, base=None)
    make_unit(store, "rl", rl, base="base")
    (c,) = analyse(store, n_resamples=200).comparisons
    assert c.p_value == pytest.approx(0.0625)
    assert c.ci_low > 0
    assert c.interval_flags == ("test-disagrees",)
    (pct,) = analyse(store, n_resamples=200, ci_method="percentile").comparisons
    assert pct.interval_flags == ("test-disagrees",) and pct.ci_low > 0


def test_partial_base_is_compared_on_shared_problems(store: Store) -> None:
    base = outcomes(6, 0.4, n=30)
    rl = outcomes(7, 0.6)
    make_unit(store, "base", base, base=None, problems=PIDS[:30])
    make_unit(store, "rl", rl, base="base")
    a = analyse(store, seed=2, n_resamples=1_000, ci_method="percentile")
    (c,) = a.comparisons
    assert c.n_problems == 30
    assert c.baseline_value == pytest.approx(base.mean())
    assert c.treatment_value == pytest.approx(rl[:30].mean())
    assert c.delta == pytest.approx(rl[:30].mean() - base.mean())
    est = {e.checkpoint_id: e for e in a.estimates}
    assert est["toy/rl"].n_problems == N and est["toy/rl"].value == pytest.approx(rl.mean())
    # the restricted pair is bootstrapped on the plan of the shared problems
    plan = plan_for(2, DATA_HASH, tuple(PIDS[:30]), 1_000)
    reps = plan.replicates(rl[:30, 0].astype(float) - base[:, 0])
    assert (c.ci_low, c.ci_high) == pytest.approx(tuple(np.quantile(reps, [0.025, 0.975])), abs=1e-12)


def test_units_sharing_no_problem_give_no_comparison_and_a_warning(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    make_unit(store, "base", outcomes(8, 0.4, n=10), base=None, problems=PIDS[:10])
    make_unit(store, "rl", outcomes(9, 0.6, n=10), base="base", problems=PIDS[10:20])
    with caplog.at_level(logging.WARNING, logger="rlvr_audit.analysis.estimates"):
        a = analyse(store, n_resamples=200)
    assert a.comparisons == []
    assert len(a.estimates) == 2
    assert "share no problem" in caplog.text and "toy/rl" in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"ci_method": "basic"}, "method must be one of"), ({"level": 95}, "level"), ({"n_resamples": 0}, "n_resamples")],
)
def test_bad_options(store: Store, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        analyse(store, **kwargs)  # type: ignore[arg-type]
