"""The claims analyses as report sections: baseline correction, statistical resolution, and the
whole report of ``rlvr-audit run --claims-only`` (:func:`claims_document`).

Cited numbers and measured ones are marked (:class:`~rlvr_audit.core.section.Mark`): the kind
column says ``cited`` or **measured**, and measured cells carry their confidence interval."""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping, Sequence

from ..core.claims import (
    BenchmarkInfo,
    Ledger,
    RlvrGain,
    claimed_gain,
    claimed_value,
)
from ..core.section import (
    BREAK,
    Block,
    BulletList,
    Code,
    Document,
    Emph,
    Heading,
    Inline,
    Link,
    Mark,
    Paragraph,
    Section,
    Strong,
    Table,
    Text,
    table_links,
)
from . import stats
from .claims import (
    SHRINK_FRACTION,
    CorrectionGroup,
    CorrectionRow,
    ResolutionRow,
    baseline_correction,
    claims_frame,
    correction_frame,
    printed,
    printed_or_blank,
    resolution,
    resolution_frame,
    reward_text,
)
from .crossfamily import build_grids, claimed_from_ledger, cross_family_section
from .estimates import Analysis

__all__ = [
    "claims_document",
    "correction_blocks",
    "correction_section",
    "measured_correction_section",
    "resolution_section",
]


def _pts(x: float) -> str:
    return f"{x:+.1f}"


def _source_link(ledger: Ledger, source_id: str) -> Text:
    if source_id == "store":
        return "store"
    return Link(source_id, ledger.source_url(source_id))


def _bench(catalog: Mapping[str, BenchmarkInfo], benchmark: str) -> str:
    return catalog[benchmark].display_name if benchmark in catalog else benchmark


def correction_blocks(
    groups: Sequence[CorrectionGroup], ledger: Ledger, catalog: Mapping[str, BenchmarkInfo], *, level: float = 0.95
) -> list[Block]:
    """The "Baseline correction" section's blocks: one table per model x benchmark x paper
    version x step, rows = the claimed baseline then each corrected baseline, columns = the claims."""
    blocks: list[Block] = [
        Paragraph(
            [
                "For every claimed gain with a claimed final accuracy: the claimed baseline, value and gain, and the ",
                Strong("adjusted gain"),
                " = claimed value - corrected baseline against every corrected baseline of the same base model, "
                "benchmark and a compatible metric (single-sample accuracies: pass@1 and avg@k). ",
                Mark("cited"),
                " baselines are published numbers from the ledger; ",
                Mark("measured"),
                f" ones were computed by rlvr-audit from stored generations, with their {int(level * 100)}% "
                "bootstrap interval (and, where we also measured the claimed checkpoint, our paired gain over the "
                "same problems). Paper versions are never mixed in one table.",
            ]
        ),
        Paragraph(
            [
                "Verdicts: ",
                Strong("reverses"),
                " = adjusted gain <= 0; ",
                Strong("within noise"),
                " = adjusted gain below the benchmark's minimum detectable effect (MDE, at the corrected baseline's "
                "accuracy) or our interval includes 0; ",
                Strong("shrinks"),
                f" = less than {SHRINK_FRACTION:.0%} of the claimed gain survives; ",
                Strong("holds"),
                " = otherwise. For claimed losses: within noise, holds (still a loss) or reverses (becomes a gain). ",
                Code("~"),
                " marks numbers read off a plot or hedged in the source.",
            ]
        ),
    ]
    if not groups:
        blocks.append(Paragraph(Emph("No gain claim with a claimed final accuracy.")))
        return blocks
    for g in groups:
        step = f", step {g.step}" if g.step is not None else ""
        blocks.append(Heading(f"{ledger.family_display(g.model)} · {_bench(catalog, g.benchmark)} · {g.source}{step}"))
        proto = ledger.protocol_label(g.claims[0])
        prompt = ledger.prompt(g.claims[0])
        claimed = ", ".join(printed(b) for b in g.claimed_baselines) or "not printed"
        line: list[Inline] = [f"Claimed baseline: {claimed} ({ledger.metric(g.claims[0])}, {proto}"]
        if prompt:
            line += [", prompt ", Code(prompt)]
        line += ["; ", _source_link(ledger, g.source), ")."]  # type: ignore[list-item]
        if g.reproductions:
            line += [BREAK, "Reproductions of the paper's own protocol (not corrections): "]
            for i, e in enumerate(g.reproductions):
                approx = "~" if e.exactness == "approximate" else ""
                line += ["; " if i else "", f"{approx}{printed(e.value)} (", _source_link(ledger, e.source)]  # type: ignore[list-item]
                line += [f", {e.setting}, ", Code(e.id), ")"]
            line.append(".")
        blocks.append(Paragraph(line))
        if not g.baselines:
            blocks.append(
                Paragraph(Emph("No corrected baseline for this model and benchmark in the ledger or the store."))
            )
            claims: list[Inline] = ["Claims: "]
            for i, c in enumerate(g.claims):
                claims += ["; " if i else "", f"{c.reward_label} {_claim_cell(c)} (", Code(c.id), ")"]
            claims.append(".")
            blocks.append(Paragraph(claims))
            continue
        header: list[Text] = ["Baseline", "Kind", "Value", "Setting"]
        header += [[c.reward_label, BREAK, _claim_cell(c)] for c in g.claims]
        by = {(r.claim.id, r.baseline.ref, r.baseline.grader): r for r in g.rows}
        rows: list[list[Text]] = []
        for b in g.baselines:
            val: list[Inline]
            if b.kind == "measured":
                val = [f"{b.value:.1f} [{b.ci_low:.1f}, {b.ci_high:.1f}]" if b.ci_low is not None else f"{b.value:.1f}"]
                if b.n_problems is not None and b.n_problems_total and b.n_problems < b.n_problems_total:
                    val += [BREAK, Emph(f"n={b.n_problems}/{b.n_problems_total}")]
                name: list[Inline] = [Code(b.ref), " (store)"]
            else:
                val = [("~" if b.exactness == "approximate" else "") + printed(b.value)]
                name = [Code(b.ref), " (", _source_link(ledger, b.source), ")"]  # type: ignore[list-item]
            row: list[Text] = [name, Mark(b.kind), val, f"{b.setting}; {b.metric}, {b.protocol}"]
            for c in g.claims:
                r = by.get((c.id, b.ref, b.grader))
                row.append("" if r is None else _row_cell(r))
            rows.append(row)
        blocks.append(Table(header, rows))
    return blocks


