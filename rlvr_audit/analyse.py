"""Analysis stage: estimates and paired comparisons from stored grades only.

Estimands (see :mod:`rlvr_audit.stats` for the estimators):

- ``avg@k`` of a unit under a grader: the mean over problems of the fraction of the problem's
  k samples graded ``correct`` (avg@1 = pass@1 for greedy MATH-500). Interval: percentile
  bootstrap that resamples problems with their k samples.
- ``pass@k`` (k > 1): the mean over problems of the unbiased pass@k estimate.
- Gain of a checkpoint over its base: ``avg@k(checkpoint) - avg@k(base)`` on the problems both
  units have complete, same task version, prompt template, sampling protocol and grader;
  paired bootstrap interval (the same resampled problems on both sides) and a two-sided paired
  sign-flip permutation p-value.

Only problems with all k samples graded enter (a partially generated unit is reported with
its ``n_problems``). Every bootstrap generator is seeded from (``seed``, unit keys), so the same
store and seed give identical numbers regardless of order or which other units are present.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from . import stats
from .graders import GRADERS, get_grader
from .records import Comparison, Estimate
from .registry import Registry
from .store import Store, UnitInfo

log = logging.getLogger(__name__)

METHOD = "bootstrap-percentile(problems)"
PAIRED_METHOD = "paired-bootstrap-percentile(problems)"


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


def _rng(seed: int, *keys: str) -> np.random.Generator:
    """A generator seeded from the user seed and the unit keys (order-independent of the table)."""
    return np.random.default_rng(np.random.SeedSequence([seed, *(int(k[:12], 16) for k in keys)]))


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
    by_problem: dict[str, dict[int, bool]] = {}
    for g in grades:
        if g.sample_idx < k:
            by_problem.setdefault(g.problem_id, {})[g.sample_idx] = g.verdict == "correct"
    rows = [pid for pid in problem_order if len(by_problem.get(pid, {})) == k]
    if not rows:
        return None
    correct = np.array([[by_problem[pid][i] for i in range(k)] for pid in rows], dtype=np.float64)
    n_generated = len(store.read_generations(info.key))
    return UnitMatrix(info=info, grader_id=grader_id, problem_ids=rows, correct=correct, n_generated=n_generated)


def estimates_for(m: UnitMatrix, *, seed: int, n_resamples: int, level: float) -> list[Estimate]:
    """avg@k (and unbiased pass@k for k > 1) with bootstrap intervals."""
    spec = m.info.spec
    k = spec.protocol.n
    out: list[Estimate] = []
    statistics = [("avg", f"avg@{k}")]
    if k > 1:
        statistics.append((f"pass@{k}", f"pass@{k}"))
    for statistic, metric in statistics:
        iv = stats.bootstrap_ci(
            m.correct, rng=_rng(seed, m.info.key), n_resamples=n_resamples, level=level, statistic=statistic
        )
        out.append(
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
                method=METHOD,
                n_problems=len(m.problem_ids),
                n_samples=k,
                seed=seed,
            )
        )
    return out


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


def compare(base: UnitMatrix, treat: UnitMatrix, *, seed: int, n_resamples: int, level: float) -> Comparison | None:
    """Paired comparison treatment - base over their shared complete problems."""
    shared = [pid for pid in treat.problem_ids if pid in set(base.problem_ids)]
    if not shared:
        return None
    bi = {pid: i for i, pid in enumerate(base.problem_ids)}
    ti = {pid: i for i, pid in enumerate(treat.problem_ids)}
    b = base.correct[[bi[p] for p in shared]]
    t = treat.correct[[ti[p] for p in shared]]
    iv = stats.paired_bootstrap_ci(
        b, t, rng=_rng(seed, base.info.key, treat.info.key), n_resamples=n_resamples, level=level
    )
    p = stats.paired_permutation_pvalue(
        b, t, rng=_rng(seed + 1, base.info.key, treat.info.key), n_resamples=n_resamples
    )
    k = treat.info.spec.protocol.n
    return Comparison(
        baseline=base.info.spec.checkpoint.checkpoint_id,
        treatment=treat.info.spec.checkpoint.checkpoint_id,
        baseline_unit=base.info.key,
        treatment_unit=treat.info.key,
        task=treat.info.spec.task,
        template_id=treat.info.spec.template_id,
        grader_id=treat.grader_id,
        metric=f"avg@{k}",
        baseline_value=float(b.mean()),
        treatment_value=float(t.mean()),
        delta=iv.value,
        ci_low=iv.ci_low,
        ci_high=iv.ci_high,
        level=level,
        method=PAIRED_METHOD,
        p_value=p,
        n_problems=len(shared),
        seed=seed,
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


def apply_registry(info: UnitInfo, registry: Registry | None) -> UnitInfo:
    """Refresh a unit's descriptive info (family, base, reward, step) from the registry."""
    if registry is None:
        return info
    cid = info.spec.checkpoint.checkpoint_id
    ck = registry.checkpoints.get(cid)
    if ck is None:
        return info
    return info.model_copy(
        update={
            "family": ck.family,
            "family_display": ck.family_display,
            "base": ck.base,
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
) -> Analysis:
    """Estimates for ``unit_keys`` (default: all units) and comparisons against their bases
    (base units are looked up in the whole store)."""
    all_units = [apply_registry(u, registry) for u in store.units()]
    by_key = {u.key: u for u in all_units}
    keys = unit_keys if unit_keys is not None else list(by_key)
    units = [by_key[k] for k in keys if k in by_key]
    found_graders = sorted({g for u in units for g in store.graders(u.key)})
    use_graders = [g for g in (graders or found_graders) if g in found_graders]
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

    estimates: list[Estimate] = []
    comparisons: list[Comparison] = []
    for info in units:
        for gid in use_graders:
            m = matrix(info, gid)
            if m is None:
                continue
            estimates.extend(estimates_for(m, seed=seed, n_resamples=n_resamples, level=level))
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
                c = compare(bm, m, seed=seed, n_resamples=n_resamples, level=level)
                if c is not None:
                    comparisons.append(c)
                    break
    return Analysis(units=units, matrices=matrices, estimates=estimates, comparisons=comparisons, graders=use_graders)
