"""Prompt sensitivity: one checkpoint under several prompt templates, everything else equal.

In "Spurious Rewards" (arXiv 2506.10947) the same untrained Qwen2.5-Math-7B scores 49.4 on
MATH-500 with its default prompt and 68.8 with a lorem-ipsum system prompt: a gain measured
against a weakly prompted base is not a gain of training. ``rlvr-audit run --prompts all``
(or a list of templates) stores one unit per template; this module reads them back.

Groups
------
A *sweep group* is one checkpoint on one task version (task id and data hash) under one
sampling protocol, graded by one grader, with one unit per prompt template. Units that differ
only in their engine (backend, engine arguments) are the same setting, as they are for the
base-vs-checkpoint comparisons of :mod:`rlvr_audit.analysis.estimates`; when one template was run under
several engines, the unit whose engine most templates of the group share is used (then the
smallest unit key). A group is *swept* when it holds two or more templates.

Estimands (each per group, over the group's *common problems*: those with all k samples
graded under every template of the group, in task order, so that templates are compared on the
same problems):

- **accuracy** of a template: avg@k (mean over problems of the share of samples graded
  ``correct``), with a bootstrap interval resampling problems (the group's one
  :func:`~rlvr_audit.analysis.estimates.plan_for` plan, so every template is resampled on the same
  problems; ``ci_method`` percentile or BCa).
- **parse rate** of a template: the mean over problems of the share of samples with an
  extracted final answer under the grader: :attr:`~rlvr_audit.core.records.Grade.extracted` is not
  ``None`` and the verdict is neither ``no_answer`` nor ``truncated``. Interval as for
  accuracy. Format failures (no boxed answer, a cut-off response) drive many prompt effects.
- **rank** of a template: 1 + the number of templates of the group with a strictly higher
  accuracy (ties share a rank); the *default rank* is the rank of the checkpoint's registry
  template (``prompt`` in ``checkpoints.yaml``), when it is in the group.
- **spread**: accuracy of the best template minus that of the worst (ties: the first template
  id is the best, the last the worst), with the paired bootstrap interval of that difference.
  Best and worst are chosen on the same data, so the spread is biased upward (a max minus a min
  of noisy estimates is positive even when every template is equally good); that paired
  interval is conditional on the choice. The report therefore shows the **selection-aware
  interval** (``spread_pick``): the whole pick is bootstrapped, i.e. in every replicate of the
  problems best and worst are picked again and the replicate's max minus min is taken, and the
  percentile interval of those ranges is reported. It carries the selection's upward bias into
  its replicates instead of hiding it, so it is wider and lies further from 0 than a fixed pair's
  interval; read it as how large the spread could be, not as evidence that it is above 0.

For an RLVR checkpoint (one with a ``base``), per template ``T`` of its group:

- **gain over the base under the same prompt**: the :class:`~rlvr_audit.core.records.Comparison`
  of :func:`rlvr_audit.analysis.estimates.analyse` (paired over the problems both units have complete,
  paired bootstrap interval, exact paired test).
- **gain over the best-prompted base**: accuracy of the checkpoint under ``T`` minus the
  accuracy of the base under the base group's *best* template ``T*`` (highest accuracy over
  the base group's common problems; ties: the first template id), paired over the problems
  both units have complete, with a paired bootstrap interval (plan of that problem set). Only
  when the base group is swept. Choosing ``T*`` as the best on the same data biases the base
  upward and so this gain *downward* (conservative for a claimed gain); the interval does not
  account for the choice.

Everything is computed from stored grades only, deterministically from the report seed.
Outputs: :func:`rlvr_audit.analysis.sweep_sections.sweep_section` gives the report section,
three CSV tables (accuracies as fractions) and one dot plot per task, grader and protocol
(templates x checkpoints, interval bars).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.errors import AuditError
from ..core.records import Comparison, SamplingProtocol
from ..core.registry import local_checkpoint
from ..core.store import Store, UnitInfo
from . import stats
from .estimates import Analysis, UnitMatrix, grader_version, plan_for, unit_matrix

log = logging.getLogger(__name__)

NO_PARSE_VERDICTS = frozenset({"no_answer", "truncated"})
"""Verdicts that mean no final answer was extracted, whatever :attr:`Grade.extracted` holds."""

_TIE = 1e-12
"""Accuracies closer than this are tied."""

SWEEP_COLUMNS = [
    "checkpoint",
    "base",
    "task",
    "protocol",
    "grader",
    "metric",
    "prompt",
    "is_default",
    "n_problems",
    "accuracy",
    "ci_low",
    "ci_high",
    "rank",
    "n_prompts",
    "parse_rate",
    "parse_ci_low",
    "parse_ci_high",
    "level",
    "method",
    "unit_key",
]
"""Columns of ``tables/prompt_sweep.csv``: one row per checkpoint x task x protocol x grader x
template (fractions)."""

SPREAD_COLUMNS = [
    "checkpoint",
    "base",
    "task",
    "protocol",
    "grader",
    "metric",
    "n_prompts",
    "n_problems",
    "best_prompt",
    "best",
    "worst_prompt",
    "worst",
    "spread",
    "spread_ci_low",
    "spread_ci_high",
    "default_prompt",
    "default_rank",
    "spread_pick_ci_low",
    "spread_pick_ci_high",
]
"""Columns of ``tables/prompt_sweep_spread.csv``: one row per swept group."""

GAIN_COLUMNS = [
    "checkpoint",
    "base",
    "task",
    "protocol",
    "grader",
    "metric",
    "prompt",
    "is_default",
    "gain_same_prompt",
    "same_ci_low",
    "same_ci_high",
    "same_p_value",
    "same_n_problems",
    "base_best_prompt",
    "gain_over_best",
    "best_ci_low",
    "best_ci_high",
    "best_n_problems",
    "treatment_value",
    "base_best_value",
]
"""Columns of ``tables/prompt_sweep_gains.csv``: one row per RLVR checkpoint x template."""


@dataclass(frozen=True)
class TemplateScore:
    """One template of a sweep group."""

    template_id: str
    """Prompt template id."""
    unit_key: str
    """The unit measured."""
    accuracy: stats.Interval
    """avg@k over the group's common problems, with its interval."""
    parse_rate: stats.Interval
    """Share of samples with an extracted answer (module docstring), over the same problems."""
    rank: int
    """1 + the number of templates of the group with a strictly higher accuracy."""
    is_default: bool
    """Whether this is the checkpoint's registry template."""