def _claim_cell(c: RlvrGain) -> str:
    """``49.4 → 78.2 (+28.8)`` (``~`` first when approximate)."""
    approx = "~" if c.exactness == "approximate" else ""
    gain = claimed_gain(c)
    base = f"{printed(c.baseline)} → " if c.baseline is not None else ""
    return f"{approx}{base}{printed_or_blank(claimed_value(c))}" + (f" ({gain:+.1f})" if gain is not None else "")


def _row_cell(r: CorrectionRow) -> list[Inline]:
    cell = _pts(r.adjusted_gain)
    if r.adjusted_ci is not None:
        cell += f" [{_pts(r.adjusted_ci[0])}, {_pts(r.adjusted_ci[1])}]"
    out: list[Inline] = [f"{cell} · {r.verdict}"]
    if r.measured_gain is not None and r.measured_gain_ci is not None:
        out += [BREAK, Mark("measured"), f" gain {_pts(r.measured_gain)} [{_pts(r.measured_gain_ci[0])}, "]
        out.append(f"{_pts(r.measured_gain_ci[1])}]")
    return out


def correction_section(
    groups: Sequence[CorrectionGroup], ledger: Ledger, catalog: Mapping[str, BenchmarkInfo], *, level: float = 0.95
) -> Section:
    """The "Baseline correction" section with ``baseline_correction.csv``."""
    return Section(
        "Baseline correction",
        correction_blocks(groups, ledger, catalog, level=level),
        tables={"baseline_correction.csv": correction_frame(groups)},
    )


def resolution_section(
    rows: Sequence[ResolutionRow],
    ledger: Ledger,
    catalog: Mapping[str, BenchmarkInfo],
    *,
    level: float = 0.95,
    alpha: float = 0.05,
    power: float = 0.8,
) -> Section:
    """The "Statistical resolution" section: per claimed gain, n, k, the interval half-width and
    the minimum detectable effect, with gains below it flagged; ``resolution.csv``."""
    flagged = [r for r in rows if r.flag in ("below resolution", "partly below resolution")]
    note = Paragraph(
        [
            "What each benchmark and protocol can resolve: ±CI = expected half-width of one accuracy's "
            f"{int(level * 100)}% interval; MDE = the smallest true paired gain a two-sided test at alpha = "
            f"{alpha:g} detects with power {power:g} (variance model of ",
            Code("rlvr_audit.analysis.stats.minimum_detectable_effect"),
            f": problem ICC {stats.DEFAULT_PROBLEM_ICC:g}, base-treatment correlation "
            f"{stats.DEFAULT_PAIR_CORRELATION:g}), both at the accuracy shown (the claimed baseline; else the base "
            "model's accuracy under the paper's protocol from the ledger; else 50%, the worst case). n = problems in "
            "the benchmark, k = samples per problem. A claimed gain smaller than the MDE is ",
            Strong("below resolution"),
            ": a benchmark of this size cannot tell it from no gain. All numbers here are cited claims; the widths "
            "are computed.",
        ]
    )
    header: list[Text] = ["Claim", "Source", "Model", "Benchmark", "Reward / intervention", "Metric", "n", "k"]
    header += ["Accuracy used", "±CI", "MDE", "Claimed gain", "Resolution"]
    table: list[list[Text]] = []
    for r in rows:
        c = r.claim
        approx = "~" if c.exactness == "approximate" else ""
        gain = approx + ("..".join(f"{g:+.1f}" for g in r.gains))
        flag: Text = Strong(r.flag) if r.flag in ("below resolution", "partly below resolution") else r.flag
        mde = "-" if r.mde is None else ("∞" if math.isinf(r.mde) else f"{r.mde:.1f}")
        half = "-" if r.ci_half_width is None else f"{r.ci_half_width:.1f}"
        table.append(
            [
                Code(c.id),
                c.source,
                ledger.family_display(c.model),
                _bench(catalog, c.benchmark),
                reward_text(c),
                ledger.metric(c) or "-",
                str(r.n_problems or "?"),
                str(r.k),
                f"{printed(r.accuracy)} ({r.accuracy_from})",
                half,
                mde,
                gain,
                flag,
            ]
        )
    blocks: list[Block] = [
        note,
        Paragraph(f"{len(flagged)} of {len(rows)} claimed gains are at least partly below resolution."),
        Table(header, table, kind="cited"),
    ]
    return Section("Statistical resolution", blocks, tables={"resolution.csv": resolution_frame(rows, ledger)})


