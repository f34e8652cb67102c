"""Report stage: ``reports/<name>/index.md`` and machine-readable tables, from the store only.

Writes::

    index.md                 reproduction table(s), settings, run manifests
    tables/estimates.csv     checkpoint, task, prompt, grader, metric, n_problems, n_samples,
                             value, ci_low, ci_high, ... (accuracies as fractions)
    tables/comparisons.csv   checkpoint, base, task, prompt, grader, metric, delta, ci_low,
                             ci_high, ..., p_value, p_holm, p_bh, test (deltas as fractions)
    tables/grader_disagreement.csv  per unit and grader: accuracy over the samples all graders
                             graded, and how many of them the graders disagree on
    tables/baseline_correction.csv  only when the store measured base models that the claims
                             ledger has gain claims about (see :mod:`rlvr_audit.claims`)
    tables/cross_family.csv  family x reward gains over each family's base, measured and
                             claimed (see :mod:`rlvr_audit.crossfamily`)
    figures/cross_family_*.png  one heatmap per benchmark, grader and metric
    tables/seed_spread.csv   settings run with several sampling seeds: mean, sd, range per metric
    figures/accuracy_*.png, figures/gains_*.png  accuracy and gains with their intervals, per grader
                             (see :mod:`rlvr_audit.figures`)
    index.html               the same sections, self-contained (figures embedded, sortable tables;
                             see :mod:`rlvr_audit.html`), linking the per-sample browser
    samples/<unit key>/      the per-sample browser (see :mod:`rlvr_audit.browser`)
    tables/prompt_sweep*.csv, figures/prompt_sweep_*.png  accuracy, parse rate, spread and gains
                             per prompt template (see :mod:`rlvr_audit.sweep`)
    tables/code_*.csv, tables/behaviour_flags.csv, figures/code_steps_*.png  code reasoning,
                             transitions and behaviour flags (see :mod:`rlvr_audit.code_report`)
    tables/contamination_*.csv, figures/contamination_*.png  only when the store holds probe units:
                             partial-prompt contamination rates and comparisons (see :mod:`rlvr_audit.probe`)

Files are written to a temporary folder and moved into place, so a failed report never leaves
a half-written one.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import stats
from .analyse import Analysis
from .crossfamily import Grid, cross_family_section, grid_frame, write_cross_family
from .disagreement import UnitDisagreement, disagreement_frame, disagreement_section, grader_disagreements
from .errors import UsageError
from .figures import figures_section
from .html import MEASURED_HOOK, HtmlOptions, write_html
from .records import Comparison, Estimate, RunManifest, SourceMetric, natural_key
from .store import Store, UnitInfo, run_status

ESTIMATE_COLUMNS = [
    "checkpoint",
    "task",
    "prompt",
    "grader",
    "metric",
    "n_problems",
    "n_samples",
    "value",
    "ci_low",
    "ci_high",
    "se",
    "level",
    "method",
    "seed",
    "family",
    "base",
    "reward",
    "step",
    "unit_key",
    "source_value",
    "interval_flags",
]
COMPARISON_COLUMNS = [
    "checkpoint",
    "base",
    "task",
    "prompt",
    "grader",
    "metric",
    "delta",
    "ci_low",
    "ci_high",
    "se",
    "baseline_value",
    "treatment_value",
    "p_value",
    "p_holm",
    "p_bh",
    "test",
    "n_problems",
    "level",
    "method",
    "seed",
    "treatment_unit",
    "baseline_unit",
    "interval_flags",
]


@dataclass
class ReportPart:
    """A section an analysis module adds to the report: Markdown, CSV tables and figures
    (e.g. :func:`rlvr_audit.sweep.sweep_part`, :func:`rlvr_audit.code_report.code_parts`)."""

    section: str
    """Markdown with its own ``## `` heading, placed before the settings (``""``: none)."""
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    """File name under ``tables/`` -> frame (written without the index)."""
    figures: dict[str, Callable[[Path], object]] = field(default_factory=dict)
    """File name under ``figures/`` -> a function that draws the figure at the path it is given."""


