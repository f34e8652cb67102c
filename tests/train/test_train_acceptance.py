"""The GPU acceptance script's stages that need no GPU (``benchmarks/train_acceptance.sh``).

The script itself runs on one GPU with the GPU install (it has not run here: no GPU). What is
tested: its syntax, its refusal without a GPU, ``plan`` (plan + validate of its spec, refused
after validate says "cannot launch here"), ``check`` on a run directory
holding a step verl would have saved (the tiny model as ``actor/huggingface``) and on one
without, and ``eval`` of that step with the ``hf`` backend on 2 MATH-500 problems."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import MATH500, PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "benchmarks" / "train_acceptance.sh"
BIN = str(Path(sys.executable).parent)


def stage(name: str, run: Path, timeout: float = 600, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), "--stage", name],
        env={**os.environ, "TRAIN_BIN": BIN, "EVAL_BIN": BIN, "RUN_DIR": str(run), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_the_script_parses_and_refuses_bad_stages(tmp_path: Path) -> None:
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0
    proc = stage("sideways", tmp_path / "run")
    assert proc.returncode == 2 and "valid: plan, train, check, merge, eval, all" in proc.stderr


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="a GPU machine trains for real")
def test_train_stage_refuses_without_a_gpu(tmp_path: Path) -> None:
    proc = stage("train", tmp_path / "run")
    assert proc.returncode == 1 and "FAILED at stage train: no GPU" in proc.stderr, proc.stderr


def test_plan_stage_validates_the_acceptance_spec(verl: str, tmp_path: Path, tiny_tokenizer: Path) -> None:
    """Plans and validates the spec; on a machine that cannot launch (no vLLM here) the stage
    fails after validate says so, unless ``ALLOW_CPU=1``."""
    run = tmp_path / "run"
    proc = stage("plan", run, TOKENIZER=str(tiny_tokenizer))
    assert proc.returncode == 1, proc.stderr
    assert "cannot launch here: vllm missing; fine for validation" in " ".join(proc.stderr.split())
    assert "FAILED at stage plan: verl cannot launch" in proc.stderr
    overrides = (run / "verl_overrides.txt").read_text().splitlines()
    assert "data.train_batch_size=8" in overrides and "actor_rollout_ref.rollout.n=4" in overrides
    assert "trainer.total_training_steps=2" in overrides and "trainer.n_gpus_per_node=1" in overrides


def test_check_and_eval_stages_on_a_saved_step(tmp_path: Path, tiny_model_dir: Path) -> None:
    from rlvr_audit.train.plan import plan

    run = tmp_path / "run"
    plan(PROJECT_ROOT / "experiments" / "acceptance-qwen2.5-0.5b-random.yaml", run, progress=False)
    proc = stage("check", run)
    assert proc.returncode == 1 and "FAILED at stage check: no checkpoint" in proc.stderr, proc.stderr
    # what verl writes at step 2 with save.hf_model on: FSDP shards' folder and a Hugging Face copy
    shutil.copytree(tiny_model_dir, run / "checkpoints" / "global_step_2" / "actor" / "huggingface")
    proc = stage("check", run)
    assert proc.returncode == 0, proc.stderr
    assert "registered acceptance-qwen2.5-0.5b-random/step2: hf" in proc.stderr
    proc = stage(
        "eval",
        run,
        EVAL_BACKEND="hf",
        EVAL_MODEL_ARGS="dtype=float32",
        EVAL_LIMIT="2",
        EVAL_MAX_TOKENS="8",
        DATA_DIR=str(MATH500.parent),
    )
    assert proc.returncode == 0, proc.stderr
    assert "2 problems generated and graded" in proc.stderr
