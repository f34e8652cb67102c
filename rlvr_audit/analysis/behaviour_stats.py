"""Behaviour statistics per unit and per checkpoint pair, from the per-response detectors of
:mod:`rlvr_audit.analysis.behaviour`.

:func:`summarize_unit` gives a unit's code frequency, accuracy given code and given language,
and flag rates, each with a problem-clustered bootstrap interval (:class:`UnitBehaviour`);
:func:`transition_table` gives the paper's Table 2 for an RLVR checkpoint against its base: the
problems moving Code->Code, Code->Lang, Lang->Code, Lang->Lang and the share of the accuracy
gain each group explains (:class:`TransitionTable`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from ..core.records import Generation, Grade
from . import stats
from .behaviour import DEFAULT_DEFINITION, ResponseBehaviour, get_definition, response_behaviour

__all__ = [
    "RATIO_METHOD",
    "STRATEGIES",
    "TRANSITIONS",
    "Behaviours",
    "Correctness",
    "ProblemTransition",
    "Strategy",
    "TransitionCell",
    "TransitionTable",
    "UnitBehaviour",
    "correctness_from_grades",
    "summarize_unit",
    "transition_table",
]


Correctness = Mapping[tuple[str, int], bool]
"""Per-sample correctness: ``(problem_id, sample_idx) -> bool`` (True = graded ``correct``)."""


Behaviours = Mapping[tuple[str, int], ResponseBehaviour]
"""Precomputed :func:`response_behaviour` results by ``(problem_id, sample_idx)``: pass them to
:func:`summarize_unit` / :func:`transition_table` to classify each response only once when a
unit is summarised several times (per grader, per definition, per comparison)."""


def correctness_from_grades(grades: Iterable[Grade]) -> dict[tuple[str, int], bool]:
    """``{(problem_id, sample_idx): verdict == "correct"}`` from one unit's grades of one grader.

    Raises ValueError for grades of several units or graders, or two grades of one sample.
    """
    out: dict[tuple[str, int], bool] = {}
    units: set[str] = set()
    graders: set[str] = set()
    for g in grades:
        units.add(g.unit_key)
        graders.add(g.grader_id)
        key = (g.problem_id, g.sample_idx)
        if key in out:
            raise ValueError(f"problem {key[0]!r} has two grades for sample {key[1]}")
        out[key] = g.verdict == "correct"
    if len(units) > 1:
        raise ValueError(f"grades of several units mixed: {sorted(units)}; pass one unit's grades")
    if len(graders) > 1:
        raise ValueError(f"grades of several graders mixed: {sorted(graders)}; pass one grader's grades")
    return out


@dataclass
class _Unit:
    """One unit's responses grouped by problem (problem order: sorted ids)."""

    unit_key: str
    checkpoint_id: str
    task: str
    template_id: str
    problem_ids: list[str]
    responses: list[list[tuple[Generation, ResponseBehaviour]]]


def _group(generations: Iterable[Generation], name: str, behaviours: Behaviours | None = None) -> _Unit:
    by_problem: dict[str, dict[int, Generation]] = {}
    units: set[str] = set()
    first: Generation | None = None
    for g in generations:
        if not isinstance(g, Generation):
            raise TypeError(f"{name} must hold Generation records; got {type(g).__name__}")
        first = first or g
        units.add(g.unit_key)
        samples = by_problem.setdefault(g.problem_id, {})
        if g.sample_idx in samples:
            raise ValueError(f"{name}: problem {g.problem_id!r} has two generations for sample {g.sample_idx}")
        samples[g.sample_idx] = g
    if first is None:
        raise ValueError(f"{name} is empty: no generations given")
    if len(units) > 1:
        raise ValueError(f"{name} mixes generations of several units: {sorted(units)}; pass one unit's generations")
    ids = sorted(by_problem)
    cache = behaviours if behaviours is not None else {}
    responses = [
        [(g, cache.get((pid, i)) or response_behaviour(g)) for i, g in sorted(by_problem[pid].items())] for pid in ids
    ]
    return _Unit(first.unit_key, first.checkpoint_id, first.task, first.template_id, ids, responses)


