r"""Clipping-bias simulator: an exact toy model of GRPO's clip term under random rewards.

The Spurious Rewards paper (arXiv 2506.10947) explains why GRPO with *random* rewards still
raises Qwen2.5-Math's code-reasoning rate (65% -> 90%): the clip term biases updates toward
behaviours the model already prefers; without it the expected update is zero. This module
checks that mechanism where everything is known: a policy over a few discrete behaviours.

What it shows (``rlvr-audit simulate clipping``, defaults): without the clip the expected
update of the logits is exactly zero (one pass per batch), so the high-prior behaviour's
log-odds do not drift, while its probability *falls* a little (Jensen, below); with the clip
both its log-odds and its probability rise. Re-using rollouts for a second epoch without the
clip is not mean-zero either: it drifts *against* the high-prior behaviour.

Model
-----
A policy over ``K`` behaviours (say "code reasoning" and "language reasoning") is
``pi_theta = softmax(theta)``; behaviour 0 is the *high-prior* one, with probability ``prior``
at the start and the rest spread evenly. One training step (one batch of rollouts):

1. ``pi_old = pi_theta``. Draw ``minibatches`` groups of ``G`` rollouts ``a_i ~ pi_old`` and
   rewards ``r_i ~ Bernoulli(gamma)`` *independent of the behaviour* (random rewards).
2. Group-normalised advantages, as verl's GRPO: ``A_i = (r_i - mean(r)) / (std(r) + 1e-6)``
   within a group (``std`` with Bessel's correction, like ``torch.std``); a group whose rewards
   are all equal has ``A = 0``.
3. ``epochs`` passes over the batch; each pass takes one SGD step per mini-batch (one group),
   ``theta <- theta + lr * grad L``, on the surrogate (the mean over the group)

       L(theta) = 1/G sum_i min(rho_i A_i, clip(rho_i, 1 - eps_low, 1 + eps_high) A_i),
       rho_i = pi_theta(a_i) / pi_old(a_i)

   (``eps_high > eps_low`` is DAPO's "clip-higher"); *without clipping*
   ``L = 1/G sum_i rho_i A_i``. The same random numbers drive both arms (common random numbers),
   so the clip minus no-clip difference is paired per seed.

Gradient wrt the logits
-----------------------
For a softmax policy ``d log pi(a) / d theta = e_a - pi`` (``e_a`` the one-hot vector), hence
``d rho_i / d theta = rho_i (e_{a_i} - pi_theta)`` and

    grad L = 1/G sum_i m_i A_i rho_i (e_{a_i} - pi_theta),

where ``m_i = 1`` when rollout ``i``'s term is the unclipped one and ``0`` when the clip holds it
constant: ``m_i = 0`` iff ``A_i > 0 and rho_i > 1 + eps_high`` or ``A_i < 0 and
rho_i < 1 - eps_low`` (without clipping ``m_i = 1`` always).

Why the expected update is zero without clipping
------------------------------------------------
The rewards are independent of the behaviours and of everything that happened before, so the
advantages of a mini-batch are independent of its rollouts' behaviours and of the current
``theta``; they are exchangeable and sum to zero within a group, so ``E[A_i] = 0``. Without
clipping every factor but ``A_i`` in the gradient is fixed given the behaviours and ``theta``:

    E[grad L | a, theta] = 1/G sum_i E[A_i] rho_i (e_{a_i} - pi_theta) = 0.

The logits are therefore a martingale: ``E[theta_T] = theta_0`` exactly, and with them the
**log-odds gap** ``theta_high - mean(theta_other)`` (``= log pi_high - mean log pi_other``,
linear in ``theta``) has zero expected drift. (:func:`expected_batch_update` computes this
expectation exactly by enumeration; the tests check it.) This needs each rollout's ratio to
be independent of its own advantage, which holds for one pass (``epochs = 1``); a second pass
over the same rollouts makes ``rho_i`` depend on ``A_i`` (the first pass moved ``theta`` along
``A_i``), the surrogate is then no longer mean-zero, and the simulator shows what that does.

The behaviour's *probability* is a non-linear (softmax) function of the logits, so without
clipping ``E[pi_high]`` still moves, at second order in the step size, by Jensen's inequality:
with two behaviours ``pi_high`` is the logistic function of the gap, concave above 1/2, so
mean-zero noise in the gap lowers the expected probability of the high-prior behaviour (and
leaves it unchanged at a uniform prior). This is not a bias of the update, and it points
*away* from the high-prior behaviour; the simulator reports both the probability and the gap.

Why clipping makes it non-zero, toward the high-prior behaviour
---------------------------------------------------------------
With clipping, the mask depends on the sign of ``A_i``. With one pass (``rho_i`` independent
of ``A_i``: only *earlier* mini-batches moved ``theta``) and ``h = E[A; A > 0] = -E[A; A < 0]``,
a rollout whose ratio left the trust region contributes in expectation

    E[m_i A_i] rho_i (e_{a_i} - pi) = -h rho_i (e_{a_i} - pi)  if rho_i > 1 + eps_high,
                                      +h rho_i (e_{a_i} - pi)  if rho_i < 1 - eps_low,

and zero inside it: the clip turns noise into a restoring force that pushes each behaviour's
probability back toward ``[1 - eps_low, 1 + eps_high] * pi_old``. The restoring force is a
*ratio* constraint, and ratios are not symmetric in log-odds: a behaviour with probability
``p`` may move between ``(1 - eps) p`` and ``(1 + eps) p``; for ``p = 0.65`` and ``eps = 0.2``
the high-prior behaviour may rise to 0.78 (+0.65 in log-odds) but fall only to 0.52 (-0.54),
and the other behaviour (0.35) may rise to 0.42 (a fall of the high-prior one to 0.58, -0.30)
but fall to 0.28 (a rise of the high-prior one to 0.72, +0.33). Noise that would push the
high-prior behaviour down is stopped sooner than noise that pushes it up (a heuristic
reading; :func:`expected_batch_update` computes the sign exactly), so the expected update of
its log-odds is positive when ``prior > 1/K``, zero when the prior is uniform (every
behaviour is exchangeable, so each has the same expected drift and the drifts sum to zero)
and negative for a behaviour below ``1/K``. Raising ``eps_high`` (clip-higher) weakens the
clip on the rising side, where it binds for rare behaviours, and so weakens the bias.

Known issues
------------
- A toy: one decision per rollout, SGD on the logits (no Adam, no shared parameters, no KL
  term), one group per mini-batch. It shows the sign and the mechanism, not the paper's rates.
- The intervals are t intervals for the mean over seeds; each seed is one independent run.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..core.errors import UsageError
from .config import ARMS, CURVE_FILE, FIGURE_FILE, MAX_ENUMERATION, SUMMARY_FILE, ClippingConfig

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "ARMS",
    "ClippingConfig",
    "ClippingResult",
    "clipping_curve",
    "clipping_figure",
    "clipping_frame",
    "clipping_summary",
    "expected_batch_update",
    "simulate_clipping",
    "write_clipping_outputs",
]

_ADV_EPS = 1e-6
"""Added to the group's reward standard deviation, as in verl's GRPO advantage."""


@dataclass(frozen=True)
class ClippingResult:
    """Trajectories of one simulation, both arms driven by the same random numbers."""

    config: ClippingConfig
    """The settings."""
    p_high: npt.NDArray[np.float64]
    """Probability of the high-prior behaviour, shape ``(2, steps + 1, seeds)``, arms as :data:`ARMS`."""
    gap: npt.NDArray[np.float64]
    """Log-odds gap ``log pi_high - mean log pi_other``, same shape."""
    clip_fraction: npt.NDArray[np.float64]
    """Clip arm, per step: share of rollouts with a non-zero advantage whose term the clip held."""


# ---- the model ---------------------------------------------------------------------------------


def _softmax(theta: np.ndarray) -> np.ndarray:

    z = np.exp(theta - theta.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def _initial_logits(config: ClippingConfig) -> np.ndarray:

    k = config.behaviours
    probs = np.full(k, (1.0 - config.prior) / (k - 1))
    probs[0] = config.prior
    return np.log(probs)


def _advantages(rewards: np.ndarray) -> np.ndarray:
    """Group-normalised advantages over the last axis (Bessel-corrected std, verl's epsilon)."""
    mean = rewards.mean(axis=-1, keepdims=True)
    std = rewards.std(axis=-1, ddof=1, keepdims=True)
    return (rewards - mean) / (std + _ADV_EPS)


def _gap(theta: np.ndarray) -> np.ndarray:
    return theta[..., 0] - theta[..., 1:].mean(axis=-1)


def _batch_update(
    theta: np.ndarray,
    actions: np.ndarray,
    advantages: np.ndarray,
    config: ClippingConfig,
    *,
    clip: bool,
) -> tuple[np.ndarray, int, int]:
    """One training step on a batch: ``epochs`` passes, one SGD step per mini-batch.

    ``theta`` is ``(N, K)``; ``actions`` and ``advantages`` are ``(N, minibatches, G)``. Returns the
    new logits, the number of clipped terms and the number of terms with a non-zero advantage.
    """

    k = theta.shape[1]
    g = actions.shape[-1]
    p_old = np.take_along_axis(_softmax(theta)[:, None, :], actions, axis=-1)  # (N, M, G)
    one_hot = actions[..., None] == np.arange(k)  # (N, M, G, K)
    lo, hi = 1.0 - config.clip_eps, 1.0 + config.eps_high
    clipped = moving = 0
    new = theta.copy()
    for _ in range(config.epochs):
        for mb in range(actions.shape[1]):
            pi = _softmax(new)
            adv = advantages[:, mb]
            rho = np.take_along_axis(pi, actions[:, mb], axis=-1) / p_old[:, mb]
            coef = adv * rho / g
            if clip:
                active = ((adv > 0) & (rho <= hi)) | ((adv < 0) & (rho >= lo))
                clipped += int(((adv != 0) & ~active).sum())
                coef = np.where(active, coef, 0.0)
            moving += int((adv != 0).sum())
            grad = np.einsum("ng,ngk->nk", coef, one_hot[:, mb]) - coef.sum(axis=-1, keepdims=True) * pi
            new = new + config.lr * grad
    return new, clipped, moving


def simulate_clipping(config: ClippingConfig) -> ClippingResult:
    """Run both arms for ``config.seeds`` independent seeds, vectorised over seeds.

    One ``numpy.random.Generator(PCG64(config.seed))`` draws, per step, the uniforms that pick
    each rollout's behaviour (inverse CDF of each arm's own policy) and the rewards; both arms
    use the same draws. Raises :class:`~rlvr_audit.core.errors.UsageError` for invalid settings.
    """

    config.validate()
    rng = np.random.default_rng(config.seed)
    s, t, m, g = config.seeds, config.steps, config.minibatches, config.group_size
    theta = np.broadcast_to(_initial_logits(config), (2, s, config.behaviours)).copy()
    p_high = np.empty((2, t + 1, s))
    gap = np.empty((2, t + 1, s))
    clip_fraction = np.zeros(t)
    p_high[:, 0] = _softmax(theta)[..., 0]
    gap[:, 0] = _gap(theta)
    for step in range(t):
        uniforms = rng.random((s, m, g))
        rewards = (rng.random((s, m, g)) < config.gamma).astype(np.float64)
        adv = _advantages(rewards)
        for arm, name in enumerate(ARMS):
            cdf = np.cumsum(_softmax(theta[arm]), axis=-1)
            actions = np.minimum((uniforms[..., None] >= cdf[:, None, None, :]).sum(axis=-1), config.behaviours - 1)
            theta[arm], clipped, moving = _batch_update(theta[arm], actions, adv, config, clip=name == "clip")
            if name == "clip":
                clip_fraction[step] = clipped / moving if moving else 0.0
        p_high[:, step + 1] = _softmax(theta)[..., 0]
        gap[:, step + 1] = _gap(theta)
    return ClippingResult(config=config, p_high=p_high, gap=gap, clip_fraction=clip_fraction)


def expected_batch_update(config: ClippingConfig, *, clip: bool) -> dict[str, Any]:
    """The exact expectation of one training step from the initial policy, by enumeration.

    Sums over every behaviour and reward of every rollout in the batch (``(K^G 2^G)^minibatches``
    outcomes, at most 4,194,304), weighted by their probability. Returns ``{"theta": E[delta
    theta] (list), "gap": E[delta gap], "p_high": E[delta pi_high]}``. Without clipping and with
    ``epochs = 1``, ``theta`` and ``gap`` are zero up to rounding.
    """

    config.validate()
    k, g, m = config.behaviours, config.group_size, config.minibatches
    n_outcomes = (k**g * 2**g) ** m
    if n_outcomes > MAX_ENUMERATION:
        raise UsageError(
            f"exact enumeration needs (K^G * 2^G)^minibatches <= {MAX_ENUMERATION:,} outcomes, got {n_outcomes:,}"
        )
    theta0 = _initial_logits(config)
    pi0 = _softmax(theta0)
    grid_a = np.array(list(itertools.product(range(k), repeat=g * m))).reshape(-1, 1, m, g)
    grid_r = np.array(list(itertools.product((0.0, 1.0), repeat=g * m))).reshape(1, -1, m, g)
    both = np.broadcast_arrays(grid_a, grid_r)
    actions = both[0].reshape(-1, m, g)
    rewards = both[1].reshape(-1, m, g)
    weight = pi0[actions].prod(axis=(1, 2)) * np.where(rewards == 1.0, config.gamma, 1 - config.gamma).prod(axis=(1, 2))
    theta = np.broadcast_to(theta0, (len(actions), k)).copy()
    new, _, _ = _batch_update(theta, actions, _advantages(rewards), config, clip=clip)
    delta = weight @ (new - theta)
    return {
        "theta": delta.tolist(),
        "gap": float(weight @ (_gap(new) - _gap(theta))),
        "p_high": float(weight @ (_softmax(new)[:, 0] - pi0[0])),
    }


# ---- summaries -----------------------------------------------------------------------------


def _t_interval(x: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over the last axis with its two-sided t interval."""
    # lazy: scipy.stats takes seconds to import; only the clipping simulation needs it
    from scipy import stats

    n = x.shape[-1]
    mean = x.mean(axis=-1)
    half = stats.t.ppf(0.5 + level / 2, n - 1) * x.std(axis=-1, ddof=1) / np.sqrt(n)
    return mean, mean - half, mean + half


def clipping_curve(result: ClippingResult) -> pd.DataFrame:
    """One row per arm and step: mean probability of the high-prior behaviour and mean log-odds
    gap over seeds, each with its t interval, and the clip arm's clip fraction."""

    cfg = result.config
    frames = []
    for arm, name in enumerate(ARMS):
        p, p_lo, p_hi = _t_interval(result.p_high[arm], cfg.level)
        d, d_lo, d_hi = _t_interval(result.gap[arm], cfg.level)
        frac = np.concatenate([[np.nan], result.clip_fraction]) if name == "clip" else np.full(cfg.steps + 1, np.nan)
        frames.append(
            pd.DataFrame(
                {
                    "arm": name,
                    "step": np.arange(cfg.steps + 1),
                    "p_high": p,
                    "p_high_ci_low": p_lo,
                    "p_high_ci_high": p_hi,
                    "gap": d,
                    "gap_ci_low": d_lo,
                    "gap_ci_high": d_hi,
                    "clip_fraction": frac,
                    "seeds": cfg.seeds,
                    "level": cfg.level,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def clipping_frame(config: ClippingConfig | None = None) -> pd.DataFrame:
    """Simulate (default settings unless given) and return :func:`clipping_curve`'s frame; for reports."""
    return clipping_curve(simulate_clipping(config or ClippingConfig()))


def clipping_summary(result: ClippingResult) -> dict[str, Any]:
    """Final drift (last step minus start) per arm, and the paired clip minus no-clip difference.

    ``drift``: for ``p_high`` and ``gap``, per arm, the mean change over seeds with its t interval;
    ``difference``: the same for the per-seed difference between the arms (same random numbers).
    """
    cfg = result.config
    level = cfg.level

    def entry(x: np.ndarray) -> dict[str, float]:
        mean, lo, hi = _t_interval(x, level)
        return {"mean": float(mean), "ci_low": float(lo), "ci_high": float(hi)}

    drift: dict[str, dict[str, dict[str, float]]] = {}
    diffs: dict[str, np.ndarray] = {}
    for metric, arr in (("p_high", result.p_high), ("gap", result.gap)):
        change = arr[:, -1] - arr[:, 0]
        drift[metric] = {name: entry(change[i]) for i, name in enumerate(ARMS)}
        diffs[metric] = change[0] - change[1]
    return {
        "config": {**asdict(cfg), "eps_high": cfg.eps_high},
        "start": {"p_high": float(result.p_high[0, 0, 0]), "gap": float(result.gap[0, 0, 0])},
        "level": level,
        "drift": drift,
        "difference": {metric: entry(d) for metric, d in diffs.items()},
        "mean_clip_fraction": float(result.clip_fraction.mean()),
    }


# ---- outputs -------------------------------------------------------------------------------


def clipping_figure(result: ClippingResult) -> bytes:
    """PNG: probability of the high-prior behaviour and its log-odds gap against step, both arms,
    with the t interval of the mean over seeds as a band."""
    import matplotlib  # heavy (about 0.5 s): only when a figure is drawn

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt  # heavy (about 0.5 s): only when a figure is drawn

    curve = clipping_curve(result)
    cfg = result.config
    colours = {"clip": "#d62728", "no_clip": "#1f77b4"}
    labels = {"clip": f"clip (eps {cfg.clip_eps:g}/{cfg.eps_high:g})", "no_clip": "no clip"}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, metric, ylabel in (
        (axes[0], "p_high", "P(high-prior behaviour)"),
        (axes[1], "gap", "log-odds gap (log pi_high - mean log pi_other)"),
    ):
        for name in ARMS:
            part = curve[curve["arm"] == name]
            ax.plot(part["step"], part[metric], color=colours[name], label=labels[name])
            ax.fill_between(
                part["step"], part[f"{metric}_ci_low"], part[f"{metric}_ci_high"], color=colours[name], alpha=0.25
            )
        ax.axhline(curve[metric].iloc[0], color="#555555", lw=0.8, ls=":")
        ax.set_xlabel("training step (batch)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="best")
    fig.suptitle(
        f"GRPO with random rewards (gamma {cfg.gamma:g}): {cfg.seeds} seeds, {int(cfg.level * 100)}% CI of the mean; "
        f"K={cfg.behaviours}, prior {cfg.prior:g}, G={cfg.group_size}, {cfg.minibatches} mini-batches x "
        f"{cfg.epochs} epoch(s), lr {cfg.lr:g}",
        fontsize=9,
    )
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    return buf.getvalue()


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_clipping_outputs(result: ClippingResult, out_dir: Path) -> dict[str, Path]:
    """Write ``clipping_curve.csv``, ``clipping_summary.json`` and ``clipping.png`` into ``out_dir``
    (created if missing), each atomically (temporary file, fsync, rename)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"out (--out) must be a directory, got the file {str(out_dir)!r}")
    blobs = {
        CURVE_FILE: clipping_curve(result).to_csv(index=False).encode(),
        SUMMARY_FILE: (json.dumps(clipping_summary(result), indent=2) + "\n").encode(),
        FIGURE_FILE: clipping_figure(result),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, data in blobs.items():
        paths[name] = out_dir / name
        _atomic_write_bytes(paths[name], data)
    return paths


def run_clipping(config: ClippingConfig, out_dir: Path | None) -> tuple[dict[str, Any], dict[str, Path]]:
    """Simulate, summarise and (with ``out_dir``) write the outputs; the CLI's one library call."""
    if out_dir is not None and Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise UsageError(f"out (--out) must be a directory, got the file {str(out_dir)!r}")
    result = simulate_clipping(config)
    paths = write_clipping_outputs(result, out_dir) if out_dir is not None else {}
    return clipping_summary(result), paths


# ---- command line --------------------------------------------------------------------------
