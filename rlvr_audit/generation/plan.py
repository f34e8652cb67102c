"""Planning: the grid of units (checkpoint x task x prompt template x sampling protocol).

Everything is validated here, before anything is loaded or written: unknown checkpoints,
tasks, prompts and backends fail with the valid names, and so do malformed YAML files.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from ..core.errors import UnknownNameError, UsageError
from ..core.prompts import PromptTemplate, available_prompts, load_prompt
from ..core.records import (
    MAX_NEW_TOKENS,
    MAX_SAMPLES,
    SAMPLING_SCHEME,
    CheckpointRef,
    Problem,
    SamplingProtocol,
    UnitSpec,
)
from ..core.registry import Checkpoint, Registry, has_chat_template
from ..core.store import UnitInfo
from ..core.tasks import TaskSpec, available_tasks, data_hash, load_problems, load_task
from .engines import SCRIPTED, check_backend, key_args
from .engines.scripted import check_model_args

_PROTOCOL_FLAGS = {
    "n": "--samples",
    "temperature": "--temperature",
    "top_p": "--top-p",
    "max_new_tokens": "--max-new-tokens",
    "seed": "--seed",
}
"""The option behind each :class:`SamplingProtocol` field (for one-line error messages)."""
_PROTOCOL_RANGES = {
    "n": f">= 1 sample per problem (a whole number, at most {MAX_SAMPLES})",
    "temperature": "a finite number >= 0 (0 is greedy)",
    "top_p": "a number in (0, 1]",
    "max_new_tokens": f">= 1 token (a whole number, at most {MAX_NEW_TOKENS})",
    "seed": "a whole number in [-2**63, 2**63)",
}


@dataclass(frozen=True)
class ProtocolOverrides:
    """Command-line changes to a task's default sampling protocol (``None`` keeps it)."""

    samples: int | None = None
    """Samples per problem."""
    temperature: float | None = None
    """Sampling temperature."""
    top_p: float | None = None
    """Nucleus mass."""
    max_new_tokens: int | None = None
    """New-token limit."""
    seed: int = 0
    """Base seed."""

    def apply(self, task: TaskSpec) -> SamplingProtocol:
        """The protocol for ``task`` with these overrides."""
        base = task.default_protocol(seed=self.seed)
        try:
            return SamplingProtocol(
                n=self.samples if self.samples is not None else base.n,
                temperature=self.temperature if self.temperature is not None else base.temperature,
                top_p=self.top_p if self.top_p is not None else base.top_p,
                max_new_tokens=self.max_new_tokens if self.max_new_tokens is not None else base.max_new_tokens,
                seed=self.seed,
            )
        except ValidationError as exc:
            err = exc.errors()[0]
            field_name = str(err["loc"][0]) if err.get("loc") else ""
            flag = _PROTOCOL_FLAGS.get(field_name, field_name)
            raise UsageError(
                f"{flag} must be {_PROTOCOL_RANGES.get(field_name, 'valid')}, got {err.get('input')!r} "
                f"(task {task.task} protocol)"
            ) from None


@dataclass
class PlannedUnit:
    """A unit of the grid with everything needed to generate it."""

    info: UnitInfo
    """What goes to ``unit.json``."""
    checkpoint: Checkpoint
    """The checkpoint."""
    task: TaskSpec
    """The task."""
    template: PromptTemplate
    """The prompt template."""
    problems: list[Problem] = field(repr=False)
    """All problems of the task (generation may stop at ``--limit``)."""

    @property
    def key(self) -> str:
        """The unit key."""
        return self.info.key

    @property
    def spec(self) -> UnitSpec:
        """The unit spec."""
        return self.info.spec


@dataclass(frozen=True)
class Selection:
    """What to plan: the selectors a user gives on the command line."""

    checkpoints: list[str]
    """Registry ids, globs or local model directories."""
    tasks: list[str] | None = None
    """Task ids (``None``: every task)."""
    prompts: list[str] | None = None
    """Template ids, ``default`` (each checkpoint's own), or ``all`` (``None``: ``default``)."""
    include_bases: bool = True
    """Also plan each checkpoint's base model, so gains can be computed."""