@dataclass(frozen=True)
class ResponseColumns:
    """One unit's classified responses as arrays, sorted by (problem id, sample index): what
    :func:`summarize_unit` and :func:`transition_table` compute from (built from records and
    :func:`response_behaviour` results, or read from the store's column cache)."""

    unit_key: str
    checkpoint_id: str
    task: str
    template_id: str
    problem_ids: list[str]
    """Distinct problem ids, sorted."""
    row: npt.NDArray[np.int64]
    """Per response, the index of its problem in :attr:`problem_ids`."""
    sample_idx: npt.NDArray[np.int64]
    """Per response, its sample index."""
    code: dict[str, npt.NDArray[np.bool_]]
    """Per code definition name, per response: code reasoning."""
    truncated: npt.NDArray[np.bool_]
    repetition: npt.NDArray[np.bool_]
    empty: npt.NDArray[np.bool_]
    boxed_nothing: npt.NDArray[np.bool_]
    truncation_known: npt.NDArray[np.bool_]
    n_tokens: npt.NDArray[np.int64]
    """Per response, generated tokens (``-1`` when unknown)."""

    def __len__(self) -> int:
        return int(self.row.size)

    def take(self, mask: npt.NDArray[np.bool_]) -> ResponseColumns:
        """The responses where ``mask`` holds (problems renumbered)."""
        kept = np.unique(self.row[mask])
        renumber = np.full(len(self.problem_ids), -1, dtype=np.int64)
        renumber[kept] = np.arange(kept.size)
        return ResponseColumns(
            self.unit_key,
            self.checkpoint_id,
            self.task,
            self.template_id,
            [self.problem_ids[i] for i in kept],
            renumber[self.row[mask]],
            self.sample_idx[mask],
            {name: v[mask] for name, v in self.code.items()},
            self.truncated[mask],
            self.repetition[mask],
            self.empty[mask],
            self.boxed_nothing[mask],
            self.truncation_known[mask],
            self.n_tokens[mask],
        )


def _columns_of(unit: _Unit) -> ResponseColumns:
    """The arrays of a grouped unit (responses in problem, then sample order)."""
    pairs = [(i, g, b) for i, rows in enumerate(unit.responses) for g, b in rows]
    flags = [b.flags for _, _, b in pairs]
    names = {name for _, _, b in pairs for name in b.code}
    return ResponseColumns(
        unit.unit_key,
        unit.checkpoint_id,
        unit.task,
        unit.template_id,
        unit.problem_ids,
        np.array([i for i, _, _ in pairs], dtype=np.int64),
        np.array([g.sample_idx for _, g, _ in pairs], dtype=np.int64),
        {name: np.array([b.code.get(name, False) for _, _, b in pairs], dtype=bool) for name in sorted(names)},
        np.array([f.truncated for f in flags], dtype=bool),
        np.array([f.repetition for f in flags], dtype=bool),
        np.array([f.empty for f in flags], dtype=bool),
        np.array([f.boxed_nothing for f in flags], dtype=bool),
        np.array([f.truncation_known for f in flags], dtype=bool),
        np.array([-1 if f.n_tokens is None else f.n_tokens for f in flags], dtype=np.int64),
    )


