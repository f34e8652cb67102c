"""``rlvr-audit train validate``: check a planned run on CPU before it costs GPU hours.

1. Compose the run's overrides against the installed verl's own ``ppo_trainer`` config (Hydra,
   as ``main_ppo`` does) and run verl's ``validate_config``.
2. Checks verl lacks, on the composed config: the reward manager exists and our reward function
   loads through verl's loader; GRPO has at least two rollouts per prompt; prompt + response
   fit the model's context; batch sizes divide; the clipping mode gives the intended number of
   optimizer steps per batch (and no_clip really disables the clip); the data set has at least
   one batch of rows after verl's own over-long-prompt filter, and enough batches (times the
   planned epochs) for every step.
3. Load the training parquet with verl's ``RLHFDataset`` and a tokenizer (``--tokenizer``: a
   small local one stands in for a 7B model's), and render the first prompts.
4. Call the reward, through verl's loader, from a worker thread (as verl does) on canned
   responses.
5. Import what ``main_ppo`` imports at launch, and the rollout engine the spec names, in a fresh
   interpreter (:mod:`rlvr_audit.train.preflight`). A missing package does not make the run
   invalid, it means it cannot start *here*: on a CPU machine without vLLM the answer is "cannot
   launch here: vllm missing; fine for validation".
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.errors import ConfigError, ModelLoadError, UsageError
from ..core.ui import console
from . import preflight
from .plan import OVERRIDES_FILE, check_context, load_run_spec
from .spec import NO_CLIP_RATIO, ExperimentSpec, check_batches
from .verl_config import compose, require_verl, verl_validate


@dataclass
class Check:
    """One validation check and its outcome."""

    name: str
    """What was checked."""
    detail: str
    """The values it found."""


@dataclass
class ValidationResult:
    """Every check passed (a failure raises)."""

    run_dir: Path
    """The run directory."""
    verl_version: str
    """verl's version."""
    checks: list[Check] = field(default_factory=list)
    """The checks, in order."""
    config: Any = None
    """The composed verl config (OmegaConf)."""
    launch: preflight.Closure | None = None
    """What importing verl's launch closure in this environment found (``None``: not checked)."""

    @property
    def launchable(self) -> bool:
        """``train launch`` can start verl from this environment."""
        return self.launch is not None and self.launch.ok


CANNED_WRONG = "Let me think. The answer is \\boxed{-987654321}."


def validate_run(
    run_dir: Path, *, tokenizer: str | None = None, progress: bool = True, check_launch: bool = True
) -> ValidationResult:
    """Validate a planned run (see the module docstring). Raises :class:`UsageError` (exit 2) on
    the first failing check, naming the key or file and what was expected (a tokenizer that
    cannot be loaded is :class:`ModelLoadError`). With ``check_launch`` the launch closure is
    imported in a fresh interpreter too (:attr:`ValidationResult.launch`)."""
    run_dir = run_dir.expanduser().resolve()
    spec, plan = load_run_spec(run_dir)
    version = require_verl()
    result = ValidationResult(run_dir, version)
    where = run_dir / OVERRIDES_FILE
    override_list = [line for line in where.read_text(encoding="utf-8").splitlines() if line.strip()]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with console.status("composing verl's ppo_trainer config", spinner="dots") if progress else _Null():
            cfg = compose(override_list)
            verl_validate(cfg)
    result.config = cfg
    result.checks.append(Check("verl config", f"{len(override_list)} overrides composed; validate_config passed"))

    result.checks.extend(config_checks(spec, cfg, where))
    ctx = check_context(spec, plan["model_path"], run_dir / "spec.yaml")
    result.checks.append(
        Check(
            "context",
            f"{spec.hyperparameters.max_prompt_tokens} prompt + {spec.hyperparameters.max_response_tokens} "
            f"response tokens <= {ctx}",
        )
    )
    tok = _load_tokenizer(tokenizer or plan["model_path"], spec)
    with console.status("loading the parquet with verl's RLHFDataset", spinner="dots") if progress else _Null():
        result.checks.extend(dataset_checks(spec, cfg, tok, run_dir))
    result.checks.append(reward_check(spec, cfg, run_dir))
    if check_launch:
        engine = spec.resources.rollout_engine
        with (
            console.status(f"importing verl's trainer and {engine} as a launch would", spinner="dots")
            if progress
            else _Null()
        ):
            result.launch = preflight.check_python(engine)
    return result


