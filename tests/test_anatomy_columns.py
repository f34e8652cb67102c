"""Gain anatomy from arrays: the same result as from records, and as the per-problem Fraction arithmetic."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from rlvr_audit.analysis import stats
from rlvr_audit.analysis.anatomy import ComparisonAnatomy, GainAnatomy, gain_anatomy, gain_anatomy_columns
from rlvr_audit.analysis.anatomy_sections import anatomy_frame
from rlvr_audit.analysis.behaviour import (
    BEHAVIOUR_CLASSES,
    CODE_DEFINITIONS,
    DEFAULT_DEFINITION,
    BehaviourFlags,
    ResponseBehaviour,
    behaviour_class,
    problem_class,
)
from rlvr_audit.analysis.behaviour_stats import ResponseColumns
from rlvr_audit.core.records import Comparison, Generation

Records = tuple[list[Generation], dict[tuple[str, int], ResponseBehaviour], dict[tuple[str, int], bool]]


def random_unit(
    rng: np.random.Generator, unit: str, problems: list[str], k: int, ragged: bool = False
) -> tuple[ResponseColumns, np.ndarray]:
    """Store-like columns: problems sorted, ``k`` samples each (fewer for some when ``ragged``),
    flags drawn so every class and many ties occur; and random correctness."""
    ids = sorted(problems)
    sizes = rng.integers(1, k + 1, size=len(ids)) if ragged else np.full(len(ids), k)
    row = np.repeat(np.arange(len(ids)), sizes)
    idx = np.concatenate([np.arange(s) for s in sizes])
    n = row.size

    def flag(p: float) -> np.ndarray:
        return rng.random(n) < p

    cols = ResponseColumns(
        unit_key=unit, checkpoint_id=unit, task="aime24", template_id="no_template",
        problem_ids=ids, row=row.astype(np.int64), sample_idx=idx.astype(np.int64),
        code={name: flag(0.3) for name in CODE_DEFINITIONS},
        truncated=flag(0.15), repetition=flag(0.15), empty=flag(0.05), boxed_nothing=flag(0.15),
        truncation_known=flag(0.8), n_tokens=rng.integers(-1, 500, size=n),
    )  # fmt: skip
    return cols, flag(0.5)


def records(cols: ResponseColumns, correct: np.ndarray) -> Records:
    gens, behaviours, right = [], {}, {}
    for i in rng_order(len(cols)):
        pid, idx = cols.problem_ids[cols.row[i]], int(cols.sample_idx[i])
        gens.append(
            Generation.model_construct(
                unit_key=cols.unit_key, checkpoint_id=cols.checkpoint_id, task=cols.task,
                problem_id=pid, template_id=cols.template_id, sample_idx=idx,
            )
        )  # fmt: skip
        tokens = int(cols.n_tokens[i])
        flags = BehaviourFlags(
            truncated=bool(cols.truncated[i]), repetition=bool(cols.repetition[i]), empty=bool(cols.empty[i]),
            boxed_nothing=bool(cols.boxed_nothing[i]), n_tokens=tokens if tokens >= 0 else None,
            truncation_known=bool(cols.truncation_known[i]),
        )  # fmt: skip
        code = {name: bool(v[i]) for name, v in cols.code.items()}
        behaviours[(pid, idx)] = ResponseBehaviour(pid, idx, code, flags)
        right[(pid, idx)] = bool(correct[i])
    return gens, behaviours, right


def rng_order(n: int) -> list[int]:
    """Records in a shuffled order: the record path must not depend on it."""
    return np.random.default_rng(n).permutation(n).tolist()


def item(an: GainAnatomy) -> ComparisonAnatomy:
    c = Comparison(
        baseline="toy/base", treatment="toy/rl", baseline_unit=an.base_unit, treatment_unit=an.rlvr_unit,
        task="aime24", template_id="no_template", grader_id="math_verify", metric="avg@4",
        baseline_value=float(an.acc_before), treatment_value=float(an.acc_after), delta=float(an.gain),
        ci_low=-0.1, ci_high=0.8, level=0.95, method="mover-wilson", n_problems=an.n_problems, seed=0,
    )  # fmt: skip
    return ComparisonAnatomy(c, an, "toy", "random", 100, "4 samples")


def reference(base: Records, rlvr: Records, definition: str = DEFAULT_DEFINITION) -> dict[str, object]:
    """Per problem, with Fractions, from the records: classes, accuracies, parts, the diff column."""
    sides = []
    for gens, behaviours, right in (base, rlvr):
        by: dict[str, list[tuple[int, str, bool]]] = {}
        for g in gens:
            key = (g.problem_id, g.sample_idx)
            cls = behaviour_class(behaviours[key], definition)
            by.setdefault(g.problem_id, []).append((g.sample_idx, cls, right[key]))
        sides.append(
            {
                p: (problem_class([c for _, c, _ in sorted(rows)]), Fraction(sum(ok for *_, ok in rows), len(rows)))
                for p, rows in by.items()
            }
        )
    before, after = sides
    shared = sorted(set(before) & set(after))
    n = len(shared)
    parts = {}
    for b in (*BEHAVIOUR_CLASSES, None):
        for a in (*BEHAVIOUR_CLASSES, None):
            members = [p for p in shared if b in (None, before[p][0]) and a in (None, after[p][0])]
            parts[(b, a)] = sum((after[p][1] - before[p][1] for p in members), Fraction(0)) / n
    diff = np.array([float(after[p][1] - before[p][1]) for p in shared])
    return {"shared": shared, "before": before, "after": after, "parts": parts, "diff": diff}


def check(an: GainAnatomy, ref: dict[str, object]) -> None:
    parts = ref["parts"]
    assert isinstance(parts, dict)
    assert an.gain == parts[(None, None)]
    for p in (*an.by_base, *an.by_rlvr, *an.transitions):
        assert p.contribution == parts[(p.before, p.after)]
    before, after = ref["before"], ref["after"]
    assert isinstance(before, dict) and isinstance(after, dict)
    assert [p.problem_id for p in an.problems] == ref["shared"]
    for p in an.problems:
        assert (p.before, p.acc_before) == before[p.problem_id]
        assert (p.after, p.acc_after) == after[p.problem_id]


@pytest.mark.parametrize("k, ragged", [(4, False), (3, True), (1, False)])
def test_array_and_record_paths_give_identical_anatomies(k: int, ragged: bool) -> None:
    rng = np.random.default_rng(19 + k)
    names = [f"p{i:03d}" for i in range(120)]
    base_cols, base_ok = random_unit(rng, "base", names[:100], k, ragged)
    rlvr_cols, rlvr_ok = random_unit(rng, "rlvr", names[10:], k, ragged)
    base_rec, rlvr_rec = records(base_cols, base_ok), records(rlvr_cols, rlvr_ok)
    for definition in CODE_DEFINITIONS:
        by_array = gain_anatomy_columns(
            base_cols, base_ok, rlvr_cols, rlvr_ok,
            rng=np.random.default_rng(7), n_resamples=300, definition=definition,
        )  # fmt: skip
        by_record = gain_anatomy(
            base_rec[0], rlvr_rec[0], base_correct=base_rec[2], rlvr_correct=rlvr_rec[2],
            rng=np.random.default_rng(7), n_resamples=300, definition=definition,
            base_behaviours=base_rec[1], rlvr_behaviours=rlvr_rec[1],
        )  # fmt: skip
        assert by_array == by_record
        assert by_array.problems == by_record.problems
        pd.testing.assert_frame_equal(anatomy_frame([item(by_array)]), anatomy_frame([item(by_record)]))
        check(by_array, reference(base_rec, rlvr_rec, definition))
        assert by_array.n_problems == 90
        assert {p.before for p in by_array.problems} == set(BEHAVIOUR_CLASSES)
        assert by_array.truncation_unknown_base == int((~base_cols.truncation_known).sum())
        assert (by_array.clean.interval is None) == (ragged and by_array.clean.n_problems > 0)


def test_the_intervals_resample_the_per_problem_differences() -> None:
    rng = np.random.default_rng(3)
    names = [f"q{i}" for i in range(60)]
    base_cols, base_ok = random_unit(rng, "base", names, 4)
    rlvr_cols, rlvr_ok = random_unit(rng, "rlvr", names, 4)
    an = gain_anatomy_columns(base_cols, base_ok, rlvr_cols, rlvr_ok, rng=np.random.default_rng(5), n_resamples=200)
    ref = reference(records(base_cols, base_ok), records(rlvr_cols, rlvr_ok))
    diff, before, after = ref["diff"], ref["before"], ref["after"]
    assert isinstance(diff, np.ndarray) and isinstance(before, dict) and isinstance(after, dict)
    # the parts' columns (by base class, by trained class, by cell) and the total, as the record path built them
    groups = [(c, None) for c in BEHAVIOUR_CLASSES] + [(None, c) for c in BEHAVIOUR_CLASSES]
    groups += [(b, a) for b in BEHAVIOUR_CLASSES for a in BEHAVIOUR_CLASSES]
    shared = ref["shared"]
    assert isinstance(shared, list)
    masks = [[b in (None, before[p][0]) and a in (None, after[p][0]) for p in shared] for b, a in groups]
    columns = np.column_stack([diff * np.array(m, dtype=np.float64) for m in masks] + [diff])
    reps = stats.ResamplingPlan(len(diff), 200, rng=np.random.default_rng(5)).replicates(columns)
    alpha = (1.0 - 0.95) / 2.0
    low, high = np.quantile(reps, [alpha, 1.0 - alpha], axis=0)
    parts = (*an.by_base, *an.by_rlvr, *an.transitions)
    intervals = [p.interval for p in parts] + [an.gain_interval]
    got = [(iv.ci_low, iv.ci_high) for iv in intervals]
    assert got == list(zip(low.tolist(), high.tolist(), strict=True))


def test_bad_array_input_is_refused() -> None:
    rng = np.random.default_rng(0)
    cols, ok = random_unit(rng, "base", ["a", "b"], 2)
    other, other_ok = random_unit(rng, "rlvr", ["c"], 2)
    g = np.random.default_rng(0)
    with pytest.raises(ValueError, match="same unit"):
        gain_anatomy_columns(cols, ok, cols, ok, rng=g)
    with pytest.raises(ValueError, match="share no problem"):
        gain_anatomy_columns(cols, ok, other, other_ok, rng=g)
    with pytest.raises(ValueError, match="one per response"):
        gain_anatomy_columns(cols, ok[:-1], other, other_ok, rng=g)
    twice = ResponseColumns(**{**cols.__dict__, "sample_idx": np.zeros(len(cols), dtype=np.int64)})
    with pytest.raises(ValueError, match="two responses for sample 0"):
        gain_anatomy_columns(twice, ok, other, other_ok, rng=g)
