"""What the claims ledger's numbers survive: baseline correction and statistical resolution.

Two analyses of the ledger (:mod:`rlvr_audit.core.claims`) and, when a store holds generations of
the claimed models, of our own measurements:

- :func:`baseline_correction`: for every gain claim with a claimed final value, the adjusted
  gain ``claimed value - corrected baseline`` against every corrected baseline of the same
  base model, benchmark and a metric-compatible protocol (cited ones from the ledger, measured
  ones from the store), with its interval (both numbers' uncertainty, as independent
  evaluations) and a verdict computed from exactly that interval (:func:`verdict`, an
  interval-only decision rule; :data:`VERDICT_RULES` words it for the report). A second verdict
  widens the interval by the ledger's seed-to-seed SD; our measured paired gain gets its own.
- :func:`resolution`: for every claimed gain, the confidence-interval half-width, the minimum
  detectable effect of the test that would be run (McNemar's exact test for one sample per
  problem, :mod:`rlvr_audit.analysis.claim_stats`; the normal approximation for k samples) and
  the exact power at the claimed gain, flagging underpowered gains; and, separately, whether the
  claimed gain's own interval covers 0.

Numbers we only cite and numbers we measured are always visibly distinct: the kind column of
every table marks them ``cited`` or **measured**, and measured cells carry their confidence
interval. The sections of both analyses, and the whole report of ``rlvr-audit run
--claims-only``, are in :mod:`rlvr_audit.analysis.claims_sections`; the listing and CSV frames in
:mod:`rlvr_audit.analysis.claims_tables`.

One module, one concept (just over 800 lines): both analyses judge a claimed number against the
same corrected baselines with the same interval and decision rule, so they live beside that rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from ..core.claims import (
    BenchmarkInfo,
    Evaluation,
    GainClaim,
    Ledger,
    PromptGain,
    RlvrGain,
    claimed_gain,
    claimed_value,
    metrics_compatible,
)
from ..core.records import Comparison, Estimate
from ..core.store import UnitInfo
from . import claim_stats, stats
from .estimates import Analysis

Verdict = Literal["holds", "shrinks", "within noise", "reverses", "cannot be judged", "no claimed baseline"]
"""Outcome of a baseline correction (see :func:`verdict`)."""

VERDICTS: tuple[Verdict, ...] = (
    "holds",
    "shrinks",
    "within noise",
    "reverses",
    "cannot be judged",
    "no claimed baseline",
)
"""Every verdict, in the order the report counts them."""

VERDICT_RULES: dict[Verdict, str] = {
    "reverses": "the whole interval of the gain lies on the other side of 0 from the claimed gain",
    "within noise": "the interval of the gain covers 0: the data cannot tell the gain from no gain at this level",
    "shrinks": "the interval excludes 0 on the claimed side but lies entirely short of the claimed gain",
    "holds": "the interval excludes 0 on the claimed side and reaches (covers or exceeds) the claimed gain",
    "cannot be judged": "no interval: the benchmark's size or the comparison's data are unknown or incompatible",
    "no claimed baseline": "the source prints no pre-RL value for this claim (nor a step-0 value in the ledger)",
}
"""The rule of each verdict, as the report prints it."""


def verdict(*, claimed_gain: float | None, ci: tuple[float, float] | None) -> Verdict:
    """The verdict in words for one claimed gain, from exactly one interval of the gain (points).

    ``claimed_gain``: what the source claims (value - its baseline); ``ci``: the interval of the
    gain shown beside the verdict (claimed value - corrected baseline, both uncertainties
    combined; or our measured paired gain). The direction ``s`` is the sign of the claimed gain
    (``+`` for a claimed 0). With ``(lo, hi) = s * ci`` (sorted) and ``g = s * claimed_gain``:

    - ``cannot be judged``: no interval;
    - ``no claimed baseline``: no claimed gain to compare with;
    - ``reverses``: ``hi < 0``;
    - ``within noise``: ``lo <= 0 <= hi``;
    - ``shrinks``: ``lo > 0`` and ``hi < g``;
    - ``holds``: ``lo > 0`` and ``hi >= g``.

    A verdict is wrong only when the interval misses the true gain (``reverses`` wrong: true
    gain on the claimed side of 0 but the interval entirely on the other; ``within noise`` wrong:
    the interval misses it by definition of the statement; ``shrinks``/``holds`` wrong: the true
    gain is at or below 0 while the interval lies above it, or above the claimed gain while the
    interval lies below it). So each verdict is wrong at most at the interval's non-coverage rate
    (5% at level 0.95); ``tests/test_claims_verdicts.py`` checks this by simulation.
    """
    if ci is None:
        return "cannot be judged"
    if claimed_gain is None:
        return "no claimed baseline"
    s = -1.0 if claimed_gain < 0 else 1.0
    lo, hi = sorted((s * ci[0], s * ci[1]))
    g = s * claimed_gain
    if hi < 0:
        return "reverses"
    if lo <= 0:
        return "within noise"
    return "shrinks" if hi < g else "holds"


def _mde_points(n: int | None, k: int, accuracy_pct: float, *, power: float = 0.8) -> tuple[float | None, str]:
    """MDE in points at ``accuracy_pct`` and the test it is computed for (``None`` when n is
    unknown): McNemar's exact test, exactly, for one sample per problem
    (:func:`rlvr_audit.analysis.claim_stats.exact_mcnemar_mde`); the normal approximation of the
    paired test for ``k`` samples (:func:`rlvr_audit.analysis.stats.minimum_detectable_effect`)."""
    if n is None:
        return None, ""
    acc = min(max(accuracy_pct / 100.0, 0.0), 1.0)
    if k == 1:
        m = claim_stats.exact_mcnemar_mde(n_problems=n, accuracy=acc, power=power)
        method = "exact McNemar"
    else:
        m = stats.minimum_detectable_effect(n_problems=n, k=k, accuracy=acc, power=power)
        method = "paired test, normal approximation"
    return (m if math.isinf(m) else round(100.0 * m, 4)), method


@dataclass(frozen=True)
class CorrectedBaseline:
    """A baseline a claim can be corrected against: cited from the ledger or measured by us."""

    ref: str
    """Ledger id (cited) or unit key (measured)."""
    kind: Literal["cited", "measured"]
    """``cited``: a published number; ``measured``: computed by rlvr-audit from the store."""
    value: float
    """Accuracy in percent."""
    source: str
    """Source id (cited) or ``store`` (measured)."""
    setting: str
    """What distinguishes it (the ledger's ``setting``; for measured: prompt and grader)."""
    protocol: str
    """Protocol label."""
    metric: str
    """Its metric."""
    exactness: str = "exact"
    """The ledger entry's exactness (measured: ``exact``)."""
    ci_low: float | None = None
    """Its interval's lower end (percent): measured, or for cited ones the Wilson interval of
    its benchmark size and protocol (:func:`rlvr_audit.analysis.claim_stats.proportion_interval`)."""
    ci_high: float | None = None
    """Its interval's upper end (percent)."""
    n_problems: int | None = None
    """Problems that entered the estimate (cited: the benchmark's size)."""
    n_problems_total: int | None = None
    """Problems in the task."""
    grader: str | None = None
    """Measured: the grader."""
    template: str | None = None
    """The prompt template, where known."""
    k: int = 1
    """Samples per problem of its protocol."""
    temperature: float | None = None
    """Decoding temperature, where known (0 = greedy)."""
    max_new_tokens: int | None = None
    """New-token limit, where known."""
    std: float | None = None
    """Seed-to-seed standard deviation printed with it (points), where printed."""
    also: tuple[str, ...] = ()
    """Ledger entries that print the same figure (``same_as``): one number, shown once."""
    excluded: str = ""
    """Why it drives no verdict (superseded, another problem set); empty when it does."""
    best_of: str = ""
    """Set when it is the best of several prompts or settings of one source on this benchmark."""


@dataclass(frozen=True)
class CorrectionRow:
    """One claim against one corrected baseline. Every verdict is computed from exactly the
    number and interval stored beside it."""

    claim: RlvrGain
    """The gain claim."""
    baseline: CorrectedBaseline
    """The corrected baseline."""
    claimed_value: float
    """The claim's final accuracy (percent)."""
    claimed_gain: float | None
    """The claim's gain (points): printed, or value - the claimant's step-0 value."""
    adjusted_gain: float
    """claimed value - corrected baseline (points)."""
    adjusted_ci: tuple[float, float] | None
    """Interval of the adjusted gain: both numbers' uncertainties combined (independent
    evaluations, Newcombe/MOVER); ``None`` when the benchmark size is unknown."""
    mde: float | None
    """Minimum detectable effect (80% power, two-sided 5%) at the corrected baseline's accuracy
    (points); a separate column, never a noise statement."""
    mde_test: str
    """The test the MDE is computed for."""
    measured_gain: float | None
    """Our paired gain of the claim's checkpoint over this measured base (points), if measured."""
    measured_gain_ci: tuple[float, float] | None
    """Its paired interval."""
    verdict: Verdict
    """:func:`verdict` of ``claimed_gain`` from ``adjusted_ci``."""
    measured_verdict: Verdict | None = None
    """:func:`verdict` of ``claimed_gain`` from ``measured_gain_ci`` (when measured)."""
    seed_sd: float | None = None
    """Seed-to-seed SD (points) for this model and benchmark in the ledger, where printed."""
    seed_ci: tuple[float, float] | None = None
    """``adjusted_ci`` widened by ``seed_sd`` (:func:`rlvr_audit.analysis.claim_stats.widen_for_seeds`)."""
    seed_verdict: Verdict | None = None
    """:func:`verdict` from ``seed_ci``."""
    differences: tuple[str, ...] = ()
    """What differs between the claim's protocol and the baseline's (decoding, samples, tokens,
    prompt, grader)."""
    claimed_baseline: float | None = None
    """The claim's own baseline: printed, or the claimant's step-0 value from the ledger."""
    claimed_baseline_from: str = ""
    """``printed`` or the ledger id of the step-0 value."""


@dataclass(frozen=True)
class CorrectionGroup:
    """The gain claims of one model x benchmark x source x step, with their corrected baselines."""

    model: str
    """Registry family."""
    benchmark: str
    """Benchmark id."""
    source: str
    """Source id (the paper version)."""
    step: int | None
    """Training step of the claims."""
    claims: tuple[RlvrGain, ...]
    """The claims, in ledger order."""
    claimed_baselines: tuple[float, ...]
    """Distinct claimed baselines of these claims."""
    baselines: tuple[CorrectedBaseline, ...]
    """Cited first (ledger order), then measured; excluded ones included (with the reason)."""
    reproductions: tuple[Evaluation, ...]
    """Ledger evaluations that follow the paper's own protocol (they reproduce, not correct)."""
    rows: tuple[CorrectionRow, ...]
    """Every claim x baseline that is not excluded."""
    step0: Evaluation | None = None
    """The claimant's own step-0 evaluation, used as the claimed baseline where none is printed."""


def _cited_baselines(ledger: Ledger, model: str, benchmark: str, metric: str | None) -> list[Evaluation]:
    out = []
    for c in ledger.claims:
        if (
            isinstance(c, Evaluation)
            and c.model == model
            and c.variant == "base"
            and c.benchmark == benchmark
            and metrics_compatible(ledger.metric(c), metric)
        ):
            out.append(c)
    return out


def _step0(ledger: Ledger, claim: RlvrGain) -> Evaluation | None:
    """The claimant's own step-0 value of the claim's model and benchmark (same paper version,
    the paper's protocol, a compatible metric), exact entries first."""
    found = [
        e
        for e in _cited_baselines(ledger, claim.model, claim.benchmark, ledger.metric(claim))
        if e.source == claim.source and e.paper_protocol
    ]
    found.sort(key=lambda e: e.exactness != "exact")
    return found[0] if found else None


def seed_spread(ledger: Ledger, model: str, benchmark: str) -> tuple[float, str] | None:
    """The largest seed-to-seed SD (points) the ledger prints for the model's base on the
    benchmark, with its entry id; ``None`` when none is printed."""
    best: tuple[float, str] | None = None
    for c in ledger.claims:
        if not (isinstance(c, Evaluation) and c.model == model and c.benchmark == benchmark):
            continue
        if c.std is not None and c.superseded_by is None and (best is None or c.std > best[0]):
            best = (c.std, c.id)
    return best


def measured_baselines(
    analysis: Analysis,
    model: str,
    benchmark: str,
    catalog: Mapping[str, BenchmarkInfo],
    *,
    base: tuple[str, str] | None = None,
) -> list[tuple[CorrectedBaseline, UnitInfo, Estimate]]:
    """Our estimates of the family's base model on the benchmark (every prompt, protocol and
    grader in ``analysis``), as corrected baselines.

    ``base``: (checkpoint id, model) of the family's registry base checkpoint; when given, only
    units of that checkpoint (or of the same model under another id, e.g. imported) count, so an
    RLVR checkpoint stored without a base is never taken for the base model. A base measured on
    only part of the benchmark's problems is kept but ``excluded`` (another problem set)."""
    out = []
    units = {u.key: u for u in analysis.units}
    for e in analysis.estimates:
        u = units.get(e.unit_key)
        if u is None or u.family != model or u.base is not None or u.spec.task != benchmark:
            continue
        if u.spec.synthetic:  # a scripted oracle is no measurement of the model it is filed under
            continue
        ck = u.spec.checkpoint
        if base is not None and ck.checkpoint_id != base[0] and ck.model != base[1]:
            continue
        if not e.metric.startswith("avg@"):
            continue
        p = u.spec.protocol
        dec = (
            "greedy" if p.temperature == 0 else f"T={p.temperature:g}" + (f", top-p {p.top_p:g}" if p.top_p < 1 else "")
        )
        total = u.n_problems_total or (catalog[benchmark].n_problems if benchmark in catalog else None)
        partial = total is not None and e.n_problems < total
        out.append(
            (
                CorrectedBaseline(
                    ref=u.key,
                    kind="measured",
                    value=100 * e.value,
                    source="store",
                    setting=f"prompt {u.spec.template_id}, grader {e.grader_id}, {u.spec.checkpoint.checkpoint_id}",
                    protocol=f"{dec}, {p.n} sample{'s' if p.n > 1 else ''}, {p.max_new_tokens} tokens, seed {p.seed}",
                    metric="pass@1" if p.n == 1 else e.metric,
                    ci_low=None if e.ci_low is None else 100 * e.ci_low,
                    ci_high=None if e.ci_high is None else 100 * e.ci_high,
                    n_problems=e.n_problems,
                    n_problems_total=total,
                    grader=e.grader_id,
                    template=u.spec.template_id,
                    k=p.n,
                    temperature=p.temperature,
                    max_new_tokens=p.max_new_tokens,
                    excluded=f"measured on {e.n_problems} of {total} problems: another problem set" if partial else "",
                ),
                u,
                e,
            )
        )
    return out


def _measured_gain(analysis: Analysis, checkpoint: str | None, base_unit: str, grader: str) -> Comparison | None:
    if checkpoint is None:
        return None
    synthetic = {u.key for u in analysis.units if u.spec.synthetic}
    for c in analysis.comparisons:
        if c.treatment == checkpoint and c.baseline_unit == base_unit and c.grader_id == grader:
            return None if c.treatment_unit in synthetic else c
    return None


def _decoding(temperature: float | None) -> str:
    return "?" if temperature is None else "greedy" if temperature == 0 else f"T={temperature:g}"


def protocol_differences(ledger: Ledger, claim: RlvrGain, b: CorrectedBaseline) -> tuple[str, ...]:
    """What differs between the claim's evaluation and the baseline's: decoding, samples per
    problem (greedy pass@1 vs sampled avg@k), new-token limit, prompt, grader."""
    spec = ledger.protocol(claim)
    out: list[str] = []
    t = None if spec is None else spec.temperature
    if t is not None and b.temperature is not None and t != b.temperature:
        out.append(f"decoding {_decoding(t)} vs {_decoding(b.temperature)}")
    k = ledger.k(claim)
    if k != b.k:
        out.append(f"samples {ledger.metric(claim)} vs {b.metric}")
    tok = None if spec is None else spec.max_new_tokens
    if tok is not None and b.max_new_tokens is not None and tok != b.max_new_tokens:
        out.append(f"tokens {tok} vs {b.max_new_tokens}")
    prompt = ledger.prompt(claim)
    if prompt and b.template and prompt != b.template:
        out.append(f"prompt {prompt} vs {b.template}")
    if b.grader:
        out.append(f"grader: ours ({b.grader}) vs the paper's")
    return tuple(out)


def _mark_best_of(baselines: list[CorrectedBaseline]) -> list[CorrectedBaseline]:
    """Mark the highest of several baselines of one source (several prompts or settings on the
    same benchmark): a corrected baseline picked as the best of several is an optimistic one."""
    by_source: dict[str, list[int]] = {}
    for i, b in enumerate(baselines):
        if not b.excluded:
            by_source.setdefault(b.source if b.kind == "cited" else f"store:{b.grader}", []).append(i)
    out = list(baselines)
    for idx in by_source.values():
        if len(idx) < 2:
            continue
        top = max(idx, key=lambda i: baselines[i].value)
        what = "prompts or settings" if baselines[top].kind == "cited" else "prompts or protocols"
        out[top] = replace(baselines[top], best_of=f"best of {len(idx)} {what} of this source")
    return out


def _cited(ledger: Ledger, evals: list[Evaluation], n: int | None, level: float) -> list[CorrectedBaseline]:
    """The cited corrected baselines: ``same_as`` duplicates folded into their figure, superseded
    ones kept but excluded, each with its Wilson interval."""
    ids = {e.id for e in evals}
    folded: dict[str, list[str]] = {}
    for e in evals:
        if e.same_as is not None and e.same_as in ids:
            folded.setdefault(e.same_as, []).append(e.id)
    out = []
    for e in evals:
        if e.paper_protocol or (e.same_as is not None and e.same_as in ids):
            continue
        spec = ledger.protocol(e)
        k = ledger.k(e)
        lo = hi = None
        if n is not None:
            lo, hi = claim_stats.proportion_interval(e.value / 100.0, n_problems=n, k=k, level=level)
        excluded = ""
        if e.superseded_by is not None:
            new = ledger.get(e.superseded_by)
            excluded = f"superseded by {e.superseded_by} ({printed(getattr(new, 'value', float('nan')))})"
        out.append(
            CorrectedBaseline(
                ref=e.id,
                kind="cited",
                value=e.value,
                source=e.source,
                setting=e.setting + (" (secondary)" if e.secondary else ""),
                protocol=ledger.protocol_label(e) + (f", prompt {ledger.prompt(e)}" if ledger.prompt(e) else ""),
                metric=ledger.metric(e) or "?",
                exactness=e.exactness,
                ci_low=None if lo is None else 100 * lo,
                ci_high=None if hi is None else 100 * hi,
                n_problems=n,
                n_problems_total=n,
                template=ledger.prompt(e),
                k=k,
                temperature=None if spec is None else spec.temperature,
                max_new_tokens=None if spec is None else spec.max_new_tokens,
                std=e.std,
                also=tuple(folded.get(e.id, ())),
                excluded=excluded,
            )
        )
    return out


def baseline_correction(
    ledger: Ledger,
    catalog: Mapping[str, BenchmarkInfo],
    *,
    analysis: Analysis | None = None,
    only_measured: bool = False,
    level: float = 0.95,
) -> list[CorrectionGroup]:
    """Correct every gain claim that has a claimed final value against every corrected baseline.

    A group is one model x benchmark x source x step. Its corrected baselines are (a) the
    ledger's evaluations of the family's base model on that benchmark with a metric-compatible
    protocol that is *not* the paper's own (``paper_protocol: false``): cited; and (b) our
    estimates of that base model in ``analysis``: measured. Evaluations that follow the
    paper's protocol are listed as reproductions. ``only_measured`` keeps just the groups
    with a measured baseline (for the normal report).

    Per row: the adjusted gain's interval combines the claimed value's Wilson interval (the
    benchmark's size, the claim's samples per problem) with the baseline's own interval (cited:
    Wilson of its size and protocol; measured: our interval), as two independent evaluations
    (:func:`rlvr_audit.analysis.claim_stats.difference_interval`). A claim without a printed
    baseline takes the claimant's step-0 value from the ledger (:func:`_step0`). Superseded
    baselines and measured bases on only part of the problems drive no verdict.
    """
    groups: dict[tuple[str, str, str, int | None], list[RlvrGain]] = {}
    for c in ledger.claims:
        if isinstance(c, RlvrGain) and claimed_value(c) is not None:
            groups.setdefault((c.model, c.benchmark, c.source, c.step), []).append(c)
    out: list[CorrectionGroup] = []
    for (model, bench, source, step), claims in groups.items():
        metric = ledger.metric(claims[0])
        n = catalog[bench].n_problems if bench in catalog else None
        evals = _cited_baselines(ledger, model, bench, metric)
        cited = _cited(ledger, evals, n, level)
        reproductions = tuple(e for e in evals if e.paper_protocol)
        measured = (
            measured_baselines(analysis, model, bench, catalog, base=ledger.family_bases.get(model))
            if analysis is not None
            else []
        )
        if only_measured and not measured:
            continue
        baselines = _mark_best_of(cited + [b for b, _u, _e in measured])
        spread = seed_spread(ledger, model, bench)
        step0 = _step0(ledger, claims[0])
        rows: list[CorrectionRow] = []
        for c in claims:
            value = claimed_value(c)
            assert value is not None
            gain = claimed_gain(c)
            base0, base_from = (c.baseline, "printed") if c.baseline is not None else (None, "")
            if base0 is None and gain is None and step0 is not None:
                base0, base_from = step0.value, step0.id
                gain = round(value - step0.value, 4)
            k = ledger.k(c)
            v_iv = None if n is None else claim_stats.proportion_interval(value / 100.0, n_problems=n, k=k, level=level)
            for b in baselines:
                if b.excluded:
                    continue
                adj = round(value - b.value, 4)
                mde, mde_test = _mde_points(n, k, b.value)
                adj_ci = None
                if v_iv is not None and b.ci_low is not None and b.ci_high is not None:
                    lo, hi = claim_stats.difference_interval(
                        (value, 100 * v_iv[0], 100 * v_iv[1]), (b.value, b.ci_low, b.ci_high)
                    )
                    adj_ci = (round(float(lo), 4), round(float(hi), 4))
                seed_ci = None
                if spread is not None and adj_ci is not None:
                    seed_ci = claim_stats.widen_for_seeds(adj, adj_ci, spread[0], level=level)
                mg = mg_ci = None
                if b.kind == "measured" and analysis is not None:
                    comp = _measured_gain(analysis, c.checkpoint, b.ref, b.grader or "")
                    if comp is not None:
                        mg, mg_ci = 100 * comp.delta, (100 * comp.ci_low, 100 * comp.ci_high)
                rows.append(
                    CorrectionRow(
                        claim=c,
                        baseline=b,
                        claimed_value=value,
                        claimed_gain=gain,
                        adjusted_gain=adj,
                        adjusted_ci=adj_ci,
                        mde=mde,
                        mde_test=mde_test,
                        measured_gain=mg,
                        measured_gain_ci=mg_ci,
                        verdict=verdict(claimed_gain=gain, ci=adj_ci),
                        measured_verdict=None if mg_ci is None else verdict(claimed_gain=gain, ci=mg_ci),
                        seed_sd=None if spread is None else spread[0],
                        seed_ci=seed_ci,
                        seed_verdict=None if seed_ci is None else verdict(claimed_gain=gain, ci=seed_ci),
                        differences=protocol_differences(ledger, c, b),
                        claimed_baseline=base0,
                        claimed_baseline_from=base_from,
                    )
                )
        out.append(
            CorrectionGroup(
                model=model,
                benchmark=bench,
                source=source,
                step=step,
                claims=tuple(claims),
                claimed_baselines=tuple(dict.fromkeys(c.baseline for c in claims if c.baseline is not None)),
                baselines=tuple(baselines),
                reproductions=reproductions,
                rows=tuple(rows),
                step0=step0 if any(c.baseline is None for c in claims) else None,
            )
        )
    return out


Flag = Literal["underpowered", "partly underpowered", "powered", "size unknown"]
"""Power flag of a claimed gain: whether the benchmark's test has 80% power at the gain's size.
A statement about the test's power, never about noise (see :attr:`ResolutionRow.noise`)."""


@dataclass(frozen=True)
class ResolutionRow:
    """What a benchmark and protocol can resolve, against one claimed gain."""

    claim: GainClaim
    """The claim."""
    n_problems: int | None
    """Problems in the benchmark."""
    k: int
    """Samples per problem of the claim's protocol."""
    accuracy: float
    """Accuracy (percent) the widths are computed at."""
    accuracy_from: str
    """Where that accuracy comes from: ``claimed baseline``, a ledger id, or ``worst case`` (50%)."""
    ci_half_width: float | None
    """Expected half-width of one accuracy's interval (points)."""
    mde: float | None
    """Minimum detectable paired gain at 80% power (points; ``inf`` when none is detectable),
    for the test in ``mde_test``."""
    gains: tuple[float, ...]
    """The claimed gain, or the two ends of a claimed range (points)."""
    flag: Flag
    """``underpowered`` when every |gain| < MDE; ``partly underpowered`` when some."""
    mde_test: str = ""
    """``exact McNemar`` (k = 1, exact binomial) or ``paired test, normal approximation``."""
    mde_normal: float | None = None
    """The normal approximation's MDE, shown beside the exact one (points)."""
    power: float | None = None
    """Power of the test at the claimed gain (k = 1: exact McNemar power), where one gain."""
    gain_ci: tuple[float, float] | None = None
    """Interval of the claimed gain from its two printed numbers as independent evaluations
    (baseline and value both printed), at the report's level."""
    noise: str = ""
    """From ``gain_ci`` only: ``significant`` (excludes 0), ``within noise`` (covers 0), or
    empty without an interval."""


def _resolution_accuracy(ledger: Ledger, c: GainClaim) -> tuple[float, str]:
    """Accuracy to compute widths at, and where it comes from: the claimed baseline; else the
    base model's accuracy under the paper's protocol in the ledger (evaluations, exact before
    approximate; then the baselines of prompting-intervention tables, same source first); else
    50% (the worst case: the widest interval)."""
    if c.baseline is not None:
        return c.baseline, "claimed baseline"
    metric = ledger.metric(c)
    repro = [
        e
        for e in _cited_baselines(ledger, c.model, c.benchmark, metric)
        if e.paper_protocol and ledger.metric(e) == metric
    ]
    repro.sort(key=lambda e: e.exactness != "exact")
    if repro:
        return repro[0].value, repro[0].id
    tables = [
        p
        for p in ledger.claims
        if isinstance(p, PromptGain)
        and p.model == c.model
        and p.benchmark == c.benchmark
        and ledger.metric(p) == metric
    ]
    tables.sort(key=lambda p: p.source != c.source)
    if tables:
        return tables[0].baseline, f"baseline of {tables[0].id}"
    return 50.0, "worst case"


def resolution(
    ledger: Ledger,
    catalog: Mapping[str, BenchmarkInfo],
    *,
    level: float = 0.95,
    alpha: float = 0.05,
    power: float = 0.8,
) -> list[ResolutionRow]:
    """The statistical resolution of every claimed gain (rlvr_gain and prompt_gain entries with
    a gain or a gain range).

    ``ci_half_width`` (level ``level``) from :func:`rlvr_audit.analysis.stats.ci_half_width`;
    ``mde`` (two-sided ``alpha``, ``power``) for the test that would be run: McNemar's exact
    test for one sample per problem (:func:`rlvr_audit.analysis.claim_stats.exact_mcnemar_mde`,
    with its exact power at the claimed gain), else the normal approximation
    (:func:`rlvr_audit.analysis.stats.minimum_detectable_effect`), which is also shown. A gain
    smaller than the MDE is ``underpowered``: a true gain of that size would be missed more than
    ``1 - power`` of the time. Whether a claimed gain can be told from no gain is a separate
    statement from its interval (``noise``), never from the MDE.
    """
    rows = []
    for c in ledger.claims:
        if not isinstance(c, RlvrGain | PromptGain):
            continue
        gain = claimed_gain(c)
        gains: tuple[float, ...]
        if isinstance(c, RlvrGain) and c.gain_range is not None:
            gains = tuple(c.gain_range)
        elif gain is not None:
            gains = (gain,)
        else:
            continue
        n = catalog[c.benchmark].n_problems if c.benchmark in catalog else None
        k = ledger.k(c)
        acc, acc_from = _resolution_accuracy(ledger, c)
        if n is None:
            rows.append(ResolutionRow(c, None, k, acc, acc_from, None, None, gains, "size unknown"))
            continue
        frac = min(max(acc / 100.0, 0.0), 1.0)
        half = round(100.0 * stats.ci_half_width(n_problems=n, k=k, accuracy=frac, level=level), 4)
        normal = 100.0 * stats.minimum_detectable_effect(n_problems=n, k=k, accuracy=frac, alpha=alpha, power=power)
        normal = normal if math.isinf(normal) else round(normal, 4)
        pw: float | None = None
        if k == 1:
            exact = claim_stats.exact_mcnemar_mde(n_problems=n, accuracy=frac, alpha=alpha, power=power)
            mde = exact if math.isinf(exact) else round(100.0 * exact, 4)
            test = "exact McNemar"
            if len(gains) == 1 and gains[0] != 0:
                g = gains[0] / 100.0
                base = frac if g > 0 else min(max(frac + g, 0.0), 1.0)
                if 0.0 <= base + abs(g) <= 1.0:
                    pw = round(
                        claim_stats.exact_mcnemar_power(n_problems=n, accuracy=base, effect=abs(g), alpha=alpha), 4
                    )
        else:
            mde, test = normal, "paired test, normal approximation"
        below = [abs(g) < mde for g in gains]
        flag: Flag = "underpowered" if all(below) else "partly underpowered" if any(below) else "powered"
        gain_ci = None
        noise = ""
        value = c.value if c.value is not None else None
        if c.baseline is not None and value is not None:
            v_iv = claim_stats.proportion_interval(value / 100.0, n_problems=n, k=k, level=level)
            b_iv = claim_stats.proportion_interval(c.baseline / 100.0, n_problems=n, k=k, level=level)
            lo, hi = claim_stats.difference_interval(
                (value, 100 * v_iv[0], 100 * v_iv[1]), (c.baseline, 100 * b_iv[0], 100 * b_iv[1])
            )
            gain_ci = (round(float(lo), 4), round(float(hi), 4))
            noise = "within noise" if lo <= 0 <= hi else "significant"
        rows.append(ResolutionRow(c, n, k, acc, acc_from, half, mde, gains, flag, test, normal, pw, gain_ci, noise))
    return rows


# ----------------------------------------------------------------------------------------------
# Tables
# ----------------------------------------------------------------------------------------------

CLAIM_COLUMNS = [
    "id",
    "kind",
    "source",
    "model",
    "variant",
    "checkpoint",
    "reward",
    "step",
    "benchmark",
    "metric",
    "protocol",
    "prompt",
    "baseline",
    "value",
    "gain",
    "exactness",
    "read_from",
    "secondary",
    "location",
    "url",
    "notes",
    "details",
    "same_as",
    "superseded_by",
    "suspect",
]
"""Columns of ``tables/claims.csv``: ``baseline``, ``value`` and ``gain`` (percent points) are
the entry's own fields where its kind has them; ``details`` holds the kind's other fields
(``gain_range``, ``values``, ``transitions``, ...) as JSON."""

CORRECTION_COLUMNS = [
    "claim",
    "source",
    "model",
    "benchmark",
    "reward",
    "step",
    "claimed_baseline",
    "claimed_value",
    "claimed_gain",
    "exactness",
    "baseline_kind",
    "baseline_ref",
    "baseline_source",
    "baseline_setting",
    "baseline_protocol",
    "baseline_value",
    "baseline_ci_low",
    "baseline_ci_high",
    "adjusted_gain",
    "adjusted_gain_ci_low",
    "adjusted_gain_ci_high",
    "mde",
    "measured_gain",
    "measured_gain_ci_low",
    "measured_gain_ci_high",
    "verdict",
    "measured_verdict",
    "mde_test",
    "seed_sd",
    "seed_ci_low",
    "seed_ci_high",
    "seed_verdict",
    "differences",
    "best_of",
    "claimed_baseline_from",
]
"""Columns of ``tables/baseline_correction.csv`` (percent points; ``baseline_kind`` is
``cited`` or ``measured``). ``claimed_baseline`` is the printed one or the claimant's step-0
value (``claimed_baseline_from`` says which); ``verdict`` is computed from the adjusted gain's
interval, ``measured_verdict`` from the measured gain's, ``seed_verdict`` from the adjusted
interval widened by the seed SD; ``differences`` lists protocol differences separated by
``; ``."""

RESOLUTION_COLUMNS = [
    "claim",
    "kind",
    "source",
    "model",
    "benchmark",
    "reward",
    "metric",
    "n_problems",
    "k",
    "accuracy",
    "accuracy_from",
    "ci_half_width",
    "mde",
    "claimed_gain",
    "claimed_gain_high",
    "exactness",
    "flag",
    "mde_test",
    "mde_normal",
    "power",
    "gain_ci_low",
    "gain_ci_high",
    "noise",
    "suspect",
]
"""Columns of ``tables/resolution.csv`` (percent points; ``flag`` is about power, ``noise``
about the claimed gain's own interval; ``suspect``: why the number is probably wrong as printed)."""


def printed(x: float) -> str:
    """A ledger number as printed: one decimal, two where the source has two (74.0, 68.53)."""
    text = f"{x:.2f}"
    return text[:-1] if text.endswith("0") else text


def printed_or_blank(x: float | None) -> str:
    return "" if x is None else printed(x)


__all__ = [
    "VERDICTS",
    "VERDICT_RULES",
    "CorrectedBaseline",
    "CorrectionGroup",
    "CorrectionRow",
    "ResolutionRow",
    "baseline_correction",
    "printed",
    "printed_or_blank",
    "protocol_differences",
    "resolution",
    "seed_spread",
    "verdict",
]
