"""The code-reasoning and behaviour-flag report sections, with their tables and the across-steps
figures (from a :class:`~rlvr_audit.analysis.code_reasoning.CodeReport`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from ..core.section import (
    Block,
    Code,
    Emph,
    Figure,
    Heading,
    Link,
    Paragraph,
    Section,
    Strong,
    Table,
    Text,
    table_links,
)
from . import stats
from .behaviour import (
    CODE_DEFINITIONS,
    DEFAULT_DEFINITION,
)
from .code_reasoning import CodeReport, StepSeries, UnitCode, code_frame, flags_frame, steps_frame, transitions_frame
from .estimates import grader_order
from .figures import pyplot
from .labels import unit_name, unit_variants

__all__ = ["code_section", "code_sections", "flags_section", "step_figure", "step_figure_names"]


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _cell(iv: stats.Interval | None, signed: bool = False) -> str:
    if iv is None:
        return "–"
    if signed:
        return f"{100 * iv.value:+.1f} [{100 * iv.ci_low:+.1f}, {100 * iv.ci_high:+.1f}]"
    return f"{100 * iv.value:.1f} [{100 * iv.ci_low:.1f}, {100 * iv.ci_high:.1f}]"


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


def step_figure_names(series: Sequence[StepSeries]) -> list[str]:
    """File name of each series' figure: ``code_steps_<family>_<reward>_<task>_<template>_<grader>.png``,
    numbered ``_2``, ``_3`` ... when the same name recurs (another task version or protocol)."""
    seen: Counter[str] = Counter()
    out = []
    for s in series:
        stem = "_".join(_safe(x) for x in ("code_steps", s.family, s.reward, s.task, s.template_id, s.grader_id))
        seen[stem] += 1
        out.append(f"{stem}{'' if seen[stem] == 1 else '_' + str(seen[stem])}.png")
    return out


def code_section(report: CodeReport) -> Section | None:
    """The report's "Code reasoning" section with its tables and step figures (``None`` when no
    unit has graded responses)."""
    default = DEFAULT_DEFINITION
    rows = [c for c in report.code if c.definition == default]
    if not rows:
        return None
    level = round(100 * report.level)
    blocks: list[Block] = [
        Paragraph(
            [
                "Responses that reason in (unexecuted) code versus in language only, as in the Spurious Rewards "
                "paper's analysis. ",
                Emph("Code"),
                ": " + CODE_DEFINITIONS[default].description + ". ",
                Emph("Mentions Python"),
                ": " + CODE_DEFINITIONS["mentions_python"].description + ". Model output is never executed. Rates "
                "are shares of responses over the problems the unit has graded completely, with "
                f"{level}% bootstrap intervals (problems resampled with their samples, {report.n_resamples} "
                "resamples); accuracy given code is the accuracy of the code responses (",
                Code("–"),
                ": no such response).",
            ]
        )
    ]
    graders = grader_order(list({c.grader_id for c in rows}))  # math_verify first, as the report's tables
    python = {(c.info.key, c.grader_id): c.summary for c in report.code if c.definition == "mentions_python"}
    by_unit: dict[str, list[UnitCode]] = {}
    for c in rows:
        by_unit.setdefault(c.info.key, []).append(c)
    variants = unit_variants([cs[0].info for cs in by_unit.values()])
    unit_names = {key: unit_name(cs[0].info, variants[key]) for key, cs in by_unit.items()}
    # the strategy of a response does not depend on the grader: one row per unit, whatever the graders
    strategy: list[list[Text]] = []
    for key, cs in by_unit.items():
        c = max(cs, key=lambda x: x.summary.n_responses)  # the grader that graded the most of the unit
        s, spec = c.summary, c.info.spec
        py = python.get((key, c.grader_id))
        strategy.append(
            [
                unit_names[key],
                spec.task,
                Code(spec.template_id),
                str(s.n_responses),
                _cell(s.code_frequency),
                _cell(py.code_frequency) if py else "–",
            ]
        )
    blocks.append(Heading("Strategy per unit"))
    blocks.append(Table(["Checkpoint", "Task", "Prompt", "Responses", "Code (%)", "Mentions Python (%)"], strategy))
    # accuracies do: one row per unit and grader
    header: list[Text] = ["Checkpoint", "Task", "Prompt", *(["Grader"] if len(graders) > 1 else [])]
    header += ["Accuracy (%)", "Accuracy given code (%)", "Accuracy given language (%)", "Code - language (points)"]
    table: list[list[Text]] = []
    for key, cs in by_unit.items():
        for c in sorted(cs, key=lambda x: graders.index(x.grader_id)):
            s, spec = c.summary, c.info.spec
            table.append(
                [
                    unit_names[key],
                    spec.task,
                    Code(spec.template_id),
                    *([Code(c.grader_id)] if len(graders) > 1 else []),
                    _cell(s.accuracy),
                    f"{_cell(s.accuracy_code)} (n={s.n_code})",
                    f"{_cell(s.accuracy_language)} (n={s.n_language})",
                    _cell(s.code_minus_language, signed=True),
                ]
            )
    blocks.append(Heading("Accuracy by strategy" + (", per grader" if len(graders) > 1 else "")))
    blocks.append(Table(header, table))
    transitions = [t for t in report.transitions if t.table.definition == default]
    if transitions:
        blocks.append(Heading("Strategy transitions: RLVR checkpoint vs base"))
        blocks.append(
            Paragraph(
                [
                    "Per problem, the strategy in each unit (code when more than half of its samples are code) and "
                    "its accuracy (share of samples correct); each cell's ",
                    Emph("contribution"),
                    " is (its problems / all problems) x (accuracy after - accuracy before), and the contributions "
                    "add up to the gain. ",
                    Emph("Share"),
                    ": contribution / gain (the paper's Table 2; shares can be negative or above 100%).",
                ]
            )
        )
        header = ["Transition", "Problems", "Accuracy before (%)", "Accuracy after (%)", "Contribution (points)"]
        for t in transitions:
            comp, tab = t.comparison, t.table
            blocks.append(
                Paragraph(
                    [
                        Strong(unit_names.get(comp.treatment_unit, comp.treatment)),
                        f" vs {comp.baseline} · {comp.task} · ",
                        Code(comp.template_id),
                        " · grader ",
                        Code(comp.grader_id),
                        f": {_pct(tab.acc_before)} -> {_pct(tab.acc_after)} ({100 * tab.gain:+.1f} points over "
                        f"{tab.n_problems} problems)",
                    ]
                )
            )
            cells: list[list[Text]] = []
            for cell in tab.cells:
                share = "–" if cell.share is None else f"{100 * cell.share:.1f}"
                cells.append(
                    [
                        cell.label,
                        str(cell.n_problems),
                        _pct(cell.acc_before),
                        _pct(cell.acc_after),
                        f"{100 * cell.contribution:+.1f}",
                        share,
                    ]
                )
            blocks.append(Table([*header, "Share of gain (%)"], cells))
    if report.steps:
        blocks.append(Heading("Across training steps"))
        for series, name in zip(report.steps, step_figure_names(report.steps), strict=True):
            blocks.append(Paragraph(Strong(series.heading)))
            points: list[list[Text]] = [
                [str(p.step), p.checkpoint_id, _cell(p.code_frequency), _cell(p.accuracy)] for p in series.points
            ]
            blocks.append(Table(["Step", "Checkpoint", "Code (%)", "Accuracy (%)"], points))
            blocks.append(Figure(name, series.title, partial(step_figure, series)))
    links = [("code_reasoning.csv", "(every definition and grader)"), ("code_transitions.csv", "")]
    if report.steps:
        links.append(("code_steps.csv", ""))
    blocks.append(table_links(links, tail=" (fractions)."))
    tables = {"code_reasoning.csv": code_frame(report), "code_transitions.csv": transitions_frame(report)}
    if report.steps:
        tables["code_steps.csv"] = steps_frame(report)
    return Section("Code reasoning", blocks, tables=tables)


def flags_section(report: CodeReport) -> Section | None:
    """The report's "Behaviour flags" section with ``behaviour_flags.csv`` (``None`` without units)."""
    if not report.flags:
        return None
    level = round(100 * report.level)
    note = Paragraph(
        [
            "Per unit, over all its stored responses: ",
            Emph("truncated"),
            ": generation stopped at the token limit; ",
            Emph("repetition"),
            ": a stretch of text repeated more than 10 times in a row (at least 100 characters); ",
            Emph("empty"),
            ": a blank response; ",
            Emph("no boxed answer"),
            ": no non-blank final ",
            Code("\\boxed{}"),
            f". Rates in % with {level}% bootstrap intervals (problems resampled). A base model that runs out of "
            "tokens or never boxes its answer loses accuracy for reasons a reward can fix without teaching any "
            "mathematics.",
        ]
    )
    header: list[Text] = ["Checkpoint", "Task", "Prompt", "Responses", "Truncated (%)", "Repetition (%)", "Empty (%)"]
    header += ["No boxed answer (%)", "Mean tokens"]
    rows: list[list[Text]] = []
    variants = unit_variants([f.info for f in report.flags])
    for f in report.flags:
        s, spec = f.summary, f.info.spec
        tokens = "–" if s.mean_tokens is None else f"{s.mean_tokens:.0f}"
        if s.mean_tokens is not None and s.n_tokens_known < s.n_responses:
            tokens += f" (n={s.n_tokens_known})"
        rows.append(
            [
                unit_name(f.info, variants[f.info.key]),
                spec.task,
                Code(spec.template_id),
                str(s.n_responses),
                _cell(s.truncation_rate) if s.truncation_rate is not None else "unknown",
                _cell(s.repetition_rate),
                _cell(s.empty_rate),
                _cell(s.boxed_nothing_rate),
                tokens,
            ]
        )
    footer = Paragraph(
        ["Table: ", Link(Code("tables/behaviour_flags.csv"), "tables/behaviour_flags.csv"), " (fractions)."]
    )
    return Section(
        "Behaviour flags", [note, Table(header, rows), footer], tables={"behaviour_flags.csv": flags_frame(report)}
    )


def code_sections(report: CodeReport) -> list[Section]:
    """The code-reasoning and behaviour-flag sections that have something to show."""
    return [s for s in (code_section(report), flags_section(report)) if s is not None]


def step_figure(series: StepSeries, path: Path) -> Path:
    """Code frequency (left) and accuracy (right) against training step, with interval bars."""
    plt = pyplot()
    steps = [p.step for p in series.points]
    fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.4), sharex=True)
    for ax, what, label in (
        (axes[0], "code_frequency", "code reasoning (% of responses)"),
        (axes[1], "accuracy", "accuracy (%)"),
    ):
        ivs: list[stats.Interval] = [getattr(p, what) for p in series.points]
        ys = [100 * iv.value for iv in ivs]
        err = [[100 * (iv.value - iv.ci_low) for iv in ivs], [100 * (iv.ci_high - iv.value) for iv in ivs]]
        ax.errorbar(steps, ys, yerr=err, fmt="o-", capsize=3, ms=5)
        ax.set_xlabel("training step")
        ax.set_ylabel(label)
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
    fig.suptitle(series.title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
