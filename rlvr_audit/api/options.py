"""What every command takes: where things are (:class:`Locations`), how to generate, grade and
report (the options, each checking itself), what a command did (:class:`RunResult`), and the
validated inputs every command starts from (:func:`load_registry`, :func:`plan_units`,
:func:`select_stored`)."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.claims import task_catalog
from ..core.configfile import default_config_dir
from ..core.errors import UsageError
from ..core.prompts import available_prompts
from ..core.registry import Registry
from ..core.store import DEFAULT_STORE, Store, UnitInfo
from ..core.ui import Progress
from ..generation.distributed import RayCluster
from ..generation.plan import PlannedUnit, ProtocolOverrides, Selection, plan
from ..generation.runner import GenerateSummary, generate_units, parse_shard
from ..generation.work import EngineSpec
from ..grading import get_grader
from ..grading.judge import JudgeSettings
from ..grading.runner import RETRYABLE
from ..report.browser import BROWSER_ALL, parse_browser_units
from ..report.writer import check_report_name, check_report_target

DEFAULT_GRADERS = ["math_verify"]
"""Graders used when none are named."""


@dataclass(frozen=True)
class Locations:
    """Where configuration, data, the store and reports live."""

    config_dir: Path = field(default_factory=default_config_dir)
    """Folder with ``tasks/``, ``prompts/`` and ``checkpoints.yaml``."""
    registry: Path | None = None
    """Checkpoint registry file (default: ``<config_dir>/checkpoints.yaml``)."""
    store: Path = DEFAULT_STORE
    """Store root."""
    data_dir: Path | None = None
    """Local benchmark files (``<task>.jsonl``) instead of the Hub."""

    @property
    def registry_path(self) -> Path:
        """The registry file in use."""
        return self.registry or self.config_dir / "checkpoints.yaml"


@dataclass(frozen=True)
class EngineOptions:
    """How to generate."""

    backend: str = "hf"
    """lm-eval model type or ``scripted``."""
    model_args: dict[str, str] = field(default_factory=dict)
    """Extra model arguments (``dtype``, ``max_length``, ``tensor_parallel_size``, ...)."""
    batch_size: int = 8
    """Engine batch size."""
    device: str | None = None
    """Device for transformers engines (``cuda``, ``cpu``); ``None`` lets the engine choose."""
    limit: int | None = None
    """Only the first N problems of each task."""
    save_every: int = 64
    """Requests per call for engines driven through lm-eval (servers, SGLang) and the scripted
    engine; vLLM gets a unit per call and hf a batch, and what an engine hands back is stored at once."""
    use_model_generation_config: bool = False
    """Let the model's generation config supply top_k, min_p and repetition_penalty (part of the
    unit key); by default every sampling parameter comes from the protocol."""
    shard: str | None = None
    """``I/N``: generate only shard I of N of the planned work (see
    :func:`rlvr_audit.generation.runner.shard_work`)."""
    ray_address: str | None = None
    """Generate on a Ray cluster (``auto`` or ``HOST:PORT``); this process writes the store."""
    gpus_per_unit: int | None = None
    """GPUs each Ray worker holds (default: the tensor-parallel size on a GPU cluster, else 0)."""

    def spec(self) -> EngineSpec:
        """How a generation worker loads and drives the engine (picklable, for Ray workers)."""
        return EngineSpec(
            backend=self.backend,
            model_args=self.model_args,
            batch_size=self.batch_size,
            device=self.device,
            chunk_size=self.save_every,
            use_model_generation_config=self.use_model_generation_config,
        )


@dataclass(frozen=True)
class GradeOptions:
    """How to grade."""

    graders: list[str] = field(default_factory=lambda: list(DEFAULT_GRADERS))
    """Grader ids."""
    workers: int | None = None
    """Worker processes (default: all cores)."""
    timeout: float = 10.0
    """Wall-clock limit per answer, in seconds."""
    save_every: int = 500
    """Store a unit's grades after every N graded samples (an interrupted pass keeps them)."""
    retry: list[str] = field(default_factory=list)
    """Re-grade only the samples whose latest grade has one of these verdicts (``timeout``,
    ``error``); empty: grade what has no grade yet."""
    cache: bool = True
    """Use the store's persistent verdict cache (``--no-cache``: bypass it)."""
    judge: JudgeSettings | None = None
    """An LLM judge for the samples the graders disagree on (:mod:`rlvr_audit.grading.judging`);
    ``None``: none."""

    def check(self) -> None:
        """Raise :class:`~rlvr_audit.core.errors.UsageError` naming the first invalid option
        (an unknown grader lists the valid ones)."""
        if not self.graders:
            raise UsageError("no graders given; valid graders: see `rlvr-audit ls graders`")
        for g in self.graders:
            get_grader(g)
        if not 0 < self.timeout < float("inf"):  # also refuses nan
            raise UsageError(f"--timeout must be > 0 seconds (and finite), got {self.timeout}")
        if self.workers is not None and self.workers < 1:
            raise UsageError(f"--workers must be >= 1, got {self.workers}")
        if self.save_every < 1:
            raise UsageError(f"--grade-save-every must be >= 1, got {self.save_every}")
        unknown = [v for v in self.retry if v not in RETRYABLE]
        if unknown:
            raise UsageError(f"--retry: unknown verdict {unknown[0]!r}; valid: {', '.join(RETRYABLE)}")


