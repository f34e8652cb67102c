"""The claims ledger: published numbers about RLVR as typed data, and what they survive.

The ledger lives in ``checkpoints.yaml`` beside the families it talks about, in four sections:

- ``sources``: every publication or repository a number comes from (id -> title, url, date);
  ``claimant: true`` marks the versions of the audited paper itself (preprint, arXiv v1, v2).
- ``protocols``: named evaluation protocols (samples per problem, temperature, top-p, new
  tokens, engine), e.g. ``sr-greedy`` (MATH-500 pass@1) and ``sr-avg8`` (AMC/AIME avg@8).
- ``benchmarks``: benchmarks that claims mention but that are not tasks in ``tasks/``
  (AMC23, Minerva, OlympiadBench, LiveMathBench, ...), with their number of problems.
- ``claims``: one entry per published number, each with an ``id`` and a ``kind``
  (:data:`Claim` lists the kinds). All values are in **percent points**, as papers print them.

Every reference is checked when the registry is loaded: model families, checkpoints (family,
reward and step must agree), sources, protocols, then (:meth:`Ledger.check_config`) benchmark
ids against ``tasks/`` and prompt ids against ``prompts/``. A printed gain must equal
value - baseline to within :data:`GAIN_TOLERANCE` unless the entry says why not
(``mismatch_note``). Every error names the entry.

Two analyses are built from the ledger (and, when a store holds generations of the claimed
models, from our own measurements):

- :func:`baseline_correction`: for every gain claim with a claimed final value, the adjusted
  gain ``claimed value - corrected baseline`` against every corrected baseline of the same
  base model, benchmark and a metric-compatible protocol (cited ones from the ledger, measured
  ones from the store), with a verdict in words (:func:`verdict`).
- :func:`resolution`: for every claimed gain, the confidence-interval half-width and the
  minimum detectable effect implied by the benchmark's size and the claim's protocol
  (:func:`rlvr_audit.stats.ci_half_width`, :func:`rlvr_audit.stats.minimum_detectable_effect`),
  flagging gains smaller than what the benchmark can resolve.

Numbers we only cite and numbers we measured are always visibly distinct: the ``kind`` column
of every table says ``cited`` or ``measured``, and measured cells carry their confidence
interval.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError, model_validator

from .configfile import StrictModel, describe_validation_error
from .errors import ConfigError, UnknownNameError
from .html import CITED_HOOK

if TYPE_CHECKING:
    import pandas as pd

    from .analyse import Analysis
    from .records import Comparison, Estimate
    from .registry import Checkpoint
    from .store import UnitInfo

# ----------------------------------------------------------------------------------------------
# Vocabulary
# ----------------------------------------------------------------------------------------------

REWARDS: dict[str, str] = {
    "ground_truth": "1 if the answer matches the gold label",
    "majority_vote": "1 if the answer matches the pre-RL model's majority-vote label (fixed offline)",
    "one_shot": "ground truth on a single training example (pi_1)",
    "format_boxed": "1 if a non-empty \\boxed{} answer can be extracted (no correctness check)",
    "incorrect": "1 if the answer matches a wrong majority-vote label",
    "random": "Bernoulli(gamma), independent of the response (gamma = 0.5 unless said)",
    "python": "1 if the response contains 'python'",
    "compound": "logical AND of rewards (e.g. format AND NOT python); details in reward_detail",
    "no_repetition": "0 if a substring repeats more than 10 times, else 1",
}
"""Reward ids a claim may name, with what each rewards."""

Exactness = Literal["exact", "approximate"]
"""``exact``: printed verbatim in a table, figure label, code or prose; ``approximate``: read
off a plotted curve by eye, or hedged in prose (``~``, 'around', ranges)."""

ReadFrom = Literal["table", "figure_label", "figure_curve", "prose", "code", "derived"]
"""Where in the source the number was read."""

Transition = Literal["code_code", "code_lang", "lang_code", "lang_lang"]
"""Reasoning-strategy transition from step 0 to the trained step (code = Python reasoning,
lang = natural-language reasoning)."""

ClippingVariant = Literal["with_clipping", "clipping_disabled", "mini_batch_raised", "rollout_batch_reduced"]
"""The clipping ablation's variants: standard GRPO clipping; the clip term removed in code;
mini-batch = rollout batch (one update per rollout, so the ratio is 1 and never clips);
rollout batch reduced to 8 prompts (one update per rollout)."""

Percent = Annotated[float, Field(ge=0.0, le=100.0)]
"""An accuracy or frequency in percent."""
Points = Annotated[float, Field(ge=-100.0, le=100.0)]
"""A difference of accuracies in percent points."""

GAIN_TOLERANCE = 0.15
"""Largest allowed |value - baseline - gain| (points) for an entry without a ``mismatch_note``:
printed numbers are rounded to 0.1, so honest rounding stays within 0.1."""

SHRINK_FRACTION = 0.5
"""A claimed gain *shrinks* when less than this fraction of it survives baseline correction."""

ID_PATTERN = r"^[a-z0-9][a-z0-9._+-]*$"
"""Claim ids: lower case, digits and ``._+-`` (e.g. ``pre.fig1.qwen2.5-math-7b.random``)."""

_METRIC = re.compile(r"^(pass|avg)@[1-9][0-9]*$")


# ----------------------------------------------------------------------------------------------
# Sections other than claims
# ----------------------------------------------------------------------------------------------


class Source(StrictModel):
    """A publication, post or repository that numbers are taken from."""

    title: str
    """Title as published."""
    url: str
    """Where it can be read (a pinned commit or arXiv version where possible)."""
    date: str | None = None
    """Publication date or commit, as the source states it."""
    also: list[str] = Field(default_factory=list)
    """Mirrors and other addresses of the same text."""
    claimant: bool = False
    """``true`` for the audited paper's own versions (its preprint, arXiv versions, code)."""


class ProtocolSpec(StrictModel):
    """How a number was evaluated: samples per problem and decoding settings."""

    n: int | None = Field(default=None, ge=1)
    """Samples (or seeds) per problem: 1 for greedy pass@1, 8 for avg@8; ``null`` if unknown."""
    temperature: float | None = Field(default=None, ge=0.0)
    """Sampling temperature (0 = greedy); ``null`` if unknown."""
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    """Nucleus mass; ``null`` if unknown."""
    top_k: int | None = Field(default=None, ge=1)
    """Top-k cut-off, where the source sets one."""
    max_new_tokens: int | None = Field(default=None, ge=1)
    """New-token limit; ``null`` if unknown."""
    engine: str = ""
    """Evaluation framework or engine (``vLLM``, ``lighteval 0.8.1 + vLLM``, ...)."""
    description: str = ""
    """Anything else that defines it (who used it, seeds, what is unknown)."""

    @property
    def metric(self) -> str | None:
        """The accuracy metric this protocol yields: ``pass@1`` for one sample, else ``avg@n``."""
        if self.n is None:
            return None
        return "pass@1" if self.n == 1 else f"avg@{self.n}"

    def label(self) -> str:
        """Short human description, e.g. ``greedy, 1 sample, 3072 tokens``."""
        parts: list[str] = []
        if self.temperature is not None:
            dec = "greedy" if self.temperature == 0 else f"T={self.temperature:g}"
            if self.top_p is not None and self.top_p < 1:
                dec += f", top-p {self.top_p:g}"
            if self.top_k is not None:
                dec += f", top-k {self.top_k}"
            parts.append(dec)
        if self.n is not None:
            parts.append(f"{self.n} sample{'s' if self.n > 1 else ''}")
        if self.max_new_tokens is not None:
            parts.append(f"{self.max_new_tokens} tokens")
        return ", ".join(parts) or "settings not stated"


