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
    Fold,
    Heading,
    Inline,
    Link,
    Mark,
    Paragraph,
    Section,
    Strike,
    Strong,
    Table,
    Text,
    table_links,
)
from . import stats
from .claims import (
    VERDICT_RULES,
    VERDICTS,
    CorrectionGroup,
    CorrectionRow,
    ResolutionRow,
    baseline_correction,
    printed,
    printed_or_blank,
    resolution,
)
from .claims_tables import claims_frame, correction_frame, resolution_frame, reward_text
from .crossfamily import build_grids, claimed_from_ledger, cross_family_section
from .estimates import Analysis

__all__ = [
    "claims_document",
    "correction_blocks",
    "correction_section",
    "measured_correction_section",
    "resolution_section",
    "summary_blocks",
    "verdict_definitions",
]


def _pts(x: float) -> str:
    return f"{x:+.1f}"


def _source_link(ledger: Ledger, source_id: str) -> Text:
    if source_id == "store":
        return "store"
    return Link(source_id, ledger.source_url(source_id))


def _bench(catalog: Mapping[str, BenchmarkInfo], benchmark: str) -> str:
    return catalog[benchmark].display_name if benchmark in catalog else benchmark


def verdict_definitions(*, level: float = 0.95) -> list[Block]:
    """Every verdict with its rule, in one place (the report's "How verdicts are defined")."""
    pct = f"{level * 100:g}%"
    items: list[Text] = [[Strong(v), ": " + VERDICT_RULES[v] + "."] for v in VERDICTS]
    return [
        Paragraph(
            [
                "A verdict compares a claimed gain with ",
                Emph("one"),
                f" {pct} interval of the gain, the one printed beside it, and nothing else (the sign is taken "
                "in the claimed direction: for a claimed loss, read 'above' as 'below'):",
            ]
        ),
        BulletList(items),
        Paragraph(
            [
                "The adjusted gain = claimed value - corrected baseline. Its interval combines both numbers' "
                "sampling uncertainty as two independent evaluations (Newcombe's hybrid score method: the claimed "
                "value's Wilson interval from the benchmark's size and the claim's samples per problem, with the "
                "design effect of ",
                Code("rlvr_audit.analysis.stats.minimum_detectable_effect"),
                "; the baseline's own interval: measured, or Wilson from its size and protocol when cited). Where "
                "the ledger prints a seed-to-seed SD for the model and benchmark, a second, wider interval adds it "
                "and gives a second verdict. Where we measured the claimed checkpoint, our paired gain over the same "
                "problems gets its own verdict from its own interval. A claim without a printed baseline is judged "
                "against the claimant's own step-0 value in the ledger. ",
                f"Each verdict is wrong only when its interval misses the true gain, so at most {100 - level * 100:g}% "
                "of the time (checked by simulation in ",
                Code("tests/test_claims_verdicts.py"),
                "). The MDE column (80% power, two-sided 5%, for the test it names: McNemar's exact test for one "
                "sample per problem) says what the benchmark could detect; it is never used as a noise band. ",
                Code("~"),
                " marks numbers read off a plot or hedged in the source; ",
                Strike("struck"),
                " numbers are superseded or reversed.",
            ]
        ),
    ]


def _counts(rows: Sequence[CorrectionRow]) -> dict[str, int]:
    counts: dict[str, int] = dict.fromkeys(VERDICTS, 0)
    for r in rows:
        counts[r.verdict] += 1
    return counts


def _count_text(rows: Sequence[CorrectionRow]) -> str:
    counts = _counts(rows)
    return ", ".join(f"{n} {v}" for v, n in counts.items() if n) or "no verdict"


