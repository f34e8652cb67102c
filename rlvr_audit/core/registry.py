"""The checkpoint registry (``checkpoints.yaml``): model families, base models, RLVR checkpoints.

Every checkpoint has an id ``<family>/<variant>``. A checkpoint with a ``base`` is compared
against that base in reports (paired over the same problems, task, prompt and grader). A
local model directory given on the command line is an ad-hoc checkpoint
``local/<name>-<path hash>`` with no base (see :func:`local_checkpoint_id`). The claims ledger
about the registry's families is ``claims.yaml`` beside it (:mod:`rlvr_audit.core.claims`),
loaded and checked against the registry with it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field

from .claims import LEDGER_SECTIONS, Ledger, ledger_path, load_ledger, read_ledger_file
from .configfile import StrictModel, read_yaml, validate
from .errors import ConfigError, UnknownNameError, UsageError
from .records import CheckpointRef


class CheckpointEntry(StrictModel):
    """One checkpoint of a family in ``checkpoints.yaml``."""

    model: str
    """Hugging Face id (``Qwen/Qwen2.5-Math-7B``) or a local path (relative to the YAML)."""
    revision: str | None = "main"
    """Hub revision: a commit hash pins the weights; ``main`` follows the branch."""
    base: str | None = None
    """Id of the checkpoint this one was trained from (``<family>/<variant>``); ``null`` for a base."""
    reward: str | None = None
    """RLVR reward it was trained with (ground_truth, majority_vote, one_shot, format_boxed,
    incorrect, random, python, compound, no_repetition)."""
    step: int | None = Field(default=None, ge=0)
    """Training step of the checkpoint (0 or ``null`` for a base model)."""
    prompt: str = "model_default"
    """Default prompt template for this checkpoint."""
    notes: str = ""
    """Provenance and caveats."""


class Family(StrictModel):
    """A model family: one base model and its descendants."""

    display_name: str
    """Name shown in reports."""
    checkpoints: dict[str, CheckpointEntry]
    """Variant name -> checkpoint."""


class RegistryFile(StrictModel):
    """The whole ``checkpoints.yaml``: the model families."""

    families: dict[str, Family]
    """Family id -> family."""


@dataclass(frozen=True)
class Checkpoint:
    """A resolved checkpoint: registry entry or ad-hoc local directory."""

    checkpoint_id: str
    """``<family>/<variant>`` or ``local/<name>``."""
    family: str
    """Family id (``local`` for ad-hoc directories)."""
    family_display: str
    """Family display name."""
    model: str
    """Hub id or absolute local path."""
    revision: str | None
    """Hub revision (``None`` for local directories)."""
    base: str | None
    """Base checkpoint id."""
    reward: str | None
    """Reward it was trained with."""
    step: int | None
    """Training step."""
    prompt: str
    """Default prompt template."""

    @property
    def is_local(self) -> bool:
        """Whether :attr:`model` is a directory on this machine."""
        return Path(self.model).is_dir()

    def ref(self) -> CheckpointRef:
        """The identity that enters unit keys (a local directory gets a content fingerprint)."""
        if self.is_local:
            return CheckpointRef(
                checkpoint_id=self.checkpoint_id,
                model=self.model,
                revision=None,
                fingerprint=fingerprint_dir(Path(self.model)),
            )
        return CheckpointRef(checkpoint_id=self.checkpoint_id, model=self.model, revision=self.revision)


def fingerprint_dir(path: Path, small_file_limit: int = 1 << 20) -> str:
    """Content fingerprint of a model directory: file names and sizes, and the bytes of every
    file under ``small_file_limit`` (configs, tokenizer). Weights change size or config in
    practice; hashing gigabytes of weights on every run would be too slow."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = f.relative_to(path).as_posix()
        size = f.stat().st_size
        h.update(f"{rel}\0{size}\0".encode())
        if size <= small_file_limit:
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


