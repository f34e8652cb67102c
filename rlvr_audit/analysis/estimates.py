"""Analysis stage: estimates and paired comparisons from stored grades only.

Estimands (see :mod:`rlvr_audit.analysis.stats` for the estimators):

- ``avg@k`` of a unit under a grader: the mean over problems of the fraction of the problem's
  k samples graded ``correct`` (avg@1 = pass@1 for greedy MATH-500). Interval (``ci_method``):
  ``wilson`` (default: Wilson score interval with a cluster design effect over problems,
  :func:`rlvr_audit.analysis.stats.wilson_ci`), or a bootstrap that resamples problems with their k
  samples (``percentile``, ``bca``). Every estimate carries the interval's flags
  (:data:`rlvr_audit.analysis.stats.INTERVAL_FLAGS`).
- ``pass@k`` (k > 1): the mean over problems of the unbiased pass@k estimate.
- Gain of a checkpoint over its base: ``avg@k(checkpoint) - avg@k(base)`` on the problems both
  units have complete, same task version, prompt template, sampling protocol and grader;
  paired interval (``wilson``: MOVER from the two Wilson intervals and the per-problem
  correlation, :func:`rlvr_audit.analysis.stats.paired_wilson_ci`; bootstrap: the same resampled
  problems on both sides) and a two-sided exact paired test: McNemar's exact test for one
  sample per problem, the paired sign-flip permutation test for k samples
  (:func:`rlvr_audit.analysis.stats.paired_test`). Where the interval and the test disagree about
  significance the comparison carries the flag ``test-disagrees``.
- Multiplicity: the comparisons of one grader form one family (one reproduction table of the
  report); their p-values are adjusted by Holm (family-wise error) and Benjamini-Hochberg
  (false discovery rate), reported beside the raw p-value.

Problems. Only problems with all k samples graded enter (a partially generated unit is
reported with its ``n_problems``). A comparison uses the problems *both* units have
complete, in task order; its ``n_problems`` says how many. A base unit that shares no complete
problem with its checkpoint gives no comparison, and a warning says so.

One resampling plan per table. Every unit (and every comparison) evaluated on the same task
version and the same set of problems is bootstrapped with one shared
:class:`~rlvr_audit.analysis.stats.ResamplingPlan`, so all intervals and gains of that table come from
the same resampled problems and are computed in one vectorised pass. The plan is seeded from
(``seed``, task data hash, the problem ids), so the same store and seed give identical
numbers regardless of unit order or which other units are present. Monte Carlo sign-flip
tests are seeded from (``seed``, the two unit keys).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

import numpy as np

from ..core.records import Comparison, Estimate
from ..core.registry import Registry
from ..core.store import Store, UnitInfo
from ..grading import GRADERS, get_grader
from . import stats

log = logging.getLogger(__name__)

METHOD = stats.BOOTSTRAP_METHOD
PAIRED_METHOD = stats.PAIRED_BOOTSTRAP_METHOD


@dataclass
class UnitMatrix:
    """A unit's verdicts under one grader as a problems x samples 0/1 matrix."""

    info: UnitInfo
    """The unit."""
    grader_id: str
    """The grader."""
    problem_ids: list[str]
    """Rows: problems with all k samples graded, in task order."""
    correct: np.ndarray
    """``(n_problems, k)`` array of 0/1 (1 = ``correct``)."""
    n_generated: int
    """Samples stored for the unit."""


def rng_for(seed: int, *keys: str) -> np.random.Generator:
    """A generator seeded from the user seed and hex keys (unit keys, hashes)."""
    return np.random.default_rng(np.random.SeedSequence([seed, *(int(k[:12], 16) for k in keys)]))


def _problem_set_hash(problem_ids: tuple[str, ...]) -> str:
    """Hex digest identifying an ordered set of problem ids."""
    return hashlib.sha256("\n".join(problem_ids).encode("utf-8")).hexdigest()


