"""The report's core sections, from an :class:`~rlvr_audit.analysis.estimates.Analysis`.

- the opening paragraphs and one **reproduction table** per grader: checkpoints grouped by
  family, benchmarks as columns, cells ``avg@k [CI]`` and the gain over base ``[CI]``
  (``tables/estimates.csv``, ``tables/comparisons.csv``);
- **imported generations**: each number a source reported beside ours;
- **gains over base** with the exact paired test and adjusted p-values;
- **seed-to-seed spread** of settings run with several sampling seeds (``tables/seed_spread.csv``);
- **broken units**: unit folders of the store that could not be read and were left out
  (``tables/broken_units.csv``);
- the **settings** (the interval method and its flags, one row per unit) and the **run
  manifests** that touched the units.

Every value here is a :class:`~rlvr_audit.core.section.Section`; the report package renders it.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..core.records import RunManifest, SourceMetric, natural_key
from ..core.section import BREAK, BulletList, Code, Emph, Inline, Paragraph, Row, Section, Strong, Table, Text
from ..core.store import BrokenUnit, Store, UnitInfo, run_status
from . import stats
from .estimates import Analysis, multiplicity_family

__all__ = [
    "COMPARISON_COLUMNS",
    "ESTIMATE_COLUMNS",
    "SEED_COLUMNS",
    "broken_units_section",
    "comparisons_frame",
    "estimates_frame",
    "gains_section",
    "imported_section",
    "interval_settings",
    "intro",
    "manifest_section",
    "protocol_label",
    "reproduction_sections",
    "seed_spread_frame",
    "seed_spread_section",
    "settings_section",
    "source_value",
]

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
    "p_holm_grader",
    "p_bh_grader",
]


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
            "p_holm_grader": c.p_holm_grader,
            "p_bh_grader": c.p_bh_grader,
        }
        for c in analysis.comparisons
    ]
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _signed(x: float) -> str:
    return f"{100 * x:+.1f}"


def _flags(flags: Sequence[str]) -> str:
    """The interval flags printed beside a cell (see :data:`rlvr_audit.analysis.stats.INTERVAL_FLAGS`)."""
    return " ⚠ " + ", ".join(flags) if flags else ""


def interval_settings(analysis: Analysis, *, level: float, n_resamples: int, seed: int) -> list[Inline]:
    """One paragraph's content: which interval the cells use (and that ``wilson`` is the default),
    and the meaning of every flag that occurs in this report."""
    pct = f"{level * 100:g}%"
    how: list[Inline]
    if analysis.ci_method == "wilson":
        how = [
            f"Intervals: {pct} Wilson score interval over problems with a cluster design effect for accuracies, "
            "MOVER from the two Wilson intervals for paired gains (",
            Code("--ci-method wilson"),
            ", the default since it replaced the percentile bootstrap, which under-covers at AIME size; see ",
            Code("rlvr_audit.analysis.stats"),
            ").",
        ]
    else:
        how = [
            f"Intervals: {pct} {analysis.ci_method} bootstrap over problems ({n_resamples} resamples, seed {seed}; ",
            Code(f"--ci-method {analysis.ci_method}"),
            "; the default is ",
            Code("wilson"),
            ").",
        ]
    used = sorted(
        {f for e in analysis.estimates for f in e.interval_flags}
        | {f for c in analysis.comparisons for f in c.interval_flags}
    )
    if used:
        how.append(" ⚠ marks a cell whose interval carries a flag: ")
        for i, f in enumerate(used):
            how += ["; " if i else "", Code(f), f": {stats.INTERVAL_FLAGS.get(f, '(unknown flag)')}"]
        how.append(".")
    return how


def protocol_label(u: UnitInfo) -> str:
    """The sampling protocol of a unit in words (decoding, samples, token limit, seed)."""
    p = u.spec.protocol
    decoding = (
        "greedy" if p.temperature == 0 else f"T={p.temperature:g}" + (f", top-p {p.top_p:g}" if p.top_p < 1 else "")
    )
    return f"{decoding}, {p.n} sample{'s' if p.n > 1 else ''}, {p.max_new_tokens} tokens, seed {p.seed}"


def applied_label(u: UnitInfo) -> str:
    """What the engine applied beyond the protocol (``UnitInfo.sampling``), for the settings table
    (``""`` when the store does not say)."""
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
    return f"; applied: {applied}" + (f" ({a.engine})" if a.engine else "")


def reproduction_table(analysis: Analysis, grader_id: str) -> Table | Paragraph:
    """Rows: checkpoints (grouped by family) x prompt; columns: benchmark (+ protocol if a task
    was run under several); cells: avg@k [CI] and gain over base [CI]."""
    units = [u for u in analysis.units if (u.key, grader_id) in analysis.matrices]
    if not units:
        return Paragraph(Emph("No graded units."))
    est = {(e.unit_key, e.metric): e for e in analysis.estimates if e.grader_id == grader_id}
    comp = {c.treatment_unit: c for c in analysis.comparisons if c.grader_id == grader_id}
    protocols_per_task: dict[str, set[str]] = {}
    for u in units:
        protocols_per_task.setdefault(u.spec.task, set()).add(protocol_label(u))
    columns: list[tuple[str, str | None]] = []
    for u in units:
        col = (u.spec.task, protocol_label(u) if len(protocols_per_task[u.spec.task]) > 1 else None)
        if col not in columns:
            columns.append(col)
    display = {u.spec.task: u.task_display or u.spec.task for u in units}
    header: list[Text] = ["Checkpoint", "Prompt"]
    for task, proto in columns:
        k = next(x.spec.protocol.n for x in units if x.spec.task == task)
        label: list[Inline] = [f"{display[task]} (avg@{k})"]
        if proto:
            label += [BREAK, proto]
        header.append(label)
    rows: list[Row] = []
    families: dict[str, list[UnitInfo]] = {}
    for u in units:
        families.setdefault(u.family_display, []).append(u)
    for family, fam_units in families.items():
        rows.append(Row([family], group=True))
        by_row: dict[tuple[str, str], dict[tuple[str, str | None], UnitInfo]] = {}
        for u in sorted(
            fam_units, key=lambda x: (x.base is not None, x.step or 0, natural_key(x.spec.checkpoint.checkpoint_id))
        ):
            col = (u.spec.task, protocol_label(u) if len(protocols_per_task[u.spec.task]) > 1 else None)
            by_row.setdefault((u.spec.checkpoint.checkpoint_id, u.spec.template_id), {})[col] = u
        for (cid, template), cells in by_row.items():
            any_unit = next(iter(cells.values()))
            short = cid.split("/", 1)[1] if "/" in cid else cid
            extras = [x for x in (any_unit.reward, f"step {any_unit.step}" if any_unit.step else None) if x]
            if any(c.spec.synthetic for c in cells.values()):
                extras.append(f"synthetic: {any_unit.spec.backend}, no model")
            name = f"{short} ({', '.join(extras)})" if extras else short
            row: list[Text] = [name, Code(template)]
            for col in columns:
                cell_unit = cells.get(col)
                e = est.get((cell_unit.key, f"avg@{cell_unit.spec.protocol.n}")) if cell_unit is not None else None
                if cell_unit is None or e is None:
                    row.append("")
                    continue
                u = cell_unit
                cell: list[Inline] = [
                    f"{_pct(e.value)} [{_pct(e.ci_low or 0)}, {_pct(e.ci_high or 0)}]{_flags(e.interval_flags)}"
                ]
                if e.n_problems < u.n_problems_total:
                    cell += [BREAK, Emph(f"n={e.n_problems}/{u.n_problems_total}")]
                c = comp.get(u.key)
                if c is not None:
                    gain = f"{_signed(c.delta)} [{_signed(c.ci_low)}, {_signed(c.ci_high)}]"
                    cell += [BREAK, f"{gain} vs base{_flags(c.interval_flags)}"]
                elif u.base:
                    cell += [BREAK, Emph("base not evaluated in this setting")]
                row.append(cell)
            rows.append(Row(row))
    return Table(header, rows, kind="measured")


def intro(analysis: Analysis, store: Store, *, level: float, n_resamples: int, seed: int) -> list[Paragraph]:
    """The paragraphs under the report's title: when, from what, and how to read the cells."""
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return [
        Paragraph(
            [
                f"Written {now} from the store ",
                Code(str(store.root)),
                f" ({len(analysis.units)} units). Every number below was ",
                Strong("measured"),
                " by rlvr-audit from stored generations.",
            ]
        ),
        Paragraph(
            [
                f"Cells: accuracy in % with its {level * 100:g}% confidence interval; under it, the gain over the "
                "checkpoint's base model in points, with a paired interval over the same problems, task, prompt, "
                "protocol and grader. ",
                Code("n=a/b"),
                " marks a unit evaluated on a of its b problems. ",
                *interval_settings(analysis, level=level, n_resamples=n_resamples, seed=seed),
            ]
        ),
    ]


