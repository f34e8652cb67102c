"""Grader disagreement: how much each grader moves each number, from stored grades only.

For every unit graded by two or more graders, the samples graded by all of them (current
grader versions only) are aligned by ``(problem_id, sample_idx)``. A sample is a
*disagreement* when the graders do not all give the same correctness (``correct`` vs any other
verdict: ``incorrect``, ``no_answer``, ``truncated``, ``timeout`` and ``error`` all count as not
correct, as in the accuracy itself). Reported per unit:

- the accuracy under each grader over those common samples (the fraction graded ``correct``;
  with every problem complete this is the unit's avg@k under that grader);
- the number of samples on which the graders disagree, and for every pair of graders the
  number of samples one calls correct and the other does not (in both directions);
- a few examples: the response's tail, each grader's extracted answer and verdict, the gold.

Examples are the first disagreements in task order (problem order of the task file, then
sample index), so the same store gives the same report.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from ..core.records import Grade
from ..core.section import BulletList, Code, Emph, Inline, Paragraph, Section, Table, Text
from ..core.store import Store, UnitInfo
from .estimates import grader_version
from .labels import unit_name, unit_variants

TAIL_CHARS = 400
"""Characters of the response's end shown in an example."""

DISAGREEMENT_COLUMNS = [
    "checkpoint",
    "task",
    "prompt",
    "grader",
    "accuracy",
    "n_common",
    "n_disagree",
    "unit_key",
]


@dataclass(frozen=True)
class DisagreementExample:
    """One sample on which the graders disagree."""

    problem_id: str
    """The problem."""
    sample_idx: int
    """The sample of that problem."""
    gold: str
    """The gold answer as published."""
    response_tail: str
    """The last :data:`TAIL_CHARS` characters of the completion (``…`` marks a cut)."""
    extracted: dict[str, str | None]
    """Grader id -> the answer it extracted (``None``: nothing)."""
    verdicts: dict[str, str]
    """Grader id -> its verdict."""


@dataclass
class UnitDisagreement:
    """The graders of one unit side by side."""

    info: UnitInfo
    """The unit."""
    graders: list[str]
    """Graders compared (those with current-version grades for this unit), sorted."""
    n_common: int
    """Samples graded by every one of ``graders``."""
    accuracy: dict[str, float]
    """Grader id -> fraction of the common samples graded ``correct``."""
    n_disagree: int
    """Common samples on which the graders do not all agree on correctness."""
    pairwise: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    """``(a, b)`` (a < b) -> (samples correct under a only, samples correct under b only)."""
    examples: list[DisagreementExample] = field(default_factory=list)
    """Up to ``max_examples`` disagreements, in task order."""


def _tail(text: str, n: int = TAIL_CHARS) -> str:
    return text if len(text) <= n else "…" + text[-n:]


def unit_disagreement(
    store: Store,
    info: UnitInfo,
    graders: Sequence[str],
    *,
    max_examples: int = 3,
) -> UnitDisagreement | None:
    """Compare ``graders`` on one unit; ``None`` unless at least two of them graded it."""
    if max_examples < 0:
        raise ValueError(f"max_examples must be >= 0, got {max_examples}")
    if len(set(graders)) < 2:
        return None  # nothing to compare (and no grades to read)
    by_grader: dict[str, dict[tuple[str, int], Grade]] = {}
    for gid in sorted(set(graders)):
        grades = store.read_grades(info.key, gid, grader_version(gid))
        if grades:
            by_grader[gid] = {(g.problem_id, g.sample_idx): g for g in grades}
    if len(by_grader) < 2:
        return None
    names = sorted(by_grader)
    common = set.intersection(*(set(m) for m in by_grader.values()))
    order = {p.problem_id: i for i, p in enumerate(store.load_problems(info.spec.data_hash))}
    keys = sorted(common, key=lambda k: (order.get(k[0], len(order)), k[0], k[1]))
    correct = {gid: {k: by_grader[gid][k].verdict == "correct" for k in keys} for gid in names}
    n = len(keys)
    accuracy = {gid: (sum(correct[gid].values()) / n if n else 0.0) for gid in names}
    disagreeing = [k for k in keys if len({correct[gid][k] for gid in names}) > 1]
    pairwise = {
        (a, b): (
            sum(1 for k in keys if correct[a][k] and not correct[b][k]),
            sum(1 for k in keys if correct[b][k] and not correct[a][k]),
        )
        for a, b in itertools.combinations(names, 2)
    }
    examples: list[DisagreementExample] = []
    if disagreeing and max_examples:
        wanted = disagreeing[:max_examples]
        gens = {(g.problem_id, g.sample_idx): g for g in store.read_generations(info.key)}
        gold = {p.problem_id: p.answer for p in store.load_problems(info.spec.data_hash)}
        for k in wanted:
            gen = gens.get(k)
            examples.append(
                DisagreementExample(
                    problem_id=k[0],
                    sample_idx=k[1],
                    gold=gold.get(k[0], "?"),
                    response_tail=_tail(gen.completion) if gen is not None else "",
                    extracted={gid: by_grader[gid][k].extracted for gid in names},
                    verdicts={gid: by_grader[gid][k].verdict for gid in names},
                )
            )
    return UnitDisagreement(
        info=info,
        graders=names,
        n_common=n,
        accuracy=accuracy,
        n_disagree=len(disagreeing),
        pairwise=pairwise,
        examples=examples,
    )