@dataclass(frozen=True)
class PromptGain:
    """An RLVR checkpoint under one template against its base (see the module docstring)."""

    template_id: str
    """The checkpoint's template."""
    is_default: bool
    """Whether it is the checkpoint's registry template."""
    same_prompt: Comparison | None
    """The Analysis comparison with the base under the same template (``None``: base not run so)."""
    base_best_template: str | None
    """The base's best template (``None`` unless the base group is swept)."""
    over_best: stats.Interval | None
    """Accuracy under this template minus the base's under its best one, paired."""
    over_best_n_problems: int = 0
    """Problems the gain over the best-prompted base is paired over."""
    treatment_value: float | None = None
    """The checkpoint's accuracy on those problems."""
    base_best_value: float | None = None
    """The base's best-template accuracy on those problems."""


@dataclass
class SweepGroup:
    """One checkpoint x task version x protocol x grader, with one unit per template."""

    checkpoint_id: str
    """Checkpoint id."""
    base: str | None
    """Its base checkpoint id, if any."""
    task: str
    """Task id."""
    task_display: str
    """Benchmark display name."""
    data_hash: str
    """Task version."""
    protocol: SamplingProtocol
    """Sampling protocol."""
    grader_id: str
    """Grader."""
    default_template: str | None
    """The checkpoint's registry template (``None`` when unknown)."""
    problem_ids: tuple[str, ...]
    """The common problems, in task order."""
    scores: list[TemplateScore]
    """One per template, sorted by template id."""
    spread: stats.Interval | None
    """Best minus worst accuracy with its paired interval (``None`` with one template)."""
    best: str
    """Template with the highest accuracy (ties: the first id)."""
    worst: str
    """Template with the lowest accuracy (ties: the last id)."""
    gains: list[PromptGain] = field(default_factory=list)
    """For an RLVR checkpoint: one per template (empty otherwise)."""
    spread_pick: tuple[float, float] | None = None
    """Selection-aware percentile interval of the spread: best and worst picked again in every
    bootstrap replicate (``None`` with one template)."""

    @property
    def metric(self) -> str:
        """``avg@k``."""
        return f"avg@{self.protocol.n}"

    @property
    def n_templates(self) -> int:
        """Templates in the group."""
        return len(self.scores)

    @property
    def swept(self) -> bool:
        """Whether the group holds two or more templates."""
        return self.n_templates >= 2

    @property
    def default_rank(self) -> int | None:
        """Rank of the default template, ``None`` when it was not run."""
        for s in self.scores:
            if s.is_default:
                return s.rank
        return None

    def score(self, template_id: str) -> TemplateScore:
        """The score of ``template_id``; KeyError naming the group's templates otherwise."""
        for s in self.scores:
            if s.template_id == template_id:
                return s
        raise KeyError(f"{template_id!r} not in the sweep of {self.checkpoint_id}; templates: {self.templates}")

    @property
    def templates(self) -> list[str]:
        """Template ids, sorted."""
        return [s.template_id for s in self.scores]

    @property
    def setting(self) -> tuple[str, str, str, str]:
        """(task, data hash, protocol, grader): groups of one setting share a table and a figure."""
        return (self.task, self.data_hash, self.protocol.model_dump_json(), self.grader_id)


