"""What the responses *do*, per unit and per comparison: code reasoning, strategy transitions, behaviour flags.

Detection lives in :mod:`rlvr_audit.analysis.behaviour` (what counts as code reasoning, truncation,
degenerate repetition, a missing boxed answer; nothing is ever executed). This module applies it
to the stored generations of a report (its sections are :mod:`rlvr_audit.analysis.code_sections`);
it reads only the store and the report's :class:`~rlvr_audit.analysis.estimates.Analysis`.

Each stored response is classified once (:func:`~rlvr_audit.analysis.behaviour.response_behaviour`,
every code definition at once) and the classification kept as columns in the store's column
cache (:func:`behaviour_derivation`, :mod:`rlvr_audit.core.columns`; rebuilt when the unit's
generations or the classifier change), so the next report of an unchanged unit reads it instead;
the per-unit summaries, transition tables, step series and gain anatomies work on those arrays
(:class:`~rlvr_audit.analysis.behaviour_stats.ResponseColumns`). Intervals are problem-clustered
percentile bootstraps (:func:`~rlvr_audit.analysis.behaviour_stats.summarize_columns`, one pass for
every definition) with ``n_resamples`` replicates at ``level``,
seeded from the report seed, the task version and the set of problems summarised, so every
summary over the same problems (of any unit, grader or definition) resamples the same problems.

What is computed:

- **Behaviour flags** per unit, over all its stored responses (no grader involved): truncation
  rate (generation stopped at the token limit), degenerate repetition rate, empty-response
  rate, boxed-nothing rate (no non-blank final ``\\boxed{}``), each with its interval, and the
  mean response length in tokens (over responses whose token count is known).
- **Code reasoning** per unit, grader and code definition, over the problems the unit has
  complete under that grader (the problems of its reproduction-table estimate): code
  frequency, accuracy, accuracy given code, accuracy given language and their difference,
  with intervals (:class:`~rlvr_audit.analysis.behaviour_stats.UnitBehaviour` defines each).
- **Strategy transitions** for every RLVR-vs-base comparison of the analysis (same task,
  template, protocol and grader; the problems both units have complete): the paper's Table 2
  (:func:`~rlvr_audit.analysis.behaviour_stats.transition_table`): per cell Code->Code, Code->Lang, Lang->Code,
  Lang->Lang the number of problems, accuracy before and after, and its contribution to and
  share of the gain.
- **Across training steps**: when one run has several steps registered (RLVR checkpoints of
  one family and reward with two or more distinct ``step`` values, in one task, template,
  protocol and grader), code frequency and accuracy against step, with the base model at its
  registered step (0 when none) from the comparisons; a figure and a table.

One module, one concept (over 800 lines): every per-response behaviour summary of a report reads
the same classified columns through one cache and one bootstrap plan, so the flags, the code
reasoning, the transitions and the step series stay consistent over exactly the same problems.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..core.columns import Derivation, generation_columns
from ..core.records import Comparison, Generation
from ..core.section import (
    Code,
    Text,
)
from ..core.store import Store, UnitInfo
from ..core.ui import Progress
from . import behaviour as _behaviour_module
from . import stats
from .anatomy import ComparisonAnatomy, gain_anatomy_columns
from .behaviour import (
    CODE_DEFINITIONS,
    DEFAULT_DEFINITION,
    get_definition,
    response_behaviour,
)
from .behaviour_stats import (
    ResponseColumns,
    TransitionTable,
    UnitBehaviour,
    summarize_columns,
    summarize_definitions,
    transition_columns,
)
from .estimates import Analysis, UnitMatrix
from .sweep import protocol_label

log = logging.getLogger(__name__)

FLAG_COLUMNS = [
    "checkpoint",
    "task",
    "prompt",
    "protocol",
    "n_problems",
    "n_responses",
    "truncation_rate",
    "truncation_ci_low",
    "truncation_ci_high",
    "repetition_rate",
    "repetition_ci_low",
    "repetition_ci_high",
    "empty_rate",
    "empty_ci_low",
    "empty_ci_high",
    "boxed_nothing_rate",
    "boxed_nothing_ci_low",
    "boxed_nothing_ci_high",
    "mean_tokens",
    "n_tokens_known",
    "level",
    "method",
    "unit_key",
]
"""Columns of ``tables/behaviour_flags.csv``: one row per unit (rates as fractions)."""

CODE_COLUMNS = [
    "checkpoint",
    "task",
    "prompt",
    "protocol",
    "grader",
    "definition",
    "n_problems",
    "n_responses",
    "n_code",
    "n_language",
    "code_frequency",
    "code_ci_low",
    "code_ci_high",
    "accuracy",
    "accuracy_ci_low",
    "accuracy_ci_high",
    "accuracy_code",
    "accuracy_code_ci_low",
    "accuracy_code_ci_high",
    "accuracy_language",
    "accuracy_language_ci_low",
    "accuracy_language_ci_high",
    "code_minus_language",
    "code_minus_language_ci_low",
    "code_minus_language_ci_high",
    "level",
    "method",
    "unit_key",
]
"""Columns of ``tables/code_reasoning.csv``: one row per unit, grader and code definition."""

TRANSITION_COLUMNS = [
    "checkpoint",
    "base",
    "task",
    "prompt",
    "grader",
    "definition",
    "n_problems",
    "acc_before",
    "acc_after",
    "gain",
    "transition",
    "cell_problems",
    "cell_acc_before",
    "cell_acc_after",
    "contribution",
    "share",
    "treatment_unit",
    "baseline_unit",
]
"""Columns of ``tables/code_transitions.csv``: four rows (cells) per comparison and definition."""

STEP_COLUMNS = [
    "family",
    "reward",
    "task",
    "prompt",
    "protocol",
    "grader",
    "definition",
    "step",
    "checkpoint",
    "code_frequency",
    "code_ci_low",
    "code_ci_high",
    "accuracy",
    "accuracy_ci_low",
    "accuracy_ci_high",
    "unit_key",
]
"""Columns of ``tables/code_steps.csv``: one row per training step of each run."""


@dataclass(frozen=True)
class UnitCode:
    """Code reasoning of one unit under one grader and one code definition."""

    info: UnitInfo
    """The unit."""
    grader_id: str
    """Grader whose verdicts give the accuracies."""
    summary: UnitBehaviour
    """Rates and intervals over the unit's complete problems under that grader."""

    @property
    def definition(self) -> str:
        """The code definition."""
        return self.summary.definition