class BenchmarkSpec(StrictModel):
    """A benchmark that claims mention but that is not a task in ``tasks/``."""

    display_name: str
    """Name shown in reports."""
    n_problems: int | None = Field(default=None, ge=1)
    """Number of problems (``null`` when the source does not say)."""
    notes: str = ""
    """What it is and how it differs from similar tasks."""


# ----------------------------------------------------------------------------------------------
# Claim kinds
# ----------------------------------------------------------------------------------------------


class _Entry(StrictModel):
    """Fields every ledger entry has."""

    id: str = Field(pattern=ID_PATTERN)
    """Unique id, e.g. ``v1.fig1.qwen2.5-math-7b.random``."""
    source: str
    """Source id (a key of ``sources``); for the audited paper this is its version
    (``SR-preprint``, ``SR-v1``, ``SR-v2``), and versions are never mixed in one entry."""
    also: list[str] = Field(default_factory=list)
    """Other sources that print or corroborate the same number."""
    location: str = ""
    """Where in the source: table, figure, section."""
    exactness: Exactness
    """See :data:`Exactness`."""
    read_from: ReadFrom
    """See :data:`ReadFrom`."""
    secondary: bool = False
    """The number is quoted by another text; the primary source was not seen."""
    notes: str = ""
    """Caveats, inconsistencies, context."""


def _check_reward_names(names: Iterable[str]) -> None:
    """Every name must be a key of :data:`REWARDS`."""
    for r in names:
        if r not in REWARDS:
            raise ValueError(f"unknown reward {r!r}; valid rewards: {', '.join(REWARDS)}")


def _check_metric(metric: str | None) -> None:
    if metric is not None and not _METRIC.match(metric):
        raise ValueError(f"metric must look like pass@1, avg@8 or pass@8, got {metric!r}")


class RlvrGain(_Entry):
    """An RLVR result: a model trained with a reward scores ``value`` on a benchmark, a gain of
    ``gain`` over its pre-RL ``baseline``. Any of the three may be missing where the source
    does not print it (e.g. AIME gains quoted without a baseline)."""

    kind: Literal["rlvr_gain"]
    """Entry kind."""
    model: str
    """Registry family of the base model (``qwen2.5-math-7b``)."""
    checkpoint: str | None = None
    """Registry id of the trained checkpoint when its weights are public."""
    reward: str | None = None
    """The reward (:data:`REWARDS`); give ``rewards`` instead for a claim about several."""
    rewards: list[str] | None = None
    """Several rewards that one printed number covers (see ``aggregate``)."""
    aggregate: Literal["each", "mean", "range"] | None = None
    """How a number relates to ``rewards``: each reward gains about it, their mean, or their
    gains span ``gain_range``."""
    reward_detail: str = ""
    """Reward parameters (random gamma, compound terms, clipping)."""
    step: int | None = Field(default=None, ge=0)
    """Training step the number is reported at (``null`` if not stated)."""
    benchmark: str
    """Task id (``math500``) or a ledger benchmark id."""
    protocol: str | ProtocolSpec
    """Evaluation protocol: a ``protocols`` name or an inline mapping."""
    metric: str | None = None
    """``pass@1``, ``avg@8``, ...; default: derived from the protocol."""
    prompt: str | None = None
    """Prompt template id; default: the family base checkpoint's registry prompt."""
    baseline: Percent | None = None
    """Claimed pre-RL accuracy."""
    value: Percent | None = None
    """Claimed accuracy after RLVR."""
    gain: Points | None = None
    """Claimed gain (value - baseline), in points."""
    gain_range: tuple[Points, Points] | None = None
    """A gain printed as a range, ``[low, high]``."""
    value_derived: bool = False
    """``value`` is baseline + gain (the source prints only those two)."""
    mismatch_note: str = ""
    """Why a printed gain differs from value - baseline by more than the rounding tolerance."""

    @model_validator(mode="after")
    def _check(self) -> RlvrGain:
        if (self.reward is None) == (self.rewards is None):
            raise ValueError("give exactly one of 'reward' (one reward) or 'rewards' (several)")
        if self.reward is not None:
            _check_reward_names([self.reward])
            if self.aggregate is not None:
                raise ValueError("'aggregate' only applies to 'rewards'")
        if self.rewards is not None:
            if len(self.rewards) < 2:
                raise ValueError("'rewards' needs at least two rewards; use 'reward' for one")
            _check_reward_names(self.rewards)
            if self.aggregate is None:
                raise ValueError("'rewards' needs 'aggregate': each, mean or range")
        _check_metric(self.metric)
        _check_gain_fields(self)
        if self.gain_range is not None and self.aggregate not in (None, "range"):
            raise ValueError("'gain_range' with several rewards needs aggregate: range")
        return self

    @property
    def reward_label(self) -> str:
        """The reward, or ``a / b / c (each|mean|range)`` for several."""
        if self.reward is not None:
            return self.reward + (f" ({self.reward_detail})" if self.reward_detail else "")
        assert self.rewards is not None
        return " / ".join(self.rewards) + f" ({self.aggregate})"


class PromptGain(_Entry):
    """A prompting intervention without training: the same model scores ``value`` with
    ``prompt`` instead of ``baseline`` with its default prompt."""

    kind: Literal["prompt_gain"]
    """Entry kind."""
    model: str
    """Registry family."""
    benchmark: str
    """Task id or ledger benchmark id."""
    protocol: str | ProtocolSpec
    """Evaluation protocol (name or inline)."""
    metric: str | None = None
    """Default: derived from the protocol."""
    prompt: str
    """The intervention's prompt template id (e.g. ``code_forcing``, ``lipsum``)."""
    baseline_prompt: str | None = None
    """Prompt of the baseline; default: the family base checkpoint's registry prompt."""
    baseline: Percent
    """Accuracy with the default prompt."""
    value: Percent
    """Accuracy with ``prompt``."""
    gain: Points
    """value - baseline, as printed."""
    value_derived: bool = False
    """``value`` is baseline + gain (the source prints only those two)."""
    mismatch_note: str = ""
    """Why the printed gain differs from value - baseline beyond rounding."""

    @model_validator(mode="after")
    def _check(self) -> PromptGain:
        _check_metric(self.metric)
        _check_gain_fields(self)
        return self


