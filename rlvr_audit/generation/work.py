"""Generation work that can run anywhere: :class:`UnitWork` pieces in, events out.

A piece of work carries everything a worker needs (the unit, its problems, template and missing
samples); :func:`run_checkpoint` loads one checkpoint's engine and turns pieces into
:class:`UnitStarted` and :class:`Generated` events, here (:mod:`.runner`) or in a Ray worker
(:mod:`.distributed`). Only the process that writes the store consumes the events.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ..core.prompts import render
from ..core.records import EffectiveSampling, Generation, Prompt, sample_seed
from .engines import Engine, GenRequest, create_engine
from .plan import PlannedUnit

__all__ = [
    "EngineSpec",
    "Event",
    "Generated",
    "UnitStarted",
    "UnitWork",
    "run_checkpoint",
    "seed_of",
    "valid_text",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineSpec:
    """How to load and drive an engine (picklable: it travels to Ray workers)."""

    backend: str
    """Backend name."""
    model_args: dict[str, str] = field(default_factory=dict)
    """``--model-args``."""
    batch_size: int = 8
    """Rows per batch (hf)."""
    device: str | None = None
    """Device for transformers engines."""
    chunk_size: int = 64
    """``--save-every``: requests per call for engines driven through lm-eval."""
    use_model_generation_config: bool = False
    """``--use-model-generation-config``."""


@dataclass(frozen=True)
class UnitWork:
    """The missing samples of one unit, with what is needed to generate them anywhere."""

    unit: PlannedUnit
    """The planned unit (spec, checkpoint, task, template, problems)."""
    todo: tuple[tuple[str, int], ...]
    """Missing (problem id, sample index) pairs, in the task's problem order then sample order."""


@dataclass(frozen=True)
class UnitStarted:
    """An engine loaded for a unit and is about to generate it, with these parameters."""

    unit_key: str
    """The unit."""
    sampling: EffectiveSampling
    """What the engine applies."""


@dataclass(frozen=True)
class Generated:
    """Completed samples of one unit, ready to store."""

    unit_key: str
    """The unit."""
    records: list[Generation]
    """The samples."""


Event = UnitStarted | Generated
"""What generation reports back to the process that writes the store."""


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_text(text: str) -> str:
    """``text`` with U+FFFD for each lone UTF-16 surrogate: an engine that decodes a JSON reply
    (an OpenAI-compatible server cutting an emoji in two, a script file) can return one, and no
    UTF-8 store can hold it (the append would fail and stop the run). Warns when it replaces."""
    if _LONE_SURROGATE.search(text) is None:
        return text
    log.warning("an engine returned text with a lone UTF-16 surrogate; stored with U+FFFD in its place")
    return _LONE_SURROGATE.sub("\ufffd", text)


def seed_of(unit: PlannedUnit, problem_id: str, sample_idx: int) -> int:
    """The seed of one sample: per sample for units of the current scheme, per sample round for
    units written before (so resuming one stays consistent with what it holds)."""
    if unit.spec.sampling_scheme is None:
        return unit.spec.protocol.sample_seed(sample_idx)
    return sample_seed(unit.key, problem_id, sample_idx)


def run_checkpoint(
    spec: EngineSpec, works: list[UnitWork], *, progress: Callable[[str, float], None] | None = None
) -> Iterator[Event]:
    """Load the checkpoint of ``works`` (all one checkpoint) once and generate every piece,
    yielding a :class:`UnitStarted` per unit and a :class:`Generated` per batch the engine hands
    back. ``progress(unit_key, done)``: samples of the current engine call done so far."""
    ck = works[0].unit.checkpoint
    engine: Engine = create_engine(
        spec.backend,
        model=ck.model,
        revision=ck.revision,
        model_args=spec.model_args,
        batch_size=spec.batch_size,
        device=spec.device,
        checkpoint_id=ck.checkpoint_id,
        use_model_generation_config=spec.use_model_generation_config,
        chunk_size=spec.chunk_size,
    )
    try:
        for work in works:
            yield from _unit_events(engine, work, progress)
    finally:
        engine.close()


def _unit_events(engine: Engine, work: UnitWork, progress: Callable[[str, float], None] | None) -> Iterator[Event]:
    unit, spec = work.unit, work.unit.spec
    yield UnitStarted(unit_key=unit.key, sampling=engine.sampling(spec.protocol, unit.template.stop))
    problems = {p.problem_id: p for p in unit.problems}
    prompts: dict[str, Prompt] = {}
    requests = []
    for pid, sample_idx in work.todo:
        if pid not in prompts:
            prompts[pid] = render(
                unit.template,
                spec.template_id,
                problems[pid],
                tokenizer=engine.tokenizer,
                checkpoint_id=unit.checkpoint.checkpoint_id,
            )
        requests.append(
            GenRequest(
                prompt=prompts[pid].text,
                problem=problems[pid],
                sample_idx=sample_idx,
                seed=seed_of(unit, pid, sample_idx),
            )
        )
    report = None if progress is None else (lambda done: progress(unit.key, done))
    answered = 0
    for batch in engine.generate(
        requests, protocol=spec.protocol, stop=unit.template.stop, keep_stop=unit.template.keep_stop, progress=report
    ):
        answered += len(batch)
        records = []
        for i, out in batch:
            req = requests[i]
            records.append(
                Generation(
                    unit_key=unit.key,
                    checkpoint_id=unit.checkpoint.checkpoint_id,
                    task=spec.task,
                    problem_id=req.problem.problem_id,
                    template_id=spec.template_id,
                    sample_idx=req.sample_idx,
                    seed=req.seed,
                    prompt=req.prompt,
                    prompt_hash=prompts[req.problem.problem_id].prompt_hash,
                    completion=valid_text(out.text),
                    finish_reason=out.finish_reason,
                    n_tokens=out.n_tokens,
                    backend=engine.backend,
                )
            )
        yield Generated(unit_key=unit.key, records=records)
    if answered != len(requests):
        raise RuntimeError(f"engine returned {answered} completions for {len(requests)} prompts")