@dataclass
class ReportPaths:
    """Where a report was written."""

    root: Path
    """The report folder."""
    index_md: Path
    """The Markdown report."""
    estimates_csv: Path
    """Estimates table."""
    comparisons_csv: Path
    """Comparisons table."""


def estimates_frame(analysis: Analysis) -> pd.DataFrame:
    """Estimates as a DataFrame with :data:`ESTIMATE_COLUMNS`."""
    info = {u.key: u for u in analysis.units}
    rows = []
    for e in analysis.estimates:
        u = info[e.unit_key]
        rows.append(
            {
                "checkpoint": e.checkpoint_id,
                "task": e.task,
                "prompt": e.template_id,
                "grader": e.grader_id,
                "metric": e.metric,
                "n_problems": e.n_problems,
                "n_samples": e.n_samples,
                "value": e.value,
                "ci_low": e.ci_low,
                "ci_high": e.ci_high,
                "se": e.se,
                "level": e.level,
                "method": e.method,
                "seed": e.seed,
                "family": u.family,
                "base": u.base or "",
                "reward": u.reward or "",
                "step": "" if u.step is None else u.step,
                "unit_key": e.unit_key,
                "source_value": source_value(u, e.metric),
                "interval_flags": ";".join(e.interval_flags),
            }
        )
    return pd.DataFrame(rows, columns=ESTIMATE_COLUMNS)


def comparisons_frame(analysis: Analysis) -> pd.DataFrame:
    """Comparisons as a DataFrame with :data:`COMPARISON_COLUMNS`."""
    rows = [
        {
            "checkpoint": c.treatment,
            "base": c.baseline,
            "task": c.task,
            "prompt": c.template_id,
            "grader": c.grader_id,
            "metric": c.metric,
            "delta": c.delta,
            "ci_low": c.ci_low,
            "ci_high": c.ci_high,
            "se": c.se,
            "baseline_value": c.baseline_value,
            "treatment_value": c.treatment_value,
            "p_value": c.p_value,
            "p_holm": c.p_holm,
            "p_bh": c.p_bh,
            "test": c.test or "",
            "n_problems": c.n_problems,
            "level": c.level,
            "method": c.method,
            "seed": c.seed,
            "treatment_unit": c.treatment_unit,
            "baseline_unit": c.baseline_unit,
            "interval_flags": ";".join(c.interval_flags),
        }
        for c in analysis.comparisons
    ]
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _signed(x: float) -> str:
    return f"{100 * x:+.1f}"


def _flags(flags: Sequence[str]) -> str:
    """The interval flags printed beside a cell (see :data:`rlvr_audit.stats.INTERVAL_FLAGS`)."""
    return " ⚠ " + ", ".join(flags) if flags else ""


def interval_settings(analysis: Analysis, *, level: float, n_resamples: int, seed: int) -> str:
    """One paragraph: which interval the cells use (and that ``wilson`` is the default), and the
    meaning of every flag that occurs in this report."""
    pct = f"{level * 100:g}%"
    if analysis.ci_method == "wilson":
        how = (
            f"Intervals: {pct} Wilson score interval over problems with a cluster design effect for accuracies, "
            "MOVER from the two Wilson intervals for paired gains (`--ci-method wilson`, the default since it "
            "replaced the percentile bootstrap, which under-covers at AIME size; see `rlvr_audit.stats`)."
        )
    else:
        how = (
            f"Intervals: {pct} {analysis.ci_method} bootstrap over problems ({n_resamples} resamples, seed {seed}; "
            f"`--ci-method {analysis.ci_method}`; the default is `wilson`)."
        )
    used = sorted(
        {f for e in analysis.estimates for f in e.interval_flags}
        | {f for c in analysis.comparisons for f in c.interval_flags}
    )
    if used:
        how += (
            " ⚠ marks a cell whose interval carries a flag: "
            + "; ".join(f"`{f}`: {stats.INTERVAL_FLAGS.get(f, '(unknown flag)')}" for f in used)
            + "."
        )
    return how + "\n"


def _protocol_label(u: UnitInfo) -> str:
    p = u.spec.protocol
    decoding = (
        "greedy" if p.temperature == 0 else f"T={p.temperature:g}" + (f", top-p {p.top_p:g}" if p.top_p < 1 else "")
    )
    return f"{decoding}, {p.n} sample{'s' if p.n > 1 else ''}, {p.max_new_tokens} tokens, seed {p.seed}"