def _check_gain_fields(e: RlvrGain | PromptGain) -> None:
    """Shared checks of baseline/value/gain (and gain_range) of a gain entry."""
    gain_range = getattr(e, "gain_range", None)
    if gain_range is not None:
        if e.gain is not None:
            raise ValueError("give 'gain' or 'gain_range', not both")
        if gain_range[0] > gain_range[1]:
            raise ValueError(f"gain_range must be [low, high], got {list(gain_range)}")
    if e.gain is None and gain_range is None and e.value is None:
        raise ValueError("a gain entry needs at least one of 'gain', 'gain_range' or 'value'")
    if e.value_derived and (e.baseline is None or e.gain is None or e.value is None):
        raise ValueError("value_derived: true needs baseline, gain and value")
    if e.baseline is not None and e.value is not None and e.gain is not None and not e.mismatch_note:
        diff = e.value - e.baseline - e.gain
        if abs(diff) > GAIN_TOLERANCE:
            raise ValueError(
                f"gain {e.gain:g} != value - baseline = {e.value:g} - {e.baseline:g} = {e.value - e.baseline:.2f} "
                f"(off by {diff:+.2f}, more than rounding {GAIN_TOLERANCE}); fix the numbers or explain the "
                "difference in 'mismatch_note'"
            )


class Evaluation(_Entry):
    """One accuracy of one model under a stated protocol: a re-evaluation of a base model
    (a corrected baseline), a reproduction of the paper's own protocol, or an evaluation of a
    derived model (an RLVR checkpoint, an instruct model)."""

    kind: Literal["evaluation"]
    """Entry kind."""
    model: str
    """Registry family."""
    variant: str = "base"
    """Which model of the family: ``base`` (the family's base model) or a label of a derived
    model (``SimpleRL-Zoo``, ``ground_truth run (alphaXiv)``)."""
    checkpoint: str | None = None
    """Registry id of the evaluated weights, when they are public and registered."""
    reward: str | None = None
    """For an RLVR variant: its reward."""
    step: int | None = Field(default=None, ge=0)
    """For an RLVR variant: its training step."""
    benchmark: str
    """Task id or ledger benchmark id."""
    protocol: str | ProtocolSpec | None = None
    """Protocol (name or inline); ``null`` when the source does not state it."""
    metric: str | None = None
    """Default: derived from the protocol (required when the protocol is unknown)."""
    prompt: str | None = None
    """Prompt template id, where known."""
    value: Percent
    """The accuracy."""
    std: float | None = Field(default=None, ge=0.0)
    """Standard deviation across seeds, where printed."""
    percent_parsable: Percent | None = None
    """Share of responses with a parsable final answer, where printed."""
    paper_protocol: bool = False
    """``true`` when this follows the audited paper's own protocol (a reproduction of its
    baseline); ``false`` when it is an alternative evaluation (a candidate corrected baseline)."""
    setting: str
    """What distinguishes this evaluation, in a few words (shown in reports)."""

    @model_validator(mode="after")
    def _check(self) -> Evaluation:
        _check_metric(self.metric)
        if self.reward is not None:
            _check_reward_names([self.reward])
        if self.variant == "base" and (self.reward is not None or self.step not in (None, 0)):
            raise ValueError("a base-model evaluation has no reward or training step; set 'variant'")
        inline_n = self.protocol.n if isinstance(self.protocol, ProtocolSpec) else None
        if self.metric is None and not isinstance(self.protocol, str) and inline_n is None:
            raise ValueError("give 'metric' (the protocol does not say how many samples)")
        return self


class CodeFrequency(_Entry):
    """Share of responses that reason in Python code, before and after RLVR."""

    kind: Literal["code_frequency"]
    """Entry kind."""
    model: str
    """Registry family."""
    reward: str | None = None
    """The reward, if one."""
    rewards: list[str] | None = None
    """Several rewards the statement covers."""
    step: int | None = Field(default=None, ge=0)
    """Training step of ``after``."""
    benchmark: str
    """Task id or ledger benchmark id."""
    before: Percent | None = None
    """Code frequency before training."""
    after: Percent | None = None
    """Code frequency after training."""
    after_is_lower_bound: bool = False
    """The source says 'more than' ``after``."""

    @model_validator(mode="after")
    def _check(self) -> CodeFrequency:
        _check_reward_names(([self.reward] if self.reward else []) + (self.rewards or []))
        if self.before is None and self.after is None:
            raise ValueError("give 'before' and/or 'after'")
        return self


class CodeAccuracy(_Entry):
    """A pre-RL model's code frequency and its accuracy split by reasoning strategy."""

    kind: Literal["code_accuracy"]
    """Entry kind."""
    model: str
    """Registry family."""
    benchmark: str
    """Task id or ledger benchmark id."""
    protocol: str | ProtocolSpec
    """Evaluation protocol."""
    code_frequency: Percent
    """Share of responses that reason in code."""
    acc_with_code: Percent | None = None
    """Accuracy of the code-reasoning responses."""
    acc_with_lang_only: Percent | None = None
    """Accuracy of the language-only responses."""


class SubsetChange(StrictModel):
    """One strategy transition: how many problems, and their accuracy before and after."""

    n: int = Field(ge=0)
    """Problems in the subset."""
    before: Percent
    """Accuracy at step 0."""
    after: Percent
    """Accuracy at the trained step."""
    delta: Points
    """after - before, as printed (the source's own rounding and errors kept)."""


class StrategySwitch(_Entry):
    """How problems move between code and language reasoning during RLVR, with accuracies."""

    kind: Literal["strategy_switch"]
    """Entry kind."""
    model: str
    """Registry family."""
    reward: str
    """The reward."""
    step: int = Field(ge=0)
    """Trained step compared with step 0."""
    benchmark: str
    """Task id or ledger benchmark id."""
    accuracy_before: Percent
    """Overall accuracy at step 0."""
    accuracy_after: Percent
    """Overall accuracy at ``step``."""
    code_after: int = Field(ge=0)
    """Problems answered with code at ``step``."""
    lang_after: int = Field(ge=0)
    """Problems answered in language at ``step``."""
    transitions: dict[Transition, SubsetChange]
    """Per transition."""

    @model_validator(mode="after")
    def _check(self) -> StrategySwitch:
        _check_reward_names([self.reward])
        return self


class GainDecomposition(_Entry):
    """Share of a net gain contributed by each strategy transition."""

    kind: Literal["gain_decomposition"]
    """Entry kind."""
    model: str
    """Registry family."""
    benchmark: str
    """Task id or ledger benchmark id."""
    total_gain: Points
    """The gain being decomposed (points)."""
    shares: dict[Transition, float]
    """Percent of ``total_gain`` per transition (should sum to about 100)."""


