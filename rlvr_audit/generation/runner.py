"""Generation stage: fill each planned unit's store file with the samples it is missing.

Resumable by construction: before generating, the unit's stored samples are read and only the
missing (problem, sample) pairs are requested; results are appended every ``save_every``
samples, so an interrupted run loses at most one chunk and the next run continues. A model is
loaded only for checkpoints that still miss samples.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass

from ..core.errors import StoreError
from ..core.prompts import render
from ..core.records import Generation, Problem, Prompt
from ..core.store import Store
from ..core.ui import Progress, TaskID
from .engines import Engine, GenRequest, create_engine
from .plan import PlannedUnit

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


def _chunks(items: list[Problem], size: int) -> Iterator[list[Problem]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_text(text: str) -> str:
    """``text`` with U+FFFD for each lone UTF-16 surrogate: an engine that decodes a JSON reply
    (an OpenAI-compatible server cutting an emoji in two, a script file) can return one, and no
    UTF-8 store can hold it (the append would fail and stop the run). Warns when it replaces."""
    if _LONE_SURROGATE.search(text) is None:
        return text
    log.warning("an engine returned text with a lone UTF-16 surrogate; stored with U+FFFD in its place")
    return _LONE_SURROGATE.sub("\ufffd", text)


def missing_samples(store: Store, unit: PlannedUnit, limit: int | None) -> dict[int, list[Problem]]:
    """Sample index -> problems (within ``limit``) that still lack that sample."""
    have = {(g.problem_id, g.sample_idx) for g in store.read_generations(unit.key)}
    problems = unit.problems[:limit] if limit is not None else unit.problems
    out: dict[int, list[Problem]] = {}
    for i in range(unit.spec.protocol.n):
        todo = [p for p in problems if (p.problem_id, i) not in have]
        if todo:
            out[i] = todo
    return out


def _refuse_stale_grades(store: Store, key: str, todo: dict[int, list[Problem]]) -> None:
    """Refuse to generate samples that are graded already: their generations were lost (a damaged
    file, moved aside as ``.torn``), and the new completions would inherit the old text's grades
    (a grade is keyed by problem and sample, not by text). Grading always follows generation, so
    an intact store never has such grades."""
    missing = {(p.problem_id, i) for i, problems in todo.items() for p in problems}
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


def generate_units(
    store: Store,
    units: list[PlannedUnit],
    *,
    backend: str,
    model_args: dict[str, str],
    batch_size: int,
    device: str | None,
    limit: int | None,
    save_every: int,
    progress: Progress,
) -> GenerateSummary:
    """Generate every missing sample of ``units`` and append it to the store."""
    summary = GenerateSummary()
    todo: dict[str, dict[int, list[Problem]]] = {}
    for unit in units:
        store.ensure_unit(unit.info)
        store.save_problems(unit.spec.data_hash, unit.problems)
        todo[unit.key] = missing_samples(store, unit, limit)
        _refuse_stale_grades(store, unit.key, todo[unit.key])
        wanted = len(unit.problems[:limit] if limit is not None else unit.problems) * unit.spec.protocol.n
        missing = sum(len(v) for v in todo[unit.key].values())
        summary.reused += wanted - missing
    total = sum(len(v) for t in todo.values() for v in t.values())
    task_id = progress.add_task("generating", total=total)
    by_checkpoint: dict[str, list[PlannedUnit]] = {}
    for unit in units:
        if todo[unit.key]:
            by_checkpoint.setdefault(unit.checkpoint.checkpoint_id, []).append(unit)
    for checkpoint_id, ck_units in by_checkpoint.items():
        ck = ck_units[0].checkpoint
        progress.update(task_id, description=f"loading {checkpoint_id}")
        engine: Engine = create_engine(
            backend,
            model=ck.model,
            revision=ck.revision,
            model_args=model_args,
            batch_size=batch_size,
            device=device,
            checkpoint_id=checkpoint_id,
        )
        try:
            for unit in ck_units:
                summary.units += 1
                progress.update(task_id, description=f"{checkpoint_id} · {unit.task.task} · {unit.spec.template_id}")
                summary.generated += _generate_unit(store, unit, engine, todo[unit.key], save_every, progress, task_id)
        finally:
            engine.close()
    progress.update(task_id, description="generated")
    return summary


def _generate_unit(
    store: Store,
    unit: PlannedUnit,
    engine: Engine,
    todo: dict[int, list[Problem]],
    save_every: int,
    progress: Progress,
    task_id: TaskID,
) -> int:
    spec = unit.spec
    prompts: dict[str, Prompt] = {}
    for problems in todo.values():
        for p in problems:
            if p.problem_id not in prompts:
                prompts[p.problem_id] = render(
                    unit.template,
                    spec.template_id,
                    p,
                    tokenizer=engine.tokenizer,
                    checkpoint_id=unit.checkpoint.checkpoint_id,
                )
    done = 0
    for sample_idx, problems in sorted(todo.items()):
        seed = spec.protocol.sample_seed(sample_idx)
        for chunk in _chunks(problems, save_every):
            requests = [GenRequest(prompt=prompts[p.problem_id].text, problem=p, sample_idx=sample_idx) for p in chunk]
            outputs = engine.generate(
                requests,
                protocol=spec.protocol,
                seed=seed,
                stop=unit.template.stop,
                keep_stop=unit.template.keep_stop,
            )
            if len(outputs) != len(requests):
                raise RuntimeError(f"engine returned {len(outputs)} completions for {len(requests)} prompts")
            store.append_generations(
                unit.key,
                [
                    Generation(
                        unit_key=unit.key,
                        checkpoint_id=unit.checkpoint.checkpoint_id,
                        task=spec.task,
                        problem_id=req.problem.problem_id,
                        template_id=spec.template_id,
                        sample_idx=sample_idx,
                        seed=seed,
                        prompt=req.prompt,
                        prompt_hash=prompts[req.problem.problem_id].prompt_hash,
                        completion=valid_text(out.text),
                        finish_reason=out.finish_reason,
                        n_tokens=out.n_tokens,
                        backend=engine.backend,
                    )
                    for req, out in zip(requests, outputs, strict=True)
                ],
            )
            done += len(chunk)
            progress.advance(task_id, len(chunk))
    return done
