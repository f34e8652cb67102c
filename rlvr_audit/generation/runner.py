"""Generation stage: fill each planned unit's store file with the samples it is missing.

Resumable by construction: before generating, the unit's stored samples are read and only the
missing (problem, sample) pairs are requested; each sample has its own seed
(:func:`~rlvr_audit.core.records.sample_seed` of unit key, problem and sample index), so what a
resumed run generates is what the interrupted one would have. A model is loaded once per
checkpoint, and only for checkpoints that still miss samples; a unit's missing work goes to the
engine as one request list (vLLM: one call; hf: batches of ``--batch-size``), and what the engine
hands back is stored at once, so a crash loses at most what was in flight.

The work is split into :class:`~.work.UnitWork` pieces that carry everything a worker needs (the
unit, its problems, template and missing samples) and return :class:`~.work.UnitStarted` and
:class:`~.work.Generated` events; :func:`~.work.run_checkpoint` turns pieces into events with a
loaded engine, here or in a Ray worker (:mod:`rlvr_audit.generation.distributed`), and only the process that called
:func:`generate_units` writes the store. ``--shard I/N`` keeps a deterministic contiguous 1/N of
the planned work (:func:`shard_work`), computed from the plan alone, so N processes with N stores
cover the grid exactly once and ``rlvr-audit store merge`` joins them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ..core.errors import StoreError, UsageError
from ..core.records import EffectiveSampling, Problem
from ..core.store import Store
from ..core.ui import Progress
from .distributed import RayCluster, generate_on_ray
from .plan import PlannedUnit
from .work import EngineSpec, Event, UnitStarted, UnitWork, run_checkpoint

log = logging.getLogger(__name__)


@dataclass
class GenerateSummary:
    """What a generation pass did."""

    generated: int = 0
    """Samples generated now."""
    reused: int = 0
    """Samples already in the store."""
    units: int = 0
    """Units touched."""
    stored_units: list[str] = field(default_factory=list)
    """Keys of the planned units the store holds after the pass (with ``--shard``, the units this
    shard wrote to or found stored)."""


def _problems(unit: PlannedUnit, limit: int | None) -> list[Problem]:
    return unit.problems[:limit] if limit is not None else unit.problems


def parse_shard(text: str) -> tuple[int, int]:
    """``I/N`` (1 <= I <= N) as ``(I, N)``; anything else is a :class:`UsageError`."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if m is None or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise UsageError(f"--shard {text!r}: expected I/N with 1 <= I <= N, e.g. 1/4 (the first of four shards)")
    return int(m.group(1)), int(m.group(2))


def _pieces(units: list[PlannedUnit], limit: int | None) -> list[tuple[PlannedUnit, Problem]]:
    """Every (unit, problem) of the plan in a canonical order: checkpoint, unit key, problem."""
    ordered = sorted({u.key: u for u in units}.values(), key=lambda u: (u.checkpoint.checkpoint_id, u.key))
    return [(u, p) for u in ordered for p in _problems(u, limit)]


