"""The records that flow between stages: the API of rlvr-audit.

Every stage reads and writes these and nothing else. They are frozen pydantic models that
refuse unknown keys, so a record read back from the store is validated exactly like one
made in memory. Each field carries its docstring (exported as the field description).

Flow::

    Problem --render--> Prompt --generate--> Generation --grade--> Grade
                                                         \\--analyse--> Estimate, Comparison

A *unit* is one cell of the evaluation grid (checkpoint x task x prompt template x sampling
protocol x engine); :class:`UnitSpec` says what it is and :attr:`UnitSpec.key` is the hash of
everything that changes its generations.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import PurePath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1
"""Version of the on-disk record schema; stored in every unit file and run manifest."""

Verdict = Literal["correct", "incorrect", "no_answer", "truncated", "timeout", "error"]
"""Outcome of grading one sample.

- ``correct`` / ``incorrect``: an answer was extracted and compared with the gold answer.
- ``no_answer``: the response holds no extractable final answer.
- ``truncated``: the response was cut at the token limit and holds no final answer
  (a truncated response that still holds a correct final answer is graded ``correct``).
- ``timeout``: the grader ran past its wall-clock limit on this sample.
- ``error``: the grader failed on this sample (the message is in :attr:`Grade.error`).

Only ``correct`` counts as a success in every metric; all other verdicts count as failures.
"""

VERDICTS: tuple[str, ...] = ("correct", "incorrect", "no_answer", "truncated", "timeout", "error")

FinishReason = Literal["stop", "length", "unknown"]
"""Why generation ended: a stop string or end-of-sequence (``stop``), the new-token limit
(``length``), or not reported by the engine (``unknown``)."""


_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key of a name with its digit runs compared as numbers: ``fam/step50`` sorts before
    ``fam/step1000`` (as text it would sort after). Use it wherever ids or steps are sorted."""
    return tuple((1, int(part)) if part.isdigit() else (0, part) for part in _DIGITS.split(text) if part)


class Record(BaseModel):
    """Base of every record: immutable, strict about keys, docstrings as descriptions."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


def stable_hash(obj: Any, length: int = 16) -> str:
    """Hex SHA-256 (truncated to ``length``) of ``obj`` serialised as canonical JSON.

    Canonical: sorted keys, no whitespace, UTF-8. Equal values give equal hashes across
    processes, machines and Python versions.
    """
    data = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:length]


class Problem(Record):
    """One benchmark problem as loaded from a task's data source."""

    task: str
    """Task id (the name of its YAML in ``tasks/``), e.g. ``math500``."""
    problem_id: str
    """Stable id of the problem within its task (the dataset's own id field)."""
    question: str
    """The problem statement, verbatim from the dataset."""
    answer: str
    """The gold answer exactly as published (e.g. ``"070"``, ``"142.0"``); graders normalise."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Other dataset fields kept for analysis (subject, level, ...); never used for grading."""


class Prompt(Record):
    """The exact string handed to the engine for one problem under one template."""

    problem_id: str
    """The problem this prompt asks."""
    template_id: str
    """Prompt template id (the name of its YAML in ``prompts/``)."""
    template_hash: str
    """Hash of the template's definition (texts, chat flag, prefix, stops)."""
    text: str
    """The fully rendered prompt string, chat template and assistant prefix included."""
    prompt_hash: str
    """Hash of :attr:`text`."""


MAX_NEW_TOKENS = 2**31 - 1
"""Largest new-token limit a protocol accepts (engines take a 32-bit count; ``1e300`` is a mistake)."""
MAX_SAMPLES = 1_000_000
"""Largest number of samples per problem a protocol accepts."""


class SamplingProtocol(Record):
    """How completions are sampled; part of a unit's key."""

    n: int = Field(ge=1, le=MAX_SAMPLES)
    """Samples per problem (1 for greedy MATH-500; 8 for avg@8 on AMC/AIME)."""
    temperature: float = Field(ge=0.0, allow_inf_nan=False)
    """Sampling temperature; 0 means greedy decoding. Finite (JSON cannot hold inf or nan, so a
    unit file with one could not be read back)."""
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, allow_inf_nan=False)
    """Nucleus sampling mass."""
    max_new_tokens: int = Field(ge=1, le=MAX_NEW_TOKENS)
    """Upper bound on generated tokens per sample; a sample that reaches it is ``length``."""
    seed: int = Field(default=0, ge=-(2**63), lt=2**63)
    """Base seed. Units of the current sampling scheme (:attr:`UnitSpec.sampling_scheme`) draw each
    sample with its own seed, :func:`sample_seed` of (unit key, problem, sample index), and the
    unit key includes this base seed; older units drew sample ``i`` of every problem with
    :meth:`sample_seed` ``(i)``."""

    def sample_seed(self, sample_idx: int) -> int:
        """The seed of sample round ``sample_idx`` in units of the legacy scheme (one seed per round,
        the same for every problem); see :func:`sample_seed` for the current per-sample seeds."""
        return int(stable_hash({"seed": self.seed, "sample_idx": sample_idx}, 8), 16) & 0x7FFFFFFF


