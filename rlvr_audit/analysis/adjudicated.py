"""Adjudicated disagreements and gains under each grader, from a store and the truth set.

The report's grader-disagreement section says *that* graders disagree; these functions say
*who is right* and *what it changes*, as plain DataFrames for the report to render:

- :func:`truth_rates`: the truth set (``rlvr_audit/grading/data/grader_truth.jsonl``) graded by the given
  graders: accuracy / false-accept / false-reject rates per grader and category
  (:func:`~rlvr_audit.grading.adjudication.accuracy_table`) and per disagreement pattern
  (:func:`~rlvr_audit.grading.adjudication.pattern_accuracy`).
- :func:`store_patterns`: per unit, how many samples show each disagreement pattern
  (``math_verify, paper | boxed_strict, minerva``: who accepts | who rejects).
- :func:`adjudicated_disagreements`: the two joined: "``n`` samples of this unit are
  accepted by ``math_verify`` and ``paper`` and rejected by the others; on adjudicated cases
  of this kind ``math_verify`` is right in X% [lo, hi] of ``n_truth``".
- :func:`gain_verdicts`: per RLVR gain of a comparisons table, its verdict (gain, loss, no
  detectable change) under each grader, and whether it changes with the grader (e.g. under
  ``consensus`` or ``judge`` against ``math_verify``).

For the report: :func:`split_rates` (each grader's rates on one split of the truth set, on its
disagreements and per disagreement pattern), :func:`adjudication_for_report` (the held-out split
graded now by the report's graders, joined with the store's disagreement patterns) and
:func:`add_adjudication` (its paragraphs, table and ``grader_adjudication.csv`` in the
disagreement section); :func:`gains_by_grader_section` ("Gains under each grader",
``gain_verdicts.csv``) and :func:`verdict_change_summary` (the report's summary line when the
verdict on a gain changes with the grader).

Cost: the report re-grades the truth set's 100 held-out cases with each rule-based grader (worker
processes, a few seconds); the graded cases are kept for the rest of the process, so a second
report of the same graders grades nothing.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..core.section import Block, BulletList, Code, Emph, Inline, Paragraph, Section, Table, Text, table_links
from ..core.store import Store, UnitInfo
from ..grading import GRADERS
from ..grading.adjudication import (
    ACCURACY_COLUMNS,
    ALL,
    accuracy_table,
    grade_truth_cases,
    pattern_accuracy,
    pattern_of,
)
from ..grading.truth import DEFAULT_TRUTH_SET, load_truth_set
from .estimates import grader_version


@dataclass(frozen=True)
class TruthRates:
    """What the truth set says about a list of graders."""

    graded: pd.DataFrame
    """Per case and grader (:data:`~rlvr_audit.grading.adjudication.CASE_COLUMNS`)."""
    accuracy: pd.DataFrame
    """Per split, grader and category (:data:`~rlvr_audit.grading.adjudication.ACCURACY_COLUMNS`)."""
    patterns: pd.DataFrame
    """Per disagreement pattern and grader, over every case
    (:data:`~rlvr_audit.grading.adjudication.PATTERN_COLUMNS`)."""


def truth_rates(
    graders: Sequence[str],
    *,
    truth_path: Path = DEFAULT_TRUTH_SET,
    level: float = 0.95,
    workers: int | None = None,
    timeout: float = 10.0,
) -> TruthRates:
    """Grade the truth set with ``graders`` (worker processes) and compute its rates.

    The pattern rates pool both splits: the held-out split exists so that no rule is tuned on
    it, and reporting on it is measuring. A grader that is not registered (``judge``) cannot
    be run here; see ``benchmarks/grader_truth.py --judge-endpoint``.
    """
    truth = load_truth_set(truth_path)
    graded = grade_truth_cases(truth.cases, graders, workers=workers, timeout=timeout)
    return TruthRates(
        graded=graded,
        accuracy=accuracy_table(graded, level=level, splits=("tune", "held_out", ALL)),
        patterns=pattern_accuracy(graded, graders, level=level),
    )


STORE_PATTERN_COLUMNS = ["checkpoint", "task", "prompt", "unit_key", "pattern", "n_samples", "n_common"]
"""Columns of :func:`store_patterns`."""


def store_patterns(store: Store, units: Sequence[UnitInfo], graders: Sequence[str]) -> pd.DataFrame:
    """Per unit, how many samples show each disagreement pattern of ``graders`` (current versions).

    A unit lacking grades of any of ``graders`` is skipped; ``n_common`` is the number of its
    samples every grader graded. Grades of a grader that is not registered (``judge``) are
    read whatever their version.
    """
    rows = []
    for info in units:
        accepted: dict[str, dict[tuple[str, int], bool]] = {}
        for g in graders:
            grades = store.read_grades(info.key, g, grader_version(g))
            if not grades:
                break
            accepted[g] = {(x.problem_id, x.sample_idx): x.verdict == "correct" for x in grades}
        else:
            common = set.intersection(*(set(v) for v in accepted.values())) if accepted else set()
            counts: dict[str, int] = {}
            for key in common:
                p = pattern_of({g: accepted[g][key] for g in graders})
                if p is not None:
                    counts[p] = counts.get(p, 0) + 1
            spec = info.spec
            for p, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
                rows.append(
                    {
                        "checkpoint": spec.checkpoint.checkpoint_id,
                        "task": spec.task,
                        "prompt": spec.template_id,
                        "unit_key": info.key,
                        "pattern": p,
                        "n_samples": n,
                        "n_common": len(common),
                    }
                )
    return pd.DataFrame(rows, columns=STORE_PATTERN_COLUMNS)


def adjudicated_disagreements(patterns: pd.DataFrame, rates: pd.DataFrame) -> pd.DataFrame:
    """:func:`store_patterns` rows joined with the truth set's
    :func:`~rlvr_audit.grading.adjudication.pattern_accuracy` rows.

    One row per unit, pattern and grader: the store's count of samples with that pattern and
    the truth set's accuracy of the grader on cases with the same pattern (``n_truth`` cases,
    0 with ``NaN`` rates when the truth set has none). This is what the report's
    disagreement section cites.
    """
    merged = patterns.merge(rates, on="pattern", how="left")
    merged = merged.rename(columns={"n": "n_truth", "n_right": "n_truth_right"})
    merged["n_truth"] = merged["n_truth"].fillna(0).astype(int)
    return merged


# --- gains under each grader -------------------------------------------------------------

GAIN_KEY = ["checkpoint", "base", "task", "prompt", "metric"]
"""The columns that identify one gain across graders in a comparisons table."""


def gain_verdict(ci_low: float, ci_high: float) -> str:
    """``gain`` (interval above 0), ``loss`` (below 0) or ``no detectable change`` (covers 0)."""
    if math.isnan(ci_low) or math.isnan(ci_high):
        return "not computed"
    if ci_low > 0:
        return "gain"
    if ci_high < 0:
        return "loss"
    return "no detectable change"


UNIT_KEY = ["treatment_unit", "baseline_unit"]
"""Columns that tell apart gains with the same :data:`GAIN_KEY` (e.g. units of several sampling
seeds); used by :func:`gain_verdicts` when the comparisons table has them."""

GAIN_VERDICT_COLUMNS = [*GAIN_KEY, *UNIT_KEY, "graders", "verdicts", "deltas", "intervals", "changes", "summary"]
"""Columns of :func:`gain_verdicts`: ``verdicts``/``deltas`` map grader -> value,
``intervals`` grader -> ``(ci_low, ci_high)``; the unit columns are ``None`` when the
comparisons table has none."""


def gain_verdicts(comparisons: pd.DataFrame, *, graders: Sequence[str] | None = None) -> pd.DataFrame:
    """Per gain (:data:`GAIN_KEY`, and :data:`UNIT_KEY` where present), its verdict under each
    grader and whether it changes.

    ``comparisons`` has the report's comparison columns (``grader``, ``delta``, ``ci_low``,
    ``ci_high`` and :data:`GAIN_KEY`). ``graders`` restricts and orders the graders compared
    (default: all, in order of appearance). ``summary`` is one sentence for the report, e.g.
    ``+4.2 (gain) under math_verify; +1.0 (no detectable change) under consensus``.
    """
    needed = {*GAIN_KEY, "grader", "delta", "ci_low", "ci_high"}
    missing = needed - set(comparisons.columns)
    if missing:
        raise ValueError(f"comparisons is missing columns: {', '.join(sorted(missing))}")
    order = list(graders) if graders is not None else list(dict.fromkeys(comparisons["grader"]))
    units = [c for c in UNIT_KEY if c in comparisons.columns]
    rows = []
    for key, group in comparisons.groupby([*GAIN_KEY, *units], sort=False, dropna=False):
        by_grader = {str(r.grader): r for r in group.itertuples(index=False)}
        present = [g for g in order if g in by_grader]
        if not present:
            continue
        intervals = {g: (float(by_grader[g].ci_low), float(by_grader[g].ci_high)) for g in present}
        verdicts = {g: gain_verdict(*intervals[g]) for g in present}
        deltas = {g: float(by_grader[g].delta) for g in present}
        summary = "; ".join(f"{100 * deltas[g]:+.1f} ({verdicts[g]}) under {g}" for g in present)
        rows.append(
            {
                **dict.fromkeys(UNIT_KEY),
                **dict(zip([*GAIN_KEY, *units], key, strict=True)),
                "graders": present,
                "verdicts": verdicts,
                "deltas": deltas,
                "intervals": intervals,
                "changes": len(set(verdicts.values())) > 1,
                "summary": summary,
            }
        )
    return pd.DataFrame(rows, columns=GAIN_VERDICT_COLUMNS)


# --- the report: adjudicated rates in the disagreement section ----------------------------

SPLIT_RATE_COLUMNS = ["scope", "pattern", *ACCURACY_COLUMNS, "n_store_samples"]
"""Columns of :func:`split_rates` and :attr:`Adjudication.rates` (``tables/grader_adjudication.csv``).