def grader_disagreements(
    store: Store, units: Sequence[UnitInfo], graders: Sequence[str], *, max_examples: int = 3
) -> list[UnitDisagreement]:
    """:func:`unit_disagreement` for every unit graded by two or more of ``graders``."""
    out = []
    for info in units:
        d = unit_disagreement(store, info, graders, max_examples=max_examples)
        if d is not None:
            out.append(d)
    return out


def disagreement_frame(rows: Sequence[UnitDisagreement]) -> pd.DataFrame:
    """One row per unit and grader, :data:`DISAGREEMENT_COLUMNS` (accuracy as a fraction)."""
    records = [
        {
            "checkpoint": d.info.spec.checkpoint.checkpoint_id,
            "task": d.info.spec.task,
            "prompt": d.info.spec.template_id,
            "grader": gid,
            "accuracy": d.accuracy[gid],
            "n_common": d.n_common,
            "n_disagree": d.n_disagree,
            "unit_key": d.info.key,
        }
        for d in rows
        for gid in d.graders
    ]
    return pd.DataFrame(records, columns=DISAGREEMENT_COLUMNS)


def _cell(text: str | None) -> Inline:
    if not text:
        return "–"
    return Code(text)


def disagreement_section(rows: Sequence[UnitDisagreement]) -> Section:
    """The report's "Grader disagreement" section, with ``grader_disagreement.csv``."""
    section = Section("Grader disagreement", tables={"grader_disagreement.csv": disagreement_frame(rows)})
    if not rows:
        section.blocks.append(
            Paragraph(
                Emph(
                    [
                        "Each unit was graded by one grader only: run ",
                        Code("rlvr-audit grade --graders a,b,..."),
                        " to compare.",
                    ]
                )
            )
        )
        return section
    all_graders = sorted({g for d in rows for g in d.graders})
    variants = unit_variants([d.info for d in rows])
    name = {d.info.key: unit_name(d.info, variants[d.info.key]) for d in rows}
    header: list[Text] = ["Checkpoint", "Task", "Prompt", *(Code(g) for g in all_graders), "Samples", "Disagree"]
    table: list[list[Text]] = []
    for d in rows:
        s = d.info.spec
        accs: list[Text] = [f"{100 * d.accuracy[g]:.1f}" if g in d.accuracy else "" for g in all_graders]
        share = f" ({100 * d.n_disagree / d.n_common:.1f}%)" if d.n_common else ""
        table.append([name[d.info.key], s.task, Code(s.template_id), *accs, str(d.n_common), f"{d.n_disagree}{share}"])
    section.blocks += [
        Paragraph(
            [
                "Accuracy (%) of each unit under each grader, over the samples every grader of the unit graded; ",
                Emph("Disagree"),
                " counts the samples the graders do not all grade the same way (correct or not).",
            ]
        ),
        Table(header, table),
    ]
    pair_items: list[Text] = []
    for d in rows:
        moved: list[Inline] = []
        for (a, b), (x, y) in d.pairwise.items():
            if x or y:
                moved += [*(["; "] if moved else []), Code(a), f" only {x}, ", Code(b), f" only {y}"]
        if moved:
            pair_items.append([f"{name[d.info.key]} · {d.info.spec.task}: ", *moved])
    if pair_items:
        section.blocks += [Paragraph("Correct under one grader of a pair but not the other:"), BulletList(pair_items)]
    examples = [(d, ex) for d in rows for ex in d.examples]
    if examples:
        header = ["Checkpoint", "Problem", "Gold", *(Code(g) for g in all_graders), "Response tail"]
        table = []
        for d, ex in examples:
            per: list[Text] = [
                [f"{ex.verdicts[g]}: ", _cell(ex.extracted[g])] if g in ex.verdicts else "" for g in all_graders
            ]
            table.append(
                [
                    name[d.info.key],
                    f"{ex.problem_id} #{ex.sample_idx}",
                    _cell(ex.gold),
                    *per,
                    _cell(ex.response_tail),
                ]
            )
        section.blocks += [Paragraph("Examples (first disagreements in task order):"), Table(header, table)]
    return section


__all__ = [
    "DisagreementExample",
    "UnitDisagreement",
    "disagreement_frame",
    "disagreement_section",
    "grader_disagreements",
    "unit_disagreement",
]