class Contamination(_Entry):
    """Memorisation probes: the model sees only the first ``prefix_pct`` percent of each
    question and either continues the question text (``partial_completion``: ROUGE-L and exact
    match of the continuation) or answers it (``partial_answer``: accuracy)."""

    kind: Literal["contamination"]
    """Entry kind."""
    model: str
    """Registry family."""
    benchmark: str
    """Task id or ledger benchmark id."""
    test: Literal["partial_completion", "partial_answer"]
    """Which probe."""
    protocol: str | ProtocolSpec
    """Decoding protocol."""
    prompt: str | None = None
    """Prompt template id (``no_template`` = raw text)."""
    prefix_pct: list[int]
    """Percent of the question shown, one per value below."""
    rouge_l: list[Percent] | None = None
    """ROUGE-L of the continuation (x100)."""
    exact_match: list[Percent] | None = None
    """Exact match of the continuation (%)."""
    accuracy: list[Percent] | None = None
    """Answer accuracy (%)."""

    @model_validator(mode="after")
    def _check(self) -> Contamination:
        if not self.prefix_pct or any(not 0 < p <= 100 for p in self.prefix_pct):
            raise ValueError("prefix_pct must list percentages in (0, 100]")
        measures = {"rouge_l": self.rouge_l, "exact_match": self.exact_match, "accuracy": self.accuracy}
        given = {k: v for k, v in measures.items() if v is not None}
        if not given:
            raise ValueError("give at least one of rouge_l, exact_match, accuracy")
        for k, v in given.items():
            if len(v) != len(self.prefix_pct):
                raise ValueError(f"{k} has {len(v)} values but prefix_pct has {len(self.prefix_pct)}")
        return self


class Clipping(_Entry):
    """A reading of the clipping ablation: accuracy (and code frequency) of one variant."""

    kind: Literal["clipping"]
    """Entry kind."""
    model: str
    """Registry family."""
    reward: str
    """The reward (random in the paper)."""
    variant: ClippingVariant
    """See :data:`ClippingVariant`."""
    step: int = Field(ge=0)
    """Training step read."""
    benchmark: str
    """Task id or ledger benchmark id."""
    protocol: str | ProtocolSpec
    """Evaluation protocol."""
    accuracy: Percent | None = None
    """Accuracy at ``step``."""
    code_frequency: Percent | None = None
    """Code frequency at ``step``."""
    seeds: str
    """``one run`` or ``mean over seeds``."""

    @model_validator(mode="after")
    def _check(self) -> Clipping:
        _check_reward_names([self.reward])
        if self.accuracy is None and self.code_frequency is None:
            raise ValueError("give 'accuracy' and/or 'code_frequency'")
        return self


class Note(_Entry):
    """A qualitative statement (no numbers worth typing), kept so later analyses can cite it."""

    kind: Literal["note"]
    """Entry kind."""
    model: str | None = None
    """Registry family it is about, if one."""
    benchmark: str | None = None
    """Benchmark it is about, if one."""

    @model_validator(mode="after")
    def _check(self) -> Note:
        if not self.notes.strip():
            raise ValueError("a note needs 'notes'")
        return self


class Other(_Entry):
    """Numbers that fit no kind above (settings, variance studies), kept with their values."""

    kind: Literal["other"]
    """Entry kind."""
    model: str | None = None
    """Registry family it is about, if one."""
    benchmark: str | None = None
    """Benchmark it is about, if one."""
    values: dict[str, Any]
    """The numbers, as the source gives them."""


Claim = Annotated[
    RlvrGain
    | PromptGain
    | Evaluation
    | CodeFrequency
    | CodeAccuracy
    | StrategySwitch
    | GainDecomposition
    | Contamination
    | Clipping
    | Note
    | Other,
    Field(discriminator="kind"),
]
"""One ledger entry; ``kind`` selects the type."""

KINDS: dict[str, type[_Entry]] = {
    "rlvr_gain": RlvrGain,
    "prompt_gain": PromptGain,
    "evaluation": Evaluation,
    "code_frequency": CodeFrequency,
    "code_accuracy": CodeAccuracy,
    "strategy_switch": StrategySwitch,
    "gain_decomposition": GainDecomposition,
    "contamination": Contamination,
    "clipping": Clipping,
    "note": Note,
    "other": Other,
}
"""Kind id -> entry type."""

_CLAIM_ADAPTER: TypeAdapter[Claim] = TypeAdapter(Claim)

GainClaim = RlvrGain | PromptGain
"""Entries that state a gain."""


# ----------------------------------------------------------------------------------------------
# The ledger
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchmarkInfo:
    """A benchmark as the analyses need it: a task or a ledger benchmark."""

    id: str
    """Task id or ledger benchmark id."""
    display_name: str
    """Name shown in reports."""
    n_problems: int | None
    """Number of problems (``None`` if unknown)."""
    is_task: bool
    """Whether ``tasks/<id>.yaml`` exists (so rlvr-audit can evaluate it)."""


