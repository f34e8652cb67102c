"""The gain-anatomy report section, its table, figure and summary line (from the
:class:`~rlvr_audit.analysis.anatomy.ComparisonAnatomy` values of a report)."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from functools import partial
from pathlib import Path

import pandas as pd

from ..core.records import natural_key
from ..core.section import (
    Block,
    BulletList,
    Code,
    Emph,
    Figure,
    Heading,
    Inline,
    Paragraph,
    Section,
    Strong,
    Table,
    Text,
)
from ..core.section import table_links as links
from . import stats
from .anatomy import PART_METHOD, AnatomyPart, ComparisonAnatomy
from .behaviour import BEHAVIOUR_CLASSES, CLASS_DESCRIPTIONS
from .figures import pyplot

__all__ = ["ANATOMY_COLUMNS", "anatomy_figure", "anatomy_frame", "anatomy_section", "anatomy_summary"]

ANATOMY_COLUMNS = [
    "checkpoint",
    "base",
    "task",
    "prompt",
    "protocol",
    "grader",
    "step",
    "n_problems",
    "gain",
    "split",
    "base_class",
    "trained_class",
    "part_problems",
    "acc_before",
    "acc_after",
    "contribution",
    "contribution_exact",
    "contribution_ci_low",
    "contribution_ci_high",
    "share",
    "level",
    "method",
    "treatment_unit",
    "baseline_unit",
]
"""Columns of ``tables/gain_anatomy.csv``: per comparison, one row per base class (``split``
``base``), per trained class (``trained``) and per transition cell (``transition``); fractions,
with each contribution also as an exact fraction ``p/q``."""

_COLOURS = {
    "degenerate": "#d62728",
    "truncated": "#ff7f0e",
    "no_answer": "#bcbd22",
    "code": "#1f77b4",
    "clean": "#2ca02c",
}


def _points(x: Fraction | float | None, signed: bool = False) -> str:
    if x is None:
        return "–"
    return f"{100 * float(x):+.1f}" if signed else f"{100 * float(x):.1f}"


def _with_ci(value: Fraction | float, iv: stats.Interval | None) -> str:
    if iv is None:
        return _points(value, signed=True)
    return f"{100 * float(value):+.1f} [{100 * iv.ci_low:+.1f}, {100 * iv.ci_high:+.1f}]"


def _order(items: Sequence[ComparisonAnatomy]) -> list[ComparisonAnatomy]:
    """By family, reward, task, prompt, then training step numerically."""
    return sorted(
        items,
        key=lambda a: (
            a.family,
            a.reward or "",
            a.comparison.task,
            a.comparison.template_id,
            a.protocol,
            a.step if a.step is not None else -1,
            natural_key(a.comparison.treatment),
        ),
    )


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


def figure_name(grader_id: str) -> str:
    """``gain_anatomy_<grader>.png``."""
    return f"gain_anatomy_{_safe(grader_id)}.png"


def _bar_label(a: ComparisonAnatomy) -> str:
    c = a.comparison
    step = f" (step {a.step})" if a.step is not None else ""
    return f"{c.treatment}{step}\nvs {c.baseline}\n{c.task}, {c.template_id}"


def anatomy_figure(items: Sequence[ComparisonAnatomy], grader_id: str, path: Path) -> Path:
    """One bar per comparison: the parts of the gain by base class stacked (gains up, losses
    down), the total gain as a black diamond with its interval; runs with several steps in step order."""
    plt = pyplot()
    ordered = _order(items)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(ordered) + 2.5), 4.2))
    for x, a in enumerate(ordered):
        up = down = 0.0
        for part in a.anatomy.by_base:
            v = 100 * float(part.contribution)
            if v == 0:
                continue
            bottom = up if v > 0 else down
            ax.bar(x, v, bottom=bottom, color=_COLOURS[str(part.before)], width=0.6, edgecolor="white")
            if v > 0:
                up += v
            else:
                down += v
        iv = a.anatomy.gain_interval
        g = 100 * float(a.anatomy.gain)
        ax.errorbar(x, g, yerr=[[g - 100 * iv.ci_low], [100 * iv.ci_high - g]], fmt="D", color="black", capsize=4, ms=6)
    for cls in BEHAVIOUR_CLASSES:
        ax.bar(0, 0, color=_COLOURS[cls], label=f"base {cls}")
    ax.errorbar([], [], yerr=[], fmt="D", color="black", label="total gain (paired interval)")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(range(len(ordered)))
    ax.set_xticklabels([_bar_label(a) for a in ordered], fontsize=7)
    ax.set_ylabel("contribution to the gain (points)")
    ax.set_title(f"Gain by the base response's behaviour, grader {grader_id}", fontsize=9)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def _header(a: ComparisonAnatomy) -> Paragraph:
    c, an = a.comparison, a.anatomy
    step = f" (step {a.step})" if a.step is not None else ""
    return Paragraph(
        [
            Strong(c.treatment),
            f"{step} vs {c.baseline} · {c.task} · ",
            Code(c.template_id),
            f" · {a.protocol} · grader ",
            Code(c.grader_id),
            f": {_points(an.acc_before)} -> {_points(an.acc_after)}, gain "
            f"{_with_ci(an.gain, _comparison_interval(a))} points over {an.n_problems} problems "
            "(the reproduction table's paired interval).",
        ]
    )


def _comparison_interval(a: ComparisonAnatomy) -> stats.Interval:
    c = a.comparison
    return stats.Interval(c.delta, c.ci_low, c.ci_high, c.level, c.method)


def _class_rows(a: ComparisonAnatomy) -> list[list[Text]]:
    rows: list[list[Text]] = []
    for b, t in zip(a.anatomy.by_base, a.anatomy.by_rlvr, strict=True):
        rows.append(
            [
                str(b.before),
                str(b.n_problems),
                _points(b.acc_before),
                _points(b.acc_after),
                _with_ci(b.contribution, b.interval) if b.n_problems else "–",
                "–" if b.share is None or not b.n_problems else f"{100 * float(b.share):.0f}",
                str(t.n_problems),
                _with_ci(t.contribution, t.interval) if t.n_problems else "–",
            ]
        )
    return rows


def _cell_rows(a: ComparisonAnatomy) -> list[list[Text]]:
    return [
        [
            str(cell.before),
            str(cell.after),
            str(cell.n_problems),
            _points(cell.acc_before),
            _points(cell.acc_after),
            _with_ci(cell.contribution, cell.interval),
        ]
        for cell in a.anatomy.transitions
        if cell.n_problems
    ]


def _clean_line(a: ComparisonAnatomy) -> Paragraph:
    cl = a.anatomy.clean
    if cl.gain is None:
        return Paragraph([Emph("Gain on clean problems"), ": no problem had a clean base response."])
    parts: list[Inline] = [
        Emph("Gain on clean problems"),
        f" (the {cl.n_problems} problems whose base response was clean language with a boxed answer): "
        f"{_with_ci(cl.gain, cl.interval)} points",
    ]
    if cl.p_value is not None:
        parts.append(f", p = {cl.p_value:.3g} ({cl.test})")
        if cl.interval is not None and stats.disagrees_with_test(cl.interval, cl.p_value):
            parts.append(" ⚠ the interval and the exact test disagree about significance")
    parts.append(".")
    return Paragraph(parts)


def _truncation_note(items: Sequence[ComparisonAnatomy]) -> Paragraph | None:
    unknown = [a for a in items if a.anatomy.truncation_unknown_base or a.anatomy.truncation_unknown_rlvr]
    if not unknown:
        return None
    names = sorted({a.comparison.treatment for a in unknown} | {a.comparison.baseline for a in unknown})
    return Paragraph(
        [
            Emph("Truncation unknown"),
            ": some responses of ",
            ", ".join(names),
            " carry no finish reason or token count (imported generations), so whether they stopped at the "
            "token limit cannot be known: none of them is classed truncated, and a cut-off response counts "
            "as degenerate or no answer by its text.",
        ]
    )


def anatomy_frame(items: Sequence[ComparisonAnatomy]) -> pd.DataFrame:
    """The rows of ``tables/gain_anatomy.csv`` (:data:`ANATOMY_COLUMNS`)."""
    rows = []
    for a in _order(items):
        c, an = a.comparison, a.anatomy
        parts: list[tuple[str, AnatomyPart]] = [("base", p) for p in an.by_base]
        parts += [("trained", p) for p in an.by_rlvr] + [("transition", p) for p in an.transitions]
        for split, p in parts:
            rows.append(
                {
                    "checkpoint": c.treatment,
                    "base": c.baseline,
                    "task": c.task,
                    "prompt": c.template_id,
                    "protocol": a.protocol,
                    "grader": c.grader_id,
                    "step": a.step,
                    "n_problems": an.n_problems,
                    "gain": float(an.gain),
                    "split": split,
                    "base_class": p.before,
                    "trained_class": p.after,
                    "part_problems": p.n_problems,
                    "acc_before": None if p.acc_before is None else float(p.acc_before),
                    "acc_after": None if p.acc_after is None else float(p.acc_after),
                    "contribution": float(p.contribution),
                    "contribution_exact": str(p.contribution),
                    "contribution_ci_low": p.interval.ci_low,
                    "contribution_ci_high": p.interval.ci_high,
                    "share": None if p.share is None else float(p.share),
                    "level": p.interval.level,
                    "method": p.interval.method,
                    "treatment_unit": c.treatment_unit,
                    "baseline_unit": c.baseline_unit,
                }
            )
    return pd.DataFrame(rows, columns=ANATOMY_COLUMNS)


def anatomy_section(items: Sequence[ComparisonAnatomy]) -> Section | None:
    """The report's "Gain anatomy" section (``None`` without comparisons)."""
    if not items:
        return None
    level = round(100 * items[0].anatomy.gain_interval.level)
    blocks: list[Block] = [
        Paragraph(
            [
                "Where each gain over the base model came from. Every response gets one behaviour class, the "
                "first that applies: ",
                *[
                    part
                    for cls in BEHAVIOUR_CLASSES
                    for part in (Emph(cls), f" ({CLASS_DESCRIPTIONS[cls]})", "; " if cls != "clean" else ". ")
                ],
                "A problem's class is the class most of its samples have (ties go to the earlier class). The "
                "gain splits exactly into one part per base class (and per trained class, and per transition): "
                "(problems of the part / all problems) x (accuracy after - accuracy before); the parts add up "
                "to the gain as exact fractions (a part's share of the gain can be negative or above 100%). "
                f"Intervals: {level}% percentile bootstrap over problems "
                f"({PART_METHOD}); the gain on clean problems has the reproduction table's paired interval and "
                "the exact paired test.",
            ]
        )
    ]
    note = _truncation_note(items)
    if note is not None:
        blocks.append(note)
    graders = list(dict.fromkeys(a.comparison.grader_id for a in items))
    class_header: list[Text] = ["Base class", "Problems", "Accuracy before (%)", "Accuracy after (%)"]
    class_header += ["Contribution (points)", "Share of gain (%)", "Problems (trained class)"]
    class_header += ["Contribution by trained class (points)"]
    cell_header: list[Text] = ["Base class", "Trained class", "Problems", "Accuracy before (%)"]
    cell_header += ["Accuracy after (%)", "Contribution (points)"]
    for grader in graders:
        mine = _order([a for a in items if a.comparison.grader_id == grader])
        if len(graders) > 1:
            blocks.append(Heading(["Grader ", Code(grader)]))
        for a in mine:
            blocks.append(_header(a))
            blocks.append(Table(class_header, _class_rows(a), kind="measured"))
            blocks.append(Paragraph(Emph("Transitions (base class -> trained class), non-empty cells:")))
            blocks.append(Table(cell_header, _cell_rows(a), kind="measured"))
            blocks.append(_clean_line(a))
        blocks.append(
            Figure(
                figure_name(grader),
                f"Gain by the base response's behaviour class, grader {grader}",
                partial(anatomy_figure, mine, grader),
            )
        )
    blocks.append(links([("gain_anatomy.csv", "(fractions; exact contributions as p/q)")]))
    return Section("Gain anatomy", blocks, tables={"gain_anatomy.csv": anatomy_frame(items)})