def config_checks(spec: ExperimentSpec, cfg: Any, where: Path) -> list[Check]:
    """Checks on the composed config that verl's ``validate_config`` does not make."""
    checks: list[Check] = []
    check_batches(spec, where)
    from verl.experimental.reward_loop.reward_manager import get_reward_manager_cls  # the train extra
    from verl.trainer.ppo.reward import get_custom_reward_fn  # the train extra

    manager = cfg.reward.reward_manager.name
    try:
        get_reward_manager_cls(manager)
    except Exception as exc:
        raise ConfigError(
            where, f"verl has no reward manager {manager!r} ({exc})", key="reward.reward_manager.name"
        ) from exc
    try:
        fn = get_custom_reward_fn(cfg)
    except Exception as exc:
        raise ConfigError(
            where, f"verl cannot load the reward function: {exc}", key="reward.custom_reward_function"
        ) from exc
    if fn is None:
        raise ConfigError(where, "no custom reward function configured", key="reward.custom_reward_function.path")
    if cfg.get("custom_reward_function") and cfg.custom_reward_function.get("path"):
        raise ConfigError(
            where,
            "the legacy top-level custom_reward_function is set; use reward.custom_reward_function",
            key="custom_reward_function.path",
        )
    checks.append(Check("reward", f"manager {manager!r} exists; {cfg.reward.custom_reward_function.path} loads"))

    actor = cfg.actor_rollout_ref.actor
    n = int(cfg.actor_rollout_ref.rollout.n)
    if cfg.algorithm.adv_estimator == "grpo" and n < 2:
        raise ConfigError(where, f"GRPO needs rollout.n >= 2, got {n}", key="actor_rollout_ref.rollout.n")
    prompts = int(cfg.data.train_batch_size)
    mini_prompts = int(actor.ppo_mini_batch_size)
    if prompts % mini_prompts:
        raise ConfigError(
            where,
            f"ppo_mini_batch_size ({mini_prompts} prompts) does not divide data.train_batch_size ({prompts})",
            key="actor_rollout_ref.actor.ppo_mini_batch_size",
        )
    n_gpus = int(cfg.trainer.nnodes) * int(cfg.trainer.n_gpus_per_node)
    per_gpu = mini_prompts * n / n_gpus
    micro = int(actor.ppo_micro_batch_size_per_gpu)
    if per_gpu != int(per_gpu) or int(per_gpu) % micro:
        raise ConfigError(
            where,
            f"a mini-batch of {mini_prompts * n} samples is {per_gpu:g} per GPU, not a multiple of "
            f"ppo_micro_batch_size_per_gpu ({micro})",
            key="actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu",
        )
    checks.append(
        Check(
            "batches",
            f"{prompts} prompts x {n} rollouts = {prompts * n} samples; mini-batch {mini_prompts * n} samples "
            f"({mini_prompts} prompts) over {n_gpus} GPUs, micro-batch {micro}",
        )
    )
    steps = prompts // mini_prompts * int(actor.ppo_epochs)
    intended = spec.optimizer_steps_per_batch
    if steps != intended:
        raise ConfigError(
            where,
            f"the composed config gives {steps} optimizer steps per batch, the spec intends {intended:g} "
            "(an override in verl_overrides changed the batch sizes?)",
            key="actor_rollout_ref.actor.ppo_mini_batch_size",
        )
    low, high, dual = float(actor.clip_ratio_low), float(actor.clip_ratio_high), float(actor.clip_ratio_c)
    mode = spec.clipping
    if mode == "on_policy" and steps != 1:
        raise ConfigError(where, f"on_policy needs 1 optimizer step per batch, got {steps}", key="clipping")
    if mode == "no_clip" and (min(low, high) < NO_CLIP_RATIO or dual < NO_CLIP_RATIO or steps == 1):
        raise ConfigError(
            where,
            f"no_clip needs clip bounds of {NO_CLIP_RATIO:g} and several optimizer steps per batch; got "
            f"clip_ratio_low={low:g}, clip_ratio_high={high:g}, clip_ratio_c={dual:g}, {steps} step(s)",
            key="actor_rollout_ref.actor.clip_ratio_low",
        )
    if mode in ("standard", "clip_higher") and (low != spec.clip_low or high != spec.clip_high):
        raise ConfigError(
            where,
            f"{mode} intends clip range [{spec.clip_low:g}, {spec.clip_high:g}], composed [{low:g}, {high:g}]",
            key="actor_rollout_ref.actor.clip_ratio_high",
        )
    checks.append(Check("clipping", f"{mode}: {steps} optimizer step(s) per batch, clip range [-{low:g}, +{high:g}]"))
    return checks


def _load_tokenizer(name: str, spec: ExperimentSpec) -> Any:
    from transformers import AutoTokenizer  # heavy (seconds): only when a tokenizer is loaded

    try:
        return AutoTokenizer.from_pretrained(name, trust_remote_code=spec.model.trust_remote_code)
    except Exception as exc:
        raise ModelLoadError(
            f"could not load the tokenizer {name!r} ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); "
            "pass --tokenizer DIR with a local tokenizer to validate offline"
        ) from exc


