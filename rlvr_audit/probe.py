"""Partial-prompt contamination probe (``rlvr-audit probe contamination``).

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
interval over problems of ``ci_method`` (:mod:`rlvr_audit.stats`: Wilson with a cluster design
effect by default; a percentile or BCa bootstrap resamples problems on one plan per task,
fraction and problem set, seeded as :func:`rlvr_audit.analyse.plan_for`).
Comparisons are paired over the problems both units scored: each RLVR checkpoint against its base
model (``vs base``), and every two reference checkpoints (those without a base) against each other
(``cross-family`` when their families differ, ``same family`` otherwise), at the same task,
fraction, kind, prompt template and protocol. Each gets a paired interval; 0/1 metrics
get McNemar's exact test and Holm-adjusted p-values over the comparisons of the same metric and
grader. ROUGE-L comparisons get an interval only (the exact tests of :mod:`rlvr_audit.stats` are
for 0/1 outcomes).

Storage. Probe units live in the store's ``probes/`` folder, laid out like the store itself
(``probes/units/<key>/unit.json``, ``probe.json``, ``generations.jsonl``, ``grades/<grader>.jsonl``,
``probes/problems/<data hash>.jsonl``), so normal reports, listings and analyses never mistake them
for evaluations. Their key is a normal :class:`~rlvr_audit.records.UnitSpec` key whose template id
and hash include the probe kind, the fraction, the probe version and the full task's data hash.
Generation and grading are :func:`rlvr_audit.generate.generate_units` and
:func:`rlvr_audit.grade.grade_units`: resumable (a re-run generates and grades only what is
missing), chunked, with progress bars.

Known issues: the probe is only as sharp as the fraction: at 80% the remainder can be a few words
that any model guesses; at 40% even a memorising model may take another path. Exact match needs
the model to reproduce LaTeX spacing conventions only up to whitespace runs. Reproduction by a
model that was trained on a paraphrase of the benchmark is measured only partly (ROUGE-L).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import stats
from .errors import StoreError, UsageError
from .records import ProbeInfo, Problem, SamplingProtocol, UnitSpec, stable_hash
from .store import Store, UnitInfo

if TYPE_CHECKING:
    from .audit import EngineOptions, GradeOptions, Locations, ReportOptions
    from .plan import PlannedUnit, Selection
    from .registry import Registry
    from .report import ReportPart

PROBE_VERSION = 1
"""Version of the cut and scoring rules; part of every probe unit's key."""

DEFAULT_PERCENTS = (40, 60, 80)
"""Fractions of each problem given to the model, in percent."""

KINDS: tuple[str, ...] = ("completion", "answer")
"""Probe kinds (see the module docstring)."""

PROBE_DIR = "probes"
"""Folder of the probe units inside a store."""

RAW = "raw"
"""Template id recorded for ``completion`` probes (the prefix is sent as it is)."""

DEFAULT_COMPLETION_TOKENS = 512
"""New-token limit of ``completion`` probes."""

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


@dataclass(frozen=True)
class Cut:
    """A problem cut at a fraction of its words."""

    prefix: str
    """The first ``words_kept`` words, as in the original text, without trailing whitespace."""
    remainder: str
    """The rest of the text (starts with the whitespace that followed the prefix)."""
    words_kept: int
    """Words in the prefix."""
    words_total: int
    """Words in the problem."""


def check_percent(percent: object) -> int:
    """``percent`` as an int in 1..99, or a :class:`UsageError` naming ``--percents`` and the range."""
    if isinstance(percent, bool) or not isinstance(percent, (int, np.integer)):
        raise UsageError(f"--percents must be whole numbers strictly between 0 and 100, got {percent!r}")
    if not 0 < int(percent) < 100:
        raise UsageError(f"--percents must be strictly between 0 and 100 (exclusive), got {percent}")
    return int(percent)