def summary_blocks(groups: Sequence[CorrectionGroup], ledger: Ledger, *, top: int = 5) -> list[Block]:
    """Per paper version (source): how many claim x corrected-baseline pairs hold, shrink, are
    within noise, reverse or cannot be judged; then the ``top`` largest corrections, one line each."""
    by_source: dict[str, list[CorrectionRow]] = {}
    for g in groups:
        by_source.setdefault(g.source, []).extend(g.rows)
    header: list[Text] = ["Source", *VERDICTS, "Pairs", "Claims"]
    rows: list[list[Text]] = []
    for src, rs in by_source.items():
        counts = _counts(rs)
        n_claims = len({r.claim.id for r in rs})
        rows.append([_source_link(ledger, src), *(str(counts[v]) for v in VERDICTS), str(len(rs)), str(n_claims)])
    blocks: list[Block] = [
        Paragraph(
            "Verdicts per paper version, counted over claim x corrected-baseline pairs (one claimed gain is "
            "judged against every corrected baseline; the rules are under 'How verdicts are defined')."
        ),
        Table(header, rows),
    ]
    best: dict[str, CorrectionRow] = {}
    for g in groups:
        for r in g.rows:
            if r.claimed_gain is None:
                continue
            size = abs(r.claimed_gain - r.adjusted_gain)
            old = best.get(r.claim.id)
            if old is None or size > abs((old.claimed_gain or 0.0) - old.adjusted_gain):
                best[r.claim.id] = r
    largest = sorted(best.values(), key=lambda r: -abs((r.claimed_gain or 0.0) - r.adjusted_gain))[:top]
    if largest:
        items: list[Text] = []
        for r in largest:
            assert r.claimed_gain is not None
            ci = "" if r.adjusted_ci is None else f" [{_pts(r.adjusted_ci[0])}, {_pts(r.adjusted_ci[1])}]"
            items.append(
                [
                    Code(r.claim.id),
                    f" ({r.claim.source}): claimed {_pts(r.claimed_gain)}, {_pts(r.adjusted_gain)}{ci} against ",
                    Code(r.baseline.ref),
                    f" ({printed(r.baseline.value)}): {r.verdict}",
                    f"; {r.seed_verdict} with seed spread" if r.seed_verdict and r.seed_verdict != r.verdict else "",
                    ".",
                ]
            )
        blocks += [
            Paragraph(f"The {len(largest)} largest corrections (claimed gain minus adjusted gain):"),
            BulletList(items),
        ]
    return blocks