SAMPLING_SCHEME = "per-sample-seed-v1"
"""The sampling scheme of units generated now (see :attr:`UnitSpec.sampling_scheme`)."""


def sample_seed(unit_key: str, problem_id: str, sample_idx: int) -> int:
    """The seed of one sample: a hash of (unit key, problem id, sample index), in [0, 2^31).

    Each sample has its own seed, so its text does not depend on which other samples share an
    engine call, on the batch size, or on whether the run was interrupted and resumed."""
    return int(stable_hash({"unit": unit_key, "problem": problem_id, "sample": sample_idx}, 8), 16) & 0x7FFFFFFF


class EffectiveSampling(Record):
    """The sampling parameters an engine actually applied to a unit's requests, after it merged
    the model's generation config (``generation_config.json``) where that was allowed. Stored on
    the unit (``unit.json``) when it is generated; not part of its key (it follows from the key's
    fields and the model)."""

    temperature: float
    """Sampling temperature (0: greedy)."""
    top_p: float
    """Nucleus mass (1.0: off)."""
    top_k: int | None = None
    """Top-k cut (``None``: off)."""
    min_p: float = 0.0
    """Min-p cut relative to the most likely token (0: off)."""
    repetition_penalty: float = 1.0
    """Repetition penalty (1.0: off)."""
    max_new_tokens: int
    """New-token limit per sample."""
    stop: list[str] = Field(default_factory=list)
    """Stop strings (the end-of-sequence tokens of the model stop generation as well)."""
    source: Literal["protocol", "protocol+model", "protocol+engine"] = "protocol"
    """``protocol``: every parameter set by rlvr-audit (the model's sampling defaults ignored);
    ``protocol+model``: ``--use-model-generation-config``, the model's generation config supplied
    ``top_k``, ``min_p`` and ``repetition_penalty`` (the protocol still sets temperature, top_p,
    the token limit and stops); ``protocol+engine``: an engine driven through lm-eval that takes
    only temperature, top_p, the token limit and stops (an OpenAI-compatible server, SGLang): the
    other parameters are the server's own defaults, not known here (recorded as off)."""
    engine: str = ""
    """Engine that applied them, with its version (e.g. ``vllm 0.11.0``, ``transformers 4.57.1``)."""


class CheckpointRef(Record):
    """What identifies the weights a unit was generated with."""

    checkpoint_id: str
    """Registry id ``<family>/<variant>``, or ``local/<name>`` for an ad-hoc model directory."""
    model: str
    """Hugging Face id or local path handed to the engine as ``pretrained``."""
    revision: str | None = None
    """Hub revision (branch, tag or commit); ``None`` for local directories."""
    fingerprint: str | None = None
    """For local directories: hash of the file names, sizes and small config files."""


SYNTHETIC_BACKENDS = frozenset({"scripted"})
"""Backends whose "generations" come from a script or a seeded oracle, not from a model."""


class UnitSpec(Record):
    """One cell of the evaluation grid: everything that changes its generations."""

    schema_version: int = SCHEMA_VERSION
    """On-disk schema version this unit was written with."""
    checkpoint: CheckpointRef
    """The weights."""
    task: str
    """Task id."""
    data_hash: str
    """Hash of the task's full problem list (ids, questions, answers)."""
    template_id: str
    """Prompt template id."""
    template_hash: str
    """Hash of the prompt template's definition."""
    protocol: SamplingProtocol
    """Sampling protocol."""
    backend: str
    """lm-eval model type (``hf``, ``vllm``, ``local-completions``, ...) or ``scripted``/import."""
    engine_args: dict[str, Any] = Field(default_factory=dict)
    """Engine arguments that can change generations (dtype, ...); batch sizes excluded."""
    sampling_scheme: str | None = None
    """How seeds and sampling parameters reach the engine: :data:`SAMPLING_SCHEME` for units
    generated now (a seed per sample, every sampling parameter set explicitly); ``None`` for
    imported units and units written before (one seed per sample round, the engines' defaults
    for what the protocol did not set). Enters the key only when set, so older keys stay valid."""
    use_model_generation_config: bool = False
    """``--use-model-generation-config``: the model's generation config supplies the sampling
    parameters the protocol does not set (see :class:`EffectiveSampling`). Enters the key only
    when true."""

    @property
    def key(self) -> str:
        """Hash of everything above: two specs with equal keys share their generations. Fields at
        the values units had before they existed (``sampling_scheme`` ``None``,
        ``use_model_generation_config`` false) are left out, so earlier keys are unchanged."""
        data = self.model_dump(mode="json")
        for name, legacy in _KEY_LEGACY_DEFAULTS.items():
            if data.get(name) == legacy:
                data.pop(name)
        return stable_hash(data)

    @property
    def synthetic(self) -> bool:
        """Whether the generations came from no model (:data:`SYNTHETIC_BACKENDS`): such units
        test the pipeline; they are marked in reports and never count as a measurement of the
        checkpoint they are filed under."""
        return self.backend in SYNTHETIC_BACKENDS


