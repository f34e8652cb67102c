"""Against the installed verl: compose, validate_config, verl's dataset class, the reward loader.

These need the ``[train]`` extra (the ``verl`` fixture skips them without it, and fails them
under ``RLVR_AUDIT_REQUIRE_TRAIN=1``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import EXPERIMENTS, INCORRECT, MATH500

from rlvr_audit.core.errors import ConfigError, UsageError
from rlvr_audit.train.plan import plan
from rlvr_audit.train.spec import NO_CLIP_RATIO
from rlvr_audit.train.validate import validate_run
from rlvr_audit.train.verl_config import compose, hydra_value

REWARDS: list[dict[str, Any]] = [
    {"name": "ground_truth"},
    {"name": "ground_truth", "grader": "math_verify"},
    {"name": "majority_vote"},
    {"name": "incorrect"},
    {"name": "format_boxed"},
    {"name": "random", "gamma": 0.5, "seed": 3},
    {"name": "python"},
    {"name": "no_repetition"},
    {"name": "compound", "rewards": [{"name": "ground_truth"}, {"name": "python", "negate": True}]},
]


def data_for(reward: dict[str, Any]) -> dict[str, Any] | None:
    names = {reward["name"], *(r["name"] for r in reward.get("rewards", []))}
    if "incorrect" in names:
        return {"path": str(INCORRECT), "labels": "incorrect"}
    if "majority_vote" in names:
        return {"labels": "majority_vote"}
    return None


@pytest.mark.parametrize("reward", REWARDS, ids=lambda r: r["name"] + ("-" + r["grader"] if "grader" in r else ""))
def test_plan_and_validate_every_reward(verl: str, tmp_path: Path, make_spec, tiny_tokenizer: Path, reward) -> None:  # type: ignore[no-untyped-def]
    changes: dict[str, Any] = {"reward": reward}
    data = data_for(reward)
    if data is not None:
        changes.update({f"data.{k}": v for k, v in data.items()})
    run = tmp_path / "run"
    plan(make_spec(**changes), run, progress=False)
    result = validate_run(run, tokenizer=str(tiny_tokenizer), progress=False, check_launch=False)
    names = [c.name for c in result.checks]
    assert names == ["verl config", "reward", "batches", "clipping", "context", "dataset", "reward on canned responses"]
    canned = result.checks[-1].detail
    if reward["name"] in ("ground_truth", "majority_vote", "incorrect"):
        assert canned.startswith("label boxed: 1, wrong answer: 0, empty: 0"), canned
    cfg = result.config
    assert cfg.reward.custom_reward_function.reward_kwargs.reward.name == reward["name"]


@pytest.mark.parametrize(
    ("mode", "mini_prompts", "low", "high", "dual"),
    [
        ("standard", 8, 0.2, 0.2, NO_CLIP_RATIO),
        ("no_clip", 8, NO_CLIP_RATIO, NO_CLIP_RATIO, NO_CLIP_RATIO),
        ("on_policy", 64, 0.2, 0.2, NO_CLIP_RATIO),
        ("clip_higher", 8, 0.2, 0.28, NO_CLIP_RATIO),
    ],
)
def test_plan_and_validate_every_clipping_mode(  # type: ignore[no-untyped-def]
    verl: str, tmp_path: Path, make_spec, tiny_tokenizer: Path, mode, mini_prompts, low, high, dual
) -> None:
    run = tmp_path / "run"
    plan(make_spec(clipping=mode), run, progress=False)
    result = validate_run(run, tokenizer=str(tiny_tokenizer), progress=False, check_launch=False)
    actor = result.config.actor_rollout_ref.actor
    assert actor.ppo_mini_batch_size == mini_prompts
    assert (actor.clip_ratio_low, actor.clip_ratio_high, actor.clip_ratio_c) == (low, high, dual)
    steps = 1 if mode == "on_policy" else 8
    assert f"{steps} optimizer step(s) per batch" in result.checks[3].detail


def test_composed_config_holds_the_papers_settings(verl: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    plan(EXPERIMENTS / "qwen2.5-math-7b-random.yaml", run, progress=False)
    cfg = compose((run / "verl_overrides.txt").read_text().splitlines())
    arr, actor, rollout = cfg.actor_rollout_ref, cfg.actor_rollout_ref.actor, cfg.actor_rollout_ref.rollout
    assert cfg.algorithm.adv_estimator == "grpo" and cfg.algorithm.use_kl_in_reward is False
    assert arr.model.path == "Qwen/Qwen2.5-Math-7B"
    assert (actor.optim.lr, actor.optim.lr_scheduler_type, actor.optim.lr_warmup_steps) == (5e-7, "constant", 0)
    assert list(actor.optim.betas) == [0.9, 0.95] and actor.optim.weight_decay == 0.0 and actor.optim.clip_grad == 1.0
    assert actor.clip_ratio_c == NO_CLIP_RATIO  # no dual clip: the paper's loss
    assert (cfg.data.train_batch_size, rollout.n, actor.ppo_mini_batch_size, actor.ppo_epochs) == (64, 16, 8, 1)
    assert (actor.clip_ratio_low, actor.clip_ratio_high, actor.loss_agg_mode) == (0.2, 0.2, "seq-mean-token-mean")
    assert (actor.use_kl_loss, actor.kl_loss_coef, actor.entropy_coeff) == (False, 0.0, 0.0)
    assert (rollout.temperature, rollout.top_p, rollout.name) == (1.0, 1.0, "vllm")
    assert (cfg.data.max_prompt_length, cfg.data.max_response_length) == (1024, 3072)
    assert (cfg.trainer.total_training_steps, cfg.trainer.save_freq, cfg.trainer.test_freq) == (150, 50, 50)
    assert (cfg.trainer.nnodes, cfg.trainer.n_gpus_per_node) == (1, 8)
    assert cfg.trainer.default_local_dir == str(run / "checkpoints")
    assert cfg.trainer.checkpoint_callback_class == "rlvr_audit.train.callback.RegisterCheckpoints"
    assert cfg.data.train_files == str(run / "data" / "train.parquet")
    assert cfg.data.val_files == str(run / "data" / "val.parquet")
    assert "hf_model" in list(actor.checkpoint.save_contents)
    # the reward: verl 0.9 keys, never the legacy top-level ones
    reward = cfg.reward.custom_reward_function
    assert (reward.path, reward.name) == ("pkg://rlvr_audit.train.rewards", "compute_score")
    assert dict(reward.reward_kwargs.reward) == {"name": "random", "gamma": 0.5, "seed": 0, "negate": False}
    assert cfg.custom_reward_function.path is None
    assert cfg.reward.reward_manager.name == "naive"


def test_hydra_values_round_trip(verl: str) -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    values = [
        "plain",
        "pkg://rlvr_audit.train.rewards",
        "/a path/with spaces/x.parquet",
        "it's \\boxed{}",
        "a\\",
        "a\\'b",
        "back\\\\slash",
        "null",
        "1e-3",
        "",
        "${oc.env:HOME}",
        "a\\${x}",
        "$ {not} $x {y}",
        5e-7,
        3,
        True,
        None,
        [0.9, 0.95],
        {"reward": {"name": "compound", "rewards": [{"name": "python", "negate": True}]}},
    ]
    from omegaconf import OmegaConf

    parser = OverridesParser.create()
    for value in values:
        (parsed,) = parser.parse_overrides([f"+k={hydra_value(value)}"])
        # read back through OmegaConf, as verl reads it: "\${" is its escape of an interpolation
        read = OmegaConf.to_container(OmegaConf.create({"k": parsed.value()}), resolve=True)["k"]  # type: ignore[index]
        assert read == value, (value, hydra_value(value))


def test_interpolation_in_a_spec_string_stays_literal(verl: str, tmp_path: Path, make_spec) -> None:  # type: ignore[no-untyped-def]
    """Issue 13 item 13: a `${...}` in a spec string is the string, never resolved by Hydra."""
    run = tmp_path / "run"
    plan(make_spec(project="team-${oc.env:HOME}"), run, progress=False)
    cfg = compose((run / "verl_overrides.txt").read_text().splitlines())
    assert cfg.trainer.project_name == "team-${oc.env:HOME}"


def test_validate_rejects_what_verl_would_reject(verl: str, tmp_path: Path, make_spec, tiny_tokenizer: Path) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "bad-override"
    plan(make_spec(verl_overrides=["actor_rollout_ref.actor.loss_agg_mode=sum-of-everything"]), run, progress=False)
    with pytest.raises(UsageError, match="validate_config rejected.*loss_agg_mode"):
        validate_run(run, tokenizer=str(tiny_tokenizer), progress=False, check_launch=False)
    run = tmp_path / "unknown-key"
    plan(make_spec(verl_overrides=["actor_rollout_ref.actor.no_such_key=1"]), run, progress=False)
    with pytest.raises(UsageError, match="no_such_key"):
        validate_run(run, tokenizer=str(tiny_tokenizer), progress=False, check_launch=False)
    run = tmp_path / "changed-batch"
    plan(make_spec(verl_overrides=["actor_rollout_ref.actor.ppo_mini_batch_size=16"]), run, progress=False)
    with pytest.raises(ConfigError, match="4 optimizer steps per batch, the spec intends 8"):
        validate_run(run, tokenizer=str(tiny_tokenizer), progress=False, check_launch=False)


def test_validate_counts_rows_after_verls_length_filter(
    verl: str, tmp_path: Path, make_spec, tiny_tokenizer: Path
) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "short"
    plan(make_spec(**{"hyperparameters.max_prompt_tokens": 60}), run, progress=False)
    with pytest.raises(ConfigError, match="rows fit max_prompt_tokens=60; one batch needs 64 prompts"):
        validate_run(run, tokenizer=str(tiny_tokenizer), progress=False, check_launch=False)
    run = tmp_path / "fewer-steps"  # 326 of 512 prompts fit: 5 batches x 3 epochs < 20 steps
    plan(make_spec(**{"hyperparameters.max_prompt_tokens": 150}), run, progress=False)
    with pytest.raises(ConfigError, match="fewer than the spec's 20: verl would stop early"):
        validate_run(run, tokenizer=str(tiny_tokenizer), progress=False, check_launch=False)


def test_validate_with_an_eval_set(verl: str, tmp_path: Path, make_spec, tiny_tokenizer: Path) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "eval"
    plan(make_spec(eval={"path": str(MATH500), "limit": 50, "every": 10}), run, progress=False)
    result = validate_run(run, tokenizer=str(tiny_tokenizer), progress=False, check_launch=False)
    assert result.config.data.val_files.endswith("val.parquet") and result.config.trainer.test_freq == 10


def test_verls_reward_manager_and_checkpoint_callback_use_ours(verl: str, tmp_path: Path, tiny_tokenizer: Path) -> None:
    """verl's own loaders, on the composed config: the naive reward manager scores a response
    with our compute_score (from its executor thread), the trainer's callback is ours."""
    import numpy as np
    import torch
    from transformers import AutoTokenizer
    from verl import DataProto
    from verl.trainer.ppo.checkpoint_callback import build_checkpoint_callback
    from verl.trainer.ppo.reward import load_reward_manager

    from rlvr_audit.train.callback import RegisterCheckpoints

    run = tmp_path / "run"
    plan(EXPERIMENTS / "qwen2.5-math-7b-ground-truth.yaml", run, progress=False)
    cfg = compose((run / "verl_overrides.txt").read_text().splitlines())
    tok = AutoTokenizer.from_pretrained(str(tiny_tokenizer))
    manager = load_reward_manager(cfg, tok)

    def reward_of(response: str) -> float:
        ids = tok(response, add_special_tokens=False)["input_ids"]
        data = DataProto.from_dict(
            tensors={
                "prompts": torch.zeros(1, 5, dtype=torch.long),
                "responses": torch.tensor([[*ids, tok.pad_token_id, tok.pad_token_id]]),
                "attention_mask": torch.tensor([[1] * (5 + len(ids)) + [0, 0]]),
            },
            non_tensors={
                "data_source": np.array(["rlvr_audit"], dtype=object),
                "reward_model": np.array([{"ground_truth": "166"}], dtype=object),
                "extra_info": np.array([{"question": "q", "index": 0}], dtype=object),
            },
        )
        return float(manager.loop.run_until_complete(manager.run_single(data))["reward_score"])

    assert reward_of("So the answer is $\\boxed{166}$.") == 1.0
    assert reward_of("So the answer is $\\boxed{167}$.") == 0.0
    callback = build_checkpoint_callback(cfg)
    assert isinstance(callback, RegisterCheckpoints) and callback.run_dir() == run
