"""The verl configuration of a run: Hydra overrides of verl's own ``ppo_trainer`` config.

:func:`overrides` turns a spec into ``key=value`` overrides (verl 0.9 keys: the reward under
``reward.custom_reward_function.path/.name`` with its parameters in ``reward_kwargs``, not the
legacy top-level ``custom_reward_function``). :func:`compose` composes them against the
installed verl's config with Hydra, exactly as ``python -m verl.trainer.main_ppo`` does, and
:func:`verl_validate` runs verl's own ``validate_config`` on the result.

Every value is written in Hydra's override grammar by :func:`hydra_value`: strings are quoted
where needed and ``${`` is escaped, so a path or name holding ``${...}`` stays literal instead of
being interpolated by OmegaConf; an override with a line break is refused (one override per
line of ``verl_overrides.txt``). ``verl_overrides`` from the spec are raw Hydra syntax and are
appended as written (interpolation there is the user's own).
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from ..core.errors import UsageError
from .rewards import REWARD_KWARG
from .spec import ExperimentSpec

REWARD_MODULE = "pkg://rlvr_audit.train.rewards"
"""Where verl loads the reward from (an importable module: no file path of this machine)."""

CALLBACK_CLASS = "rlvr_audit.train.callback.RegisterCheckpoints"
"""verl checkpoint callback that registers each saved step (``trainer.checkpoint_callback_class``)."""

VERL_ENTRY = "verl.trainer.main_ppo"
"""The module ``launch`` runs (``python -m``)."""

_SAFE = re.compile(r"[A-Za-z0-9_./:+@-]+")


def hydra_value(value: Any) -> str:
    """``value`` in Hydra's override grammar: lists ``[a,b]``, dicts ``{k:v}``, quoted strings."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_key(k)}:{hydra_value(v)}" for k, v in value.items()) + "}"
    text = str(value)
    if any(c in text for c in _LINE_BREAKS):
        raise ValueError(f"{text!r} holds a line break, which would split its override line in two")
    if _SAFE.fullmatch(text) and text not in ("null", "true", "false") and not _looks_numeric(text):
        return text
    # Hydra's quoted strings: a quote is escaped with a backslash, and backslashes are escaped only
    # where they come before a quote, the closing quote or an interpolation's "${"; elsewhere they
    # are literal. "\${" keeps "${...}" literal (OmegaConf would resolve it).
    return "'" + re.sub(r"(\\*)('|\$\{|$)", _escape_quote, text) + "'"


_LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
"""What ``str.splitlines`` splits on: none of it may appear inside one override."""


def _escape_quote(match: re.Match[str]) -> str:
    tail = match.group(2)
    return match.group(1) * 2 + {"'": "\\'", "${": "\\${", "": ""}[tail]


def _key(key: Any) -> str:
    text = str(key)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text):
        raise ValueError(f"dictionary key {text!r} cannot be written as a Hydra override key")
    return text


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def reward_spec_dict(spec: ExperimentSpec) -> dict[str, Any]:
    """The reward section as verl hands it to :func:`rlvr_audit.train.rewards.compute_score`."""
    return spec.model_dump(mode="json")["reward"]