@dataclass(frozen=True)
class UnitFlags:
    """Behaviour flags of one unit over all its stored responses."""

    info: UnitInfo
    """The unit."""
    summary: UnitBehaviour
    """Its summary without correctness (flag rates, mean tokens)."""


@dataclass(frozen=True)
class Transition:
    """The strategy-transition table of one Analysis comparison under one code definition."""

    comparison: Comparison
    """The RLVR-vs-base comparison (units, task, template, grader)."""
    table: TransitionTable
    """Its transition table."""


@dataclass(frozen=True)
class StepPoint:
    """One training step of a run."""

    step: int
    """Training step (the base model's registered step, 0 when none)."""
    checkpoint_id: str
    """Checkpoint at that step."""
    unit_key: str
    """Its unit."""
    code_frequency: stats.Interval
    """Share of code-reasoning responses."""
    accuracy: stats.Interval
    """Share of responses graded correct (avg@k)."""


@dataclass
class StepSeries:
    """Code frequency and accuracy against training step for one run in one setting."""

    family: str
    """Family id."""
    family_display: str
    """Family display name."""
    reward: str
    """RLVR reward of the run."""
    task: str
    """Task id."""
    task_display: str
    """Benchmark display name."""
    template_id: str
    """Prompt template."""
    protocol: str
    """Sampling protocol, in words."""
    grader_id: str
    """Grader of the accuracies."""
    definition: str
    """Code definition."""
    points: list[StepPoint] = field(default_factory=list)
    """By increasing step; the base first when it was evaluated in the same setting."""

    @property
    def title(self) -> str:
        """A title for the series (plain text)."""
        return (
            f"{self.family_display}, reward {self.reward}: {self.task_display}, {self.template_id}, "
            f"grader {self.grader_id}"
        )

    @property
    def heading(self) -> Text:
        """A heading for the series (ids as code)."""
        return [
            f"{self.family_display}, reward {self.reward}: {self.task_display}, ",
            Code(self.template_id),
            ", grader ",
            Code(self.grader_id),
        ]