def resolve_prompts(requested: list[str] | None, checkpoint: Checkpoint, config_dir: Path) -> list[str]:
    """Template ids for one checkpoint: ``default`` means the checkpoint's own template."""
    valid = available_prompts(config_dir)
    names = requested or ["default"]
    out: list[str] = []
    for name in names:
        if name == "all":
            expanded = list(valid)
        elif name == "default":
            expanded = [checkpoint.prompt]
        else:
            expanded = [name]
        for n in expanded:
            if n not in valid:
                raise UnknownNameError("prompt", n, [*valid, "default", "all"])
            if n not in out:
                out.append(n)
    return out


def engine_args_for_key(backend: str, model_args: dict[str, str]) -> dict[str, str]:
    """Model arguments that enter the unit key; a scripted backend's script enters by content."""
    args = key_args(model_args)
    if backend == SCRIPTED and "script" in args:
        path = Path(args.pop("script"))
        try:
            args["script_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        except OSError as exc:
            raise UsageError(f"scripted backend: cannot read script {path}: {exc.strerror}") from exc
    return args


def plan(
    selection: Selection,
    *,
    config_dir: Path,
    registry: Registry,
    backend: str,
    model_args: dict[str, str],
    overrides: ProtocolOverrides,
    data_dir: Path | None,
    use_model_generation_config: bool = False,
) -> list[PlannedUnit]:
    """Build and validate the grid of units; loads task data (from ``data_dir`` or the Hub).
    ``use_model_generation_config`` (``--use-model-generation-config``) enters each unit's key."""
    check_backend(backend)
    if backend == SCRIPTED:  # its arguments are checked here, before anything is written
        check_model_args(model_args)
    if not selection.checkpoints:
        raise UsageError("no checkpoints selected: pass --checkpoints (registry ids, globs or model directories)")
    checkpoints = registry.select(selection.checkpoints)
    if selection.include_bases:
        checkpoints = registry.with_bases(checkpoints)
    task_names = selection.tasks or list(available_tasks(config_dir))
    tasks = [load_task(t, config_dir) for t in task_names]
    # validate every template name before loading any data
    per_checkpoint_prompts = {
        ck.checkpoint_id: resolve_prompts(selection.prompts, ck, config_dir) for ck in checkpoints
    }
    templates = {name: load_prompt(name, config_dir) for names in per_checkpoint_prompts.values() for name in names}
    problems = {t.task: load_problems(t, data_dir=data_dir) for t in tasks}
    engine_args = engine_args_for_key(backend, model_args)
    units: list[PlannedUnit] = []
    for ck in checkpoints:
        ref: CheckpointRef = ck.ref()
        for task in tasks:
            probs = problems[task.task]
            dhash = data_hash(probs)
            protocol = overrides.apply(task)
            for tname in per_checkpoint_prompts[ck.checkpoint_id]:
                template = templates[tname]
                if (
                    template.chat
                    and not template.raw_fallback
                    and ck.is_local
                    and not has_chat_template(Path(ck.model))
                ):
                    raise UsageError(
                        f"prompt template {tname!r} applies a chat template, but checkpoint {ck.checkpoint_id!r} "
                        "has a tokenizer without one; use a raw template (no_template, r1_think) or one with "
                        "raw_fallback: true"
                    )
                spec = UnitSpec(
                    checkpoint=ref,
                    task=task.task,
                    data_hash=dhash,
                    template_id=tname,
                    template_hash=template.template_hash,
                    protocol=protocol,
                    backend=backend,
                    engine_args=engine_args,
                    sampling_scheme=SAMPLING_SCHEME,
                    use_model_generation_config=use_model_generation_config,
                )
                info = UnitInfo(
                    key=spec.key,
                    spec=spec,
                    family=ck.family,
                    family_display=ck.family_display,
                    base=ck.base,
                    reward=ck.reward,
                    step=ck.step,
                    task_display=task.settings.display_name,
                    n_problems_total=len(probs),
                )
                units.append(PlannedUnit(info=info, checkpoint=ck, task=task, template=template, problems=probs))
    return units
