"""The library API behind the CLI: one function per command.

``run`` = plan -> generate -> grade -> report. Each stage reads what the previous one stored,
so ``generate``, ``grade`` and ``report`` can also be run on their own, and grading or
reporting never needs a GPU.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .analysis.behaviour import is_code_reasoning
from .analysis.claims import claims_document, listing_rows, measured_correction_section
from .analysis.code_reasoning import build_code_report, code_sections
from .analysis.contamination import ProbeAnalysis, analyse_probes, rates_rows, stored_probe_section
from .analysis.crossfamily import build_grids, claimed_from_ledger, cross_family_section
from .analysis.disagreement import disagreement_section, grader_disagreements
from .analysis.estimates import Analysis, analyse, apply_registry, grader_version
from .analysis.figures import figures_section
from .analysis.reproduction import (
    gains_section,
    imported_section,
    intro,
    manifest_section,
    reproduction_sections,
    seed_spread_section,
    settings_section,
)
from .analysis.sweep import build_sweep, sweep_section
from .core.claims import ledger_path, task_catalog
from .core.configfile import default_config_dir
from .core.errors import UnknownNameError, UsageError
from .core.manifest import ManifestWriter
from .core.prompts import available_prompts, load_prompt
from .core.registry import Registry
from .core.section import Code, Document, Inline, table_links
from .core.store import DEFAULT_STORE, Store, UnitInfo
from .core.tasks import available_tasks, load_task
from .core.ui import make_progress
from .generation.engines import available_backends, parse_model_args
from .generation.plan import PlannedUnit, ProtocolOverrides, Selection, plan
from .generation.probes import (
    ProbeOptions,
    has_probe_units,
    plan_probes,
    probe_overrides,
    probe_store,
    write_probe_info,
)
from .generation.probes import check_options as check_probe_options
from .generation.runner import generate_units
from .grading import GRADERS, get_grader
from .grading.runner import grade_units
from .importers import FORMATS, ImportOptions, plan_import, write_import
from .report.browser import BrowserSource
from .report.html import HtmlOptions
from .report.writer import write_report
from .simulation.clipping import run_clipping
from .simulation.synthetic import synthesize

__all__ = [
    "CI_METHODS",
    "DEFAULT_GRADERS",
    "LISTABLE",
    "EngineOptions",
    "GradeOptions",
    "Locations",
    "ProbeOptions",
    "ProbeResult",
    "ProtocolOverrides",
    "ReportOptions",
    "RunResult",
    "Selection",
    "check_probe_options",
    "claims_report",
    "default_config_dir",
    "generate",
    "grade",
    "import_generations",
    "listing",
    "load_registry",
    "parse_model_args",
    "plan_units",
    "rates_rows",
    "report",
    "report_document",
    "report_order",
    "run",
    "run_clipping",
    "run_contamination_probe",
    "select_stored",
    "synthesize",
    "validate",
]

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
"""Valid ``--ci-method`` values (see :func:`rlvr_audit.stats.bootstrap_ci`)."""


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
    """Write the per-sample browser beside ``index.html`` (see :mod:`rlvr_audit.browser`)."""
    browser_page_size: int = 500
    """Samples per page of the per-sample browser."""

    @property
    def out_dir(self) -> Path:
        """The report folder in use."""
        return self.report_dir or Path("reports") / self.name

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


def generate(
    selection: Selection,
    overrides: ProtocolOverrides,
    engine: EngineOptions,
    loc: Locations,
    *,
    progress: bool = True,
    then: Callable[[RunResult], None] | None = None,
) -> RunResult:
    """Plan and generate (no grading). ``then(result)``, if given, runs after generation under
    the same run manifest (``run`` grades and reports there), so the manifest says ``finished``
    only when that is done too."""
    units = plan_units(selection, overrides, engine, loc)
    store = Store(loc.store)
    manifest = ManifestWriter(store, [u.key for u in units], engine.backend)
    result = RunResult(unit_keys=[u.key for u in units], run_id=manifest.manifest.run_id)
    status = "failed"
    try:
        with make_progress(progress) as prog:
            s = generate_units(
                store,
                units,
                backend=engine.backend,
                model_args=engine.model_args,
                batch_size=engine.batch_size,
                device=engine.device,
                limit=engine.limit,
                save_every=engine.save_every,
                progress=prog,
            )
        result.generated, result.reused = s.generated, s.reused
        if then is not None:
            then(result)
        status = "finished"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        manifest.finish(status)
    return result


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


def grade(
    unit_keys: list[str] | None,
    options: GradeOptions,
    loc: Locations,
    *,
    progress: bool = True,
    selectors: dict[str, list[str] | None] | None = None,
) -> RunResult:
    """Grade stored generations (all units, or those selected) with ``options.graders``."""
    options.check()
    store = Store(loc.store)
    if unit_keys is None:
        unit_keys = [u.key for u in select_stored(store, **(selectors or {}))]
    with make_progress(progress) as prog:
        s = grade_units(
            store,
            unit_keys,
            graders=options.graders,
            workers=options.workers,
            timeout=options.timeout,
            progress=prog,
            save_every=options.save_every,
        )
    return RunResult(unit_keys=unit_keys, graded=s.graded, reused=s.reused)


def report(
    unit_keys: list[str] | None,
    options: ReportOptions,
    loc: Locations,
    *,
    graders: list[str] | None = None,
    selectors: dict[str, list[str] | None] | None = None,
    progress: bool = True,
) -> RunResult:
    """Analyse stored grades and write the report folder (``progress``: show progress bars for
    the longer steps: classifying responses, the per-sample browser)."""
    options.check()
    store = Store(loc.store)
    if unit_keys is None:
        if not store.unit_keys() and has_probe_units(store):
            unit_keys = []  # a store of contamination probes only: the report is their section
        else:
            unit_keys = [u.key for u in select_stored(store, **(selectors or {}))]
    registry = load_registry(loc) if loc.registry_path.is_file() else None
    unit_keys = report_order(store, unit_keys, registry)
    analysis = analyse(
        store,
        unit_keys=unit_keys,
        graders=graders,
        registry=registry,
        seed=options.seed,
        n_resamples=options.n_resamples,
        level=options.level,
        ci_method=options.ci_method,
    )
    doc = report_document(analysis, store, registry, options, loc, graders=graders, progress=progress)
    paths = write_report(
        doc,
        options.out_dir,
        html=HtmlOptions(browser=options.browser, page_size=options.browser_page_size, progress=progress),
        browser=BrowserSource(store, analysis, grader_version=grader_version, is_code=is_code_reasoning),
    )
    return RunResult(unit_keys=unit_keys, report=paths.index_md)


def report_document(
    analysis: Analysis,
    store: Store,
    registry: Registry | None,
    options: ReportOptions,
    loc: Locations,
    *,
    graders: list[str] | None = None,
    progress: bool = True,
) -> Document:
    """The report of ``analysis``: every analysis's section, in the report's order (reproduction
    tables, imported numbers, grader disagreement, gains, figures, cross-family gains, seed spread,
    baseline correction, prompt sensitivity, code reasoning, behaviour flags, contamination probe,
    settings, run manifests)."""
    sections = reproduction_sections(analysis)
    doc = Document(
        ["rlvr-audit report: ", options.name],
        intro=list(intro(analysis, store, level=options.level, n_resamples=options.n_resamples, seed=options.seed)),
    )
    disagreement = disagreement_section(grader_disagreements(store, analysis.units, analysis.graders))
    if len(analysis.graders) < 2:  # no section, but the (empty) table is written all the same
        doc.tables.update(disagreement.tables)
    ledger = registry.ledger if registry is not None else None
    grids = [
        g
        for g in build_grids(
            analysis,
            claimed=claimed_from_ledger(ledger) if ledger is not None else (),
            family_order=list(registry.families) if registry is not None else (),
            family_display=dict(registry.families) if registry is not None else None,
            default_prompt=dict(ledger.family_prompts) if ledger is not None else None,
        )
        if g.measured  # grids with nothing measured are left to the claims report
    ]
    correction = None
    if ledger is not None and len(ledger):
        catalog = ledger.catalog(task_catalog(loc.config_dir))
        correction = measured_correction_section(ledger, catalog, analysis, level=options.level)
    defaults = {cid: ck.prompt for cid, ck in registry.checkpoints.items()} if registry is not None else {}
    sweep = sweep_section(
        build_sweep(
            analysis,
            store,
            seed=options.seed,
            n_resamples=options.n_resamples,
            level=options.level,
            ci_method=options.ci_method,
            default_prompt=defaults,
        )
    )
    with make_progress(progress) as prog:
        code = build_code_report(
            analysis, store, seed=options.seed, n_resamples=options.n_resamples, level=options.level, progress=prog
        )
    probe = stored_probe_section(
        store,
        registry=registry,
        graders=graders,
        seed=options.seed,
        n_resamples=options.n_resamples,
        level=options.level,
        ci_method=options.ci_method,
    )
    sections += [
        s
        for s in (
            imported_section(analysis),
            disagreement if len(analysis.graders) > 1 else None,
            gains_section(analysis),
            figures_section(analysis),
            cross_family_section(grids) if grids else None,
            seed_spread_section(analysis),
            correction,
            sweep,
            *code_sections(code),
            probe,
        )
        if s is not None
    ]
    sections += [
        settings_section(analysis, store),
        manifest_section(store.manifests(), {u.key for u in analysis.units}),
    ]
    doc.sections = sections
    doc.outro.append(
        table_links(
            [("estimates.csv", ""), ("comparisons.csv", ""), ("grader_disagreement.csv", "(accuracies as fractions)")],
            lead="Machine-readable tables: ",
        )
    )
    return doc


def report_order(store: Store, unit_keys: list[str], registry: Registry | None = None) -> list[str]:
    """The units of a report in one canonical order (checkpoint, task, prompt, sampling seed,
    key), without repeats: the same store gives the same tables whether the units came from a
    run's plan or from the store's listing. Checkpoints follow the registry's order (families
    and their checkpoints as ``checkpoints.yaml`` lists them), then the others by id."""
    infos = {key: store.load_unit(key) for key in dict.fromkeys(unit_keys)}
    rank = {cid: i for i, cid in enumerate(registry.checkpoints)} if registry is not None else {}

    def order(key: str) -> tuple[int, str, str, str, int, str]:
        spec = infos[key].spec
        cid = spec.checkpoint.checkpoint_id
        return (rank.get(cid, len(rank)), cid, spec.task, spec.template_id, spec.protocol.seed, key)

    return sorted(infos, key=order)


def claims_report(options: ReportOptions, loc: Locations) -> RunResult:
    """Audit the claims ledger without a model (``rlvr-audit run --claims-only``).

    Writes ``<report dir>/index.md`` with the baseline-correction and statistical-resolution
    sections, and ``tables/baseline_correction.csv``, ``resolution.csv``, ``claims.csv``. Needs
    no model, download or store; when the store exists and holds units of the claimed models,
    our estimates of their base models are added as measured baselines (and our paired gains
    of the claimed checkpoints, where measured). ``RunResult.unit_keys``: the units used.
    """
    options.check()
    registry = load_registry(loc)
    ledger = registry.ledger
    if not len(ledger):
        raise UsageError(
            f"{loc.registry_path} has no claims: the ledger is {ledger_path(loc.registry_path).name} beside it"
        )
    catalog = ledger.catalog(task_catalog(loc.config_dir))
    keys: list[str] = []
    analysis = None
    store_text = Code(str(loc.store))
    note: list[Inline]
    if not (loc.store / "units").is_dir():
        note = ["No store at ", store_text, ": every baseline below is cited, none measured."]
    else:
        store = Store(loc.store)
        families = {getattr(c, "model", None) for c in ledger.claims if c.kind == "rlvr_gain"}
        keys = [u.key for u in store.units() if apply_registry(u, registry).family in families]
        if keys:
            analysis = analyse(
                store,
                unit_keys=keys,
                registry=registry,
                seed=options.seed,
                n_resamples=options.n_resamples,
                level=options.level,
                ci_method=options.ci_method,
            )
            note = ["Measured baselines come from the store ", store_text, f" ({len(keys)} units of claimed models)."]
        else:
            note = ["The store ", store_text, " holds no unit of a claimed model: every baseline below is cited."]
    doc = claims_document(ledger, catalog, name=options.name, level=options.level, analysis=analysis, store_note=note)
    paths = write_report(doc, options.out_dir)
    return RunResult(unit_keys=keys, report=paths.index_md)


def run(
    selection: Selection,
    overrides: ProtocolOverrides,
    engine: EngineOptions,
    grading: GradeOptions,
    reporting: ReportOptions,
    loc: Locations,
    *,
    progress: bool = True,
) -> RunResult:
    """Plan, generate what is missing, grade what is ungraded, and write the report."""
    grading.check()  # before anything is generated or written
    reporting.check()
    after: list[RunResult] = []

    def grade_and_report(gen: RunResult) -> None:  # under the run's manifest
        after.append(grade(gen.unit_keys, grading, loc, progress=progress))
        after.append(report(gen.unit_keys, reporting, loc, graders=grading.graders, progress=progress))

    gen = generate(selection, overrides, engine, loc, progress=progress, then=grade_and_report)
    gr, rep = after
    return RunResult(
        unit_keys=gen.unit_keys,
        generated=gen.generated,
        reused=gen.reused,
        graded=gr.graded,
        report=rep.report,
        run_id=gen.run_id,
    )


def import_generations(
    fmt: str, paths: list[Path], options: ImportOptions, loc: Locations, *, progress: bool = True
) -> RunResult:
    """Import published generation files as stored units of ``options.checkpoint``.

    Every file is read, validated and matched to task problems by text before anything is
    written (see :mod:`rlvr_audit.importers`); then the units, the task problems and every
    sample not stored yet are written and a run manifest records the import. Re-importing the
    same files stores nothing new. Grade and report the units like generated ones.
    """
    registry = load_registry(loc)
    store = Store(loc.store)
    with make_progress(progress) as prog:
        planned = plan_import(
            fmt,
            paths,
            options,
            config_dir=loc.config_dir,
            registry=registry,
            store=store,
            data_dir=loc.data_dir,
            progress=prog,
        )
        keys = [u.key for u in planned.units]
        manifest = ManifestWriter(store, keys, f"import:{fmt}")
        status = "failed"
        try:
            done = write_import(planned, store, progress=prog)
            status = "finished"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            manifest.finish(status)
    return RunResult(
        unit_keys=keys,
        generated=done.imported,
        reused=done.already_stored,
        run_id=manifest.manifest.run_id,
        notes=done.summary_lines(),
    )


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
    grading.check()
    reporting.check()
    planned = plan_probes(plan_units(selection, probe_overrides(options), engine, loc), options)
    store = Store(loc.store)
    pstore = probe_store(store)
    keys = [p.unit.key for p in planned]
    manifest = ManifestWriter(store, keys, engine.backend)
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
                backend=engine.backend,
                model_args=engine.model_args,
                batch_size=engine.batch_size,
                device=engine.device,
                limit=engine.limit,
                save_every=engine.save_every,
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


def validate(loc: Locations) -> list[str]:
    """Load and validate every task, prompt and the registry; return a line per file checked."""
    lines = []
    for name in available_tasks(loc.config_dir):
        load_task(name, loc.config_dir)
        lines.append(f"task {name}: ok")
    prompts = available_prompts(loc.config_dir)
    for name in prompts:
        load_prompt(name, loc.config_dir)
        lines.append(f"prompt {name}: ok")
    reg = load_registry(loc)
    lines.append(
        f"registry {loc.registry_path}: ok ({len(reg.checkpoints)} checkpoints"
        + (f", {len(reg.ledger)} claims" if len(reg.ledger) else "")
        + ")"
    )
    if not lines[:-1]:
        raise UsageError(f"{loc.config_dir} has no tasks/ or prompts/ folder")
    return lines


LISTABLE = ("tasks", "prompts", "checkpoints", "units", "graders", "backends", "formats", "claims")
"""What ``rlvr-audit ls`` lists."""


def listing(kind: str, loc: Locations, filters: dict[str, str | None] | None = None) -> list[dict[str, str]]:
    """Rows describing the tasks, prompts, checkpoints, stored units, graders, backends, import
    formats or claims. ``filters`` (claims only): ``kind``, ``model``, ``benchmark``, ``source``."""
    given = {k: v for k, v in (filters or {}).items() if v is not None}
    if kind == "claims":
        return listing_rows(load_registry(loc).ledger, **given)
    if given:
        raise UsageError(f"--{', --'.join(given)} only filter `ls claims`, not `ls {kind}`")

    if kind == "tasks":
        rows = []
        for name in available_tasks(loc.config_dir):
            t = load_task(name, loc.config_dir)
            p = t.default_protocol()
            rows.append(
                {
                    "task": name,
                    "name": t.settings.display_name,
                    "dataset": t.dataset_path
                    if t.settings.generator is None
                    else f"generated (arithmetic v{t.settings.generator.version}, seed {t.settings.generator.seed})",
                    "problems": str(t.settings.expected_size or "?"),
                    "protocol": f"n={p.n}, T={p.temperature:g}, {p.max_new_tokens} tokens",
                }
            )
        return rows
    if kind == "prompts":
        rows = []
        for name in available_prompts(loc.config_dir):
            tmpl = load_prompt(name, loc.config_dir)
            rows.append(
                {
                    "prompt": name,
                    "chat": "yes" if tmpl.chat else "no",
                    "hash": tmpl.template_hash,
                    "description": tmpl.description,
                }
            )
        return rows
    if kind == "checkpoints":
        reg = load_registry(loc)
        return [
            {
                "checkpoint": c.checkpoint_id,
                "model": c.model,
                "base": c.base or "-",
                "reward": c.reward or "-",
                "step": "-" if c.step is None else str(c.step),
                "prompt": c.prompt,
            }
            for c in reg.checkpoints.values()
        ]
    if kind == "units":
        store = Store(loc.store)
        rows = []
        for u in store.units():
            s = u.spec
            rows.append(
                {
                    "unit": u.key,
                    "checkpoint": s.checkpoint.checkpoint_id,
                    "task": s.task,
                    "prompt": s.template_id,
                    "n": str(s.protocol.n),
                    "T": f"{s.protocol.temperature:g}",
                    "backend": s.backend,
                    "generated": str(len(store.read_generations(u.key))),
                    "graders": ", ".join(store.graders(u.key)) or "-",
                }
            )
        return rows
    if kind == "graders":
        return [
            {
                "grader": g,
                "version": get_grader(g).version,
                "description": (get_grader(g).__doc__ or "").strip().splitlines()[0],
            }
            for g in GRADERS
        ]
    if kind == "backends":
        return [{"backend": b} for b in available_backends()]
    if kind == "formats":
        return [
            {"format": f.name, "default max new tokens": str(f.default_max_new_tokens), "description": f.description}
            for f in FORMATS.values()
        ]
    raise UnknownNameError("listing", kind, LISTABLE)
