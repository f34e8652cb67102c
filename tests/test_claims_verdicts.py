"""Verdicts a statistician would sign: the interval-only verdict rule (every branch), its error
rate by simulation, exact McNemar power against simulation, the ledger's links, protocol
differences, the multiplicity family, the prompt sweep's selection-aware interval, seed spread,
step-0 baselines, and the claims report that puts the summary first."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from typer.testing import CliRunner

from rlvr_audit.analysis import claim_stats as cs
from rlvr_audit.analysis import claims as cl
from rlvr_audit.analysis import claims_tables, stats
from rlvr_audit.analysis.estimates import Analysis, adjust_p_values
from rlvr_audit.analysis.sweep import spread_pick_interval
from rlvr_audit.api import Locations, load_registry
from rlvr_audit.cli import app
from rlvr_audit.core import claims as schema
from rlvr_audit.core.errors import ConfigError
from rlvr_audit.core.records import CheckpointRef, Comparison, Estimate, SamplingProtocol, UnitSpec
from rlvr_audit.core.registry import Registry
from rlvr_audit.core.store import UnitInfo

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ledger() -> schema.Ledger:
    return load_registry(Locations(config_dir=ROOT)).ledger


@pytest.fixture(scope="module")
def catalog(ledger: schema.Ledger) -> dict[str, schema.BenchmarkInfo]:
    return ledger.catalog(schema.task_catalog(ROOT))


@pytest.fixture(scope="module")
def groups(ledger: schema.Ledger, catalog: dict[str, schema.BenchmarkInfo]) -> list[cl.CorrectionGroup]:
    return cl.baseline_correction(ledger, catalog)


# ---------------------------------------------------------------------------------- the rule


@pytest.mark.parametrize(
    ("claimed", "ci", "expected"),
    [
        # defect 1: a zero adjusted gain whose interval covers 0 is noise, not a reversal
        (13.8, (-5.6, 5.6), "within noise"),
        (13.8, (-5.5, 5.7), "within noise"),
        # defect 1: a measured base "-2.0 [-6.2, +2.2]" covers 0
        (21.4, (-6.2, 2.2), "within noise"),
        # defect 5: "+21.2 [+16.8, +25.6]" cannot be within noise; it reaches the claimed +21.4
        (21.4, (16.8, 25.6), "holds"),
        (21.4, (22.0, 30.0), "holds"),  # exceeds the claim
        (28.8, (8.2, 19.6), "shrinks"),  # excludes 0, short of the claim
        (16.4, (-8.0, -1.0), "reverses"),
        (16.4, (0.0, 4.0), "within noise"),  # touching 0 counts as covering it
        (16.4, (-4.0, 0.0), "within noise"),
        # defect 2: no claimed baseline -> no verdict that cannot fail
        (None, (10.0, 17.0), "no claimed baseline"),
        (None, None, "cannot be judged"),
        (21.4, None, "cannot be judged"),
        # claimed losses: the same rule in the claimed direction
        (-8.5, (-12.0, -4.0), "holds"),
        (-8.5, (-6.0, -1.0), "shrinks"),
        (-4.9, (2.0, 12.0), "reverses"),
        (-4.9, (-3.0, 3.0), "within noise"),
        # a claimed "no change"
        (0.0, (-3.0, 3.0), "within noise"),
        (0.0, (1.0, 3.0), "holds"),
        (0.0, (-3.0, -1.0), "reverses"),
        (10.0, (8.0, 4.0), "shrinks"),  # the ends in either order
    ],
)
def test_verdict_rule_table(claimed: float | None, ci: tuple[float, float] | None, expected: str) -> None:
    assert cl.verdict(claimed_gain=claimed, ci=ci) == expected


def test_every_verdict_has_a_rule_and_the_table_covers_them() -> None:
    assert set(cl.VERDICT_RULES) == set(cl.VERDICTS)
    seen = {
        cl.verdict(claimed_gain=g, ci=ci)
        for g, ci in [(5, (6, 9)), (5, (1, 2)), (5, (-1, 1)), (5, (-3, -1)), (5, None), (None, (1, 2))]
    }
    assert seen == set(cl.VERDICTS)


def _wrong(v: str, true_gain: float, claimed: float, ci: tuple[float, float]) -> bool:
    """Whether verdict ``v`` misstates the true gain (see :func:`rlvr_audit.analysis.claims.verdict`)."""
    s = -1.0 if claimed < 0 else 1.0
    t, g = s * true_gain, s * claimed
    if v == "reverses":
        return t >= 0
    if v == "holds":
        return t <= 0
    if v == "shrinks":
        return t <= 0 or t >= g
    if v == "within noise":
        return not min(ci) <= true_gain <= max(ci)
    raise AssertionError(v)


def _accuracy(rng: np.random.Generator, p: float, n: int, k: int, icc: float, size: int) -> np.ndarray:
    """Accuracy of ``size`` independent evaluations on ``n`` problems drawn from a population with
    mean solve rate ``p`` and sample ICC ``icc`` (Beta), ``k`` samples each."""
    if icc == 0:
        return rng.binomial(n * k, p, size=size) / (n * k)
    a = p * (1 - icc) / icc
    b = (1 - p) * (1 - icc) / icc
    rates = rng.beta(a, b, size=(size, n))
    return rng.binomial(k, rates).mean(axis=(1,)) / k


@pytest.mark.parametrize(
    ("n", "k", "base", "icc"),
    [(500, 1, 0.494, 0.0), (500, 1, 0.2, 0.0), (30, 8, 0.25, 0.5), (83, 8, 0.33, 0.6)],
)
def test_verdicts_are_wrong_at_most_at_the_stated_rate(n: int, k: int, base: float, icc: float) -> None:
    """Synthetic claims with known true gains: the claimed value and the corrected baseline are
    independent evaluations; for every true gain, the share of simulations that issue a given
    verdict *and* are wrong stays within the interval's 5% (plus Monte Carlo slack)."""
    rng = np.random.default_rng(20261206)
    sims = 3000
    for claimed in (10.0, 20.0):
        for true_gain in (-6.0, 0.0, 4.0, claimed, claimed + 6.0):
            p_t = base + true_gain / 100
            if not 0.02 <= p_t <= 0.98:
                continue
            value = 100 * _accuracy(rng, p_t, n, k, icc, sims)
            baseline = 100 * _accuracy(rng, base, n, k, icc, sims)
            wrong = dict.fromkeys(("holds", "shrinks", "within noise", "reverses"), 0)
            v_lo, v_hi = cs.proportion_intervals(value / 100, n_problems=n, k=k)
            b_lo, b_hi = cs.proportion_intervals(baseline / 100, n_problems=n, k=k)
            lows, highs = cs.difference_interval((value, 100 * v_lo, 100 * v_hi), (baseline, 100 * b_lo, 100 * b_hi))
            for ci in zip(lows.tolist(), highs.tolist(), strict=True):
                v = cl.verdict(claimed_gain=claimed, ci=ci)
                if _wrong(v, true_gain, claimed, ci):
                    wrong[v] += 1
            slack = 3 * math.sqrt(0.05 * 0.95 / sims)
            for v, count in wrong.items():
                assert count / sims <= 0.05 + slack, (n, k, base, claimed, true_gain, v, count)


