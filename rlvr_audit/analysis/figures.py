"""Report figures from an analysis: accuracy with its interval, gains over base with theirs.

Two kinds of PNG, one per grader, each with one panel per benchmark (task):

- ``figures/accuracy_<grader>.png``: every unit's ``avg@k`` as a point with its
  confidence interval as a horizontal bar, rows = checkpoint x prompt template, base models
  grey and RLVR checkpoints coloured by family.
- ``figures/gains_<grader>.png``: every paired comparison's gain over the base model in points
  with its paired interval, rows grouped by family (then reward and step), a line at zero.

The numbers are exactly those of the reproduction table and the gains table of the same report
(:class:`~rlvr_audit.analysis.estimates.Analysis`); the figures only draw them.
:func:`figures_section` returns the report section that places them (each figure with the
function that draws it, called by the report writer). :func:`pyplot` is the one way every
report figure gets matplotlib.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from ..core.records import Comparison, Estimate
from ..core.section import Figure, Paragraph, Section, Strong
from ..core.store import UnitInfo
from . import labels
from .estimates import Analysis

__all__ = ["accuracy_figure", "figure_file", "figures_section", "gains_figure", "pyplot"]

_PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]
_BASE_COLOUR = "#555555"


def figure_file(kind: str, grader_id: str) -> str:
    """File name (under ``figures/``) of a figure: ``<kind>_<grader>.png`` with the grader id
    reduced to letters, digits, ``_`` and ``-``."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", grader_id) or "grader"
    return f"{kind}_{safe}.png"


def _unit_label(u: UnitInfo, variant: str = "") -> str:
    return f"{labels.row_name(u, variant)} · {u.spec.template_id}"


def pyplot():  # type: ignore[no-untyped-def]
    """matplotlib's ``pyplot`` on the file-only ``Agg`` backend (every report figure draws with it)."""
    import matplotlib  # heavy (about 0.5 s): imported only when a figure is drawn

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt  # heavy, as above

    return plt


def _panels(n_tasks: int, n_rows: int):  # type: ignore[no-untyped-def]
    plt = pyplot()
    width = max(6.0, 4.2 * n_tasks + 2.5)
    height = max(2.2, 0.32 * n_rows + 1.4)
    fig, axes = plt.subplots(1, n_tasks, figsize=(width, height), sharey=True, squeeze=False)
    return plt, fig, axes[0]


def accuracy_figure(analysis: Analysis, grader_id: str, path: Path) -> Path | None:
    """Draw the accuracy figure of one grader at ``path``; ``None`` (nothing written) when the
    grader has no ``avg@k`` estimate.

    One panel per task; one row per checkpoint x prompt template (in the order of
    ``analysis.units``); a point at ``avg@k`` in % and a bar over its confidence interval.
    """
    units = {u.key: u for u in analysis.units}
    est: list[tuple[UnitInfo, Estimate]] = [
        (units[e.unit_key], e)
        for e in analysis.estimates
        if e.grader_id == grader_id and e.unit_key in units and e.metric == f"avg@{e.n_samples}"
    ]
    if not est:
        return None
    # one panel per table column (a task, and its protocol where the task was run under several)
    proto = labels.column_protocols([u for u, _ in est], labels.protocol_label)
    panel_of = {u.key: (u.spec.task, proto[u.key]) for u, _ in est}
    panels = list(dict.fromkeys(panel_of[u.key] for u, _ in est))
    variants = labels.unit_variants(
        [u for u, _ in est], group=lambda u: (u.spec.checkpoint.checkpoint_id, u.spec.template_id, panel_of[u.key])
    )

    def row_of(u: UnitInfo) -> str:
        return f"{labels.row_name(u, variants[u.key])} · {u.spec.template_id}"

    rows = list(dict.fromkeys(row_of(u) for u, _ in est))
    families = list(dict.fromkeys(u.family for u, _ in est))
    plt, fig, axes = _panels(len(panels), len(rows))
    for ax, panel in zip(axes, panels, strict=True):
        for u, e in est:
            if panel_of[u.key] != panel:
                continue
            y = rows.index(row_of(u))
            colour = _BASE_COLOUR if u.base is None else _PALETTE[families.index(u.family) % len(_PALETTE)]
            lo, hi = e.ci_low, e.ci_high
            if lo is not None and hi is not None:
                ax.plot([100 * lo, 100 * hi], [y, y], color=colour, lw=2, solid_capstyle="butt")
            ax.plot([100 * e.value], [y], "o", color=colour, ms=5)
        task, protocol = panel
        display = next((u.task_display for u, _ in est if u.spec.task == task and u.task_display), task)
        metric = labels.metric_header(e.metric for u, e in est if panel_of[u.key] == panel)
        ax.set_title(f"{display} ({metric})" + (f"\n{protocol}" if protocol else ""), fontsize=8 if protocol else 9)
        ax.set_xlim(-2, 102)
        ax.set_xlabel("accuracy (%)", fontsize=8)
        ax.grid(axis="x", color="#dddddd", lw=0.6)
        ax.tick_params(labelsize=7)
    axes[0].set_yticks(range(len(rows)), rows)
    axes[0].set_ylim(len(rows) - 0.4, -0.6)  # first row on top
    level = round(100 * est[0][1].level)
    fig.suptitle(f"Accuracy with {level}% interval, grader {grader_id} (grey: base models)", fontsize=9)
    return _save(plt, fig, path)