CI_METHODS = ("wilson", "percentile", "bca")
"""Valid ``--ci-method`` values, :data:`rlvr_audit.analysis.stats.CI_METHODS` (spelled out here so
the CLI starts without numpy); the default is :data:`DEFAULT_CI_METHOD`."""

DEFAULT_CI_METHOD = "wilson"
"""The default ``--ci-method``, :data:`rlvr_audit.analysis.stats.DEFAULT_CI_METHOD`."""


@dataclass(frozen=True)
class ReportOptions:
    """How to analyse and write the report."""

    name: str = "audit"
    """Report name (folder ``reports/<name>`` unless ``report_dir`` is given)."""
    report_dir: Path | None = None
    """Report folder."""
    seed: int = 0
    """Bootstrap seed."""
    n_resamples: int = 10_000
    """Bootstrap resamples."""
    level: float = 0.95
    """Confidence level."""
    ci_method: str = DEFAULT_CI_METHOD
    """Interval method: ``wilson`` (default; Wilson score interval with a cluster design effect),
    ``percentile`` or ``bca`` (bootstrap over problems)."""
    browser: bool = True
    """Write the per-sample browser beside ``index.html`` (see :mod:`rlvr_audit.report.browser`)."""
    browser_page_size: int = 500
    """Samples per page of the per-sample browser."""
    browser_units: str = BROWSER_ALL
    """Which units get browser pages: ``all``, or ``units=GLOB[,GLOB...]`` (globs over each unit's
    key, checkpoint id or label; see :func:`rlvr_audit.report.browser.select_units`)."""

    @property
    def browser_globs(self) -> tuple[str, ...] | None:
        """The globs of ``browser_units`` (``None``: every unit)."""
        return parse_browser_units(self.browser_units)

    @property
    def out_dir(self) -> Path:
        """The report folder in use."""
        return self.report_dir or Path("reports") / self.name

    def bootstrap(self) -> dict[str, Any]:
        """The bootstrap settings as the analyses take them: ``seed``, ``n_resamples``, ``level``,
        ``ci_method``."""
        return {"seed": self.seed, "n_resamples": self.n_resamples, "level": self.level, "ci_method": self.ci_method}

    def check(self, loc: Locations | None = None) -> None:
        """Raise :class:`~rlvr_audit.core.errors.UsageError` naming the first invalid option, before
        anything is generated or written: the name must be one folder name and, when ``loc`` is
        given (a report will be written), the report folder must not be anything but an earlier
        report (see :func:`rlvr_audit.report.writer.check_report_target`)."""
        check_report_name(self.name)
        if loc is not None:  # the options are for a report that will be written
            protected = [
                ("the current directory", Path.cwd()),
                ("the store", loc.store),
                ("the configuration folder", loc.config_dir),
            ]
            check_report_target(self.out_dir, protected=protected)
        if not 0 < self.level < 1:
            raise UsageError(f"--level must be in (0, 1), got {self.level}")
        if self.n_resamples < 100:
            raise UsageError(f"--resamples must be >= 100, got {self.n_resamples}")
        if self.ci_method not in CI_METHODS:
            raise UsageError(f"unknown --ci-method {self.ci_method!r}; valid: {', '.join(CI_METHODS)}")
        if self.browser_page_size < 1:
            raise UsageError(f"--browser-page-size must be >= 1 samples per page, got {self.browser_page_size}")
        if self.browser_globs is not None and not self.browser:
            raise UsageError(f"--no-browser and --browser {self.browser_units} contradict; pass one of them")


