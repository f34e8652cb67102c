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
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from ..core.errors import UnknownNameError, UsageError
from ..core.records import (
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
from .base import ImportFormat, SourceFile, SourceItem
from .formats import get_format
from .matching import MatchOutcome, ProblemIndex, normalise, same_gold

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
    """New-token limit, for files that record none (default: the writing tool's default)."""


@dataclass
class PlannedImport:
    """One unit to store: its info, the task's problems and the generations to append."""

    info: UnitInfo
    """What goes to ``unit.json``."""
    problems: list[Problem] = field(repr=False)
    """All problems of the task (stored once per task version)."""
    generations: list[Generation] = field(repr=False)
    """Every imported sample of the unit."""
    n_problems: int = 0
    """Problems matched."""

    @property
    def key(self) -> str:
        """The unit key."""
        return self.info.key


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
    """Items matching no task problem (``file: item: text``), skipped under ``allow_unmatched``."""
    gold_mismatches: list[str]
    """Matched items whose gold answer differs from the task file's."""


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
    """Source files."""
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
            lines.append(
                f"{u.checkpoint_id} · {u.task}: {u.n_problems} problems x {u.n_samples} "
                f"sample{'s' if u.n_samples != 1 else ''} "
                f"from {', '.join(Path(f).name for f in u.files)} (source: {numbers}); unit {u.key}"
            )
        if self.plan.unmatched:
            lines.append(
                f"skipped {len(self.plan.unmatched)} items matching no task problem: "
                + "; ".join(self.plan.unmatched[:SHOWN])
                + (" ..." if len(self.plan.unmatched) > SHOWN else "")
            )
        if self.plan.gold_mismatches:
            lines.append(
                f"{len(self.plan.gold_mismatches)} items have a gold answer other than the task file's "
                "(graded against the task file's): "
                + "; ".join(self.plan.gold_mismatches[:SHOWN])
                + (" ..." if len(self.plan.gold_mismatches) > SHOWN else "")
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
    if cid in registry.checkpoints:
        ck = registry.checkpoints[cid]
        ref = ck.ref()
        descr = _Descriptive(ck.family, ck.family_display, ck.base, ck.reward, ck.step)
        new = False
    else:
        if not _CHECKPOINT_ID.match(cid):
            raise UsageError(
                f"--checkpoint {options.checkpoint!r} is not a registry id and not a valid new id: use letters, "
                "digits and . _ + - in parts separated by '/', e.g. 'qwen2.5-math-7b/my-run' "
                "(registry ids: see `rlvr-audit ls checkpoints`)"
            )
        prefix = cid.split("/", 1)[0] if "/" in cid else None
        family = next((c for c in registry.checkpoints.values() if c.family == prefix), None)
        ref = CheckpointRef(checkpoint_id=cid, model=source_model or cid)
        if family is not None:
            descr = _Descriptive(family.family, family.family_display, None, None, None)
        else:
            descr = _Descriptive(*IMPORTED_FAMILY, None, None, None)
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
    if file.benchmark:
        b = file.benchmark.strip()
        named = TASK_ALIASES.get(b.lower()) or (b if b in valid else None)
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
    """The sampling protocol: the file's settings, else the options, else the format's defaults."""
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
                f"{file.path}: the file records max_new_tokens {tokens}, but --max-new-tokens "
                f"{options.max_new_tokens} was given"
            )
        tokens = options.max_new_tokens
    try:
        return SamplingProtocol(
            n=file.n,
            temperature=t,
            top_p=file.top_p if file.top_p is not None else fmt.default_top_p,
            max_new_tokens=tokens if tokens is not None else fmt.default_max_new_tokens,
            seed=file.seed or 0,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        raise UsageError(f"{file.path}: invalid sampling protocol: {where}: {err['msg']}") from None


def _template_hash(
    file: SourceFile, matched: list[tuple[SourceItem, Problem, MatchOutcome]], index: ProblemIndex
) -> str:
    """Hash of the prompt templates the file's prompts follow (problem text cut out)."""
    templates: set[str] = set()
    for item, problem, _ in matched:
        if item.prompt is None:
            continue
        prompt = normalise(item.prompt)
        question = index.question(problem)
        templates.add(prompt.replace(question, "{problem}", 1) if question in prompt else prompt)
    return stable_hash({"prompt_style": file.prompt_style, "templates": sorted(templates)})


def _frame(
    file: SourceFile, matched: list[tuple[SourceItem, Problem, MatchOutcome]], index: ProblemIndex
) -> tuple[str, str]:
    """The template words around the problem in this file's item texts (normalised), so that
    messages can show the problem part of an unmatched item: taken from a matched item whose
    text holds its problem, else the common prefix and suffix of all items' texts."""
    for _, problem, outcome in matched:
        if outcome.kind == "contained" and outcome.text is not None:
            pre, _, post = outcome.text.partition(index.question(problem))
            return pre, post
    texts = [normalise(item.texts[0]) for item in file.items]
    if len(texts) < 2:
        return "", ""
    pre = _common_prefix(texts)
    post = _common_prefix([t[len(pre) :][::-1] for t in texts])[::-1]
    return pre, post


def _common_prefix(texts: list[str]) -> str:
    """The longest string every text starts with."""
    first, last = min(texts), max(texts)
    i = 0
    while i < min(len(first), len(last)) and first[i] == last[i]:
        i += 1
    return first[:i]


def _excerpt(text: str, frame: tuple[str, str] = ("", ""), limit: int = 70) -> str:
    """A short quote of an item's problem part (template words of ``frame`` cut off)."""
    t = normalise(text)
    pre, post = frame
    if pre and t.startswith(pre):
        t = t[len(pre) :]
    if post and t.endswith(post):
        t = t[: len(t) - len(post)]
    t = t.strip() or normalise(text)
    return repr(t if len(t) <= limit else t[: limit - 3] + "...")


def _combined_metrics(files: list[SourceFile]) -> list[SourceMetric]:
    """The source's metrics of a unit: a file's own, or for several files (shards), the
    item-weighted mean of each metric every file reports."""
    if len(files) == 1:
        return list(files[0].metrics)
    first = files[0].metrics
    out = []
    for m in first:
        parts = [next((x for x in f.metrics if x.name == m.name and x.metric == m.metric), None) for f in files]
        if any(p is None for p in parts):
            continue
        weights = [len(f.items) for f in files]
        value = sum(p.value * w for p, w in zip(parts, weights, strict=True) if p is not None) / sum(weights)
        out.append(
            SourceMetric(
                name=m.name,
                value=min(1.0, max(0.0, value)),
                metric=m.metric,
                origin=f"item-weighted mean of each file's {m.name!r} over {len(files)} files",
            )
        )
    return out


# ---- plan and write ---------------------------------------------------------------------------
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
    """Read, validate and match everything; build every record. Writes nothing.

    Raises :class:`~rlvr_audit.core.errors.UsageError` for an unknown format, a file in another
    format (naming the file, the format and the missing field), an unknown task or base,
    contradictory settings, a problem imported twice, and unmatched items (unless
    ``options.allow_unmatched``; a file with no matched item is refused either way).
    """
    importer = get_format(fmt)
    if not paths:
        raise UsageError(f"no files given: name the {fmt} files to import")
    if options.max_new_tokens is not None and options.max_new_tokens < 1:
        raise UsageError(f"--max-new-tokens must be >= 1, got {options.max_new_tokens}")
    if options.temperature is not None and options.temperature < 0:
        raise UsageError(f"--temperature must be >= 0, got {options.temperature}")
    seen_paths: dict[Path, Path] = {}
    for p in paths:
        resolved = p.resolve()
        if resolved in seen_paths:
            raise UsageError(f"{p}: given twice")
        seen_paths[resolved] = p
    valid_tasks = available_tasks(config_dir)
    if options.task is not None and options.task not in valid_tasks:
        raise UnknownNameError("task", options.task, valid_tasks)

    read_id = progress.add_task(f"reading {fmt} files", total=len(paths))
    files: list[SourceFile] = []
    by_sha: dict[str, Path] = {}
    for p in paths:
        f = importer.read(p)
        if f.sha256 in by_sha:
            raise UsageError(f"{p}: has the same contents as {by_sha[f.sha256]}; import it once")
        by_sha[f.sha256] = p
        files.append(f)
        progress.advance(read_id)

    models = {f.model for f in files if f.model}
    ref, descr, new = _resolve_checkpoint(options, registry, store, next(iter(models)) if len(models) == 1 else None)
    file_tasks = [_resolve_task(f, options.task, valid_tasks) for f in files]
    protocols = [_resolve_protocol(f, importer, options) for f in files]
    specs: dict[str, TaskSpec] = {}
    problems: dict[str, list[Problem]] = {}
    indexes: dict[str, ProblemIndex] = {}
    for t in file_tasks:
        if t not in specs:
            specs[t] = load_task(t, config_dir)
            problems[t] = load_problems(specs[t], data_dir=data_dir)
            indexes[t] = ProblemIndex(problems[t])

    match_id = progress.add_task("matching problems by text", total=sum(len(f.items) for f in files))
    unmatched: list[str] = []
    mismatched: list[str] = []
    per_file: list[list[tuple[SourceItem, Problem, MatchOutcome]]] = []
    per_file_unmatched: list[int] = []
    per_file_gold: list[int] = []
    for f, task in zip(files, file_tasks, strict=True):
        index = indexes[task]
        matched: list[tuple[SourceItem, Problem, MatchOutcome]] = []
        first_item: dict[str, SourceItem] = {}
        n_gold = 0
        missed: list[tuple[SourceItem, MatchOutcome]] = []
        for item in f.items:
            outcome = index.match(item.texts)
            progress.advance(match_id)
            if outcome.problem is None:
                missed.append((item, outcome))
                continue
            pid = outcome.problem.problem_id
            if pid in first_item:
                raise UsageError(
                    f"{f.path}: {item.ref} and {first_item[pid].ref} are both problem {pid!r} of task {task}; "
                    "a file must hold each problem once. Nothing was stored."
                )
            first_item[pid] = item
            if item.gold is not None and not same_gold(item.gold, outcome.problem.answer):
                n_gold += 1
                mismatched.append(
                    f"{f.path.name}: {item.ref} ({pid}): file says {item.gold!r}, task file says "
                    f"{outcome.problem.answer!r}"
                )
            matched.append((item, outcome.problem, outcome))
        frame = _frame(f, matched, index)
        if not matched:
            raise UsageError(
                f"{f.path}: none of its {len(f.items)} items matches a problem of task {task} by text "
                f"(first: {_excerpt(f.items[0].texts[0], frame)}); is it for another task? Nothing was stored."
            )
        for item, outcome in missed:
            why = f" (fits {', '.join(outcome.candidates)} equally)" if outcome.kind == "ambiguous" else ""
            unmatched.append(f"{f.path.name}: {item.ref}: {_excerpt(item.texts[0], frame)}{why}")
        per_file.append(matched)
        per_file_unmatched.append(len(missed))
        per_file_gold.append(n_gold)
    if unmatched and not options.allow_unmatched:
        total = sum(len(f.items) for f in files)
        raise UsageError(
            f"{len(unmatched)} of {total} items match no task problem by text: "
            + "; ".join(unmatched[:SHOWN])
            + (f"; ... ({len(unmatched) - SHOWN} more)" if len(unmatched) > SHOWN else "")
            + ". Nothing was stored. Check the task (--task), or pass --allow-unmatched to import the matched items."
        )

    # group files into units: same task, protocol and prompt template
    groups: dict[tuple[str, str, str], list[int]] = {}
    hashes = [_template_hash(f, m, indexes[t]) for f, m, t in zip(files, per_file, file_tasks, strict=True)]
    for i, (task, proto, th) in enumerate(zip(file_tasks, protocols, hashes, strict=True)):
        groups.setdefault((task, proto.model_dump_json(), th), []).append(i)

    backend = f"import:{fmt}"
    units: list[PlannedImport] = []
    for (task, _, th), members in groups.items():
        proto = protocols[members[0]]
        owner: dict[str, Path] = {}
        for i in members:
            for _, problem, _ in per_file[i]:
                if problem.problem_id in owner:
                    raise UsageError(
                        f"problem {problem.problem_id!r} of task {task} is in both {owner[problem.problem_id]} and "
                        f"{files[i].path} (same protocol and prompt template); import them separately. "
                        "Nothing was stored."
                    )
                owner[problem.problem_id] = files[i].path
        group_files = [files[i] for i in members]
        shas = sorted(f.sha256[:16] for f in group_files)
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
        unit_models = {f.model for f in group_files if f.model}
        source = ImportSource(
            format=fmt,
            files=[str(f.path) for f in group_files],
            file_sha256=[f.sha256 for f in group_files],
            model=next(iter(unit_models)) if len(unit_models) == 1 else None,
            metrics=_combined_metrics(group_files),
            items=sum(len(f.items) for f in group_files),
            unmatched=sum(per_file_unmatched[i] for i in members),
            gold_mismatches=sum(per_file_gold[i] for i in members),
            base_given=options.base.strip() if options.base is not None else None,
        )
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
        gens: list[Generation] = []
        for i in members:
            for item, problem, _ in per_file[i]:
                prompt = item.prompt if item.prompt is not None else item.texts[0]
                phash = stable_hash(prompt)
                for sample_idx, completion in enumerate(item.completions):
                    gens.append(
                        Generation(
                            unit_key=spec.key,
                            checkpoint_id=ref.checkpoint_id,
                            task=task,
                            problem_id=problem.problem_id,
                            template_id=TEMPLATE_ID,
                            sample_idx=sample_idx,
                            seed=proto.seed,
                            prompt=prompt,
                            prompt_hash=phash,
                            completion=completion,
                            finish_reason="unknown",
                            n_tokens=None,
                            backend=backend,
                        )
                    )
        units.append(PlannedImport(info=info, problems=problems[task], generations=gens, n_problems=len(owner)))
    return ImportPlan(
        format=fmt,
        checkpoint_id=ref.checkpoint_id,
        new_checkpoint=new,
        units=units,
        unmatched=unmatched,
        gold_mismatches=mismatched,
    )


def write_import(plan: ImportPlan, store: Store, *, progress: Progress) -> ImportResult:
    """Store a planned import: unit files, the task's problems, and every sample not yet stored."""
    task_id = progress.add_task("storing", total=sum(len(u.generations) for u in plan.units))
    out: list[ImportedUnit] = []
    for u in plan.units:
        store.ensure_unit(u.info)
        store.save_problems(u.info.spec.data_hash, u.problems)
        have = {(g.problem_id, g.sample_idx) for g in store.read_generations(u.key)}
        new = [g for g in u.generations if (g.problem_id, g.sample_idx) not in have]
        store.append_generations(u.key, new)
        progress.advance(task_id, len(u.generations))
        source = u.info.imported
        out.append(
            ImportedUnit(
                key=u.key,
                checkpoint_id=plan.checkpoint_id,
                task=u.info.spec.task,
                files=source.files if source else [],
                n_problems=u.n_problems,
                n_samples=u.info.spec.protocol.n,
                imported=len(new),
                already_stored=len(u.generations) - len(new),
                metrics=source.metrics if source else [],
            )
        )
    return ImportResult(plan=plan, units=out)
