"""The experiment spec: one YAML file per training run, validated at load.

A spec names the base model, the reward (name, parameters, seed), the training data and its
label transform, the number of steps, the hyper-parameters (defaults: the Spurious Rewards
paper's, arXiv 2506.10947 App. A and its ``rlvr_deepscaler_grpo_qwen_*.sh`` scripts), the
clipping mode, save and evaluation frequency and the resources. Unknown keys are errors that
name the file and the key, like every other configuration file of the project. Example specs
are in ``experiments/``.

Batch sizes are counted the way the paper counts them: ``prompts_per_step`` prompts, each
sampled ``rollouts_per_prompt`` times, make one rollout batch of
``prompts_per_step * rollouts_per_prompt`` samples; the optimizer takes one step per
``mini_batch_samples`` samples of it. verl counts its mini-batch in prompts
(``ppo_mini_batch_size = mini_batch_samples / rollouts_per_prompt``), which
:mod:`rlvr_audit.train.verl_config` converts.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from ..core.configfile import StrictModel, load_yaml_model
from ..core.errors import ConfigError
from ..core.records import stable_hash

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
"""Experiment names: lower case, digits, ``.``, ``_``, ``-`` (they become registry family ids)."""

ClippingMode = Literal["standard", "no_clip", "on_policy", "clip_higher"]
"""How the PPO clipping term acts (the paper's explanation of random-reward gains, §4.4):

- ``standard``: GRPO's clipped surrogate with ``clip_ratio`` on both sides, several optimizer
  steps per rollout batch (the paper: 1024 samples / 128 per mini-batch = 8). The paper's
  OpenRLHF loss: verl's extra dual clip (``clip_ratio_c``, 3 by default in verl) is off unless
  ``hyperparameters.dual_clip`` sets it.
- ``no_clip``: the clip term removed from the loss (ratio bounds and the dual-clip bound set
  to :data:`NO_CLIP_RATIO`), still several optimizer steps per batch ("clipping disabled in
  code"). Needs more than one step per batch, otherwise it is ``on_policy``.
- ``on_policy``: one optimizer step per rollout batch (mini-batch = rollout batch, one PPO
  epoch), so the ratio is exactly 1 and the clip never acts ("mini-batch raised").
- ``clip_higher``: a larger upper bound (``clip_ratio_high``, default 0.28 as in DAPO).
"""

CLIPPING_MODES: tuple[str, ...] = ("standard", "no_clip", "on_policy", "clip_higher")

NO_CLIP_RATIO = 1.0e9
"""A clip bound that never binds. verl clamps ``log_prob - old_log_prob`` to [-20, 20], so the
ratio never exceeds e^20 (about 4.9e8): ``clamp(ratio, 1 - 1e9, 1 + 1e9)`` and the dual-clip
bound ``1e9 * |A|`` leave every token's loss unclipped. Used for ``no_clip`` (both ratio bounds
and the dual clip) and, in every mode, for verl's dual clip unless ``hyperparameters.dual_clip``
asks for it."""

CLIP_HIGHER_DEFAULT = 0.28
"""``clip_ratio_high`` of ``clip_higher`` when the spec gives none (DAPO's value)."""

Logger = Literal["console", "wandb", "tensorboard", "mlflow", "swanlab"]
"""verl trainer loggers."""

LossAggMode = Literal["token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm"]
"""verl's loss aggregation modes (``actor_rollout_ref.actor.loss_agg_mode``)."""

KNOWN_CONTEXT_LENGTHS: dict[str, int] = {
    "Qwen/Qwen2.5-Math-7B": 4096,
    "Qwen/Qwen2.5-Math-1.5B": 4096,
    "Qwen/Qwen2.5-7B": 131072,
    "Qwen/Qwen2.5-1.5B": 131072,
    "meta-llama/Llama-3.1-8B-Instruct": 131072,
    "meta-llama/Llama-3.2-3B-Instruct": 131072,
    "allenai/OLMo-2-1124-7B": 4096,
}
"""``max_position_embeddings`` of the paper's models (from their ``config.json``), so that the
context check works without downloading them; a local model directory's own ``config.json``
or ``model.context_length`` in the spec take precedence."""


def _one_line(value: str) -> str:
    """Refuse line breaks: every string of a spec may end up on one line of ``verl_overrides.txt``
    (one Hydra override per line) and in ``launch.sh``; a line break would split it in two."""
    if any(c in value for c in "\n\r\x00\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"):
        raise ValueError(f"must be one line (no line breaks or NUL bytes), got {value!r}")
    return value


OneLine = Annotated[str, AfterValidator(_one_line)]
"""A string without line breaks (see :func:`_one_line`)."""


# --- rewards ---------------------------------------------------------------------------------

LabelGrader = Literal["paper", "math_verify", "boxed_strict"]
"""Answer checker of the label rewards: ``paper`` (the paper's own verifier: Qwen2.5-Math
extraction and PRM800K equivalence, as in its training runs), ``math_verify`` or
``boxed_strict`` (see ``rlvr-audit ls graders``)."""


class _RewardBase(StrictModel):
    negate: bool = False
    """Flip the reward (1 - r); the paper's ``inverse_`` prefix, e.g. "no python"."""


class LabelReward(_RewardBase):
    """1 if the response's answer matches the row's label (``reward_model.ground_truth``), else 0.

    The three names differ only in what the label is, which the data section says
    (``data.labels``): the gold answer, the pre-RL model's majority-vote label, or a wrong
    majority-vote label.
    """

    name: Literal["ground_truth", "majority_vote", "incorrect"]
    """Which label the reward is checked against; must agree with ``data.labels``."""
    grader: LabelGrader = "paper"
    """Answer checker (default: the paper's verifier)."""
    timeout: float = Field(default=5.0, gt=0)
    """Wall-clock seconds for a symbolic comparison (run in a worker process); 0 reward when over."""


class FormatReward(_RewardBase):
    """1 if a non-empty ``\\boxed{}`` answer can be extracted (the paper's ``box_only_format``)."""

    name: Literal["format_boxed"]


class RandomReward(_RewardBase):
    """Bernoulli(``gamma``), independent of correctness, reproducible: the draw is a hash of
    ``seed``, the prompt and the response (the same triple always gets the same reward, in any
    process, thread or machine)."""

    name: Literal["random"]
    gamma: float = Field(default=0.5, ge=0.0, le=1.0)
    """Probability of reward 1."""
    seed: int = 0
    """Seed mixed into the hash."""


class PythonReward(_RewardBase):
    """1 if ``python`` occurs anywhere in the response, case-insensitive (the paper's
    ``contain_python_wo_backticks``)."""

    name: Literal["python"]


class NoRepetitionReward(_RewardBase):
    """0 if the response degenerates into a repeated stretch (more than 10 consecutive copies,
    :func:`rlvr_audit.analysis.behaviour.find_repetition`), else 1. Stricter than the paper's count of
    any repeated substring: normal text that reuses a phrase is not penalised."""

    name: Literal["no_repetition"]


class CompoundReward(_RewardBase):
    """Logical AND of rewards (each can be negated): e.g. ground truth AND NOT python."""

    name: Literal["compound"]
    op: Literal["and", "or"] = "and"
    """How the parts combine: ``and`` (1 iff every part is 1, the paper's ``_AND_``) or ``or``."""
    rewards: list[RewardSpec] = Field(min_length=2)
    """The parts (at least two)."""


RewardSpec = Annotated[
    LabelReward | FormatReward | RandomReward | PythonReward | NoRepetitionReward | CompoundReward,
    Field(discriminator="name"),
]
"""One reward, chosen by its ``name``."""

CompoundReward.model_rebuild()

REWARD_NAMES: tuple[str, ...] = (
    "ground_truth",
    "majority_vote",
    "incorrect",
    "format_boxed",
    "random",
    "python",
    "no_repetition",
    "compound",
)
"""Every reward name (the ids of ``rlvr_audit.core.claims.REWARDS`` the runner can train with)."""


def reward_names(reward: Any) -> set[str]:
    """Every reward name used in ``reward`` (parts of compounds included)."""
    if isinstance(reward, CompoundReward):
        out: set[str] = {reward.name}
        for part in reward.rewards:
            out |= reward_names(part)
        return out
    return {reward.name}


def describe_reward(reward: Any) -> str:
    """Short human-readable form: ``random(gamma=0.5, seed=0)``, ``ground_truth AND NOT python``."""
    prefix = "NOT " if reward.negate else ""
    if isinstance(reward, CompoundReward):
        inner = f" {reward.op.upper()} ".join(describe_reward(p) for p in reward.rewards)
        return f"{prefix}({inner})"
    if isinstance(reward, RandomReward):
        return f"{prefix}random(gamma={reward.gamma:g}, seed={reward.seed})"
    if isinstance(reward, LabelReward):
        return f"{prefix}{reward.name}(grader={reward.grader})"
    return f"{prefix}{reward.name}"


# --- data ------------------------------------------------------------------------------------


class HubData(StrictModel):
    """A Hugging Face Hub dataset."""

    dataset: OneLine
    """Dataset id (``agentica-org/DeepScaleR-Preview-Dataset``)."""
    split: OneLine = "train"
    """Split to read."""
    config: OneLine | None = None
    """Dataset configuration name, if it has several."""
    revision: OneLine | None = None
    """Commit hash or branch; ``null``: the default branch."""


class OneShot(StrictModel):
    """One-shot RLVR: a single training example repeated to fill the data set."""

    id: OneLine
    """Value of ``id_field`` of the example (the paper uses Wang et al.'s pi_1)."""
    copies: int | None = Field(default=None, ge=1)
    """How many copies (default: enough rows for every step: ``steps * prompts_per_step``)."""


class DataSpec(StrictModel):
    """Training data: a JSONL/JSON/Parquet file or a Hub dataset with problem and answer fields."""

    path: OneLine | None = None
    """Local ``.jsonl``, ``.json`` or ``.parquet`` file, relative to the spec file."""
    hub: HubData | None = None
    """Or a Hub dataset."""
    problem_field: OneLine = "problem"
    """Field holding the problem statement."""
    answer_field: OneLine = "answer"
    """Field holding the label the reward checks against (see ``labels``)."""
    id_field: OneLine | None = "id"
    """Field holding a row id (``null``: the row number)."""
    labels: Literal["ground_truth", "majority_vote", "incorrect"] = "ground_truth"
    """What ``answer_field`` holds: the gold answer, an offline majority-vote pseudo-label, or a
    WRONG majority-vote label (the paper's "incorrect" data)."""
    gold_field: OneLine | None = None
    """With ``labels: incorrect``: a field holding the gold answer; rows whose label the
    ``paper`` grader accepts as the gold answer are dropped (so every label is wrong). Without
    it the labels are taken as already filtered."""
    one_shot: OneShot | None = None
    """Train on one example only (one-shot RLVR)."""
    limit: int | None = Field(default=None, ge=1)
    """Only the first N rows (after the label transform)."""
    data_source: OneLine = "rlvr_audit"
    """The ``data_source`` column verl passes to the reward (and logs metrics by)."""

    @model_validator(mode="after")
    def _one_source(self) -> DataSpec:
        if (self.path is None) == (self.hub is None):
            raise ValueError("give exactly one of 'path' (a local file) or 'hub' (a Hub dataset)")
        if self.gold_field is not None and self.labels != "incorrect":
            raise ValueError("'gold_field' only applies to labels: incorrect")
        return self


class EvalSpec(StrictModel):
    """Validation data verl scores during training (the real evaluation is ``rlvr-audit run``
    on the registered checkpoints)."""

    path: OneLine
    """Local ``.jsonl``/``.json``/``.parquet`` file with problems and gold answers, relative to the spec."""
    problem_field: OneLine = "problem"
    """Field holding the problem statement."""
    answer_field: OneLine = "answer"
    """Field holding the gold answer."""
    id_field: OneLine | None = "id"
    """Field holding a row id (``null``: the row number)."""
    limit: int | None = Field(default=None, ge=1)
    """Only the first N problems."""
    every: int = Field(default=0, ge=0)
    """Evaluate every N steps (verl's ``test_freq``); 0: never during training."""
    before_train: bool = False
    """Also evaluate the base model before step 1."""


# --- model, hyper-parameters, resources ------------------------------------------------------


class ModelSpec(StrictModel):
    """The base model."""

    path: OneLine
    """Hugging Face id (``Qwen/Qwen2.5-Math-7B``) or a local model directory (relative to the spec)."""
    registry_id: OneLine | None = None
    """Its checkpoint id in ``checkpoints.yaml`` (``qwen2.5-math-7b/base``): the trained steps are
    registered with this as their base, so reports show gains over it."""
    context_length: int | None = Field(default=None, ge=1)
    """Context window in tokens (default: a local directory's ``config.json``, else the known
    value of the paper's models)."""
    prompt: OneLine = "qwen_math_default"
    """Prompt template (``prompts/<id>.yaml``); must be a chat template: verl applies the
    tokenizer's chat template to the messages."""
    trust_remote_code: bool = False
    """Let transformers run the model repository's own code."""


class Hyperparameters(StrictModel):
    """GRPO hyper-parameters; defaults are the paper's."""

    algorithm: Literal["grpo"] = "grpo"
    """Advantage estimator (group-normalised rewards, no critic)."""
    learning_rate: float = Field(default=5.0e-7, gt=0)
    """Actor learning rate (constant schedule, no warm-up)."""
    lr_schedule: Literal["constant", "cosine"] = "constant"
    """Learning-rate schedule."""
    warmup_steps: int = Field(default=0, ge=0)
    """Learning-rate warm-up steps."""
    prompts_per_step: int = Field(default=64, ge=1)
    """Prompts per rollout batch (verl ``data.train_batch_size``)."""
    rollouts_per_prompt: int = Field(default=16, ge=1)
    """Samples per prompt, the GRPO group (verl ``rollout.n``)."""
    mini_batch_samples: int | None = Field(default=None, ge=1)
    """Samples per optimizer step (default: 128; ``on_policy``: the whole rollout batch)."""
    micro_batch_per_gpu: int = Field(default=4, ge=1)
    """Samples per forward/backward pass on one GPU (gradient accumulation)."""
    ppo_epochs: int = Field(default=1, ge=1)
    """Passes over each rollout batch."""
    clip_ratio: float = Field(default=0.2, gt=0)
    """PPO clip range epsilon (lower bound, and upper bound except for ``clip_higher``)."""
    clip_ratio_high: float | None = Field(default=None, gt=0)
    """Upper clip range for ``clip_higher`` (default 0.28); must be ``null`` in other modes."""
    kl_coef: float = Field(default=0.0, ge=0)
    """KL-loss coefficient against the base model (0: no KL term, no reference model)."""
    entropy_coef: float = Field(default=0.0, ge=0)
    """Entropy-bonus coefficient (0: none)."""
    temperature: float = Field(default=1.0, gt=0)
    """Rollout sampling temperature."""
    top_p: float = Field(default=1.0, gt=0, le=1)
    """Rollout nucleus mass."""
    max_prompt_tokens: int = Field(default=1024, ge=1)
    """Longest prompt, in tokens (longer prompts are dropped by verl)."""
    max_response_tokens: int = Field(default=3072, ge=1)
    """Longest response, in tokens."""
    loss_agg_mode: LossAggMode = "seq-mean-token-mean"
    """How token losses are averaged: the paper's OpenRLHF code takes the token mean within each
    sequence, then the mean over sequences."""
    adam_betas: tuple[float, float] = (0.9, 0.95)
    """AdamW betas (OpenRLHF's defaults, which the paper used)."""
    weight_decay: float = Field(default=0.0, ge=0)
    """AdamW weight decay."""
    grad_clip: float = Field(default=1.0, gt=0)
    """Gradient-norm clip (verl ``actor.optim.clip_grad``; OpenRLHF's ``max_norm``, 1.0 in the paper)."""
    dual_clip: float | None = Field(default=None, gt=1)
    """verl's dual clip (``actor.clip_ratio_c``, Ye et al. 2020): for a token with a negative
    advantage the loss is capped at ``dual_clip * |A|``. The paper's OpenRLHF loss has no dual
    clip, so the default ``null`` turns it off (``clip_ratio_c`` = :data:`NO_CLIP_RATIO`); verl's
    own default is 3. Applies to ``standard``, ``on_policy`` and ``clip_higher``; ``no_clip``
    refuses it."""
    seed: int = 42
    """Data-shuffling seed (the paper's default)."""


class Resources(StrictModel):
    """Where the run goes."""

    nnodes: int = Field(default=1, ge=1)
    """Nodes."""
    gpus_per_node: int = Field(default=8, ge=1)
    """GPUs per node."""
    rollout_engine: Literal["vllm", "sglang"] = "vllm"
    """Rollout (generation) engine."""
    rollout_tensor_parallel: int = Field(default=1, ge=1)
    """Tensor-parallel size of each rollout engine."""
    gpu_memory_utilization: float = Field(default=0.6, gt=0, le=1)
    """Share of GPU memory the rollout engine takes."""
    gradient_checkpointing: bool = True
    """Recompute activations in the backward pass."""
    param_offload: bool = False
    """Offload FSDP parameters to CPU."""
    optimizer_offload: bool = True
    """Offload optimizer state to CPU (the paper: Adam offload)."""


class SaveSpec(StrictModel):
    """Checkpointing."""

    every: int = Field(default=50, ge=1)
    """Save every N steps (the paper: 50)."""
    hf_model: bool = True
    """Also write each step as a Hugging Face model (``actor/huggingface``), so it can be
    evaluated without ``train merge``."""
    keep: int | None = Field(default=None, ge=1)
    """Keep only the last N checkpoints (``null``: all)."""


class ExperimentSpec(StrictModel):
    """A training experiment (one YAML file)."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    """Experiment name: the registry family id of its checkpoints and verl's experiment name."""
    description: str = ""
    """What the experiment is (shown in the registry notes)."""
    model: ModelSpec
    """Base model."""
    reward: RewardSpec
    """The reward."""
    data: DataSpec
    """Training data."""
    eval: EvalSpec | None = None
    """Validation data during training (optional)."""
    steps: int = Field(default=150, ge=1)
    """Training steps (rollout batches)."""
    clipping: ClippingMode = "standard"
    """Clipping mode (see :data:`ClippingMode`)."""
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    """GRPO hyper-parameters (the paper's unless changed)."""
    save: SaveSpec = Field(default_factory=SaveSpec)
    """Checkpointing."""
    resources: Resources = Field(default_factory=Resources)
    """Nodes, GPUs, rollout engine."""
    project: OneLine = "rlvr-audit"
    """Experiment-tracker project name (verl ``trainer.project_name``)."""
    logger: list[Logger] = Field(default_factory=lambda: list[Logger](["console"]))
    """verl loggers (``wandb`` needs ``WANDB_API_KEY``)."""
    verl_overrides: list[OneLine] = Field(default_factory=list)
    """Extra Hydra overrides of verl's ``ppo_trainer`` appended last (escape hatch; validated by
    ``train validate`` like the rest)."""

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentSpec:
        hp = self.hyperparameters
        if self.clipping == "no_clip" and hp.dual_clip is not None:
            raise ValueError("hyperparameters.dual_clip clips the loss, which clipping: no_clip removes; drop it")
        if self.clipping != "clip_higher" and hp.clip_ratio_high is not None:
            raise ValueError("hyperparameters.clip_ratio_high only applies to clipping: clip_higher")
        if self.clipping == "clip_higher" and self.clip_high <= hp.clip_ratio:
            raise ValueError(
                f"clip_higher needs clip_ratio_high ({self.clip_high:g}) above clip_ratio ({hp.clip_ratio:g})"
            )
        label_rewards = reward_names(self.reward) & {"ground_truth", "majority_vote", "incorrect"}
        if len(label_rewards) > 1:
            raise ValueError(f"a reward can check one kind of label; got {', '.join(sorted(label_rewards))}")
        if label_rewards and self.data.labels not in label_rewards:
            (reward_label,) = label_rewards
            raise ValueError(
                f"reward {reward_label!r} checks {reward_label.replace('_', ' ')} labels, but data.labels is "
                f"{self.data.labels!r}; set data.labels: {reward_label}"
            )
        return self

    # --- derived quantities ------------------------------------------------------------------

    @property
    def batch_samples(self) -> int:
        """Samples per rollout batch: prompts x rollouts."""
        return self.hyperparameters.prompts_per_step * self.hyperparameters.rollouts_per_prompt

    @property
    def mini_batch(self) -> int:
        """Samples per optimizer step (the spec's, or the mode's default)."""
        hp = self.hyperparameters
        if hp.mini_batch_samples is not None:
            return hp.mini_batch_samples
        return self.batch_samples if self.clipping == "on_policy" else min(128, self.batch_samples)

    @property
    def optimizer_steps_per_batch(self) -> float:
        """Optimizer steps per rollout batch: batch / mini-batch x epochs (a fraction when the
        mini-batch does not divide the batch, which validation rejects)."""
        return self.batch_samples / self.mini_batch * self.hyperparameters.ppo_epochs

    @property
    def clip_low(self) -> float:
        """Lower clip range verl gets."""
        return NO_CLIP_RATIO if self.clipping == "no_clip" else self.hyperparameters.clip_ratio

    @property
    def clip_high(self) -> float:
        """Upper clip range verl gets."""
        hp = self.hyperparameters
        if self.clipping == "no_clip":
            return NO_CLIP_RATIO
        if self.clipping == "clip_higher":
            return hp.clip_ratio_high if hp.clip_ratio_high is not None else CLIP_HIGHER_DEFAULT
        return hp.clip_ratio

    @property
    def dual_clip_bound(self) -> float:
        """verl's ``clip_ratio_c``: the spec's ``dual_clip``, else :data:`NO_CLIP_RATIO` (off)."""
        dual = self.hyperparameters.dual_clip
        return NO_CLIP_RATIO if dual is None or self.clipping == "no_clip" else dual

    @property
    def n_gpus(self) -> int:
        """GPUs in all."""
        return self.resources.nnodes * self.resources.gpus_per_node


def load_spec(path: Path) -> ExperimentSpec:
    """Read and validate an experiment spec; errors name the file, the key and what is expected."""
    return load_yaml_model(path, ExperimentSpec)


def resolve_path(spec_file: Path, value: str) -> Path:
    """A path of the spec, relative to the spec file's folder (``~`` expanded)."""
    p = Path(value).expanduser()
    return p if p.is_absolute() else (spec_file.parent / p).resolve()


def looks_like_local(value: str) -> bool:
    """Whether a model path is meant as a local directory (not a Hub id ``org/name``)."""
    return value.startswith((".", "/", "~")) or not re.fullmatch(r"[\w.-]+/[\w.-]+", value)


def spec_hash(resolved: dict[str, Any]) -> str:
    """Hash of a resolved spec (what ``plan`` wrote): equal specs give equal hashes anywhere."""
    return stable_hash(resolved)


def check_batches(spec: ExperimentSpec, path: Path | str) -> list[str]:
    """Batch arithmetic verl needs and the clipping mode's intended optimizer steps.

    Returns nothing when all is well; raises :class:`ConfigError` naming the key otherwise.
    """
    hp = spec.hyperparameters
    batch = spec.batch_samples
    mini = spec.mini_batch
    if hp.algorithm == "grpo" and hp.rollouts_per_prompt < 2:
        raise ConfigError(
            path,
            f"GRPO normalises rewards within each prompt's group of rollouts, so it needs at least 2 (got "
            f"{hp.rollouts_per_prompt}); with 1 every advantage is 0",
            key="hyperparameters.rollouts_per_prompt",
        )
    if mini % hp.rollouts_per_prompt:
        raise ConfigError(
            path,
            f"must be a multiple of rollouts_per_prompt ({hp.rollouts_per_prompt}): verl counts mini-batches "
            f"in prompts (got {mini} samples)",
            key="hyperparameters.mini_batch_samples",
        )
    if mini > batch or batch % mini:
        raise ConfigError(
            path,
            f"must divide the rollout batch of {hp.prompts_per_step} prompts x {hp.rollouts_per_prompt} "
            f"rollouts = {batch} samples (got {mini})",
            key="hyperparameters.mini_batch_samples",
        )
    n_gpus = spec.n_gpus
    if batch % n_gpus:
        raise ConfigError(
            path,
            f"the rollout batch ({batch} samples) must split evenly over {n_gpus} GPUs "
            f"({spec.resources.nnodes} node(s) x {spec.resources.gpus_per_node})",
            key="hyperparameters.prompts_per_step",
        )
    if mini % n_gpus or (mini // n_gpus) % hp.micro_batch_per_gpu:
        raise ConfigError(
            path,
            f"a mini-batch of {mini} samples over {n_gpus} GPUs is {mini / n_gpus:g} per GPU, which must be a "
            f"whole multiple of micro_batch_per_gpu ({hp.micro_batch_per_gpu})",
            key="hyperparameters.micro_batch_per_gpu",
        )
    steps = spec.optimizer_steps_per_batch
    if spec.clipping == "on_policy" and steps != 1:
        raise ConfigError(
            path,
            f"on_policy needs exactly one optimizer step per rollout batch so the ratio stays 1, but "
            f"{batch} samples / {mini} per mini-batch x {hp.ppo_epochs} epoch(s) = {steps:g}; set "
            f"mini_batch_samples: {batch} and ppo_epochs: 1",
            key="hyperparameters.mini_batch_samples",
        )
    if spec.clipping == "no_clip" and steps == 1:
        raise ConfigError(
            path,
            "no_clip with one optimizer step per rollout batch is on_policy (the ratio is 1, nothing to clip); "
            f"use a mini-batch smaller than the batch of {batch} samples",
            key="hyperparameters.mini_batch_samples",
        )
    return []
