"""Importers: published generations from other tools -> stored units (``rlvr-audit import``).

Each format is one module with a streaming ``read(source, header)`` reader (see :mod:`.base`),
registered in the explicit registry :data:`FORMATS` (:mod:`.formats`: adding a format is one
module and one entry there); :func:`get_format` names the valid ids when given an unknown one.
:mod:`.core` turns read files into stored units (matching problems by text, see :mod:`.matching`),
so imported generations are graded and reported like generated ones.

Formats:

- ``spurious-rewards-json`` (:mod:`.spurious_rewards`): the Spurious Rewards paper's
  ``eval_checkpoint.py`` output, one JSON per model x benchmark.
- ``qwen-math-jsonl`` (:mod:`.qwen_math`): Qwen2.5-Math ``math_eval.py`` output, JSON lines
  plus a ``*_metrics.json``.
- ``lm-eval-samples`` (:mod:`.lm_eval_samples`): lm-evaluation-harness ``--log_samples`` files.
"""

from __future__ import annotations

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
from .formats import FORMATS, get_format

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