def plan_for(seed: int, data_hash: str, problem_ids: tuple[str, ...], n_resamples: int) -> stats.ResamplingPlan:
    """The resampling plan of the table of one task version and problem set.

    Seeded from ``seed``, the task's data hash and the problem ids only, so a unit's interval
    does not depend on which other units are analysed with it.
    """
    seed_key = hashlib.sha256(data_hash.encode("utf-8")).hexdigest()
    return stats.ResamplingPlan(
        len(problem_ids), n_resamples, rng=rng_for(seed, seed_key, _problem_set_hash(problem_ids))
    )


def grader_version(grader_id: str) -> str | None:
    """The current version of a registered grader (``None`` for an unknown id)."""
    return get_grader(grader_id).version if grader_id in GRADERS else None


def unit_matrix(store: Store, info: UnitInfo, grader_id: str, problem_order: list[str]) -> UnitMatrix | None:
    """Build the verdict matrix of a unit (``None`` if nothing is graded)."""
    version = grader_version(grader_id)
    grades = store.read_grades(info.key, grader_id, version)
    if not grades:
        if version is not None and store.read_grades(info.key, grader_id):
            log.warning(
                "unit %s has %s grades only from another grader version (current: %s); "
                "run `rlvr-audit grade --graders %s` to include it",
                info.key,
                grader_id,
                version,
                grader_id,
            )
        return None
    k = info.spec.protocol.n
    stored = {(g.problem_id, g.sample_idx) for g in store.read_generations(info.key)}
    n_generated = len(stored)
    by_problem: dict[str, dict[int, bool]] = {}
    orphans = 0
    for g in grades:
        if stored and (g.problem_id, g.sample_idx) not in stored:
            orphans += 1  # its generation was lost (a repaired file): the grade is of nothing stored
        elif g.sample_idx < k:
            by_problem.setdefault(g.problem_id, {})[g.sample_idx] = g.verdict == "correct"
    if orphans:
        log.warning(
            "unit %s: %d %s grades are of samples with no stored generation (lost from a damaged file); "
            "left out. Before generating them again, move the unit's grades files aside: a grade is not "
            "tied to its completion's text",
            info.key,
            orphans,
            grader_id,
        )
    rows = [pid for pid in problem_order if len(by_problem.get(pid, {})) == k]
    if not rows:
        return None
    correct = np.array([[by_problem[pid][i] for i in range(k)] for pid in rows], dtype=np.float64)
    return UnitMatrix(info=info, grader_id=grader_id, problem_ids=rows, correct=correct, n_generated=n_generated)


def grader_order(graders: list[str]) -> list[str]:
    """Graders in one canonical order, the registry's (``math_verify`` first), then others by
    name: the same store gives the same tables whether the graders came from a run's options or
    from the store's listing."""
    rank = {g: i for i, g in enumerate(GRADERS)}
    return sorted(graders, key=lambda g: (rank.get(g, len(rank)), g))


def same_setting(a: UnitInfo, b: UnitInfo) -> bool:
    """Whether two units can be paired: same task version, template and protocol."""
    sa, sb = a.spec, b.spec
    return (
        sa.task == sb.task
        and sa.data_hash == sb.data_hash
        and sa.template_id == sb.template_id
        and sa.template_hash == sb.template_hash
        and sa.protocol == sb.protocol
    )


# --------------------------------------------------------------------------------------
# One table = one task version and problem set = one resampling plan
# --------------------------------------------------------------------------------------


@dataclass
class _Table:
    """Columns (per-problem scores) and pairs of one problem set, computed on one plan."""

    data_hash: str
    problem_ids: tuple[str, ...]
    columns: list[np.ndarray] = field(default_factory=list)
    index: dict[tuple[str, str, str], int] = field(default_factory=dict)
    pairs: list[tuple[int, int]] = field(default_factory=list)

    def column(self, key: tuple[str, str, str], scores: np.ndarray) -> int:
        """Index of the column ``key`` (unit key, grader, statistic), adding it if new."""
        if key not in self.index:
            self.index[key] = len(self.columns)
            self.columns.append(scores)
        return self.index[key]

    def pair(self, baseline: int, treatment: int) -> int:
        """Index of a new (baseline, treatment) pair."""
        self.pairs.append((baseline, treatment))
        return len(self.pairs) - 1