@dataclass(frozen=True)
class Ledger:
    """The validated claims ledger."""

    sources: dict[str, Source]
    """Source id -> source."""
    protocols: dict[str, ProtocolSpec]
    """Protocol name -> protocol."""
    benchmarks: dict[str, BenchmarkSpec]
    """Ledger benchmarks (not tasks)."""
    claims: tuple[Claim, ...]
    """Entries in file order."""
    families: dict[str, str]
    """Registry family id -> display name (for reports)."""
    family_prompts: dict[str, str]
    """Registry family id -> its base checkpoint's default prompt."""
    path: Path | None = None
    """The file the ledger was read from."""
    family_bases: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Registry family id -> (checkpoint id, model) of its base checkpoint: the only checkpoint
    whose measured accuracy corrects a claimed baseline."""

    @classmethod
    def empty(cls) -> Ledger:
        """A ledger with nothing in it (a registry without claims sections)."""
        return cls({}, {}, {}, (), {}, {})

    def __len__(self) -> int:
        return len(self.claims)

    def get(self, claim_id: str) -> Claim:
        """The entry with this id; an unknown id lists the valid ones."""
        for c in self.claims:
            if c.id == claim_id:
                return c
        raise UnknownNameError("claim", claim_id, [c.id for c in self.claims])

    def query(
        self,
        *,
        kind: str | None = None,
        model: str | None = None,
        benchmark: str | None = None,
        source: str | None = None,
    ) -> list[Claim]:
        """Entries matching every given filter (exact ids; ``None`` = any)."""
        out = []
        for c in self.claims:
            if kind is not None and c.kind != kind:
                continue
            if model is not None and getattr(c, "model", None) != model:
                continue
            if benchmark is not None and getattr(c, "benchmark", None) != benchmark:
                continue
            if source is not None and c.source != source:
                continue
            out.append(c)
        return out

    def protocol(self, entry: Claim) -> ProtocolSpec | None:
        """The entry's protocol, named ones resolved (``None`` if it has none)."""
        p = getattr(entry, "protocol", None)
        if isinstance(p, str):
            return self.protocols[p]
        return p

    def protocol_label(self, entry: Claim) -> str:
        """``name (settings)`` for a named protocol, the settings for an inline one."""
        p = getattr(entry, "protocol", None)
        if p is None:
            return "not stated"
        spec = self.protocol(entry)
        assert spec is not None
        return f"{p} ({spec.label()})" if isinstance(p, str) else spec.label()

    def metric(self, entry: Claim) -> str | None:
        """The entry's metric: given, else derived from its protocol (contamination probes: the
        measures they report, e.g. ``rouge_l, exact_match``)."""
        if isinstance(entry, Contamination):
            return ", ".join(k for k in ("rouge_l", "exact_match", "accuracy") if getattr(entry, k) is not None)
        m = getattr(entry, "metric", None)
        if m:
            return str(m)
        spec = self.protocol(entry)
        return spec.metric if spec is not None else None

    def k(self, entry: Claim) -> int:
        """Samples per problem of the entry's protocol (1 when unknown)."""
        spec = self.protocol(entry)
        return spec.n if spec is not None and spec.n is not None else 1

    def prompt(self, entry: Claim) -> str | None:
        """The entry's prompt template: given, else (for gain claims) the family default."""
        p = getattr(entry, "prompt", None)
        if p is None and isinstance(entry, RlvrGain):
            return self.family_prompts.get(entry.model)
        return p

    def family_display(self, family: str | None) -> str:
        """Display name of a family id."""
        if family is None:
            return "-"
        return self.families.get(family, family)

    def source_url(self, source_id: str) -> str:
        """URL of a source."""
        return self.sources[source_id].url

    def check_config(self, tasks: Mapping[str, BenchmarkInfo], prompts: Iterable[str]) -> None:
        """Check benchmark ids against the tasks and ledger benchmarks, and prompt ids against
        the prompt templates; raise :class:`ConfigError` naming the first bad entry."""
        path = self.path or "checkpoints.yaml"
        valid_prompts = set(prompts)
        for bid in self.benchmarks:
            if bid in tasks:
                raise ConfigError(
                    path, f"{bid!r} is a task in tasks/; remove it from 'benchmarks'", key=f"benchmarks.{bid}"
                )
        valid_benchmarks = sorted(set(tasks) | set(self.benchmarks))
        for i, c in enumerate(self.claims):
            bench = getattr(c, "benchmark", None)
            if bench is not None and bench not in valid_benchmarks:
                raise _entry_error(
                    path,
                    i,
                    c.id,
                    "benchmark",
                    f"unknown benchmark {bench!r}; valid: the tasks and the ledger's benchmarks: "
                    + ", ".join(valid_benchmarks),
                )
            for field_name in ("prompt", "baseline_prompt"):
                p = getattr(c, field_name, None)
                if p is not None and p not in valid_prompts:
                    raise _entry_error(
                        path,
                        i,
                        c.id,
                        field_name,
                        f"unknown prompt template {p!r}; valid: {', '.join(sorted(valid_prompts))}",
                    )

    def catalog(self, tasks: Mapping[str, BenchmarkInfo]) -> dict[str, BenchmarkInfo]:
        """Every benchmark claims may use: ``tasks`` plus the ledger's own benchmarks."""
        out = dict(tasks)
        for bid, b in self.benchmarks.items():
            out[bid] = BenchmarkInfo(id=bid, display_name=b.display_name, n_problems=b.n_problems, is_task=False)
        return out


def _entry_error(path: object, index: int, entry_id: str | None, field_name: str | None, message: str) -> ConfigError:
    """A :class:`ConfigError` naming the entry by id and position."""
    who = f"claims[{index}]" + (f" (id {entry_id!r})" if entry_id else "")
    return ConfigError(path, message, key=who + (f".{field_name}" if field_name else ""))


def _validate_entry(raw: Any, index: int, path: object) -> Claim:
    """Validate one raw YAML entry; errors name the entry id (or position) and the key."""
    entry_id = raw.get("id") if isinstance(raw, dict) else None
    entry_id = entry_id if isinstance(entry_id, str) else None
    if not isinstance(raw, dict):
        raise _entry_error(path, index, None, None, f"expected a mapping, got {type(raw).__name__}")
    if "kind" not in raw:
        raise _entry_error(path, index, entry_id, "kind", f"required key is missing; valid kinds: {', '.join(KINDS)}")
    if raw["kind"] not in KINDS:
        raise _entry_error(
            path, index, entry_id, "kind", f"unknown kind {raw['kind']!r}; valid kinds: {', '.join(KINDS)}"
        )
    try:
        return _CLAIM_ADAPTER.validate_python(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err.get("loc", ())]
        if loc and loc[0] == raw["kind"]:
            loc = loc[1:]
        field_name = ".".join(loc) or None
        if err.get("type") == "value_error":
            message = str(err.get("ctx", {}).get("error", err.get("msg", "invalid value")))
        else:
            _key, message = describe_validation_error(exc)
            if message == "unknown key":
                message += "; valid keys here: " + ", ".join(KINDS[raw["kind"]].model_fields)
        raise _entry_error(path, index, entry_id, field_name, message) from exc


def build_ledger(
    raw_claims: Sequence[Any],
    *,
    sources: dict[str, Source],
    protocols: dict[str, ProtocolSpec],
    benchmarks: dict[str, BenchmarkSpec],
    families: dict[str, str],
    checkpoints: Mapping[str, Checkpoint],
    path: Path | None = None,
) -> Ledger:
    """Validate the ``claims`` section and every reference inside the registry file.

    Checks: each entry's type and values (:data:`Claim`), unique ids, sources (``source`` and
    ``also``), model families, checkpoints (exist, belong to the entry's family, same reward
    and step), named protocols. Benchmarks and prompts are checked by
    :meth:`Ledger.check_config`, which needs ``tasks/`` and ``prompts/``.
    """
    where: object = path or "checkpoints.yaml"
    claims: list[Claim] = []
    seen: dict[str, int] = {}
    family_prompts: dict[str, str] = {}
    family_bases: dict[str, tuple[str, str]] = {}
    for base_id, ck in checkpoints.items():
        if ck.base is None and ck.family not in family_prompts:
            family_prompts[ck.family] = ck.prompt
            family_bases[ck.family] = (base_id, ck.model)
    for i, raw in enumerate(raw_claims):
        c = _validate_entry(raw, i, where)
        if c.id in seen:
            raise _entry_error(where, i, c.id, "id", f"duplicate id (first used by claims[{seen[c.id]}])")
        seen[c.id] = i
        for s in [c.source, *c.also]:
            if s not in sources:
                raise _entry_error(
                    where,
                    i,
                    c.id,
                    "source" if s == c.source else "also",
                    f"unknown source {s!r}; valid sources: {', '.join(sorted(sources)) or '(none)'}",
                )
        model = getattr(c, "model", None)
        if model is not None and model not in families:
            raise _entry_error(
                where,
                i,
                c.id,
                "model",
                f"unknown model family {model!r}; valid families: {', '.join(sorted(families))}",
            )
        proto = getattr(c, "protocol", None)
        if isinstance(proto, str) and proto not in protocols:
            raise _entry_error(
                where,
                i,
                c.id,
                "protocol",
                f"unknown protocol {proto!r}; valid protocols: {', '.join(sorted(protocols)) or '(none)'}",
            )
        if isinstance(c, Evaluation) and c.metric is None and isinstance(proto, str) and protocols[proto].n is None:
            raise _entry_error(where, i, c.id, "metric", "give 'metric' (the protocol does not say how many samples)")
        cid = getattr(c, "checkpoint", None)
        if cid is not None:
            _check_checkpoint(c, cid, checkpoints, where, i)
        claims.append(c)
    return Ledger(
        sources=dict(sources),
        protocols=dict(protocols),
        benchmarks=dict(benchmarks),
        claims=tuple(claims),
        families=dict(families),
        family_prompts=family_prompts,
        path=path,
        family_bases=family_bases,
    )