@dataclass
class CodeReport:
    """Everything the code-reasoning and behaviour-flag sections show."""

    flags: list[UnitFlags]
    """Per analysed unit."""
    code: list[UnitCode]
    """Per analysed unit, grader and definition."""
    transitions: list[Transition]
    """Per comparison and definition."""
    steps: list[StepSeries]
    """Runs with several registered steps (default definition)."""
    level: float
    """Confidence level."""
    n_resamples: int
    """Bootstrap replicates."""
    anatomies: list[ComparisonAnatomy] = field(default_factory=list)
    """Gain anatomy per comparison (default definition; :mod:`rlvr_audit.analysis.anatomy`)."""


def _rng(seed: int, data_hash: str, problem_ids: Sequence[str]) -> np.random.Generator:
    """The bootstrap generator of a summary: seeded from the report seed, the task version and
    the set of problems summarised, so every summary over the same problems (any unit, grader
    or definition) resamples the same problems."""
    problems = "\n".join(sorted(set(problem_ids)))
    digest = hashlib.sha256(f"code_report\n{data_hash}\n{problems}".encode()).hexdigest()
    return np.random.default_rng(np.random.SeedSequence([seed, int(digest[:12], 16), int(digest[12:24], 16)]))


_FLAG_NAMES = ("truncated", "repetition", "empty", "boxed_nothing", "truncation_known")


def _classify(generations: list[Generation]) -> dict[str, list[object]]:
    """:func:`~rlvr_audit.analysis.behaviour.response_behaviour` of each generation, as columns."""
    behaviours = [response_behaviour(g) for g in generations]
    out: dict[str, list[object]] = {f"code_{name}": [b.code[name] for b in behaviours] for name in CODE_DEFINITIONS}
    for name in _FLAG_NAMES:
        out[name] = [getattr(b.flags, name) for b in behaviours]
    return out


def _behaviour_version() -> str:
    """A version of the classification: a hash of the module that defines it."""
    source = Path(_behaviour_module.__file__).read_bytes()
    return hashlib.sha256(source).hexdigest()[:16]


def behaviour_derivation() -> Derivation:
    """The behaviour classification of each response, as cached columns of the store
    (:mod:`rlvr_audit.core.columns`): ``code_<definition>`` per code definition and the flags."""
    columns = {f"code_{name}": "bool" for name in CODE_DEFINITIONS} | {name: "bool" for name in _FLAG_NAMES}
    return Derivation(name="behaviour", version=_behaviour_version(), columns=columns, compute=_classify)


