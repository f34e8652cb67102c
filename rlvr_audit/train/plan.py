"""``rlvr-audit train plan``: turn an experiment spec into a run directory.

A run directory holds everything a run needs and nothing of this machine's other state::

    RUN/
      spec.yaml            the resolved spec (every default filled in, paths absolute)
      plan.json            spec hash, data rows, prompt template and its hash, notes, versions
      verl_overrides.txt   the Hydra overrides of verl's ppo_trainer, one per line
      launch.sh            the exact local launch command (logs to RUN/logs/)
      data/train.parquet   training rows in verl's format
      data/val.parquet     validation rows (when the spec has an ``eval`` section)
      checkpoints/         written by verl (global_step_N/)
      checkpoints.yaml     the registry of saved steps (``train register``)

Planning is all-or-nothing: every file is built in a temporary folder first, then moved in;
a run directory that holds a different spec is refused (plan elsewhere, or delete it).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from ..core.configfile import default_config_dir, read_yaml
from ..core.errors import ConfigError, UsageError
from ..core.prompts import load_prompt
from ..core.ui import console
from . import data as train_data
from .spec import (
    KNOWN_CONTEXT_LENGTHS,
    ExperimentSpec,
    check_batches,
    describe_reward,
    load_spec,
    looks_like_local,
    resolve_path,
    spec_hash,
)
from .verl_config import VERL_ENTRY, installed_verl_version, overrides

PLAN_FILE = "plan.json"
SPEC_FILE = "spec.yaml"
OVERRIDES_FILE = "verl_overrides.txt"
LAUNCH_FILE = "launch.sh"
VERL_REQUIREMENT = "verl==0.9.1"
"""The verl this runner's overrides are written for (``pyproject.toml``'s ``train`` extra)."""
PLANNED_FILES = (SPEC_FILE, PLAN_FILE, OVERRIDES_FILE, LAUNCH_FILE, "data/train.parquet", "data/val.parquet")


@dataclass
class PlanResult:
    """What ``plan`` wrote."""

    run_dir: Path
    """The run directory."""
    spec_hash: str
    """Hash of the resolved spec."""
    train_rows: int
    """Training rows written."""
    val_rows: int
    """Validation rows written (0: none; verl then reads the training file for validation, never used)."""
    notes: list[str] = field(default_factory=list)
    """What the data transform did, and other remarks."""
    reused: bool = False
    """The run directory already held this exact plan."""


def resolved_spec(spec: ExperimentSpec, spec_file: Path) -> dict[str, Any]:
    """The spec with every default filled in and local paths made absolute."""
    out = spec.model_dump(mode="json")
    if spec.data.path is not None:
        out["data"]["path"] = str(resolve_path(spec_file, spec.data.path))
    if spec.eval is not None:
        out["eval"]["path"] = str(resolve_path(spec_file, spec.eval.path))
    if looks_like_local(spec.model.path):
        out["model"]["path"] = str(resolve_path(spec_file, spec.model.path))
    return out


def context_length(spec: ExperimentSpec, model_path: str) -> int | None:
    """The model's context window: the spec's, a local directory's ``config.json``, or the known
    value of the paper's models; ``None`` if unknown."""
    if spec.model.context_length is not None:
        return spec.model.context_length
    config = Path(model_path) / "config.json"
    if config.is_file():
        try:
            value = json.loads(config.read_text(encoding="utf-8")).get("max_position_embeddings")
        except (OSError, json.JSONDecodeError):
            value = None
        if isinstance(value, int):
            return value
    return KNOWN_CONTEXT_LENGTHS.get(model_path)


def check_context(spec: ExperimentSpec, model_path: str, where: Path | str) -> int:
    """Prompt + response tokens must fit the model's context; returns the context length."""
    ctx = context_length(spec, model_path)
    if ctx is None:
        raise ConfigError(
            where,
            f"the context length of {model_path!r} is unknown (not a local model directory, not one of the "
            "paper's models); set it",
            key="model.context_length",
        )
    hp = spec.hyperparameters
    if hp.max_prompt_tokens + hp.max_response_tokens > ctx:
        raise ConfigError(
            where,
            f"max_prompt_tokens + max_response_tokens = {hp.max_prompt_tokens} + {hp.max_response_tokens} = "
            f"{hp.max_prompt_tokens + hp.max_response_tokens} tokens exceed the {ctx}-token context of {model_path}",
            key="hyperparameters.max_response_tokens",
        )
    return ctx


