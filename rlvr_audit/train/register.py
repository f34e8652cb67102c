"""``rlvr-audit train register`` / ``train merge``: saved steps -> checkpoint-registry entries.

verl saves step N under ``RUN/checkpoints/global_step_N/actor/`` (FSDP shards, plus a full
Hugging Face model in ``actor/huggingface/`` when the spec's ``save.hf_model`` is on).
:func:`register_run` writes ``RUN/checkpoints.yaml``, a registry in the format of the project's
``checkpoints.yaml`` (:mod:`rlvr_audit.core.registry`): the run's family (id = experiment name) with
one checkpoint ``step<N>`` per saved step, and the base model's entry copied from the project
registry so that ``base`` resolves. Then::

    rlvr-audit run --registry RUN/checkpoints.yaml --checkpoints '<name>/*'

evaluates every step against the base. Each entry records base, reward, step and the model
path; its notes record the clipping mode, the spec hash and the status:

- ``hf``: ``actor/huggingface`` holds the weights (evaluable);
- ``merged``: ``RUN/merged/global_step_N`` holds the weights ``train merge`` wrote (evaluable);
- ``fsdp``: only FSDP shards; run ``rlvr-audit train merge RUN`` first.

Registering is idempotent: the file is rebuilt from what is on disk, so running it again (or
from verl's checkpoint callback after every save) gives the same entries, plus any new step.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..core.configfile import default_config_dir
from ..core.errors import AuditError, UsageError
from ..core.registry import Registry
from ..core.ui import make_progress
from .plan import base_entry, load_run_spec
from .spec import describe_reward
from .verl_config import require_verl

REGISTRY_FILE = "checkpoints.yaml"
RUN_FAMILY_MARK = "(verl run)"
"""Suffix of the display name of a family ``register`` wrote (others are never overwritten)."""
_STEP_DIR = re.compile(r"global_step_(\d+)$")
_WEIGHTS = ("*.safetensors", "*.bin", "*.pt")


@dataclass(frozen=True)
class StepEntry:
    """One registered step."""

    checkpoint_id: str
    """``<name>/step<N>``."""
    step: int
    """Training step."""
    model: str
    """Model path, relative to the run directory (``./...``)."""
    status: str
    """``hf``, ``merged`` or ``fsdp`` (see the module docstring)."""


@dataclass
class RegisterResult:
    """What ``register`` wrote."""

    registry: Path
    """The registry file."""
    entries: list[StepEntry] = field(default_factory=list)
    """Every step, in order."""
    added: list[str] = field(default_factory=list)
    """Checkpoint ids that were not registered before."""


def _has_weights(folder: Path) -> bool:
    return folder.is_dir() and (folder / "config.json").is_file() and any(any(folder.glob(g)) for g in _WEIGHTS)


def saved_steps(run_dir: Path) -> list[tuple[int, Path]]:
    """``(step, global_step_N folder)`` for every step verl saved, ascending."""
    root = run_dir / "checkpoints"
    found = []
    if root.is_dir():
        for child in root.iterdir():
            m = _STEP_DIR.match(child.name)
            if m and child.is_dir() and (child / "actor").is_dir():
                found.append((int(m.group(1)), child))
    return sorted(found)


def step_entry(run_dir: Path, name: str, step: int, folder: Path) -> StepEntry:
    """The entry of one saved step (prefers a merged model, then verl's own HF export)."""
    merged = run_dir / "merged" / folder.name
    hf = folder / "actor" / "huggingface"
    if _has_weights(merged):
        model, status = merged, "merged"
    elif _has_weights(hf):
        model, status = hf, "hf"
    else:
        model, status = merged, "fsdp"
    return StepEntry(f"{name}/step{step}", step, "./" + model.relative_to(run_dir).as_posix(), status)


def register_run(run_dir: Path, *, registry: Path | None = None) -> RegisterResult:
    """Write ``RUN/checkpoints.yaml`` from the steps on disk (idempotent; see the module docstring).

    ``registry``: the registry the base entry is copied from (default: the copy ``plan`` took
    of it, so that verl's callback needs no project checkout on the training nodes).
    """
    run_dir = run_dir.expanduser().resolve()
    spec, plan = load_run_spec(run_dir)
    target = run_dir / REGISTRY_FILE
    before: set[str] = set()
    if target.is_file():
        before = {f"{spec.name}/{v}" for v in _family_variants(target, spec.name)}
    entries = [step_entry(run_dir, spec.name, step, folder) for step, folder in saved_steps(run_dir)]
    families: dict[str, Any] = {}
    base_id = spec.model.registry_id
    if base_id is not None:
        base = plan.get("base_entry")
        if registry is not None or not base:
            source = registry or default_config_dir() / REGISTRY_FILE
            base = base_entry(base_id, source, run_dir / "spec.yaml")
        families[base["family"]] = {
            "display_name": base["display_name"],
            "checkpoints": {base["variant"]: base["entry"]},
        }
    reward_name = spec.reward.name
    checkpoints: dict[str, Any] = {}
    for e in entries:
        notes = (
            f"rlvr-audit train run {spec.name} (spec {plan['spec_hash']}): reward {describe_reward(spec.reward)}, "
            f"clipping {spec.clipping}, step {e.step}; status {e.status}"
            + (" (run `rlvr-audit train merge` before evaluating)" if e.status == "fsdp" else "")
        )
        checkpoints[f"step{e.step}"] = {
            "model": e.model,
            "revision": None,
            "base": base_id,
            "reward": reward_name,
            "step": e.step,
            "prompt": spec.model.prompt,
            "notes": notes,
        }
    if checkpoints:
        if spec.name in families:
            raise UsageError(f"experiment name {spec.name!r} is also the base model's family id; rename the experiment")
        families[spec.name] = {"display_name": f"{spec.name} {RUN_FAMILY_MARK}", "checkpoints": checkpoints}
    text = (
        "# Checkpoint registry of this training run, written by `rlvr-audit train register` (do not edit:\n"
        "# it is rebuilt from checkpoints/ on every save). Evaluate every step with\n"
        f"#   rlvr-audit run --registry {REGISTRY_FILE} --checkpoints '{spec.name}/*'\n"
        + yaml.safe_dump({"families": families}, sort_keys=False, allow_unicode=True, width=120)
    )
    _write_checked(target, text)
    added = [e.checkpoint_id for e in entries if e.checkpoint_id not in before]
    return RegisterResult(target, entries, added)


def register_into(run_dir: Path, registry: Path) -> RegisterResult:
    """Also put the run's family into another registry file (e.g. the project's
    ``checkpoints.yaml``), replacing the family an earlier call wrote and leaving every other
    line, comments included, as it was. Idempotent; the result is checked to load before it
    replaces the file. Model paths are written relative to that file's folder when possible."""
    run_dir = run_dir.expanduser().resolve()
    spec, _plan = load_run_spec(run_dir)
    if not registry.is_file():
        raise UsageError(f"checkpoint registry {registry} does not exist")
    before = {f"{spec.name}/{v}" for v in _family_variants(registry, spec.name)}
    result = register_run(run_dir, registry=registry)
    text = registry.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"{registry} is not valid YAML: {exc}") from exc
    families = _child(root, "families")
    if families is None or not isinstance(families, yaml.MappingNode):
        raise UsageError(f"{registry} has no 'families' mapping")
    fam = yaml.safe_load(result.registry.read_text(encoding="utf-8"))["families"].get(spec.name)
    indent = families.value[0][0].start_mark.column if families.value else 2
    start = end = None
    for key, value in families.value:
        if key.value == spec.name:
            display = _child(value, "display_name")
            if display is None or not str(display.value).endswith(RUN_FAMILY_MARK):
                raise UsageError(f"{registry} already has a family {spec.name!r} that `train register` did not write")
            start, end = key.start_mark.line, _last_content_line(lines, value.end_mark.line)
    if start is None:
        start = end = _last_content_line(lines, families.end_mark.line)
    block = ""
    if fam is not None:
        base = registry.parent.resolve()
        for entry in fam["checkpoints"].values():
            model = (run_dir / entry["model"]).resolve()
            try:
                rel = Path(os.path.relpath(model, base))
                entry["model"] = "./" + rel.as_posix() if not rel.as_posix().startswith("..") else rel.as_posix()
            except ValueError:  # another drive
                entry["model"] = str(model)
        dumped = yaml.safe_dump({spec.name: fam}, sort_keys=False, allow_unicode=True, width=120)
        block = "".join(" " * indent + line + "\n" for line in dumped.splitlines())
    new_text = "".join(lines[:start]) + block + "".join(lines[end:])
    _write_checked(registry, new_text)
    return RegisterResult(
        registry, result.entries, [e.checkpoint_id for e in result.entries if e.checkpoint_id not in before]
    )