_KEY_LEGACY_DEFAULTS: dict[str, Any] = {"sampling_scheme": None, "use_model_generation_config": False}
"""Unit-spec fields added after the first stores were written, with the value that leaves them
out of the key."""


class Generation(Record):
    """One sampled completion, as the engine returned it."""

    unit_key: str
    """Key of the unit this sample belongs to."""
    checkpoint_id: str
    """Checkpoint id (denormalised from the unit for convenience)."""
    task: str
    """Task id."""
    problem_id: str
    """Problem id within the task."""
    template_id: str
    """Prompt template id."""
    sample_idx: int = Field(ge=0)
    """Index of this sample among the problem's ``n`` samples, from 0."""
    seed: int
    """Seed the engine was given for this sample."""
    prompt: str
    """The exact prompt string sent to the engine."""
    prompt_hash: str
    """Hash of :attr:`prompt`."""
    completion: str
    """The text the engine returned (stop string removed unless the template keeps it)."""
    finish_reason: FinishReason
    """Why generation ended."""
    n_tokens: int | None = None
    """Number of generated tokens, when the engine's tokenizer is known."""
    backend: str
    """Engine that produced it."""


class Grade(Record):
    """One grader's verdict on one sample."""

    unit_key: str
    """Key of the graded unit."""
    problem_id: str
    """Problem id."""
    sample_idx: int = Field(ge=0)
    """Sample index within the problem."""
    grader_id: str
    """Grader id from the grader registry (``math_verify``, ...)."""
    grader_version: str
    """Grader id's implementation version plus its library versions."""
    extracted: str | None = None
    """The answer the grader extracted from the completion (``None`` if none)."""
    verdict: Verdict
    """See :data:`Verdict`."""
    error: str | None = None
    """Error message for ``error`` and ``timeout`` verdicts."""
    limit_s: float | None = None
    """Wall-clock seconds one grading step was allowed when this verdict was reached: the pass's
    ``--timeout``, or 4 times it when the step timed out and was run again alone (``None`` in
    grades stored before the limit was recorded)."""
    antlr_version: str | None = None
    """Version of the ANTLR Python runtime installed where it was graded (math-verify's verdicts
    differ between ANTLR 4.9 and 4.13); ``None`` when none was installed or it was not recorded."""
    attempt: int = Field(default=0, ge=0)
    """0 for a sample's first grade by this grader version; a re-grade (``grade --retry``) stores
    one more than the sample's latest. The store is append-only: every reader uses, per sample
    and grader version, the grade with the highest attempt (see
    :meth:`rlvr_audit.core.store.Store.read_grades`)."""


class Estimate(Record):
    """A point estimate with its confidence interval, for one unit and grader."""

    unit_key: str
    """Unit the estimate is computed from."""
    checkpoint_id: str
    """Checkpoint id."""
    task: str
    """Task id."""
    template_id: str
    """Prompt template id."""
    grader_id: str
    """Grader whose verdicts were used."""
    metric: str
    """``avg@k`` (mean accuracy over k samples) or ``pass@j`` (unbiased, j <= k)."""
    value: float
    """The estimate, as a fraction in [0, 1]."""
    ci_low: float | None
    """Lower end of the confidence interval (``None`` where no interval is defined)."""
    ci_high: float | None
    """Upper end of the confidence interval."""
    level: float
    """Confidence level of the interval, e.g. 0.95."""
    method: str
    """How the interval was computed, e.g. ``wilson-cluster(problems)`` (the default) or
    ``bootstrap-percentile(problems)``."""
    n_problems: int
    """Problems that entered the estimate."""
    n_samples: int
    """Samples per problem (k)."""
    seed: int
    """Seed of the bootstrap generator."""
    se: float | None = None
    """Standard error of ``value``, where computed: the standard deviation of the bootstrap
    replicates (bootstrap methods) or the cluster standard error over problems (``wilson``)."""
    interval_flags: tuple[str, ...] = ()
    """Conditions under which the interval's coverage is not established by the data, as keys of
    :data:`rlvr_audit.analysis.stats.INTERVAL_FLAGS` (e.g. ``no-variation``: every problem scored the same,
    such as 0 of n correct); the report prints them beside the cell. Empty when none apply, and in
    records written before flags were recorded."""