def protocol_label(p: SamplingProtocol) -> str:
    """The protocol in words, e.g. ``greedy, 1 sample, 3072 tokens, seed 0``."""
    decoding = (
        "greedy" if p.temperature == 0 else f"T={p.temperature:g}" + (f", top-p {p.top_p:g}" if p.top_p < 1 else "")
    )
    return f"{decoding}, {p.n} sample{'s' if p.n > 1 else ''}, {p.max_new_tokens} tokens, seed {p.seed}"


def _engine(u: UnitInfo) -> str:
    return json.dumps([u.spec.backend, u.spec.engine_args, u.spec.checkpoint.model_dump(mode="json")], sort_keys=True)


def _pick_units(candidates: dict[str, list[UnitMatrix]]) -> dict[str, UnitMatrix]:
    """One unit per template: the engine most templates share, then the smallest unit key."""
    engines = Counter(e for ms in candidates.values() for e in {_engine(m.info) for m in ms})
    return {t: min(ms, key=lambda m: (-engines[_engine(m.info)], m.info.key)) for t, ms in sorted(candidates.items())}


def parse_scores(store: Store, m: UnitMatrix, problem_ids: Sequence[str]) -> np.ndarray:
    """Per problem of ``problem_ids``, the share of the unit's ``k`` samples with an extracted
    answer under ``m``'s grader (current grader version; see the module docstring)."""
    k = m.info.spec.protocol.n
    parsed: dict[str, list[bool]] = {}
    for g in store.read_grades(m.info.key, m.grader_id, grader_version(m.grader_id)):
        if g.sample_idx < k:
            parsed.setdefault(g.problem_id, []).append(g.extracted is not None and g.verdict not in NO_PARSE_VERDICTS)
    return np.array([sum(parsed.get(pid, [])) / k for pid in problem_ids], dtype=np.float64)


def _rank(values: dict[str, float]) -> dict[str, int]:
    return {t: 1 + sum(1 for o in values.values() if o > v + _TIE) for t, v in values.items()}