def _check_checkpoint(c: Claim, cid: str, checkpoints: Mapping[str, Checkpoint], where: object, i: int) -> None:
    if cid not in checkpoints:
        raise _entry_error(
            where,
            i,
            c.id,
            "checkpoint",
            f"unknown checkpoint {cid!r}; valid checkpoints: {', '.join(sorted(checkpoints))}",
        )
    ck = checkpoints[cid]
    model = getattr(c, "model", None)
    if ck.family != model:
        raise _entry_error(
            where, i, c.id, "checkpoint", f"checkpoint {cid!r} belongs to family {ck.family!r}, not {model!r}"
        )
    reward = getattr(c, "reward", None)
    if reward is not None and ck.reward is not None and reward != ck.reward:
        raise _entry_error(
            where, i, c.id, "checkpoint", f"checkpoint {cid!r} was trained with reward {ck.reward!r}, not {reward!r}"
        )
    step = getattr(c, "step", None)
    if step is not None and ck.step is not None and step != ck.step:
        raise _entry_error(where, i, c.id, "checkpoint", f"checkpoint {cid!r} is at step {ck.step}, not {step}")
    if isinstance(c, Evaluation) and c.variant == "base" and ck.base is not None:
        raise _entry_error(
            where, i, c.id, "checkpoint", f"checkpoint {cid!r} is not a base model; set 'variant' to name it"
        )


def task_catalog(config_dir: Path) -> dict[str, BenchmarkInfo]:
    """Every task in ``config_dir/tasks`` as a :class:`BenchmarkInfo` (loads and validates them)."""
    from .tasks import available_tasks, load_task

    out = {}
    for name in available_tasks(config_dir):
        spec = load_task(name, config_dir)
        out[name] = BenchmarkInfo(
            id=name, display_name=spec.settings.display_name, n_problems=spec.settings.expected_size, is_task=True
        )
    return out


# ----------------------------------------------------------------------------------------------
# Analyses
# ----------------------------------------------------------------------------------------------

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
    from . import stats

    if n is None:
        return None
    acc = min(max(accuracy_pct / 100.0, 0.0), 1.0)
    return round(100.0 * stats.minimum_detectable_effect(n_problems=n, k=k, accuracy=acc), 4)


def _is_accuracy(metric: str | None) -> bool:
    return metric is not None and (metric == "pass@1" or metric.startswith("avg@"))


def metrics_compatible(a: str | None, b: str | None) -> bool:
    """Whether two metrics measure the same thing: both single-sample accuracies (``pass@1``,
    ``avg@k`` for any k: the expected accuracy of one sample), or the same ``pass@k``."""
    if a is None or b is None:
        return False
    return (_is_accuracy(a) and _is_accuracy(b)) or a == b


def claimed_value(c: RlvrGain) -> float | None:
    """The claim's final accuracy: printed (or derived) ``value``, else baseline + gain."""
    if c.value is not None:
        return c.value
    if c.baseline is not None and c.gain is not None:
        return round(c.baseline + c.gain, 4)
    return None