def _summary_item(a: ComparisonAnatomy) -> list[Inline]:
    c, an = a.comparison, a.anatomy
    step = f" (step {a.step})" if a.step is not None else ""
    return [
        f"{_points(an.degenerate_or_truncated, signed=True)} of the {_points(an.gain, signed=True)}-point gain of ",
        Strong(c.treatment),
        f"{step} over {c.baseline} ({c.task}, ",
        Code(c.template_id),
        f") comes from problems where the base response was degenerate or truncated "
        f"({an.n_degenerate_or_truncated} of {an.n_problems} problems); gain on clean problems "
        + (
            f"{_with_ci(an.clean.gain, an.clean.interval)} over {an.clean.n_problems} problems"
            + (f" (exact test p = {an.clean.p_value:.3g})." if an.clean.p_value is not None else ".")
            if an.clean.gain is not None
            else "undefined (no clean base response)."
        ),
    ]


def anatomy_summary(items: Sequence[ComparisonAnatomy]) -> list[Block]:
    """The summary lines for the top of the report: per comparison of the first grader, the part
    of the gain from problems whose base response was degenerate or truncated."""
    if not items:
        return []
    grader = items[0].comparison.grader_id
    mine = _order([a for a in items if a.comparison.grader_id == grader])
    lead: list[Inline] = [Strong("Gain anatomy"), " (grader ", Code(grader), ", see the Gain anatomy section):"]
    shown = [a for a in mine if a.anatomy.n_degenerate_or_truncated > 0]
    if not shown:
        # nothing to split off: one line instead of a bullet per comparison saying "+0.0 of ..."
        return [
            Paragraph(
                [
                    *lead,
                    f" no base response was degenerate or truncated in the {len(mine)} comparison"
                    + ("s" if len(mine) != 1 else "")
                    + "; no part of any gain comes from base responses that looped or ran out of tokens.",
                ]
            )
        ]
    rest = len(mine) - len(shown)
    tail: list[Block] = (
        [Paragraph(f"The other {rest} comparison{'s' if rest != 1 else ''}: no degenerate or truncated base response.")]
        if rest
        else []
    )
    if len(shown) == 1:
        return [Paragraph([*lead, " ", *_summary_item(shown[0])]), *tail]
    return [Paragraph(lead), BulletList([_summary_item(a) for a in shown]), *tail]