def _gain_labels(comparisons: Sequence[Comparison], units: dict[str, UnitInfo]) -> dict[str, str]:
    """Treatment unit key -> its row label (units of one checkpoint and prompt in one panel are
    told apart by what differs between them, e.g. the token limit)."""
    treated = [units[c.treatment_unit] for c in comparisons if c.treatment_unit in units]
    variants = labels.unit_variants(treated)
    out = {u.key: _unit_label(u, variants[u.key]) for u in treated}
    for c in comparisons:
        out.setdefault(c.treatment_unit, f"{c.treatment} · {c.template_id}")
    return out


def _gain_rows(comparisons: Sequence[Comparison], units: dict[str, UnitInfo]) -> list[str]:
    def order(c: Comparison) -> tuple[str, str, int, str]:
        u = units.get(c.treatment_unit)
        return (u.family if u else "", (u.reward or "") if u else "", (u.step or 0) if u else 0, c.treatment)

    names = _gain_labels(comparisons, units)
    return list(dict.fromkeys(names[c.treatment_unit] for c in sorted(comparisons, key=order)))


def gains_figure(analysis: Analysis, grader_id: str, path: Path) -> Path | None:
    """Draw the gains figure of one grader at ``path``; ``None`` (nothing written) when the
    grader has no comparison.

    One panel per task; one row per RLVR checkpoint x prompt template, grouped by family, then
    reward and step; a point at the gain over the base model in points and a bar over its paired
    confidence interval; colour = family; a vertical line at zero (no gain).
    """
    comps = [c for c in analysis.comparisons if c.grader_id == grader_id]
    if not comps:
        return None
    units = {u.key: u for u in analysis.units}
    rows = _gain_rows(comps, units)
    names = _gain_labels(comps, units)
    tasks = list(dict.fromkeys(c.task for c in comps))
    families = list(dict.fromkeys(u.family for u in analysis.units))
    plt, fig, axes = _panels(len(tasks), len(rows))
    span = max(5.0, *(100 * max(abs(c.ci_low), abs(c.ci_high)) for c in comps))
    for ax, task in zip(axes, tasks, strict=True):
        ax.axvline(0, color="#333333", lw=0.8)
        for c in comps:
            if c.task != task:
                continue
            u = units.get(c.treatment_unit)
            y = rows.index(names[c.treatment_unit])
            fam = u.family if u else ""
            colour = _PALETTE[families.index(fam) % len(_PALETTE)] if fam in families else _BASE_COLOUR
            ax.plot([100 * c.ci_low, 100 * c.ci_high], [y, y], color=colour, lw=2, solid_capstyle="butt")
            ax.plot([100 * c.delta], [y], "o", color=colour, ms=5)
        display = next((u.task_display for u in analysis.units if u.spec.task == task and u.task_display), task)
        ax.set_title(display, fontsize=9)
        ax.set_xlim(-1.05 * span, 1.05 * span)
        ax.set_xlabel("gain over base (points)", fontsize=8)
        ax.grid(axis="x", color="#dddddd", lw=0.6)
        ax.tick_params(labelsize=7)
    axes[0].set_yticks(range(len(rows)), rows)
    axes[0].set_ylim(len(rows) - 0.4, -0.6)  # first row on top
    level = round(100 * comps[0].level)
    fig.suptitle(f"Gain over base with paired {level}% interval, grader {grader_id}", fontsize=9)
    return _save(plt, fig, path)


def _save(plt, fig, path: Path) -> Path:  # type: ignore[no-untyped-def]
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _has_accuracy(analysis: Analysis, grader_id: str) -> bool:
    units = {u.key for u in analysis.units}
    return any(
        e.grader_id == grader_id and e.unit_key in units and e.metric == f"avg@{e.n_samples}"
        for e in analysis.estimates
    )


def figures_section(analysis: Analysis) -> Section | None:
    """The "Figures" section: the accuracy and gains figure of every grader that has something to
    draw (``None`` when none has)."""
    figures: list[Figure] = []
    for kind, title, has in (
        ("accuracy", "Accuracy", _has_accuracy),
        ("gains", "Gain over base", lambda a, g: any(c.grader_id == g for c in a.comparisons)),
    ):
        draw_figure = accuracy_figure if kind == "accuracy" else gains_figure
        for gid in analysis.graders:
            if has(analysis, gid):
                figures.append(
                    Figure(figure_file(kind, gid), f"{title}, grader {gid}", partial(draw_figure, analysis, gid))
                )
    if not figures:
        return None
    note = Paragraph(
        [
            "Accuracy of every unit with its interval, and every RLVR checkpoint's gain over its base "
            "with the paired interval: the numbers of the tables above, drawn. All ",
            Strong("measured"),
            ".",
        ]
    )
    return Section("Figures", [note, *figures])