def check_spec(
    spec: ExperimentSpec, spec_file: Path, *, config_dir: Path | None = None, registry: Path | None = None
) -> tuple[Any, dict[str, Any] | None]:
    """Checks that need no data and no verl: batches, context, prompt template, base checkpoint.

    Returns ``(prompt template, registry entry of the base or None)``.
    """
    check_batches(spec, spec_file)
    model_path = resolved_spec(spec, spec_file)["model"]["path"]
    check_context(spec, model_path, spec_file)
    config_dir = config_dir or default_config_dir()
    try:
        template = load_prompt(spec.model.prompt, config_dir)
    except UsageError as exc:
        raise ConfigError(spec_file, str(exc), key="model.prompt") from exc
    if not template.chat or template.assistant_prefix:
        raise ConfigError(
            spec_file,
            f"prompt template {spec.model.prompt!r} is not a plain chat template: verl renders each prompt "
            "with the tokenizer's chat template from system/user messages (no raw text, no assistant prefix)",
            key="model.prompt",
        )
    base = None
    if spec.model.registry_id is not None:
        base = base_entry(spec.model.registry_id, registry or config_dir / "checkpoints.yaml", spec_file)
    return template, base


def base_entry(registry_id: str, registry: Path, spec_file: Path) -> dict[str, Any]:
    """``{family, display_name, variant, entry}`` of the base checkpoint in the registry."""
    if not registry.is_file():
        raise ConfigError(spec_file, f"checkpoint registry {registry} does not exist", key="model.registry_id")
    families = (read_yaml(registry) or {}).get("families") or {}
    family, _, variant = registry_id.partition("/")
    entry = (families.get(family) or {}).get("checkpoints", {}).get(variant)
    if entry is None:
        valid = sorted(f"{f}/{v}" for f, fam in families.items() for v in (fam.get("checkpoints") or {}))
        raise ConfigError(
            spec_file,
            f"{registry_id!r} is not a checkpoint of {registry}; valid: {', '.join(valid)}",
            key="model.registry_id",
        )
    return {
        "family": family,
        "display_name": families[family].get("display_name", family),
        "variant": variant,
        "entry": entry,
    }


def read_plan(run_dir: Path) -> dict[str, Any]:
    """The run directory's ``plan.json``; a clear error when ``run_dir`` is not a planned run."""
    path = run_dir / PLAN_FILE
    if not path.is_file():
        raise UsageError(f"{run_dir} is not a planned run directory (no {PLAN_FILE}); run `rlvr-audit train plan`")
    try:
        plan: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(path, f"not valid JSON ({exc.msg})") from exc
    return plan


def load_run_spec(run_dir: Path) -> tuple[ExperimentSpec, dict[str, Any]]:
    """The run's resolved spec and plan; refuses a ``spec.yaml`` edited after planning."""
    plan = read_plan(run_dir)
    spec_path = run_dir / SPEC_FILE
    spec = load_spec(spec_path)
    if spec_hash(spec.model_dump(mode="json")) != plan.get("spec_hash"):
        raise UsageError(
            f"{spec_path} no longer matches the plan (hash {plan.get('spec_hash')}); it was edited after planning: "
            "plan again from the spec file"
        )
    return spec, plan


def local_command(run_dir: Path, python: str | None = None) -> list[str]:
    """The local launch command: ``python -m verl.trainer.main_ppo <overrides>``."""
    lines = (run_dir / OVERRIDES_FILE).read_text(encoding="utf-8").splitlines()
    return [python or sys.executable, "-m", VERL_ENTRY, *[line for line in lines if line.strip()]]


