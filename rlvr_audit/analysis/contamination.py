"""Partial-prompt contamination probe: scores, rates, comparisons and the report section.

"Reasoning or Memorization?" (arXiv 2507.10532) gives a model only the first part of a benchmark
problem and looks at what it writes: a model that has memorised the benchmark writes the rest of
the problem word for word, and may even answer it correctly from the part it was shown. This
module runs that probe on any checkpoint, through the same engines, store, graders and
statistics as every other evaluation.

The cut. A problem's text is split into words (maximal runs of non-whitespace). For a fraction
``p`` percent of a problem of ``n >= 2`` words the model gets the first ``k = floor(n * p / 100)``
words, clamped to ``[1, n - 1]``: the *prefix* is the text up to the end of word ``k`` (no trailing
whitespace; the model writes the space), the *remainder* is everything after it. Problems of fewer
than two words cannot be cut and are skipped (listed in the unit's :class:`ProbeInfo`).

Two probe kinds per fraction, each a stored unit of its own:

- ``completion``: the prefix alone, as a raw string (no chat template, no instruction), greedy,
  ``completion_max_new_tokens`` new tokens. Scored on the continuation:

  - **exact match**: the prefix followed by the continuation starts with the whole problem, after
    whitespace normalisation: every run of whitespace becomes one space and both ends are
    stripped (:func:`normalise`). Case, punctuation and LaTeX must match exactly, and so must the
    presence of whitespace (``x and`` is not ``xand``); what the model writes after the remainder
    (often a solution) is not judged.
  - **ROUGE-L**: the F-measure of the longest common subsequence between the remainder and the
    continuation cut to as many words as the remainder has (``rouge-score``'s ``rougeL``
    scorer: lower-cased, non-alphanumeric characters as separators, no stemming), so a
    continuation that goes on to solve the problem is not penalised for its length.
  - **answer in continuation**: the continuation graded against the gold answer by each grader
    (a model that recalls the problem often goes on to its answer).

- ``answer``: the prefix rendered with a prompt template (the checkpoint's default, or those given
  with ``--prompts``), greedy, the task's token limit: graded by each grader (**answer accuracy**:
  does the model answer correctly when asked from the truncated problem?).

Every rate is a mean over problems of a per-problem score (0/1, or ROUGE-L in [0, 1]) with an
interval over problems of ``ci_method`` (:mod:`rlvr_audit.analysis.stats`: Wilson with a cluster
design effect by default; a percentile or BCa bootstrap resamples problems on one plan per task,
fraction and problem set, seeded as :func:`rlvr_audit.analysis.estimates.plan_for`).
Comparisons are paired over the problems both units scored: each RLVR checkpoint against its base
model (``vs base``), and every two reference checkpoints (those without a base) against each other
(``cross-family`` when their families differ, ``same family`` otherwise), at the same task,
fraction, kind, prompt template and protocol. Each gets a paired interval; 0/1 metrics
get McNemar's exact test and Holm-adjusted p-values over the comparisons of the same metric and
grader. ROUGE-L comparisons get an interval only (the exact tests of :mod:`rlvr_audit.analysis.stats` are
for 0/1 outcomes).

Planning and storage are in :mod:`rlvr_audit.generation.probes`; the command is
:func:`rlvr_audit.api.run_contamination_probe`. Probe units live in the store's ``probes/`` folder,
laid out like the store itself
(``probes/units/<key>/unit.json``, ``probe.json``, ``generations.jsonl``, ``grades/<grader>.jsonl``,
``probes/problems/<data hash>.jsonl``), so normal reports, listings and analyses never mistake them
for evaluations. Generation and grading are :func:`rlvr_audit.generation.runner.generate_units` and
:func:`rlvr_audit.grading.runner.grade_units`: resumable (a re-run generates and grades only what is
missing), chunked, with progress bars.

Known issues: the probe is only as sharp as the fraction: at 80% the remainder can be a few words
that any model guesses; at 40% even a memorising model may take another path. Exact match needs
the model to reproduce LaTeX spacing conventions only up to whitespace runs. Reproduction by a
model that was trained on a paraphrase of the benchmark is measured only partly (ROUGE-L).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from ..core.records import ProbeInfo
from ..core.registry import Registry
from ..core.store import Store, UnitInfo
from ..generation.probes import cut_problem, probe_store, read_probe_info
from . import stats
from .estimates import apply_registry, grader_version, plan_for, rng_for

METRICS: dict[str, str] = {
    "exact_match": "Exact match of the rest",
    "rouge_l": "ROUGE-L of the rest",
    "answer_in_continuation": "Correct answer in the continuation",
    "answer_accuracy": "Correct answer when asked",
}
"""Metric id -> label. The first two need no grader; the last two are per grader."""

BINARY_METRICS = frozenset({"exact_match", "answer_in_continuation", "answer_accuracy"})
"""Metrics with 0/1 per-problem scores (they get an exact paired test)."""


# ---- the cut and the scores -------------------------------------------------------------------

_WORD = re.compile(r"\S+")
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Whitespace normalisation of the exact-match rule: runs of whitespace -> one space, ends stripped."""
    return _SPACE.sub(" ", text).strip()


