"""The contamination-probe report section: rates and paired comparisons as tables, one figure per
task (from a :class:`~rlvr_audit.analysis.contamination.ProbeAnalysis`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from ..core.registry import Registry
from ..core.section import Block, Code, Figure, Paragraph, Section, Strong, Table, Text, table_links
from ..core.store import Store
from ..generation.probes import has_probe_units
from . import stats
from .contamination import METRICS, ProbeAnalysis, ProbeEstimate, analyse_probes, comparisons_frame, rates_frame
from .figures import pyplot

__all__ = [
    "comparisons_table",
    "figure_name",
    "probe_figure",
    "probe_section",
    "rates_rows",
    "rates_table",
    "stored_probe_section",
]


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _cell(e: ProbeEstimate) -> str:
    return f"{_pct(e.value)} [{_pct(e.ci_low)}, {_pct(e.ci_high)}]"


def _columns(analysis: ProbeAnalysis) -> list[tuple[str, str]]:
    """Rate table columns: (metric, grader) in a fixed order."""
    cols: list[tuple[str, str]] = []
    for metric in METRICS:
        for e in analysis.estimates:
            if e.metric == metric and (metric, e.grader_id) not in cols:
                cols.append((metric, e.grader_id))
    return cols


def _column_label(col: tuple[str, str], *, with_grader: bool = True) -> str:
    metric, grader = col
    return METRICS[metric] + (f" (`{grader}`)" if grader and with_grader else "")


def rates_rows(analysis: ProbeAnalysis) -> tuple[list[str], list[list[str]]]:
    """The rate table as a header and rows of text: one row per checkpoint, task, fraction and
    answer template (the ``completion`` rates repeat on each template's row), one column per
    metric and grader; cells ``rate [CI]`` in %."""
    cols = _columns(analysis)
    with_grader = len(analysis.graders) > 1
    shared: dict[tuple[str, str, int], dict[tuple[str, str], ProbeEstimate]] = {}
    answer: dict[tuple[str, str, int], dict[str, dict[tuple[str, str], ProbeEstimate]]] = {}
    for e in analysis.estimates:
        key = (e.checkpoint_id, e.task_display, e.percent)
        if e.kind == "answer":
            answer.setdefault(key, {}).setdefault(e.template_id, {})[(e.metric, e.grader_id)] = e
        else:
            shared.setdefault(key, {})[(e.metric, e.grader_id)] = e
    header = ["Checkpoint", "Task", "Shown", "Prompt", *(_column_label(c, with_grader=with_grader) for c in cols)]
    header.append("Problems")
    rows = []
    for key in sorted({*shared, *answer}, key=lambda k: (k[1], k[0], k[2])):
        ck, task, percent = key
        for template, asked in (answer.get(key) or {"-": {}}).items():
            row = {**shared.get(key, {}), **asked}
            n = max(e.n_problems for e in row.values())
            cells = [_cell(row[c]) if c in row else "" for c in cols]
            rows.append([ck, task, f"{percent}%", template, *cells, str(n)])
    return header, rows


def rates_table(analysis: ProbeAnalysis) -> Table:
    """The table of :func:`rates_rows` (templates as code)."""
    header, rows = rates_rows(analysis)
    cells: list[list[Text]] = [[*r[:3], Code(r[3]) if r[3] != "-" else "-", *r[4:]] for r in rows]
    return Table([_label_text(h) for h in header], cells, kind="measured")


def _label_text(label: str) -> Text:
    """A column label of :func:`_column_label` with the grader id as code."""
    if label.endswith(")") and " (`" in label:
        name, grader = label[:-2].split(" (`", 1)
        return [f"{name} (", Code(grader), ")"]
    return label


def comparisons_table(analysis: ProbeAnalysis) -> Table:
    """Every paired comparison."""
    header: list[Text] = ["Treatment", "Baseline", "Relation", "Task", "Shown", "Prompt", "Metric"]
    header += ["Difference (points)", "p", "p (Holm)", "Problems"]
    rows: list[list[Text]] = []
    for c in analysis.comparisons:
        rows.append(
            [
                c.treatment,
                c.baseline,
                c.relation,
                c.task,
                f"{c.percent}%",
                Code(c.template_id),
                _label_text(_column_label((c.metric, c.grader_id))),
                f"{100 * c.delta:+.1f} [{100 * c.ci_low:+.1f}, {100 * c.ci_high:+.1f}]",
                "-" if c.p_value is None else f"{c.p_value:.3g}",
                "-" if c.p_holm is None else f"{c.p_holm:.3g}",
                str(c.n_problems),
            ]
        )
    return Table(header, rows, kind="measured")


def figure_name(task: str) -> str:
    """File name (under ``figures/``) of a task's probe figure."""
    return "contamination_" + (re.sub(r"[^A-Za-z0-9_-]+", "_", task) or "task") + ".png"


def probe_figure(analysis: ProbeAnalysis, task: str, path: Path) -> Path | None:
    """Rates against the fraction shown, one panel per metric column, one line per checkpoint
    (points at the estimates, bars over their intervals); ``None`` when the task has no rates."""
    est = [e for e in analysis.estimates if e.task == task]
    if not est:
        return None
    cols = [c for c in _columns(analysis) if any(_col_of(e) == c for e in est)]
    plt = pyplot()
    fig, axes = plt.subplots(1, len(cols), figsize=(max(5.0, 3.8 * len(cols)), 3.4), squeeze=False)
    checkpoints = list(dict.fromkeys(e.checkpoint_id for e in est))
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]
    for ax, col in zip(axes[0], cols, strict=True):
        lines = list(dict.fromkeys((e.checkpoint_id, e.template_id) for e in est if _col_of(e) == col))
        for ck, template in lines:
            i = checkpoints.index(ck)
            pts = sorted(
                (e for e in est if (e.checkpoint_id, e.template_id) == (ck, template) and _col_of(e) == col),
                key=lambda e: e.percent,
            )
            several = sum(1 for c, _ in lines if c == ck) > 1
            label = f"{ck} · {template}" if several else ck
            x = [e.percent + 0.8 * (i - (len(checkpoints) - 1) / 2) for e in pts]  # side by side
            y = [100 * e.value for e in pts]
            lo = [100 * (e.value - e.ci_low) for e in pts]
            hi = [100 * (e.ci_high - e.value) for e in pts]
            ax.errorbar(x, y, yerr=[lo, hi], marker="o", capsize=3, label=label, color=palette[i % len(palette)])
        ax.set_title(_column_label(col).replace("`", ""), fontsize=9)
        ax.set_xlabel("share of the problem shown (%)")
        ax.set_ylim(-2, 102)
        ax.set_xticks(sorted({e.percent for e in est}))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("rate (%)")
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.suptitle(f"Partial-prompt contamination probe: {est[0].task_display}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _col_of(e: ProbeEstimate) -> tuple[str, str]:
    return (e.metric, e.grader_id)


def probe_section(analysis: ProbeAnalysis) -> Section | None:
    """The report's contamination section (rates, comparisons, a figure per task and two tables);
    ``None`` without probe rates."""
    if not analysis.estimates:
        return None
    lvl = round(analysis.level * 100)
    blocks: list[Block] = [
        Paragraph(
            [
                "Each problem cut after the given share of its words and given to the model (greedy). ",
                Strong("Exact match of the rest"),
                ": the raw first part, continued by the model, reproduces the rest of the problem word for word "
                "(whitespace runs collapsed; case, punctuation and LaTeX exact). ",
                Strong("ROUGE-L of the rest"),
                ": overlap of that continuation (cut to the rest's length in words) with the rest. ",
                Strong("Correct answer in the continuation"),
                ": that same continuation graded. ",
                Strong("Correct answer when asked"),
                ": the first part under the prompt template, graded. A model that has not seen the benchmark rarely "
                "reproduces the rest, and rarely answers a problem it was only partly shown (see 'Reasoning or "
                f"Memorization?', arXiv 2507.10532). Rates in % with {lvl}% "
                f"{stats.CI_METHOD_TEXT[analysis.ci_method]} ({analysis.n_resamples} resamples, seed "
                f"{analysis.seed}, where resampled).",
            ]
        ),
        rates_table(analysis),
    ]
    for task in dict.fromkeys(e.task for e in analysis.estimates):
        display = next(e.task_display for e in analysis.estimates if e.task == task)
        blocks.append(
            Figure(figure_name(task), f"Contamination probe, {display}", partial(probe_figure, analysis, task))
        )
    if analysis.comparisons:
        blocks.append(
            Paragraph(
                "Paired comparisons over the problems both sides scored: each RLVR checkpoint against its base, every "
                "two reference checkpoints against each other (across families). Difference in points with a paired "
                "interval; p: McNemar's exact test (0/1 metrics only), Holm-adjusted over the comparisons "
                "of the same metric and grader."
            )
        )
        blocks.append(comparisons_table(analysis))
    blocks.append(table_links([("contamination_rates.csv", ""), ("contamination_comparisons.csv", "")]))
    return Section(
        "Contamination probe: partial prompts",
        blocks,
        tables={
            "contamination_rates.csv": rates_frame(analysis),
            "contamination_comparisons.csv": comparisons_frame(analysis),
        },
    )


def stored_probe_section(
    store: Store,
    *,
    registry: Registry | None,
    graders: Sequence[str] | None,
    seed: int,
    n_resamples: int,
    level: float,
    ci_method: str,
) -> Section | None:
    """The contamination section of a report when the store holds probe units, else ``None``."""
    if not has_probe_units(store):
        return None
    analysis = analyse_probes(
        store, registry=registry, graders=graders, seed=seed, n_resamples=n_resamples, level=level, ci_method=ci_method
    )
    return probe_section(analysis)