def unit_columns(store: Store, info: UnitInfo) -> ResponseColumns | None:
    """A unit's classified responses (samples below its ``k``), sorted by problem and sample;
    ``None`` if it has none. Read from the store's column cache when current."""
    frame = generation_columns(store, info.key, behaviour_derivation())
    frame = frame[frame["sample_idx"] < info.spec.protocol.n]
    if frame.empty:
        return None
    first = frame.iloc[0]  # the unit's names, from its first record in file order
    frame = frame.sort_values(["problem_id", "sample_idx"], kind="stable")
    codes, row = np.unique(frame["problem_id"].to_numpy(dtype=object).astype(str), return_inverse=True)
    return ResponseColumns(
        unit_key=info.key,
        checkpoint_id=str(first["checkpoint_id"]),
        task=str(first["task"]),
        template_id=str(first["template_id"]),
        problem_ids=[str(c) for c in codes],
        row=row.astype(np.int64),
        sample_idx=frame["sample_idx"].to_numpy(dtype=np.int64),
        code={name: frame[f"code_{name}"].to_numpy(dtype=bool) for name in CODE_DEFINITIONS},
        truncated=frame["truncated"].to_numpy(dtype=bool),
        repetition=frame["repetition"].to_numpy(dtype=bool),
        empty=frame["empty"].to_numpy(dtype=bool),
        boxed_nothing=frame["boxed_nothing"].to_numpy(dtype=bool),
        truncation_known=frame["truncation_known"].to_numpy(dtype=bool),
        n_tokens=frame["n_tokens"].fillna(-1).to_numpy(dtype=np.int64),
    )


PARALLEL_MIN_BYTES = 4 << 20
"""Classify in worker processes only when the generation files to read exceed this many bytes
(below it, starting processes costs more than it saves)."""


@dataclass(frozen=True)
class _Graded:
    """One grader's verdicts of a unit: the complete problems and their 0/1 matrix."""

    grader_id: str
    problem_ids: tuple[str, ...]
    correct: np.ndarray


@dataclass(frozen=True)
class _UnitJob:
    """Everything one unit's work needs (picklable: it may run in a worker process)."""

    store_root: Path
    info: UnitInfo
    selected: bool
    keep: bool
    graded: tuple[_Graded, ...]
    definitions: tuple[str, ...]
    seed: int
    n_resamples: int
    level: float


@dataclass
class _UnitResult:
    """What one unit's work gives back."""

    key: str
    flags: UnitBehaviour | None = None
    code: dict[tuple[str, str], UnitBehaviour] = field(default_factory=dict)
    columns: ResponseColumns | None = None
    """The classified responses; only for units in a comparison."""


def _restricted(cols: ResponseColumns, graded: _Graded) -> tuple[ResponseColumns, np.ndarray] | None:
    """The responses of the graded (complete) problems and their correctness (``None`` if none)."""
    rows = {pid: i for i, pid in enumerate(graded.problem_ids)}
    graded_row = np.array([rows.get(pid, -1) for pid in cols.problem_ids], dtype=np.int64)[cols.row]
    mask = graded_row >= 0
    if not mask.any():
        return None
    correct = graded.correct[graded_row[mask], cols.sample_idx[mask]].astype(bool)
    return cols.take(mask), correct


def _unit_work(job: _UnitJob) -> _UnitResult:
    """Read one unit's classified responses (classifying each once, or from the store's column
    cache), and summarise them (flags over all responses; code reasoning per grader and
    definition over the complete problems)."""
    info = job.info
    cols = unit_columns(Store(job.store_root), info)
    result = _UnitResult(info.key)
    if cols is None:
        return result

    def summary(
        some: ResponseColumns, correct: np.ndarray | None = None, definition: str = DEFAULT_DEFINITION
    ) -> UnitBehaviour:
        return summarize_columns(
            some,
            rng=_rng(job.seed, info.spec.data_hash, some.problem_ids),
            correct=correct,
            definition=definition,
            n_resamples=job.n_resamples,
            level=job.level,
        )

    for graded in job.graded:
        restricted = _restricted(cols, graded)
        if restricted is not None:
            sub, correct = restricted
            many = summarize_definitions(
                sub,
                rng=_rng(job.seed, info.spec.data_hash, sub.problem_ids),
                correct=correct,
                definitions=job.definitions,
                n_resamples=job.n_resamples,
                level=job.level,
            )
            for d in job.definitions:
                result.code[(graded.grader_id, d)] = many[d]
    if job.selected:
        # a summary over every response already holds the flags (same problems, same resampling)
        full = [s for s in result.code.values() if s.n_responses == len(cols)]
        result.flags = full[0] if full else summary(cols)
    if job.keep:
        result.columns = cols
    return result