def claimed_gain(c: GainClaim) -> float | None:
    """The claim's gain: printed, else value - baseline (``None`` for a range or if unknown)."""
    if c.gain is not None:
        return c.gain
    if c.baseline is not None and c.value is not None:
        return round(c.value - c.baseline, 4)
    return None


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
    :func:`rlvr_audit.stats.ci_half_width` and :func:`rlvr_audit.stats.minimum_detectable_effect`
    with the benchmark's number of problems, the protocol's samples per problem and the
    accuracy of :func:`_resolution_accuracy`. A gain whose size is below the MDE cannot be told
    apart from no gain by a paired test at that power: it is flagged ``below resolution``.
    """
    from . import stats

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
# Tables and Markdown
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


def _pct(x: float) -> str:
    """A ledger number as printed: one decimal, two where the source has two (74.0, 68.53)."""
    text = f"{x:.2f}"
    return text[:-1] if text.endswith("0") else text


def _num(x: float | None) -> str:
    return "" if x is None else _pct(x)


def _value_columns(c: Claim) -> tuple[str, str, str]:
    """(baseline, value, gain) as display strings for any kind."""
    if isinstance(c, RlvrGain | PromptGain):
        gain = _num(c.gain)
        if isinstance(c, RlvrGain) and c.gain_range is not None:
            gain = f"{c.gain_range[0]:+.1f}..{c.gain_range[1]:+.1f}"
        elif c.gain is not None:
            gain = f"{c.gain:+.1f}"
        return _num(c.baseline), _num(c.value) + ("*" if c.value_derived else ""), gain
    if isinstance(c, Evaluation):
        return "", _num(c.value) + (f" ±{c.std:g}" if c.std is not None else ""), ""
    if isinstance(c, CodeFrequency):
        return _num(c.before), (">" if c.after_is_lower_bound else "") + _num(c.after), ""
    if isinstance(c, StrategySwitch):
        return _num(c.accuracy_before), _num(c.accuracy_after), f"{c.accuracy_after - c.accuracy_before:+.1f}"
    if isinstance(c, GainDecomposition):
        return "", "", f"{c.total_gain:+.1f}"
    if isinstance(c, CodeAccuracy):
        return "", _num(c.code_frequency), ""
    if isinstance(c, Clipping):
        return "", _num(c.accuracy), ""
    return "", "", ""


def _reward_text(c: Claim) -> str:
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
                "reward": _reward_text(c) or "-",
                "benchmark": getattr(c, "benchmark", None) or "-",
                "metric": ledger.metric(c) or "-",
                "baseline": base or "-",
                "value": value or "-",
                "gain": gain or "-",
                "exactness": c.exactness,
            }
        )
    return rows


def claims_frame(ledger: Ledger) -> pd.DataFrame:
    """Every ledger entry as a row with :data:`CLAIM_COLUMNS`."""
    import pandas as pd

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
                "reward": _reward_text(c),
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
    import pandas as pd

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
    import pandas as pd

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
                "reward": _reward_text(c),
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


def _esc(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _pts(x: float) -> str:
    return f"{x:+.1f}"


def _source_link(ledger: Ledger, source_id: str) -> str:
    if source_id == "store":
        return "store"
    return f"[{source_id}]({ledger.source_url(source_id)})"


MEASURED_MARK = "**measured**"
"""How measured numbers are marked in Markdown (cited ones say ``cited``)."""


def render_correction(
    groups: Sequence[CorrectionGroup],
    ledger: Ledger,
    catalog: Mapping[str, BenchmarkInfo],
    *,
    heading_level: int = 2,
    level: float = 0.95,
) -> str:
    """The "Baseline correction" section: one table per model x benchmark x paper version x
    step, rows = the claimed baseline then each corrected baseline, columns = the claims."""
    h = "#" * heading_level
    lines = [
        f"{h} Baseline correction\n",
        "For every claimed gain with a claimed final accuracy: the claimed baseline, value and gain, and "
        "the **adjusted gain** = claimed value - corrected baseline against every corrected baseline of "
        "the same base model, benchmark and a compatible metric (single-sample accuracies: pass@1 and "
        "avg@k). `cited` baselines are published numbers from the ledger; "
        f"{MEASURED_MARK} ones were computed by rlvr-audit from stored generations, with their "
        f"{int(level * 100)}% bootstrap interval (and, where we also measured the claimed checkpoint, our "
        "paired gain over the same problems). Paper versions are never mixed in one table.\n",
        "Verdicts: **reverses** = adjusted gain <= 0; **within noise** = adjusted gain below the "
        "benchmark's minimum detectable effect (MDE, at the corrected baseline's accuracy) or our interval "
        f"includes 0; **shrinks** = less than {SHRINK_FRACTION:.0%} of the claimed gain survives; "
        "**holds** = otherwise. For claimed losses: within noise, holds (still a loss) or reverses "
        "(becomes a gain). `~` marks numbers read off a plot or hedged in the source.\n",
    ]
    if not groups:
        lines.append("_No gain claim with a claimed final accuracy._\n")
        return "\n".join(lines)
    for g in groups:
        bench = catalog[g.benchmark].display_name if g.benchmark in catalog else g.benchmark
        step = f", step {g.step}" if g.step is not None else ""
        lines.append(f"{h}# {ledger.family_display(g.model)} · {bench} · {g.source}{step}\n")
        proto = ledger.protocol_label(g.claims[0])
        prompt = ledger.prompt(g.claims[0])
        claimed = ", ".join(_pct(b) for b in g.claimed_baselines) or "not printed"
        lines.append(
            f"Claimed baseline: {claimed} ({ledger.metric(g.claims[0])}, {proto}"
            + (f", prompt `{prompt}`" if prompt else "")
            + f"; {_source_link(ledger, g.source)})."
        )
        if g.reproductions:
            lines.append(
                "Reproductions of the paper's own protocol (not corrections): "
                + "; ".join(
                    f"{'~' if e.exactness == 'approximate' else ''}{_pct(e.value)} ({_source_link(ledger, e.source)}, "
                    f"{_esc(e.setting)}, `{e.id}`)"
                    for e in g.reproductions
                )
                + "."
            )
        lines.append("")
        if not g.baselines:
            lines.append("_No corrected baseline for this model and benchmark in the ledger or the store._\n")
            lines.append(
                "Claims: " + "; ".join(f"{c.reward_label} {_claim_cell(c)} (`{c.id}`)" for c in g.claims) + ".\n"
            )
            continue
        header = ["Baseline", "Kind", "Value", "Setting"]
        for c in g.claims:
            header.append(f"{_esc(c.reward_label)}<br>{_claim_cell(c)}")
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        by = {(r.claim.id, r.baseline.ref, r.baseline.grader): r for r in g.rows}
        for b in g.baselines:
            if b.kind == "measured":
                val = f"{b.value:.1f} [{b.ci_low:.1f}, {b.ci_high:.1f}]" if b.ci_low is not None else f"{b.value:.1f}"
                if b.n_problems is not None and b.n_problems_total and b.n_problems < b.n_problems_total:
                    val += f"<br>_n={b.n_problems}/{b.n_problems_total}_"
                name = f"`{b.ref}` (store)"
                kind = MEASURED_MARK
            else:
                val = ("~" if b.exactness == "approximate" else "") + _pct(b.value)
                name = f"`{b.ref}` ({_source_link(ledger, b.source)})"
                kind = "cited"
            row = [name, kind, val, _esc(f"{b.setting}; {b.metric}, {b.protocol}")]
            for c in g.claims:
                r = by.get((c.id, b.ref, b.grader))
                row.append("" if r is None else _row_cell(r))
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines)


def _claim_cell(c: RlvrGain) -> str:
    """``49.4 → 78.2 (+28.8)`` (``~`` first when approximate)."""
    approx = "~" if c.exactness == "approximate" else ""
    gain = claimed_gain(c)
    base = f"{_pct(c.baseline)} → " if c.baseline is not None else ""
    return f"{approx}{base}{_num(claimed_value(c))}" + (f" ({gain:+.1f})" if gain is not None else "")


def _row_cell(r: CorrectionRow) -> str:
    cell = _pts(r.adjusted_gain)
    if r.adjusted_ci is not None:
        cell += f" [{_pts(r.adjusted_ci[0])}, {_pts(r.adjusted_ci[1])}]"
    cell += f" · {r.verdict}"
    if r.measured_gain is not None and r.measured_gain_ci is not None:
        cell += (
            f"<br>{MEASURED_MARK} gain {_pts(r.measured_gain)} [{_pts(r.measured_gain_ci[0])}, "
            f"{_pts(r.measured_gain_ci[1])}]"
        )
    return cell


def render_resolution(
    rows: Sequence[ResolutionRow],
    ledger: Ledger,
    catalog: Mapping[str, BenchmarkInfo],
    *,
    heading_level: int = 2,
    level: float = 0.95,
    alpha: float = 0.05,
    power: float = 0.8,
) -> str:
    """The "Statistical resolution" section: per claimed gain, n, k, the interval half-width and
    the minimum detectable effect, with gains below it flagged."""
    from . import stats

    h = "#" * heading_level
    flagged = [r for r in rows if r.flag in ("below resolution", "partly below resolution")]
    lines = [
        f"{h} Statistical resolution\n",
        f"What each benchmark and protocol can resolve: ±CI = expected half-width of one accuracy's "
        f"{int(level * 100)}% interval; MDE = the smallest true paired gain a two-sided test at "
        f"alpha = {alpha:g} detects with power {power:g} (variance model of "
        f"`rlvr_audit.stats.minimum_detectable_effect`: problem ICC {stats.DEFAULT_PROBLEM_ICC:g}, "
        f"base-treatment correlation {stats.DEFAULT_PAIR_CORRELATION:g}), both at the accuracy shown "
        "(the claimed baseline; else the base model's accuracy under the paper's protocol from the "
        "ledger; else 50%, the worst case). n = problems in the benchmark, k = samples per problem. A "
        "claimed gain smaller than the MDE is **below resolution**: a benchmark of this size cannot tell it "
        "from no gain. All numbers here are cited claims; the widths are computed.\n",
        f"{len(flagged)} of {len(rows)} claimed gains are at least partly below resolution.\n",
        CITED_HOOK + "\n",
        "| Claim | Source | Model | Benchmark | Reward / intervention | Metric | n | k | Accuracy used "
        "| ±CI | MDE | Claimed gain | Resolution |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        c = r.claim
        bench = catalog[c.benchmark].display_name if c.benchmark in catalog else c.benchmark
        approx = "~" if c.exactness == "approximate" else ""
        gain = approx + ("..".join(f"{g:+.1f}" for g in r.gains))
        flag = f"**{r.flag}**" if r.flag in ("below resolution", "partly below resolution") else r.flag
        mde = "-" if r.mde is None else ("∞" if math.isinf(r.mde) else f"{r.mde:.1f}")
        half = "-" if r.ci_half_width is None else f"{r.ci_half_width:.1f}"
        lines.append(
            f"| `{c.id}` | {c.source} | {ledger.family_display(c.model)} | {bench} | {_esc(_reward_text(c))} | "
            f"{ledger.metric(c) or '-'} | {r.n_problems or '?'} | {r.k} | {_pct(r.accuracy)} ({_esc(r.accuracy_from)}) "
            f"| {half} | {mde} | {gain} | {flag} |"
        )
    lines.append("")
    return "\n".join(lines)


def render_claims_report(
    ledger: Ledger,
    catalog: Mapping[str, BenchmarkInfo],
    groups: Sequence[CorrectionGroup],
    res_rows: Sequence[ResolutionRow],
    *,
    name: str,
    level: float,
    store_note: str,
    cross_family: str = "",
) -> str:
    """The whole ``index.md`` of ``rlvr-audit run --claims-only`` (``cross_family``: the claimed
    cross-family section, Markdown)."""
    import datetime as _dt

    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    kinds: dict[str, int] = {}
    for c in ledger.claims:
        kinds[c.kind] = kinds.get(c.kind, 0) + 1
    n_measured = sum(1 for g in groups for b in g.baselines if b.kind == "measured")
    parts = [
        f"# rlvr-audit claims report: {name}\n",
        f"Written {now} from the claims ledger in `{ledger.path.name if ledger.path else 'checkpoints.yaml'}` "
        f"({len(ledger)} entries: " + ", ".join(f"{v} {k}" for k, v in kinds.items()) + f"). {store_note}\n",
        "Numbers marked `cited` are published numbers copied from the ledger (each with its source and "
        f"location in `tables/claims.csv`); numbers marked {MEASURED_MARK} were computed by rlvr-audit from "
        f"stored generations ({n_measured} measured baselines in this report). All values are accuracy "
        "points (percent).\n",
        render_correction(groups, ledger, catalog, level=level),
        render_resolution(res_rows, ledger, catalog, level=level),
        *(["## Cross-family gains (claimed)\n", cross_family] if cross_family else []),
        "## Sources\n",
        "\n".join(
            f"- **{sid}**: {_esc(s.title)}" + (f" ({s.date})" if s.date else "") + f" <{s.url}>"
            for sid, s in ledger.sources.items()
        )
        + "\n",
        "Machine-readable tables: [`tables/baseline_correction.csv`](tables/baseline_correction.csv), "
        "[`tables/resolution.csv`](tables/resolution.csv), [`tables/claims.csv`](tables/claims.csv) "
        "(every ledger entry)"
        + (", [`tables/cross_family.csv`](tables/cross_family.csv)" if cross_family else "")
        + ".\n",
    ]
    return "\n".join(parts)


@dataclass(frozen=True)
class ClaimsReportPaths:
    """Where ``rlvr-audit run --claims-only`` wrote its report."""

    root: Path
    """The report folder."""
    index_md: Path
    """The Markdown report."""
    correction_csv: Path
    """``tables/baseline_correction.csv``."""
    resolution_csv: Path
    """``tables/resolution.csv``."""
    claims_csv: Path
    """``tables/claims.csv``."""


def write_claims_report(
    ledger: Ledger,
    catalog: Mapping[str, BenchmarkInfo],
    out_dir: Path,
    *,
    name: str,
    level: float = 0.95,
    analysis: Analysis | None = None,
    store_note: str = "",
    protected: Sequence[tuple[str, Path]] = (),
) -> ClaimsReportPaths:
    """Build both analyses and write ``index.md`` and ``tables/{baseline_correction,resolution,
    claims}.csv`` and ``index.html`` (:mod:`rlvr_audit.html`) atomically (nothing is left
    half-written on failure).

    ``analysis``: our estimates of stored units (measured baselines); ``None`` = cited only.
    ``protected``: folders the report folder must not be or contain (the store), see
    :func:`rlvr_audit.report.check_report_target`."""
    from .crossfamily import build_grids, claimed_from_ledger, cross_family_section, grid_frame, write_cross_family
    from .html import write_html
    from .report import building_report_dir

    groups = baseline_correction(ledger, catalog, analysis=analysis)
    res = resolution(ledger, catalog, level=level)
    grids = build_grids(
        None,
        claimed=[g for g in claimed_from_ledger(ledger) if g.task in catalog and catalog[g.task].is_task],
        family_order=list(ledger.families),
        family_display=dict(ledger.families),
        task_display={b.id: b.display_name for b in catalog.values()},
    )
    with building_report_dir(out_dir, protected=protected) as tmp:
        (tmp / "tables").mkdir()
        correction_frame(groups).to_csv(tmp / "tables" / "baseline_correction.csv", index=False)
        resolution_frame(res, ledger).to_csv(tmp / "tables" / "resolution.csv", index=False)
        claims_frame(ledger).to_csv(tmp / "tables" / "claims.csv", index=False)
        if grids:
            grid_frame(grids).to_csv(tmp / "tables" / "cross_family.csv", index=False)
            write_cross_family(grids, tmp / "figures")
        (tmp / "index.md").write_text(
            render_claims_report(
                ledger,
                catalog,
                groups,
                res,
                name=name,
                level=level,
                store_note=store_note,
                cross_family=cross_family_section(grids) if grids else "",
            ),
            encoding="utf-8",
        )
        write_html(tmp)
    out_dir = Path(out_dir)
    return ClaimsReportPaths(
        root=out_dir,
        index_md=out_dir / "index.md",
        correction_csv=out_dir / "tables" / "baseline_correction.csv",
        resolution_csv=out_dir / "tables" / "resolution.csv",
        claims_csv=out_dir / "tables" / "claims.csv",
    )


def report_section(
    ledger: Ledger, catalog: Mapping[str, BenchmarkInfo], analysis: Analysis, *, level: float = 0.95
) -> tuple[str, pd.DataFrame] | None:
    """For the normal report: the baseline-correction section and table restricted to the
    model x benchmark pairs whose base model the store measured; ``None`` when there is none."""
    groups = baseline_correction(ledger, catalog, analysis=analysis, only_measured=True)
    if not groups:
        return None
    return render_correction(groups, ledger, catalog, level=level), correction_frame(groups)


__all__ = [
    "KINDS",
    "REWARDS",
    "BenchmarkInfo",
    "BenchmarkSpec",
    "Claim",
    "ClaimsReportPaths",
    "CorrectedBaseline",
    "CorrectionGroup",
    "CorrectionRow",
    "Evaluation",
    "Ledger",
    "PromptGain",
    "ProtocolSpec",
    "ResolutionRow",
    "RlvrGain",
    "Source",
    "baseline_correction",
    "build_ledger",
    "claims_frame",
    "correction_frame",
    "listing_rows",
    "render_claims_report",
    "render_correction",
    "render_resolution",
    "report_section",
    "resolution",
    "resolution_frame",
    "task_catalog",
    "verdict",
    "write_claims_report",
]