def _correct_of(unit: _Unit, correct: Correctness, name: str) -> list[list[bool]]:
    """Per problem, per sample, the correctness; ValueError naming the first missing samples."""
    if not isinstance(correct, Mapping):
        raise TypeError(f"{name} must map (problem_id, sample_idx) to bool; got {type(correct).__name__}")
    out: list[list[bool]] = []
    missing: list[tuple[str, int]] = []
    for pid, rows in zip(unit.problem_ids, unit.responses, strict=True):
        row = []
        for g, _ in rows:
            value = correct.get((pid, g.sample_idx))
            if value is None:
                missing.append((pid, g.sample_idx))
                row.append(False)
            elif not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{name}[({pid!r}, {g.sample_idx})] must be a bool; got {value!r}")
            else:
                row.append(bool(value))
        out.append(row)
    if missing:
        shown = ", ".join(f"({p!r}, {s})" for p, s in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise ValueError(
            f"{name} has no correctness for {len(missing)} sample(s) of unit {unit.unit_key}: {shown}{more}; "
            "grade every sample first (correctness_from_grades builds the mapping from Grade records)"
        )
    return out


RATIO_METHOD = "bootstrap-percentile(problems,ratio)"
"""Method string of the intervals of :class:`UnitBehaviour`."""


@dataclass(frozen=True)
class UnitBehaviour:
    """Code reasoning and behaviour flags of one unit, with problem-clustered bootstrap intervals.

    Every rate is a *pooled ratio over responses*: (responses with the property) / (responses
    in the group), so with ``k`` samples for every problem it is the mean over problems of each
    problem's share. Intervals resample problems (all samples of a problem together, one
    :class:`~rlvr_audit.analysis.stats.ResamplingPlan` shared by every rate of the unit) and recompute
    each ratio; percentile intervals (``stats.Interval``, method :data:`RATIO_METHOD`).

    Accuracy given code (or language) is the accuracy of the code (language) responses:
    correct code responses / code responses. A problem with samples in both groups is one
    cluster: a replicate that draws it adds its code samples to the code ratio and its language
    samples to the language ratio, so the two conditional accuracies (and their difference)
    are computed on the same resampled problems. Replicates that draw no response of a group
    leave that group's ratio undefined and are left out of its interval (the interval is then
    conditional on the group being observed; with few such problems, see
    :attr:`n_problems_code` / :attr:`n_problems_language`, it is unreliable).
    """

    unit_key: str
    """Unit key."""
    checkpoint_id: str
    """Checkpoint id."""
    task: str
    """Task id."""
    template_id: str
    """Prompt template id."""
    definition: str
    """Code definition used (a key of :data:`CODE_DEFINITIONS`)."""
    n_problems: int
    """Problems with at least one response."""
    n_responses: int
    """Responses (samples) in all."""
    k: int | None
    """Samples per problem when equal for every problem, else ``None``."""
    n_code: int
    """Code-reasoning responses."""
    n_language: int
    """Language-only responses."""
    n_problems_code: int
    """Problems with at least one code-reasoning response."""
    n_problems_language: int
    """Problems with at least one language-only response."""
    code_frequency: stats.Interval
    """Share of responses that are code reasoning."""
    accuracy: stats.Interval | None
    """Share of responses graded correct (avg@k when ``k`` is equal); ``None`` without correctness."""
    accuracy_code: stats.Interval | None
    """Accuracy of the code responses; ``None`` without correctness or without code responses."""
    accuracy_language: stats.Interval | None
    """Accuracy of the language-only responses; ``None`` without correctness or such responses."""
    code_minus_language: stats.Interval | None
    """``accuracy_code - accuracy_language`` (a difference of ratios, same replicates); ``None``
    unless both are defined."""
    truncation_rate: stats.Interval | None
    """Share of responses cut at the token limit, among those whose truncation is known
    (:attr:`~rlvr_audit.analysis.behaviour.BehaviourFlags.truncation_known`); ``None`` when it is
    known for none (imported units)."""
    repetition_rate: stats.Interval
    """Share of responses with a degenerate repetition."""
    empty_rate: stats.Interval
    """Share of blank responses."""
    boxed_nothing_rate: stats.Interval
    """Share of responses without a boxed final answer."""
    mean_tokens: float | None
    """Mean generated tokens over the responses whose count is known; ``None`` if none is."""
    n_tokens_known: int
    """Responses with a known token count."""
    n_resamples: int
    """Bootstrap replicates."""


def _ratio_intervals(
    numerators: npt.NDArray[np.float64],
    denominators: npt.NDArray[np.float64],
    num_reps: npt.NDArray[np.float64],
    den_reps: npt.NDArray[np.float64],
    level: float,
) -> list[stats.Interval | None]:
    """Percentile intervals of ``sum(num[:, j]) / sum(den[:, j])`` under problem resampling.

    ``numerators`` and ``denominators`` are ``(n_problems, m)``; ``num_reps`` and ``den_reps``
    their bootstrap replicates on one plan (``(n_resamples, m)``, :meth:`ResamplingPlan.replicates`).
    A column with a zero total denominator gives ``None``; replicates with a zero denominator
    are left out.
    """
    m = numerators.shape[1]
    out: list[stats.Interval | None] = []
    alpha = (1.0 - level) / 2.0
    for j in range(m):
        total = float(denominators[:, j].sum())
        if total == 0:
            out.append(None)
            continue
        value = float(numerators[:, j].sum()) / total
        ok = den_reps[:, j] > 0
        reps = num_reps[ok, j] / den_reps[ok, j]
        if reps.size == 0:
            out.append(stats.Interval(value, value, value, level, RATIO_METHOD, se=0.0))
            continue
        low, high = np.quantile(reps, [alpha, 1.0 - alpha])
        se = float(reps.std(ddof=1)) if reps.size > 1 else 0.0
        out.append(stats.Interval(value, float(low), float(high), level, RATIO_METHOD, se=se))
    return out


def _difference_interval(
    numerators: npt.NDArray[np.float64],
    denominators: npt.NDArray[np.float64],
    num_reps: npt.NDArray[np.float64],
    den_reps: npt.NDArray[np.float64],
    level: float,
) -> stats.Interval | None:
    """Interval of ``ratio(column 0) - ratio(column 1)`` on shared replicates; ``None`` if undefined."""
    if denominators[:, 0].sum() == 0 or denominators[:, 1].sum() == 0:
        return None
    value = float(numerators[:, 0].sum() / denominators[:, 0].sum() - numerators[:, 1].sum() / denominators[:, 1].sum())
    ok = (den_reps[:, 0] > 0) & (den_reps[:, 1] > 0)
    if not ok.any():
        return stats.Interval(value, value, value, level, "paired-" + RATIO_METHOD, se=0.0)
    reps = num_reps[ok, 0] / den_reps[ok, 0] - num_reps[ok, 1] / den_reps[ok, 1]
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(reps, [alpha, 1.0 - alpha])
    se = float(reps.std(ddof=1)) if reps.size > 1 else 0.0
    return stats.Interval(value, float(low), float(high), level, "paired-" + RATIO_METHOD, se=se)


def summarize_unit(
    generations: Iterable[Generation],
    *,
    rng: np.random.Generator,
    correct: Correctness | None = None,
    definition: str = DEFAULT_DEFINITION,
    n_resamples: int = 2000,
    level: float = 0.95,
    behaviours: Behaviours | None = None,
) -> UnitBehaviour:
    """Code reasoning and behaviour flags of one unit's generations (see :class:`UnitBehaviour`).

    Args:
        generations: The unit's :class:`~rlvr_audit.core.records.Generation` records (one unit only).
        rng: The bootstrap's random generator (``np.random.default_rng(seed)``); the same state
            and data give the same intervals.
        correct: ``{(problem_id, sample_idx): bool}`` for every generation (extra keys are
            ignored); without it the accuracy fields are ``None``.
        definition: Code definition, a key of :data:`CODE_DEFINITIONS`.
        n_resamples: Bootstrap replicates.
        level: Confidence level of the intervals.
        behaviours: :func:`response_behaviour` of these generations, already computed, by
            ``(problem_id, sample_idx)`` (see :data:`Behaviours`); samples missing from it are
            classified here.

    Raises:
        UnknownNameError: unknown ``definition`` (the message names the valid ones).
        ValueError: no generations, several units, two generations of one sample, a sample
            without correctness, bad ``n_resamples`` or ``level``.
        TypeError: ``rng`` not a numpy Generator, records of the wrong type.
    """
    get_definition(definition)
    stats.check_bootstrap_options(n_resamples=n_resamples, level=level, method="percentile")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, e.g. np.random.default_rng(seed); got {rng!r}")
    unit = _group(generations, "generations", behaviours)
    right = _correct_of(unit, correct, "correct") if correct is not None else None
    flat = np.array([ok for oks in right for ok in oks], dtype=bool) if right is not None else None
    return summarize_columns(
        _columns_of(unit), rng=rng, correct=flat, definition=definition, n_resamples=n_resamples, level=level
    )


def summarize_columns(
    cols: ResponseColumns,
    *,
    rng: np.random.Generator,
    correct: npt.NDArray[np.bool_] | None = None,
    definition: str = DEFAULT_DEFINITION,
    n_resamples: int = 2000,
    level: float = 0.95,
) -> UnitBehaviour:
    """:func:`summarize_unit` of responses given as arrays (``correct``: per response, aligned
    with ``cols``; ``None``: no accuracy). The same data give the same numbers either way."""
    many = summarize_definitions(
        cols, rng=rng, correct=correct, definitions=(definition,), n_resamples=n_resamples, level=level
    )
    return many[definition]


def summarize_definitions(
    cols: ResponseColumns,
    *,
    rng: np.random.Generator,
    correct: npt.NDArray[np.bool_] | None = None,
    definitions: Sequence[str] = (DEFAULT_DEFINITION,),
    n_resamples: int = 2000,
    level: float = 0.95,
) -> dict[str, UnitBehaviour]:
    """:func:`summarize_columns` under several code definitions on one plan drawn from ``rng``:
    the same numbers as one call per definition, each with a generator in ``rng``'s state (the
    replicates are sums of whole counts, exact in any order, so one pass serves all)."""
    for definition in definitions:
        get_definition(definition)
    stats.check_bootstrap_options(n_resamples=n_resamples, level=level, method="percentile")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, e.g. np.random.default_rng(seed); got {rng!r}")
    if len(cols) == 0:
        raise ValueError("generations is empty: no generations given")
    if not definitions:
        raise ValueError("definitions is empty")
    n = len(cols.problem_ids)
    ok = correct if correct is not None else np.zeros(len(cols), dtype=bool)
    # columns per definition: responses, code, truncated, repetition, empty, boxed_nothing,
    #          correct, code responses, correct code, language responses, correct language
    #          truncation known
    blocks = []
    for definition in definitions:
        is_code = cols.code[definition]
        blocks += [
            np.ones(len(cols), dtype=bool),
            is_code,
            cols.truncated,
            cols.repetition,
            cols.empty,
            cols.boxed_nothing,
            ok,
            is_code,
            ok & is_code,
            ~is_code,
            ok & ~is_code,
            cols.truncation_known,
        ]
    values = np.stack(blocks, axis=1).astype(np.float64)
    tables = np.zeros((n, values.shape[1]), dtype=np.float64)
    np.add.at(tables, cols.row, values)
    sizes = set(np.bincount(cols.row, minlength=n).tolist())
    tokens = cols.n_tokens[cols.n_tokens >= 0]
    plan = stats.ResamplingPlan(n, n_resamples, rng=rng)
    all_reps = plan.replicates(tables)  # one pass over the plan serves every rate below
    out: dict[str, UnitBehaviour] = {}
    for d, definition in enumerate(definitions):
        table = tables[:, 12 * d : 12 * d + 12]
        reps = all_reps[:, 12 * d : 12 * d + 12]
        six = [0] * 6
        rates = _ratio_intervals(table[:, 1:7], table[:, six], reps[:, 1:7], reps[:, six], level)
        code_freq, _, rep, empty, boxed, accuracy = rates
        (trunc,) = _ratio_intervals(table[:, [2]], table[:, [11]], reps[:, [2]], reps[:, [11]], level)
        acc_code = acc_lang = diff = None
        if correct is not None:
            num, den = [8, 10], [7, 9]
            acc_code, acc_lang = _ratio_intervals(table[:, num], table[:, den], reps[:, num], reps[:, den], level)
            diff = _difference_interval(table[:, num], table[:, den], reps[:, num], reps[:, den], level)
        assert code_freq and rep and empty and boxed and accuracy  # every denominator is > 0
        out[definition] = UnitBehaviour(
            unit_key=cols.unit_key,
            checkpoint_id=cols.checkpoint_id,
            task=cols.task,
            template_id=cols.template_id,
            definition=definition,
            n_problems=n,
            n_responses=int(table[:, 0].sum()),
            k=next(iter(sizes)) if len(sizes) == 1 else None,
            n_code=int(table[:, 1].sum()),
            n_language=int(table[:, 9].sum()),
            n_problems_code=int(np.count_nonzero(table[:, 1])),
            n_problems_language=int(np.count_nonzero(table[:, 9])),
            code_frequency=code_freq,
            accuracy=accuracy if correct is not None else None,
            accuracy_code=acc_code,
            accuracy_language=acc_lang,
            code_minus_language=diff,
            truncation_rate=trunc,
            repetition_rate=rep,
            empty_rate=empty,
            boxed_nothing_rate=boxed,
            mean_tokens=float(np.mean(tokens)) if tokens.size else None,
            n_tokens_known=int(tokens.size),
            n_resamples=n_resamples,
        )
    return out


Strategy = Literal["code", "language"]


STRATEGIES: tuple[Strategy, Strategy] = ("code", "language")
"""A problem's strategy in one unit."""


TRANSITIONS: tuple[tuple[Strategy, Strategy], ...] = (
    ("code", "code"),
    ("code", "language"),
    ("language", "code"),
    ("language", "language"),
)
"""The four cells, in the paper's order: Code->Code, Code->Lang, Lang->Code, Lang->Lang."""


_SHORT = {"code": "Code", "language": "Lang"}


_ZERO_GAIN = 1e-12
"""A total gain smaller than this in absolute value is zero (float noise): shares are ``None``."""


@dataclass(frozen=True)
class TransitionCell:
    """The problems whose strategy went from :attr:`before` (base) to :attr:`after` (RLVR)."""

    before: Strategy
    """Strategy in the base unit."""
    after: Strategy
    """Strategy in the RLVR unit."""
    n_problems: int
    """Problems in the cell."""
    acc_before: float | None
    """Mean per-problem accuracy of the base unit on these problems (``None`` for an empty cell)."""
    acc_after: float | None
    """Mean per-problem accuracy of the RLVR unit on these problems."""
    contribution: float
    """``(n_problems / N) * (acc_after - acc_before)``: this cell's part of the total gain
    (0 for an empty cell)."""
    share: float | None
    """``contribution / gain``; ``None`` when the total gain is 0. Shares sum to 1 and can be
    negative (a cell that lost accuracy) or above 1 (when another cell lost)."""

    @property
    def label(self) -> str:
        """``Code->Code``, ``Code->Lang``, ``Lang->Code`` or ``Lang->Lang``."""
        return f"{_SHORT[self.before]}->{_SHORT[self.after]}"


@dataclass(frozen=True)
class ProblemTransition:
    """One problem's strategy and accuracy in both units."""

    problem_id: str
    """Problem id."""
    code_share_before: float
    """Share of the base unit's samples of this problem that are code reasoning."""
    code_share_after: float
    """Same, in the RLVR unit."""
    acc_before: float
    """Share of the base unit's samples graded correct."""
    acc_after: float
    """Same, in the RLVR unit."""

    @property
    def before(self) -> Strategy:
        """Base strategy: ``code`` when more than half of its samples are code, else ``language``."""
        return "code" if self.code_share_before > 0.5 else "language"

    @property
    def after(self) -> Strategy:
        """RLVR strategy, by the same majority rule."""
        return "code" if self.code_share_after > 0.5 else "language"


@dataclass(frozen=True)
class TransitionTable:
    """How an RLVR checkpoint's gain over its base splits by change of strategy (the paper's Table 2).

    Each shared problem gets one strategy per unit: with one sample, that sample's
    classification; with ``k > 1`` samples, ``code`` when *more than half* of them are code
    reasoning (a tie is ``language``). Its accuracy in a unit is the share of its samples graded
    correct (avg@k per problem). With ``N`` shared problems and cell ``c`` holding ``n_c`` of
    them, the total gain decomposes exactly::

        gain = acc_after - acc_before = sum_c (n_c / N) * (acc_after_c - acc_before_c)

    where ``acc_*_c`` is the mean per-problem accuracy over the cell's problems. Each cell's
    term is its :attr:`TransitionCell.contribution`; its :attr:`TransitionCell.share` is the
    term over the gain (the paper's "partial contribution").
    """

    base_unit: str
    """Unit key of the base (before) side."""
    rlvr_unit: str
    """Unit key of the RLVR (after) side."""
    base_checkpoint: str
    """Checkpoint id of the base side."""
    rlvr_checkpoint: str
    """Checkpoint id of the RLVR side."""
    definition: str
    """Code definition used."""
    n_problems: int
    """Problems shared by both units (the table's ``N``)."""
    n_base_only: int
    """Problems with generations only in the base unit (left out)."""
    n_rlvr_only: int
    """Problems with generations only in the RLVR unit (left out)."""
    acc_before: float
    """Base accuracy on the shared problems (mean per-problem accuracy)."""
    acc_after: float
    """RLVR accuracy on the shared problems."""
    cells: tuple[TransitionCell, ...]
    """The four cells in :data:`TRANSITIONS` order."""
    problems: tuple[ProblemTransition, ...] = field(repr=False)
    """Per problem, in sorted id order."""

    @property
    def gain(self) -> float:
        """``acc_after - acc_before`` (equals the sum of the cells' contributions)."""
        return self.acc_after - self.acc_before

    def cell(self, before: Strategy, after: Strategy) -> TransitionCell:
        """The cell ``before -> after`` (each ``"code"`` or ``"language"``)."""
        for c in self.cells:
            if c.before == before and c.after == after:
                return c
        raise ValueError(f"no cell {before!r} -> {after!r}; strategies are {', '.join(map(repr, STRATEGIES))}")

    def rows(self) -> list[dict[str, object]]:
        """One dict per cell (``transition``, ``n_problems``, ``acc_before``, ``acc_after``,
        ``contribution``, ``share``), for a table or CSV."""
        return [
            {
                "transition": c.label,
                "n_problems": c.n_problems,
                "acc_before": c.acc_before,
                "acc_after": c.acc_after,
                "contribution": c.contribution,
                "share": c.share,
            }
            for c in self.cells
        ]


def _problem_rows(
    cols: ResponseColumns, correct: npt.NDArray[np.bool_], definition: str
) -> dict[str, tuple[float, float]]:
    """``problem_id -> (code share, accuracy)`` (each a count over the problem's samples)."""
    n = len(cols.problem_ids)
    size = np.bincount(cols.row, minlength=n)
    codes = np.bincount(cols.row, weights=cols.code[definition].astype(np.int64), minlength=n).astype(np.int64)
    oks = np.bincount(cols.row, weights=correct.astype(np.int64), minlength=n).astype(np.int64)
    return {
        pid: (c / m, o / m)
        for pid, c, o, m in zip(cols.problem_ids, codes.tolist(), oks.tolist(), size.tolist(), strict=True)
    }


def transition_table(
    base: Iterable[Generation],
    rlvr: Iterable[Generation],
    *,
    base_correct: Correctness,
    rlvr_correct: Correctness,
    definition: str = DEFAULT_DEFINITION,
    base_behaviours: Behaviours | None = None,
    rlvr_behaviours: Behaviours | None = None,
) -> TransitionTable:
    """The strategy-transition table of an RLVR unit against its base on their shared problems.

    Args:
        base: The base unit's generations (the *before* side).
        rlvr: The RLVR unit's generations (the *after* side), same task and prompt in practice.
        base_correct: ``{(problem_id, sample_idx): bool}`` for every base generation.
        rlvr_correct: The same for every RLVR generation.
        definition: Code definition, a key of :data:`CODE_DEFINITIONS`.
        base_behaviours: Already computed :func:`response_behaviour` of the base generations
            (see :data:`Behaviours`); missing samples are classified here.
        rlvr_behaviours: The same for the RLVR generations.

    Problems present in only one unit are left out and counted (:attr:`TransitionTable.n_base_only`,
    :attr:`TransitionTable.n_rlvr_only`). See :class:`TransitionTable` for the decomposition.

    Raises:
        UnknownNameError: unknown ``definition``.
        ValueError: empty or mixed-unit inputs, duplicate samples, missing correctness, both
            sides the same unit, or no shared problem.
    """
    get_definition(definition)
    before_unit = _group(base, "base", base_behaviours)
    after_unit = _group(rlvr, "rlvr", rlvr_behaviours)
    if before_unit.unit_key == after_unit.unit_key:
        raise ValueError(f"base and rlvr are the same unit ({before_unit.unit_key}); pass two different units")
    before_ok = _correct_of(before_unit, base_correct, "base_correct")
    after_ok = _correct_of(after_unit, rlvr_correct, "rlvr_correct")
    return transition_columns(
        _columns_of(before_unit),
        _columns_of(after_unit),
        base_correct=np.array([ok for oks in before_ok for ok in oks], dtype=bool),
        rlvr_correct=np.array([ok for oks in after_ok for ok in oks], dtype=bool),
        definition=definition,
    )


def transition_columns(
    base: ResponseColumns,
    rlvr: ResponseColumns,
    *,
    base_correct: npt.NDArray[np.bool_],
    rlvr_correct: npt.NDArray[np.bool_],
    definition: str = DEFAULT_DEFINITION,
) -> TransitionTable:
    """:func:`transition_table` of responses given as arrays (``*_correct``: per response, aligned
    with its side). The same data give the same table either way."""
    get_definition(definition)
    before_unit, after_unit = base, rlvr
    if before_unit.unit_key == after_unit.unit_key:
        raise ValueError(f"base and rlvr are the same unit ({before_unit.unit_key}); pass two different units")
    before = _problem_rows(base, base_correct, definition)
    after = _problem_rows(rlvr, rlvr_correct, definition)
    shared = sorted(set(before) & set(after))
    if not shared:
        raise ValueError(
            f"base ({before_unit.unit_key}) and rlvr ({after_unit.unit_key}) share no problem; "
            "a transition table needs the same problems on both sides"
        )
    problems = tuple(
        ProblemTransition(pid, before[pid][0], after[pid][0], before[pid][1], after[pid][1]) for pid in shared
    )
    n = len(problems)
    acc_before = sum(p.acc_before for p in problems) / n
    acc_after = sum(p.acc_after for p in problems) / n
    gain = acc_after - acc_before
    has_gain = abs(gain) > _ZERO_GAIN
    cells = []
    for b, a in TRANSITIONS:
        members = [p for p in problems if p.before == b and p.after == a]
        if not members:
            cells.append(TransitionCell(b, a, 0, None, None, 0.0, 0.0 if has_gain else None))
            continue
        cb = sum(p.acc_before for p in members) / len(members)
        ca = sum(p.acc_after for p in members) / len(members)
        contribution = len(members) / n * (ca - cb)
        share = contribution / gain if has_gain else None
        cells.append(TransitionCell(b, a, len(members), cb, ca, contribution, share))
    return TransitionTable(
        base_unit=before_unit.unit_key,
        rlvr_unit=after_unit.unit_key,
        base_checkpoint=before_unit.checkpoint_id,
        rlvr_checkpoint=after_unit.checkpoint_id,
        definition=definition,
        n_problems=n,
        n_base_only=len(set(before) - set(after)),
        n_rlvr_only=len(set(after) - set(before)),
        acc_before=acc_before,
        acc_after=acc_after,
        cells=tuple(cells),
        problems=problems,
    )
