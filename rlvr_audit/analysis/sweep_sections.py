"""The prompt-sensitivity report section (from :func:`~rlvr_audit.analysis.sweep.build_sweep`), with its
tables and one dot plot per setting."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from ..core.section import (
    BREAK,
    Block,
    Code,
    Emph,
    Figure,
    Heading,
    Paragraph,
    Section,
    Strong,
    Table,
    Text,
    table_links,
)
from . import stats
from .figures import pyplot
from .sweep import SweepGroup, gains_frame, protocol_label, setting_order, spread_frame, sweep_frame

__all__ = ["dot_plot", "figure_names", "sweep_section"]


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _pts(x: float) -> str:
    return f"{100 * x:+.1f}"


def _interval(iv: stats.Interval, signed: bool = False) -> str:
    f = _pts if signed else _pct
    return f"{f(iv.value)} [{f(iv.ci_low)}, {f(iv.ci_high)}]"


def _settings(groups: Sequence[SweepGroup]) -> list[list[SweepGroup]]:
    """Groups of one setting (task, version, protocol, grader) where at least one is swept."""
    by: dict[tuple[str, str, str, str], list[SweepGroup]] = {}
    for g in groups:
        by.setdefault(g.setting, []).append(g)
    return [sorted(gs, key=setting_order) for _, gs in sorted(by.items()) if any(g.swept for g in gs)]


def figure_names(groups: Sequence[SweepGroup]) -> dict[tuple[str, str, str, str], str]:
    """Setting -> figure file name: ``prompt_sweep_<task>_<grader>.png``, numbered ``_2``, ``_3``
    ... when a task and grader have several versions or protocols."""
    out: dict[tuple[str, str, str, str], str] = {}
    seen: Counter[tuple[str, str]] = Counter()
    for gs in _settings(groups):
        task, _, _, grader = gs[0].setting
        seen[(task, grader)] += 1
        suffix = "" if seen[(task, grader)] == 1 else f"_{seen[(task, grader)]}"
        out[gs[0].setting] = f"prompt_sweep_{_safe(task)}_{_safe(grader)}{suffix}.png"
    return out


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


def _heading(gs: Sequence[SweepGroup], several_protocols: bool) -> Heading:
    g = gs[0]
    extra = f", {protocol_label(g.protocol)}" if several_protocols else ""
    return Heading([f"{g.task_display}: accuracy per prompt ({g.metric}, grader ", Code(g.grader_id), f"{extra})"])


def _setting_blocks(gs: Sequence[SweepGroup], figure: str, several_protocols: bool) -> list[Block]:
    """One setting's heading, accuracy table, parse-rate table, gains table and dot plot."""
    templates = sorted({t for g in gs for t in g.templates})
    header: list[Text] = ["Checkpoint", *(Code(t) for t in templates), "Spread (points)", "Default rank"]
    rows: list[list[Text]] = []
    parse_rows: list[list[Text]] = []
    for g in gs:
        by_t = {s.template_id: s for s in g.scores}
        cells: list[Text] = []
        parse_cells: list[Text] = []
        for t in templates:
            s = by_t.get(t)
            if s is None:
                cells.append("–")
                parse_cells.append("–")
                continue
            text = f"{_interval(s.accuracy)} (#{s.rank})"
            cells.append(Strong(text) if s.is_default else text)
            parse_cells.append(_interval(s.parse_rate))
        spread: Text = "–"
        if g.spread is not None:
            lo, hi = g.spread_pick if g.spread_pick is not None else (g.spread.ci_low, g.spread.ci_high)
            spread = [f"{_pts(g.spread.value)} [{_pts(lo)}, {_pts(hi)}]", BREAK]
            spread += [Code(g.best), " - ", Code(g.worst)]
        rank = "–" if g.default_rank is None else f"{g.default_rank} of {g.n_templates}"
        rows.append([g.checkpoint_id, *cells, spread, rank])
        parse_rows.append([g.checkpoint_id, *parse_cells])
    n_problems = sorted({len(g.problem_ids) for g in gs})
    blocks: list[Block] = [
        _heading(gs, several_protocols),
        Table(header, rows),
        Paragraph(f"Problems: {', '.join(map(str, n_problems))} per checkpoint (common to its templates)."),
        Paragraph("Parse rate (%):"),
        Table(["Checkpoint", *(Code(t) for t in templates)], parse_rows),
    ]
    gain_rows = [(g, gain) for g in gs for gain in g.gains]
    if gain_rows:
        blocks.append(
            Paragraph(
                [
                    "Gain of each RLVR checkpoint over its base, in points: under the same template (paired over the "
                    "problems both have graded, as in ",
                    Emph("Gains over base"),
                    "), and over the base under its ",
                    Strong("best"),
                    " template (the ",
                    Emph("best-prompted base"),
                    "). The best base template is picked on the same data, which favours the base: the gain over it "
                    "is biased downward, and its interval ignores that choice.",
                ]
            )
        )
        table: list[list[Text]] = []
        for g, gain in gain_rows:
            c, o = gain.same_prompt, gain.over_best
            same: Text = f"{_pts(c.delta)} [{_pts(c.ci_low)}, {_pts(c.ci_high)}]" if c else Emph("base not run so")
            best: Text = Code(gain.base_best_template) if gain.base_best_template else Emph("base not swept")
            over = _interval(o, signed=True) if o else "–"
            prompt: Text = Strong(Code(gain.template_id)) if gain.is_default else Code(gain.template_id)
            n = gain.over_best_n_problems if o else (c.n_problems if c else "–")
            table.append([g.checkpoint_id, prompt, same, best, over, str(n)])
        header = ["Checkpoint", "Prompt", "Gain, same prompt", "Base's best prompt", "Gain over best-prompted base"]
        blocks.append(Table([*header, "Problems"], table))
    blocks.append(Figure(figure, f"{gs[0].task_display} accuracy per prompt", partial(dot_plot, gs)))
    return blocks


