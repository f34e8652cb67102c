"""The import format registry: format id -> reader and defaults (see :mod:`rlvr_audit.importers`)."""

from __future__ import annotations

from ..core.errors import UnknownNameError
from . import lm_eval_samples, qwen_math, spurious_rewards
from .base import ImportFormat

__all__ = ["FORMATS", "get_format"]

FORMATS: dict[str, ImportFormat] = {
    spurious_rewards.FORMAT: ImportFormat(
        name=spurious_rewards.FORMAT,
        description="Spurious Rewards paper eval_checkpoint.py output (one JSON per model x benchmark)",
        reader=spurious_rewards.read,
        default_max_new_tokens=spurious_rewards.MAX_NEW_TOKENS,
    ),
    qwen_math.FORMAT: ImportFormat(
        name=qwen_math.FORMAT,
        description="Qwen2.5-Math evaluation math_eval.py output (JSON lines + *_metrics.json)",
        reader=qwen_math.read,
        default_max_new_tokens=qwen_math.MAX_NEW_TOKENS,
    ),
    lm_eval_samples.FORMAT: ImportFormat(
        name=lm_eval_samples.FORMAT,
        description="lm-evaluation-harness --log_samples output (samples_<task>_<date>.jsonl)",
        reader=lm_eval_samples.read,
        default_max_new_tokens=lm_eval_samples.MAX_NEW_TOKENS,
    ),
}
"""The import format registry: format id -> reader and defaults."""


def get_format(name: str) -> ImportFormat:
    """The import format registered as ``name``; an unknown name lists the valid ones."""
    try:
        return FORMATS[name]
    except KeyError:
        raise UnknownNameError("import format", name, FORMATS) from None