class _Tables:
    """The tables of one analysis, keyed by (data hash, problem ids)."""

    def __init__(self) -> None:
        self.tables: dict[tuple[str, tuple[str, ...]], _Table] = {}

    def get(self, data_hash: str, problem_ids: tuple[str, ...]) -> _Table:
        key = (data_hash, problem_ids)
        if key not in self.tables:
            self.tables[key] = _Table(data_hash, problem_ids)
        return self.tables[key]

    def compute(
        self, *, seed: int, n_resamples: int, level: float, method: str
    ) -> dict[tuple[str, tuple[str, ...]], stats.TableIntervals]:
        """One vectorised pass per table."""
        out = {}
        for key, t in self.tables.items():
            plan = plan_for(seed, t.data_hash, t.problem_ids, n_resamples)
            out[key] = plan.intervals_from_scores(
                np.stack(t.columns, axis=1), pairs=t.pairs, level=level, method=method
            )
        return out


def _statistics(k: int) -> list[tuple[str, str]]:
    """(stats statistic, metric name) reported for a unit with k samples per problem."""
    out = [("avg", f"avg@{k}")]
    if k > 1:
        out.append((f"pass@{k}", f"pass@{k}"))
    return out


def _scores(m: UnitMatrix, statistic: str, rows: list[int] | None = None) -> np.ndarray:
    """Per-problem scores of a unit (restricted to ``rows`` when given)."""
    return stats.per_problem_scores(m.correct if rows is None else m.correct[rows], statistic)


@dataclass
class _PairRequest:
    base: UnitMatrix
    treat: UnitMatrix
    table: tuple[str, tuple[str, ...]]
    pair: int
    rows_base: list[int]
    rows_treat: list[int]


def adjust_p_values(comparisons: list[Comparison]) -> list[Comparison]:
    """Holm and Benjamini-Hochberg adjusted p-values over the report's family, and per grader.

    The family (``p_holm``, ``p_bh``) is every comparison with a p-value in the report: every
    RLVR checkpoint against its base, on every task and prompt, under every grader. Running
    several graders over the same comparisons multiplies the tests, so they are adjusted
    together. The per-grader view (``p_holm_grader``, ``p_bh_grader``: the family restricted
    to one grader) is kept as secondary. Comparisons without a p-value are left out and get no
    adjusted values. Returns new records in the same order.
    """
    out = list(comparisons)
    members = [(i, c.p_value) for i, c in enumerate(comparisons) if c.p_value is not None]
    if not members:
        return out
    per_grader: dict[str, list[int]] = {}
    for i, _ in members:
        per_grader.setdefault(comparisons[i].grader_id, []).append(i)
    update: dict[int, dict[str, float]] = {i: {} for i, _ in members}
    p_all = [pv for _, pv in members]
    for (i, _), h, b in zip(members, stats.holm(p_all), stats.benjamini_hochberg(p_all), strict=True):
        update[i] |= {"p_holm": float(h), "p_bh": float(b)}
    for idx in per_grader.values():
        p = [pv for i in idx if (pv := comparisons[i].p_value) is not None]
        for i, h, b in zip(idx, stats.holm(p), stats.benjamini_hochberg(p), strict=True):
            update[i] |= {"p_holm_grader": float(h), "p_bh_grader": float(b)}
    for i, fields in update.items():
        out[i] = comparisons[i].model_copy(update=fields)
    return out


def multiplicity_family(comparisons: list[Comparison]) -> str:
    """The family the adjusted p-values are over, in words (for report headers)."""
    with_p = [c for c in comparisons if c.p_value is not None]
    graders = sorted({c.grader_id for c in with_p})
    return (
        f"{len(with_p)} comparisons (every RLVR checkpoint against its base, on every task and prompt) "
        f"under {len(graders)} grader{'s' if len(graders) != 1 else ''} ({', '.join(graders) or 'none'})"
    )


@dataclass
class Analysis:
    """Everything the report shows, computed from the store."""

    units: list[UnitInfo]
    """Units analysed (with registry info applied)."""
    matrices: dict[tuple[str, str], UnitMatrix]
    """(unit key, grader id) -> verdict matrix."""
    estimates: list[Estimate]
    """Per unit and grader."""
    comparisons: list[Comparison]
    """Per checkpoint with a base, task, template and grader."""
    graders: list[str]
    """Graders found."""
    ci_method: str = stats.DEFAULT_CI_METHOD
    """Interval method of every estimate and comparison (one of :data:`rlvr_audit.analysis.stats.CI_METHODS`)."""


