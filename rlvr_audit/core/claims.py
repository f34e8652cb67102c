"""The claims ledger: published numbers about RLVR as typed data (``claims.yaml``).

The ledger lives in ``claims.yaml`` beside the registry (``checkpoints.yaml``) whose families it
talks about, in four sections:

- ``sources``: every publication or repository a number comes from (id -> title, url, date);
  ``claimant: true`` marks the versions of the audited paper itself (preprint, arXiv v1, v2).
- ``protocols``: named evaluation protocols (samples per problem, temperature, top-p, new
  tokens, engine), e.g. ``sr-greedy`` (MATH-500 pass@1) and ``sr-avg8`` (AMC/AIME avg@8).
- ``benchmarks``: benchmarks that claims mention but that are not tasks in ``tasks/``
  (AMC23, Minerva, OlympiadBench, LiveMathBench, ...), with their number of problems.
- ``claims``: one entry per published number, each with an ``id`` and a ``kind``
  (:data:`Claim` lists the kinds). All values are in **percent points**, as papers print them.

Every reference is checked when the registry is loaded (:func:`load_ledger`): model families,
checkpoints (family, reward and step must agree), sources, protocols, then
(:meth:`Ledger.check_config`) benchmark ids against ``tasks/`` and prompt ids against
``prompts/``. A printed gain must equal value - baseline to within :data:`GAIN_TOLERANCE` unless
the entry says why not (``mismatch_note``). Every error names the entry.

An older single-file registry (these four sections inside ``checkpoints.yaml``) still loads;
a registry with a ledger in both places is refused. The analyses of the ledger (baseline
correction, statistical resolution) are in :mod:`rlvr_audit.analysis.claims`.

One module, one concept (over 800 lines): the ledger's schema, every claim kind with its checks
and the cross-references between them, validated in one place.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError, model_validator

from .configfile import StrictModel, describe_validation_error, read_yaml, validate
from .errors import ConfigError, UnknownNameError
from .tasks import available_tasks, load_task

if TYPE_CHECKING:
    from .registry import Checkpoint

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
    same_as: str | None = None
    """Id of another entry that prints the same figure (e.g. a critique quoting a leaderboard):
    the two are one number, shown once, never two corrections."""
    superseded_by: str | None = None
    """Id of the entry that replaces this number (its source revised it): a superseded value is
    shown struck out and never drives a verdict."""
    suspect: str = ""
    """Why the number is probably wrong as printed (e.g. ``probable copy error``); flagged
    wherever it appears."""


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
        path = self.path or "claims.yaml"
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
    where: object = path or "claims.yaml"
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
    _check_links(claims, where)
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


def _check_links(claims: Sequence[Claim], where: object) -> None:
    """``same_as`` and ``superseded_by`` name another existing entry of the same model and
    benchmark; no entry is superseded by one that is itself superseded back (no cycle)."""
    by_id = {c.id: (i, c) for i, c in enumerate(claims)}
    for i, c in enumerate(claims):
        for name in ("same_as", "superseded_by"):
            target = getattr(c, name)
            if target is None:
                continue
            if target == c.id:
                raise _entry_error(where, i, c.id, name, "an entry cannot link to itself")
            if target not in by_id:
                raise _entry_error(where, i, c.id, name, f"unknown entry {target!r}")
            other = by_id[target][1]
            for attr in ("model", "benchmark"):
                if getattr(other, attr, None) != getattr(c, attr, None):
                    raise _entry_error(
                        where, i, c.id, name, f"{target!r} is about another {attr} ({getattr(other, attr, None)!r})"
                    )
    for i, c in enumerate(claims):
        seen = {c.id}
        nxt = c.superseded_by
        while nxt is not None:
            if nxt in seen:
                raise _entry_error(where, i, c.id, "superseded_by", "superseded_by links form a cycle")
            seen.add(nxt)
            nxt = by_id[nxt][1].superseded_by


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
    out = {}
    for name in available_tasks(config_dir):
        spec = load_task(name, config_dir)
        out[name] = BenchmarkInfo(
            id=name, display_name=spec.settings.display_name, n_problems=spec.settings.expected_size, is_task=True
        )
    return out


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


LEDGER_SECTIONS = ("sources", "protocols", "benchmarks", "claims")
"""The top-level sections of ``claims.yaml`` (also accepted inside an old single-file registry)."""


class LedgerFile(StrictModel):
    """The whole ``claims.yaml``: the claims ledger about the registry's families."""

    sources: dict[str, Source] = Field(default_factory=dict)
    """Source id -> publication the claims come from."""
    protocols: dict[str, ProtocolSpec] = Field(default_factory=dict)
    """Named evaluation protocols claims refer to."""
    benchmarks: dict[str, BenchmarkSpec] = Field(default_factory=dict)
    """Benchmarks claims mention that are not tasks."""
    claims: list[Any] = Field(default_factory=list)
    """Ledger entries; validated one by one by :func:`build_ledger` so that every error names the entry."""


def ledger_path(registry_path: Path) -> Path:
    """Where the ledger of a registry file lives: ``claims.yaml`` beside it."""
    return registry_path.with_name("claims.yaml")


def load_ledger(
    data: Mapping[str, Any], path: Path, *, families: dict[str, str], checkpoints: Mapping[str, Checkpoint]
) -> Ledger:
    """Validate a ledger's raw sections (``claims.yaml``, or an old registry's ledger sections)
    against the registry's families and checkpoints; errors name ``path`` and the entry."""
    file = validate(LedgerFile, dict(data), path)
    return build_ledger(
        file.claims,
        sources=file.sources,
        protocols=file.protocols,
        benchmarks=file.benchmarks,
        families=families,
        checkpoints=checkpoints,
        path=path,
    )


def read_ledger_file(path: Path) -> dict[str, Any]:
    """The raw sections of a ``claims.yaml`` (an empty file is an empty ledger)."""
    data = read_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(path, f"expected a mapping of {', '.join(LEDGER_SECTIONS)}, got {type(data).__name__}")
    return data