def reproduction_sections(analysis: Analysis) -> list[Section]:
    """One reproduction-table section per grader (or one saying there is nothing to show); the
    first carries ``estimates.csv`` and ``comparisons.csv``."""
    sections = [
        Section(["Reproduction table: grader ", Code(gid)], [reproduction_table(analysis, gid)])
        for gid in analysis.graders
    ]
    if not analysis.units:
        sections.append(
            Section(
                "Reproduction table",
                [
                    Paragraph(
                        Emph(
                            [
                                "No evaluation units in this report (the store holds only the probes below): "
                                "evaluate checkpoints with ",
                                Code("rlvr-audit run"),
                                ".",
                            ]
                        )
                    )
                ],
            )
        )
    elif not analysis.graders:
        sections.append(
            Section(
                "Reproduction table", [Paragraph(Emph(["Nothing graded yet: run ", Code("rlvr-audit grade"), "."]))]
            )
        )
    sections[0].tables.update(
        {"estimates.csv": estimates_frame(analysis), "comparisons.csv": comparisons_frame(analysis)}
    )
    return sections


def source_value(u: UnitInfo, metric: str) -> float | None:
    """For an imported unit, the source's own reported value of ``metric`` (a fraction; the
    metric named exactly so first); ``None`` for generated units or metrics it did not report."""
    if u.imported is None:
        return None
    found = [m for m in u.imported.metrics if m.metric == metric]
    found.sort(key=lambda m: m.name != metric)
    return found[0].value if found else None