# ---------------------------------------------------------------------------------- exact power


def _simulated_power(n: int, accuracy: float, effect: float, sims: int, rng: np.random.Generator) -> float:
    up, down = cs.discordant_probabilities(accuracy, effect)
    counts = rng.multinomial(n, [up, down, 1 - up - down], size=sims)
    b, c = counts[:, 0], counts[:, 1]
    p = np.minimum(1.0, 2 * sps.binom.cdf(np.minimum(b, c), b + c, 0.5))
    p[b + c == 0] = 1.0
    p[b == c] = 1.0
    for i in range(5):  # the vectorised p-value is the project's exact test
        assert p[i] == pytest.approx(stats.binomial_two_sided_half(int(b[i]), int(c[i])), rel=1e-9)
    return float(np.mean(p <= 0.05))


@pytest.mark.parametrize(("n", "accuracy", "effect"), [(500, 0.494, 0.059), (500, 0.643, 0.03), (100, 0.3, 0.1)])
def test_exact_mcnemar_power_matches_a_simulation(n: int, accuracy: float, effect: float) -> None:
    rng = np.random.default_rng(7)
    sims = 40_000
    exact = cs.exact_mcnemar_power(n_problems=n, accuracy=accuracy, effect=effect)
    simulated = _simulated_power(n, accuracy, effect, sims, rng)
    assert exact == pytest.approx(simulated, abs=4 * math.sqrt(0.25 / sims))


