"""What many test files share: where the project and the shared benchmark files are, and a toy registry."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
"""The project root (config dir: ``tasks/``, ``prompts/``)."""
DATA = ROOT.parent / "shared" / "data" / "benchmarks"
"""The shared benchmark files, read in place."""

needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/benchmarks is not beside the project")

TOY_REGISTRY = """\
families:
  toy:
    display_name: Toy
    checkpoints:
      base:
        model: org/toy-base
        prompt: no_template
      rl:
        model: org/toy-rl
        base: toy/base
        reward: random
        step: 50
        prompt: no_template
"""
"""A two-checkpoint registry: ``toy/rl`` and its base ``toy/base`` (added to runs automatically)."""