def _run_jobs(jobs: list[_UnitJob], workers: int, progress: Progress | None) -> dict[str, _UnitResult]:
    """Run the jobs, in worker processes when it pays (see :data:`PARALLEL_MIN_BYTES`)."""
    task = progress.add_task("classifying responses", total=len(jobs)) if progress is not None else None

    def done(job: _UnitJob) -> None:
        if progress is not None and task is not None:
            s = job.info.spec
            progress.update(task, description=f"classified {s.checkpoint.checkpoint_id} · {s.task} · {s.template_id}")
            progress.advance(task)

    size = 0
    for job in jobs:
        path = Store(job.store_root).generations_path(job.info.key)
        size += path.stat().st_size if path.exists() else 0
    results: dict[str, _UnitResult] = {}
    n = min(workers, len(jobs))
    if n <= 1 or size < PARALLEL_MIN_BYTES:
        for job in jobs:
            results[job.info.key] = _unit_work(job)
            done(job)
        return results
    pool = ProcessPoolExecutor(max_workers=n)
    try:
        futures = {pool.submit(_unit_work, job): job for job in jobs}
        for future in as_completed(futures):
            results[futures[future].info.key] = future.result()
            done(futures[future])
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return results


def build_code_report(
    analysis: Analysis,
    store: Store,
    *,
    seed: int = 0,
    n_resamples: int = 10_000,
    level: float = 0.95,
    definitions: Sequence[str] = tuple(CODE_DEFINITIONS),
    workers: int | None = None,
    progress: Progress | None = None,
) -> CodeReport:
    """Classify every stored response of the analysed units (and of the bases they are compared
    with) once, and summarise them (see the module docstring).

    Args:
        analysis: The report's analysis.
        store: The store it read.
        seed: Report seed.
        n_resamples: Bootstrap replicates.
        level: Confidence level.
        definitions: Code definitions to summarise (keys of
            :data:`~rlvr_audit.analysis.behaviour.CODE_DEFINITIONS`); the first drives the step series.
        workers: Processes that classify and summarise units in parallel (``None``: one per
            CPU; 1: none). Small stores (:data:`PARALLEL_MIN_BYTES`) are done in this process.
            The results do not depend on it.
        progress: A rich progress display to show the work on (one step per unit).

    Raises:
        UnknownNameError: an unknown definition (naming the valid ones).
        ValueError: bad ``n_resamples``, ``level`` or ``workers``, or no definition.
    """
    if not definitions:
        raise ValueError(f"definitions is empty; valid: {', '.join(CODE_DEFINITIONS)}")
    for d in definitions:
        get_definition(d)
    stats.check_bootstrap_options(n_resamples=n_resamples, level=level, method="percentile")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive integer or None; got {workers!r}")
    selected = [u.key for u in analysis.units]
    selected_set = set(selected)
    infos = {u.key: u for u in analysis.units}
    for m in analysis.matrices.values():
        infos.setdefault(m.info.key, m.info)
    in_comparisons = {k for c in analysis.comparisons for k in (c.baseline_unit, c.treatment_unit)}
    keys = selected + sorted(k for k in in_comparisons if k not in selected_set)
    graded: dict[str, list[_Graded]] = {}
    for (key, grader), m in sorted(analysis.matrices.items()):
        graded.setdefault(key, []).append(_Graded(grader, tuple(m.problem_ids), m.correct))
    jobs = [
        _UnitJob(
            store_root=store.root,
            info=infos[key],
            selected=key in selected_set,
            keep=key in in_comparisons,
            graded=tuple(graded.get(key, ())),
            definitions=tuple(definitions),
            seed=seed,
            n_resamples=n_resamples,
            level=level,
        )
        for key in keys
    ]
    results = _run_jobs(jobs, workers or os.cpu_count() or 1, progress)
    code: dict[tuple[str, str, str], UnitCode] = {}
    flags: list[UnitFlags] = []
    for key in keys:
        r = results[key]
        if r.flags is not None:
            flags.append(UnitFlags(infos[key], r.flags))
        for (grader, d), summary in r.code.items():
            code[(key, grader, d)] = UnitCode(infos[key], grader, summary)
    return CodeReport(
        flags=flags,
        code=[c for (key, _, _), c in code.items() if key in selected_set],
        transitions=_transitions(analysis, results, definitions),
        steps=_step_series(analysis, code, definitions[0]),
        level=level,
        n_resamples=n_resamples,
        anatomies=_anatomies(analysis, results, infos, definitions[0], seed=seed, n_resamples=n_resamples, level=level),
    )


