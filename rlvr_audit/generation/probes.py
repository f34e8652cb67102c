"""Planning and storing partial-prompt contamination probes (``rlvr-audit probe contamination``).

A probe unit is a normal unit whose problems are cut: each problem's first ``p`` percent of words
(:func:`cut_problem`). Two kinds per fraction: ``completion`` sends the prefix as a raw string
(no template), ``answer`` renders it with a prompt template. This module plans those units from
the evaluation grid (:func:`plan_probes`) and keeps them apart from evaluations, in the store's
``probes/`` folder (:func:`probe_store`, :func:`write_probe_info`); scoring and analysis are in
:mod:`rlvr_audit.analysis.contamination`, which documents the probe.

The cut. A problem's text is split into words (maximal runs of non-whitespace). For a fraction
``p`` percent of a problem of ``n >= 2`` words the model gets the first ``k = floor(n * p / 100)``
words, clamped to ``[1, n - 1]``: the *prefix* is the text up to the end of word ``k`` (no trailing
whitespace; the model writes the space), the *remainder* is everything after it. Problems of fewer
than two words cannot be cut and are skipped (listed in the unit's :class:`ProbeInfo`).

Keys. A probe unit's key is a normal :class:`~rlvr_audit.core.records.UnitSpec` key whose template
id and hash include the probe kind, the fraction, the probe version and the full task's data hash.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import StoreError, UsageError
from ..core.prompts import PromptTemplate
from ..core.records import ProbeInfo, Problem, SamplingProtocol, UnitSpec, stable_hash
from ..core.store import Store
from ..core.tasks import data_hash
from .plan import PlannedUnit, ProtocolOverrides

__all__ = [
    "DEFAULT_COMPLETION_TOKENS",
    "DEFAULT_PERCENTS",
    "KINDS",
    "PROBE_DIR",
    "PROBE_VERSION",
    "RAW",
    "Cut",
    "PlannedProbe",
    "ProbeOptions",
    "check_options",
    "check_percent",
    "cut_problem",
    "cut_problems",
    "has_probe_units",
    "plan_probes",
    "probe_overrides",
    "probe_store",
    "probe_template_id",
    "read_probe_info",
    "write_probe_info",
]

PROBE_VERSION = 1
"""Version of the cut and scoring rules; part of every probe unit's key."""

DEFAULT_PERCENTS = (40, 60, 80)
"""Fractions of each problem given to the model, in percent."""

KINDS: tuple[str, ...] = ("completion", "answer")
"""Probe kinds (see the module docstring)."""

PROBE_DIR = "probes"
"""Folder of the probe units inside a store."""

RAW = "raw"
"""Template id recorded for ``completion`` probes (the prefix is sent as it is)."""

DEFAULT_COMPLETION_TOKENS = 512
"""New-token limit of ``completion`` probes."""

_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Cut:
    """A problem cut at a fraction of its words."""

    prefix: str
    """The first ``words_kept`` words, as in the original text, without trailing whitespace."""
    remainder: str
    """The rest of the text (starts with the whitespace that followed the prefix)."""
    words_kept: int
    """Words in the prefix."""
    words_total: int
    """Words in the problem."""


def check_percent(percent: object) -> int:
    """``percent`` as an int in 1..99, or a :class:`UsageError` naming ``--percents`` and the range."""
    if isinstance(percent, bool) or not isinstance(percent, (int, np.integer)):
        raise UsageError(f"--percents must be whole numbers strictly between 0 and 100, got {percent!r}")
    if not 0 < int(percent) < 100:
        raise UsageError(f"--percents must be strictly between 0 and 100 (exclusive), got {percent}")
    return int(percent)


