"""Report stage: ``reports/<name>/index.md`` and machine-readable tables, from the store only.

Writes::

    index.md                 reproduction table(s), settings, run manifests
    tables/estimates.csv     checkpoint, task, prompt, grader, metric, n_problems, n_samples,
                             value, ci_low, ci_high, ... (accuracies as fractions)
    tables/comparisons.csv   checkpoint, base, task, prompt, grader, metric, delta, ci_low,
                             ci_high, ... (fractions)
    tables/grader_disagreement.csv  per unit and grader: accuracy over the samples all graders
                             graded, and how many of them the graders disagree on

Files are written to a temporary folder and moved into place, so a failed report never leaves
a half-written one.
"""

from __future__ import annotations

import datetime as _dt
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .analyse import Analysis
from .disagreement import UnitDisagreement, disagreement_frame, disagreement_section, grader_disagreements
from .records import Comparison, Estimate, RunManifest
from .store import Store, UnitInfo

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
    "level",
    "method",
    "seed",
    "family",
    "base",
    "reward",
    "step",
    "unit_key",
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
    "baseline_value",
    "treatment_value",
    "p_value",
    "n_problems",
    "level",
    "method",
    "seed",
    "treatment_unit",
    "baseline_unit",
]


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
                "level": e.level,
                "method": e.method,
                "seed": e.seed,
                "family": u.family,
                "base": u.base or "",
                "reward": u.reward or "",
                "step": "" if u.step is None else u.step,
                "unit_key": e.unit_key,
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
            "baseline_value": c.baseline_value,
            "treatment_value": c.treatment_value,
            "p_value": c.p_value,
            "n_problems": c.n_problems,
            "level": c.level,
            "method": c.method,
            "seed": c.seed,
            "treatment_unit": c.treatment_unit,
            "baseline_unit": c.baseline_unit,
        }
        for c in analysis.comparisons
    ]
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _signed(x: float) -> str:
    return f"{100 * x:+.1f}"


def _protocol_label(u: UnitInfo) -> str:
    p = u.spec.protocol
    decoding = (
        "greedy" if p.temperature == 0 else f"T={p.temperature:g}" + (f", top-p {p.top_p:g}" if p.top_p < 1 else "")
    )
    return f"{decoding}, {p.n} sample{'s' if p.n > 1 else ''}, {p.max_new_tokens} tokens, seed {p.seed}"


