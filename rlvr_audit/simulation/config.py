"""Settings of the clipping-bias simulator (:mod:`rlvr_audit.simulation.clipping`), light to import."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..core.errors import UsageError

__all__ = ["ARMS", "CURVE_FILE", "FIGURE_FILE", "MAX_CELLS", "MAX_ENUMERATION", "SUMMARY_FILE", "ClippingConfig"]

ARMS = ("clip", "no_clip")
"""The two arms of every simulation: the clipped GRPO surrogate and the same without the clip."""

MAX_CELLS = 50_000_000
"""Largest seeds x (steps + 1) the simulator accepts (memory: a few 8-byte arrays of that size)."""

MAX_ENUMERATION = 1 << 22
"""Largest number of outcomes :func:`expected_batch_update` enumerates."""

CURVE_FILE = "clipping_curve.csv"
SUMMARY_FILE = "clipping_summary.json"
FIGURE_FILE = "clipping.png"


@dataclass(frozen=True)
class ClippingConfig:
    """Settings of one clipping-bias simulation (validated by :meth:`validate`)."""

    seeds: int = 4000
    """Independent runs (seeds); intervals are over them."""
    steps: int = 100
    """Training steps, each one batch of rollouts from the current policy."""
    group_size: int = 8
    """Rollouts per group (G); advantages are normalised within a group."""
    minibatches: int = 4
    """Groups per batch; each is one mini-batch, so one optimizer step per group and pass."""
    epochs: int = 1
    """Passes over the batch (PPO epochs); optimizer steps per batch = epochs x minibatches."""
    lr: float = 1.0
    """SGD step size on the logits."""
    gamma: float = 0.5
    """Probability of reward 1, the same for every behaviour (random rewards)."""
    prior: float = 0.65
    """Initial probability of the high-prior behaviour (behaviour 0)."""
    behaviours: int = 2
    """Number of behaviours K; the others share ``1 - prior`` evenly."""
    clip_eps: float = 0.2
    """Lower clip: the ratio's lower bound is ``1 - clip_eps``."""
    clip_high: float | None = None
    """Upper clip: the ratio's upper bound is ``1 + clip_high`` (default: ``clip_eps``)."""
    level: float = 0.95
    """Confidence level of the intervals over seeds."""
    seed: int = 0
    """Seed of the ``numpy.random.Generator`` that draws every rollout and reward."""

    @property
    def eps_high(self) -> float:
        """The upper clip actually used."""
        return self.clip_eps if self.clip_high is None else self.clip_high

    def validate(self) -> None:
        """Raise :class:`~rlvr_audit.core.errors.UsageError` naming the first invalid setting and its range."""
        ints = (
            ("seeds", "--seeds", 2),
            ("steps", "--steps", 1),
            ("group_size", "--group-size", 2),
            ("minibatches", "--minibatches", 1),
            ("epochs", "--epochs", 1),
            ("behaviours", "--behaviours", 2),
            ("seed", "--seed", 0),
        )
        for name, flag, low in ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise UsageError(f"{name} ({flag}) must be an integer >= {low}, got {value!r}")
        open_unit = (
            ("gamma", "--gamma"),
            ("prior", "--prior"),
            ("clip_eps", "--clip-eps"),
            ("level", "--level"),
        )
        for name, flag in open_unit:
            value = getattr(self, name)
            if not _is_real(value) or not 0.0 < value < 1.0:
                raise UsageError(f"{name} ({flag}) must be a number in the open interval (0, 1), got {value!r}")
        if not _is_real(self.lr) or not math.isfinite(self.lr) or self.lr <= 0:
            raise UsageError(f"lr (--lr) must be a finite number > 0, got {self.lr!r}")
        if self.clip_high is not None and (
            not _is_real(self.clip_high) or not math.isfinite(self.clip_high) or self.clip_high <= 0
        ):
            raise UsageError(f"clip_high (--clip-high) must be a finite number > 0, got {self.clip_high!r}")
        if self.seeds * (self.steps + 1) > MAX_CELLS:
            raise UsageError(
                f"seeds x (steps + 1) must be at most {MAX_CELLS:,}, got {self.seeds} x {self.steps + 1}; "
                "lower --seeds or --steps"
            )


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