class Comparison(Record):
    """A paired difference between two units over the same problems (treatment - baseline)."""

    baseline: str
    """Checkpoint id of the baseline (usually the base model)."""
    treatment: str
    """Checkpoint id of the treatment (usually an RLVR checkpoint)."""
    baseline_unit: str
    """Unit key of the baseline."""
    treatment_unit: str
    """Unit key of the treatment."""
    task: str
    """Task id."""
    template_id: str
    """Prompt template id (the same for both sides)."""
    grader_id: str
    """Grader id (the same for both sides)."""
    metric: str
    """Metric compared, e.g. ``avg@1``."""
    baseline_value: float
    """Baseline metric on the shared problems."""
    treatment_value: float
    """Treatment metric on the shared problems."""
    delta: float
    """``treatment_value - baseline_value``, as a fraction."""
    ci_low: float
    """Lower end of the paired interval of ``delta`` (see ``method``)."""
    ci_high: float
    """Upper end of the paired interval of ``delta``."""
    level: float
    """Confidence level, e.g. 0.95."""
    method: str
    """How the interval was computed, e.g. ``paired-mover-wilson(problems)`` (the default) or
    ``paired-bootstrap-percentile(problems)``."""
    p_value: float | None = None
    """Two-sided p-value of a paired test of no difference, where computed (raw, unadjusted)."""
    test: str | None = None
    """The test behind ``p_value``: ``mcnemar-exact`` (one sample per problem),
    ``sign-flip-exact`` or ``sign-flip-monte-carlo`` (paired sign-flip permutation test on the
    per-problem differences of k samples); ``None`` in records written before it was recorded."""
    p_holm: float | None = None
    """``p_value`` adjusted by Holm's method over the family of the report: every comparison
    with a p-value, across every grader (family-wise error rate); ``None`` where not computed."""
    p_bh: float | None = None
    """``p_value`` adjusted by Benjamini-Hochberg over the same family (false discovery rate);
    ``None`` where not computed."""
    se: float | None = None
    """Standard error of ``delta``, where computed (bootstrap replicates, or the cluster standard
    error of the per-problem differences for ``wilson``)."""
    interval_flags: tuple[str, ...] = ()
    """Keys of :data:`rlvr_audit.analysis.stats.INTERVAL_FLAGS` that apply to this comparison, e.g.
    ``test-disagrees`` when the interval and the paired test disagree about significance at
    ``level``, ``no-discordance`` when no problem's score differs. Empty when none apply, and in
    records written before flags were recorded."""
    n_problems: int
    """Problems shared by both units and used in the comparison."""
    seed: int
    """Seed of the bootstrap generator."""
    p_holm_grader: float | None = None
    """Secondary view: ``p_value`` adjusted by Holm over this grader's comparisons only."""
    p_bh_grader: float | None = None
    """Secondary view: ``p_value`` adjusted by Benjamini-Hochberg over this grader's comparisons only."""


class RunManifest(Record):
    """What a run did and on what: written once per run under ``runs/`` in the store."""

    schema_version: int = SCHEMA_VERSION
    """On-disk schema version."""
    run_id: str
    """Timestamp-based id of the run."""
    command: str
    """The command line (or library call) that started the run."""
    started_at: str
    """ISO-8601 UTC start time."""
    finished_at: str | None = None
    """ISO-8601 UTC end time; ``None`` if the run was interrupted."""
    status: Literal["running", "finished", "interrupted", "failed"] = "running"
    """How the run ended."""
    units: list[str] = Field(default_factory=list)
    """Keys of the units the run planned."""
    backend: str | None = None
    """Generation engine, if the run generated."""
    packages: dict[str, str] = Field(default_factory=dict)
    """Versions of the packages that matter (rlvr-audit, lm-eval, math-verify, torch, ...)."""
    git_commit: str | None = None
    """Commit of the rlvr-audit source tree, when run from a git checkout."""
    hardware: dict[str, Any] = Field(default_factory=dict)
    """Platform, Python, CPU count and accelerators seen."""
    pid: int | None = None
    """Process id of the run (with :attr:`host` and :attr:`started_at`, tells a run still going
    from one whose process is gone: see :func:`rlvr_audit.core.store.run_status`)."""
    host: str | None = None
    """Host name of the machine the run ran on."""


