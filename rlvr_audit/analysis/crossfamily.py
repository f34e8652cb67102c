"""Cross-family tables: family x reward grids of gains over each family's own base model.

The question they answer: does a reward that lifts one model family (Qwen2.5-Math) lift the
others (Qwen2.5, Llama, OLMo) too? One grid per benchmark (task), grader and metric:

- rows: model families (registry order), columns: RLVR rewards;
- a **measured** cell is the paired gain of the family's checkpoint trained with that reward
  over the family's base, from :class:`~rlvr_audit.analysis.estimates.Analysis` comparisons (same
  problems, prompt, protocol and grader): the difference in points, its paired bootstrap
  interval, the raw p-value and the Holm-adjusted p-value over all measured cells of the grid
  (a cell is *significant* when the Holm-adjusted p-value is below ``alpha``);
- a **claimed** cell holds the published gains for the same family, reward and benchmark,
  each tagged with its paper version (never averaged across versions).

Without measured gains for a benchmark (``rlvr-audit run --claims-only``), there is one
claims-only grid per benchmark and paper version, coloured by the claimed gains.

When a family has several checkpoints with the same reward (several training steps or
prompts), the measured cell uses the one at the highest step evaluated with the family
base's default prompt if there is one, else the highest step; every comparison used is listed
in the CSV with its step and prompt.

Outputs: the grid's table (:func:`grid_blocks`, in :func:`cross_family_section`), a long CSV (:func:`grid_frame`) and a
heatmap PNG (:func:`heatmap`) whose cells show the gain, its interval, ``*`` when significant
after Holm, and the claimed gains underneath.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.claims import Ledger, RlvrGain, claimed_gain
from ..core.records import Comparison
from ..core.section import BREAK, Block, Code, Emph, Figure, Heading, Inline, Paragraph, Section, Strong, Table, Text
from ..core.store import UnitInfo
from . import stats
from .estimates import Analysis
from .figures import pyplot

ALPHA = 0.05
"""Family-wise error rate of the Holm correction over a grid's measured cells."""

GRID_COLUMNS = [
    "task",
    "grader",
    "metric",
    "family",
    "reward",
    "kind",
    "version",
    "checkpoint",
    "base",
    "step",
    "prompt",
    "gain",
    "ci_low",
    "ci_high",
    "p_value",
    "p_holm",
    "significant",
    "n_problems",
]
"""Columns of :func:`grid_frame` (gains in points; ``kind`` is ``measured`` or ``claimed``)."""


@dataclass(frozen=True)
class ClaimedGain:
    """A published gain for a family x reward x benchmark (cited, not measured)."""

    family: str
    """Registry family id."""
    reward: str
    """RLVR reward."""
    task: str
    """Task id of the benchmark."""
    gain: float
    """The printed gain, in points."""
    version: str
    """Source / paper version the number comes from (e.g. ``SR-v1``)."""
    step: int | None = None
    """Training step the number refers to, when known."""
    claim_id: str = ""
    """Id of the ledger entry."""
    suspect: str = ""
    """Why the ledger thinks the number is probably wrong as printed (e.g. ``probable copy error``)."""


@dataclass(frozen=True)
class MeasuredCell:
    """A measured gain of one family x reward."""

    comparison: Comparison
    """The paired comparison used."""
    step: int | None
    """Training step of the checkpoint."""
    p_holm: float | None
    """Holm-adjusted p-value over the grid's measured cells (``None`` without a p-value)."""

    @property
    def significant(self) -> bool:
        """Whether the Holm-adjusted p-value is below :data:`ALPHA`."""
        return self.p_holm is not None and self.p_holm < ALPHA


@dataclass
class Grid:
    """One family x reward grid (a benchmark, grader and metric)."""

    task: str
    """Task id."""
    task_display: str
    """Benchmark display name."""
    grader: str
    """Grader of the measured cells (``""`` for a claims-only grid)."""
    metric: str
    """Metric of the measured cells, e.g. ``avg@1``."""
    version: str
    """Paper version of a claims-only grid (``""`` when the grid has measured cells)."""
    families: list[str]
    """Row ids, in order."""
    family_display: dict[str, str]
    """Row id -> display name."""
    rewards: list[str]
    """Column ids, in order."""
    measured: dict[tuple[str, str], MeasuredCell] = field(default_factory=dict)
    """(family, reward) -> measured cell."""
    claimed: dict[tuple[str, str], list[ClaimedGain]] = field(default_factory=dict)
    """(family, reward) -> published gains (one per paper version / step)."""