def plan(
    spec_file: Path,
    run_dir: Path,
    *,
    config_dir: Path | None = None,
    registry: Path | None = None,
    progress: bool = True,
) -> PlanResult:
    """Validate ``spec_file`` and write the run directory ``run_dir`` (see the module docstring).

    Raises:
        ConfigError: The spec is invalid (names the key).
        UsageError: ``run_dir`` holds a different spec.
    """
    if any(c in str(run_dir) for c in "\n\r"):
        raise UsageError(f"the run directory {str(run_dir)!r} holds a line break; verl's overrides are one per line")
    spec = load_spec(spec_file)
    template, base = check_spec(spec, spec_file, config_dir=config_dir, registry=registry)
    resolved = resolved_spec(spec, spec_file)
    digest = spec_hash(resolved)
    run_dir = run_dir.expanduser().resolve()
    existing = run_dir / PLAN_FILE
    if existing.is_file():
        old = read_plan(run_dir).get("spec_hash")
        if old != digest:
            raise UsageError(
                f"{run_dir} already holds a different spec (hash {old}, this one {digest}); "
                "plan into a new run directory or delete that one"
            )
    elif run_dir.exists() and any(run_dir.iterdir()):
        raise UsageError(f"{run_dir} exists and is not a run directory; plan into a new or empty directory")

    with console.status("reading training data", spinner="dots") if progress else _null():
        problems, notes = train_data.training_problems(spec, spec_file)
        val = train_data.eval_problems(spec, spec_file) if spec.eval is not None else []
    if len(problems) < spec.hyperparameters.prompts_per_step:
        raise ConfigError(
            spec_file,
            f"{len(problems)} training rows are fewer than one batch of {spec.hyperparameters.prompts_per_step} "
            "prompts",
            key="hyperparameters.prompts_per_step",
        )
    override_list = overrides(
        spec,
        model_path=resolved["model"]["path"],
        run_dir=run_dir,
        train_rows=len(problems),
        has_eval=bool(val),
    )
    plan_record = {
        "spec_hash": digest,
        "spec_source": str(spec_file.resolve()),
        "name": spec.name,
        "reward": describe_reward(spec.reward),
        "clipping": spec.clipping,
        "optimizer_steps_per_batch": spec.optimizer_steps_per_batch,
        "train_rows": len(problems),
        "val_rows": len(val),
        "prompt_template": spec.model.prompt,
        "prompt_template_hash": template.template_hash,
        "prompt_template_texts": {"system": template.system, "user": template.user},
        "model_path": resolved["model"]["path"],
        "base_entry": base,
        "notes": notes,
        "rlvr_audit_version": _version("rlvr-audit"),
        "verl_requirement": VERL_REQUIREMENT,
        "verl_version": installed_verl_version(),
        "planned_with_python": sys.executable,
    }
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.plan-", dir=run_dir.parent))
    try:
        (tmp / "data").mkdir()
        train_data.write_parquet(
            train_data.verl_rows(problems, template, data_source=spec.data.data_source, split="train"),
            tmp / "data" / "train.parquet",
        )
        if val:
            train_data.write_parquet(
                train_data.verl_rows(val, template, data_source=spec.data.data_source, split="val"),
                tmp / "data" / "val.parquet",
            )
        header = f"# resolved experiment spec (rlvr-audit train plan); spec hash {digest}\n"
        (tmp / SPEC_FILE).write_text(header + yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True))
        (tmp / OVERRIDES_FILE).write_text("\n".join(override_list) + "\n", encoding="utf-8")
        (tmp / LAUNCH_FILE).write_text(_launch_script(override_list), encoding="utf-8")
        os.chmod(tmp / LAUNCH_FILE, 0o755)
        (tmp / PLAN_FILE).write_text(json.dumps(plan_record, indent=2) + "\n", encoding="utf-8")
        reused = existing.is_file()
        if not run_dir.exists():
            tmp.rename(run_dir)
        else:
            (run_dir / "data").mkdir(exist_ok=True)
            for rel in PLANNED_FILES:
                src = tmp / rel
                if src.exists():
                    os.replace(src, run_dir / rel)
                elif (run_dir / rel).exists():
                    (run_dir / rel).unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return PlanResult(run_dir, digest, len(problems), len(val), notes, reused)


def _launch_script(override_list: list[str]) -> str:
    """A shell script that runs verl locally from the run directory, logging to logs/train.log."""
    args = " \\\n  ".join(shlex.quote(o) for o in override_list)
    return (
        "#!/usr/bin/env bash\n"
        "# Written by `rlvr-audit train plan`: runs this experiment with verl on this machine.\n"
        "# `rlvr-audit train launch RUN` runs the same command (and refuses a changed spec);\n"
        "# `--ray-address` submits it to a Ray cluster instead.\n"
        "set -euo pipefail\n"
        'cd "$(dirname "$0")"\n'
        "mkdir -p logs\n"
        'PYTHON="${PYTHON:-python3}"\n'
        f'"$PYTHON" -m {VERL_ENTRY} \\\n  {args} \\\n  2>&1 | tee logs/train.log\n'
    )


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