def sweep_section(groups: Sequence[SweepGroup]) -> Section | None:
    """The report's "Prompt sensitivity" section with its tables and figures; ``None`` when no
    checkpoint x task x protocol x grader has two or more templates."""
    settings = _settings(groups)
    if not settings:
        return None
    names = figure_names(groups)
    level = groups[0].scores[0].accuracy.level
    per_task = Counter((gs[0].task, gs[0].grader_id) for gs in settings)
    blocks: list[Block] = [
        Paragraph(
            [
                "Each checkpoint under several prompt templates, everything else equal, on the problems every "
                f"template has graded. Accuracy in % with its {round(100 * level)}% bootstrap interval (problems "
                "resampled); rank 1 is the best template (ties share a rank); ",
                Strong("bold"),
                ": the checkpoint's default template. ",
                Emph("Spread"),
                ": best minus worst template; best and worst are picked on the same data, so the spread is biased "
                "upward. Its interval bootstraps the whole pick (best and worst picked again in every replicate), "
                "so it accounts for the selection; it is not a test that the spread is above 0. ",
                Emph("Parse rate"),
                ": share of answers from which the grader extracted a final answer (not ",
                Code("no_answer"),
                ", not ",
                Code("truncated"),
                ").",
            ]
        )
    ]
    for gs in settings:
        blocks += _setting_blocks(gs, names[gs[0].setting], per_task[(gs[0].task, gs[0].grader_id)] > 1)
    blocks.append(
        table_links(
            [
                ("prompt_sweep.csv", "(accuracy and parse rate per template)"),
                ("prompt_sweep_spread.csv", ""),
                ("prompt_sweep_gains.csv", "(fractions)"),
            ]
        )
    )
    return Section(
        "Prompt sensitivity",
        blocks,
        tables={
            "prompt_sweep.csv": sweep_frame(groups),
            "prompt_sweep_spread.csv": spread_frame(groups),
            "prompt_sweep_gains.csv": gains_frame(groups),
        },
    )


def dot_plot(groups: Sequence[SweepGroup], path: Path) -> Path:
    """Write :func:`dot_figure` of one setting's ``groups`` to ``path`` (legend included)."""
    plt = pyplot()
    fig = dot_figure(groups)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130, bbox_inches="tight")  # "tight": the legend right of the axes is kept
    plt.close(fig)
    return path


def dot_figure(groups: Sequence[SweepGroup]) -> Any:
    """Templates (x) by checkpoints (one colour each): accuracy dots with interval bars; the
    default template of a checkpoint is ringed by a larger diamond. ``groups``: one setting's groups.

    The y axis starts at 0 and ends at 100 or a little above the highest interval (at least 5
    points, so all-zero accuracies sit on a readable 0-5 axis, not on matplotlib's -0.04..0.04);
    the legend (checkpoints, then the diamond) is outside the axes, right of them, covering no point."""
    plt = pyplot()
    from matplotlib.lines import Line2D  # heavy: only when a figure is drawn (see figures.pyplot)

    templates = sorted({t for g in groups for t in g.templates})
    n = len(groups)
    width = 0.7
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(templates) + 2.5), 4.2))
    top = 0.0
    any_default = False
    for j, g in enumerate(groups):
        offset = (j - (n - 1) / 2) * (width / max(n, 1)) if n > 1 else 0.0
        by_t = {s.template_id: s for s in g.scores}
        xs, ys, lo, hi = [], [], [], []
        for i, t in enumerate(templates):
            s = by_t.get(t)
            if s is None:
                continue
            xs.append(i + offset)
            ys.append(100 * s.accuracy.value)
            lo.append(100 * (s.accuracy.value - s.accuracy.ci_low))
            hi.append(100 * (s.accuracy.ci_high - s.accuracy.value))
            top = max(top, 100 * s.accuracy.ci_high, 100 * s.accuracy.value)
        bars = ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o", capsize=3, label=g.checkpoint_id, ms=5, clip_on=False)
        default = next((s for s in g.scores if s.is_default), None)
        if default is not None:
            any_default = True
            ax.plot(
                [templates.index(default.template_id) + offset],
                [100 * default.accuracy.value],
                marker="D",
                ms=9,
                mfc="none",
                color=bars[0].get_color(),
                clip_on=False,
            )
    ax.set_ylim(0.0, min(100.0, max(5.0, 1.08 * top)))
    ax.set_xticks(range(len(templates)), templates, rotation=30, ha="right")
    ax.set_ylabel(f"accuracy (%), {groups[0].metric}")
    level = groups[0].scores[0].accuracy.level
    ax.set_title(
        f"{groups[0].task_display}: accuracy per prompt (grader {groups[0].grader_id}; bars: {round(100 * level)}% CI)",
        fontsize=9,
    )
    ax.grid(axis="y", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if any_default:
        handles.append(Line2D([], [], marker="D", ms=9, mfc="none", color="0.3", linestyle="none"))
        labels.append("default prompt")
    ax.legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    return fig