@dataclass
class RunResult:
    """What ``run`` (or a single stage) produced."""

    unit_keys: list[str] = field(default_factory=list)
    """Units planned or selected."""
    generated: int = 0
    """Samples generated now."""
    reused: int = 0
    """Samples already stored."""
    graded: int = 0
    """Samples graded now."""
    report: Path | None = None
    """The report's ``index.md``."""
    run_id: str | None = None
    """The run manifest id."""
    notes: list[str] = field(default_factory=list)
    """Lines for the user about what was done (e.g. per imported unit, skipped items)."""


def load_registry(loc: Locations) -> Registry:
    """The checkpoint registry, with default prompts checked against ``prompts/`` and the claims
    ledger's benchmarks and prompts against ``tasks/`` and ``prompts/``."""
    reg = Registry.load(loc.registry_path)
    prompts = set(available_prompts(loc.config_dir))
    reg.check_prompts(prompts)
    if len(reg.ledger):
        reg.ledger.check_config(task_catalog(loc.config_dir), prompts)
    return reg


def plan_units(
    selection: Selection, overrides: ProtocolOverrides, engine: EngineOptions, loc: Locations
) -> list[PlannedUnit]:
    """Validate everything and build the grid (no model is loaded, nothing is written)."""
    if engine.limit is not None and engine.limit < 1:
        raise UsageError(f"--limit must be a positive number of problems, got {engine.limit}")
    if engine.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {engine.batch_size}")
    if engine.save_every < 1:
        raise UsageError(f"--save-every must be >= 1, got {engine.save_every}")
    if engine.shard is not None:
        parse_shard(engine.shard)
    if engine.gpus_per_unit is not None and engine.gpus_per_unit < 0:
        raise UsageError(f"--gpus-per-unit must be >= 0, got {engine.gpus_per_unit}")
    if engine.gpus_per_unit is not None and engine.ray_address is None:
        raise UsageError("--gpus-per-unit places Ray workers: give --ray-address too")
    if engine.shard is not None and engine.ray_address is not None:
        raise UsageError("--shard splits work between processes without Ray; with --ray-address, Ray spreads it")
    return plan(
        selection,
        config_dir=loc.config_dir,
        registry=load_registry(loc),
        backend=engine.backend,
        model_args=engine.model_args,
        overrides=overrides,
        data_dir=loc.data_dir,
        use_model_generation_config=engine.use_model_generation_config,
    )


def select_stored(
    store: Store,
    *,
    checkpoints: list[str] | None = None,
    tasks: list[str] | None = None,
    prompts: list[str] | None = None,
) -> list[UnitInfo]:
    """Stored units matching the selectors (checkpoint ids or globs, task ids, template ids)."""
    units = store.units()
    out = []
    for u in units:
        s = u.spec
        if checkpoints and not any(
            fnmatch.fnmatchcase(s.checkpoint.checkpoint_id, c)
            or (Path(c).is_dir() and s.checkpoint.model == str(Path(c).resolve()))
            for c in checkpoints
        ):
            continue
        if tasks and s.task not in tasks:
            continue
        if prompts and s.template_id not in prompts:
            continue
        out.append(u)
    if not out:
        if not units:
            raise UsageError(
                f"the store {store.root} holds no units; run `rlvr-audit run` or `rlvr-audit generate` first"
            )
        raise UsageError(
            "no stored unit matches the selection; stored checkpoints: "
            + ", ".join(sorted({u.spec.checkpoint.checkpoint_id for u in units}))
        )
    return out


def generate_with(
    engine: EngineOptions,
    store: Store,
    units: list[PlannedUnit],
    progress: Progress,
    *,
    ray: RayCluster | None = None,
    before_write: Callable[[], None] | None = None,
) -> GenerateSummary:
    """Generate what is missing of ``units`` into ``store`` with the engine options (only the
    shard ``engine.shard``, if given; on the Ray cluster ``ray``, if given). ``before_write`` runs
    once, before the first write to the store."""
    return generate_units(
        store,
        units,
        engine=engine.spec(),
        limit=engine.limit,
        progress=progress,
        shard=parse_shard(engine.shard) if engine.shard is not None else None,
        ray=ray,
        before_write=before_write,
    )