def _best_worst(values: dict[str, float]) -> tuple[str, str]:
    """(best, worst) template: ties go to the first template id for the best and the last for
    the worst, so the two differ whenever there are two templates."""
    top = max(values.values())
    bottom = min(values.values())
    best = min(t for t, v in values.items() if v >= top - _TIE)
    worst = max(t for t, v in values.items() if v <= bottom + _TIE)
    return best, worst


def local_default_template(info: UnitInfo) -> str | None:
    """The template ``--prompts default`` picks for the unit's checkpoint when it is a local
    model directory (``local/...``, in no registry): ``model_default`` if its tokenizer has a chat
    template, else ``no_template`` (:func:`~rlvr_audit.core.registry.local_checkpoint`); ``None``
    for other checkpoints, imported units, or a directory no longer there."""
    ref = info.spec.checkpoint
    if not ref.checkpoint_id.startswith("local/") or info.imported is not None:
        return None
    try:
        return local_checkpoint(Path(ref.model)).prompt
    except (AuditError, OSError):  # moved or deleted since it was evaluated
        return None


def build_sweep(
    analysis: Analysis,
    store: Store,
    *,
    seed: int = 0,
    n_resamples: int = 10_000,
    level: float = 0.95,
    ci_method: str = "percentile",
    default_prompt: Mapping[str, str] | None = None,
) -> list[SweepGroup]:
    """Every sweep group of the analysed units (swept or not), with gains for RLVR checkpoints.

    Args:
        analysis: The report's analysis (units, verdict matrices, comparisons).
        store: The store the analysis read (for the grades' extracted answers).
        seed: Report seed; plans are :func:`~rlvr_audit.analysis.estimates.plan_for` of each problem set,
            so a template's interval equals its reproduction-table interval whenever the
            group's common problems are the unit's complete problems.
        n_resamples: Bootstrap replicates.
        level: Confidence level.
        ci_method: ``percentile`` or ``bca``.
        default_prompt: Checkpoint id -> its registry template (ranks of defaults; none without).
            Local model directories not in it get :func:`local_default_template`.

    Groups come sorted by task, protocol and grader, bases first, then by checkpoint id. A
    base's templates are read from the store even when the base was not selected, so that the
    best-prompted base is chosen among all of them; a base group not selected is returned when
    it is some returned checkpoint's best-prompted base.
    Raises ValueError for bad bootstrap options.
    """
    stats.check_bootstrap_options(n_resamples=n_resamples, level=level, method=ci_method)
    defaults = dict(default_prompt or {})
    candidates: dict[tuple[str, str, str, str, str], dict[str, list[UnitMatrix]]] = {}
    for m in [*analysis.matrices.values(), *_base_matrices(analysis, store)]:
        s = m.info.spec
        gkey = (s.task, s.data_hash, s.protocol.model_dump_json(), m.grader_id, s.checkpoint.checkpoint_id)
        candidates.setdefault(gkey, {}).setdefault(s.template_id, []).append(m)
        if s.checkpoint.checkpoint_id not in defaults:  # a local model directory, in no registry
            default = local_default_template(m.info)
            if default is not None:
                defaults[s.checkpoint.checkpoint_id] = default
    selected = {u.key for u in analysis.units}
    groups: dict[tuple[str, str, str, str, str], SweepGroup] = {}
    matrices: dict[tuple[str, str, str, str, str], dict[str, UnitMatrix]] = {}
    for gkey, per_template in sorted(candidates.items()):
        picked = _pick_units(per_template)
        matrices[gkey] = picked
        group = _build_group(
            picked, store, seed=seed, n_resamples=n_resamples, level=level, ci_method=ci_method, defaults=defaults
        )
        if group is not None:
            groups[gkey] = group
    for gkey, group in groups.items():
        if group.base is None:
            continue
        base_group = groups.get((*gkey[:4], group.base))
        group.gains = _gains(
            group,
            base_group,
            analysis,
            picked_units=matrices[gkey],
            base_units=matrices.get((*gkey[:4], group.base), {}),
            seed=seed,
            n_resamples=n_resamples,
            level=level,
            ci_method=ci_method,
        )
    shown = {k for k, g in groups.items() if any(s.unit_key in selected for s in g.scores)}
    # the swept base of a shown checkpoint is shown too: its best template is the yardstick
    shown |= {
        (*k[:4], g.base)
        for k, g in groups.items()
        if k in shown and g.base is not None and any(x.over_best for x in g.gains)
    }
    return sorted((groups[k] for k in shown if k in groups), key=setting_order)