def test_exact_mde_at_the_issue_example_sizes() -> None:
    """At 49.4% on MATH-500 the normal approximation's 80%-power MDE (5.9 points) has 77.6% exact
    power; the exact MDE is larger and has at least 80%."""
    normal = stats.minimum_detectable_effect(n_problems=500, k=1, accuracy=0.494)
    assert round(100 * normal, 1) == 5.9
    assert cs.exact_mcnemar_power(n_problems=500, accuracy=0.494, effect=normal) == pytest.approx(0.776, abs=0.002)
    exact = cs.exact_mcnemar_mde(n_problems=500, accuracy=0.494)
    assert exact > normal
    assert cs.exact_mcnemar_power(n_problems=500, accuracy=0.494, effect=exact) >= 0.8
    assert cs.exact_mcnemar_power(n_problems=500, accuracy=0.494, effect=exact - 1e-3) < 0.8
    assert math.isinf(cs.exact_mcnemar_mde(n_problems=5, accuracy=0.9))


# ---------------------------------------------------------------------------------- ledger links

HEAD = """\
families:
  toy:
    display_name: Toy
    checkpoints:
      base: {model: org/toy, prompt: no_template}
sources:
  P1: {title: A paper, url: https://example.org/p1, claimant: true}
  C1: {title: A critique, url: https://example.org/c1}
protocols:
  greedy: {n: 1, temperature: 0.0, max_new_tokens: 100}
claims:
  - {id: e.one, kind: evaluation, source: C1, model: toy, benchmark: math500, protocol: greedy, value: 60,
     setting: one, exactness: exact, read_from: table LINK1}
  - {id: e.two, kind: evaluation, source: C1, model: toy, benchmark: math500, protocol: greedy, value: 55,
     setting: two, exactness: exact, read_from: table LINK2}
  - {id: e.aime, kind: evaluation, source: C1, model: toy, benchmark: aime24, protocol: greedy, value: 10,
     setting: three, exactness: exact, read_from: table}
"""


@pytest.mark.parametrize(
    ("link1", "link2", "message"),
    [
        (", same_as: e.nope", "", "(id 'e.one').same_as: unknown entry 'e.nope'"),
        (", superseded_by: e.one", "", "(id 'e.one').superseded_by: an entry cannot link to itself"),
        (", same_as: e.aime", "", "(id 'e.one').same_as: 'e.aime' is about another benchmark"),
        (", superseded_by: e.two", ", superseded_by: e.one", "superseded_by links form a cycle"),
    ],
)
def test_ledger_links_are_checked(tmp_path: Path, link1: str, link2: str, message: str) -> None:
    path = tmp_path / "checkpoints.yaml"
    path.write_text(HEAD.replace(" LINK1", link1).replace(" LINK2", link2))
    with pytest.raises(ConfigError) as err:
        Registry.load(path)
    assert message in str(err.value)
    path.write_text(HEAD.replace(" LINK1", ", superseded_by: e.two").replace(" LINK2", ""))
    assert Registry.load(path).ledger.get("e.one").superseded_by == "e.two"  # type: ignore[union-attr]