def _pick(units: dict[str, UnitInfo], comps: list[Comparison], default_prompt: dict[str, str]) -> Comparison:
    """The comparison shown for a cell (see the module docstring)."""

    def rank(c: Comparison) -> tuple[bool, int]:
        u = units[c.treatment_unit]
        return (c.template_id == default_prompt.get(u.family), u.step or 0)

    return max(comps, key=rank)


def claimed_from_ledger(ledger: Ledger) -> list[ClaimedGain]:
    """The ledger's RLVR gains that fit a grid cell: one reward, a benchmark that is a task id,
    a printed (or value - baseline) gain. Several rewards in one number, gain ranges and prompt
    gains are left out."""
    out = []
    for c in ledger.claims:
        if not isinstance(c, RlvrGain) or c.reward is None:
            continue
        gain = claimed_gain(c)
        if gain is None:
            continue
        out.append(
            ClaimedGain(
                family=c.model,
                reward=c.reward,
                task=c.benchmark,
                gain=float(gain),
                version=c.source,
                step=c.step,
                claim_id=c.id,
                suspect=c.suspect,
            )
        )
    return out


def build_grids(
    analysis: Analysis | None,
    *,
    claimed: Iterable[ClaimedGain] = (),
    family_order: Sequence[str] = (),
    family_display: dict[str, str] | None = None,
    task_display: dict[str, str] | None = None,
    default_prompt: dict[str, str] | None = None,
) -> list[Grid]:
    """Grids for every (task, grader, metric) with measured gains, plus claims-only grids (one
    per paper version) for tasks that have claimed gains but nothing measured.

    Args:
        analysis: Estimates and comparisons from the store (``None``: claims only).
        claimed: Published gains to show beside the measured ones.
        family_order: Row order (families not listed follow, sorted).
        family_display: Family id -> display name (default: from the units, else the id).
        task_display: Task id -> display name.
        default_prompt: Family id -> the base checkpoint's default prompt template, used to pick
            among comparisons of the same cell.
    """
    all_units = analysis.units if analysis is not None else []
    units = {u.key: u for u in all_units}
    fam_display = dict(family_display or {})
    for u in all_units:
        fam_display.setdefault(u.family, u.family_display)
    t_display = dict(task_display or {})
    for u in all_units:
        if u.task_display:
            t_display.setdefault(u.spec.task, u.task_display)
    claimed = list(claimed)

    groups: dict[tuple[str, str, str], dict[tuple[str, str], list[Comparison]]] = {}
    for c in analysis.comparisons if analysis is not None else []:
        treated = units.get(c.treatment_unit)
        if treated is None or not treated.reward:
            continue
        cell_key = (treated.family, treated.reward)
        groups.setdefault((c.task, c.grader_id, c.metric), {}).setdefault(cell_key, []).append(c)

    def order_families(names: set[str]) -> list[str]:
        listed = [f for f in family_order if f in names]
        return listed + sorted(names - set(listed))

    grids: list[Grid] = []
    measured_tasks: set[str] = set()
    for (task, grader, metric), cells in sorted(groups.items()):
        measured_tasks.add(task)
        picked = {cell: _pick(units, comps, default_prompt or {}) for cell, comps in cells.items()}
        keys = sorted(picked)
        holm: dict[tuple[str, str], float | None] = dict.fromkeys(keys)
        raw = {k: p for k in keys if (p := picked[k].p_value) is not None}
        if raw:
            adjusted = stats.holm(list(raw.values()))
            holm.update({k: float(a) for k, a in zip(raw, adjusted, strict=True)})
        task_claims = [g for g in claimed if g.task == task]
        fams = {f for f, _ in picked} | {g.family for g in task_claims}
        rewards = sorted({r for _, r in picked} | {g.reward for g in task_claims})
        grid = Grid(
            task=task,
            task_display=t_display.get(task, task),
            grader=grader,
            metric=metric,
            version="",
            families=order_families(fams),
            family_display={f: fam_display.get(f, f) for f in fams},
            rewards=rewards,
        )
        for k, c in picked.items():
            grid.measured[k] = MeasuredCell(comparison=c, step=units[c.treatment_unit].step, p_holm=holm[k])
        for g in task_claims:
            grid.claimed.setdefault((g.family, g.reward), []).append(g)
        grids.append(grid)
    claims_only = sorted({(g.task, g.version) for g in claimed if g.task not in measured_tasks})
    for task, version in claims_only:
        task_claims = [g for g in claimed if g.task == task and g.version == version]
        fams = {g.family for g in task_claims}
        grid = Grid(
            task=task,
            task_display=t_display.get(task, task),
            grader="",
            metric="",
            version=version,
            families=order_families(fams),
            family_display={f: fam_display.get(f, f) for f in fams},
            rewards=sorted({g.reward for g in task_claims}),
        )
        for g in task_claims:
            grid.claimed.setdefault((g.family, g.reward), []).append(g)
        grids.append(grid)
    return grids