def imported_section(analysis: Analysis) -> Section | None:
    """For every imported unit: each number the source reported beside ours under every grader.

    One row per imported unit and source metric; a grader's cell is our estimate of the same
    metric [CI] and ours minus the source's, in points. A source number that measures
    something else than our avg@k / pass@k (e.g. the first sample only) is listed without ours.
    ``None`` without imported units.
    """
    units = [u for u in analysis.units if u.imported is not None]
    if not units:
        return None
    est = {(e.unit_key, e.grader_id, e.metric): e for e in analysis.estimates}
    header: list[Text] = ["Checkpoint", "Task", "Source", "Problems", "Source's metric", "Source's value"]
    header += [["Ours: ", Code(g)] for g in analysis.graders]
    rows: list[list[Text]] = []
    for u in units:
        src = u.imported
        assert src is not None
        files = ", ".join(Path(f).name for f in src.files)
        source = f"{src.format}: {files}" + (f" (model {src.model})" if src.model else "")
        problems: list[Inline] = [f"{src.items - src.unmatched}/{src.items}"]
        if src.gold_mismatches:
            problems += [BREAK, f"{src.gold_mismatches} gold mismatches"]
        metrics: list[SourceMetric | None] = [*src.metrics] or [None]
        for m in metrics:
            row: list[Text] = [u.spec.checkpoint.checkpoint_id, u.task_display or u.spec.task, source, problems]
            if m is None:
                row += [Emph("none reported"), ""]
            else:
                row += [f"{m.name} ({m.origin})", _pct(m.value)]
            for g in analysis.graders:
                if m is None or m.metric is None:
                    row.append(Emph("not comparable") if m is not None else "")
                    continue
                e = est.get((u.key, g, m.metric))
                if e is None:
                    row.append(Emph("not graded"))
                    continue
                cell: list[Inline] = [f"{m.metric} {_pct(e.value)} [{_pct(e.ci_low or 0)}, {_pct(e.ci_high or 0)}]"]
                cell += [BREAK, f"{_signed(e.value - m.value)} vs source"]
                if e.n_problems < src.items - src.unmatched:
                    cell += [BREAK, Emph(f"n={e.n_problems}")]
                row.append(cell)
            rows.append(row)
    note = Paragraph(
        [
            "Generations imported from published outputs (",
            Code("rlvr-audit import"),
            "), graded by rlvr-audit. Each row puts a number the source reported about these same generations "
            "beside ours (accuracy in %, our interval, and ours minus the source's in points). Problems: matched / "
            "items in the source (unmatched items were skipped); gold mismatches: items whose gold answer differs "
            "from our task file's (we grade against ours). Where graders disagree on these samples, see the grader "
            "disagreement section.",
        ]
    )
    return Section("Imported generations: the source's numbers beside ours", [note, Table(header, rows)])