def cut_problem(text: str, percent: int) -> Cut | None:
    """Cut ``text`` after ``floor(n * percent / 100)`` of its ``n`` words (clamped to
    ``[1, n - 1]``); ``None`` for a text of fewer than two words."""
    p = check_percent(percent)
    words = list(_WORD.finditer(text))
    n = len(words)
    if n < 2:
        return None
    k = min(max(n * p // 100, 1), n - 1)
    end = words[k - 1].end()
    return Cut(prefix=text[:end], remainder=text[end:], words_kept=k, words_total=n)


def normalise(text: str) -> str:
    """Whitespace normalisation of the exact-match rule: runs of whitespace -> one space, ends stripped."""
    return _SPACE.sub(" ", text).strip()


def exact_match(question: str, prefix: str, continuation: str) -> bool:
    """Whether ``prefix + continuation`` starts with ``question`` after :func:`normalise`."""
    return normalise(prefix + continuation).startswith(normalise(question))


@lru_cache(maxsize=1)
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l(remainder: str, continuation: str) -> float:
    """ROUGE-L F-measure of the remainder against the continuation cut to the remainder's word count."""
    n = len(remainder.split())
    if n == 0:
        return 0.0
    cut = " ".join(continuation.split()[:n])
    return float(_rouge_scorer().score(remainder, cut)["rougeL"].fmeasure)


# ---- planning ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeOptions:
    """What to probe."""

    percents: tuple[int, ...] = DEFAULT_PERCENTS
    """Fractions of each problem, in percent (each in 1..99)."""
    kinds: tuple[str, ...] = KINDS
    """Probe kinds to run (``completion``, ``answer``)."""
    completion_max_new_tokens: int = DEFAULT_COMPLETION_TOKENS
    """New-token limit of ``completion`` probes."""
    answer_max_new_tokens: int | None = None
    """New-token limit of ``answer`` probes (``None``: the task's)."""
    seed: int = 0
    """Base sampling seed (greedy decoding does not use it; it is part of the key all the same)."""


def check_options(options: ProbeOptions) -> None:
    """Validate probe options before anything is loaded or written."""
    if not options.percents:
        raise UsageError("--percents is empty; give fractions strictly between 0 and 100, e.g. 40,60,80")
    seen: set[int] = set()
    for p in options.percents:
        if check_percent(p) in seen:
            raise UsageError(f"--percents lists {p} twice")
        seen.add(int(p))
    if not options.kinds:
        raise UsageError(f"--kinds is empty; valid kinds: {', '.join(KINDS)}")
    for kind in options.kinds:
        if kind not in KINDS:
            raise UsageError(f"unknown probe kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    if options.completion_max_new_tokens < 1:
        raise UsageError(f"--completion-max-new-tokens must be >= 1, got {options.completion_max_new_tokens}")
    if options.answer_max_new_tokens is not None and options.answer_max_new_tokens < 1:
        raise UsageError(f"--max-new-tokens must be >= 1, got {options.answer_max_new_tokens}")


@dataclass
class PlannedProbe:
    """A planned probe unit: the unit to generate and what it probes."""

    unit: PlannedUnit
    """The unit (its problems are the cut problems)."""
    probe: ProbeInfo
    """Kind, fraction, source task version."""
    source: list[Problem] = field(repr=False)
    """The full problems of the task, before the cut (stored for scoring)."""


def _raw_template() -> Any:
    from .prompts import PromptTemplate

    return PromptTemplate(
        description="Partial-prompt probe: the first part of the problem, sent as it is.",
        chat=False,
        text="{question}",
    )


def cut_problems(problems: Sequence[Problem], percent: int) -> tuple[list[Problem], list[str]]:
    """The problems cut at ``percent`` (question = prefix; the remainder in ``metadata``) and the
    ids of those too short to cut."""
    out: list[Problem] = []
    skipped: list[str] = []
    for p in problems:
        cut = cut_problem(p.question, percent)
        if cut is None:
            skipped.append(p.problem_id)
            continue
        meta = {
            **p.metadata,
            "probe_percent": percent,
            "probe_remainder": cut.remainder,
            "probe_words": [cut.words_kept, cut.words_total],
        }
        out.append(p.model_copy(update={"question": cut.prefix, "metadata": meta}))
    return out, skipped


def plan_probes(
    selection: Selection,
    options: ProbeOptions,
    engine: EngineOptions,
    loc: Locations,
) -> list[PlannedProbe]:
    """Validate everything and plan the probe units (no model is loaded, nothing is written).

    The grid of :func:`rlvr_audit.plan.plan` (checkpoints with their bases, tasks, answer
    templates) gives each checkpoint x task one ``completion`` unit per fraction and each
    checkpoint x task x template one ``answer`` unit per fraction."""
    from .audit import plan_units
    from .plan import PlannedUnit, ProtocolOverrides

    check_options(options)
    overrides = ProtocolOverrides(
        samples=1, temperature=0.0, max_new_tokens=options.answer_max_new_tokens, seed=options.seed
    )
    grid = plan_units(selection, overrides, engine, loc)
    raw = _raw_template()
    out: list[PlannedProbe] = []
    cuts: dict[tuple[str, int], tuple[list[Problem], list[str]]] = {}
    done_completion: set[tuple[str, str]] = set()
    for unit in grid:
        source_hash = unit.spec.data_hash
        for percent in options.percents:
            key = (source_hash, percent)
            if key not in cuts:
                cuts[key] = cut_problems(unit.problems, percent)
                if not cuts[key][0]:
                    raise UsageError(
                        f"task {unit.task.task!r} has no problem of two or more words to cut at {percent}%"
                    )
            problems, skipped = cuts[key]
            for kind in options.kinds:
                if kind == "completion":
                    pair = (unit.checkpoint.checkpoint_id, f"{source_hash}/{percent}")
                    if pair in done_completion:
                        continue  # one completion unit per checkpoint, task and fraction
                    done_completion.add(pair)
                    template, template_id = raw, RAW
                    protocol = unit.spec.protocol.model_copy(
                        update={"max_new_tokens": options.completion_max_new_tokens}
                    )
                else:
                    template, template_id = unit.template, unit.spec.template_id
                    protocol = unit.spec.protocol
                spec = _probe_spec(unit.spec, kind, percent, template_id, template.template_hash, problems, protocol)
                info = unit.info.model_copy(update={"key": spec.key, "spec": spec, "n_problems_total": len(problems)})
                probe = ProbeInfo(
                    kind=kind,  # type: ignore[arg-type]  # validated by check_options
                    percent=percent,
                    version=PROBE_VERSION,
                    unit_key=spec.key,
                    source_data_hash=source_hash,
                    template_id=template_id,
                    skipped=skipped,
                )
                planned = PlannedUnit(
                    info=info, checkpoint=unit.checkpoint, task=unit.task, template=template, problems=problems
                )
                out.append(PlannedProbe(unit=planned, probe=probe, source=unit.problems))
    return out


def probe_template_id(kind: str, percent: int, template_id: str) -> str:
    """The template id a probe unit is stored under, e.g. ``contamination/completion/p60/raw``."""
    return f"contamination/{kind}/p{percent}/{template_id}"


def _probe_spec(
    base: UnitSpec,
    kind: str,
    percent: int,
    template_id: str,
    template_hash: str,
    problems: list[Problem],
    protocol: SamplingProtocol,
) -> UnitSpec:
    from .tasks import data_hash

    return base.model_copy(
        update={
            "data_hash": data_hash(problems),
            "template_id": probe_template_id(kind, percent, template_id),
            "template_hash": stable_hash(
                {
                    "probe": "contamination",
                    "version": PROBE_VERSION,
                    "kind": kind,
                    "percent": percent,
                    "template_hash": template_hash,
                    "source_data_hash": base.data_hash,
                }
            ),
            "protocol": protocol,
        }
    )


# ---- the probe store --------------------------------------------------------------------------


def probe_store(store: Store) -> Store:
    """The store of probe units inside ``store`` (its ``probes/`` folder)."""
    return store.substore(PROBE_DIR)


def write_probe_info(pstore: Store, probe: ProbeInfo) -> None:
    """Write ``probe.json`` of a probe unit (atomically; an existing one must agree)."""
    path = pstore.unit_dir(probe.unit_key) / "probe.json"
    if path.exists():
        current = read_probe_info(pstore, probe.unit_key)
        if current == probe:
            return
        if current.model_copy(update={"skipped": probe.skipped}) != probe:
            raise StoreError(f"{path}: describes another probe than key {probe.unit_key}; the store is inconsistent")
    pstore.write_text(path, probe.model_dump_json(indent=2) + "\n", f"writing probe unit {probe.unit_key}")


def read_probe_info(pstore: Store, key: str) -> ProbeInfo:
    """Read ``probe.json`` of a probe unit."""
    path = pstore.unit_dir(key) / "probe.json"
    try:
        return ProbeInfo.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise StoreError(f"{path}: missing (probe unit {key} has no probe.json)") from exc
    except ValueError as exc:
        raise StoreError(f"{path}: not a valid probe file: {exc}") from exc


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
    from .analyse import apply_registry

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
    """Interval method (one of :data:`rlvr_audit.stats.CI_METHODS`)."""


def unit_scores(store: Store, unit: StoredProbe, graders: Sequence[str]) -> list[ProbeScores]:
    """Per-problem scores of one probe unit: exact match and ROUGE-L (``completion``) and, per
    grader with grades of its current version, correctness of the answer."""
    from .analyse import grader_version

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
    from .analyse import _rng, plan_for

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
            comparisons.append(_compare(b, t, relation, plan, _rng, seed, n_resamples, level, ci_method))
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
    from dataclasses import replace

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


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _cell(e: ProbeEstimate) -> str:
    return f"{_pct(e.value)} [{_pct(e.ci_low)}, {_pct(e.ci_high)}]"


def _columns(analysis: ProbeAnalysis) -> list[tuple[str, str]]:
    """Rate table columns: (metric, grader) in a fixed order."""
    cols: list[tuple[str, str]] = []
    for metric in METRICS:
        for e in analysis.estimates:
            if e.metric == metric and (metric, e.grader_id) not in cols:
                cols.append((metric, e.grader_id))
    return cols


def _column_label(col: tuple[str, str], *, with_grader: bool = True) -> str:
    metric, grader = col
    return METRICS[metric] + (f" (`{grader}`)" if grader and with_grader else "")


def rates_rows(analysis: ProbeAnalysis) -> tuple[list[str], list[list[str]]]:
    """The rate table as a header and rows of text: one row per checkpoint, task, fraction and
    answer template (the ``completion`` rates repeat on each template's row), one column per
    metric and grader; cells ``rate [CI]`` in %."""
    cols = _columns(analysis)
    with_grader = len(analysis.graders) > 1
    shared: dict[tuple[str, str, int], dict[tuple[str, str], ProbeEstimate]] = {}
    answer: dict[tuple[str, str, int], dict[str, dict[tuple[str, str], ProbeEstimate]]] = {}
    for e in analysis.estimates:
        key = (e.checkpoint_id, e.task_display, e.percent)
        if e.kind == "answer":
            answer.setdefault(key, {}).setdefault(e.template_id, {})[(e.metric, e.grader_id)] = e
        else:
            shared.setdefault(key, {})[(e.metric, e.grader_id)] = e
    header = ["Checkpoint", "Task", "Shown", "Prompt", *(_column_label(c, with_grader=with_grader) for c in cols)]
    header.append("Problems")
    rows = []
    for key in sorted({*shared, *answer}, key=lambda k: (k[1], k[0], k[2])):
        ck, task, percent = key
        for template, asked in (answer.get(key) or {"-": {}}).items():
            row = {**shared.get(key, {}), **asked}
            n = max(e.n_problems for e in row.values())
            cells = [_cell(row[c]) if c in row else "" for c in cols]
            rows.append([ck, task, f"{percent}%", template, *cells, str(n)])
    return header, rows


def rates_table(analysis: ProbeAnalysis) -> str:
    """Markdown of :func:`rates_rows`."""
    header, rows = rates_rows(analysis)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([*r[:3], f"`{r[3]}`" if r[3] != "-" else "-", *r[4:]]) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def comparisons_table(analysis: ProbeAnalysis) -> str:
    """Markdown: every paired comparison."""
    lines = [
        "| Treatment | Baseline | Relation | Task | Shown | Prompt | Metric | Difference (points) | p | p (Holm) "
        "| Problems |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in analysis.comparisons:
        label = _column_label((c.metric, c.grader_id))
        diff = f"{100 * c.delta:+.1f} [{100 * c.ci_low:+.1f}, {100 * c.ci_high:+.1f}]"
        p = "-" if c.p_value is None else f"{c.p_value:.3g}"
        p_holm = "-" if c.p_holm is None else f"{c.p_holm:.3g}"
        lines.append(
            f"| {c.treatment} | {c.baseline} | {c.relation} | {c.task} | {c.percent}% | `{c.template_id}` | {label} | "
            f"{diff} | "
            f"{p} | {p_holm} | {c.n_problems} |"
        )
    return "\n".join(lines) + "\n"


def figure_name(task: str) -> str:
    """File name (under ``figures/``) of a task's probe figure."""
    return "contamination_" + (re.sub(r"[^A-Za-z0-9_-]+", "_", task) or "task") + ".png"


def probe_figure(analysis: ProbeAnalysis, task: str, path: Path) -> Path | None:
    """Rates against the fraction shown, one panel per metric column, one line per checkpoint
    (points at the estimates, bars over their intervals); ``None`` when the task has no rates."""
    from .figures import _pyplot

    est = [e for e in analysis.estimates if e.task == task]
    if not est:
        return None
    cols = [c for c in _columns(analysis) if any(_col_of(e) == c for e in est)]
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(cols), figsize=(max(5.0, 3.8 * len(cols)), 3.4), squeeze=False)
    checkpoints = list(dict.fromkeys(e.checkpoint_id for e in est))
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]
    for ax, col in zip(axes[0], cols, strict=True):
        lines = list(dict.fromkeys((e.checkpoint_id, e.template_id) for e in est if _col_of(e) == col))
        for ck, template in lines:
            i = checkpoints.index(ck)
            pts = sorted(
                (e for e in est if (e.checkpoint_id, e.template_id) == (ck, template) and _col_of(e) == col),
                key=lambda e: e.percent,
            )
            several = sum(1 for c, _ in lines if c == ck) > 1
            label = f"{ck} · {template}" if several else ck
            x = [e.percent + 0.8 * (i - (len(checkpoints) - 1) / 2) for e in pts]  # side by side
            y = [100 * e.value for e in pts]
            lo = [100 * (e.value - e.ci_low) for e in pts]
            hi = [100 * (e.ci_high - e.value) for e in pts]
            ax.errorbar(x, y, yerr=[lo, hi], marker="o", capsize=3, label=label, color=palette[i % len(palette)])
        ax.set_title(_column_label(col).replace("`", ""), fontsize=9)
        ax.set_xlabel("share of the problem shown (%)")
        ax.set_ylim(-2, 102)
        ax.set_xticks(sorted({e.percent for e in est}))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("rate (%)")
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.suptitle(f"Partial-prompt contamination probe: {est[0].task_display}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _col_of(e: ProbeEstimate) -> tuple[str, str]:
    return (e.metric, e.grader_id)


def probe_section(analysis: ProbeAnalysis, figures_dir: str = "figures") -> str:
    """The report's contamination section (Markdown with its ``##`` heading)."""
    from .html import MEASURED_HOOK

    lvl = round(analysis.level * 100)
    parts = [
        "## Contamination probe: partial prompts\n",
        "Each problem cut after the given share of its words and given to the model (greedy). "
        "**Exact match of the rest**: the raw first part, continued by the model, reproduces the rest of "
        "the problem word for word (whitespace runs collapsed; case, punctuation and LaTeX exact). "
        "**ROUGE-L of the rest**: overlap of that continuation (cut to the rest's length in words) with "
        "the rest. **Correct answer in the continuation**: that same continuation graded. **Correct answer "
        "when asked**: the first part under the prompt template, graded. A model that has not seen the "
        "benchmark rarely reproduces the rest, and rarely answers a problem it was only partly shown "
        f"(see 'Reasoning or Memorization?', arXiv 2507.10532). Rates in % with {lvl}% "
        f"{stats.CI_METHOD_TEXT[analysis.ci_method]} ({analysis.n_resamples} resamples, seed {analysis.seed}, "
        "where resampled).\n",
        MEASURED_HOOK + "\n",
        rates_table(analysis),
    ]
    for task in dict.fromkeys(e.task for e in analysis.estimates):
        display = next(e.task_display for e in analysis.estimates if e.task == task)
        parts.append(f"![Contamination probe, {display}]({figures_dir}/{figure_name(task)})\n")
    if analysis.comparisons:
        parts.append(
            "Paired comparisons over the problems both sides scored: each RLVR checkpoint against its base, "
            "every two reference checkpoints against each other (across families). Difference in points "
            "with a paired interval; p: McNemar's exact test (0/1 metrics only), Holm-adjusted over "
            "the comparisons of the same metric and grader.\n"
        )
        parts.append(MEASURED_HOOK + "\n")
        parts.append(comparisons_table(analysis))
    parts.append(
        "Tables: [`tables/contamination_rates.csv`](tables/contamination_rates.csv), "
        "[`tables/contamination_comparisons.csv`](tables/contamination_comparisons.csv).\n"
    )
    return "\n".join(parts)


def probe_part(analysis: ProbeAnalysis) -> ReportPart | None:
    """The report part (section, two tables, one figure per task); ``None`` without probe rates."""
    from .report import ReportPart

    if not analysis.estimates:
        return None

    def drawer(task: str) -> Callable[[Path], object]:
        return lambda path: probe_figure(analysis, task, path)

    tasks = list(dict.fromkeys(e.task for e in analysis.estimates))
    return ReportPart(
        section=probe_section(analysis),
        tables={
            "contamination_rates.csv": rates_frame(analysis),
            "contamination_comparisons.csv": comparisons_frame(analysis),
        },
        figures={figure_name(t): drawer(t) for t in tasks},
    )


def has_probe_units(store: Store) -> bool:
    """Whether the store holds contamination probe units (in its ``probes/`` folder)."""
    return (store.root / PROBE_DIR / "units").is_dir()


def report_part(
    store: Store,
    *,
    registry: Registry | None,
    graders: Sequence[str] | None,
    seed: int,
    n_resamples: int,
    level: float,
    ci_method: str,
) -> ReportPart | None:
    """The contamination part of a report when the store holds probe units, else ``None``."""
    if not has_probe_units(store):
        return None
    analysis = analyse_probes(
        store, registry=registry, graders=graders, seed=seed, n_resamples=n_resamples, level=level, ci_method=ci_method
    )
    return probe_part(analysis)


# ---- the command ------------------------------------------------------------------------------


@dataclass
class ProbeResult:
    """What ``rlvr-audit probe contamination`` did."""

    unit_keys: list[str]
    """Probe units planned."""
    generated: int
    """Samples generated now."""
    reused: int
    """Samples already stored."""
    graded: int
    """Samples graded now."""
    analysis: ProbeAnalysis
    """Rates and comparisons of the planned units."""
    run_id: str
    """Run manifest id (in the store's ``runs/``)."""


def run_contamination_probe(
    selection: Selection,
    options: ProbeOptions,
    engine: EngineOptions,
    grading: GradeOptions,
    reporting: ReportOptions,
    loc: Locations,
    *,
    progress: bool = True,
) -> ProbeResult:
    """Plan, generate what is missing, grade what is ungraded and analyse the probe units.

    Everything is validated (options, checkpoints, tasks, templates, graders, bootstrap settings)
    before anything is written; then the probe units go to the store's ``probes/`` folder and a
    run manifest to its ``runs/``."""
    from .audit import _check_grade_options, _check_report_options, _Manifest, load_registry
    from .generate import EngineSpec, generate_units
    from .grade import grade_units
    from .ui import make_progress

    _check_grade_options(grading)
    _check_report_options(reporting)
    planned = plan_probes(selection, options, engine, loc)
    store = Store(loc.store)
    pstore = probe_store(store)
    keys = [p.unit.key for p in planned]
    manifest = _Manifest(store, keys, engine.backend)
    status = "failed"
    try:
        for p in planned:
            pstore.ensure_unit(p.unit.info)
            write_probe_info(pstore, p.probe)
            store.save_problems(p.probe.source_data_hash, p.source)
        with make_progress(progress) as prog:
            gen = generate_units(
                pstore,
                [p.unit for p in planned],
                engine=EngineSpec(
                    backend=engine.backend,
                    model_args=engine.model_args,
                    batch_size=engine.batch_size,
                    device=engine.device,
                    chunk_size=engine.save_every,
                ),
                limit=engine.limit,
                progress=prog,
            )
            graded = grade_units(
                pstore, keys, graders=grading.graders, workers=grading.workers, timeout=grading.timeout, progress=prog
            )
        status = "finished"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        manifest.finish(status)
    registry = load_registry(loc) if loc.registry_path.is_file() else None
    analysis = analyse_probes(
        store,
        registry=registry,
        keys=keys,
        graders=grading.graders,
        seed=reporting.seed,
        n_resamples=reporting.n_resamples,
        level=reporting.level,
        ci_method=reporting.ci_method,
    )
    return ProbeResult(
        unit_keys=keys,
        generated=gen.generated,
        reused=gen.reused,
        graded=graded.graded,
        analysis=analysis,
        run_id=manifest.manifest.run_id,
    )


__all__ = [
    "DEFAULT_PERCENTS",
    "KINDS",
    "METRICS",
    "PROBE_VERSION",
    "Cut",
    "PlannedProbe",
    "ProbeAnalysis",
    "ProbeComparison",
    "ProbeEstimate",
    "ProbeOptions",
    "ProbeResult",
    "analyse_probes",
    "comparisons_frame",
    "cut_problem",
    "cut_problems",
    "exact_match",
    "normalise",
    "plan_probes",
    "probe_part",
    "probe_section",
    "probe_store",
    "rates_frame",
    "rates_rows",
    "report_part",
    "rouge_l",
    "run_contamination_probe",
    "stored_probes",
]
