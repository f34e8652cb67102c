"""verl's own code on each run's composed config: the dataclasses its workers build, its policy
loss per clipping mode, its GRPO advantage, its mini-batch iterator.

Everything is verl 0.9.1's installed source (``omega_conf_to_dataclass``,
``get_policy_loss_fn``, ``get_adv_estimator_fn``, ``tensordict_utils.make_iterator``) on small
CPU tensors, compared with formulas written here from the papers: nothing of verl is re-implemented
on the expected side."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import MATH500

from rlvr_audit.train.plan import plan
from rlvr_audit.train.spec import NO_CLIP_RATIO, ExperimentSpec, Hyperparameters, Resources, SaveSpec, load_spec
from rlvr_audit.train.verl_config import compose


def composed(tmp_path: Path, spec_file: Path) -> tuple[ExperimentSpec, Any]:
    run = tmp_path / f"run-{spec_file.stem}"
    plan(spec_file, run, progress=False)
    return load_spec(spec_file), compose((run / "verl_overrides.txt").read_text().splitlines())


def actor_config(cfg: Any) -> Any:
    from verl.utils.config import omega_conf_to_dataclass

    return omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)


# --- every hyper-parameter reaches what verl's workers read ------------------------------------

EVERY_CHANGED: dict[str, Any] = {
    "steps": 20,
    "clipping": "clip_higher",
    "hyperparameters": {
        "learning_rate": 3e-7,
        "lr_schedule": "cosine",
        "warmup_steps": 3,
        "prompts_per_step": 12,
        "rollouts_per_prompt": 4,
        "mini_batch_samples": 24,
        "micro_batch_per_gpu": 3,
        "ppo_epochs": 2,
        "clip_ratio": 0.15,
        "clip_ratio_high": 0.31,
        "kl_coef": 0.01,
        "entropy_coef": 0.002,
        "temperature": 0.9,
        "top_p": 0.95,
        "max_prompt_tokens": 300,
        "max_response_tokens": 500,
        "loss_agg_mode": "token-mean",
        "adam_betas": [0.8, 0.99],
        "weight_decay": 0.05,
        "grad_clip": 0.5,
        "dual_clip": 2.5,
        "seed": 7,
    },
    "resources": {
        "nnodes": 2,
        "gpus_per_node": 1,
        "rollout_engine": "sglang",
        "rollout_tensor_parallel": 2,
        "gpu_memory_utilization": 0.45,
        "gradient_checkpointing": False,
        "param_offload": True,
        "optimizer_offload": False,
    },
    "save": {"every": 7, "hf_model": False, "keep": 3},
    "eval": {"path": str(MATH500), "limit": 20, "every": 5, "before_train": True},
}
"""A spec with every hyper-parameter away from its default (and from verl's), where one exists."""

# spec key -> (what verl's code reads it as, from the dataclasses and config below)
REACHES: dict[str, Any] = {
    "hyperparameters.algorithm": lambda v: v["algo"].adv_estimator,
    "hyperparameters.learning_rate": lambda v: v["actor"].optim.lr,
    "hyperparameters.lr_schedule": lambda v: v["actor"].optim.lr_scheduler_type,
    "hyperparameters.warmup_steps": lambda v: v["actor"].optim.lr_warmup_steps,
    "hyperparameters.prompts_per_step": lambda v: v["cfg"].data.train_batch_size,
    "hyperparameters.rollouts_per_prompt": lambda v: (v["rollout"].n, v["actor"].rollout_n),
    "hyperparameters.mini_batch_samples": lambda v: v["actor"].ppo_mini_batch_size * v["rollout"].n,
    "hyperparameters.micro_batch_per_gpu": lambda v: (
        v["actor"].ppo_micro_batch_size_per_gpu,
        v["rollout"].log_prob_micro_batch_size_per_gpu,
    ),
    "hyperparameters.ppo_epochs": lambda v: v["actor"].ppo_epochs,
    "hyperparameters.clip_ratio": lambda v: v["actor"].clip_ratio_low,
    "hyperparameters.clip_ratio_high": lambda v: v["actor"].clip_ratio_high,
    "hyperparameters.kl_coef": lambda v: (v["actor"].use_kl_loss, v["actor"].kl_loss_coef),
    "hyperparameters.entropy_coef": lambda v: v["actor"].entropy_coeff,
    "hyperparameters.temperature": lambda v: v["rollout"].temperature,
    "hyperparameters.top_p": lambda v: v["rollout"].top_p,
    "hyperparameters.max_prompt_tokens": lambda v: (v["rollout"].prompt_length, v["cfg"].data.max_prompt_length),
    "hyperparameters.max_response_tokens": lambda v: v["rollout"].response_length,
    "hyperparameters.loss_agg_mode": lambda v: v["actor"].loss_agg_mode,
    "hyperparameters.adam_betas": lambda v: list(v["actor"].optim.betas),
    "hyperparameters.weight_decay": lambda v: v["actor"].optim.weight_decay,
    "hyperparameters.grad_clip": lambda v: v["actor"].optim.clip_grad,
    "hyperparameters.dual_clip": lambda v: v["actor"].clip_ratio_c,
    "hyperparameters.seed": lambda v: (v["actor"].data_loader_seed, v["cfg"].data.seed),
    "resources.nnodes": lambda v: v["cfg"].trainer.nnodes,
    "resources.gpus_per_node": lambda v: v["cfg"].trainer.n_gpus_per_node,
    "resources.rollout_engine": lambda v: v["rollout"].name,
    "resources.rollout_tensor_parallel": lambda v: v["rollout"].tensor_model_parallel_size,
    "resources.gpu_memory_utilization": lambda v: v["rollout"].gpu_memory_utilization,
    "resources.gradient_checkpointing": lambda v: v["model"].enable_gradient_checkpointing,
    "resources.param_offload": lambda v: v["actor"].engine.param_offload,
    "resources.optimizer_offload": lambda v: v["actor"].engine.optimizer_offload,
    "save.every": lambda v: v["cfg"].trainer.save_freq,
    "save.hf_model": lambda v: "hf_model" in v["actor"].checkpoint.save_contents,
    "save.keep": lambda v: v["cfg"].trainer.max_actor_ckpt_to_keep,
    "steps": lambda v: v["cfg"].trainer.total_training_steps,
    "eval.every": lambda v: v["cfg"].trainer.test_freq,
    "eval.before_train": lambda v: v["cfg"].trainer.val_before_train,
}


def expected(spec: ExperimentSpec, key: str) -> Any:
    hp = spec.hyperparameters
    value: Any = spec
    for part in key.split("."):
        value = getattr(value, part, None)  # a spec without an ``eval`` section has no eval.every
    derived: dict[str, Any] = {
        "hyperparameters.rollouts_per_prompt": (hp.rollouts_per_prompt,) * 2,
        "hyperparameters.micro_batch_per_gpu": (hp.micro_batch_per_gpu,) * 2,
        "hyperparameters.kl_coef": (True, hp.kl_coef),
        "hyperparameters.max_prompt_tokens": (hp.max_prompt_tokens,) * 2,
        "hyperparameters.adam_betas": list(hp.adam_betas),
        "hyperparameters.seed": (hp.seed,) * 2,
    }
    return derived.get(key, value)


def test_every_spec_hyperparameter_reaches_the_dataclass_verl_builds(
    verl: str, tmp_path: Path, make_spec, tiny_model_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    """A dead key (verl 0.9.1 never reads ``actor.grad_clip``: its optimiser clips with
    ``actor.optim.clip_grad``) can never pass again: each spec field must arrive, with the spec's
    non-default value, where verl's engine workers read it, in the dataclasses they build with
    ``omega_conf_to_dataclass`` (actor, rollout, model, algorithm) or the config they read directly."""
    from verl.utils.config import omega_conf_to_dataclass

    covered = {f"hyperparameters.{f}" for f in Hyperparameters.model_fields}
    covered |= {f"resources.{f}" for f in Resources.model_fields} | {f"save.{f}" for f in SaveSpec.model_fields}
    assert covered <= set(REACHES), f"map these spec fields to what verl reads: {sorted(covered - set(REACHES))}"

    changes = {k: v for k, v in EVERY_CHANGED.items() if k not in ("hyperparameters", "resources", "save")}
    for section in ("hyperparameters", "resources", "save"):
        changes.update({f"{section}.{k}": v for k, v in EVERY_CHANGED[section].items()})
    spec, cfg = composed(tmp_path, make_spec(model={"path": str(tiny_model_dir)}, **changes))
    arr = cfg.actor_rollout_ref
    views = {
        "actor": omega_conf_to_dataclass(arr.actor),
        "rollout": omega_conf_to_dataclass(arr.rollout),
        "model": omega_conf_to_dataclass(arr.model),
        "algo": omega_conf_to_dataclass(cfg.algorithm),
        "cfg": cfg,
    }
    minimal = {k: v for k, v in spec.model_dump().items() if k in ("name", "model", "reward", "data")}
    defaults = ExperimentSpec.model_validate(minimal)
    for key, read in REACHES.items():
        want = expected(spec, key)
        assert read(views) == want, f"{key}: spec {want!r}, verl reads {read(views)!r}"
        if key != "hyperparameters.algorithm":  # the one field with a single allowed value
            assert want != expected(defaults, key), f"{key}: pick a non-default value, or the test cannot fail"


# --- the policy loss of each clipping mode -----------------------------------------------------

# four sequences of three tokens (the last token of the last one is padding); per token the ratio
# pi/pi_old and per sequence the advantage
RATIOS = [[0.5, 1.1, 1.3], [0.5, 0.9, 5.0], [1.25, 1.27, 1.35], [4.0, 0.7, 1.0]]
ADVANTAGES = [1.0, -1.0, 0.5, -2.0]
MASK = [[1, 1, 1], [1, 1, 1], [1, 1, 1], [1, 1, 0]]


def toy(on_policy: bool = False) -> tuple[Any, Any, Any, Any]:
    import torch

    ratios = torch.ones(4, 3, dtype=torch.float64) if on_policy else torch.tensor(RATIOS, dtype=torch.float64)
    old = torch.linspace(-3.0, -0.5, 12, dtype=torch.float64).reshape(4, 3)
    log_prob = (old + ratios.log()).detach().requires_grad_(True)
    adv = torch.tensor(ADVANTAGES, dtype=torch.float64)[:, None].expand(4, 3).clone()
    return old, log_prob, adv, torch.tensor(MASK, dtype=torch.float64)


def paper_loss(old: Any, log_prob: Any, adv: Any, mask: Any, *, low: float, high: float, dual: float | None) -> Any:
    """The clipped surrogate as the paper's OpenRLHF code writes it, ``-min(r A, clip(r) A)``, plus
    the dual clip ``min(., c |A|)`` for negative advantages when ``dual`` is given; token mean per
    sequence, then the mean over sequences (``seq-mean-token-mean``). verl adds 1e-8 to each
    sequence's token count, hence the comparisons at rtol 1e-7."""
    import torch

    ratio = torch.exp(log_prob - old)
    loss = -torch.minimum(ratio * adv, torch.clamp(ratio, 1 - low, 1 + high) * adv)
    if dual is not None:
        loss = torch.where(adv < 0, torch.minimum(loss, -adv * dual), loss)
    return ((loss * mask).sum(-1) / mask.sum(-1)).mean()


def verl_loss(actor: Any, old: Any, log_prob: Any, adv: Any, mask: Any) -> tuple[Any, dict[str, float]]:
    from verl.trainer.ppo.core_algos import get_policy_loss_fn

    fn = get_policy_loss_fn(actor.policy_loss.loss_mode)
    loss, metrics = fn(
        old_log_prob=old,
        log_prob=log_prob,
        advantages=adv,
        response_mask=mask,
        loss_agg_mode=actor.loss_agg_mode,
        config=actor,
    )
    return loss, metrics


def grad(loss: Any, log_prob: Any) -> Any:
    import torch

    (g,) = torch.autograd.grad(loss, log_prob)
    return g


@pytest.mark.parametrize("mode", ["standard", "no_clip", "on_policy", "clip_higher"])
def test_verls_policy_loss_per_clipping_mode(verl: str, tmp_path: Path, make_spec, mode: str) -> None:  # type: ignore[no-untyped-def]
    import torch

    spec, cfg = composed(tmp_path, make_spec(clipping=mode))
    actor = actor_config(cfg)
    assert actor.policy_loss.loss_mode == "vanilla" and actor.loss_agg_mode == "seq-mean-token-mean"
    old, log_prob, adv, mask = toy(on_policy=mode == "on_policy")
    loss, metrics = verl_loss(actor, old, log_prob, adv, mask)
    g = grad(loss, log_prob)
    if mode in ("no_clip", "on_policy"):
        # the unclipped importance-weighted surrogate, in value and gradient; nothing clipped
        want = paper_loss(old, log_prob, adv, mask, low=math.inf, high=math.inf, dual=None)
        assert metrics["actor/pg_clipfrac"] == 0.0 and metrics["actor/pg_clipfrac_lower"] == 0.0
    else:
        want = paper_loss(old, log_prob, adv, mask, low=spec.clip_low, high=spec.clip_high, dual=None)
        # verl's default dual clip (3) would cap the r = 5, A = -1 token at 3: the paper's loss keeps 5
        dual = paper_loss(old, log_prob, adv, mask, low=spec.clip_low, high=spec.clip_high, dual=3.0)
        assert not torch.isclose(loss, dual)
    torch.testing.assert_close(loss, want, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(g, grad(want, log_prob), rtol=1e-7, atol=1e-9)
    if mode == "on_policy":
        # ratio 1 (old log-probs recomputed with the weights being trained, one step per batch):
        # the loss is -mean(A) and each token's gradient -A / (tokens of its sequence) / sequences
        assert float(loss.detach()) == pytest.approx(-float(np.mean(ADVANTAGES)))
        counts = torch.tensor(MASK, dtype=torch.float64).sum(-1, keepdim=True)
        torch.testing.assert_close(g, -adv * mask / counts / 4)
    if mode == "clip_higher":
        # positive advantage: r = 1.25 and 1.27 are inside 1 + 0.28 and still pull; 1.3 and 1.35 are clipped
        assert (g[2, :2] != 0).all() and (g[2, 2] == 0) and (g[0, 2] == 0)
        assert spec.clip_high == pytest.approx(0.28) and actor.clip_ratio_high == pytest.approx(0.28)
    if mode == "standard":
        assert g[2].eq(0).all() and g[0, 2] == 0  # all of 1.25, 1.27, 1.35 are above 1 + 0.2
    if mode == "no_clip":
        # even a ratio of e^19 (verl clamps the log-ratio at 20) is not clipped by NO_CLIP_RATIO
        far = old.clone()
        far[0, 0] -= 19.0
        loss_far, metrics_far = verl_loss(actor, far, log_prob, adv, mask)
        want_far = paper_loss(far, log_prob, adv, mask, low=math.inf, high=math.inf, dual=None)
        torch.testing.assert_close(loss_far, want_far, rtol=1e-7, atol=0)
        assert metrics_far["actor/pg_clipfrac"] == 0.0 and math.exp(20) < NO_CLIP_RATIO


def test_dual_clip_is_verls_when_the_spec_asks_for_it(verl: str, tmp_path: Path, make_spec) -> None:  # type: ignore[no-untyped-def]
    import torch

    _, cfg = composed(tmp_path, make_spec(**{"hyperparameters.dual_clip": 3.0}))
    actor = actor_config(cfg)
    assert actor.clip_ratio_c == 3.0
    old, log_prob, adv, mask = toy()
    loss, metrics = verl_loss(actor, old, log_prob, adv, mask)
    want = paper_loss(old, log_prob, adv, mask, low=0.2, high=0.2, dual=3.0)
    torch.testing.assert_close(loss, want, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(grad(loss, log_prob), grad(want, log_prob), rtol=1e-7, atol=1e-9)
    assert metrics["actor/pg_clipfrac_lower"] > 0  # r = 5 and r = 4 with A < 0 hit the dual bound


# --- GRPO's advantage ----------------------------------------------------------------------------


def test_verls_grpo_advantage_is_the_papers_formula(verl: str, tmp_path: Path, make_spec) -> None:  # type: ignore[no-untyped-def]
    """Group-normalised outcome reward, (r - mean_g) / (std_g + eps) with the sample standard
    deviation (ddof 1, as the paper's OpenRLHF code), 0 for a group whose rewards are all equal
    (random rewards give many: 1/8 of groups of 4 at gamma 0.5 for each value), on every token
    of the response and none of the padding; groups found by prompt id, not position."""
    import torch
    from verl.trainer.ppo.core_algos import get_adv_estimator_fn
    from verl.utils.config import omega_conf_to_dataclass

    from rlvr_audit.train.rewards import random_draw

    _, cfg = composed(tmp_path, make_spec(**{"hyperparameters.rollouts_per_prompt": 4}))
    n = int(cfg.actor_rollout_ref.rollout.n)
    groups = 40
    # the random reward itself, as the run would draw it (gamma 0.5, seed 0), for 24 prompts x n
    rewards = np.array(
        [
            [float(random_draw(seed=0, prompt=f"prompt {g}", response=f"response {i}") < 0.5) for i in range(n)]
            for g in range(groups)
        ],
        dtype=np.float64,
    )
    rewards[0] = [1.0, 0.0] * (n // 2)  # ties, and groups verl must not mix
    rng = np.random.default_rng(0)
    order = rng.permutation(groups * n)
    uid = np.array([f"uid-{i // n}" for i in range(groups * n)], dtype=object)[order]
    scores = rewards.reshape(-1)[order]
    length = 7
    lengths = rng.integers(1, length + 1, size=groups * n)
    mask = torch.tensor(np.arange(length)[None, :] < lengths[:, None], dtype=torch.float32)
    token_rewards = torch.zeros(groups * n, length)
    token_rewards[torch.arange(groups * n), torch.tensor(lengths - 1)] = torch.tensor(scores, dtype=torch.float32)

    fn = get_adv_estimator_fn(cfg.algorithm.adv_estimator)
    adv, returns = fn(
        token_level_rewards=token_rewards,
        response_mask=mask,
        index=uid,
        norm_adv_by_std_in_grpo=cfg.algorithm.norm_adv_by_std_in_grpo,
        config=omega_conf_to_dataclass(cfg.algorithm),
    )

    mean = rewards.mean(axis=1, keepdims=True)
    std = rewards.std(axis=1, ddof=1, keepdims=True)
    paper = ((rewards - mean) / (std + 1e-6)).reshape(-1)[order]
    flat = (rewards == rewards[:, :1]).all(axis=1)
    assert flat.sum() >= 2, "the draw should give some all-equal groups"
    np.testing.assert_allclose(adv.numpy(), paper[:, None] * mask.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(adv.numpy()[np.repeat(flat, n)[order]], 0.0)
    torch.testing.assert_close(returns, adv)


# --- batch arithmetic --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "changes"),
    [
        ("standard", {}),
        ("no_clip", {}),
        ("on_policy", {}),
        ("clip_higher", {"hyperparameters.ppo_epochs": 2}),
        ("standard", {"resources.gpus_per_node": 4, "hyperparameters.mini_batch_samples": 256}),
    ],
)
def test_rollout_and_train_batches_with_verls_iterator(verl: str, tmp_path: Path, make_spec, mode, changes) -> None:  # type: ignore[no-untyped-def]
    """prompts x n samples per step; each GPU's share split into mini-batches by verl's own
    iterator (as its actor's ``train_mini_batch`` does): the optimizer steps per rollout batch and
    the samples per step are the spec's."""
    import torch
    from tensordict import TensorDict
    from verl.utils import tensordict_utils as tu

    spec, cfg = composed(tmp_path, make_spec(clipping=mode, **changes))
    actor, n = cfg.actor_rollout_ref.actor, int(cfg.actor_rollout_ref.rollout.n)
    samples = int(cfg.data.train_batch_size) * n
    assert samples == spec.hyperparameters.prompts_per_step * spec.hyperparameters.rollouts_per_prompt
    n_gpus = int(cfg.trainer.nnodes) * int(cfg.trainer.n_gpus_per_node)
    per_gpu = TensorDict({"x": torch.arange(samples // n_gpus)}, batch_size=[samples // n_gpus])
    mini_per_gpu = int(actor.ppo_mini_batch_size) * n // n_gpus  # the trainer's mini_batch_size, per dp rank
    sizes = [len(mb) for mb in tu.make_iterator(per_gpu, mini_batch_size=mini_per_gpu, epochs=int(actor.ppo_epochs))]
    assert len(sizes) == spec.optimizer_steps_per_batch
    assert {s * n_gpus for s in sizes} == {spec.mini_batch}
    assert mini_per_gpu % int(actor.ppo_micro_batch_size_per_gpu) == 0
    if mode == "on_policy":
        assert sizes == [samples // n_gpus]