def _anatomies(
    analysis: Analysis,
    results: dict[str, _UnitResult],
    infos: dict[str, UnitInfo],
    definition: str,
    *,
    seed: int,
    n_resamples: int,
    level: float,
) -> list[ComparisonAnatomy]:
    """The gain anatomy of every comparison whose two units were classified."""
    out = []
    made: dict[tuple[str, str], Any] = {}  # a base unit is in several comparisons: its arrays once

    def restricted(unit: str, grader: str, cols: ResponseColumns, m: UnitMatrix) -> Any:
        if (unit, grader) not in made:
            made[(unit, grader)] = _restricted(cols, _Graded(grader, tuple(m.problem_ids), m.correct))
        return made[(unit, grader)]

    for c in analysis.comparisons:
        base, rlvr = results.get(c.baseline_unit), results.get(c.treatment_unit)
        mb = analysis.matrices.get((c.baseline_unit, c.grader_id))
        mt = analysis.matrices.get((c.treatment_unit, c.grader_id))
        if base is None or rlvr is None or mb is None or mt is None or base.columns is None or rlvr.columns is None:
            continue
        before = restricted(c.baseline_unit, c.grader_id, base.columns, mb)
        after = restricted(c.treatment_unit, c.grader_id, rlvr.columns, mt)
        if before is None or after is None:
            continue
        base_cols, base_ok = before
        rlvr_cols, rlvr_ok = after
        info = infos.get(c.treatment_unit) or mt.info
        try:
            anatomy = gain_anatomy_columns(
                base_cols,
                base_ok,
                rlvr_cols,
                rlvr_ok,
                rng=_rng(seed, info.spec.data_hash, [*base_cols.problem_ids, *rlvr_cols.problem_ids]),
                n_resamples=n_resamples,
                level=level,
                definition=definition,
            )
        except ValueError as exc:  # no shared problem: the comparison would not exist either
            log.warning("no gain anatomy for %s vs %s: %s", c.treatment, c.baseline, exc)
            continue
        out.append(
            ComparisonAnatomy(c, anatomy, info.family, info.reward, info.step, protocol_label(info.spec.protocol))
        )
    return out


def _transitions(analysis: Analysis, results: dict[str, _UnitResult], definitions: Sequence[str]) -> list[Transition]:
    out = []
    for c in analysis.comparisons:
        base, rlvr = results.get(c.baseline_unit), results.get(c.treatment_unit)
        mb = analysis.matrices.get((c.baseline_unit, c.grader_id))
        mt = analysis.matrices.get((c.treatment_unit, c.grader_id))
        if base is None or rlvr is None or mb is None or mt is None or base.columns is None or rlvr.columns is None:
            continue
        before = _restricted(base.columns, _Graded(c.grader_id, tuple(mb.problem_ids), mb.correct))
        after = _restricted(rlvr.columns, _Graded(c.grader_id, tuple(mt.problem_ids), mt.correct))
        if before is None or after is None:
            continue
        for d in definitions:
            try:
                table = transition_columns(
                    before[0], after[0], base_correct=before[1], rlvr_correct=after[1], definition=d
                )
            except ValueError as exc:  # no shared problem: the comparison would not exist either
                log.warning("no transition table for %s vs %s: %s", c.treatment, c.baseline, exc)
                break
            out.append(Transition(c, table))
    return out