def _applied(u: UnitInfo) -> str:
    """What the engine applied beyond the protocol (``UnitInfo.sampling``), for the settings table."""
    a = u.sampling
    if a is None:
        return ""
    extra = [f"top-k {a.top_k}"] if a.top_k else []
    extra += [f"min-p {a.min_p:g}"] if a.min_p else []
    extra += [f"repetition penalty {a.repetition_penalty:g}"] if a.repetition_penalty != 1.0 else []
    source = {"protocol": "", "protocol+model": " from the model's generation config", "protocol+engine": ""}
    applied = ", ".join(extra) + source[a.source] if extra else "no top-k, min-p or repetition penalty"
    if a.source == "protocol+engine":
        applied = "other parameters: the engine's defaults"
    return _escape(f"; applied: {applied}" + (f" ({a.engine})" if a.engine else ""))


def _escape(text: str) -> str:
    """Make text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")  # \r ends a Markdown line too


def reproduction_table(analysis: Analysis, grader_id: str) -> str:
    """Rows: checkpoints (grouped by family) x prompt; columns: benchmark (+ protocol if a task
    was run under several); cells: avg@k [CI] and gain over base [CI]."""
    units = [u for u in analysis.units if (u.key, grader_id) in analysis.matrices]
    if not units:
        return "_No graded units._\n"
    est = {(e.unit_key, e.metric): e for e in analysis.estimates if e.grader_id == grader_id}
    comp = {c.treatment_unit: c for c in analysis.comparisons if c.grader_id == grader_id}
    protocols_per_task: dict[str, set[str]] = {}
    for u in units:
        protocols_per_task.setdefault(u.spec.task, set()).add(_protocol_label(u))
    columns: list[tuple[str, str | None]] = []
    for u in units:
        col = (u.spec.task, _protocol_label(u) if len(protocols_per_task[u.spec.task]) > 1 else None)
        if col not in columns:
            columns.append(col)
    display = {u.spec.task: u.task_display or u.spec.task for u in units}
    header = ["Checkpoint", "Prompt"]
    for task, proto in columns:
        k = next(x.spec.protocol.n for x in units if x.spec.task == task)
        header.append(f"{display[task]} (avg@{k})" + (f"<br>{proto}" if proto else ""))
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    families: dict[str, list[UnitInfo]] = {}
    for u in units:
        families.setdefault(u.family_display, []).append(u)
    for family, fam_units in families.items():
        lines.append("| **" + _escape(family) + "** |" + " |" * (len(header) - 1))
        rows: dict[tuple[str, str], dict[tuple[str, str | None], UnitInfo]] = {}
        for u in sorted(
            fam_units, key=lambda x: (x.base is not None, x.step or 0, natural_key(x.spec.checkpoint.checkpoint_id))
        ):
            col = (u.spec.task, _protocol_label(u) if len(protocols_per_task[u.spec.task]) > 1 else None)
            rows.setdefault((u.spec.checkpoint.checkpoint_id, u.spec.template_id), {})[col] = u
        for (cid, template), cells in rows.items():
            any_unit = next(iter(cells.values()))
            label = cid.split("/", 1)[1] if "/" in cid else cid
            extras = [x for x in (any_unit.reward, f"step {any_unit.step}" if any_unit.step else None) if x]
            if any(c.spec.synthetic for c in cells.values()):
                extras.append(f"synthetic: {any_unit.spec.backend}, no model")
            name = f"{label} ({', '.join(extras)})" if extras else label
            row = [_escape(name), f"`{template}`"]
            for col in columns:
                cell_unit = cells.get(col)
                if cell_unit is None:
                    row.append("")
                    continue
                u = cell_unit
                e = est.get((u.key, f"avg@{u.spec.protocol.n}"))
                if e is None:
                    row.append("")
                    continue
                cell = f"{_pct(e.value)} [{_pct(e.ci_low or 0)}, {_pct(e.ci_high or 0)}]{_flags(e.interval_flags)}"
                if e.n_problems < u.n_problems_total:
                    cell += f"<br>_n={e.n_problems}/{u.n_problems_total}_"
                c = comp.get(u.key)
                if c is not None:
                    cell += (
                        f"<br>{_signed(c.delta)} [{_signed(c.ci_low)}, {_signed(c.ci_high)}] vs base"
                        f"{_flags(c.interval_flags)}"
                    )
                elif u.base:
                    cell += "<br>_base not evaluated in this setting_"
                row.append(cell)
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def settings_table(analysis: Analysis, store: Store) -> str:
    """One row per unit: what was run and how much of it is stored and graded."""
    header = "| Checkpoint | Model | Task | Prompt | Protocol | Backend | Generated | Graded by | Unit key |"
    lines = [header, "|" + "---|" * 9]
    for u in analysis.units:
        s = u.spec
        engine = s.backend + (
            " (" + ", ".join(f"{k}={v}" for k, v in s.engine_args.items()) + ")" if s.engine_args else ""
        )
        n_gen = len(store.read_generations(u.key))
        graders = ", ".join(store.graders(u.key)) or "-"
        model = s.checkpoint.model + (f"@{s.checkpoint.revision}" if s.checkpoint.revision else "")
        lines.append(
            f"| {_escape(s.checkpoint.checkpoint_id)} | {_escape(model)} | {s.task} | `{s.template_id}` | "
            f"{_protocol_label(u)}{_applied(u)} | {_escape(engine)} | {n_gen} | {graders} | `{u.key}` |"
        )
    return "\n".join(lines) + "\n"


def source_value(u: UnitInfo, metric: str) -> float | None:
    """For an imported unit, the source's own reported value of ``metric`` (a fraction; the
    metric named exactly so first); ``None`` for generated units or metrics it did not report."""
    if u.imported is None:
        return None
    found = [m for m in u.imported.metrics if m.metric == metric]
    found.sort(key=lambda m: m.name != metric)
    return found[0].value if found else None


def imported_section(analysis: Analysis) -> str:
    """For every imported unit: each number the source reported beside ours under every grader.

    One row per imported unit and source metric; a grader's cell is our estimate of the same
    metric [CI] and ours minus the source's, in points. A source number that measures
    something else than our avg@k / pass@k (e.g. the first sample only) is listed without ours.
    """
    units = [u for u in analysis.units if u.imported is not None]
    if not units:
        return ""
    est = {(e.unit_key, e.grader_id, e.metric): e for e in analysis.estimates}
    header = ["Checkpoint", "Task", "Source", "Problems", "Source's metric", "Source's value"]
    header += [f"Ours: `{g}`" for g in analysis.graders]
    lines = [
        "Generations imported from published outputs (`rlvr-audit import`), graded by rlvr-audit. "
        "Each row puts a number the source reported about these same generations beside ours "
        "(accuracy in %, our interval, and ours minus the source's in points). Problems: matched / "
        "items in the source (unmatched items were skipped); gold mismatches: items whose gold answer "
        "differs from our task file's (we grade against ours). Where graders disagree on these samples, "
        "see the grader disagreement section.\n",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for u in units:
        src = u.imported
        assert src is not None
        files = ", ".join(Path(f).name for f in src.files)
        source = f"{src.format}: {files}" + (f" (model {src.model})" if src.model else "")
        problems = f"{src.items - src.unmatched}/{src.items}"
        if src.gold_mismatches:
            problems += f"<br>{src.gold_mismatches} gold mismatches"
        metrics: list[SourceMetric | None] = [*src.metrics] or [None]
        for m in metrics:
            row = [_escape(u.spec.checkpoint.checkpoint_id), u.task_display or u.spec.task, _escape(source), problems]
            if m is None:
                row += ["_none reported_", ""]
            else:
                row += [_escape(f"{m.name} ({m.origin})"), _pct(m.value)]
            for g in analysis.graders:
                if m is None or m.metric is None:
                    row.append("_not comparable_" if m is not None else "")
                    continue
                e = est.get((u.key, g, m.metric))
                if e is None:
                    row.append("_not graded_")
                    continue
                cell = f"{m.metric} {_pct(e.value)} [{_pct(e.ci_low or 0)}, {_pct(e.ci_high or 0)}]"
                cell += f"<br>{_signed(e.value - m.value)} vs source"
                if e.n_problems < src.items - src.unmatched:
                    cell += f"<br>_n={e.n_problems}_"
                row.append(cell)
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def manifest_section(manifests: list[RunManifest], unit_keys: set[str]) -> str:
    """The runs that touched these units, newest last."""
    relevant = [m for m in manifests if unit_keys & set(m.units)]
    if not relevant:
        return "_No run manifest in the store for these units._\n"
    lines = []
    for m in relevant[-5:]:
        status = run_status(m)
        end = m.finished_at or ("now" if status == "running" else "?")
        lines.append(f"- **{m.run_id}** ({status}, {m.started_at} to {end}): `{_escape(m.command)}`")
        lines.append(f"  - backend: {m.backend or '-'}; git commit: {m.git_commit or '-'}")
        lines.append("  - packages: " + ", ".join(f"{k} {v}" for k, v in sorted(m.packages.items())))
        lines.append("  - hardware: " + ", ".join(f"{k}: {v}" for k, v in sorted(m.hardware.items())))
    return "\n".join(lines) + "\n"


SEED_COLUMNS = ["checkpoint", "task", "prompt", "grader", "metric", "n_seeds", "seeds"]
SEED_COLUMNS += ["mean", "sd", "min", "max", "range"]
"""Columns of ``tables/seed_spread.csv`` (values as fractions)."""


def seed_spread_frame(analysis: Analysis) -> pd.DataFrame:
    """Seed-to-seed spread (:func:`rlvr_audit.stats.seed_spread`) of every setting run with two
    or more sampling seeds: units identical but for ``protocol.seed``, per grader and metric."""
    units = {u.key: u for u in analysis.units}
    groups: dict[tuple[str, ...], list[tuple[int, float, UnitInfo]]] = {}
    for e in analysis.estimates:
        u = units.get(e.unit_key)
        if u is None:
            continue
        spec = u.spec.model_copy(update={"protocol": u.spec.protocol.model_copy(update={"seed": 0})})
        groups.setdefault((spec.key, e.grader_id, e.metric), []).append((u.spec.protocol.seed, e.value, u))
    rows = []
    for (_, grader, metric), values in groups.items():
        if len(values) < 2:
            continue
        values.sort(key=lambda v: v[0])
        spread = stats.seed_spread([v for _, v, _ in values])
        first = values[0][2]
        rows.append(
            {
                "checkpoint": first.spec.checkpoint.checkpoint_id,
                "task": first.spec.task,
                "prompt": first.spec.template_id,
                "grader": grader,
                "metric": metric,
                "n_seeds": spread.n_seeds,
                "seeds": " ".join(str(seed) for seed, _, _ in values),
                "mean": spread.mean,
                "sd": spread.sd,
                "min": spread.min,
                "max": spread.max,
                "range": spread.range,
            }
        )
    return pd.DataFrame(rows, columns=SEED_COLUMNS)


def seed_spread_section(frame: pd.DataFrame) -> str:
    """Markdown for :func:`seed_spread_frame` (empty string when no setting has several seeds)."""
    if frame.empty:
        return ""
    lines = [
        "## Seed-to-seed spread\n",
        "Settings run with several sampling seeds (everything else equal): how far a single run moves "
        "with the seed. A gain smaller than the range can be had by picking a seed.\n",
        "| Checkpoint | Task | Prompt | Grader | Metric | Seeds | Mean | SD | Min | Max | Range |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in frame.itertuples():
        lines.append(
            f"| {r.checkpoint} | {r.task} | `{r.prompt}` | {r.grader} | {r.metric} | {r.seeds} | {_pct(r.mean)} | "
            f"{_pct(r.sd)} | {_pct(r.min)} | {_pct(r.max)} | {_pct(r.range)} |"
        )
    return "\n".join(lines) + "\n"


def render_markdown(
    analysis: Analysis,
    store: Store,
    *,
    name: str,
    level: float,
    n_resamples: int,
    seed: int,
    disagreements: list[UnitDisagreement] | None = None,
    extra_sections: list[str] | None = None,
) -> str:
    """The whole ``index.md`` (``disagreements``: precomputed grader disagreement, else computed;
    ``extra_sections``: Markdown sections placed before the settings, e.g. baseline correction)."""
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        f"# rlvr-audit report: {name}\n",
        f"Written {now} from the store `{store.root}` ({len(analysis.units)} units). Every number below was "
        "**measured** by rlvr-audit from stored generations.\n",
        f"Cells: accuracy in % with its {level * 100:g}% confidence interval; under it, the gain over the "
        "checkpoint's base model in points, with a paired interval over the same problems, task, prompt, protocol "
        "and grader. `n=a/b` marks a unit evaluated on a of its b problems. "
        + interval_settings(analysis, level=level, n_resamples=n_resamples, seed=seed),
    ]
    for gid in analysis.graders:
        parts.append(f"## Reproduction table: grader `{gid}`\n")
        parts.append(MEASURED_HOOK + "\n")
        parts.append(reproduction_table(analysis, gid))
    if not analysis.units:
        parts.append(
            "## Reproduction table\n\n_No evaluation units in this report (the store holds only the probes "
            "below): evaluate checkpoints with `rlvr-audit run`._\n"
        )
    elif not analysis.graders:
        parts.append("## Reproduction table\n\n_Nothing graded yet: run `rlvr-audit grade`._\n")
    imported = imported_section(analysis)
    if imported:
        parts.append("## Imported generations: the source's numbers beside ours\n")
        parts.append(imported)
    if len(analysis.graders) > 1:
        if disagreements is None:
            disagreements = grader_disagreements(store, analysis.units, analysis.graders)
        parts.append("## Grader disagreement\n")
        parts.append(disagreement_section(disagreements))
    if analysis.comparisons:
        parts.append("## Gains over base\n")
        parts.append(
            "p: two-sided exact paired test (McNemar for one sample per problem, sign-flip permutation "
            "for k samples); Holm and BH: adjusted over the comparisons of the same grader.\n"
        )
        parts.append(MEASURED_HOOK + "\n")
        parts.append(
            "| Checkpoint | Base | Task | Prompt | Grader | Metric | Gain (points) "
            "| p | p (Holm) | p (BH) | Test | Problems |"
        )
        parts.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for c in analysis.comparisons:
            p, p_holm, p_bh = ("-" if x is None else f"{x:.3g}" for x in (c.p_value, c.p_holm, c.p_bh))
            parts.append(
                f"| {c.treatment} | {c.baseline} | {c.task} | `{c.template_id}` | {c.grader_id} | {c.metric} | "
                f"{_signed(c.delta)} [{_signed(c.ci_low)}, {_signed(c.ci_high)}]{_flags(c.interval_flags)} | {p} | "
                f"{p_holm} | {p_bh} | "
                f"{c.test or '-'} | {c.n_problems} |"
            )
        parts.append("")
    parts.extend(extra_sections or [])
    parts.append("## Settings\n")
    parts.append(interval_settings(analysis, level=level, n_resamples=n_resamples, seed=seed))
    parts.append(settings_table(analysis, store))
    parts.append("## Runs (manifest)\n")
    parts.append(manifest_section(store.manifests(), {u.key for u in analysis.units}))
    parts.append(
        "Machine-readable tables: [`tables/estimates.csv`](tables/estimates.csv), "
        "[`tables/comparisons.csv`](tables/comparisons.csv), "
        "[`tables/grader_disagreement.csv`](tables/grader_disagreement.csv) (accuracies as fractions).\n"
    )
    return "\n".join(parts)


def write_report(
    analysis: Analysis,
    store: Store,
    out_dir: Path,
    *,
    name: str,
    level: float,
    n_resamples: int,
    seed: int,
    extra_sections: list[str] | None = None,
    extra_tables: dict[str, pd.DataFrame] | None = None,
    cross_family: Sequence[Grid] = (),
    parts: Sequence[ReportPart] = (),
    html: HtmlOptions | None = None,
) -> ReportPaths:
    """Write the report folder atomically (build in a temporary folder, then replace).

    ``extra_sections`` go into ``index.md`` before the settings; ``extra_tables`` (file name ->
    frame) are written to ``tables/`` beside the standard ones; ``cross_family`` grids get a
    section, ``tables/cross_family.csv`` and one heatmap each under ``figures/``; each of
    ``parts`` adds its section (after ``extra_sections``), its tables and its figures. The
    accuracy and gains figures get a section first; ``index.html`` and the per-sample browser
    are rendered from ``index.md`` last (``html``: browser on/off, page size, progress)."""
    out_dir = Path(out_dir)
    with building_report_dir(out_dir, protected=[("the store", store.root)]) as tmp:
        (tmp / "tables").mkdir()
        estimates_frame(analysis).to_csv(tmp / "tables" / "estimates.csv", index=False)
        comparisons_frame(analysis).to_csv(tmp / "tables" / "comparisons.csv", index=False)
        disagreements = grader_disagreements(store, analysis.units, analysis.graders)
        disagreement_frame(disagreements).to_csv(tmp / "tables" / "grader_disagreement.csv", index=False)
        sections = list(extra_sections or [])
        seeds = seed_spread_frame(analysis)
        if not seeds.empty:
            seeds.to_csv(tmp / "tables" / "seed_spread.csv", index=False)
            sections.insert(0, seed_spread_section(seeds))
        if cross_family:
            grid_frame(cross_family).to_csv(tmp / "tables" / "cross_family.csv", index=False)
            write_cross_family(cross_family, tmp / "figures")
            sections.insert(0, "## Cross-family gains\n\n" + cross_family_section(cross_family))
        figures = figures_section(analysis, tmp / "figures")
        if figures:
            sections.insert(0, figures)
        for file_name, frame in (extra_tables or {}).items():
            frame.to_csv(tmp / "tables" / file_name, index=False)
        for part in parts:
            if part.section:
                sections.append(part.section)
            for file_name, frame in part.tables.items():
                frame.to_csv(tmp / "tables" / file_name, index=False)
            for file_name, draw in part.figures.items():
                (tmp / "figures").mkdir(exist_ok=True)
                draw(tmp / "figures" / file_name)
        (tmp / "index.md").write_text(
            render_markdown(
                analysis,
                store,
                name=name,
                level=level,
                n_resamples=n_resamples,
                seed=seed,
                disagreements=disagreements,
                extra_sections=sections,
            ),
            encoding="utf-8",
        )
        write_html(tmp, store=store, analysis=analysis, options=html)
    return ReportPaths(
        root=out_dir,
        index_md=out_dir / "index.md",
        estimates_csv=out_dir / "tables" / "estimates.csv",
        comparisons_csv=out_dir / "tables" / "comparisons.csv",
    )


def _remove_stale_builds(out_dir: Path) -> None:
    """Delete the temporary folders of builds of ``out_dir`` whose process is gone (a report
    killed while being written leaves ``.<name>.build-<pid>-*``; a live process's is kept)."""
    for path in out_dir.parent.glob(f".{out_dir.name}.build-*-*"):
        pid = path.name[len(out_dir.name) + len(".build-") + 1 :].split("-", 1)[0]
        if not pid.isdigit() or not path.is_dir():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:  # alive but not ours to signal (another user's process): leave it
            continue


REPORT_MARKER = ".rlvr-audit-report"
"""File rlvr-audit writes into every report folder it builds. An existing folder is replaced
only when it carries this marker (see :func:`check_report_target`)."""


def check_report_name(name: str) -> None:
    """Refuse a report name that is not one safe path component (``reports/<name>``): empty,
    ``.``, ``..``, or containing a path separator or NUL would put the report elsewhere, or
    make it replace other reports."""
    bad = (
        "it is empty"
        if not name.strip()
        else "it is '.' or '..'"
        if name.strip() in {".", ".."}
        else "it contains a path separator"
        if "/" in name or "\\" in name or os.sep in name
        else "it contains a NUL byte"
        if "\0" in name
        else ""
    )
    if bad:
        raise UsageError(
            f"--name {name!r} is not a valid report name ({bad}): give one folder name such as 'qwen-math'; "
            "use --report-dir to write the report elsewhere"
        )


def _contains(outer: Path, inner: Path) -> bool:
    """Whether ``inner`` is ``outer`` or lies inside it (both resolved)."""
    return inner == outer or outer in inner.parents


def check_report_target(out_dir: Path, *, protected: Sequence[tuple[str, Path]] = ()) -> None:
    """Refuse to build a report in ``out_dir`` when that would destroy anything but an earlier
    rlvr-audit report.

    ``out_dir`` may be missing, an empty folder, or a folder carrying :data:`REPORT_MARKER`.
    Anything else is refused with one line: a file or link, a folder without the marker (a
    store, a checkout, someone's data, a folder of other reports), and any folder that is or
    contains one of ``protected`` (``(what, path)`` pairs such as the store root and the current
    directory), marker or not."""
    out_dir = Path(out_dir)
    resolved = out_dir.resolve()
    for what, path in protected:
        if _contains(resolved, Path(path).resolve()):
            raise UsageError(
                f"refusing to write the report into {out_dir}: it is or contains {what} {path}; "
                "choose another --name or --report-dir"
            )
    if out_dir.is_symlink():
        raise UsageError(f"refusing to replace {out_dir}: it is a symbolic link; choose another --name or --report-dir")
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise UsageError(f"refusing to replace {out_dir}: it is a file, not a report folder")
    marker = out_dir / REPORT_MARKER
    if marker.is_file() and not marker.is_symlink():
        return
    entries = [p.name for p in out_dir.iterdir()]
    if not entries:
        return
    looks = (
        "a git checkout"
        if ".git" in entries
        else "a store"
        if "units" in entries or "runs" in entries
        else "a folder of reports"
        if any((out_dir / e / REPORT_MARKER).is_file() for e in entries)
        else "a non-empty folder"
    )
    raise UsageError(
        f"refusing to replace {out_dir}: it is {looks} that rlvr-audit did not write (no {REPORT_MARKER} "
        "marker); choose another --name or --report-dir, or remove it yourself"
    )


def _write_marker(folder: Path) -> None:
    from importlib import metadata

    try:
        version = metadata.version("rlvr-audit")
    except metadata.PackageNotFoundError:  # running from a source tree
        version = "unknown"
    (folder / REPORT_MARKER).write_text(
        "This folder is a report written by rlvr-audit " + version + ". rlvr-audit replaces a report\n"
        "folder only when it holds this file; do not put anything else here.\n",
        encoding="utf-8",
    )


@contextmanager
def building_report_dir(out_dir: Path, *, protected: Sequence[tuple[str, Path]] = ()) -> Iterator[Path]:
    """Build a report folder atomically: yields an empty temporary sibling folder to write into;
    on success it replaces ``out_dir`` (the old one is removed only after the new one is in
    place), on any error it is deleted and ``out_dir`` is left as it was.

    ``out_dir`` is checked first (:func:`check_report_target`, with the current directory added
    to ``protected``): only a missing or empty folder or an earlier rlvr-audit report is ever
    replaced. The new folder carries :data:`REPORT_MARKER`."""
    out_dir = Path(out_dir)
    check_report_target(out_dir, protected=[*protected, ("the current directory", Path.cwd())])
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_builds(out_dir)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.build-{os.getpid()}-"))
    _follow_umask(tmp)
    try:
        yield tmp
        _write_marker(tmp)
        check_report_target(out_dir, protected=[*protected, ("the current directory", Path.cwd())])
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.old-{os.getpid()}-"))
            old.rmdir()
            out_dir.rename(old)
            tmp.rename(out_dir)
            shutil.rmtree(old)
        else:
            tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _follow_umask(folder: Path) -> None:
    """``mkdtemp`` creates mode 0700; a report is shared like any folder the user makes, so give
    it the mode ``mkdir`` would (0777 minus the umask)."""
    mask = os.umask(0)
    os.umask(mask)
    folder.chmod(0o777 & ~mask)


__all__ = [
    "REPORT_MARKER",
    "Comparison",
    "Estimate",
    "ReportPart",
    "ReportPaths",
    "building_report_dir",
    "check_report_name",
    "check_report_target",
    "write_report",
]
