"""Importers: published generations from other tools -> stored units (``rlvr-audit import``).

Each format is one module with a streaming ``read(source, header)`` reader (see :mod:`.base`), registered in the
explicit registry :data:`FORMATS`; :func:`get_format` names the valid ids when given an
unknown one. :mod:`.core` turns read files into stored units (matching problems by text,
see :mod:`.matching`), so imported generations are graded and reported like generated ones.

Formats:

- ``spurious-rewards-json`` (:mod:`.spurious_rewards`): the Spurious Rewards paper's
  ``eval_checkpoint.py`` output, one JSON per model x benchmark.
- ``qwen-math-jsonl`` (:mod:`.qwen_math`): Qwen2.5-Math ``math_eval.py`` output, JSON lines
  plus a ``*_metrics.json``.
- ``lm-eval-samples`` (:mod:`.lm_eval_samples`): lm-evaluation-harness ``--log_samples`` files.
"""

from __future__ import annotations

from ..errors import UnknownNameError
from . import lm_eval_samples, qwen_math, spurious_rewards
from .base import ImportFormat, SourceFile, SourceItem
from .core import (
    FilePlan,
    ImportedUnit,
    ImportOptions,
    ImportPlan,
    ImportResult,
    PlannedImport,
    plan_import,
    write_import,
)

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


__all__ = [
    "FORMATS",
    "FilePlan",
    "ImportFormat",
    "ImportOptions",
    "ImportPlan",
    "ImportResult",
    "ImportedUnit",
    "PlannedImport",
    "SourceFile",
    "SourceItem",
    "get_format",
    "plan_import",
    "write_import",
]