def test_same_figure_is_one_baseline_and_superseded_drives_no_verdict(groups: list[cl.CorrectionGroup]) -> None:
    (math7,) = [
        g
        for g in groups
        if (g.model, g.benchmark, g.source, g.step) == ("qwen2.5-math-7b", "math500", "SR-preprint", 150)
    ]
    refs = {b.ref: b for b in math7.baselines}
    assert "critique.qwen2.5-math-7b" not in refs  # the critique's 64.3 is Sober's 64.3
    assert refs["sober.table3.qwen2.5-math-7b.math500"].also == ("critique.qwen2.5-math-7b",)
    assert [b.value for b in math7.baselines].count(64.3) == 1
    (q7,) = [g for g in groups if g.model == "qwen2.5-7b" and g.benchmark == "math500" and g.source == "SR-preprint"]
    old = {b.ref: b for b in q7.baselines}["critique.qwen2.5-7b"]
    assert old.excluded.startswith("superseded by sober.table3.qwen2.5-7b.math500 (59.7)")
    assert all(r.baseline.ref != "critique.qwen2.5-7b" for g in groups for r in g.rows)


def test_protocol_differences_best_of_prompts_and_copy_errors(
    ledger: schema.Ledger, catalog: dict[str, schema.BenchmarkInfo], groups: list[cl.CorrectionGroup]
) -> None:
    (g,) = [
        g for g in groups if (g.model, g.benchmark, g.source, g.step) == ("qwen2.5-math-7b", "math500", "SR-v1", 300)
    ]
    refs = {b.ref: b for b in g.baselines}
    assert refs["v1.table5.qwen2.5-math-7b.lipsum"].best_of.startswith("best of 4 ")  # 68.8 of 55.8/63.2/61.6/68.8
    assert not refs["v1.table5.qwen2.5-math-7b.sober"].best_of
    sober_rows = [r for r in g.rows if r.baseline.ref == "sober.table3.qwen2.5-math-7b.math500"]
    assert sober_rows and all(any(d.startswith("decoding greedy vs T=") for d in r.differences) for r in sober_rows)
    assert all(any(d.startswith("samples pass@1 vs avg@") for d in r.differences) for r in sober_rows)
    res = {r.claim.id: r for r in cl.resolution(ledger, catalog)}
    for reward in ("format_boxed", "incorrect", "random"):
        assert res[f"v1.amc.qwen2.5-math-7b.{reward}"].claim.suspect == "probable copy error"
    frame = claims_tables.resolution_frame(list(res.values()), ledger)
    assert set(frame[frame.suspect != ""].claim) == {
        f"v1.amc.qwen2.5-math-7b.{r}" for r in ("format_boxed", "incorrect", "random")
    }


def _unit(cid: str, model: str, n_problems_total: int) -> UnitInfo:
    spec = UnitSpec(
        checkpoint=CheckpointRef(checkpoint_id=cid, model=model),
        task="math500",
        data_hash="d" * 16,
        template_id="qwen_math_default",
        template_hash="t" * 16,
        protocol=SamplingProtocol(n=1, temperature=0.0, max_new_tokens=3072),
        backend="vllm",
    )
    return UnitInfo(key=spec.key, spec=spec, family="qwen2.5-math-7b", n_problems_total=n_problems_total)


def test_a_measured_base_on_part_of_the_problems_is_excluded(
    ledger: schema.Ledger, catalog: dict[str, schema.BenchmarkInfo]
) -> None:
    base_id, base_model = ledger.family_bases["qwen2.5-math-7b"]
    u = _unit(base_id, base_model, 500)
    est = Estimate(
        unit_key=u.key, checkpoint_id=base_id, task="math500", template_id="qwen_math_default",
        grader_id="math_verify", metric="avg@1", value=0.6, ci_low=0.45, ci_high=0.74, level=0.95,
        method="wilson", n_problems=40, n_samples=1, seed=0,
    )  # fmt: skip
    analysis = Analysis(units=[u], matrices={}, estimates=[est], comparisons=[], graders=["math_verify"])
    groups = cl.baseline_correction(ledger, catalog, analysis=analysis, only_measured=True)
    assert groups
    for g in groups:
        (b,) = [b for b in g.baselines if b.kind == "measured"]
        assert b.excluded == "measured on 40 of 500 problems: another problem set"
        assert all(r.baseline.kind == "cited" for r in g.rows)