def setting_order(g: SweepGroup) -> tuple[str, str, str, bool, str]:
    """Sort key: setting, then base checkpoints before their RLVR checkpoints, then id."""
    return (g.task, g.protocol.model_dump_json(), g.grader_id, g.base is not None, g.checkpoint_id)


def _base_matrices(analysis: Analysis, store: Store) -> list[UnitMatrix]:
    """Verdict matrices of stored units of the analysed checkpoints' bases, in the analysed
    settings, that the analysis did not build (a base's other templates): the best-prompted
    base is chosen among every template the base was run with."""
    wanted: set[tuple[str, str, str, str]] = set()
    for (_, grader), m in analysis.matrices.items():
        if m.info.base:
            s = m.info.spec
            wanted.add((m.info.base, s.data_hash, s.protocol.model_dump_json(), grader))
    if not wanted:
        return []
    have = set(analysis.matrices)
    orders: dict[str, list[str]] = {}
    out = []
    for info in store.units():
        s = info.spec
        for cid, data_hash, protocol, grader in sorted(wanted):
            if (
                s.checkpoint.checkpoint_id != cid
                or s.data_hash != data_hash
                or s.protocol.model_dump_json() != protocol
                or (info.key, grader) in have
            ):
                continue
            if data_hash not in orders:
                orders[data_hash] = [p.problem_id for p in store.load_problems(data_hash)]
            found = unit_matrix(store, info, grader, orders[data_hash])
            if found is not None:
                out.append(found)
    return out


def spread_pick_interval(plan: stats.ResamplingPlan, accuracy: np.ndarray, *, level: float) -> tuple[float, float]:
    """Percentile interval of ``max - min`` over the columns (templates) of per-problem
    ``accuracy`` ``(n, m)``, with best and worst picked again in every replicate of ``plan``."""
    reps = plan.replicates(accuracy)
    ranges = reps.max(axis=1) - reps.min(axis=1)
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(ranges, [tail, 1.0 - tail])
    return float(lo), float(hi)


def _build_group(
    units: dict[str, UnitMatrix],
    store: Store,
    *,
    seed: int,
    n_resamples: int,
    level: float,
    ci_method: str,
    defaults: dict[str, str],
) -> SweepGroup | None:
    first = next(iter(units.values()))
    info = first.info
    cid = info.spec.checkpoint.checkpoint_id
    shared = set.intersection(*(set(m.problem_ids) for m in units.values()))
    ids = tuple(pid for pid in first.problem_ids if pid in shared)
    if not ids:
        log.warning(
            "prompt sweep of %s (%s, grader %s): the templates %s share no problem with all samples graded; left out",
            cid,
            info.spec.task,
            first.grader_id,
            ", ".join(units),
        )
        return None
    templates = list(units)
    acc_cols, parse_cols = [], []
    for t in templates:
        m = units[t]
        rows = {pid: i for i, pid in enumerate(m.problem_ids)}
        acc_cols.append(m.correct[[rows[p] for p in ids]].mean(axis=1))
        parse_cols.append(parse_scores(store, m, ids))
    values = {t: float(c.mean()) for t, c in zip(templates, acc_cols, strict=True)}
    best, worst = _best_worst(values)
    pairs = [(templates.index(worst), templates.index(best))] if len(templates) > 1 else []
    plan = plan_for(seed, info.spec.data_hash, ids, n_resamples)
    result = plan.intervals_from_scores(
        np.stack(acc_cols + parse_cols, axis=1), pairs=pairs, level=level, method=ci_method
    )
    pick = spread_pick_interval(plan, np.stack(acc_cols, axis=1), level=level) if len(templates) > 1 else None
    ranks = _rank(values)
    default = defaults.get(cid)
    n = len(templates)
    scores = [
        TemplateScore(
            template_id=t,
            unit_key=units[t].info.key,
            accuracy=result.units[i],
            parse_rate=result.units[n + i],
            rank=ranks[t],
            is_default=t == default,
        )
        for i, t in enumerate(templates)
    ]
    return SweepGroup(
        checkpoint_id=cid,
        base=info.base,
        task=info.spec.task,
        task_display=info.task_display or info.spec.task,
        data_hash=info.spec.data_hash,
        protocol=info.spec.protocol,
        grader_id=first.grader_id,
        default_template=default,
        problem_ids=ids,
        scores=scores,
        spread=result.pairs[0] if pairs else None,
        best=best,
        worst=worst,
        spread_pick=pick,
    )


