"""What every command takes: where things are (:class:`Locations`), how to generate, grade and
report (the options, each checking itself), what a command did (:class:`RunResult`), and the
validated inputs every command starts from (:func:`load_registry`, :func:`plan_units`,
:func:`select_stored`)."""

from __future__ import annotations

import fnmatch
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
from ..generation.plan import PlannedUnit, ProtocolOverrides, Selection, plan
from ..generation.runner import GenerateSummary, generate_units
from ..grading import get_grader

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
    """Store samples after every N generated."""


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


CI_METHODS = ("percentile", "bca")
"""Valid ``--ci-method`` values (see :func:`rlvr_audit.analysis.stats.bootstrap_ci`)."""


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
    ci_method: str = "percentile"
    """Bootstrap interval method: ``percentile`` or ``bca``."""
    browser: bool = True
    """Write the per-sample browser beside ``index.html`` (see :mod:`rlvr_audit.report.browser`)."""
    browser_page_size: int = 500
    """Samples per page of the per-sample browser."""

    @property
    def out_dir(self) -> Path:
        """The report folder in use."""
        return self.report_dir or Path("reports") / self.name

    def bootstrap(self) -> dict[str, Any]:
        """The bootstrap settings as the analyses take them: ``seed``, ``n_resamples``, ``level``,
        ``ci_method``."""
        return {"seed": self.seed, "n_resamples": self.n_resamples, "level": self.level, "ci_method": self.ci_method}

    def check(self) -> None:
        """Raise :class:`~rlvr_audit.core.errors.UsageError` naming the first invalid option."""
        if not 0 < self.level < 1:
            raise UsageError(f"--level must be in (0, 1), got {self.level}")
        if self.n_resamples < 100:
            raise UsageError(f"--resamples must be >= 100, got {self.n_resamples}")
        if self.ci_method not in CI_METHODS:
            raise UsageError(f"unknown --ci-method {self.ci_method!r}; valid: {', '.join(CI_METHODS)}")
        if self.browser_page_size < 1:
            raise UsageError(f"--browser-page-size must be >= 1 samples per page, got {self.browser_page_size}")


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
    return plan(
        selection,
        config_dir=loc.config_dir,
        registry=load_registry(loc),
        backend=engine.backend,
        model_args=engine.model_args,
        overrides=overrides,
        data_dir=loc.data_dir,
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


def generate_with(engine: EngineOptions, store: Store, units: list[PlannedUnit], progress: Progress) -> GenerateSummary:
    """Generate what is missing of ``units`` into ``store`` with the engine options."""
    return generate_units(
        store,
        units,
        backend=engine.backend,
        model_args=engine.model_args,
        batch_size=engine.batch_size,
        device=engine.device,
        limit=engine.limit,
        save_every=engine.save_every,
        progress=progress,
    )