class SourceMetric(Record):
    """A number the source of imported generations reported about them (its own grading)."""

    name: str
    """The source's own label, e.g. ``avg@8`` (paper JSON), ``acc`` (Qwen2.5-Math metrics file),
    ``exact_match,last_boxed`` (lm-eval metric and filter)."""
    value: float = Field(ge=0.0, le=1.0)
    """The reported value as a fraction in [0, 1] (percentages are divided by 100 at import)."""
    metric: str | None = None
    """The rlvr-audit metric it estimates (``avg@k`` or ``pass@k`` of the unit), so reports can put
    ours beside it; ``None`` when it measures something else (e.g. only the first of k samples)."""
    origin: str
    """Where the number was read or how it was derived (field and file, in words)."""


class ImportSource(Record):
    """Provenance of a unit whose generations were imported from another tool's output files."""

    format: str
    """Import format id (``spurious-rewards-json``, ``qwen-math-jsonl``, ``lm-eval-samples``)."""
    files: list[str]
    """The source files as named on the command line, in import order."""
    file_sha256: list[str]
    """SHA-256 of each file's bytes (same order as :attr:`files`)."""
    model: str | None = None
    """The model the source file names, if it names one (e.g. the paper JSON's ``model``)."""
    metrics: list[SourceMetric] = Field(default_factory=list)
    """The source's own reported numbers for these generations."""
    items: int = Field(default=0, ge=0)
    """Problems (items) in the source files."""
    unmatched: int = Field(default=0, ge=0)
    """Items whose problem text matched no task problem (skipped under ``--allow-unmatched``)."""
    gold_mismatches: int = Field(default=0, ge=0)
    """Matched items whose gold answer differs from the task file's (graded against the task file's)."""
    base_given: str | None = None
    """Base checkpoint named with ``--base`` at import; it overrides the registry's base in reports."""
    tool_version: str | None = None
    """Version of the tool that wrote the files, where they record it (lm-eval's ``lm_eval_version``
    from the ``results_<date>.json`` written beside the samples file); ``None``: not recorded."""
    task_config_hash: str | None = None
    """Hash (:func:`stable_hash`) of the task configuration the tool recorded for these generations
    (lm-eval's ``configs[<task>]`` in the results file): the same hash means the same task file,
    prompt, filters and metrics; ``None``: not recorded."""
    truncation_known: bool = False
    """Whether the source recorded, per sample, whether generation stopped at the token limit (a
    finish reason or a token count). No supported format does: imported samples carry
    ``finish_reason`` ``unknown`` and no token count, so an imported unit's truncation rate is
    unknown (a report must show it as unknown, never as 0)."""

    @property
    def label(self) -> str:
        """The source files as a short label: each file's folder and name (``aime24/test_....jsonl``),
        which tells apart two sources of one checkpoint (and Qwen's files of one name in several
        benchmark folders)."""
        names = [str(PurePath(f).parent.name + "/" + PurePath(f).name).lstrip("/") for f in self.files]
        return ", ".join(names[:2]) + (f" +{len(names) - 2} files" if len(names) > 2 else "")


class ProbeInfo(Record):
    """What a probe unit measures (``probe.json`` beside its ``unit.json`` in the store's
    ``probes/`` folder; see :mod:`rlvr_audit.analysis.contamination`). The probe kind and the prompt fraction also
    enter the unit's key (through its template hash), so a probe unit never shares a key with a
    normal unit or with a probe of another kind or fraction."""

    probe: Literal["contamination"] = "contamination"
    """Probe family: ``contamination`` (partial-prompt probe of 'Reasoning or Memorization?')."""
    kind: Literal["completion", "answer"]
    """``completion``: the raw first part of the problem, continued by the model (does it write the
    rest of the problem?); ``answer``: the first part rendered with a prompt template (does the model
    answer correctly from it?)."""
    percent: int = Field(gt=0, lt=100)
    """Share of the problem's words given to the model, in percent."""
    version: int
    """Version of the probe's cut and scoring rules."""
    unit_key: str
    """Key of the probe unit."""
    source_data_hash: str
    """Data hash of the full task the problems were cut from (its problems are in the store's
    ``problems/`` folder)."""
    template_id: str
    """Prompt template of an ``answer`` probe; ``raw`` for ``completion`` (no template)."""
    skipped: list[str] = Field(default_factory=list)
    """Problems left out because they have fewer than two words (nothing to cut)."""
