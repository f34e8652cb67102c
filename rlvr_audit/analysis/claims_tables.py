"""The claims ledger as tables: ``rlvr-audit ls claims`` rows and the report's CSV frames.

Split from :mod:`rlvr_audit.analysis.claims` (the two analyses, baseline correction and
statistical resolution) so that each module is one concept: this one only turns ledger entries
and the analyses' rows into display strings and DataFrames (``claims.csv``,
``baseline_correction.csv``, ``resolution.csv``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..core.claims import (
    KINDS,
    Claim,
    Clipping,
    CodeAccuracy,
    CodeFrequency,
    Evaluation,
    GainDecomposition,
    Ledger,
    PromptGain,
    RlvrGain,
    StrategySwitch,
)
from ..core.errors import UnknownNameError
from .claims import (
    CLAIM_COLUMNS,
    CORRECTION_COLUMNS,
    RESOLUTION_COLUMNS,
    CorrectionGroup,
    ResolutionRow,
    printed_or_blank,
)

_COMMON = {"id", "kind", "source", "also", "location", "exactness", "read_from", "secondary", "notes"}
_COMMON |= {"same_as", "superseded_by", "suspect"}
_LISTED = _COMMON | {"model", "variant", "checkpoint", "reward", "rewards", "aggregate", "step", "benchmark"}
_LISTED |= {"metric", "protocol", "prompt", "baseline", "value", "gain", "gain_range"}


def _opt(x: Any) -> Any:
    """``x``, or an empty string for ``None`` (for CSV cells)."""
    return "" if x is None else x


def _value_columns(c: Claim) -> tuple[str, str, str]:
    """(baseline, value, gain) as display strings for any kind."""
    if isinstance(c, RlvrGain | PromptGain):
        gain = printed_or_blank(c.gain)
        if isinstance(c, RlvrGain) and c.gain_range is not None:
            gain = f"{c.gain_range[0]:+.1f}..{c.gain_range[1]:+.1f}"
        elif c.gain is not None:
            gain = f"{c.gain:+.1f}"
        if c.suspect:
            gain += f" ({c.suspect})"
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
                "same_as": c.same_as or "",
                "superseded_by": c.superseded_by or "",
                "suspect": c.suspect,
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
                    "claimed_baseline": r.claimed_baseline,
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
                    "measured_verdict": r.measured_verdict or "",
                    "mde_test": r.mde_test,
                    "seed_sd": r.seed_sd,
                    "seed_ci_low": None if r.seed_ci is None else r.seed_ci[0],
                    "seed_ci_high": None if r.seed_ci is None else r.seed_ci[1],
                    "seed_verdict": r.seed_verdict or "",
                    "differences": "; ".join(r.differences),
                    "best_of": b.best_of,
                    "claimed_baseline_from": r.claimed_baseline_from,
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
                "mde_test": r.mde_test,
                "mde_normal": r.mde_normal,
                "power": r.power,
                "gain_ci_low": None if r.gain_ci is None else r.gain_ci[0],
                "gain_ci_high": None if r.gain_ci is None else r.gain_ci[1],
                "noise": r.noise,
                "suspect": c.suspect,
            }
        )
    return pd.DataFrame(out, columns=RESOLUTION_COLUMNS)


__all__ = [
    "claims_frame",
    "correction_frame",
    "listing_legend",
    "listing_rows",
    "resolution_frame",
    "reward_text",
]