# ---------------------------------------------------------------------------------- multiplicity, sweep


def _comparison(grader: str, p: float, i: int) -> Comparison:
    return Comparison(
        baseline="b", treatment=f"t{i}", baseline_unit="u0", treatment_unit=f"u{i}", task="math500",
        template_id="x", grader_id=grader, metric="avg@1", baseline_value=0.5, treatment_value=0.6, delta=0.1,
        ci_low=0.0, ci_high=0.2, level=0.95, method="wilson", p_value=p, n_problems=500, seed=0,
    )  # fmt: skip


def test_the_multiplicity_family_spans_every_grader() -> None:
    ps = {"math_verify": [0.01, 0.04], "paper": [0.02, 0.03], "strict": [0.049]}
    comps = [_comparison(g, p, i) for i, (g, p) in enumerate((g, p) for g, v in ps.items() for p in v)]
    comps.append(_comparison("strict", 0.5, 99).model_copy(update={"p_value": None}))
    out = adjust_p_values(comps)
    raw = [c.p_value for c in comps if c.p_value is not None]
    assert [c.p_holm for c in out[:-1]] == pytest.approx(list(stats.holm(raw)))
    assert [c.p_bh for c in out[:-1]] == pytest.approx(list(stats.benjamini_hochberg(raw)))
    assert [c.p_holm_grader for c in out[:2]] == pytest.approx(list(stats.holm(ps["math_verify"])))
    assert out[4].p_holm_grader == pytest.approx(0.049)  # alone in its grader's family
    assert out[4].p_holm > 0.049  # but not in the report's family
    assert out[-1].p_holm is None and out[-1].p_holm_grader is None


def test_prompt_sweep_spread_interval_bootstraps_the_whole_pick() -> None:
    rng = np.random.default_rng(3)
    n, m = 200, 4
    acc = (rng.random((n, m)) < 0.5).astype(float)  # four equally good templates
    plan = stats.ResamplingPlan(n, 2000, rng=np.random.default_rng(11))
    lo, hi = spread_pick_interval(plan, acc, level=0.95)
    reps = np.concatenate([c @ acc for c in plan.count_blocks()]) / n
    ranges = reps.max(axis=1) - reps.min(axis=1)
    assert (lo, hi) == pytest.approx(tuple(np.quantile(ranges, [0.025, 0.975])))
    means = acc.mean(axis=0)
    best, worst = int(means.argmax()), int(means.argmin())
    fixed = reps[:, best] - reps[:, worst]
    assert np.all(ranges >= fixed - 1e-12)  # re-picking can only widen each replicate's spread
    assert hi >= np.quantile(fixed, 0.975) - 1e-12


# ---------------------------------------------------------------------------------- seeds, step 0


def test_seed_spread_gives_a_second_wider_verdict(groups: list[cl.CorrectionGroup]) -> None:
    rows = [r for g in groups if g.model == "qwen2.5-math-1.5b" and g.benchmark == "math500" for r in g.rows]
    assert rows and all(r.seed_sd == 5.5 for r in rows)  # Sober's seed SD for the 1.5B model
    for r in rows:
        assert r.seed_ci is not None and r.adjusted_ci is not None
        assert r.seed_ci[0] < r.adjusted_ci[0] and r.seed_ci[1] > r.adjusted_ci[1]
        assert r.seed_verdict == cl.verdict(claimed_gain=r.claimed_gain, ci=r.seed_ci)
    everywhere = [r for g in groups for r in g.rows if r.seed_verdict is not None]
    assert any((r.verdict, r.seed_verdict) == ("shrinks", "within noise") for r in everywhere)