def correction_blocks(
    groups: Sequence[CorrectionGroup], ledger: Ledger, catalog: Mapping[str, BenchmarkInfo], *, level: float = 0.95
) -> list[Block]:
    """The "Baseline correction" section's blocks: one folded table per model x benchmark x paper
    version x step, rows = each corrected baseline, columns = the claims."""
    blocks: list[Block] = [
        Paragraph(
            [
                "For every claimed gain with a claimed final accuracy: the claimed baseline, value and gain, and the ",
                Strong("adjusted gain"),
                " = claimed value - corrected baseline against every corrected baseline of the same base model, "
                "benchmark and a compatible metric (single-sample accuracies: pass@1 and avg@k), with its "
                f"{int(level * 100)}% interval and verdict (see 'How verdicts are defined'). ",
                Mark("cited"),
                " baselines are published numbers from the ledger; ",
                Mark("measured"),
                " ones were computed by rlvr-audit from stored generations (and, where we also measured the claimed "
                "checkpoint, our paired gain over the same problems, with its own verdict). Each baseline row says "
                "what differs from the claim's protocol; a baseline that is the best of several prompts of its source "
                "is marked; superseded baselines and measured bases on only part of the problems are struck out and "
                "drive no verdict. Paper versions are never mixed in one table.",
            ]
        ),
    ]
    if not groups:
        blocks.append(Paragraph(Emph("No gain claim with a claimed final accuracy.")))
        return blocks
    for g in groups:
        step = f", step {g.step}" if g.step is not None else ""
        blocks.append(Heading(f"{ledger.family_display(g.model)} · {_bench(catalog, g.benchmark)} · {g.source}{step}"))
        inner: list[Block] = []
        proto = ledger.protocol_label(g.claims[0])
        prompt = ledger.prompt(g.claims[0])
        claimed = ", ".join(printed(b) for b in g.claimed_baselines) or "not printed"
        line: list[Inline] = [f"Claimed baseline: {claimed} ({ledger.metric(g.claims[0])}, {proto}"]
        if prompt:
            line += [", prompt ", Code(prompt)]
        line += ["; ", _source_link(ledger, g.source), ")."]  # type: ignore[list-item]
        if g.step0 is not None:
            approx = "~" if g.step0.exactness == "approximate" else ""
            line += [BREAK, f"Claims without a printed baseline use the claimant's step-0 value {approx}"]
            line += [printed(g.step0.value), " (", Code(g.step0.id), ")."]
        if g.reproductions:
            line += [BREAK, "Reproductions of the paper's own protocol (not corrections): "]
            for i, e in enumerate(g.reproductions):
                approx = "~" if e.exactness == "approximate" else ""
                line += ["; " if i else "", f"{approx}{printed(e.value)} (", _source_link(ledger, e.source)]  # type: ignore[list-item]
                line += [f", {e.setting}, ", Code(e.id), ")"]
            line.append(".")
        inner.append(Paragraph(line))
        if not g.baselines:
            inner.append(
                Paragraph(Emph("No corrected baseline for this model and benchmark in the ledger or the store."))
            )
            claims: list[Inline] = ["Claims: "]
            for i, c in enumerate(g.claims):
                claims += ["; " if i else "", f"{c.reward_label} {_claim_cell(c)} (", Code(c.id), ")"]
            claims.append(".")
            inner.append(Paragraph(claims))
            blocks.append(Fold("no corrected baseline", inner))
            continue
        header: list[Text] = ["Baseline", "Kind", "Value", "Setting"]
        header += [[c.reward_label, BREAK, _claim_cell(c, g)] for c in g.claims]
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
                if b.std is not None:
                    val.append(f" ±{b.std:g} SD")
                name = [Code(b.ref), " (", _source_link(ledger, b.source), ")"]  # type: ignore[list-item]
                for other in b.also:
                    name += [BREAK, "same figure as ", Code(other)]
            if b.excluded:
                val = [Strike(val)]
            setting: list[Inline] = [f"{b.setting}; {b.metric}, {b.protocol}"]
            if b.best_of:
                setting += [BREAK, Strong(b.best_of)]
            if b.excluded:
                setting += [BREAK, Strong("excluded"), ": " + b.excluded]
            first = next((r for r in g.rows if r.baseline is b), None)
            if first is not None and first.differences:
                setting += [BREAK, "differs: " + "; ".join(first.differences)]
            if first is not None and first.mde is not None:
                mde = "∞" if math.isinf(first.mde) else f"{first.mde:.1f}"
                setting += [BREAK, f"MDE ({first.mde_test}, 80% power): {mde}"]
            row: list[Text] = [name, Mark(b.kind), val, setting]
            for c in g.claims:
                r = by.get((c.id, b.ref, b.grader))
                row.append("-" if b.excluded else "" if r is None else _row_cell(r, level))
            rows.append(row)
        inner.append(Table(header, rows))
        blocks.append(Fold(_count_text(g.rows), inner))
    return blocks


def _claim_cell(c: RlvrGain, g: CorrectionGroup | None = None) -> str:
    """``49.4 → 78.2 (+28.8)`` (``~`` first when approximate; a step-0 baseline in parentheses;
    a suspect number flagged)."""
    approx = "~" if c.exactness == "approximate" else ""
    gain = claimed_gain(c)
    value = claimed_value(c)
    base = f"{printed(c.baseline)} → " if c.baseline is not None else ""
    if c.baseline is None and gain is None and g is not None and g.step0 is not None and value is not None:
        base = f"(step 0: {printed(g.step0.value)}) → "
        gain = round(value - g.step0.value, 4)
    text = f"{approx}{base}{printed_or_blank(value)}" + (f" ({gain:+.1f})" if gain is not None else "")
    return text + (f" [{c.suspect}]" if c.suspect else "")


def _ci_text(ci: tuple[float, float]) -> str:
    return f"[{_pts(ci[0])}, {_pts(ci[1])}]"