def gains_section(analysis: Analysis) -> Section | None:
    """Every RLVR checkpoint against its base: gain [CI], raw and adjusted p-values; ``None``
    without comparisons."""
    if not analysis.comparisons:
        return None
    header: list[Text] = ["Checkpoint", "Base", "Task", "Prompt", "Grader", "Metric", "Gain (points)"]
    header += ["p", "p (Holm)", "p (BH)", "Test", "Problems"]
    rows: list[list[Text]] = []
    for c in analysis.comparisons:
        p, p_holm, p_bh = ("-" if x is None else f"{x:.3g}" for x in (c.p_value, c.p_holm, c.p_bh))
        rows.append(
            [
                c.treatment,
                c.baseline,
                c.task,
                Code(c.template_id),
                c.grader_id,
                c.metric,
                f"{_signed(c.delta)} [{_signed(c.ci_low)}, {_signed(c.ci_high)}]{_flags(c.interval_flags)}",
                p,
                p_holm,
                p_bh,
                c.test or "-",
                str(c.n_problems),
            ]
        )
    note = Paragraph(
        "p: two-sided exact paired test (McNemar for one sample per problem, sign-flip permutation for k samples); "
        f"Holm and BH: adjusted over one family, {multiplicity_family(analysis.comparisons)}: several graders "
        "judging the same comparisons are several tests. The per-grader adjustment (the family restricted to one "
        "grader) is a secondary view, in the columns p_holm_grader and p_bh_grader of tables/comparisons.csv."
    )
    return Section("Gains over base", [note, Table(header, rows, kind="measured")])


def settings_section(analysis: Analysis, store: Store, *, level: float, n_resamples: int, seed: int) -> Section:
    """The interval method (and the meaning of its flags that occur), then one row per unit: what
    was run, what the engine applied, and how much of it is stored and graded."""
    header: list[Text] = ["Checkpoint", "Model", "Task", "Prompt", "Protocol", "Backend", "Generated"]
    header += ["Graded by", "Unit key"]
    rows: list[list[Text]] = []
    for u in analysis.units:
        s = u.spec
        engine = s.backend + (
            " (" + ", ".join(f"{k}={v}" for k, v in s.engine_args.items()) + ")" if s.engine_args else ""
        )
        model = s.checkpoint.model + (f"@{s.checkpoint.revision}" if s.checkpoint.revision else "")
        rows.append(
            [
                s.checkpoint.checkpoint_id,
                model,
                s.task,
                Code(s.template_id),
                protocol_label(u) + applied_label(u),
                engine,
                str(len(store.read_generations(u.key))),
                ", ".join(store.graders(u.key)) or "-",
                Code(u.key),
            ]
        )
    intervals = Paragraph(interval_settings(analysis, level=level, n_resamples=n_resamples, seed=seed))
    return Section("Settings", [intervals, Table(header, rows)])