def _pts(x: float) -> str:
    return f"{100 * x:+.1f}"


def _claimed_text(claims: list[ClaimedGain], sep: str, *, with_version: bool = True) -> str:
    def label(g: ClaimedGain) -> str:
        parts = ([g.version] if with_version else []) + ([f"step {g.step}"] if g.step else [])
        parts += [g.suspect] if g.suspect else []
        return f" ({', '.join(parts)})" if parts else ""

    return sep.join(f"{g.gain:+.1f}{label(g)}" for g in sorted(claims, key=lambda g: (g.version, g.step or 0)))


def grid_title(grid: Grid) -> Text:
    """A heading for the grid."""
    if grid.grader:
        return [f"{grid.task_display}: gain over base ({grid.metric}, grader ", Code(grid.grader), ")"]
    return f"{grid.task_display}: gains over base claimed in {grid.version} (cited, not measured)"


def _plain_title(grid: Grid) -> str:
    if grid.grader:
        return f"{grid.task_display}: gain over base ({grid.metric}, grader {grid.grader})"
    return str(grid_title(grid))


def grid_blocks(grid: Grid) -> list[Block]:
    """The grid as a table: measured gain [CI] (``*`` significant after Holm) and, under it, the
    claimed gains with their paper versions (in *italics*: cited, not measured), and its note."""
    rows: list[list[Text]] = []
    for fam in grid.families:
        row: list[Text] = [grid.family_display.get(fam, fam)]
        for reward in grid.rewards:
            parts: list[Inline] = []
            m = grid.measured.get((fam, reward))
            if m is not None:
                c = m.comparison
                star = " *" if m.significant else ""
                parts += [Strong(_pts(c.delta)), f" [{_pts(c.ci_low)}, {_pts(c.ci_high)}]{star}"]
            claims = grid.claimed.get((fam, reward))
            if claims:
                if parts:
                    parts.append(BREAK)
                parts.append(Emph("claimed " + _claimed_text(claims, ", ", with_version=not grid.version)))
            row.append(parts or "–")
        rows.append(row)
    note: Text = (
        [
            f"Bold: measured gain in points with its paired {int(100 * _level(grid))}% interval; ",
            Code("*"),
            f": significant after Holm correction over the {len(grid.measured)} measured cells (alpha {ALPHA}). "
            "Italics: gains printed in the papers (cited, with the paper version).",
        ]
        if grid.measured
        else f"Italics: gains printed in {grid.version} (cited, with the training step); nothing measured."
    )
    return [Table(["Family", *grid.rewards], rows), Paragraph(note)]


def _level(grid: Grid) -> float:
    levels = {m.comparison.level for m in grid.measured.values()}
    return levels.pop() if len(levels) == 1 else 0.95


def grid_frame(grids: Sequence[Grid]) -> pd.DataFrame:
    """All grids as one long table (:data:`GRID_COLUMNS`), measured and claimed rows."""
    rows = []
    for grid in grids:
        for (fam, reward), m in sorted(grid.measured.items()):
            c = m.comparison
            rows.append(
                {
                    "task": grid.task,
                    "grader": grid.grader,
                    "metric": grid.metric,
                    "family": fam,
                    "reward": reward,
                    "kind": "measured",
                    "version": "",
                    "checkpoint": c.treatment,
                    "base": c.baseline,
                    "step": "" if m.step is None else m.step,
                    "prompt": c.template_id,
                    "gain": 100 * c.delta,
                    "ci_low": 100 * c.ci_low,
                    "ci_high": 100 * c.ci_high,
                    "p_value": c.p_value,
                    "p_holm": m.p_holm,
                    "significant": m.significant,
                    "n_problems": c.n_problems,
                }
            )
        for (fam, reward), claims in sorted(grid.claimed.items()):
            for g in claims:
                rows.append(
                    {
                        "task": grid.task,
                        "grader": grid.grader,
                        "metric": grid.metric,
                        "family": fam,
                        "reward": reward,
                        "kind": "claimed",
                        "version": g.version,
                        "checkpoint": g.claim_id,
                        "base": "",
                        "step": "" if g.step is None else g.step,
                        "prompt": "",
                        "gain": g.gain,
                        "ci_low": None,
                        "ci_high": None,
                        "p_value": None,
                        "p_holm": None,
                        "significant": None,
                        "n_problems": None,
                    }
                )
    return pd.DataFrame(rows, columns=GRID_COLUMNS)