def _escape(text: str) -> str:
    """Make text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


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
        for u in sorted(fam_units, key=lambda x: (x.base is not None, x.step or 0, x.spec.checkpoint.checkpoint_id)):
            col = (u.spec.task, _protocol_label(u) if len(protocols_per_task[u.spec.task]) > 1 else None)
            rows.setdefault((u.spec.checkpoint.checkpoint_id, u.spec.template_id), {})[col] = u
        for (cid, template), cells in rows.items():
            any_unit = next(iter(cells.values()))
            label = cid.split("/", 1)[1] if "/" in cid else cid
            extras = [x for x in (any_unit.reward, f"step {any_unit.step}" if any_unit.step else None) if x]
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
                cell = f"{_pct(e.value)} [{_pct(e.ci_low or 0)}, {_pct(e.ci_high or 0)}]"
                if e.n_problems < u.n_problems_total:
                    cell += f"<br>_n={e.n_problems}/{u.n_problems_total}_"
                c = comp.get(u.key)
                if c is not None:
                    cell += f"<br>{_signed(c.delta)} [{_signed(c.ci_low)}, {_signed(c.ci_high)}] vs base"
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
            f"{_protocol_label(u)} | {_escape(engine)} | {n_gen} | {graders} | `{u.key}` |"
        )
    return "\n".join(lines) + "\n"


def manifest_section(manifests: list[RunManifest], unit_keys: set[str]) -> str:
    """The runs that touched these units, newest last."""
    relevant = [m for m in manifests if unit_keys & set(m.units)]
    if not relevant:
        return "_No run manifest in the store for these units._\n"
    lines = []
    for m in relevant[-5:]:
        lines.append(f"- **{m.run_id}** ({m.status}, {m.started_at} to {m.finished_at or '?'}): `{_escape(m.command)}`")
        lines.append(f"  - backend: {m.backend or '-'}; git commit: {m.git_commit or '-'}")
        lines.append("  - packages: " + ", ".join(f"{k} {v}" for k, v in sorted(m.packages.items())))
        lines.append("  - hardware: " + ", ".join(f"{k}: {v}" for k, v in sorted(m.hardware.items())))
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
) -> str:
    """The whole ``index.md`` (``disagreements``: precomputed grader disagreement, else computed)."""
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        f"# rlvr-audit report: {name}\n",
        f"Written {now} from the store `{store.root}` ({len(analysis.units)} units). Every number below was "
        "**measured** by rlvr-audit from stored generations.\n",
        f"Cells: accuracy in % with its {int(level * 100)}% bootstrap confidence interval (problems resampled, "
        f"{n_resamples} resamples, seed {seed}); under it, the gain over the checkpoint's base model in points, "
        "with a paired bootstrap interval over the same problems, task, prompt, protocol and grader. "
        "`n=a/b` marks a unit evaluated on a of its b problems.\n",
    ]
    for gid in analysis.graders:
        parts.append(f"## Reproduction table: grader `{gid}`\n")
        parts.append(reproduction_table(analysis, gid))
    if not analysis.graders:
        parts.append("## Reproduction table\n\n_Nothing graded yet: run `rlvr-audit grade`._\n")
    if len(analysis.graders) > 1:
        if disagreements is None:
            disagreements = grader_disagreements(store, analysis.units, analysis.graders)
        parts.append("## Grader disagreement\n")
        parts.append(disagreement_section(disagreements))
    if analysis.comparisons:
        parts.append("## Gains over base\n")
        parts.append(
            "| Checkpoint | Base | Task | Prompt | Grader | Metric | Gain (points) "
            "| p (paired permutation) | Problems |"
        )
        parts.append("|---|---|---|---|---|---|---|---|---|")
        for c in analysis.comparisons:
            p = "-" if c.p_value is None else f"{c.p_value:.3g}"
            parts.append(
                f"| {c.treatment} | {c.baseline} | {c.task} | `{c.template_id}` | {c.grader_id} | {c.metric} | "
                f"{_signed(c.delta)} [{_signed(c.ci_low)}, {_signed(c.ci_high)}] | {p} | {c.n_problems} |"
            )
        parts.append("")
    parts.append("## Settings\n")
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
) -> ReportPaths:
    """Write the report folder atomically (build in a temporary folder, then replace)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        (tmp / "tables").mkdir()
        estimates_frame(analysis).to_csv(tmp / "tables" / "estimates.csv", index=False)
        comparisons_frame(analysis).to_csv(tmp / "tables" / "comparisons.csv", index=False)
        disagreements = grader_disagreements(store, analysis.units, analysis.graders)
        disagreement_frame(disagreements).to_csv(tmp / "tables" / "grader_disagreement.csv", index=False)
        (tmp / "index.md").write_text(
            render_markdown(
                analysis,
                store,
                name=name,
                level=level,
                n_resamples=n_resamples,
                seed=seed,
                disagreements=disagreements,
            ),
            encoding="utf-8",
        )
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old")
            if old.exists():
                shutil.rmtree(old)
            out_dir.rename(old)
            tmp.rename(out_dir)
            shutil.rmtree(old)
        else:
            tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ReportPaths(
        root=out_dir,
        index_md=out_dir / "index.md",
        estimates_csv=out_dir / "tables" / "estimates.csv",
        comparisons_csv=out_dir / "tables" / "comparisons.csv",
    )


__all__ = ["Comparison", "Estimate", "ReportPaths", "write_report"]