def shard_work(units: list[PlannedUnit], limit: int | None, shard: tuple[int, int]) -> set[tuple[str, str]]:
    """The (unit key, problem id) pairs of shard ``I/N``: the plan's pieces in canonical order
    (:func:`_pieces`; all samples of a problem stay together) cut into N contiguous blocks of about
    equal sample counts, so a shard loads few checkpoints. Depends on the plan only, never on what
    a store holds, so the N shards are disjoint and cover the plan."""
    index, count = shard
    pieces = _pieces(units, limit)
    total = sum(u.spec.protocol.n for u, _ in pieces)
    out: set[tuple[str, str]] = set()
    start = 0
    for u, p in pieces:
        if total and min(count - 1, start * count // total) == index - 1:
            out.add((u.key, p.problem_id))
        start += u.spec.protocol.n
    return out


def plan_work(
    store: Store, units: list[PlannedUnit], limit: int | None, keep: set[tuple[str, str]] | None = None
) -> list[UnitWork]:
    """The missing samples of every unit (only of the (unit key, problem id) pairs in ``keep``, a
    shard's, if given), reading the store only."""
    works = []
    seen: set[str] = set()
    for unit in units:
        if unit.key in seen:
            continue
        seen.add(unit.key)
        have = {(g.problem_id, g.sample_idx) for g in store.read_generations(unit.key)}
        todo = tuple(
            (p.problem_id, i)
            for p in _problems(unit, limit)
            if keep is None or (unit.key, p.problem_id) in keep
            for i in range(unit.spec.protocol.n)
            if (p.problem_id, i) not in have
        )
        works.append(UnitWork(unit=unit, todo=todo))
    return works


def _refuse_stale_grades(store: Store, key: str, todo: tuple[tuple[str, int], ...]) -> None:
    """Refuse to generate samples that are graded already: their generations were lost (a damaged
    file, moved aside as ``.torn``), and the new completions would inherit the old text's grades
    (a grade is keyed by problem and sample, not by text). Grading always follows generation, so
    an intact store never has such grades."""
    missing = set(todo)
    if not missing:
        return
    for grader_id in store.graders(key):
        stale = {(g.problem_id, g.sample_idx) for g in store.read_grades(key, grader_id)} & missing
        if stale:
            raise StoreError(
                f"{store.grades_path(key, grader_id)}: grades {len(stale)} samples missing from "
                f"{store.generations_path(key)} (lost from a damaged file); generated again, they would keep "
                f"the lost text's grades: move {store.unit_dir(key) / 'grades'} aside, then run again"
            )


def by_checkpoint(works: list[UnitWork]) -> list[list[UnitWork]]:
    """Pieces of work with something to do, grouped by checkpoint (one model load each)."""
    groups: dict[str, list[UnitWork]] = {}
    for w in works:
        if w.todo:
            groups.setdefault(w.unit.checkpoint.checkpoint_id, []).append(w)
    return list(groups.values())


class StoreWriter:
    """Writes events to the store (the only writer) and moves the progress bar."""

    def __init__(
        self,
        store: Store,
        works: list[UnitWork],
        progress: Progress,
        total: int,
        summary: GenerateSummary,
        before_write: Callable[[], None] | None,
    ) -> None:
        self.store = store
        self.units = {w.unit.key: w.unit for w in works}
        self.progress = progress
        self.task = progress.add_task("generating", total=total, unit="samples")
        self.summary = summary
        self.before_write = before_write
        self.done = 0
        self.in_flight: dict[str, float] = {}
        self.started: set[str] = set()
        self.stored: dict[str, set[tuple[str, int]]] = {}
        """Per unit: the samples the store holds (so a sample a retried task sends again is not counted)."""

    def _first_write(self) -> None:
        if self.before_write is not None:
            self.before_write()
            self.before_write = None

    def flight(self, unit_key: str, done: float) -> None:
        """Samples of a running engine call done so far (see :data:`~rlvr_audit.generation.engines.ProgressFn`)."""
        self.in_flight[unit_key] = done
        self.progress.update(self.task, completed=self.done + sum(self.in_flight.values()))

    def handle(self, event: Event) -> None:
        """Store one event."""
        unit = self.units[event.unit_key]
        if isinstance(event, UnitStarted):
            self._start(unit, event.sampling)
            return
        stored = self.stored.setdefault(
            unit.key, {(g.problem_id, g.sample_idx) for g in self.store.read_generations(unit.key)}
        )
        fresh = [g for g in event.records if (g.problem_id, g.sample_idx) not in stored]  # a retried task repeats
        stored.update((g.problem_id, g.sample_idx) for g in fresh)
        if fresh:
            self._first_write()
            self.store.append_generations(unit.key, fresh)
        self.summary.generated += len(fresh)
        self.done += len(fresh)
        self.in_flight.pop(unit.key, None)
        self.progress.update(self.task, completed=self.done + sum(self.in_flight.values()))

    def _start(self, unit: PlannedUnit, sampling: EffectiveSampling) -> None:
        if unit.key in self.started:  # a Ray task retried after its worker died
            return
        self.started.add(unit.key)
        self.summary.units += 1
        stored = self.store.load_unit(unit.key) if (self.store.unit_dir(unit.key) / "unit.json").is_file() else None
        if stored is not None and stored.sampling not in (None, sampling) and self.store.read_generations(unit.key):
            raise UsageError(
                f"unit {unit.key} ({unit.checkpoint.checkpoint_id}, {unit.spec.task}, {unit.spec.template_id}) holds "
                f"samples generated with {_describe(stored.sampling)}, but the engine now applies "
                f"{_describe(sampling)} (the model or its generation config changed?): pin a revision, or move the "
                "unit aside"
            )
        self._first_write()
        self.store.ensure_unit(unit.info.model_copy(update={"sampling": sampling}))
        self.store.save_problems(unit.spec.data_hash, unit.problems)
        self.progress.update(
            self.task, description=f"{unit.checkpoint.checkpoint_id} · {unit.task.task} · {unit.spec.template_id}"
        )


def _describe(s: EffectiveSampling | None) -> str:
    if s is None:
        return "unrecorded parameters"
    return (
        f"temperature={s.temperature:g}, top_p={s.top_p:g}, top_k={s.top_k or 'off'}, min_p={s.min_p:g}, "
        f"repetition_penalty={s.repetition_penalty:g} ({s.engine})"
    )


def generate_units(
    store: Store,
    units: list[PlannedUnit],
    *,
    engine: EngineSpec,
    limit: int | None,
    progress: Progress,
    shard: tuple[int, int] | None = None,
    ray: RayCluster | None = None,
    before_write: Callable[[], None] | None = None,
) -> GenerateSummary:
    """Generate every missing sample of ``units`` (of ``shard`` only, if given) and store it.

    ``ray``: a connected :class:`rlvr_audit.generation.distributed.RayCluster` to generate on (this process
    still writes the store alone). ``before_write`` runs once, before the first write to the store
    (the run manifest is written then, so a run that fails before writing leaves nothing). A unit's
    ``unit.json`` is written when its engine has loaded, with the sampling parameters it applies."""
    summary = GenerateSummary()
    keep = shard_work(units, limit, shard) if shard is not None else None
    works = plan_work(store, units, limit, keep)
    for work in works:
        unit = work.unit
        if (store.unit_dir(unit.key) / "unit.json").is_file():  # refresh descriptive info, keep what ran
            stored = store.load_unit(unit.key)
            if stored.model_copy(update={"sampling": None}) != unit.info:
                if before_write is not None:
                    before_write()
                    before_write = None
                store.ensure_unit(unit.info.model_copy(update={"sampling": stored.sampling}))
        _refuse_stale_grades(store, unit.key, work.todo)
        mine = [p for p in _problems(unit, limit) if keep is None or (unit.key, p.problem_id) in keep]
        summary.reused += len(mine) * unit.spec.protocol.n - len(work.todo)
    total = sum(len(w.todo) for w in works)
    writer = StoreWriter(store, works, progress, total, summary, before_write)
    groups = by_checkpoint(works)
    if ray is None:
        for group in groups:
            progress.update(writer.task, description=f"loading {group[0].unit.checkpoint.checkpoint_id}")
            for event in run_checkpoint(engine, group, progress=writer.flight):
                writer.handle(event)
    else:
        progress.update(writer.task, description=f"generating on Ray ({len(groups)} checkpoints)")
        for event in generate_on_ray(ray, engine, groups):
            writer.handle(event)
    progress.update(writer.task, description="generated")
    summary.stored_units = [w.unit.key for w in works if (store.unit_dir(w.unit.key) / "unit.json").is_file()]
    return summary