def manifest_section(manifests: list[RunManifest], unit_keys: set[str]) -> Section:
    """The runs that touched these units, newest last (the last five)."""
    relevant = [m for m in manifests if unit_keys & set(m.units)]
    if not relevant:
        return Section("Runs (manifest)", [Paragraph(Emph("No run manifest in the store for these units."))])
    items: list[tuple[Text, list[Text]]] = []
    for m in relevant[-5:]:
        status = run_status(m)
        end = m.finished_at or ("now" if status == "running" else "?")
        head: list[Inline] = [Strong(m.run_id), f" ({status}, {m.started_at} to {end}): "]
        head.append(Code(m.command))
        items.append(
            (
                head,
                [
                    f"backend: {m.backend or '-'}; git commit: {m.git_commit or '-'}",
                    "packages: " + ", ".join(f"{k} {v}" for k, v in sorted(m.packages.items())),
                    "hardware: " + ", ".join(f"{k}: {v}" for k, v in sorted(m.hardware.items())),
                ],
            )
        )
    return Section("Runs (manifest)", [BulletList(items)])


SEED_COLUMNS = ["checkpoint", "task", "prompt", "grader", "metric", "n_seeds", "seeds"]
SEED_COLUMNS += ["mean", "sd", "min", "max", "range"]
"""Columns of ``tables/seed_spread.csv`` (values as fractions)."""


def seed_spread_frame(analysis: Analysis) -> pd.DataFrame:
    """Seed-to-seed spread (:func:`rlvr_audit.analysis.stats.seed_spread`) of every setting run with two
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


def seed_spread_section(analysis: Analysis) -> Section | None:
    """The seed-to-seed spread section with ``seed_spread.csv``; ``None`` when no setting has
    several seeds."""
    frame = seed_spread_frame(analysis)
    if frame.empty:
        return None
    header: list[Text] = ["Checkpoint", "Task", "Prompt", "Grader", "Metric", "Seeds", "Mean", "SD", "Min", "Max"]
    header.append("Range")
    rows: list[list[Text]] = [
        [
            r.checkpoint,
            r.task,
            Code(r.prompt),
            r.grader,
            r.metric,
            r.seeds,
            _pct(r.mean),
            _pct(r.sd),
            _pct(r.min),
            _pct(r.max),
            _pct(r.range),
        ]
        for r in frame.itertuples()
    ]
    note = Paragraph(
        "Settings run with several sampling seeds (everything else equal): how far a single run moves with the "
        "seed. A gain smaller than the range can be had by picking a seed."
    )
    return Section("Seed-to-seed spread", [note, Table(header, rows)], tables={"seed_spread.csv": frame})


def broken_units_section(broken: Sequence[BrokenUnit]) -> Section | None:
    """The unit folders of the store that could not be read (and were left out of every table),
    with ``broken_units.csv``; ``None`` when there are none."""
    if not broken:
        return None
    n = len(broken)
    note = Paragraph(
        f"{n} unit folder{'s' if n != 1 else ''} of the store could not be read and "
        f"{'is' if n == 1 else 'are'} left out of every table of this report:"
    )
    items: list[Text] = [[Code(b.key), ": ", Code(str(b.path)), f": {b.reason}"] for b in broken]
    frame = pd.DataFrame([{"unit": b.key, "path": str(b.path), "reason": b.reason} for b in broken])
    return Section("Broken units", [note, BulletList(items)], tables={"broken_units.csv": frame})