def _child(node: Any, key: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if k.value == key:
                return v
    return None


def _last_content_line(lines: list[str], end: int) -> int:
    """The line after the last non-blank, non-comment line before ``end`` (a block's end mark
    sits on the next key, after any comments that introduce it)."""
    i = min(end, len(lines))
    while i > 0 and (not lines[i - 1].strip() or lines[i - 1].lstrip().startswith("#")):
        i -= 1
    return i


def _family_variants(path: Path, family: str) -> list[str]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return []
    fam = (data.get("families") or {}).get(family) or {}
    return list((fam.get("checkpoints") or {}).keys())


def _write_checked(target: Path, text: str) -> None:
    """Write ``text`` atomically after checking it loads as a registry (never a broken file)."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".yaml", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        if "families: {}" not in text:
            Registry.load(tmp)  # paths resolve against the run directory, as for the real file
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


# --- merging FSDP shards ------------------------------------------------------------------------


def merge_command(run_dir: Path, folder: Path, python: str | None = None) -> list[str]:
    """verl's model merger for one saved step: FSDP shards -> ``RUN/merged/global_step_N``."""
    return [
        python or sys.executable,
        "-m",
        "verl.model_merger",
        "merge",
        "--backend",
        "fsdp",
        "--local_dir",
        str(folder / "actor"),
        "--target_dir",
        str(run_dir / "merged" / folder.name),
    ]


def merge_run(
    run_dir: Path, *, steps: list[int] | None = None, force: bool = False, progress: bool = True
) -> list[int]:
    """Merge the FSDP shards of ``steps`` (default: every saved step that has no HF weights yet)
    with verl's model merger, then re-register. Returns the merged steps."""
    run_dir = run_dir.expanduser().resolve()
    spec, _plan = load_run_spec(run_dir)
    require_verl()
    saved = dict(saved_steps(run_dir))
    if steps:
        missing = [s for s in steps if s not in saved]
        if missing:
            valid = ", ".join(map(str, saved)) or "(none saved yet)"
            raise UsageError(f"no saved step {missing[0]} in {run_dir / 'checkpoints'}; saved steps: {valid}")
        todo = sorted(steps)
    else:
        todo = [s for s, f in saved.items() if force or step_entry(run_dir, spec.name, s, f).status == "fsdp"]
    logs = run_dir / "logs"
    logs.mkdir(exist_ok=True)
    with make_progress(progress) as bar:
        task = bar.add_task("merging FSDP shards", total=len(todo))
        for s in todo:
            log = logs / f"merge_global_step_{s}.log"
            with log.open("w", encoding="utf-8") as fh:
                proc = subprocess.run(merge_command(run_dir, saved[s]), stdout=fh, stderr=subprocess.STDOUT)
            if proc.returncode != 0:
                tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-5:]
                raise AuditError(f"verl's model merger failed on step {s} (see {log}): " + " | ".join(tail))
            bar.advance(task)
    register_run(run_dir)
    return todo