def claims_document(
    ledger: Ledger,
    catalog: Mapping[str, BenchmarkInfo],
    *,
    name: str,
    level: float = 0.95,
    analysis: Analysis | None = None,
    store_note: Sequence[Inline] = (),
) -> Document:
    """The whole report of ``rlvr-audit run --claims-only``: baseline correction, statistical
    resolution, the claimed cross-family grids and the sources, with ``claims.csv`` (every ledger
    entry). ``analysis``: our estimates of stored units (measured baselines); ``None`` = cited only."""
    groups = baseline_correction(ledger, catalog, analysis=analysis)
    res = resolution(ledger, catalog, level=level)
    grids = build_grids(
        None,
        claimed=[g for g in claimed_from_ledger(ledger) if g.task in catalog and catalog[g.task].is_task],
        family_order=list(ledger.families),
        family_display=dict(ledger.families),
        task_display={b.id: b.display_name for b in catalog.values()},
    )
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    kinds: dict[str, int] = {}
    for c in ledger.claims:
        kinds[c.kind] = kinds.get(c.kind, 0) + 1
    n_measured = sum(1 for g in groups for b in g.baselines if b.kind == "measured")
    intro: list[Block] = [
        Paragraph(
            [
                "Written ",
                now,
                " from the claims ledger in ",
                Code(ledger.path.name if ledger.path else "claims.yaml"),
                f" ({len(ledger)} entries: " + ", ".join(f"{v} {k}" for k, v in kinds.items()) + "). ",
                *store_note,
            ]
        ),
        Paragraph(
            [
                "Numbers marked ",
                Mark("cited"),
                " are published numbers copied from the ledger (each with its source and location in ",
                Code("tables/claims.csv"),
                "); numbers marked ",
                Mark("measured"),
                f" were computed by rlvr-audit from stored generations ({n_measured} measured baselines in this "
                "report). All values are accuracy points (percent).",
            ]
        ),
    ]
    sections = [
        correction_section(groups, ledger, catalog, level=level),
        resolution_section(res, ledger, catalog, level=level),
    ]
    if grids:
        sections.append(cross_family_section(grids, title="Cross-family gains (claimed)"))
    sources: list[Text] = []
    for sid, s in ledger.sources.items():
        item: list[Inline] = [Strong(sid), f": {s.title}" + (f" ({s.date})" if s.date else "") + " "]
        item.append(Link(s.url, s.url))
        sources.append(item)
    sections.append(Section("Sources", [BulletList(sources)]))
    links = [("baseline_correction.csv", ""), ("resolution.csv", ""), ("claims.csv", "(every ledger entry)")]
    if grids:
        links.append(("cross_family.csv", ""))
    outro: list[Block] = [table_links(links, lead="Machine-readable tables: ")]
    return Document(
        ["rlvr-audit claims report: ", name],
        intro=intro,
        sections=sections,
        outro=outro,
        tables={"claims.csv": claims_frame(ledger)},
    )


def measured_correction_section(
    ledger: Ledger, catalog: Mapping[str, BenchmarkInfo], analysis: Analysis, *, level: float = 0.95
) -> Section | None:
    """For the normal report: the baseline-correction section and table restricted to the
    model x benchmark pairs whose base model the store measured; ``None`` when there is none."""
    groups = baseline_correction(ledger, catalog, analysis=analysis, only_measured=True)
    if not groups:
        return None
    return correction_section(groups, ledger, catalog, level=level)
