"""The clipping-bias simulator: exact expectations, signs over seeds, reproducibility, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rlvr_audit.cli import app
from rlvr_audit.core.errors import UsageError
from rlvr_audit.simulation.clipping import (
    ARMS,
    ClippingConfig,
    clipping_curve,
    clipping_frame,
    clipping_summary,
    expected_batch_update,
    simulate_clipping,
)

# Small batches whose every outcome can be enumerated; lr large enough that the clip binds.
EXACT = [
    {"behaviours": 2, "group_size": 3, "minibatches": 2},
    {"behaviours": 3, "group_size": 2, "minibatches": 2},
    {"behaviours": 2, "group_size": 4, "minibatches": 1},
]


@pytest.mark.parametrize("shape", EXACT)
@pytest.mark.parametrize("prior", [0.65, 0.3, 0.9])
def test_exact_expected_update_without_clip_is_zero(shape: dict[str, int], prior: float) -> None:
    exp = expected_batch_update(ClippingConfig(prior=prior, lr=3.0, **shape), clip=False)
    assert np.max(np.abs(exp["theta"])) < 1e-12
    assert abs(exp["gap"]) < 1e-12


def test_exact_expected_update_with_clip_points_to_the_high_prior_behaviour() -> None:
    base = {"behaviours": 2, "group_size": 3, "minibatches": 2, "lr": 3.0}
    high = expected_batch_update(ClippingConfig(prior=0.65, **base), clip=True)
    uniform = expected_batch_update(ClippingConfig(prior=0.5, **base), clip=True)
    low = expected_batch_update(ClippingConfig(prior=0.3, **base), clip=True)
    assert high["gap"] > 0.05
    assert abs(uniform["gap"]) < 1e-12 and np.max(np.abs(uniform["theta"])) < 1e-12
    assert low["gap"] < -0.05
    # three behaviours, uniform: every behaviour is exchangeable, so no drift; above 1/3: positive
    tri = {"behaviours": 3, "group_size": 2, "minibatches": 2, "lr": 4.0}
    assert abs(expected_batch_update(ClippingConfig(prior=1 / 3, **tri), clip=True)["gap"]) < 1e-12
    assert expected_batch_update(ClippingConfig(prior=0.65, **tri), clip=True)["gap"] > 0.01


def test_clip_is_inert_on_the_first_step_and_bites_later() -> None:
    # one mini-batch, one epoch: the only step is taken at rho = 1, so both arms agree exactly
    one = ClippingConfig(group_size=4, minibatches=1, lr=3.0)
    assert np.allclose(expected_batch_update(one, clip=True)["theta"], expected_batch_update(one, clip=False)["theta"])
    result = simulate_clipping(ClippingConfig(seeds=200, steps=3, minibatches=1, lr=3.0))
    assert np.all(result.clip_fraction == 0)
    assert np.array_equal(result.gap[0], result.gap[1])
    assert simulate_clipping(ClippingConfig(seeds=200, steps=3, lr=3.0)).clip_fraction.min() > 0.01


def test_second_epoch_on_the_same_rollouts_is_not_mean_zero() -> None:
    # documented: re-using rollouts makes rho_i depend on A_i; the unclipped surrogate then drifts
    exp = expected_batch_update(ClippingConfig(group_size=3, minibatches=1, epochs=2, lr=3.0), clip=False)
    assert exp["gap"] < -0.05


def test_drift_over_seeds_clip_positive_no_clip_zero() -> None:
    result = simulate_clipping(ClippingConfig(seeds=2000, steps=30))
    s = clipping_summary(result)
    gap = s["drift"]["gap"]
    assert gap["no_clip"]["ci_low"] < 0 < gap["no_clip"]["ci_high"]
    assert gap["clip"]["ci_low"] > 0.2
    assert s["difference"]["p_high"]["ci_low"] > 0.03
    assert s["drift"]["p_high"]["clip"]["ci_low"] > 0
    # without clipping the probability falls (Jensen: mean-zero logit noise, concave above 1/K)
    assert s["drift"]["p_high"]["no_clip"]["ci_high"] < 0


def test_uniform_prior_no_drift_and_low_prior_reverses() -> None:
    uniform = clipping_summary(simulate_clipping(ClippingConfig(seeds=2000, steps=30, prior=0.5)))
    for arm in ARMS:
        for metric in ("gap", "p_high"):
            e = uniform["drift"][metric][arm]
            assert e["ci_low"] < 0 < e["ci_high"], (arm, metric)
    low = clipping_summary(simulate_clipping(ClippingConfig(seeds=2000, steps=30, prior=0.3)))
    assert low["drift"]["gap"]["clip"]["ci_high"] < 0
    assert low["drift"]["gap"]["no_clip"]["ci_low"] < 0 < low["drift"]["gap"]["no_clip"]["ci_high"]


def test_clip_higher_weakens_the_bias() -> None:
    sym = clipping_summary(simulate_clipping(ClippingConfig(seeds=2000, steps=30)))
    higher = clipping_summary(simulate_clipping(ClippingConfig(seeds=2000, steps=30, clip_high=0.28)))
    assert higher["config"]["eps_high"] == 0.28
    assert higher["difference"]["gap"]["mean"] < sym["difference"]["gap"]["mean"] - 0.1


def test_reproducible_from_seed() -> None:
    cfg = ClippingConfig(seeds=50, steps=5)
    a, b = simulate_clipping(cfg), simulate_clipping(cfg)
    assert np.array_equal(a.p_high, b.p_high) and np.array_equal(a.gap, b.gap)
    c = simulate_clipping(ClippingConfig(seeds=50, steps=5, seed=1))
    assert not np.array_equal(a.p_high, c.p_high)


def test_curve_frame_and_intervals() -> None:
    cfg = ClippingConfig(seeds=30, steps=4)
    result = simulate_clipping(cfg)
    curve = clipping_curve(result)
    assert list(curve["arm"].unique()) == list(ARMS) and len(curve) == 2 * (cfg.steps + 1)
    last = curve[(curve["arm"] == "clip") & (curve["step"] == cfg.steps)].iloc[0]
    x = result.p_high[0, -1]
    half = 2.045229642132703 * x.std(ddof=1) / np.sqrt(30)  # t_{0.975, 29}
    assert last["p_high"] == pytest.approx(x.mean())
    assert last["p_high_ci_low"] == pytest.approx(x.mean() - half)
    assert last["p_high_ci_high"] == pytest.approx(x.mean() + half)
    assert curve.loc[curve["step"] == 0, "p_high"].tolist() == pytest.approx([0.65, 0.65])
    frame = clipping_frame(cfg)
    assert isinstance(frame, pd.DataFrame)
    pd.testing.assert_frame_equal(frame, curve)


BAD = [
    ({"seeds": 0}, "seeds (--seeds) must be an integer >= 2"),
    ({"seeds": -3}, "seeds (--seeds) must be an integer >= 2"),
    ({"steps": 0}, "steps (--steps) must be an integer >= 1"),
    ({"group_size": 1}, "group_size (--group-size) must be an integer >= 2"),
    ({"minibatches": 0}, "minibatches (--minibatches) must be an integer >= 1"),
    ({"epochs": 0}, "epochs (--epochs) must be an integer >= 1"),
    ({"behaviours": 1}, "behaviours (--behaviours) must be an integer >= 2"),
    ({"seed": -1}, "seed (--seed) must be an integer >= 0"),
    ({"gamma": 0.0}, "gamma (--gamma) must be a number in the open interval (0, 1)"),
    ({"gamma": 1.0}, "gamma (--gamma) must be a number in the open interval (0, 1)"),
    ({"prior": 1.5}, "prior (--prior) must be a number in the open interval (0, 1)"),
    ({"prior": float("nan")}, "prior (--prior) must be a number in the open interval (0, 1)"),
    ({"clip_eps": 0.0}, "clip_eps (--clip-eps) must be a number in the open interval (0, 1)"),
    ({"level": 1.0}, "level (--level) must be a number in the open interval (0, 1)"),
    ({"lr": 0.0}, "lr (--lr) must be a finite number > 0"),
    ({"lr": float("inf")}, "lr (--lr) must be a finite number > 0"),
    ({"clip_high": -0.1}, "clip_high (--clip-high) must be a finite number > 0"),
    ({"seeds": 1_000_000, "steps": 1000}, "seeds x (steps + 1) must be at most"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD)
def test_bad_settings_name_the_parameter_and_range(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(UsageError) as info:
        simulate_clipping(ClippingConfig(**kwargs))  # type: ignore[arg-type]
    assert message in str(info.value)
    assert info.value.exit_code == 2


def test_enumeration_too_large_is_refused() -> None:
    with pytest.raises(UsageError, match="exact enumeration"):
        expected_batch_update(ClippingConfig(group_size=8, minibatches=2), clip=True)


runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seeds", "0"], "seeds (--seeds)"),
        (["--steps", "-1"], "steps (--steps)"),
        (["--group-size", "1"], "group_size (--group-size)"),
        (["--prior", "1"], "prior (--prior)"),
        (["--gamma", "0"], "gamma (--gamma)"),
        (["--clip-eps", "1.2"], "clip_eps (--clip-eps)"),
        (["--lr", "0"], "lr (--lr)"),
    ],
)
def test_cli_bad_input_exits_2_and_writes_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "out"
    r = runner.invoke(app, ["simulate", "clipping", *args, "--out", str(out)])
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert not out.exists()


def test_cli_out_is_a_file(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    r = runner.invoke(app, ["simulate", "clipping", "--seeds", "10", "--steps", "2", "--out", str(target)])
    assert r.exit_code == 2 and "out (--out) must be a directory" in r.output
    assert target.read_text() == "x"


def test_cli_prints_and_writes(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    r = runner.invoke(app, ["simulate", "clipping", "--seeds", "300", "--steps", "10", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "clip - no clip" in r.output and "no_clip" in r.output
    assert sorted(p.name for p in out.iterdir()) == ["clipping.png", "clipping_curve.csv", "clipping_summary.json"]
    summary = json.loads((out / "clipping_summary.json").read_text())
    assert summary["config"]["seeds"] == 300 and set(summary["drift"]["gap"]) == set(ARMS)
    curve = pd.read_csv(out / "clipping_curve.csv")
    assert len(curve) == 2 * 11 and {"p_high_ci_low", "gap_ci_high", "clip_fraction"} <= set(curve.columns)
    expected = clipping_summary(simulate_clipping(ClippingConfig(seeds=300, steps=10)))
    assert summary["drift"] == expected["drift"]
    assert (out / "clipping.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
