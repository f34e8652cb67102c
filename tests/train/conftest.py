"""Fixtures of the training-runner tests.

Tests that need verl (the ``[train]`` extra) take the ``verl`` fixture: it skips them when
verl is not installed, and FAILS them instead when ``RLVR_AUDIT_REQUIRE_TRAIN`` is set (CI sets
it in the environment that installs the extra, so these tests can never be skipped silently).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TRAIN_DATA = PROJECT_ROOT / ".." / "shared" / "data" / "train"
DEEPSCALER = TRAIN_DATA / "deepscaler_level3_sample.jsonl"
INCORRECT = TRAIN_DATA / "incorrect_labels_qwen2.5_math_7b_sample.jsonl"
MATH500 = PROJECT_ROOT / ".." / "shared" / "data" / "benchmarks" / "math500.jsonl"
EXPERIMENTS = PROJECT_ROOT / "experiments"
REQUIRE_ENV = "RLVR_AUDIT_REQUIRE_TRAIN"


def need_verl() -> str:
    """verl's version; skip (or fail under ``RLVR_AUDIT_REQUIRE_TRAIN``) when verl is missing."""
    try:
        import verl
    except ImportError as exc:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"{REQUIRE_ENV} is set but verl cannot be imported ({exc}); install the training environment")
        pytest.skip(
            f"verl is not installed ({exc}); run tests/train in the training environment (README, Install: "
            f".venv-train), not by adding verl here (set {REQUIRE_ENV}=1 to fail instead)"
        )
    return str(verl.__version__)


@pytest.fixture(scope="session")
def verl() -> str:
    """Skip (or fail) the test unless verl is installed; verl's version."""
    return need_verl()


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_dir: Path) -> Path:
    """A small local tokenizer with a ChatML chat template (the tiny Qwen2 test model's)."""
    return tiny_model_dir


def base_spec(**changes: object) -> dict[str, object]:
    """A small valid spec (random reward on the DeepScaleR sample) with ``changes`` merged in
    (dotted keys reach into sections: ``{"hyperparameters.prompts_per_step": 8}``)."""
    spec: dict[str, object] = {
        "name": "test-run",
        "model": {"path": "Qwen/Qwen2.5-Math-7B", "registry_id": "qwen2.5-math-7b/base"},
        "reward": {"name": "random", "gamma": 0.5, "seed": 1},
        "data": {"path": str(DEEPSCALER.resolve())},
        "steps": 20,
    }
    for key, value in changes.items():
        target: dict[str, object] = spec
        *parents, last = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})  # type: ignore[assignment]
        if value is None:
            target.pop(last, None)
        else:
            target[last] = value
    return spec


@pytest.fixture
def make_spec(tmp_path: Path):  # type: ignore[no-untyped-def]
    """``make_spec(**changes) -> Path``: write :func:`base_spec` with changes as a YAML file."""
    import yaml

    counter = iter(range(10_000))

    def write(**changes: object) -> Path:
        path = tmp_path / f"spec{next(counter)}.yaml"
        path.write_text(yaml.safe_dump(base_spec(**changes)), encoding="utf-8")
        return path

    return write