def exact_match(question: str, prefix: str, continuation: str) -> bool:
    """Whether ``prefix + continuation`` starts with ``question`` after :func:`normalise`."""
    return normalise(prefix + continuation).startswith(normalise(question))


@lru_cache(maxsize=1)
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer  # heavy (pulls in nltk and scipy.stats, seconds): only when scoring

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l(remainder: str, continuation: str) -> float:
    """ROUGE-L F-measure of the remainder against the continuation cut to the remainder's word count."""
    n = len(remainder.split())
    if n == 0:
        return 0.0
    cut = " ".join(continuation.split()[:n])
    return float(_rouge_scorer().score(remainder, cut)["rougeL"].fmeasure)


@dataclass
class StoredProbe:
    """A probe unit read back from the store."""

    info: UnitInfo
    """Its ``unit.json`` (family, base and display names refreshed from the registry)."""
    probe: ProbeInfo
    """Its ``probe.json``."""


def stored_probes(
    store: Store, registry: Registry | None = None, keys: Sequence[str] | None = None
) -> list[StoredProbe]:
    """Every probe unit of ``store`` (or those of ``keys``) that has a ``probe.json``."""
    pstore = probe_store(store)
    wanted = set(keys) if keys is not None else None
    out = []
    for key in pstore.unit_keys():
        if wanted is not None and key not in wanted:
            continue
        if not (pstore.unit_dir(key) / "probe.json").is_file():
            continue
        out.append(
            StoredProbe(info=apply_registry(pstore.load_unit(key), registry), probe=read_probe_info(pstore, key))
        )
    return out


# ---- analysis ---------------------------------------------------------------------------------


@dataclass
class ProbeScores:
    """One probe unit's per-problem scores for one metric (and grader)."""

    unit: StoredProbe
    """The unit."""
    metric: str
    """Metric id (see :data:`METRICS`)."""
    grader_id: str
    """Grader of a graded metric; ``""`` for exact match and ROUGE-L."""
    problem_ids: list[str]
    """Problems scored, in task order."""
    scores: np.ndarray
    """Per-problem score, aligned with :attr:`problem_ids`."""


@dataclass(frozen=True)
class ProbeEstimate:
    """A probe rate with its interval, for one unit, metric and grader."""

    checkpoint_id: str
    """Checkpoint probed."""
    family: str
    """Its family (from the registry)."""
    base: str | None
    """Its base checkpoint, if it is an RLVR checkpoint."""
    task: str
    """Task id."""
    task_display: str
    """Task display name."""
    percent: int
    """Share of each problem's words shown, in percent."""
    kind: str
    """``completion`` or ``answer``."""
    template_id: str
    """Prompt template of an ``answer`` probe; ``raw`` for ``completion``."""
    metric: str
    """Metric id (see :data:`METRICS`)."""
    grader_id: str
    """Grader of ``answer_*`` metrics; ``""`` for exact match and ROUGE-L."""
    value: float
    """Mean per-problem score, a fraction in [0, 1]."""
    ci_low: float
    """Lower end of the bootstrap interval."""
    ci_high: float
    """Upper end of the bootstrap interval."""
    se: float | None
    """Bootstrap standard error."""
    level: float
    """Confidence level."""
    method: str
    """Interval method, e.g. ``bootstrap-percentile(problems)``."""
    n_problems: int
    """Problems scored."""
    seed: int
    """Bootstrap seed."""
    unit_key: str
    """Key of the probe unit."""