def apply_registry(info: UnitInfo, registry: Registry | None) -> UnitInfo:
    """Refresh a unit's descriptive info (family, base, reward, step) from the registry
    (a base named with ``rlvr-audit import --base`` stays: it overrides the registry's)."""
    if registry is None:
        return info
    cid = info.spec.checkpoint.checkpoint_id
    ck = registry.checkpoints.get(cid)
    if ck is None:
        return info
    given_base = info.imported.base_given if info.imported is not None else None
    return info.model_copy(
        update={
            "family": ck.family,
            "family_display": ck.family_display,
            "base": given_base or ck.base,
            "reward": ck.reward,
            "step": ck.step,
        }
    )


def analyse(
    store: Store,
    *,
    unit_keys: list[str] | None = None,
    graders: list[str] | None = None,
    registry: Registry | None = None,
    seed: int = 0,
    n_resamples: int = 10_000,
    level: float = 0.95,
    ci_method: str = stats.DEFAULT_CI_METHOD,
) -> Analysis:
    """Estimates for ``unit_keys`` (default: all units) and comparisons against their bases
    (base units are looked up in the whole store).

    ``ci_method`` is one of :data:`rlvr_audit.analysis.stats.CI_METHODS`: ``"wilson"`` (the default, see
    :func:`rlvr_audit.analysis.stats.wilson_ci`), ``"percentile"`` or ``"bca"`` (see
    :func:`rlvr_audit.analysis.stats.bootstrap_ci`).
    Raises ValueError for an unknown ``ci_method``, a ``level`` outside (0, 1) or a
    non-positive ``n_resamples``.
    """
    stats.check_bootstrap_options(n_resamples=n_resamples, level=level, method=ci_method)
    all_units = [apply_registry(u, registry) for u in store.units()]
    by_key = {u.key: u for u in all_units}
    keys = unit_keys if unit_keys is not None else list(by_key)
    units = [by_key[k] for k in keys if k in by_key]
    found_graders = sorted({g for u in units for g in store.graders(u.key)})
    use_graders = grader_order([g for g in dict.fromkeys(graders or found_graders) if g in found_graders])
    orders: dict[str, list[str]] = {}

    def order(info: UnitInfo) -> list[str]:
        dh = info.spec.data_hash
        if dh not in orders:
            orders[dh] = [p.problem_id for p in store.load_problems(dh)]
        return orders[dh]

    matrices: dict[tuple[str, str], UnitMatrix] = {}

    def matrix(info: UnitInfo, grader_id: str) -> UnitMatrix | None:
        key = (info.key, grader_id)
        if key not in matrices:
            m = unit_matrix(store, info, grader_id, order(info))
            if m is None:
                return None
            matrices[key] = m
        return matrices[key]

    tables = _Tables()
    estimate_requests: list[tuple[UnitMatrix, str, str, tuple[str, tuple[str, ...]], int]] = []
    pair_requests: list[_PairRequest] = []
    for info in units:
        for gid in use_graders:
            m = matrix(info, gid)
            if m is None:
                continue
            ids = tuple(m.problem_ids)
            table = tables.get(info.spec.data_hash, ids)
            for statistic, metric in _statistics(info.spec.protocol.n):
                col = table.column((info.key, gid, statistic), _scores(m, statistic))
                estimate_requests.append((m, statistic, metric, (info.spec.data_hash, ids), col))
            if info.base is None:
                continue
            candidates = [
                u for u in all_units if u.spec.checkpoint.checkpoint_id == info.base and same_setting(u, info)
            ]
            candidates.sort(
                key=lambda u: (u.spec.backend != info.spec.backend, u.spec.engine_args != info.spec.engine_args)
            )
            for cand in candidates:
                bm = matrix(cand, gid)
                if bm is None:
                    continue
                request = _pair_request(tables, bm, m)
                if request is not None:
                    pair_requests.append(request)
                    break

    results = tables.compute(seed=seed, n_resamples=n_resamples, level=level, method=ci_method)

    estimates: list[Estimate] = []
    for m, _statistic, metric, table_key, col in estimate_requests:
        iv = results[table_key].units[col]
        spec = m.info.spec
        estimates.append(
            Estimate(
                unit_key=m.info.key,
                checkpoint_id=spec.checkpoint.checkpoint_id,
                task=spec.task,
                template_id=spec.template_id,
                grader_id=m.grader_id,
                metric=metric,
                value=iv.value,
                ci_low=iv.ci_low,
                ci_high=iv.ci_high,
                level=level,
                method=iv.method,
                n_problems=len(m.problem_ids),
                n_samples=spec.protocol.n,
                seed=seed,
                se=iv.se,
                interval_flags=iv.flags,
            )
        )

    comparisons: list[Comparison] = []
    for r in pair_requests:
        iv = results[r.table].pairs[r.pair]
        b, t = r.base.correct[r.rows_base], r.treat.correct[r.rows_treat]
        test = stats.paired_test(
            b, t, rng=rng_for(seed + 1, r.base.info.key, r.treat.info.key), n_resamples=n_resamples
        )
        k = r.treat.info.spec.protocol.n
        flags = iv.flags + (("test-disagrees",) if stats.disagrees_with_test(iv, test.p_value) else ())
        comparisons.append(
            Comparison(
                baseline=r.base.info.spec.checkpoint.checkpoint_id,
                treatment=r.treat.info.spec.checkpoint.checkpoint_id,
                baseline_unit=r.base.info.key,
                treatment_unit=r.treat.info.key,
                task=r.treat.info.spec.task,
                template_id=r.treat.info.spec.template_id,
                grader_id=r.treat.grader_id,
                metric=f"avg@{k}",
                baseline_value=float(b.mean()),
                treatment_value=float(t.mean()),
                delta=iv.value,
                ci_low=iv.ci_low,
                ci_high=iv.ci_high,
                level=level,
                method=iv.method,
                p_value=test.p_value,
                test=test.test,
                se=iv.se,
                n_problems=len(r.rows_treat),
                seed=seed,
                interval_flags=flags,
            )
        )
    comparisons = adjust_p_values(comparisons)
    return Analysis(
        units=units,
        matrices=matrices,
        estimates=estimates,
        comparisons=comparisons,
        graders=use_graders,
        ci_method=ci_method,
    )