def cut_problem(text: str, percent: int) -> Cut | None:
    """Cut ``text`` after ``floor(n * percent / 100)`` of its ``n`` words (clamped to
    ``[1, n - 1]``); ``None`` for a text of fewer than two words."""
    p = check_percent(percent)
    words = list(_WORD.finditer(text))
    n = len(words)
    if n < 2:
        return None
    k = min(max(n * p // 100, 1), n - 1)
    end = words[k - 1].end()
    return Cut(prefix=text[:end], remainder=text[end:], words_kept=k, words_total=n)


@dataclass(frozen=True)
class ProbeOptions:
    """What to probe."""

    percents: tuple[int, ...] = DEFAULT_PERCENTS
    """Fractions of each problem, in percent (each in 1..99)."""
    kinds: tuple[str, ...] = KINDS
    """Probe kinds to run (``completion``, ``answer``)."""
    completion_max_new_tokens: int = DEFAULT_COMPLETION_TOKENS
    """New-token limit of ``completion`` probes."""
    answer_max_new_tokens: int | None = None
    """New-token limit of ``answer`` probes (``None``: the task's)."""
    seed: int = 0
    """Base sampling seed (greedy decoding does not use it; it is part of the key all the same)."""


def check_options(options: ProbeOptions) -> None:
    """Validate probe options before anything is loaded or written."""
    if not options.percents:
        raise UsageError("--percents is empty; give fractions strictly between 0 and 100, e.g. 40,60,80")
    seen: set[int] = set()
    for p in options.percents:
        if check_percent(p) in seen:
            raise UsageError(f"--percents lists {p} twice")
        seen.add(int(p))
    if not options.kinds:
        raise UsageError(f"--kinds is empty; valid kinds: {', '.join(KINDS)}")
    for kind in options.kinds:
        if kind not in KINDS:
            raise UsageError(f"unknown probe kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    if options.completion_max_new_tokens < 1:
        raise UsageError(f"--completion-max-new-tokens must be >= 1, got {options.completion_max_new_tokens}")
    if options.answer_max_new_tokens is not None and options.answer_max_new_tokens < 1:
        raise UsageError(f"--max-new-tokens must be >= 1, got {options.answer_max_new_tokens}")


@dataclass
class PlannedProbe:
    """A planned probe unit: the unit to generate and what it probes."""

    unit: PlannedUnit
    """The unit (its problems are the cut problems)."""
    probe: ProbeInfo
    """Kind, fraction, source task version."""
    source: list[Problem] = field(repr=False)
    """The full problems of the task, before the cut (stored for scoring)."""


def _raw_template() -> PromptTemplate:
    return PromptTemplate(
        description="Partial-prompt probe: the first part of the problem, sent as it is.",
        chat=False,
        text="{question}",
    )


def cut_problems(problems: Sequence[Problem], percent: int) -> tuple[list[Problem], list[str]]:
    """The problems cut at ``percent`` (question = prefix; the remainder in ``metadata``) and the
    ids of those too short to cut."""
    out: list[Problem] = []
    skipped: list[str] = []
    for p in problems:
        cut = cut_problem(p.question, percent)
        if cut is None:
            skipped.append(p.problem_id)
            continue
        meta = {
            **p.metadata,
            "probe_percent": percent,
            "probe_remainder": cut.remainder,
            "probe_words": [cut.words_kept, cut.words_total],
        }
        out.append(p.model_copy(update={"question": cut.prefix, "metadata": meta}))
    return out, skipped


def probe_overrides(options: ProbeOptions) -> ProtocolOverrides:
    """The sampling protocol of probe units: one greedy sample (``answer`` probes: the task's
    token limit unless ``options.answer_max_new_tokens``)."""
    check_options(options)
    return ProtocolOverrides(
        samples=1, temperature=0.0, max_new_tokens=options.answer_max_new_tokens, seed=options.seed
    )


def plan_probes(grid: Sequence[PlannedUnit], options: ProbeOptions) -> list[PlannedProbe]:
    """Plan the probe units of an evaluation grid planned with :func:`probe_overrides` (no model
    is loaded, nothing is written): each checkpoint x task gets one ``completion`` unit per
    fraction and each checkpoint x task x template one ``answer`` unit per fraction."""
    check_options(options)
    raw = _raw_template()
    out: list[PlannedProbe] = []
    cuts: dict[tuple[str, int], tuple[list[Problem], list[str]]] = {}
    done_completion: set[tuple[str, str]] = set()
    for unit in grid:
        source_hash = unit.spec.data_hash
        for percent in options.percents:
            key = (source_hash, percent)
            if key not in cuts:
                cuts[key] = cut_problems(unit.problems, percent)
                if not cuts[key][0]:
                    raise UsageError(
                        f"task {unit.task.task!r} has no problem of two or more words to cut at {percent}%"
                    )
            problems, skipped = cuts[key]
            for kind in options.kinds:
                if kind == "completion":
                    pair = (unit.checkpoint.checkpoint_id, f"{source_hash}/{percent}")
                    if pair in done_completion:
                        continue  # one completion unit per checkpoint, task and fraction
                    done_completion.add(pair)
                    template, template_id = raw, RAW
                    protocol = unit.spec.protocol.model_copy(
                        update={"max_new_tokens": options.completion_max_new_tokens}
                    )
                else:
                    template, template_id = unit.template, unit.spec.template_id
                    protocol = unit.spec.protocol
                spec = _probe_spec(unit.spec, kind, percent, template_id, template.template_hash, problems, protocol)
                info = unit.info.model_copy(update={"key": spec.key, "spec": spec, "n_problems_total": len(problems)})
                probe = ProbeInfo(
                    kind=kind,  # type: ignore[arg-type]  # validated by check_options
                    percent=percent,
                    version=PROBE_VERSION,
                    unit_key=spec.key,
                    source_data_hash=source_hash,
                    template_id=template_id,
                    skipped=skipped,
                )
                planned = PlannedUnit(
                    info=info, checkpoint=unit.checkpoint, task=unit.task, template=template, problems=problems
                )
                out.append(PlannedProbe(unit=planned, probe=probe, source=unit.problems))
    return out


def probe_template_id(kind: str, percent: int, template_id: str) -> str:
    """The template id a probe unit is stored under, e.g. ``contamination/completion/p60/raw``."""
    return f"contamination/{kind}/p{percent}/{template_id}"


def _probe_spec(
    base: UnitSpec,
    kind: str,
    percent: int,
    template_id: str,
    template_hash: str,
    problems: list[Problem],
    protocol: SamplingProtocol,
) -> UnitSpec:
    return base.model_copy(
        update={
            "data_hash": data_hash(problems),
            "template_id": probe_template_id(kind, percent, template_id),
            "template_hash": stable_hash(
                {
                    "probe": "contamination",
                    "version": PROBE_VERSION,
                    "kind": kind,
                    "percent": percent,
                    "template_hash": template_hash,
                    "source_data_hash": base.data_hash,
                }
            ),
            "protocol": protocol,
        }
    )


# ---- the probe store --------------------------------------------------------------------------


def probe_store(store: Store) -> Store:
    """The store of probe units inside ``store`` (its ``probes/`` folder)."""
    return store.substore(PROBE_DIR)


def write_probe_info(pstore: Store, probe: ProbeInfo) -> None:
    """Write ``probe.json`` of a probe unit (atomically; an existing one must agree)."""
    path = pstore.unit_dir(probe.unit_key) / "probe.json"
    if path.exists():
        current = read_probe_info(pstore, probe.unit_key)
        if current == probe:
            return
        if current.model_copy(update={"skipped": probe.skipped}) != probe:
            raise StoreError(f"{path}: describes another probe than key {probe.unit_key}; the store is inconsistent")
    pstore.write_text(path, probe.model_dump_json(indent=2) + "\n", f"writing probe unit {probe.unit_key}")


def read_probe_info(pstore: Store, key: str) -> ProbeInfo:
    """Read ``probe.json`` of a probe unit."""
    path = pstore.unit_dir(key) / "probe.json"
    try:
        return ProbeInfo.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise StoreError(f"{path}: missing (probe unit {key} has no probe.json)") from exc
    except ValueError as exc:
        raise StoreError(f"{path}: not a valid probe file: {exc}") from exc


def has_probe_units(store: Store) -> bool:
    """Whether the store holds contamination probe units (in its ``probes/`` folder)."""
    return (store.root / PROBE_DIR / "units").is_dir()