def test_claims_without_a_printed_baseline_use_the_claimants_step_0(groups: list[cl.CorrectionGroup]) -> None:
    (g,) = [
        g
        for g in groups
        if (g.model, g.benchmark, g.source, g.step) == ("qwen2.5-math-7b", "math500", "SR-preprint", 300)
    ]
    assert g.step0 is not None and g.step0.id == "pre.fig2.qwen2.5-math-7b.math500.step0"
    for r in g.rows:
        assert r.claimed_baseline == 49.0 and r.claimed_baseline_from == g.step0.id
        assert r.claimed_gain == pytest.approx(r.claimed_value - 49.0)
        assert r.verdict != "no claimed baseline"


def test_no_verdict_contradicts_its_own_numbers(groups: list[cl.CorrectionGroup]) -> None:
    for g in groups:
        for r in g.rows:
            assert r.verdict == cl.verdict(claimed_gain=r.claimed_gain, ci=r.adjusted_ci)
            if r.adjusted_ci is not None:
                lo, hi = r.adjusted_ci
                assert lo <= r.adjusted_gain <= hi
                if r.verdict == "within noise":
                    assert lo <= 0 <= hi
                if r.verdict == "reverses":
                    assert (hi < 0) if (r.claimed_gain or 0) >= 0 else (lo > 0)


# ---------------------------------------------------------------------------------- the report


def test_run_claims_only_puts_the_summary_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["run", "--claims-only", "--name", "c", "--config-dir", str(ROOT)])
    assert r.exit_code == 0, r.output
    out = tmp_path / "reports" / "c"
    md = (out / "index.md").read_text()
    order = [md.index(h) for h in ("## Summary", "## How verdicts are defined", "## Baseline correction")]
    assert order == sorted(order)
    assert "largest corrections" in md and "In all: " in md.split("## Sources")[1]
    assert "<details><summary>" in md and "</details>" in md and "~~" in md
    html = (out / "index.html").read_text()
    assert "<details><summary>" in html and "<s>" in html
    corr = pd.read_csv(out / "tables" / "baseline_correction.csv", keep_default_na=False)
    for row in corr.itertuples():
        ci = (
            None
            if row.adjusted_gain_ci_low == ""
            else (float(row.adjusted_gain_ci_low), float(row.adjusted_gain_ci_high))
        )
        claimed = None if row.claimed_gain == "" else float(row.claimed_gain)
        assert row.verdict == cl.verdict(claimed_gain=claimed, ci=ci)
    summary = md.split("## Summary")[1].split("## How verdicts")[0]
    assert "| SR-v1 " in summary.replace("[SR-v1]", "SR-v1 ").replace("SR-v1](", "SR-v1 ](") or "SR-v1" in summary


def test_a_measured_gain_gets_its_own_verdict_from_its_own_interval(
    ledger: schema.Ledger, catalog: dict[str, schema.BenchmarkInfo]
) -> None:
    base_id, base_model = ledger.family_bases["qwen2.5-math-7b"]
    u = _unit(base_id, base_model, 500)
    est = Estimate(
        unit_key=u.key, checkpoint_id=base_id, task="math500", template_id="qwen_math_default",
        grader_id="math_verify", metric="avg@1", value=0.6, ci_low=0.556, ci_high=0.642, level=0.95,
        method="wilson", n_problems=500, n_samples=1, seed=0,
    )  # fmt: skip
    comp = _comparison("math_verify", 0.001, 1).model_copy(
        update={"treatment": "qwen2.5-math-7b/incorrect-step150", "baseline_unit": u.key, "delta": 0.05,
                "ci_low": 0.01, "ci_high": 0.09}
    )  # fmt: skip
    analysis = Analysis(units=[u], matrices={}, estimates=[est], comparisons=[comp], graders=["math_verify"])
    groups = cl.baseline_correction(ledger, catalog, analysis=analysis, only_measured=True)
    rows = [r for g in groups for r in g.rows if r.baseline.kind == "measured" and r.measured_gain is not None]
    (r,) = [r for r in rows if r.claim.id == "pre.fig1.qwen2.5-math-7b.incorrect"]
    assert r.measured_gain == pytest.approx(5.0) and r.measured_gain_ci == pytest.approx((1.0, 9.0))
    assert r.measured_verdict == "shrinks"  # [+1, +9] against the claimed +24.6
    assert r.verdict == cl.verdict(claimed_gain=r.claimed_gain, ci=r.adjusted_ci)
    assert r.adjusted_ci is not None and r.adjusted_ci[0] < 74.0 - 64.2  # both numbers' uncertainty
    assert "grader: ours (math_verify) vs the paper's" in r.differences


