"""Import: turn published generation files into stored units, graded and reported like others.

Two steps, like plan -> generate: :func:`plan_import` reads and validates every file, resolves
the checkpoint, task and protocol, matches every item to a task problem and builds every
record in memory, writing nothing; :func:`write_import` then stores them. So a file in the
wrong format, an unknown name or unmatched problems stop the import before anything is
written.

What an imported unit is (its :class:`~rlvr_audit.core.records.UnitSpec`):

- ``checkpoint``: the registry entry's identity when ``--checkpoint`` is a registry id; else a
  new id with no weights (``model`` is the model the source file names, if it names exactly
  one, else the id). A new id ``<family>/<name>`` joins that registry family in reports;
  other new ids form the family ``imported``.
- ``task`` and ``data_hash``: our task file, to which problems are matched by text (see
  :mod:`.matching`); gold answers and problem order come from it.
- ``template_id`` ``imported`` and ``template_hash``: a hash of the prompt *templates* the
  file's prompts follow (each recorded prompt with its problem text cut out; or the source's
  prompt-style name where prompts are not recorded). Two checkpoints evaluated with the same
  template therefore share a template hash and their gains can be paired. (An imported unit
  pairs only with an imported base of the same template and protocol: a generated unit has
  another template id.)
- ``protocol``: n = completions per problem; temperature, top-p, max new tokens and seed as the
  file records them, else as ``--temperature`` / ``--max-new-tokens`` say, else the writing
  tool's defaults (documented per format); an option that contradicts the file is an error.
- ``backend`` ``import:<format>`` and ``engine_args`` ``{"source_sha256": ...}``: the files'
  content hashes, so importing the same files again gives the same unit (nothing is stored
  twice) and a different file gives a new unit.

Each :class:`~rlvr_audit.core.records.Generation` keeps the file's completion verbatim, the prompt the
file records (else the problem text), ``finish_reason`` ``unknown`` (no source records it, so
a cut-off answer is graded ``no_answer`` rather than ``truncated``), ``n_tokens`` ``None`` and
``seed`` = the protocol's seed. ``unit.json`` carries an :class:`~rlvr_audit.core.records.ImportSource`
with the source's own reported metrics, so reports put its numbers beside ours.

Several files for one checkpoint are imported together; files that share task, protocol and
template become one unit (e.g. Qwen's ``_s0_e250`` / ``_s250_e500`` shards), and a problem
present in two of them is an error.

Shards imported in separate commands merge the same way: when the store already holds an
imported unit of the same checkpoint, task, protocol, prompt template and format whose problems
are disjoint from the new files' problems, the new files are read as further shards of its
source and their samples are added to that unit (its ``unit.json`` then lists every file;
its key stays the one its first files gave it). Files already stored in such a unit store nothing
new. Files of the same setting that share problems with the stored unit are another source (a
re-run): they become a distinct unit, and both units' labels (:attr:`ImportSource.label`) name
their source files. Two stored units that the new files could both extend are refused.

Streaming and failures: each file is read twice, once by :func:`plan_import` (validate, match,
hash) and once by :func:`write_import` (store, in batches of :data:`BATCH` samples), so memory
stays bounded by one item's completions whatever the file size. A file whose bytes change between
the two passes stops the import. An import that fails while writing (a full disk, Ctrl-C, any
error) leaves nothing behind: units it created are removed, samples it added to an existing unit
are cut off again, a problems file it created is removed (its run manifest records the failure).

One module, one concept (over 800 lines): the two passes of one import share the plan (each
file's resolved checkpoint, task, protocol and matched problems) and the one rule of what an
imported unit is; the format readers (one module each) and the matching are apart.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..core.errors import UnknownNameError, UsageError
from ..core.records import (
    MAX_NEW_TOKENS,
    CheckpointRef,
    Generation,
    ImportSource,
    Problem,
    SamplingProtocol,
    SourceMetric,
    UnitSpec,
    stable_hash,
)
from ..core.registry import Registry
from ..core.store import Store, UnitInfo
from ..core.tasks import TaskSpec, available_tasks, data_hash, load_problems, load_task
from ..core.ui import Progress
from .base import ImportFormat, SourceFile
from .formats import get_format
from .matching import MatchOutcome, ProblemIndex, match_form, normalise, same_gold

log = logging.getLogger(__name__)

TEMPLATE_ID = "imported"
"""Template id of every imported unit (the template hash tells templates apart)."""

IMPORTED_FAMILY = ("imported", "Imported (not in the registry)")
"""Family id and display name of new checkpoint ids outside every registry family."""

TASK_ALIASES: dict[str, str] = {
    # spurious-rewards-json `dataset`
    "math-500": "math500",
    "aime-2024": "aime24",
    "aime-2025": "aime25",
    "amc": "amc",
    # Qwen2.5-Math data folders
    "math500": "math500",
    "math_500": "math500",
    "aime24": "aime24",
    "aime25": "aime25",
    "amc23": "amc",
    # lm-eval task names
    "hendrycks_math500": "math500",
    "minerva_math500": "math500",
}
"""Benchmark names used by the source tools (lower case) -> rlvr-audit task id."""

SHOWN = 5
"""How many unmatched items or gold mismatches an error or summary lists."""

_CHECKPOINT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+\-]*(/[A-Za-z0-9][A-Za-z0-9._+\-]*)*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+\-]*$")


@dataclass(frozen=True)
class ImportOptions:
    """What ``rlvr-audit import`` is told besides the format and the files."""

    checkpoint: str
    """Checkpoint id the generations belong to: a registry id or a new name."""
    base: str | None = None
    """Checkpoint this one is compared against (default: the registry's base, if any)."""
    task: str | None = None
    """Task of every file, for files that do not name a known benchmark."""
    allow_unmatched: bool = False
    """Import the matched items even when some match no task problem (they are listed)."""
    temperature: float | None = None
    """Sampling temperature, for files that record none."""
    max_new_tokens: int | None = None
    """New-token limit, for files that record none (required where the format has no fixed limit)."""
    family: str | None = None
    """Family id of a new checkpoint id (default: the registry family its id starts with, else
    ``imported``); for a registry id it must agree with the registry."""
    step: int | None = None
    """Training step of a new checkpoint id (for a registry id it must agree with the registry)."""
    reward: str | None = None
    """RLVR reward of a new checkpoint id (for a registry id it must agree with the registry)."""


BATCH = 10_000
"""Samples stored per append while writing an import."""


@dataclass
class FilePlan:
    """One source file, read and matched (pass 1): what pass 2 needs to store its samples."""

    file: SourceFile
    """Its complete header (k, settings, metrics, SHA-256)."""
    task: str
    """Task id."""
    problem_of: list[str | None] = field(repr=False)
    """Problem id matched by the item at each position of the file (``None``: unmatched)."""
    n_unmatched: int = 0
    """Items matching no problem."""
    n_gold: int = 0
    """Matched items whose gold answer differs from the task file's."""
    template_hash: str = ""
    """Hash of the prompt templates its prompts follow."""

    @property
    def problems(self) -> list[str]:
        """Matched problem ids, in file order."""
        return [p for p in self.problem_of if p is not None]


@dataclass
class PlannedImport:
    """One unit to store: its info, the task's problems and the files whose samples go to it."""

    info: UnitInfo
    """What goes to ``unit.json``."""
    problems: list[Problem] = field(repr=False)
    """All problems of the task (stored once per task version)."""
    files: list[FilePlan] = field(repr=False)
    """The source files of this import that go to the unit, in order."""
    n_problems: int = 0
    """Problems matched."""
    extends: str | None = None
    """``shards``: the unit is stored already and these files add problems to it; ``stored``:
    every file is in the unit already; ``None``: a new unit (or a re-import of the same files)."""

    @property
    def key(self) -> str:
        """The unit key."""
        return self.info.key

    @property
    def n_samples(self) -> int:
        """Samples to store (matched problems x k)."""
        return self.n_problems * self.info.spec.protocol.n


@dataclass
class ImportPlan:
    """Everything an import will store, validated; nothing is written yet."""

    format: str
    """Import format id."""
    checkpoint_id: str
    """The checkpoint."""
    new_checkpoint: bool
    """Whether the id is not in the registry (a new checkpoint with no weights)."""
    units: list[PlannedImport]
    """Units, in file order."""
    unmatched: list[str]
    """The first :data:`SHOWN` items matching no task problem (``file: item: text``), skipped under
    ``allow_unmatched``."""
    gold_mismatches: list[str]
    """The first :data:`SHOWN` matched items whose gold answer differs from the task file's."""
    n_unmatched: int = 0
    """Items matching no task problem, in all."""
    n_gold_mismatches: int = 0
    """Matched items whose gold answer differs from the task file's, in all."""


@dataclass
class ImportedUnit:
    """What was stored for one unit."""

    key: str
    """Unit key."""
    checkpoint_id: str
    """Checkpoint id."""
    task: str
    """Task id."""
    files: list[str]
    """Source files of this import."""
    n_problems: int
    """Problems imported."""
    n_samples: int
    """Samples per problem (k)."""
    imported: int
    """Samples stored now."""
    already_stored: int
    """Samples that were in the store already (a repeated import)."""
    metrics: list[SourceMetric]
    """The source's own reported numbers."""
    extends: str | None = None
    """See :attr:`PlannedImport.extends`."""


@dataclass
class ImportResult:
    """What an import stored."""

    plan: ImportPlan
    """The plan it carried out."""
    units: list[ImportedUnit]
    """Per unit."""

    @property
    def imported(self) -> int:
        """Samples stored now."""
        return sum(u.imported for u in self.units)

    @property
    def already_stored(self) -> int:
        """Samples found in the store already."""
        return sum(u.already_stored for u in self.units)

    def summary_lines(self) -> list[str]:
        """Lines for the user: one per unit, then warnings (new id, unmatched, gold mismatches)."""
        lines = []
        if self.plan.new_checkpoint:
            lines.append(f"{self.plan.checkpoint_id!r} is not in the registry: stored as a new checkpoint id")
        for u in self.units:
            numbers = ", ".join(f"{m.name} {100 * m.value:.1f}%" for m in u.metrics) or "no reported metric"
            how = {
                "shards": " (added to the stored unit of the same source: further shards)",
                "stored": " (already stored in this unit)",
            }.get(u.extends or "", "")
            lines.append(
                f"{u.checkpoint_id} · {u.task}: {u.n_problems} problems x {u.n_samples} "
                f"sample{'s' if u.n_samples != 1 else ''} "
                f"from {', '.join(u.files)} (source: {numbers}); unit {u.key}{how}"
            )
        if self.plan.n_unmatched:
            lines.append(
                f"skipped {self.plan.n_unmatched} items matching no task problem: "
                + "; ".join(self.plan.unmatched[:SHOWN])
                + (" ..." if self.plan.n_unmatched > SHOWN else "")
            )
        if self.plan.n_gold_mismatches:
            lines.append(
                f"{self.plan.n_gold_mismatches} items have a gold answer other than the task file's "
                "(graded against the task file's): "
                + "; ".join(self.plan.gold_mismatches[:SHOWN])
                + (" ..." if self.plan.n_gold_mismatches > SHOWN else "")
            )
        return lines


# ---- resolution -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Descriptive:
    """A checkpoint's descriptive info for ``unit.json`` (does not enter the unit key)."""

    family: str
    family_display: str
    base: str | None
    reward: str | None
    step: int | None


def _resolve_checkpoint(
    options: ImportOptions, registry: Registry, store: Store, source_model: str | None
) -> tuple[CheckpointRef, _Descriptive, bool]:
    """The checkpoint's identity, its descriptive info (family, base, ...) and whether it is new."""
    cid = options.checkpoint.strip()
    if options.step is not None and options.step < 0:
        raise UsageError(f"--step must be a training step >= 0, got {options.step}")
    for flag, value in (("--family", options.family), ("--reward", options.reward)):
        if value is not None and not _NAME.match(value):
            raise UsageError(f"{flag} {value!r} is not a valid name: use letters, digits and . _ + -")
    if cid in registry.checkpoints:
        ck = registry.checkpoints[cid]
        ref = ck.ref()
        descr = _Descriptive(ck.family, ck.family_display, ck.base, ck.reward, ck.step)
        for flag, given, registered in (
            ("--family", options.family, ck.family),
            ("--step", options.step, ck.step),
            ("--reward", options.reward, ck.reward),
        ):
            if given is not None and given != registered:
                raise UsageError(
                    f"{flag} {given} contradicts the registry, which gives {cid} {flag[2:]} {registered}; "
                    "edit the registry, or import under a new checkpoint id"
                )
        new = False
    else:
        if not _CHECKPOINT_ID.match(cid):
            raise UsageError(
                f"--checkpoint {options.checkpoint!r} is not a registry id and not a valid new id: use letters, "
                "digits and . _ + - in parts separated by '/', e.g. 'qwen2.5-math-7b/my-run' "
                "(registry ids: see `rlvr-audit ls checkpoints`)"
            )
        fam_id = options.family or (cid.split("/", 1)[0] if "/" in cid else None)
        family = next((c for c in registry.checkpoints.values() if c.family == fam_id), None)
        ref = CheckpointRef(checkpoint_id=cid, model=source_model or cid)
        if family is not None:
            fam = (family.family, family.family_display)
        elif options.family is not None:
            fam = (options.family, options.family)
        else:
            fam = IMPORTED_FAMILY
        descr = _Descriptive(*fam, None, options.reward, options.step)
        new = True
    if options.base is not None:
        base = options.base.strip()
        if base == cid:
            raise UsageError(f"--base {base!r} is the checkpoint itself; name the checkpoint it is compared against")
        known = set(registry.checkpoints) | {u.spec.checkpoint.checkpoint_id for u in store.units()}
        if base not in known:
            raise UnknownNameError(
                "base checkpoint",
                base,
                known,
                hint=" (a registry id or a checkpoint already in the store: import or generate the base first)",
            )
        descr = _Descriptive(descr.family, descr.family_display, base, descr.reward, descr.step)
    return ref, descr, new


def _resolve_task(file: SourceFile, option: str | None, valid: dict[str, Path]) -> str:
    """Our task id for a file: the benchmark it names, or ``--task`` (which must agree)."""
    named: str | None = None
    for b in (file.benchmark or "", *file.benchmark_hints):
        b = b.strip()
        named = TASK_ALIASES.get(b.lower()) or (b if b in valid else None)
        if named is not None:
            break
    if option is not None:
        if option not in valid:
            raise UnknownNameError("task", option, valid)
        if named is not None and named != option:
            raise UsageError(
                f"{file.path}: the file is for benchmark {file.benchmark!r} (task {named}), "
                f"but --task {option} was given"
            )
        return option
    if named is None:
        what = f"benchmark {file.benchmark!r}" if file.benchmark else "no benchmark name"
        raise UsageError(
            f"{file.path}: cannot tell which task it is for ({what}; known benchmark names: "
            f"{', '.join(sorted(TASK_ALIASES))}); pass --task (valid tasks: {', '.join(sorted(valid))})"
        )
    if named not in valid:
        raise UnknownNameError("task", named, valid, hint=f" ({file.path} is for benchmark {file.benchmark!r})")
    return named


def _resolve_protocol(file: SourceFile, fmt: ImportFormat, options: ImportOptions) -> SamplingProtocol:
    """The sampling protocol: the file's settings, else the options, else the format's fixed
    values; a new-token limit that neither the file nor the format nor ``--max-new-tokens`` gives
    is an error (a truncation rate computed from a guessed limit would be wrong)."""
    t = file.temperature
    if options.temperature is not None:
        if t is not None and t != options.temperature:
            raise UsageError(
                f"{file.path}: the file records temperature {t:g}, but --temperature {options.temperature:g} was given"
            )
        t = options.temperature
    if t is None:
        raise UsageError(f"{file.path}: the file records no sampling temperature; pass --temperature")
    tokens = file.max_new_tokens
    if options.max_new_tokens is not None:
        if tokens is not None and tokens != options.max_new_tokens:
            raise UsageError(
                f"{file.path}: {file.max_new_tokens_origin or 'the file'} records max_new_tokens {tokens}, but "
                f"--max-new-tokens {options.max_new_tokens} was given"
            )
        tokens = options.max_new_tokens
    if tokens is None:
        tokens = fmt.default_max_new_tokens
    if tokens is None:
        raise UsageError(
            f"{file.path}: neither the file nor a metrics file beside it records the new-token limit the "
            f"generations were made with, and {fmt.name} has no fixed one; pass --max-new-tokens N (the "
            "limit the run used), so that truncation is judged against the right limit"
        )
    try:
        return SamplingProtocol(
            n=file.n,
            temperature=t,
            top_p=file.top_p if file.top_p is not None else fmt.default_top_p,
            max_new_tokens=tokens,
            seed=file.seed or 0,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        raise UsageError(f"{file.path}: invalid sampling protocol: {where}: {err['msg']}") from None


def _template_of(prompt: str, question: str) -> str:
    """A prompt's template: the prompt with its problem text cut out, both normalised; where the
    prompt lacks the problem's figure, both in match form (so both give the same template)."""
    text, q = normalise(prompt), normalise(question)
    if q in text:
        return text.replace(q, "{problem}", 1)
    text, q = match_form(prompt), match_form(question)
    return text.replace(q, "{problem}", 1) if q in text else text


def _template_hash(prompt_style: str | None, templates: set[str]) -> str:
    """Hash of the prompt templates a file's prompts follow (problem text cut out)."""
    return stable_hash({"prompt_style": prompt_style, "templates": sorted(templates)})


class _Frame:
    """The template words around the problem in one file's item texts (match form), so that
    messages can show the problem part of an unmatched item: taken from the first item whose text
    holds its problem, else the common prefix and suffix of all items' texts (kept as they stream)."""

    def __init__(self) -> None:
        self.found: tuple[str, str] | None = None
        self.pre: str | None = None
        self.post = ""
        self.count = 0

    def add(self, text: str, outcome: MatchOutcome, question: str | None) -> None:
        if self.found is None and outcome.kind == "contained" and outcome.text is not None and question:
            pre, _, post = outcome.text.partition(question)
            self.found = (pre, post)
        t = match_form(text)
        self.count += 1
        if self.pre is None:
            self.pre, self.post = t, t
        else:
            self.pre = _common_prefix([self.pre, t])
            self.post = _common_prefix([self.post[::-1], t[::-1]])[::-1]

    def frame(self) -> tuple[str, str]:
        if self.found is not None:
            return self.found
        if self.count < 2 or self.pre is None:
            return "", ""
        return self.pre, self.post


def _common_prefix(texts: list[str]) -> str:
    """The longest string every text starts with."""
    first, last = min(texts), max(texts)
    i = 0
    while i < min(len(first), len(last)) and first[i] == last[i]:
        i += 1
    return first[:i]


def _excerpt(text: str, frame: tuple[str, str] = ("", ""), limit: int = 70) -> str:
    """A short quote of an item's problem part (template words of ``frame`` cut off)."""
    t = match_form(text)
    pre, post = frame
    if pre and t.startswith(pre):
        t = t[len(pre) :]
    if post and t.endswith(post):
        t = t[: len(t) - len(post)]
    t = t.strip() or match_form(text)
    return repr(t if len(t) <= limit else t[: limit - 3] + "...")


def _shared(values: list[str | None]) -> str | None:
    """The value every file records, or ``None`` when one records none or two differ."""
    return values[0] if values and all(v is not None and v == values[0] for v in values) else None


def _combined_metrics(parts: list[tuple[list[SourceMetric], int]]) -> list[SourceMetric]:
    """The source's metrics of a unit from its files (or a stored unit and new files): one part's
    own, or for several parts (shards), the item-weighted mean of each metric every part reports."""
    if len(parts) == 1:
        return list(parts[0][0])
    first = parts[0][0]
    out = []
    for m in first:
        found = [next((x for x in ms if x.name == m.name and x.metric == m.metric), None) for ms, _ in parts]
        if any(p is None for p in found):
            continue
        weights = [w for _, w in parts]
        value = sum(p.value * w for p, w in zip(found, weights, strict=True) if p is not None) / max(1, sum(weights))
        out.append(
            SourceMetric(
                name=m.name,
                value=min(1.0, max(0.0, value)),
                metric=m.metric,
                origin=f"item-weighted mean of each file's {m.name!r} over {len(parts)} parts",
            )
        )
    return out


# ---- plan and write ---------------------------------------------------------------------------
@dataclass
class _Missed:
    """Unmatched items of one file: the first few (for messages) and how many in all."""

    shown: list[tuple[str, str, MatchOutcome]] = field(default_factory=list)
    """(item ref, item text, outcome) of the first :data:`SHOWN`."""
    count: int = 0
    """Unmatched items in all."""


def _task_now(file: SourceFile, option: str | None, valid: dict[str, Path]) -> str | None:
    """The file's task if it can be told already (``None``: not yet; errors wait for the end)."""
    if option is not None:
        return option if option in valid else None
    try:
        return _resolve_task(file, None, valid)
    except UsageError:
        return None


def _read_and_match(
    importer: ImportFormat,
    path: Path,
    options: ImportOptions,
    valid_tasks: dict[str, Path],
    index_of: Callable[[str], ProblemIndex],
    gold: _Missed,
    progress: Progress,
) -> tuple[FilePlan, _Missed, tuple[str, str]]:
    """Pass 1 over one file: validate it, match every item to a problem of its task, and keep only
    what pass 2 needs (the problem of each item position, the template hash), never completions.
    A file whose benchmark is named only after its items is read once more first, for its header."""
    header, items = importer.stream(path)
    task = _task_now(header, options.task, valid_tasks)
    if task is None:  # e.g. a paper JSON whose 'dataset' member comes after 'metadata'
        for _ in items:
            pass
        task = _resolve_task(header, options.task, valid_tasks)
        header, items = importer.stream(path)
    index = index_of(task)
    problem_of: list[str | None] = []
    first_item: dict[str, str] = {}
    missed = _Missed()
    frame = _Frame()
    templates: set[str] = set()
    n_gold = 0
    progress_id = progress.add_task(f"reading and matching {path.name}", total=None)
    for item in items:
        outcome = index.match(item.texts)
        progress.advance(progress_id)
        question = index.question(outcome.problem) if outcome.problem is not None else None
        frame.add(item.texts[0], outcome, question)
        if outcome.problem is None or question is None:
            problem_of.append(None)
            missed.count += 1
            if len(missed.shown) < SHOWN:
                missed.shown.append((item.ref, item.texts[0], outcome))
            continue
        pid = outcome.problem.problem_id
        if pid in first_item:
            raise UsageError(
                f"{path}: {item.ref} and {first_item[pid]} are both problem {pid!r} of task {task}; "
                "a file must hold each problem once. Nothing was stored."
            )
        first_item[pid] = item.ref
        problem_of.append(pid)
        if item.prompt is not None:
            templates.add(_template_of(item.prompt, outcome.problem.question))
        if item.gold is not None and not same_gold(item.gold, outcome.problem.answer):
            n_gold += 1
            gold.count += 1
            if len(gold.shown) < SHOWN:
                gold.shown.append(
                    (
                        f"{path}: {item.ref} ({pid})",
                        f"file says {item.gold!r}, task file says {outcome.problem.answer!r}",
                        outcome,
                    )
                )
    progress.update(progress_id, total=len(problem_of), completed=len(problem_of))
    # the header is complete now: the task must agree with it (e.g. --task against its benchmark)
    if _resolve_task(header, options.task, valid_tasks) != task:
        raise UsageError(f"{path}: its benchmark changed while it was read; import it again")
    plan = FilePlan(
        file=header,
        task=task,
        problem_of=problem_of,
        n_unmatched=missed.count,
        n_gold=n_gold,
        template_hash=_template_hash(header.prompt_style, templates),
    )
    return plan, missed, frame.frame()


def _existing_target(store: Store, spec: UnitSpec, group: list[FilePlan]) -> tuple[UnitInfo | None, str | None]:
    """A stored imported unit the planned one belongs to, and how: ``stored`` (every file is in it
    already) or ``shards`` (same checkpoint, task, protocol, template and format, no problem in
    common: further shards of its source). ``(None, None)``: a new unit of its own."""
    shas = {fp.file.sha256 for fp in group}
    problems = {pid for fp in group for pid in fp.problems}
    same: list[UnitInfo] = []
    setting = (spec.checkpoint, spec.task, spec.data_hash, spec.template_hash, spec.protocol, spec.backend)
    for u in store.units():
        s = u.spec
        if u.key == spec.key:
            return None, None  # the same files again: the same unit
        if u.imported is None or (s.checkpoint, s.task, s.data_hash, s.template_hash, s.protocol, s.backend) != setting:
            continue
        if shas <= set(u.imported.file_sha256):
            return u, "stored"
        same.append(u)
    disjoint = [u for u in same if not problems & store.generation_problem_ids(u.key)]
    if len(disjoint) > 1:
        a, b = (f"{u.key} ({', '.join(u.imported.files) if u.imported else '?'})" for u in disjoint[:2])
        raise UsageError(
            f"{', '.join(str(fp.file.path) for fp in group)} could be further shards of unit {a} or of unit {b}: "
            "both hold other problems of the same checkpoint, task, protocol and template. Import the shards of "
            "each source in one command. Nothing was stored."
        )
    return (disjoint[0], "shards") if disjoint else (None, None)


def plan_import(
    fmt: str,
    paths: list[Path],
    options: ImportOptions,
    *,
    config_dir: Path,
    registry: Registry,
    store: Store,
    data_dir: Path | None,
    progress: Progress,
) -> ImportPlan:
    """Read, validate and match everything (pass 1, streaming). Writes nothing.

    Raises :class:`~rlvr_audit.core.errors.UsageError` for an unknown format, a file in another
    format (naming the file, the format and the missing field), an unknown task or base,
    contradictory settings, a problem imported twice, a new-token limit nobody states, and
    unmatched items (unless ``options.allow_unmatched``; a file with no matched item is refused
    either way).
    """
    importer = get_format(fmt)
    if not paths:
        raise UsageError(f"no files given: name the {fmt} files to import")
    if options.max_new_tokens is not None and not 1 <= options.max_new_tokens <= MAX_NEW_TOKENS:
        raise UsageError(
            f"--max-new-tokens must be a whole number in [1, {MAX_NEW_TOKENS}], got {options.max_new_tokens}"
        )
    if options.temperature is not None and not 0 <= options.temperature < math.inf:  # also refuses nan
        raise UsageError(f"--temperature must be a finite number >= 0, got {options.temperature}")
    seen_paths: dict[Path, Path] = {}
    for p in paths:
        resolved = p.resolve()
        if resolved in seen_paths:
            raise UsageError(f"{p}: given twice")
        seen_paths[resolved] = p
    valid_tasks = available_tasks(config_dir)
    if options.task is not None and options.task not in valid_tasks:
        raise UnknownNameError("task", options.task, valid_tasks)

    specs: dict[str, TaskSpec] = {}
    problems: dict[str, list[Problem]] = {}
    indexes: dict[str, ProblemIndex] = {}

    def index_of(task: str) -> ProblemIndex:
        if task not in indexes:
            specs[task] = load_task(task, config_dir)
            problems[task] = load_problems(specs[task], data_dir=data_dir)
            indexes[task] = ProblemIndex(problems[task])
        return indexes[task]

    plans: list[FilePlan] = []
    unmatched: list[str] = []
    n_unmatched = 0
    gold = _Missed()
    by_sha: dict[str, Path] = {}
    for p in paths:
        fp, missed, frame = _read_and_match(importer, p, options, valid_tasks, index_of, gold, progress)
        f = fp.file
        if f.sha256 in by_sha:
            raise UsageError(f"{p}: has the same contents as {by_sha[f.sha256]}; import it once")
        by_sha[f.sha256] = p
        if not fp.problems:
            first = missed.shown[0][1] if missed.shown else ""
            raise UsageError(
                f"{p}: none of its {f.n_items} items matches a problem of task {fp.task} by text "
                f"(first: {_excerpt(first, frame)}); is it for another task? Nothing was stored."
            )
        for item_ref, text, outcome in missed.shown:
            why = f" (fits {', '.join(outcome.candidates)} equally)" if outcome.kind == "ambiguous" else ""
            if len(unmatched) < SHOWN:
                unmatched.append(f"{p}: {item_ref}: {_excerpt(text, frame)}{why}")
        n_unmatched += missed.count
        plans.append(fp)
    if n_unmatched and not options.allow_unmatched:
        total = sum(fp.file.n_items for fp in plans)
        raise UsageError(
            f"{n_unmatched} of {total} items match no task problem by text: "
            + "; ".join(unmatched[:SHOWN])
            + (f"; ... ({n_unmatched - SHOWN} more)" if n_unmatched > SHOWN else "")
            + ". Nothing was stored. Check the task (--task), or pass --allow-unmatched to import the matched items."
        )

    models = {fp.file.model for fp in plans if fp.file.model}
    ref, descr, new = _resolve_checkpoint(options, registry, store, next(iter(models)) if len(models) == 1 else None)
    protocols = [_resolve_protocol(fp.file, importer, options) for fp in plans]

    # group files into units: same task, protocol and prompt template
    groups: dict[tuple[str, str, str], list[int]] = {}
    for i, (fp, proto) in enumerate(zip(plans, protocols, strict=True)):
        groups.setdefault((fp.task, proto.model_dump_json(), fp.template_hash), []).append(i)

    backend = f"import:{fmt}"
    units: list[PlannedImport] = []
    for (task, _, th), members in groups.items():
        proto = protocols[members[0]]
        owner: dict[str, Path] = {}
        for i in members:
            for pid in plans[i].problems:
                if pid in owner:
                    raise UsageError(
                        f"problem {pid!r} of task {task} is in both {owner[pid]} and {plans[i].file.path} (same "
                        "protocol and prompt template); import them separately. Nothing was stored."
                    )
                owner[pid] = plans[i].file.path
        group = [plans[i] for i in members]
        shas = sorted(fp.file.sha256[:16] for fp in group)
        spec = UnitSpec(
            checkpoint=ref,
            task=task,
            data_hash=data_hash(problems[task]),
            template_id=TEMPLATE_ID,
            template_hash=th,
            protocol=proto,
            backend=backend,
            engine_args={"source_sha256": "+".join(shas)},
        )
        unit_models = {fp.file.model for fp in group if fp.file.model}
        source = ImportSource(
            format=fmt,
            files=[str(fp.file.path) for fp in group],
            file_sha256=[fp.file.sha256 for fp in group],
            model=next(iter(unit_models)) if len(unit_models) == 1 else None,
            metrics=_combined_metrics([(fp.file.metrics, fp.file.n_items) for fp in group]),
            tool_version=_shared([fp.file.tool_version for fp in group]),
            task_config_hash=_shared([fp.file.task_config_hash for fp in group]),
            items=sum(fp.file.n_items for fp in group),
            unmatched=sum(fp.n_unmatched for fp in group),
            gold_mismatches=sum(fp.n_gold for fp in group),
            base_given=options.base.strip() if options.base is not None else None,
        )
        target, extends = _existing_target(store, spec, group)
        if target is not None and target.imported is not None:
            spec = target.spec
            if extends == "shards":
                old = target.imported
                source = source.model_copy(
                    update={
                        "files": [*old.files, *source.files],
                        "file_sha256": [*old.file_sha256, *source.file_sha256],
                        "model": old.model if old.model == source.model else None,
                        "metrics": _combined_metrics([(old.metrics, old.items), (source.metrics, source.items)]),
                        "items": old.items + source.items,
                        "unmatched": old.unmatched + source.unmatched,
                        "gold_mismatches": old.gold_mismatches + source.gold_mismatches,
                        "base_given": source.base_given or old.base_given,
                        "tool_version": _shared([old.tool_version, source.tool_version]),
                        "task_config_hash": _shared([old.task_config_hash, source.task_config_hash]),
                    }
                )
            else:
                source = target.imported
        info = UnitInfo(
            key=spec.key,
            spec=spec,
            task_display=specs[task].settings.display_name,
            n_problems_total=len(problems[task]),
            source=backend.replace("import:", "imported:"),
            imported=source,
            family=descr.family,
            family_display=descr.family_display,
            base=descr.base,
            reward=descr.reward,
            step=descr.step,
        )
        units.append(
            PlannedImport(info=info, problems=problems[task], files=group, n_problems=len(owner), extends=extends)
        )
    return ImportPlan(
        format=fmt,
        checkpoint_id=ref.checkpoint_id,
        new_checkpoint=new,
        units=units,
        unmatched=unmatched,
        gold_mismatches=[f"{where}: {what}" for where, what, _ in gold.shown],
        n_unmatched=n_unmatched,
        n_gold_mismatches=gold.count,
    )


def _store_samples(u: PlannedImport, importer: ImportFormat, store: Store, progress: Progress, task_id: Any) -> int:
    """Pass 2 for one unit: read its files again and store every matched sample, in batches."""
    stored = 0
    spec = u.info.spec
    backend = spec.backend
    batch: list[Generation] = []
    for fp in u.files:
        header, items = importer.stream(fp.file.path)
        position = 0
        for item in items:
            if position >= len(fp.problem_of):
                raise UsageError(f"{fp.file.path}: changed while it was being imported (it grew); import it again")
            pid = fp.problem_of[position]
            position += 1
            if pid is None:
                continue
            prompt = item.prompt if item.prompt is not None else item.texts[0]
            phash = stable_hash(prompt)
            for sample_idx, completion in enumerate(item.completions):
                batch.append(
                    Generation(
                        unit_key=u.key,
                        checkpoint_id=spec.checkpoint.checkpoint_id,
                        task=spec.task,
                        problem_id=pid,
                        template_id=TEMPLATE_ID,
                        sample_idx=sample_idx,
                        seed=spec.protocol.seed,
                        prompt=prompt,
                        prompt_hash=phash,
                        completion=completion,
                        finish_reason="unknown",
                        n_tokens=None,
                        backend=backend,
                    )
                )
            if len(batch) >= BATCH:
                stored += store.append_generations(u.key, batch)
                progress.advance(task_id, len(batch))
                batch = []
        if header.sha256 != fp.file.sha256 or position != len(fp.problem_of):
            raise UsageError(f"{fp.file.path}: changed while it was being imported; import it again")
    if batch:
        stored += store.append_generations(u.key, batch)
        progress.advance(task_id, len(batch))
    return stored


def write_import(plan: ImportPlan, store: Store, *, progress: Progress) -> ImportResult:
    """Store a planned import (pass 2): the task's problems, the unit files, and every sample not
    yet stored. On any failure, what this import wrote is taken back (see the module docstring)."""
    importer = get_format(plan.format)
    task_id = progress.add_task("storing", total=sum(u.n_samples for u in plan.units))
    out: list[ImportedUnit] = []
    undo: list[Callable[[], None]] = []
    try:
        for u in plan.units:
            problems_path = store.problems_path(u.info.spec.data_hash)
            if not problems_path.exists():
                store.save_problems(u.info.spec.data_hash, u.problems)
                undo.append(partial(store.remove_file, problems_path))
            mark = store.generations_mark(u.key)
            if mark is None:  # a new unit: unit.json first (records never stand without it)
                store.ensure_unit(u.info)
                undo.append(partial(store.remove_unit, u.key))
            else:
                undo.append(partial(store.cut_generations, u.key, mark))
            stored = _store_samples(u, importer, store, progress, task_id)
            if mark is not None:  # an existing unit learns about its new files once they are stored
                store.ensure_unit(u.info)
            out.append(
                ImportedUnit(
                    key=u.key,
                    checkpoint_id=plan.checkpoint_id,
                    task=u.info.spec.task,
                    files=[str(fp.file.path) for fp in u.files],
                    n_problems=u.n_problems,
                    n_samples=u.info.spec.protocol.n,
                    imported=stored,
                    already_stored=u.n_samples - stored,
                    metrics=u.info.imported.metrics if u.info.imported else [],
                    extends=u.extends,
                )
            )
    except BaseException:
        for step in reversed(undo):
            try:
                step()
            except Exception as exc:  # keep undoing the rest; the first error is the one to report
                log.warning("could not take back part of the failed import: %s", exc)
        raise
    return ImportResult(plan=plan, units=out)