def _pair_request(tables: _Tables, base: UnitMatrix, treat: UnitMatrix) -> _PairRequest | None:
    """Register the paired comparison ``treat - base`` over their shared complete problems.

    Units with the same problem set are paired inside their own table; otherwise the pair
    goes to the table of the shared problems (both sides restricted to them). ``None``, with a
    warning, when they share no problem.
    """
    base_rows = {pid: i for i, pid in enumerate(base.problem_ids)}
    shared = tuple(pid for pid in treat.problem_ids if pid in base_rows)
    if not shared:
        log.warning(
            "no comparison of %s with its base %s (%s, grader %s): the units share no problem with all "
            "samples graded (%d and %d complete problems)",
            treat.info.spec.checkpoint.checkpoint_id,
            base.info.spec.checkpoint.checkpoint_id,
            treat.info.spec.task,
            treat.grader_id,
            len(treat.problem_ids),
            len(base.problem_ids),
        )
        return None
    treat_rows = {pid: i for i, pid in enumerate(treat.problem_ids)}
    rows_b = [base_rows[p] for p in shared]
    rows_t = [treat_rows[p] for p in shared]
    dh = treat.info.spec.data_hash
    table = tables.get(dh, shared)
    # within a table (one problem set) a unit's scores are determined by (unit, grader, statistic)
    cb = table.column((base.info.key, base.grader_id, "avg"), _scores(base, "avg", rows_b))
    ct = table.column((treat.info.key, treat.grader_id, "avg"), _scores(treat, "avg", rows_t))
    return _PairRequest(base, treat, (dh, shared), table.pair(cb, ct), rows_b, rows_t)
