"""What the claims ledger's numbers survive: baseline correction and statistical resolution.

Two analyses of the ledger (:mod:`rlvr_audit.core.claims`) and, when a store holds generations of
the claimed models, of our own measurements:

- :func:`baseline_correction`: for every gain claim with a claimed final value, the adjusted
  gain ``claimed value - corrected baseline`` against every corrected baseline of the same
  base model, benchmark and a metric-compatible protocol (cited ones from the ledger, measured
  ones from the store), with a verdict in words (:func:`verdict`).
- :func:`resolution`: for every claimed gain, the confidence-interval half-width and the
  minimum detectable effect implied by the benchmark's size and the claim's protocol
  (:func:`rlvr_audit.analysis.stats.ci_half_width`,
  :func:`rlvr_audit.analysis.stats.minimum_detectable_effect`), flagging gains smaller than what
  the benchmark can resolve.

Numbers we only cite and numbers we measured are always visibly distinct: the kind column of
every table marks them ``cited`` or **measured**, and measured cells carry their confidence
interval. The sections of both analyses, and the whole report of ``rlvr-audit run
--claims-only``, are in :mod:`rlvr_audit.analysis.claims_sections`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from ..core.claims import (
    KINDS,
    BenchmarkInfo,
    Claim,
    Clipping,
    CodeAccuracy,
    CodeFrequency,
    Evaluation,
    GainClaim,
    GainDecomposition,
    Ledger,
    PromptGain,
    RlvrGain,
    StrategySwitch,
    claimed_gain,
    claimed_value,
    metrics_compatible,
)
from ..core.errors import UnknownNameError
from ..core.records import Comparison, Estimate
from ..core.store import UnitInfo
from . import stats
from .estimates import Analysis

SHRINK_FRACTION = 0.5
"""A claimed gain *shrinks* when less than this fraction of it survives baseline correction."""

Verdict = Literal["holds", "shrinks", "within noise", "reverses"]
"""Outcome of a baseline correction (see :func:`verdict`)."""


def verdict(
    *,
    claimed_gain: float | None,
    adjusted_gain: float,
    mde: float | None,
    ci: tuple[float, float] | None = None,
) -> Verdict:
    """The verdict in words for one claimed gain against one corrected baseline (all in points).

    ``adjusted_gain`` = claimed value - corrected baseline; ``mde`` = the minimum detectable
    effect of the benchmark and protocol at the corrected baseline's accuracy (``None`` if the
    benchmark size is unknown); ``ci`` = our interval of the adjusted gain, or of our measured
    gain, when we measured.

    For a claimed improvement (``claimed_gain`` > 0, or unknown):

    - ``reverses``: adjusted gain <= 0 (the trained model is no better than the corrected base);
    - ``within noise``: 0 < adjusted gain < MDE, or our interval includes 0;
    - ``shrinks``: less than :data:`SHRINK_FRACTION` of the claimed gain survives;
    - ``holds``: otherwise.

    For a claimed loss or no change (``claimed_gain`` <= 0): ``within noise`` when
    |adjusted gain| < MDE or our interval includes 0; else ``holds`` if the adjusted gain is
    still negative and ``reverses`` if it became positive.
    """
    in_ci = ci is not None and ci[0] <= 0.0 <= ci[1]
    small = mde is not None and abs(adjusted_gain) < mde
    if claimed_gain is not None and claimed_gain <= 0:
        if small or in_ci:
            return "within noise"
        return "holds" if adjusted_gain < 0 else "reverses"
    if adjusted_gain <= 0:
        return "reverses"
    if small or in_ci:
        return "within noise"
    if claimed_gain is not None and adjusted_gain < SHRINK_FRACTION * claimed_gain:
        return "shrinks"
    return "holds"


def _mde_points(n: int | None, k: int, accuracy_pct: float) -> float | None:
    """MDE in points at ``accuracy_pct`` (``None`` when n is unknown)."""
    if n is None:
        return None
    acc = min(max(accuracy_pct / 100.0, 0.0), 1.0)
    return round(100.0 * stats.minimum_detectable_effect(n_problems=n, k=k, accuracy=acc), 4)


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
    """Measured: lower end of our interval (percent)."""
    ci_high: float | None = None
    """Measured: upper end of our interval (percent)."""
    n_problems: int | None = None
    """Measured: problems that entered the estimate."""
    n_problems_total: int | None = None
    """Measured: problems in the task."""
    grader: str | None = None
    """Measured: the grader."""
    template: str | None = None
    """Measured: the prompt template."""


@dataclass(frozen=True)
class CorrectionRow:
    """One claim against one corrected baseline."""

    claim: RlvrGain
    """The gain claim."""
    baseline: CorrectedBaseline
    """The corrected baseline."""
    claimed_value: float
    """The claim's final accuracy (percent)."""
    claimed_gain: float | None
    """The claim's gain (points)."""
    adjusted_gain: float
    """claimed value - corrected baseline (points)."""
    adjusted_ci: tuple[float, float] | None
    """Measured baselines: claimed value minus our interval of the base (points)."""
    mde: float | None
    """Minimum detectable effect at the corrected baseline's accuracy (points)."""
    measured_gain: float | None
    """Our paired gain of the claim's checkpoint over this measured base (points), if measured."""
    measured_gain_ci: tuple[float, float] | None
    """Its paired interval."""
    verdict: Verdict
    """See :func:`verdict`."""


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
    """Cited first (ledger order), then measured."""
    reproductions: tuple[Evaluation, ...]
    """Ledger evaluations that follow the paper's own protocol (they reproduce, not correct)."""
    rows: tuple[CorrectionRow, ...]
    """Every claim x baseline."""


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
    RLVR checkpoint stored without a base is never taken for the base model."""
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
        total = catalog[benchmark].n_problems if benchmark in catalog else None
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
                    n_problems_total=u.n_problems_total or total,
                    grader=e.grader_id,
                    template=u.spec.template_id,
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


def baseline_correction(
    ledger: Ledger,
    catalog: Mapping[str, BenchmarkInfo],
    *,
    analysis: Analysis | None = None,
    only_measured: bool = False,
) -> list[CorrectionGroup]:
    """Correct every gain claim that has a claimed final value against every corrected baseline.

    A group is one model x benchmark x source x step. Its corrected baselines are (a) the
    ledger's evaluations of the family's base model on that benchmark with a metric-compatible
    protocol that is *not* the paper's own (``paper_protocol: false``): cited; and (b) our
    estimates of that base model in ``analysis``: measured. Evaluations that follow the
    paper's protocol are listed as reproductions. ``only_measured`` keeps just the groups
    with a measured baseline (for the normal report).
    """
    groups: dict[tuple[str, str, str, int | None], list[RlvrGain]] = {}
    for c in ledger.claims:
        if isinstance(c, RlvrGain) and claimed_value(c) is not None:
            groups.setdefault((c.model, c.benchmark, c.source, c.step), []).append(c)
    out: list[CorrectionGroup] = []
    for (model, bench, source, step), claims in groups.items():
        metric = ledger.metric(claims[0])
        evals = _cited_baselines(ledger, model, bench, metric)
        cited = [
            CorrectedBaseline(
                ref=e.id,
                kind="cited",
                value=e.value,
                source=e.source,
                setting=e.setting + (" (secondary)" if e.secondary else ""),
                protocol=ledger.protocol_label(e) + (f", prompt {ledger.prompt(e)}" if ledger.prompt(e) else ""),
                metric=ledger.metric(e) or "?",
                exactness=e.exactness,
            )
            for e in evals
            if not e.paper_protocol
        ]
        reproductions = tuple(e for e in evals if e.paper_protocol)
        measured = (
            measured_baselines(analysis, model, bench, catalog, base=ledger.family_bases.get(model))
            if analysis is not None
            else []
        )
        if only_measured and not measured:
            continue
        n = catalog[bench].n_problems if bench in catalog else None
        rows: list[CorrectionRow] = []
        for c in claims:
            value = claimed_value(c)
            assert value is not None
            gain = claimed_gain(c)
            k = ledger.k(c)
            for b in cited:
                adj = round(value - b.value, 4)
                mde = _mde_points(n, k, b.value)
                rows.append(
                    CorrectionRow(
                        claim=c,
                        baseline=b,
                        claimed_value=value,
                        claimed_gain=gain,
                        adjusted_gain=adj,
                        adjusted_ci=None,
                        mde=mde,
                        measured_gain=None,
                        measured_gain_ci=None,
                        verdict=verdict(claimed_gain=gain, adjusted_gain=adj, mde=mde),
                    )
                )
            for b, _u, _e in measured:
                adj = round(value - b.value, 4)
                mde = _mde_points(n, k, b.value)
                adj_ci = (
                    (value - b.ci_high, value - b.ci_low) if b.ci_low is not None and b.ci_high is not None else None
                )
                comp = _measured_gain(analysis, c.checkpoint, b.ref, b.grader or "") if analysis else None
                mg = None if comp is None else 100 * comp.delta
                mg_ci = None if comp is None else (100 * comp.ci_low, 100 * comp.ci_high)
                rows.append(
                    CorrectionRow(
                        claim=c,
                        baseline=b,
                        claimed_value=value,
                        claimed_gain=gain,
                        adjusted_gain=adj,
                        adjusted_ci=adj_ci,
                        mde=mde,
                        measured_gain=mg,
                        measured_gain_ci=mg_ci,
                        verdict=verdict(claimed_gain=gain, adjusted_gain=adj, mde=mde, ci=mg_ci or adj_ci),
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
                baselines=tuple(cited) + tuple(b for b, _u, _e in measured),
                reproductions=reproductions,
                rows=tuple(rows),
            )
        )
    return out


Flag = Literal["below resolution", "partly below resolution", "resolved", "size unknown"]
"""Resolution flag of a claimed gain."""


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
    """Minimum detectable paired gain (points; ``inf`` when none is detectable)."""
    gains: tuple[float, ...]
    """The claimed gain, or the two ends of a claimed range (points)."""
    flag: Flag
    """``below resolution`` when every |gain| < MDE; ``partly below resolution`` when some."""


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

    ``ci_half_width`` (level ``level``) and ``mde`` (two-sided ``alpha``, ``power``) come from
    :func:`rlvr_audit.analysis.stats.ci_half_width` and :func:`rlvr_audit.analysis.stats.minimum_detectable_effect`
    with the benchmark's number of problems, the protocol's samples per problem and the
    accuracy of :func:`_resolution_accuracy`. A gain whose size is below the MDE cannot be told
    apart from no gain by a paired test at that power: it is flagged ``below resolution``.
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
        mde = 100.0 * stats.minimum_detectable_effect(n_problems=n, k=k, accuracy=frac, alpha=alpha, power=power)
        mde = mde if math.isinf(mde) else round(mde, 4)
        below = [abs(g) < mde for g in gains]
        flag: Flag = "below resolution" if all(below) else "partly below resolution" if any(below) else "resolved"
        rows.append(ResolutionRow(c, n, k, acc, acc_from, half, mde, gains, flag))
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
]
"""Columns of ``tables/baseline_correction.csv`` (percent points; ``baseline_kind`` is
``cited`` or ``measured``)."""

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
]
"""Columns of ``tables/resolution.csv`` (percent points)."""

_COMMON = {"id", "kind", "source", "also", "location", "exactness", "read_from", "secondary", "notes"}
_LISTED = _COMMON | {"model", "variant", "checkpoint", "reward", "rewards", "aggregate", "step", "benchmark"}
_LISTED |= {"metric", "protocol", "prompt", "baseline", "value", "gain", "gain_range"}


def _opt(x: Any) -> Any:
    """``x``, or an empty string for ``None`` (for CSV cells)."""
    return "" if x is None else x


def printed(x: float) -> str:
    """A ledger number as printed: one decimal, two where the source has two (74.0, 68.53)."""
    text = f"{x:.2f}"
    return text[:-1] if text.endswith("0") else text


def printed_or_blank(x: float | None) -> str:
    return "" if x is None else printed(x)


def _value_columns(c: Claim) -> tuple[str, str, str]:
    """(baseline, value, gain) as display strings for any kind."""
    if isinstance(c, RlvrGain | PromptGain):
        gain = printed_or_blank(c.gain)
        if isinstance(c, RlvrGain) and c.gain_range is not None:
            gain = f"{c.gain_range[0]:+.1f}..{c.gain_range[1]:+.1f}"
        elif c.gain is not None:
            gain = f"{c.gain:+.1f}"
        return printed_or_blank(c.baseline), printed_or_blank(c.value) + ("*" if c.value_derived else ""), gain
    if isinstance(c, Evaluation):
        return "", printed_or_blank(c.value) + (f" ±{c.std:g}" if c.std is not None else ""), ""
    if isinstance(c, CodeFrequency):
        return printed_or_blank(c.before), (">" if c.after_is_lower_bound else "") + printed_or_blank(c.after), ""
    if isinstance(c, StrategySwitch):
        return (
            printed_or_blank(c.accuracy_before),
            printed_or_blank(c.accuracy_after),
            f"{c.accuracy_after - c.accuracy_before:+.1f}",
        )
    if isinstance(c, GainDecomposition):
        return "", "", f"{c.total_gain:+.1f}"
    if isinstance(c, CodeAccuracy):
        return "", printed_or_blank(c.code_frequency), ""
    if isinstance(c, Clipping):
        return "", printed_or_blank(c.accuracy), ""
    return "", "", ""


def reward_text(c: Claim) -> str:
    if isinstance(c, RlvrGain):
        return c.reward_label
    if isinstance(c, PromptGain):
        return f"prompt {c.prompt}"
    r = getattr(c, "reward", None)
    rs = getattr(c, "rewards", None)
    if r:
        return str(r)
    if rs:
        return " / ".join(rs)
    return ""


def listing_rows(
    ledger: Ledger,
    *,
    kind: str | None = None,
    model: str | None = None,
    benchmark: str | None = None,
    source: str | None = None,
) -> list[dict[str, str]]:
    """Rows for ``rlvr-audit ls claims``: id, kind, source, model, reward, benchmark, metric,
    baseline, value, gain, exactness (``*`` after a value: derived as baseline + gain).

    Filters are exact ids; an unknown one lists the valid values."""
    for name, given, valid in (
        ("kind", kind, KINDS),
        ("model", model, ledger.families),
        ("source", source, ledger.sources),
        ("benchmark", benchmark, {getattr(c, "benchmark", None) for c in ledger.claims} - {None}),
    ):
        if given is not None and given not in valid:
            raise UnknownNameError(name, given, [str(v) for v in valid])
    rows = []
    for c in ledger.query(kind=kind, model=model, benchmark=benchmark, source=source):
        base, value, gain = _value_columns(c)
        m = getattr(c, "model", None)
        variant = getattr(c, "variant", "base")
        rows.append(
            {
                "id": c.id,
                "kind": c.kind,
                "source": c.source,
                "model": (m or "-") + (f" ({variant})" if variant != "base" else ""),
                "reward": reward_text(c) or "-",
                "benchmark": getattr(c, "benchmark", None) or "-",
                "metric": ledger.metric(c) or "-",
                "baseline": base or "-",
                "value": value or "-",
                "gain": gain or "-",
                "exactness": c.exactness,
            }
        )
    return rows


VALUE_MARKS: dict[str, str] = {
    "*": "value not printed in the source: derived as baseline + gain",
    ">": "a lower bound (the source gives at least this)",
    "±": "± the standard deviation the source reports (over its seeds)",
}
"""What the marks in the ``value`` column of :func:`listing_rows` mean (``78.2*``, ``>12.0``)."""


def listing_legend(rows: list[dict[str, str]]) -> list[str]:
    """One line per mark that ``rows`` (from :func:`listing_rows`) show in their ``value``
    column, explaining it; empty when no value carries a mark."""
    values = [r.get("value", "") for r in rows]
    used = {
        "*": any(v.endswith("*") for v in values),
        ">": any(v.startswith(">") for v in values),
        "±": any("±" in v for v in values),
    }
    return [f"{mark}  {VALUE_MARKS[mark]}" for mark, shown in used.items() if shown]


def claims_frame(ledger: Ledger) -> pd.DataFrame:
    """Every ledger entry as a row with :data:`CLAIM_COLUMNS`."""
    rows = []
    for c in ledger.claims:
        data = c.model_dump(mode="json", exclude_defaults=False)
        details = {k: v for k, v in data.items() if k not in _LISTED and v not in (None, "", [], {})}
        rows.append(
            {
                "id": c.id,
                "kind": c.kind,
                "source": c.source,
                "model": getattr(c, "model", None) or "",
                "variant": getattr(c, "variant", ""),
                "checkpoint": getattr(c, "checkpoint", None) or "",
                "reward": reward_text(c),
                "step": _opt(getattr(c, "step", None)),
                "benchmark": getattr(c, "benchmark", None) or "",
                "metric": ledger.metric(c) or "",
                "protocol": ledger.protocol_label(c) if hasattr(c, "protocol") else "",
                "prompt": ledger.prompt(c) or "",
                "baseline": getattr(c, "baseline", None),
                "value": getattr(c, "value", None),
                "gain": getattr(c, "gain", None),
                "exactness": c.exactness,
                "read_from": c.read_from,
                "secondary": c.secondary,
                "location": c.location,
                "url": ledger.source_url(c.source),
                "notes": c.notes,
                "details": json.dumps(details, ensure_ascii=False, sort_keys=True) if details else "",
            }
        )
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)


def correction_frame(groups: Sequence[CorrectionGroup]) -> pd.DataFrame:
    """Every claim x corrected baseline as a row with :data:`CORRECTION_COLUMNS`."""
    rows = []
    for g in groups:
        for r in g.rows:
            c, b = r.claim, r.baseline
            rows.append(
                {
                    "claim": c.id,
                    "source": c.source,
                    "model": c.model,
                    "benchmark": c.benchmark,
                    "reward": c.reward_label,
                    "step": "" if c.step is None else c.step,
                    "claimed_baseline": c.baseline,
                    "claimed_value": r.claimed_value,
                    "claimed_gain": r.claimed_gain,
                    "exactness": c.exactness,
                    "baseline_kind": b.kind,
                    "baseline_ref": b.ref,
                    "baseline_source": b.source,
                    "baseline_setting": b.setting,
                    "baseline_protocol": b.protocol,
                    "baseline_value": b.value,
                    "baseline_ci_low": b.ci_low,
                    "baseline_ci_high": b.ci_high,
                    "adjusted_gain": r.adjusted_gain,
                    "adjusted_gain_ci_low": None if r.adjusted_ci is None else r.adjusted_ci[0],
                    "adjusted_gain_ci_high": None if r.adjusted_ci is None else r.adjusted_ci[1],
                    "mde": r.mde,
                    "measured_gain": r.measured_gain,
                    "measured_gain_ci_low": None if r.measured_gain_ci is None else r.measured_gain_ci[0],
                    "measured_gain_ci_high": None if r.measured_gain_ci is None else r.measured_gain_ci[1],
                    "verdict": r.verdict,
                }
            )
    return pd.DataFrame(rows, columns=CORRECTION_COLUMNS)


def resolution_frame(rows: Sequence[ResolutionRow], ledger: Ledger) -> pd.DataFrame:
    """Resolution rows with :data:`RESOLUTION_COLUMNS`."""
    out = []
    for r in rows:
        c = r.claim
        out.append(
            {
                "claim": c.id,
                "kind": c.kind,
                "source": c.source,
                "model": c.model,
                "benchmark": c.benchmark,
                "reward": reward_text(c),
                "metric": ledger.metric(c) or "",
                "n_problems": r.n_problems,
                "k": r.k,
                "accuracy": r.accuracy,
                "accuracy_from": r.accuracy_from,
                "ci_half_width": r.ci_half_width,
                "mde": r.mde,
                "claimed_gain": r.gains[0],
                "claimed_gain_high": r.gains[1] if len(r.gains) > 1 else None,
                "exactness": c.exactness,
                "flag": r.flag,
            }
        )
    return pd.DataFrame(out, columns=RESOLUTION_COLUMNS)


__all__ = [
    "SHRINK_FRACTION",
    "CorrectedBaseline",
    "CorrectionGroup",
    "CorrectionRow",
    "ResolutionRow",
    "baseline_correction",
    "claims_frame",
    "correction_frame",
    "listing_rows",
    "resolution",
    "resolution_frame",
    "verdict",
]