def _gains(
    group: SweepGroup,
    base_group: SweepGroup | None,
    analysis: Analysis,
    *,
    picked_units: dict[str, UnitMatrix],
    base_units: dict[str, UnitMatrix],
    seed: int,
    n_resamples: int,
    level: float,
    ci_method: str,
) -> list[PromptGain]:
    """Per template of an RLVR group: the same-prompt comparison and the gain over the best-prompted base."""
    comparisons = {c.treatment_unit: c for c in analysis.comparisons if c.grader_id == group.grader_id}
    best_unit = base_units.get(base_group.best) if base_group is not None and base_group.swept else None
    # gains over the best-prompted base, batched by problem set (one plan each)
    requests: dict[tuple[str, ...], list[tuple[str, np.ndarray, np.ndarray]]] = {}
    if best_unit is not None:
        base_rows = {pid: i for i, pid in enumerate(best_unit.problem_ids)}
        for t, m in picked_units.items():
            ids = tuple(pid for pid in m.problem_ids if pid in base_rows)
            if not ids:
                continue
            rows = {pid: i for i, pid in enumerate(m.problem_ids)}
            treat = m.correct[[rows[p] for p in ids]].mean(axis=1)
            base = best_unit.correct[[base_rows[p] for p in ids]].mean(axis=1)
            requests.setdefault(ids, []).append((t, base, treat))
    over: dict[str, tuple[stats.Interval, int, float, float]] = {}
    for ids, items in requests.items():
        cols = [c for _, base, treat in items for c in (base, treat)]
        pairs = [(2 * i, 2 * i + 1) for i in range(len(items))]
        plan = plan_for(seed, group.data_hash, ids, n_resamples)
        result = plan.intervals_from_scores(np.stack(cols, axis=1), pairs=pairs, level=level, method=ci_method)
        for i, (t, base, treat) in enumerate(items):
            over[t] = (result.pairs[i], len(ids), float(treat.mean()), float(base.mean()))
    out = []
    for s in group.scores:
        o = over.get(s.template_id)
        out.append(
            PromptGain(
                template_id=s.template_id,
                is_default=s.is_default,
                same_prompt=comparisons.get(s.unit_key),
                base_best_template=base_group.best if best_unit is not None and base_group is not None else None,
                over_best=o[0] if o else None,
                over_best_n_problems=o[1] if o else 0,
                treatment_value=o[2] if o else None,
                base_best_value=o[3] if o else None,
            )
        )
    return out


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