@dataclass(frozen=True)
class ProbeComparison:
    """A paired difference ``treatment - baseline`` of one probe metric over the same problems."""

    baseline: str
    """Checkpoint id of the baseline (the base model, or the first reference checkpoint by id)."""
    treatment: str
    """Checkpoint id of the treatment."""
    relation: str
    """``vs base``, ``cross-family`` or ``same family``."""
    task: str
    """Task id."""
    percent: int
    """Share of each problem shown, in percent."""
    kind: str
    """``completion`` or ``answer``."""
    template_id: str
    """Prompt template (``raw`` for ``completion``)."""
    metric: str
    """Metric id."""
    grader_id: str
    """Grader (``""`` for exact match and ROUGE-L)."""
    baseline_value: float
    """Baseline's mean over the shared problems."""
    treatment_value: float
    """Treatment's mean over the shared problems."""
    delta: float
    """``treatment_value - baseline_value``."""
    ci_low: float
    """Lower end of the paired bootstrap interval."""
    ci_high: float
    """Upper end of the paired bootstrap interval."""
    se: float | None
    """Bootstrap standard error of ``delta``."""
    p_value: float | None
    """McNemar's exact two-sided p-value (0/1 metrics); ``None`` for ROUGE-L."""
    p_holm: float | None
    """``p_value`` Holm-adjusted over the comparisons of the same metric and grader."""
    test: str
    """The test behind ``p_value`` (``mcnemar-exact``), or ``""``."""
    n_problems: int
    """Problems both sides scored."""
    level: float
    """Confidence level."""
    method: str
    """Interval method."""
    seed: int
    """Bootstrap seed."""
    baseline_unit: str
    """Probe unit key of the baseline."""
    treatment_unit: str
    """Probe unit key of the treatment."""


@dataclass
class ProbeAnalysis:
    """Rates and comparisons of the probe units of a store."""

    estimates: list[ProbeEstimate] = field(default_factory=list)
    """One per unit, metric and grader."""
    comparisons: list[ProbeComparison] = field(default_factory=list)
    """Paired comparisons (see the module docstring)."""
    graders: list[str] = field(default_factory=list)
    """Graders that graded some probe unit."""
    level: float = 0.95
    """Confidence level of every interval."""
    n_resamples: int = 10_000
    """Bootstrap resamples."""
    seed: int = 0
    """Bootstrap seed."""
    ci_method: str = stats.DEFAULT_CI_METHOD
    """Interval method (one of :data:`rlvr_audit.analysis.stats.CI_METHODS`)."""


def unit_scores(store: Store, unit: StoredProbe, graders: Sequence[str]) -> list[ProbeScores]:
    """Per-problem scores of one probe unit: exact match and ROUGE-L (``completion``) and, per
    grader with grades of its current version, correctness of the answer."""
    pstore = probe_store(store)
    key = unit.info.key
    gens = {g.problem_id: g for g in pstore.read_generations(key) if g.sample_idx == 0}
    order = [p.problem_id for p in pstore.load_problems(unit.info.spec.data_hash)]
    out: list[ProbeScores] = []
    if unit.probe.kind == "completion" and gens:
        full = {p.problem_id: p for p in store.load_problems(unit.probe.source_data_hash)}
        ids = [pid for pid in order if pid in gens and pid in full]
        em, rl = [], []
        for pid in ids:
            question = full[pid].question
            cut = cut_problem(question, unit.probe.percent)
            assert cut is not None  # the unit holds only problems that could be cut
            completion = gens[pid].completion
            em.append(1.0 if exact_match(question, cut.prefix, completion) else 0.0)
            rl.append(rouge_l(cut.remainder, completion))
        if ids:
            out.append(ProbeScores(unit, "exact_match", "", ids, np.array(em)))
            out.append(ProbeScores(unit, "rouge_l", "", ids, np.array(rl)))
    metric = "answer_in_continuation" if unit.probe.kind == "completion" else "answer_accuracy"
    for grader_id in graders:
        grades = {
            g.problem_id: g.verdict == "correct"
            for g in pstore.read_grades(key, grader_id, grader_version(grader_id))
            if g.sample_idx == 0
        }
        ids = [pid for pid in order if pid in grades and pid in gens]
        if ids:
            out.append(ProbeScores(unit, metric, grader_id, ids, np.array([float(grades[p]) for p in ids])))
    return out


def _setting(s: ProbeScores) -> tuple[object, ...]:
    """Units with equal settings can be compared: same task version, fraction, kind, template,
    protocol, engine, metric and grader."""
    spec = s.unit.info.spec
    return (spec.task, spec.data_hash, spec.template_hash, spec.protocol, spec.backend, s.metric, s.grader_id)