``scope`` is ``cases`` (every case of the split), ``disagreements`` (the cases of the split on
which the graders do not all give the same correctness) or ``pattern`` (the cases with the
disagreement pattern in ``pattern``; ``""`` for the other scopes); ``category`` is always
``all``; ``n_store_samples`` counts the report's samples with that pattern (``pattern`` rows
of :func:`adjudication_for_report`; 0 elsewhere)."""


def _left_out(graded: pd.DataFrame) -> tuple[str, ...]:
    return tuple(sorted(set(graded.loc[graded["verdict"] == "timeout", "case_id"])))


def split_rates(
    graded: pd.DataFrame, graders: Sequence[str], *, split: str = "held_out", level: float = 0.95
) -> pd.DataFrame:
    """Each grader's rates on one split of the truth set (:data:`SPLIT_RATE_COLUMNS`).

    ``graded`` is :func:`~rlvr_audit.grading.adjudication.grade_truth_cases` output with every
    grader of ``graders``; ``split`` is ``held_out``, ``tune`` or ``all``. Rows: per grader, its
    rates on every case of the split; then on the cases where ``graders`` disagree ("on
    adjudicated disagreements"); then per disagreement pattern (most cases first) and grader.
    A case on which any grader timed out is left out everywhere: a timeout is not a verdict, it
    depends on the machine's load.
    """
    part = graded[graded["grader"].isin(graders)]
    part = part if split == ALL else part[part["split"] == split]
    part = part[~part["case_id"].isin(_left_out(part))]
    accepted = part.pivot_table(index="case_id", columns="grader", values="accepted", aggfunc="first")
    pattern = {
        str(case_id): pattern_of({g: bool(row[g]) for g in graders}) for case_id, row in accepted.dropna().iterrows()
    }
    scopes: list[tuple[str, str, pd.DataFrame]] = [("cases", "", part)]
    disagree = {c for c, p in pattern.items() if p is not None}
    scopes.append(("disagreements", "", part[part["case_id"].isin(disagree)]))
    by_pattern: dict[str, set[str]] = {}
    for c, p in pattern.items():
        if p is not None:
            by_pattern.setdefault(p, set()).add(c)
    for p, ids in sorted(by_pattern.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        scopes.append(("pattern", p, part[part["case_id"].isin(ids)]))
    frames = []
    for scope, p, rows in scopes:
        table = accuracy_table(rows.assign(split=split), level=level, splits=(split,))
        table = table[table["category"] == ALL].set_index("grader").reindex(list(graders)).reset_index()
        if rows.empty:  # accuracy_table has no row for a grader without cases: fill the counts
            for col in ("n", "n_right", "n_truly_incorrect", "false_accepts", "n_truly_correct", "false_rejects"):
                table[col] = 0
            table["split"], table["category"], table["level"] = split, ALL, level
        frames.append(table.assign(scope=scope, pattern=p, n_store_samples=0))
    return pd.concat(frames, ignore_index=True)[SPLIT_RATE_COLUMNS]


@functools.lru_cache(maxsize=8)
def _graded_split(
    graders: tuple[str, ...], truth_path: Path | None, split: str, workers: int | None, timeout: float
) -> pd.DataFrame:
    truth = load_truth_set(truth_path)
    return grade_truth_cases(truth.split(split), graders, workers=workers, timeout=timeout)


@dataclass(frozen=True)
class Adjudication:
    """The truth set's verdict on the graders of a report."""

    split: str
    """The truth-set split graded (``held_out``: no grader rule was tuned on it)."""
    graders: list[str]
    """The graders measured: the report's registered (rule-based) graders."""
    unmeasured: list[str]
    """The report's graders the truth set cannot measure here (``judge``, any unregistered id)."""
    n_cases: int
    """Cases of the split measured (without :attr:`left_out`)."""
    left_out: tuple[str, ...]
    """Cases left out because a grader timed out on them."""
    rates: pd.DataFrame = field(repr=False)
    """:data:`SPLIT_RATE_COLUMNS` rows; ``pattern`` rows cover the split's patterns and the
    store's (``n_store_samples``, summed over the report's units; ``n == 0`` where the split
    has no case of a pattern)."""


def adjudication_for_report(
    store: Store,
    units: Sequence[UnitInfo],
    graders: Sequence[str],
    *,
    truth_path: Path | None = None,
    split: str = "held_out",
    level: float = 0.95,
    workers: int | None = None,
    timeout: float = 10.0,
) -> Adjudication | None:
    """Grade the truth set's ``split`` with the report's rule-based graders and join the store's
    disagreement patterns (:func:`store_patterns`) with their rates there (:func:`split_rates`).

    ``truth_path``: ``None`` for the project's truth set (package data). ``None`` is returned
    when fewer than two of ``graders`` are registered graders (nothing to adjudicate). Graded
    cases are kept for the rest of the process (keyed by graders, file and split), so reports
    of the same graders grade them once.
    """
    measured = [g for g in dict.fromkeys(graders) if g in GRADERS]
    if len(measured) < 2:
        return None
    graded = _graded_split(tuple(measured), truth_path, split, workers, timeout)
    left_out = _left_out(graded)
    rates = split_rates(graded, measured, split=split, level=level)
    counts = store_patterns(store, units, measured).groupby("pattern")["n_samples"].sum()
    known = set(rates.loc[rates["scope"] == "pattern", "pattern"])
    missing = [p for p in counts.index if p not in known]
    if missing:  # store patterns the split has no case of: rows with n == 0 and no rates
        empty = split_rates(graded.iloc[0:0], measured, split=split, level=level)
        empty = empty[empty["scope"] == "cases"]
        rates = pd.concat(
            [rates, *(empty.assign(scope="pattern", pattern=p) for p in sorted(missing))], ignore_index=True
        )
    is_pattern = rates["scope"] == "pattern"
    rates.loc[is_pattern, "n_store_samples"] = rates.loc[is_pattern, "pattern"].map(counts).fillna(0).astype(int)
    return Adjudication(
        split=split,
        graders=measured,
        unmeasured=[g for g in dict.fromkeys(graders) if g not in GRADERS],
        n_cases=int(graded.loc[~graded["case_id"].isin(left_out), "case_id"].nunique()),
        left_out=left_out,
        rates=rates.reset_index(drop=True),
    )


def _rate(row: pd.Series, what: str, *, unit: str = "") -> str:
    """``"89.0 [81.4, 93.7]"`` (``unit`` after the value) from a rate column and its interval."""
    stem = what.removesuffix("_rate")
    value, low, high = row[what], row[f"{stem}_low"], row[f"{stem}_high"]
    if pd.isna(value):
        return "–"
    return f"{100 * value:.1f}{unit} [{100 * low:.1f}, {100 * high:.1f}]"


def _share(row: pd.Series, k: str, n: str, rate: str) -> str:
    return "–" if not row[n] else f"{100 * row[rate]:.1f} ({int(row[k])}/{int(row[n])})"


def _names(graders: Sequence[str]) -> list[Inline]:
    out: list[Inline] = []
    for i, g in enumerate(graders):
        out += [*([", "] if i else []), Code(g)]
    return out


def adjudication_blocks(adj: Adjudication, *, max_patterns: int = 5) -> list[Block]:
    """The paragraphs and table the disagreement section shows for ``adj``."""
    split = "held-out" if adj.split == "held_out" else adj.split
    rates = adj.rates
    cases = rates[rates["scope"] == "cases"].set_index("grader")
    disagree = rates[rates["scope"] == "disagreements"].set_index("grader")
    n_disagree = int(disagree["n"].iloc[0]) if len(disagree) else 0
    level = f"{100 * float(rates['level'].iloc[0]):g}%"
    lead: list[Inline] = [
        "Which grader is right: each grader's accuracy on the ",
        f"{adj.n_cases} {split} cases of the grader truth set (real and constructed responses adjudicated by "
        "careful reading",
        *(["; no grader rule was tuned on them"] if adj.split == "held_out" else []),
        "), graded now with the graders' current versions. ",
        Emph("On disagreements"),
        f": the {n_disagree} of those cases on which these graders do not all agree. False accepts: graded correct "
        f"among the truly incorrect cases; false rejects: graded not correct among the truly correct ones; "
        f"{level} Wilson intervals.",
    ]
    if adj.left_out:
        lead.append(f" {len(adj.left_out)} cases on which a grader timed out are left out.")
    header: list[Text] = ["Grader", "Accuracy (%)", "False accepts (%)", "False rejects (%)", "On disagreements (%)"]
    table: list[list[Text]] = []
    for g in adj.graders:
        row, d = cases.loc[g], disagree.loc[g]
        table.append(
            [
                Code(g),
                _rate(row, "accuracy"),
                _share(row, "false_accepts", "n_truly_incorrect", "false_accept_rate"),
                _share(row, "false_rejects", "n_truly_correct", "false_reject_rate"),
                _rate(d, "accuracy"),
            ]
        )
    blocks: list[Block] = [Paragraph(lead), Table(header, table, kind="measured")]
    if adj.unmeasured:
        blocks.append(
            Paragraph(
                [
                    *_names(adj.unmeasured),
                    " not measured here (not a rule-based grader): ",
                    Code("benchmarks/grader_truth.py --judge-endpoint URL --judge-model NAME"),
                    " measures a judge on the truth set.",
                ]
            )
        )
    patterns = rates[(rates["scope"] == "pattern") & (rates["n_store_samples"] > 0)]
    order = patterns.drop_duplicates("pattern").sort_values(["n_store_samples", "pattern"], ascending=[False, True])
    items: list[Text] = []
    for p in order["pattern"].head(max_patterns):
        mine = patterns[patterns["pattern"] == p].set_index("grader")
        n_store, n_truth = int(mine["n_store_samples"].iloc[0]), int(mine["n"].iloc[0])
        accept, reject = (side.split(", ") for side in p.split(" | "))
        item: list[Inline] = [
            f"{n_store} samples accepted by ",
            *_names(accept),
            " and rejected by ",
            *_names(reject),
            ": ",
        ]
        if n_truth:
            item.append(f"on adjudicated disagreements of this kind ({n_truth} {split} cases), ")
            for i, g in enumerate(adj.graders):
                item += [*([", "] if i else []), Code(g), f" is right in {_rate(mine.loc[g], 'accuracy', unit='%')}"]
        else:
            item.append(f"no {split} case of this kind")
        items.append([*item, "."])
    if items:
        blocks += [Paragraph("The report's most frequent disagreement patterns (who accepts | who rejects):")]
        blocks.append(BulletList(items))
    blocks.append(table_links([("grader_adjudication.csv", "(rates as fractions)")]))
    return blocks


def add_adjudication(section: Section, adj: Adjudication | None) -> Section:
    """Append ``adj``'s blocks and ``grader_adjudication.csv`` to the disagreement section
    (nothing for ``None``); returns ``section``."""
    if adj is not None:
        section.blocks += adjudication_blocks(adj)
        section.tables["grader_adjudication.csv"] = adj.rates
    return section


# --- the report: gains under each grader --------------------------------------------------

GAIN_VERDICT_CSV_COLUMNS = [*GAIN_KEY, "grader", "delta", "ci_low", "ci_high", "verdict", "changes", *UNIT_KEY]
"""Columns of ``tables/gain_verdicts.csv``: one row per gain and grader (deltas as fractions;
``changes``: the gain's verdict is not the same under every grader)."""


def gain_verdicts_frame(verdicts: pd.DataFrame) -> pd.DataFrame:
    """:func:`gain_verdicts` in long form (:data:`GAIN_VERDICT_CSV_COLUMNS`), for the CSV."""
    rows = [
        {
            **{k: getattr(r, k) for k in [*GAIN_KEY, *UNIT_KEY]},
            "grader": g,
            "delta": r.deltas[g],
            "ci_low": r.intervals[g][0],
            "ci_high": r.intervals[g][1],
            "verdict": r.verdicts[g],
            "changes": bool(r.changes),
        }
        for r in verdicts.itertuples(index=False)
        for g in r.graders
    ]
    return pd.DataFrame(rows, columns=GAIN_VERDICT_CSV_COLUMNS)


def gains_by_grader_section(comparisons: pd.DataFrame, *, graders: Sequence[str] | None = None) -> Section | None:
    """ "Gains under each grader": per gain, its value, interval and verdict under each grader
    side by side, and whether the verdict changes with the grader; ``gain_verdicts.csv``.
    ``None`` with no comparisons or fewer than two graders."""
    if comparisons.empty:
        return None
    verdicts = gain_verdicts(comparisons, graders=graders)
    order = list(graders) if graders is not None else list(dict.fromkeys(comparisons["grader"]))
    shown = [g for g in order if any(g in v for v in verdicts["graders"])]
    if len(shown) < 2:
        return None
    header: list[Text] = ["Checkpoint", "Base", "Task", "Prompt", "Metric", *(Code(g) for g in shown), "Verdict"]
    rows: list[list[Text]] = []
    for r in verdicts.itertuples(index=False):
        cells: list[Text] = [
            "–"
            if g not in r.verdicts
            else f"{100 * r.deltas[g]:+.1f} [{100 * r.intervals[g][0]:+.1f}, {100 * r.intervals[g][1]:+.1f}] "
            f"{r.verdicts[g]}"
            for g in shown
        ]
        verdict = "changes with the grader" if r.changes else "same under every grader"
        rows.append([r.checkpoint, r.base, r.task, Code(str(r.prompt)), r.metric, *cells, verdict])
    n_changes = int(verdicts["changes"].sum())
    note = Paragraph(
        [
            "Each gain over base (points, paired interval) and its verdict under each grader: ",
            Emph("gain"),
            " (interval above 0), ",
            Emph("loss"),
            " (below 0) or ",
            Emph("no detectable change"),
            f" (covers 0). The verdict changes with the grader for {n_changes} of {len(verdicts)} gains.",
        ]
    )
    return Section(
        "Gains under each grader",
        [note, Table(header, rows, kind="measured"), table_links([("gain_verdicts.csv", "(deltas as fractions)")])],
        tables={"gain_verdicts.csv": gain_verdicts_frame(verdicts)},
    )


def verdict_change_summary(comparisons: pd.DataFrame, *, graders: Sequence[str] | None = None) -> Paragraph | None:
    """The report's summary line when the verdict on a gain changes with the grader (``None``
    when no verdict changes): how many gains, and the first few with their verdicts."""
    if comparisons.empty:
        return None
    verdicts = gain_verdicts(comparisons, graders=graders)
    changed = verdicts[verdicts["changes"]] if not verdicts.empty else verdicts
    if changed.empty:
        return None
    parts: list[Inline] = [
        f"The verdict on {len(changed)} of {len(verdicts)} gains changes with the grader (see ",
        Emph("Gains under each grader"),
        "): ",
    ]
    for i, r in enumerate(changed.head(3).itertuples(index=False)):
        parts += [*(["; "] if i else []), f"{r.checkpoint} over {r.base} on {r.task} ({r.metric}): {r.summary}"]
    parts.append("; …" if len(changed) > 3 else ".")
    return Paragraph(parts)


__all__ = [
    "GAIN_KEY",
    "GAIN_VERDICT_COLUMNS",
    "GAIN_VERDICT_CSV_COLUMNS",
    "SPLIT_RATE_COLUMNS",
    "STORE_PATTERN_COLUMNS",
    "UNIT_KEY",
    "Adjudication",
    "TruthRates",
    "add_adjudication",
    "adjudicated_disagreements",
    "adjudication_blocks",
    "adjudication_for_report",
    "gain_verdict",
    "gain_verdicts",
    "gain_verdicts_frame",
    "gains_by_grader_section",
    "grader_version",
    "split_rates",
    "store_patterns",
    "truth_rates",
    "verdict_change_summary",
]