def sweep_frame(groups: Sequence[SweepGroup]) -> pd.DataFrame:
    """One row per group and template (:data:`SWEEP_COLUMNS`, fractions)."""
    rows = [
        {
            "checkpoint": g.checkpoint_id,
            "base": g.base or "",
            "task": g.task,
            "protocol": protocol_label(g.protocol),
            "grader": g.grader_id,
            "metric": g.metric,
            "prompt": s.template_id,
            "is_default": s.is_default,
            "n_problems": len(g.problem_ids),
            "accuracy": s.accuracy.value,
            "ci_low": s.accuracy.ci_low,
            "ci_high": s.accuracy.ci_high,
            "rank": s.rank,
            "n_prompts": g.n_templates,
            "parse_rate": s.parse_rate.value,
            "parse_ci_low": s.parse_rate.ci_low,
            "parse_ci_high": s.parse_rate.ci_high,
            "level": s.accuracy.level,
            "method": s.accuracy.method,
            "unit_key": s.unit_key,
        }
        for g in groups
        for s in g.scores
    ]
    return pd.DataFrame(rows, columns=SWEEP_COLUMNS)


def spread_frame(groups: Sequence[SweepGroup]) -> pd.DataFrame:
    """One row per swept group (:data:`SPREAD_COLUMNS`, fractions)."""
    rows = []
    for g in groups:
        if g.spread is None:
            continue
        rows.append(
            {
                "checkpoint": g.checkpoint_id,
                "base": g.base or "",
                "task": g.task,
                "protocol": protocol_label(g.protocol),
                "grader": g.grader_id,
                "metric": g.metric,
                "n_prompts": g.n_templates,
                "n_problems": len(g.problem_ids),
                "best_prompt": g.best,
                "best": g.score(g.best).accuracy.value,
                "worst_prompt": g.worst,
                "worst": g.score(g.worst).accuracy.value,
                "spread": g.spread.value,
                "spread_ci_low": g.spread.ci_low,
                "spread_ci_high": g.spread.ci_high,
                "default_prompt": g.default_template or "",
                "default_rank": g.default_rank,
                "spread_pick_ci_low": None if g.spread_pick is None else g.spread_pick[0],
                "spread_pick_ci_high": None if g.spread_pick is None else g.spread_pick[1],
            }
        )
    return pd.DataFrame(rows, columns=SPREAD_COLUMNS)


def gains_frame(groups: Sequence[SweepGroup]) -> pd.DataFrame:
    """One row per RLVR group and template (:data:`GAIN_COLUMNS`, gains as fractions)."""
    rows = []
    for g in groups:
        for gain in g.gains:
            c, o = gain.same_prompt, gain.over_best
            rows.append(
                {
                    "checkpoint": g.checkpoint_id,
                    "base": g.base or "",
                    "task": g.task,
                    "protocol": protocol_label(g.protocol),
                    "grader": g.grader_id,
                    "metric": g.metric,
                    "prompt": gain.template_id,
                    "is_default": gain.is_default,
                    "gain_same_prompt": c.delta if c else None,
                    "same_ci_low": c.ci_low if c else None,
                    "same_ci_high": c.ci_high if c else None,
                    "same_p_value": c.p_value if c else None,
                    "same_n_problems": c.n_problems if c else None,
                    "base_best_prompt": gain.base_best_template or "",
                    "gain_over_best": o.value if o else None,
                    "best_ci_low": o.ci_low if o else None,
                    "best_ci_high": o.ci_high if o else None,
                    "best_n_problems": gain.over_best_n_problems if o else None,
                    "treatment_value": gain.treatment_value,
                    "base_best_value": gain.base_best_value,
                }
            )
    return pd.DataFrame(rows, columns=GAIN_COLUMNS)


__all__ = [
    "GAIN_COLUMNS",
    "NO_PARSE_VERDICTS",
    "SPREAD_COLUMNS",
    "SWEEP_COLUMNS",
    "PromptGain",
    "SweepGroup",
    "TemplateScore",
    "build_sweep",
    "gains_frame",
    "parse_scores",
    "protocol_label",
    "spread_frame",
    "sweep_frame",
]