def _step_series(analysis: Analysis, code: dict[tuple[str, str, str], UnitCode], definition: str) -> list[StepSeries]:
    """Runs (family, reward) with two or more registered steps in one setting, plus their base."""
    base_of = {(c.treatment_unit, c.grader_id): c.baseline_unit for c in analysis.comparisons}
    selected = {u.key for u in analysis.units}
    groups: dict[tuple[str, ...], list[UnitCode]] = {}
    for (_key, grader_id, d), uc in code.items():
        u = uc.info
        if d != definition or not u.reward or u.step is None or u.key not in selected:
            continue
        s = u.spec
        gkey = (u.family, u.reward, s.task, s.data_hash, s.template_id, s.protocol.model_dump_json(), grader_id)
        groups.setdefault(gkey, []).append(uc)
    out = []
    for (*_, grader), members in sorted(groups.items()):
        by_step: dict[int, UnitCode] = {}
        for uc in sorted(members, key=lambda x: (x.info.spec.checkpoint.checkpoint_id, x.info.key)):
            assert uc.info.step is not None
            by_step.setdefault(uc.info.step, uc)
        if len(by_step) < 2:
            continue
        first = members[0].info
        series = StepSeries(
            family=first.family,
            family_display=first.family_display,
            reward=first.reward or "",
            task=first.spec.task,
            task_display=first.task_display or first.spec.task,
            template_id=first.spec.template_id,
            protocol=protocol_label(first.spec.protocol),
            grader_id=grader,
            definition=definition,
        )
        points = dict(by_step)
        for uc in members:
            base_key = base_of.get((uc.info.key, grader))
            base = code.get((base_key, grader, definition)) if base_key else None
            if base is not None:
                points.setdefault(base.info.step or 0, base)
                break
        for step, uc in sorted(points.items()):
            acc = uc.summary.accuracy
            assert acc is not None  # summaries with a grader always have correctness
            series.points.append(
                StepPoint(step, uc.info.spec.checkpoint.checkpoint_id, uc.info.key, uc.summary.code_frequency, acc)
            )
        out.append(series)
    return out


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


def _iv(name: str, iv: stats.Interval | None, ci: str | None = None) -> dict[str, float | None]:
    """``{name: value, <ci>_ci_low: ..., <ci>_ci_high: ...}`` (``ci`` defaults to ``name``; ``None``s
    for a missing interval)."""
    ci = ci or name
    if iv is None:
        return {name: None, f"{ci}_ci_low": None, f"{ci}_ci_high": None}
    return {name: iv.value, f"{ci}_ci_low": iv.ci_low, f"{ci}_ci_high": iv.ci_high}


def flags_frame(report: CodeReport) -> pd.DataFrame:
    """One row per unit (:data:`FLAG_COLUMNS`, rates as fractions)."""
    rows = []
    for f in report.flags:
        s, spec = f.summary, f.info.spec
        rows.append(
            {
                "checkpoint": spec.checkpoint.checkpoint_id,
                "task": spec.task,
                "prompt": spec.template_id,
                "protocol": protocol_label(spec.protocol),
                "n_problems": s.n_problems,
                "n_responses": s.n_responses,
                **_iv("truncation_rate", s.truncation_rate, "truncation"),
                **_iv("repetition_rate", s.repetition_rate, "repetition"),
                **_iv("empty_rate", s.empty_rate, "empty"),
                **_iv("boxed_nothing_rate", s.boxed_nothing_rate, "boxed_nothing"),
                "mean_tokens": s.mean_tokens,
                "n_tokens_known": s.n_tokens_known,
                "level": s.repetition_rate.level,
                "method": s.repetition_rate.method,
                "unit_key": f.info.key,
            }
        )
    return pd.DataFrame(rows, columns=FLAG_COLUMNS)