def test_copy_errors_are_flagged_in_the_listing_and_the_claimed_grids(ledger: schema.Ledger) -> None:
    from rlvr_audit.analysis.crossfamily import claimed_from_ledger

    rows = {r["id"]: r for r in claims_tables.listing_rows(ledger, benchmark="amc")}
    assert rows["v1.amc.qwen2.5-math-7b.random"]["gain"] == "+21.4 (probable copy error)"
    assert "copy error" not in rows["pre.amc.qwen2.5-math-1.5b.random"]["gain"]
    grid = {g.claim_id: g for g in claimed_from_ledger(ledger)}
    assert grid["v1.amc.qwen2.5-math-7b.incorrect"].suspect == "probable copy error"


def test_a_cited_accuracys_interval_is_wilson_with_the_design_effect() -> None:
    for x, n in ((247, 500), (0, 30), (30, 30), (4, 40)):
        ref = sps.binomtest(x, n).proportion_ci(method="wilson")
        assert cs.proportion_interval(x / n, n_problems=n, k=1) == pytest.approx((ref.low, ref.high), abs=1e-9)
    # k samples: n / (icc + (1 - icc) / k) effective problems; more samples, narrower, never below k = inf
    one, eight = (cs.proportion_interval(0.3, n_problems=30, k=k) for k in (1, 8))
    assert eight[1] - eight[0] < one[1] - one[0]
    n_eff = 30 / (stats.DEFAULT_PROBLEM_ICC + (1 - stats.DEFAULT_PROBLEM_ICC) / 8)
    z = sps.norm.ppf(0.975)
    centre = (0.3 + z * z / (2 * n_eff)) / (1 + z * z / n_eff)
    assert (eight[0] + eight[1]) / 2 == pytest.approx(centre)
    widened = cs.widen_for_seeds(10.0, (5.0, 15.0), 3.0)
    assert widened == pytest.approx((10 - math.hypot(5, z * 3), 10 + math.hypot(5, z * 3)))


def test_folds_and_strikes_render_safely_in_markdown_and_html() -> None:
    from rlvr_audit.core.section import Fold, Paragraph, Strike
    from rlvr_audit.report.html import markdown_to_html
    from rlvr_audit.report.markdown import render_blocks

    md = render_blocks([Fold("3 <b>holds</b> & more", [Paragraph(["a ", Strike("~~x~~"), " b"])])])
    assert md.startswith("<details><summary>3 &lt;b&gt;holds&lt;/b&gt; &amp; more</summary>\n\n")
    assert "~~\\~\\~x\\~\\~~~" in md and md.rstrip().endswith("</details>")
    body, _ = markdown_to_html(md)
    assert "<details><summary>3 &lt;b&gt;holds&lt;/b&gt; &amp; more</summary>" in body
    assert "<s>~~x~~</s>" in body and "</details>" in body and "<b>" not in body
    raw, _ = markdown_to_html("<details onclick=alert(1)><summary>x</summary>\n\ny\n")
    assert "<details onclick" not in raw  # only the renderer's own folds pass through