def _row_cell(r: CorrectionRow, level: float) -> list[Inline]:
    """The adjusted gain, its interval and the verdict from that interval; under it the
    seed-widened interval with its verdict and our measured gain with its own verdict."""
    cell = _pts(r.adjusted_gain) + ("" if r.adjusted_ci is None else " " + _ci_text(r.adjusted_ci))
    out: list[Inline] = []
    if r.verdict == "reverses" and r.claimed_gain is not None:
        out += [Strike(f"{r.claimed_gain:+.1f}"), " "]
    out.append(f"{cell} · {r.verdict}")
    if r.seed_ci is not None and r.seed_sd is not None:
        out += [BREAK, f"with seed SD {r.seed_sd:g}: {_ci_text(r.seed_ci)} · {r.seed_verdict}"]
    if r.measured_gain is not None and r.measured_gain_ci is not None:
        out += [BREAK, Mark("measured"), f" gain {_pts(r.measured_gain)} {_ci_text(r.measured_gain_ci)}"]
        out.append(f" · {r.measured_verdict}")
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
    flagged = [r for r in rows if r.flag in ("underpowered", "partly underpowered")]
    noisy = [r for r in rows if r.noise == "within noise"]
    note = Paragraph(
        [
            "What each benchmark and protocol can resolve: ±CI = expected half-width of one accuracy's "
            f"{int(level * 100)}% interval; MDE = the smallest true paired gain a two-sided test at alpha = "
            f"{alpha:g} detects with power {power:g}, for the test named (one sample per problem: McNemar's exact "
            "test, its power computed exactly from the binomial distribution, with the normal approximation beside "
            "it; k samples: the normal approximation), under the variance model of ",
            Code("rlvr_audit.analysis.stats.minimum_detectable_effect"),
            f" (problem ICC {stats.DEFAULT_PROBLEM_ICC:g}, base-treatment correlation "
            f"{stats.DEFAULT_PAIR_CORRELATION:g}), at the accuracy shown (the claimed baseline; else the base "
            "model's accuracy under the paper's protocol from the ledger; else 50%, the worst case). Power = the "
            "exact test's power at the claimed gain. A claimed gain smaller than the MDE is ",
            Strong("underpowered"),
            ": a true gain of that size would be missed more than 20% of the time. That is a statement about the "
            "benchmark, not about noise: whether a claim can be told from no gain comes only from its own "
            f"{int(level * 100)}% interval (the claimed value and baseline as two independent evaluations; "
            "'Gain interval' and 'Noise'). All numbers here are cited claims; the widths are computed.",
        ]
    )
    header: list[Text] = ["Claim", "Source", "Model", "Benchmark", "Reward / intervention", "Metric", "n", "k"]
    header += ["Accuracy used", "±CI", "MDE", "Power", "Claimed gain", "Gain interval", "Noise", "Power flag"]
    table: list[list[Text]] = []
    for r in rows:
        c = r.claim
        approx = "~" if c.exactness == "approximate" else ""
        gain_text = approx + ("..".join(f"{g:+.1f}" for g in r.gains))
        gain: Text = [gain_text, BREAK, Strong(c.suspect)] if c.suspect else gain_text
        flag: Text = Strong(r.flag) if r.flag in ("underpowered", "partly underpowered") else r.flag
        mde = "-" if r.mde is None else ("∞" if math.isinf(r.mde) else f"{r.mde:.1f}")
        if r.mde_test == "exact McNemar" and r.mde_normal is not None:
            normal = "∞" if math.isinf(r.mde_normal) else f"{r.mde_normal:.1f}"
            mde += f" (exact; normal approx. {normal})"
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
                "-" if r.power is None else f"{100 * r.power:.1f}%",
                gain,
                "-" if r.gain_ci is None else _ci_text(r.gain_ci),
                r.noise or "-",
                flag,
            ]
        )
    blocks: list[Block] = [
        note,
        Paragraph(
            f"{len(flagged)} of {len(rows)} claimed gains are at least partly underpowered; {len(noisy)} have an "
            "interval that covers 0."
        ),
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
    groups = baseline_correction(ledger, catalog, analysis=analysis, level=level)
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
        Section("Summary", summary_blocks(groups, ledger)),
        Section("How verdicts are defined", verdict_definitions(level=level)),
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
    all_rows = [r for g in groups for r in g.rows]
    outro: list[Block] = [
        Paragraph(Strong(f"In all: {len(all_rows)} claim x corrected-baseline verdicts: {_count_text(all_rows)}.")),
        table_links(links, lead="Machine-readable tables: "),
    ]
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
    groups = baseline_correction(ledger, catalog, analysis=analysis, only_measured=True, level=level)
    if not groups:
        return None
    section = correction_section(groups, ledger, catalog, level=level)
    section.blocks[1:1] = verdict_definitions(level=level)
    return section