def heatmap(grid: Grid, path: Path) -> Path:
    """Draw the grid as a heatmap PNG at ``path``: colour = measured gain (claimed gain where
    nothing was measured, hatched), text = gain, interval, ``*`` and the claimed gains."""
    from matplotlib.colors import TwoSlopeNorm  # heavy: only when a figure is drawn (see figures.pyplot)

    plt = pyplot()
    n_rows, n_cols = len(grid.families), len(grid.rewards)
    values = np.full((n_rows, n_cols), np.nan)
    cited_only = np.zeros((n_rows, n_cols), dtype=bool)
    texts = [["" for _ in range(n_cols)] for _ in range(n_rows)]
    for i, fam in enumerate(grid.families):
        for j, reward in enumerate(grid.rewards):
            lines = []
            m = grid.measured.get((fam, reward))
            claims = grid.claimed.get((fam, reward), [])
            if m is not None:
                c = m.comparison
                values[i, j] = 100 * c.delta
                lines.append(f"{_pts(c.delta)}{' *' if m.significant else ''}")
                lines.append(f"[{_pts(c.ci_low)}, {_pts(c.ci_high)}]")
            elif claims and not grid.grader:  # a claims-only grid: colour by the latest step's claim
                values[i, j] = max(claims, key=lambda g: g.step or 0).gain
                cited_only[i, j] = True
            if claims:
                lines.append("claimed " + _claimed_text(claims, "\n", with_version=not grid.version))
            texts[i][j] = "\n".join(lines) if lines else "–"
    finite = values[np.isfinite(values)]
    span = max(1.0, float(np.max(np.abs(finite)))) if finite.size else 1.0
    fig_w = max(5.0, 1.9 * n_cols + 2.5)
    fig_h = max(2.5, 1.3 * n_rows + 1.5)
    fig, ax = plt.subplots(figsize=(fig_w, fig_h))
    cmap = plt.get_cmap("RdBu").with_extremes(bad="#eeeeee")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, norm=TwoSlopeNorm(0.0, -span, span), aspect="auto")
    fig.colorbar(image, ax=ax, label="gain (points)", shrink=0.8)
    for i in range(n_rows):
        for j in range(n_cols):
            if cited_only[i, j]:
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="//", edgecolor="#777777", lw=0))
            v = values[i, j]
            dark = math.isfinite(v) and abs(v) > 0.6 * span
            ax.text(j, i, texts[i][j], ha="center", va="center", fontsize=7, color="white" if dark else "black")
    ax.set_xticks(range(n_cols), grid.rewards, rotation=30, ha="right")
    ax.set_yticks(range(n_rows), [grid.family_display.get(f, f) for f in grid.families])
    ax.set_title(_plain_title(grid), fontsize=9)
    fig.text(
        0.01,
        0.01,
        "colour: gain in points (measured; hatched = claimed only); * significant after Holm",
        fontsize=6,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def figure_name(grid: Grid) -> str:
    """File name of the grid's heatmap."""
    what = [grid.grader, grid.metric.replace("@", "at")] if grid.grader else ["claimed", grid.version]
    return "_".join(["cross_family", grid.task, *what]) + ".png"


def cross_family_section(grids: Sequence[Grid], *, title: str = "Cross-family gains") -> Section:
    """The section of all grids: a heading, the table and the heatmap of each, and
    ``cross_family.csv``."""
    section = Section(title, tables={"cross_family.csv": grid_frame(grids)})
    if not grids:
        section.blocks.append(
            Paragraph(Emph("No RLVR checkpoint with a base in this report: nothing to compare across families."))
        )
    for grid in grids:
        section.blocks += [Heading(grid_title(grid)), *grid_blocks(grid)]
        section.blocks.append(Figure(figure_name(grid), _plain_title(grid), partial(heatmap, grid)))
    return section


__all__ = [
    "ALPHA",
    "GRID_COLUMNS",
    "ClaimedGain",
    "Grid",
    "MeasuredCell",
    "build_grids",
    "claimed_from_ledger",
    "cross_family_section",
    "figure_name",
    "grid_blocks",
    "grid_frame",
    "grid_title",
    "heatmap",
]