class Registry:
    """The loaded registry, with lookup by id, glob and local directory."""

    def __init__(
        self,
        checkpoints: dict[str, Checkpoint],
        path: Path | None = None,
        *,
        families: dict[str, str] | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        self.checkpoints = checkpoints
        self.path = path
        self.families = families if families is not None else {c.family: c.family_display for c in checkpoints.values()}
        """Family id -> display name."""
        self.ledger = ledger if ledger is not None else Ledger.empty()
        """The claims ledger (empty when the file has no ``claims``)."""

    @classmethod
    def load(cls, path: Path) -> Registry:
        """Load and validate ``checkpoints.yaml`` (bases must exist) and the claims ledger in
        ``claims.yaml`` beside it, if there is one (checked against the registry's ids). An old
        single-file registry with the ledger's sections inside still loads; a ledger in both
        places is refused."""
        if not path.is_file():
            raise UsageError(f"checkpoint registry {path} does not exist")
        raw = read_yaml(path)
        if not isinstance(raw, dict):
            raise ConfigError(path, f"expected a mapping at the top level, got {type(raw).__name__}")
        legacy = {k: raw.pop(k) for k in LEDGER_SECTIONS if k in raw}
        data = validate(RegistryFile, raw, path)
        out: dict[str, Checkpoint] = {}
        for fam_id, fam in data.families.items():
            for variant, entry in fam.checkpoints.items():
                cid = f"{fam_id}/{variant}"
                model = entry.model
                local = path.parent / model
                if model.startswith((".", "/")) and local.exists():
                    model = str(local.resolve())
                out[cid] = Checkpoint(
                    checkpoint_id=cid,
                    family=fam_id,
                    family_display=fam.display_name,
                    model=model,
                    revision=entry.revision,
                    base=entry.base,
                    reward=entry.reward,
                    step=entry.step,
                    prompt=entry.prompt,
                )
        for cid, ck in out.items():
            if ck.base is not None and ck.base not in out:
                raise ConfigError(
                    path,
                    f"base {ck.base!r} is not a checkpoint id in this registry",
                    key=f"families.{ck.family}.checkpoints.{cid.split('/', 1)[1]}.base",
                )
        families = {fam_id: fam.display_name for fam_id, fam in data.families.items()}
        claims_file = ledger_path(path)
        if claims_file.is_file() and legacy:
            raise ConfigError(
                path,
                f"the claims ledger is in {claims_file.name} beside this file; remove the sections "
                f"{', '.join(legacy)} from here (they belong in {claims_file.name})",
                key=next(iter(legacy)),
            )
        if claims_file.is_file():
            ledger = load_ledger(read_ledger_file(claims_file), claims_file, families=families, checkpoints=out)
        else:  # an old single-file registry, or no claims (the ledger still knows each family's base)
            ledger = load_ledger(legacy, path, families=families, checkpoints=out)
        return cls(out, path, families=families, ledger=ledger)

    def check_prompts(self, valid_prompts: set[str]) -> None:
        """Every default prompt must be a known template."""
        for cid, ck in self.checkpoints.items():
            if ck.prompt not in valid_prompts:
                raise ConfigError(
                    self.path or "checkpoints.yaml",
                    f"unknown prompt template {ck.prompt!r}; valid: {', '.join(sorted(valid_prompts))}",
                    key=f"families.{ck.family}.checkpoints.{cid.split('/', 1)[1]}.prompt",
                )

    def get(self, checkpoint_id: str) -> Checkpoint:
        """The checkpoint with this id; unknown ids list the valid ones."""
        if checkpoint_id not in self.checkpoints:
            raise UnknownNameError("checkpoint", checkpoint_id, self.checkpoints)
        return self.checkpoints[checkpoint_id]

    def select(self, selectors: list[str]) -> list[Checkpoint]:
        """Resolve ids, globs (``qwen2.5-math-7b/*``) and local model directories, in order,
        without duplicates."""
        chosen: dict[str, Checkpoint] = {}
        for sel in selectors:
            if sel in self.checkpoints:
                chosen.setdefault(sel, self.checkpoints[sel])
                continue
            if any(ch in sel for ch in "*?["):
                matched = [c for c in self.checkpoints if fnmatch.fnmatchcase(c, sel)]
                if matched:
                    for c in matched:
                        chosen.setdefault(c, self.checkpoints[c])
                    continue
            path = Path(sel)
            if path.is_dir():
                ck = local_checkpoint(path)
                chosen.setdefault(ck.checkpoint_id, ck)
                continue
            raise UnknownNameError(
                "checkpoint", sel, self.checkpoints, hint=" (or a glob over them, or a local model directory)"
            )
        return list(chosen.values())

    def with_bases(self, checkpoints: list[Checkpoint]) -> list[Checkpoint]:
        """``checkpoints`` plus the base of each (bases first), without duplicates."""
        out: dict[str, Checkpoint] = {}
        for ck in checkpoints:
            if ck.base is not None and ck.base in self.checkpoints:
                out.setdefault(ck.base, self.checkpoints[ck.base])
        for ck in checkpoints:
            out.setdefault(ck.checkpoint_id, ck)
        return list(out.values())


GENERIC_DIR_NAMES = frozenset(
    {"huggingface", "hf", "hf_model", "model", "models", "actor", "checkpoint", "checkpoints", "final", "latest"}
    | {"merged", "snapshot", "snapshots", "output", "outputs", "weights", "export", "best"}
)
"""Folder names that say nothing about which model they hold (verl saves every step as
``global_step_N/actor/huggingface``): a local checkpoint's readable name adds parent folders
until one is not generic."""


def local_checkpoint_id(path: Path) -> str:
    """The id of the ad-hoc checkpoint for a local model directory: ``local/<name>-<hash>``.

    ``<name>`` is the folder's name, preceded by its parents' names while those are generic
    (:data:`GENERIC_DIR_NAMES`, or a 40-hex snapshot hash), at most three folders joined by
    ``-``; ``<hash>`` is the first 8 hex digits of the SHA-256 of the resolved path. Two folders
    with the same name (``a/model``, ``b/model``) are two checkpoints; the same folder always has
    the same id, from any working directory or through any link."""
    resolved = path.resolve()
    names = [resolved.name]
    parent = resolved.parent
    while len(names) < 3 and parent.name and _generic(names[0]):
        names.insert(0, parent.name)
        parent = parent.parent
    digest = hashlib.sha256(str(resolved).encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"local/{'-'.join(names)}-{digest}"


def _generic(name: str) -> bool:
    return name.lower() in GENERIC_DIR_NAMES or bool(re.fullmatch(r"[0-9a-f]{40}", name))


def local_checkpoint(path: Path) -> Checkpoint:
    """An ad-hoc checkpoint for a local model directory (id: :func:`local_checkpoint_id`)."""
    if not (path / "config.json").is_file():
        raise UsageError(f"{path} is not a model directory: it has no config.json")
    resolved = path.resolve()
    return Checkpoint(
        checkpoint_id=local_checkpoint_id(resolved),
        family="local",
        family_display="Local models",
        model=str(resolved),
        revision=None,
        base=None,
        reward=None,
        step=None,
        prompt="model_default" if has_chat_template(resolved) else "no_template",
    )


def has_chat_template(model_dir: Path) -> bool:
    """Whether a local model directory's tokenizer defines a chat template (read from its
    files, without loading the tokenizer)."""
    if (model_dir / "chat_template.jinja").is_file() or (model_dir / "chat_template.json").is_file():
        return True
    config = model_dir / "tokenizer_config.json"
    if config.is_file():
        try:
            return bool(json.loads(config.read_text(encoding="utf-8")).get("chat_template"))
        except (json.JSONDecodeError, OSError):
            return False
    return False