def analyse_probes(
    store: Store,
    *,
    registry: Registry | None = None,
    keys: Sequence[str] | None = None,
    graders: Sequence[str] | None = None,
    seed: int = 0,
    n_resamples: int = 10_000,
    level: float = 0.95,
    ci_method: str = stats.DEFAULT_CI_METHOD,
) -> ProbeAnalysis:
    """Rates with intervals and paired comparisons of the probe units (see the module docstring).

    ``graders``: graders whose grades enter (default: every grader that graded a probe unit)."""
    stats.check_bootstrap_options(n_resamples=n_resamples, level=level, method=ci_method)
    units = stored_probes(store, registry, keys)
    pstore = probe_store(store)
    found = sorted({g for u in units for g in pstore.graders(u.info.key)})
    use = [g for g in (graders if graders is not None else found) if g in found]
    result = ProbeAnalysis(graders=use, level=level, n_resamples=n_resamples, seed=seed, ci_method=ci_method)
    all_scores = [s for u in units for s in unit_scores(store, u, use)]

    def plan(s: ProbeScores, ids: Sequence[str]) -> stats.ResamplingPlan:
        return plan_for(seed, s.unit.info.spec.data_hash, tuple(ids), n_resamples)

    for s in all_scores:
        iv = plan(s, s.problem_ids).intervals_from_scores(s.scores, level=level, method=ci_method).units[0]
        u, spec = s.unit, s.unit.info.spec
        result.estimates.append(
            ProbeEstimate(
                checkpoint_id=spec.checkpoint.checkpoint_id,
                family=u.info.family,
                base=u.info.base,
                task=spec.task,
                task_display=u.info.task_display or spec.task,
                percent=u.probe.percent,
                kind=u.probe.kind,
                template_id=u.probe.template_id,
                metric=s.metric,
                grader_id=s.grader_id,
                value=iv.value,
                ci_low=iv.ci_low,
                ci_high=iv.ci_high,
                se=iv.se,
                level=level,
                method=iv.method,
                n_problems=len(s.problem_ids),
                seed=seed,
                unit_key=spec.key,
            )
        )
    groups: dict[tuple[object, ...], list[ProbeScores]] = {}
    for s in all_scores:
        groups.setdefault(_setting(s), []).append(s)
    comparisons: list[ProbeComparison] = []
    for members in groups.values():
        by_ck = {m.unit.info.spec.checkpoint.checkpoint_id: m for m in members}
        pairs: list[tuple[ProbeScores, ProbeScores, str]] = []
        for m in members:
            base = m.unit.info.base
            if base is not None and base in by_ck:
                pairs.append((by_ck[base], m, "vs base"))
        refs = sorted((m for m in members if m.unit.info.base is None), key=lambda m: _ck(m))
        for i, a in enumerate(refs):
            for b in refs[i + 1 :]:
                relation = "cross-family" if a.unit.info.family != b.unit.info.family else "same family"
                pairs.append((a, b, relation))
        for b, t, relation in pairs:
            comparisons.append(_compare(b, t, relation, plan, rng_for, seed, n_resamples, level, ci_method))
    result.comparisons = _holm(comparisons)
    return result


def _ck(s: ProbeScores) -> str:
    return s.unit.info.spec.checkpoint.checkpoint_id


def _compare(
    b: ProbeScores,
    t: ProbeScores,
    relation: str,
    plan: Callable[[ProbeScores, Sequence[str]], stats.ResamplingPlan],
    rng: Callable[..., np.random.Generator],
    seed: int,
    n_resamples: int,
    level: float,
    ci_method: str,
) -> ProbeComparison:
    b_row = {pid: i for i, pid in enumerate(b.problem_ids)}
    shared = [pid for pid in t.problem_ids if pid in b_row]
    t_row = {pid: i for i, pid in enumerate(t.problem_ids)}
    bs = b.scores[[b_row[p] for p in shared]] if shared else np.zeros(0)
    ts = t.scores[[t_row[p] for p in shared]] if shared else np.zeros(0)
    spec_b, spec_t = b.unit.info.spec, t.unit.info.spec
    if not shared:
        nan = float("nan")
        iv = stats.Interval(nan, nan, nan, level, "no shared problems")
        p_value, test = None, ""
        bv = tv = nan
    else:
        iv = (
            plan(t, shared)
            .intervals_from_scores(np.stack([bs, ts], axis=1), pairs=[(0, 1)], level=level, method=ci_method)
            .pairs[0]
        )
        bv, tv = float(bs.mean()), float(ts.mean())
        p_value, test = None, ""
        if t.metric in BINARY_METRICS:
            res = stats.paired_test(
                bs[:, None] > 0.5, ts[:, None] > 0.5, rng=rng(seed, spec_b.key, spec_t.key), n_resamples=n_resamples
            )
            p_value, test = res.p_value, res.test
    return ProbeComparison(
        baseline=spec_b.checkpoint.checkpoint_id,
        treatment=spec_t.checkpoint.checkpoint_id,
        relation=relation,
        task=spec_t.task,
        percent=t.unit.probe.percent,
        kind=t.unit.probe.kind,
        template_id=t.unit.probe.template_id,
        metric=t.metric,
        grader_id=t.grader_id,
        baseline_value=bv,
        treatment_value=tv,
        delta=iv.value,
        ci_low=iv.ci_low,
        ci_high=iv.ci_high,
        se=iv.se,
        p_value=p_value,
        p_holm=None,
        test=test,
        n_problems=len(shared),
        level=level,
        method=iv.method,
        seed=seed,
        baseline_unit=spec_b.key,
        treatment_unit=spec_t.key,
    )