def code_frame(report: CodeReport) -> pd.DataFrame:
    """One row per unit, grader and definition (:data:`CODE_COLUMNS`, fractions)."""
    rows = []
    for c in report.code:
        s, spec = c.summary, c.info.spec
        rows.append(
            {
                "checkpoint": spec.checkpoint.checkpoint_id,
                "task": spec.task,
                "prompt": spec.template_id,
                "protocol": protocol_label(spec.protocol),
                "grader": c.grader_id,
                "definition": s.definition,
                "n_problems": s.n_problems,
                "n_responses": s.n_responses,
                "n_code": s.n_code,
                "n_language": s.n_language,
                **_iv("code_frequency", s.code_frequency, "code"),
                **_iv("accuracy", s.accuracy),
                **_iv("accuracy_code", s.accuracy_code),
                **_iv("accuracy_language", s.accuracy_language),
                **_iv("code_minus_language", s.code_minus_language),
                "level": s.code_frequency.level,
                "method": s.code_frequency.method,
                "unit_key": c.info.key,
            }
        )
    return pd.DataFrame(rows, columns=CODE_COLUMNS)


def transitions_frame(report: CodeReport) -> pd.DataFrame:
    """Four rows per comparison and definition (:data:`TRANSITION_COLUMNS`, fractions)."""
    rows = []
    for t in report.transitions:
        c, tab = t.comparison, t.table
        for cell in tab.cells:
            rows.append(
                {
                    "checkpoint": c.treatment,
                    "base": c.baseline,
                    "task": c.task,
                    "prompt": c.template_id,
                    "grader": c.grader_id,
                    "definition": tab.definition,
                    "n_problems": tab.n_problems,
                    "acc_before": tab.acc_before,
                    "acc_after": tab.acc_after,
                    "gain": tab.gain,
                    "transition": cell.label,
                    "cell_problems": cell.n_problems,
                    "cell_acc_before": cell.acc_before,
                    "cell_acc_after": cell.acc_after,
                    "contribution": cell.contribution,
                    "share": cell.share,
                    "treatment_unit": c.treatment_unit,
                    "baseline_unit": c.baseline_unit,
                }
            )
    return pd.DataFrame(rows, columns=TRANSITION_COLUMNS)


def steps_frame(report: CodeReport) -> pd.DataFrame:
    """One row per step of each series (:data:`STEP_COLUMNS`, fractions)."""
    rows = [
        {
            "family": s.family,
            "reward": s.reward,
            "task": s.task,
            "prompt": s.template_id,
            "protocol": s.protocol,
            "grader": s.grader_id,
            "definition": s.definition,
            "step": p.step,
            "checkpoint": p.checkpoint_id,
            "code_frequency": p.code_frequency.value,
            "code_ci_low": p.code_frequency.ci_low,
            "code_ci_high": p.code_frequency.ci_high,
            "accuracy": p.accuracy.value,
            "accuracy_ci_low": p.accuracy.ci_low,
            "accuracy_ci_high": p.accuracy.ci_high,
            "unit_key": p.unit_key,
        }
        for s in report.steps
        for p in s.points
    ]
    return pd.DataFrame(rows, columns=STEP_COLUMNS)


__all__ = [
    "CODE_COLUMNS",
    "FLAG_COLUMNS",
    "STEP_COLUMNS",
    "TRANSITION_COLUMNS",
    "CodeReport",
    "StepPoint",
    "StepSeries",
    "Transition",
    "UnitCode",
    "UnitFlags",
    "build_code_report",
    "code_frame",
    "flags_frame",
    "steps_frame",
    "transitions_frame",
]