def total_epochs(spec: ExperimentSpec, train_rows: int) -> int:
    """Epochs verl must be allowed so that ``steps`` batches fit (verl drops the last partial batch)."""
    per_epoch = max(1, train_rows // spec.hyperparameters.prompts_per_step)
    return max(1, math.ceil(spec.steps / per_epoch))


def overrides(
    spec: ExperimentSpec,
    *,
    model_path: str,
    run_dir: Path,
    train_rows: int,
    has_eval: bool,
) -> list[str]:
    """The Hydra overrides of ``ppo_trainer`` for a planned run (absolute paths inside ``run_dir``)."""
    hp = spec.hyperparameters
    res = spec.resources
    use_kl = hp.kl_coef > 0
    data_dir = run_dir / "data"
    save_contents = ["model", "optimizer", "extra"] + (["hf_model"] if spec.save.hf_model else [])
    items: list[tuple[str, Any]] = [
        # algorithm: GRPO, no KL in the reward
        ("algorithm.adv_estimator", hp.algorithm),
        ("algorithm.norm_adv_by_std_in_grpo", True),
        ("algorithm.use_kl_in_reward", False),
        # data
        ("data.train_files", str(data_dir / "train.parquet")),
        ("data.val_files", str(data_dir / ("val.parquet" if has_eval else "train.parquet"))),
        ("data.prompt_key", "prompt"),
        ("data.train_batch_size", hp.prompts_per_step),
        ("data.max_prompt_length", hp.max_prompt_tokens),
        ("data.max_response_length", hp.max_response_tokens),
        ("data.filter_overlong_prompts", True),
        ("data.truncation", "error"),
        ("data.shuffle", True),
        ("data.seed", hp.seed),
        # model
        ("actor_rollout_ref.model.path", model_path),
        ("actor_rollout_ref.model.trust_remote_code", spec.model.trust_remote_code),
        ("actor_rollout_ref.model.enable_gradient_checkpointing", res.gradient_checkpointing),
        ("actor_rollout_ref.model.use_remove_padding", True),
        # actor: optimizer
        ("actor_rollout_ref.actor.optim.lr", hp.learning_rate),
        ("actor_rollout_ref.actor.optim.lr_scheduler_type", hp.lr_schedule),
        ("actor_rollout_ref.actor.optim.lr_warmup_steps", hp.warmup_steps),
        ("actor_rollout_ref.actor.optim.weight_decay", hp.weight_decay),
        ("actor_rollout_ref.actor.optim.betas", list(hp.adam_betas)),
        ("actor_rollout_ref.actor.optim.clip_grad", hp.grad_clip),
        # actor: batches (verl counts the mini-batch in prompts)
        ("actor_rollout_ref.actor.ppo_mini_batch_size", spec.mini_batch // hp.rollouts_per_prompt),
        ("actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu", hp.micro_batch_per_gpu),
        ("actor_rollout_ref.actor.ppo_epochs", hp.ppo_epochs),
        ("actor_rollout_ref.actor.data_loader_seed", hp.seed),
        # actor: loss (clipping mode)
        ("actor_rollout_ref.actor.policy_loss.loss_mode", "vanilla"),
        ("actor_rollout_ref.actor.clip_ratio", spec.clip_low),
        ("actor_rollout_ref.actor.clip_ratio_low", spec.clip_low),
        ("actor_rollout_ref.actor.clip_ratio_high", spec.clip_high),
        ("actor_rollout_ref.actor.clip_ratio_c", spec.dual_clip_bound),
        ("actor_rollout_ref.actor.loss_agg_mode", hp.loss_agg_mode),
        ("actor_rollout_ref.actor.use_kl_loss", use_kl),
        ("actor_rollout_ref.actor.kl_loss_coef", hp.kl_coef),
        ("actor_rollout_ref.actor.entropy_coeff", hp.entropy_coef),
        ("actor_rollout_ref.actor.fsdp_config.param_offload", res.param_offload),
        ("actor_rollout_ref.actor.fsdp_config.optimizer_offload", res.optimizer_offload),
        ("actor_rollout_ref.actor.checkpoint.save_contents", save_contents),
        # rollout
        ("actor_rollout_ref.rollout.name", res.rollout_engine),
        ("actor_rollout_ref.rollout.n", hp.rollouts_per_prompt),
        ("actor_rollout_ref.rollout.temperature", hp.temperature),
        ("actor_rollout_ref.rollout.top_p", hp.top_p),
        ("actor_rollout_ref.rollout.tensor_model_parallel_size", res.rollout_tensor_parallel),
        ("actor_rollout_ref.rollout.gpu_memory_utilization", res.gpu_memory_utilization),
        ("actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu", hp.micro_batch_per_gpu),
        # validation generations: greedy, one sample (the MATH-500 protocol)
        ("actor_rollout_ref.rollout.val_kwargs.do_sample", False),
        ("actor_rollout_ref.rollout.val_kwargs.temperature", 0.0),
        ("actor_rollout_ref.rollout.val_kwargs.n", 1),
        ("actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu", hp.micro_batch_per_gpu),
        ("actor_rollout_ref.ref.fsdp_config.param_offload", True),
        # reward: our function, verl 0.9 keys
        ("reward.reward_manager.name", "naive"),
        ("reward.custom_reward_function.path", REWARD_MODULE),
        ("reward.custom_reward_function.name", "compute_score"),
        # trainer
        ("trainer.project_name", spec.project),
        ("trainer.experiment_name", spec.name),
        ("trainer.logger", list(spec.logger)),
        ("trainer.nnodes", res.nnodes),
        ("trainer.n_gpus_per_node", res.gpus_per_node),
        ("trainer.total_training_steps", spec.steps),
        ("trainer.total_epochs", total_epochs(spec, train_rows)),
        ("trainer.save_freq", spec.save.every),
        ("trainer.max_actor_ckpt_to_keep", spec.save.keep),
        ("trainer.test_freq", spec.eval.every if spec.eval is not None and spec.eval.every > 0 else -1),
        ("trainer.val_before_train", bool(spec.eval is not None and spec.eval.before_train)),
        ("trainer.default_local_dir", str(run_dir / "checkpoints")),
        ("trainer.resume_mode", "auto"),
        ("trainer.checkpoint_callback_class", CALLBACK_CLASS),
    ]
    items.append(("+reward.custom_reward_function.reward_kwargs", {REWARD_KWARG: reward_spec_dict(spec)}))
    out = []
    for key, value in items:  # reward_kwargs is not in verl's schema: added with '+'
        try:
            out.append(f"{key}={hydra_value(value)}")
        except ValueError as exc:
            raise UsageError(f"cannot write the override {key}: {exc}") from exc
    for line in spec.verl_overrides:
        if any(c in line for c in _LINE_BREAKS):
            raise UsageError(f"verl_overrides entry {line!r} holds a line break; give one override per entry")
        out.append(line)
    return out


# --- composing against the installed verl ------------------------------------------------------


def require_verl() -> str:
    """The installed verl's version; a clear error when the ``[train]`` extra is missing."""
    try:
        import verl  # the train extra, in its own environment
    except ImportError as exc:
        raise UsageError(
            f"verl is not installed in this Python ({sys.prefix}): run the training commands from the training "
            f"environment ({TRAIN_ENV_HINT}) instead. Do not add verl to the evaluation environment: it pins "
            "ANTLR 4.9, which changes math-verify's verdicts"
        ) from exc
    return str(getattr(verl, "__version__", "unknown"))


TRAIN_ENV_HINT = (
    "README, Install: python3 -m venv .venv-train && .venv-train/bin/pip install torch==2.13.0 -e '.[dev,train]', "
    "then .venv-train/bin/rlvr-audit train ..."
)
"""Where the training environment comes from (the README's install line for it)."""


def installed_verl_version() -> str | None:
    """verl's installed version (package metadata, no import), or ``None``."""
    try:
        return metadata.version("verl")
    except metadata.PackageNotFoundError:
        return None


def compose(override_list: list[str]) -> Any:
    """verl's ``ppo_trainer`` config with ``override_list`` applied, composed by Hydra the way
    ``python -m verl.trainer.main_ppo`` composes it (an OmegaConf ``DictConfig``)."""
    require_verl()
    from hydra import compose as hydra_compose  # verl's Hydra (the train extra)
    from hydra import initialize_config_module  # verl's Hydra (the train extra)
    from hydra.core.global_hydra import GlobalHydra  # verl's Hydra (the train extra)

    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module="verl.trainer.config", version_base=None):
            return hydra_compose(config_name="ppo_trainer", overrides=list(override_list))
    except Exception as exc:
        raise UsageError(f"verl's ppo_trainer config does not accept these overrides: {_one_line(exc)}") from exc
    finally:
        GlobalHydra.instance().clear()


def verl_validate(cfg: Any) -> None:
    """verl's own ``validate_config`` (as ``main_ppo`` calls it); its failures as :class:`UsageError`."""
    from verl.trainer.ppo.utils import need_critic, need_reference_policy  # the train extra
    from verl.utils.config import validate_config  # the train extra

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            validate_config(cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))
    except Exception as exc:
        raise UsageError(f"verl's validate_config rejected the configuration: {_one_line(exc)}") from exc


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if not text.startswith(type(exc).__name__) else text