def _holm(comparisons: list[ProbeComparison]) -> list[ProbeComparison]:
    """Holm-adjust the p-values over the comparisons of the same metric and grader."""
    out = list(comparisons)
    families: dict[tuple[str, str], list[int]] = {}
    for i, c in enumerate(out):
        if c.p_value is not None:
            families.setdefault((c.metric, c.grader_id), []).append(i)
    for idx in families.values():
        adjusted = stats.holm(np.array([out[i].p_value for i in idx], dtype=np.float64))
        for i, p in zip(idx, adjusted, strict=True):
            out[i] = replace(out[i], p_holm=float(p))
    return out


# ---- tables, section, figure ------------------------------------------------------------------

RATE_COLUMNS = [
    "checkpoint",
    "family",
    "base",
    "task",
    "percent",
    "kind",
    "prompt",
    "metric",
    "grader",
    "value",
    "ci_low",
    "ci_high",
    "se",
    "n_problems",
    "level",
    "method",
    "seed",
    "unit_key",
]
"""Columns of ``tables/contamination_rates.csv`` (rates as fractions)."""

COMPARISON_COLUMNS = [
    "baseline",
    "treatment",
    "relation",
    "task",
    "percent",
    "kind",
    "prompt",
    "metric",
    "grader",
    "baseline_value",
    "treatment_value",
    "delta",
    "ci_low",
    "ci_high",
    "se",
    "p_value",
    "p_holm",
    "test",
    "n_problems",
    "level",
    "method",
    "seed",
    "baseline_unit",
    "treatment_unit",
]
"""Columns of ``tables/contamination_comparisons.csv`` (differences as fractions)."""


def rates_frame(analysis: ProbeAnalysis) -> pd.DataFrame:
    """The rates as a frame with :data:`RATE_COLUMNS`."""
    rows = [
        {
            "checkpoint": e.checkpoint_id,
            "family": e.family,
            "base": e.base or "",
            "task": e.task,
            "percent": e.percent,
            "kind": e.kind,
            "prompt": e.template_id,
            "metric": e.metric,
            "grader": e.grader_id,
            "value": e.value,
            "ci_low": e.ci_low,
            "ci_high": e.ci_high,
            "se": e.se,
            "n_problems": e.n_problems,
            "level": e.level,
            "method": e.method,
            "seed": e.seed,
            "unit_key": e.unit_key,
        }
        for e in analysis.estimates
    ]
    return pd.DataFrame(rows, columns=RATE_COLUMNS)


def comparisons_frame(analysis: ProbeAnalysis) -> pd.DataFrame:
    """The comparisons as a frame with :data:`COMPARISON_COLUMNS`."""
    rows = [
        {
            "baseline": c.baseline,
            "treatment": c.treatment,
            "relation": c.relation,
            "task": c.task,
            "percent": c.percent,
            "kind": c.kind,
            "prompt": c.template_id,
            "metric": c.metric,
            "grader": c.grader_id,
            "baseline_value": c.baseline_value,
            "treatment_value": c.treatment_value,
            "delta": c.delta,
            "ci_low": c.ci_low,
            "ci_high": c.ci_high,
            "se": c.se,
            "p_value": c.p_value,
            "p_holm": c.p_holm,
            "test": c.test,
            "n_problems": c.n_problems,
            "level": c.level,
            "method": c.method,
            "seed": c.seed,
            "baseline_unit": c.baseline_unit,
            "treatment_unit": c.treatment_unit,
        }
        for c in analysis.comparisons
    ]
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


__all__ = [
    "METRICS",
    "ProbeAnalysis",
    "ProbeComparison",
    "ProbeEstimate",
    "StoredProbe",
    "analyse_probes",
    "comparisons_frame",
    "exact_match",
    "normalise",
    "rates_frame",
    "rouge_l",
    "stored_probes",
]