def dataset_checks(spec: ExperimentSpec, cfg: Any, tokenizer: Any, run_dir: Path) -> list[Check]:
    """Load the training parquet with verl's ``RLHFDataset`` (its over-long filter on) and render items."""
    from omegaconf import OmegaConf  # verl's config library (the train extra)
    from verl.utils.dataset.rl_dataset import RLHFDataset  # the train extra

    if not getattr(tokenizer, "chat_template", None):
        raise UsageError("the tokenizer has no chat template; verl renders every prompt with it")
    data_cfg = OmegaConf.create(OmegaConf.to_container(cfg.data, resolve=True))
    data_cfg.filter_overlong_prompts_workers = 1
    data_cfg.cache_dir = str(run_dir / ".verl-cache")
    train_file = str(cfg.data.train_files)
    quiet = io.StringIO()  # verl prints its progress; the check reports the numbers
    try:
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            dataset = RLHFDataset(data_files=train_file, tokenizer=tokenizer, config=data_cfg)
    except Exception as exc:
        raise UsageError(f"verl's RLHFDataset cannot load {train_file}: {type(exc).__name__}: {exc}") from exc
    rows = len(dataset)
    batch = int(cfg.data.train_batch_size)
    planned = _parquet_rows(Path(train_file))
    if rows < batch:
        raise ConfigError(
            run_dir / "data" / "train.parquet",
            f"only {rows} of {planned} rows fit max_prompt_tokens={spec.hyperparameters.max_prompt_tokens}; "
            f"one batch needs {batch} prompts",
        )
    epochs = int(cfg.trainer.total_epochs)
    reachable = rows // batch * epochs
    if reachable < spec.steps:
        raise ConfigError(
            run_dir / OVERRIDES_FILE,
            f"{rows // batch} batches per epoch x {epochs} epochs = {reachable} steps, fewer than the spec's "
            f"{spec.steps}: verl would stop early (prompts over max_prompt_tokens were dropped); raise "
            "max_prompt_tokens or add data",
            key="trainer.total_epochs",
        )
    longest = 0
    for i in range(min(rows, 4)):
        item = dataset[i]
        messages = item.get("raw_prompt")
        text = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
        longest = max(longest, len(tokenizer(text, add_special_tokens=False)["input_ids"]))
    dropped = planned - rows
    return [
        Check(
            "dataset",
            f"RLHFDataset: {rows} rows ({dropped} over {spec.hyperparameters.max_prompt_tokens} prompt tokens "
            f"dropped); {rows // batch} batches per epoch; first prompts up to {longest} tokens",
        )
    ]


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq  # heavy: only to count the parquet's rows

    return int(pq.ParquetFile(path).metadata.num_rows)


def reward_check(spec: ExperimentSpec, cfg: Any, run_dir: Path) -> Check:
    """The reward through verl's loader, from a worker thread, on canned responses to the first row."""
    from verl.trainer.ppo.reward import get_custom_reward_fn  # the train extra

    fn = get_custom_reward_fn(cfg)
    row = pd.read_parquet(run_dir / "data" / "train.parquet").iloc[0]
    label = str(row["reward_model"]["ground_truth"])
    info = dict(row["extra_info"])
    canned = {
        "label boxed": f"Working it out step by step. The final answer is $\\boxed{{{label}}}$.",
        "wrong answer": CANNED_WRONG,
        "empty": "",
    }
    scores: dict[str, float] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        for name, response in canned.items():
            future = pool.submit(
                fn, data_source=row["data_source"], solution_str=response, ground_truth=label, extra_info=info
            )
            try:
                scores[name] = float(future.result(timeout=60))
            except Exception as exc:
                what = f"{type(exc).__name__}: {exc}"
                raise UsageError(f"the reward failed on a canned response ({name}): {what}") from exc
    for name, value in scores.items():
        if value not in (0.0, 1.0):
            raise UsageError(f"the reward returned {value!r} for the canned response {name!r}; expected 0 or 1")
    top = spec.reward
    is_label = top.name in ("ground_truth", "majority_vote", "incorrect") and not top.negate
    if is_label and (scores["label boxed"] != 1.0 or scores["wrong answer"] != 0.0):
        raise UsageError(
            f"the {top.name} reward gave {scores['label boxed']:g} to the row's own label in a box and "
            f"{scores['wrong answer']:g} to a wrong answer; expected 1 and 0 (label {label!r})"
        )
    shown = ", ".join(f"{k}: {v:g}" for k, v in scores.items())
    return Check("reward on canned responses", f"{shown} (from a worker thread, as verl calls it)")


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
