"""The library API behind the CLI: one function per command.

``run`` = plan -> generate -> grade -> report. Each stage reads what the previous one stored,
so ``generate``, ``grade`` and ``report`` can also be run on their own, and grading or
reporting never needs a GPU.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..analysis.adjudicated import (
    add_adjudication,
    adjudication_for_report,
    gains_by_grader_section,
    verdict_change_summary,
)
from ..analysis.anatomy_sections import anatomy_section, anatomy_summary
from ..analysis.behaviour import is_code_reasoning
from ..analysis.claims_sections import claims_document, measured_correction_section
from ..analysis.code_reasoning import build_code_report
from ..analysis.code_sections import code_sections
from ..analysis.contamination_sections import rates_rows, stored_probe_section
from ..analysis.crossfamily import build_grids, claimed_from_ledger, cross_family_section
from ..analysis.disagreement import disagreement_section, grader_disagreements
from ..analysis.estimates import Analysis, analyse, apply_registry, grader_version
from ..analysis.figures import figures_section
from ..analysis.reproduction import (
    broken_units_section,
    comparisons_frame,
    gains_section,
    imported_section,
    intro,
    manifest_section,
    reproduction_sections,
    seed_spread_section,
    settings_section,
    unit_labels,
)
from ..analysis.sweep import build_sweep
from ..analysis.sweep_sections import sweep_section
from ..core.claims import ledger_path, task_catalog
from ..core.configfile import default_config_dir
from ..core.errors import UsageError
from ..core.manifest import ManifestWriter
from ..core.merge import merge_stores as merge_store_folders
from ..core.records import natural_key
from ..core.registry import Registry
from ..core.section import Code, Document, Inline, table_links
from ..core.store import Store
from ..core.ui import make_progress
from ..generation.distributed import connect
from ..generation.engines import parse_model_args
from ..generation.plan import ProtocolOverrides, Selection
from ..generation.probes import ProbeOptions, has_probe_units
from ..generation.probes import check_options as check_probe_options
from ..generation.task_export import ExportResult, export_tasks
from ..grading.judge import JudgeSettings
from ..grading.judging import judge_units
from ..grading.runner import GradeSummary, grade_units
from ..importers import ImportOptions, plan_import, write_import
from ..report.browser import BrowserSource, browser_units, select_units
from ..report.html import HtmlOptions
from ..report.writer import write_report
from ..simulation.clipping import run_clipping
from ..simulation.synthetic import synthesize
from .listing import LISTABLE, listing, listing_notes, validate
from .options import (
    CI_METHODS,
    DEFAULT_CI_METHOD,
    DEFAULT_GRADERS,
    EngineOptions,
    GradeOptions,
    Locations,
    ReportOptions,
    RunResult,
    generate_with,
    load_registry,
    plan_units,
    select_stored,
)
from .probe import ProbeResult, run_contamination_probe
from .report_units import earlier_units, record_units

__all__ = [
    "CI_METHODS",
    "DEFAULT_CI_METHOD",
    "DEFAULT_GRADERS",
    "LISTABLE",
    "EngineOptions",
    "ExportResult",
    "GradeOptions",
    "JudgeSettings",
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
    "export_tasks",
    "generate",
    "grade",
    "grade_notes",
    "import_generations",
    "listing",
    "listing_notes",
    "load_registry",
    "merge_stores",
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


def generate(
    selection: Selection,
    overrides: ProtocolOverrides,
    engine: EngineOptions,
    loc: Locations,
    *,
    progress: bool = True,
    then: Callable[[RunResult, Callable[[str], None]], None] | None = None,
) -> RunResult:
    """Plan and generate (no grading). ``then(result, finish)``, if given, runs after generation
    under the same run manifest (``run`` grades and reports there), so the manifest says
    ``finished`` only when that is done too; ``then`` may call ``finish(status)`` itself to record
    the end before its last step (``run`` does before writing the report, so that the report
    shows its own run finished). Nothing is written before the first model has loaded (the run
    manifest included), so a run that fails to load its model leaves the store as it was. With
    ``engine.shard``, ``result.unit_keys`` are the units this shard holds."""
    units = plan_units(selection, overrides, engine, loc)
    cluster = None
    if engine.ray_address is not None:  # connect (and check the cluster) before anything is written
        cluster = connect(engine.ray_address, gpus_per_unit=engine.gpus_per_unit, model_args=engine.model_args)
    store = Store(loc.store)
    try:
        with ManifestWriter(store, [u.key for u in units], engine.backend, lazy=True) as manifest:
            result = RunResult(unit_keys=[u.key for u in units], run_id=manifest.manifest.run_id)
            with make_progress(progress) as prog:
                s = generate_with(engine, store, units, prog, ray=cluster, before_write=manifest.start)
            result.generated, result.reused = s.generated, s.reused
            if engine.shard is not None:
                result.unit_keys = s.stored_units
            if then is not None:
                manifest.start()  # grading and the report write to the store too
                then(result, manifest.finish)
    finally:
        if cluster is not None:
            cluster.close()
    return result


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
            retry=options.retry,
            cache=options.cache,
        )
    notes = grade_notes(s, store)
    if options.judge is not None:
        with make_progress(progress) as prog:
            notes += judge_units(store, unit_keys, options.judge, progress=prog).lines()
    return RunResult(unit_keys=unit_keys, graded=s.graded, reused=s.reused, notes=notes)


def grade_notes(summary: GradeSummary, store: Store) -> list[str]:
    """Lines for the user after a grading pass: re-grades, the verdict cache, and the timeouts and
    errors of every graded unit and grader (with how to re-grade them)."""
    notes = []
    if summary.regraded:
        notes.append(f"re-graded {summary.regraded} samples (their new grades supersede the old ones)")
    if summary.retried_alone:
        notes.append(f"{summary.retried_alone} grading steps timed out and were run again alone with 4x the limit")
    if summary.cache is not None:
        c = summary.cache
        looked = c["hits"] + c["judged"]
        rate = f" ({c['hits'] / looked:.0%})" if looked else ""
        notes.append(
            f"verdict cache ({store.root / 'cache' / 'verdicts.sqlite'}): {c['hits']} of {looked} distinct answers "
            f"found{rate}, {c['samples']} samples served from it"
        )
    failing = [r for r in summary.failures if r["timeout"] or r["error"]]
    for r in failing:
        notes.append(
            f"{r['checkpoint_id']} · {r['task']} · {r['template_id']} · {r['grader_id']}: "
            f"{r['timeout']} timeout, {r['error']} error of {r['graded']} graded (unit {r['unit_key']})"
        )
    if failing:
        notes.append("re-grade them with: rlvr-audit grade --retry timeout,error --timeout <longer limit>")
    elif summary.failures:
        notes.append("no timeout or error verdicts in the graded units")
    return notes


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
    options.check(loc)
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
        **options.bootstrap(),
    )
    if options.browser:  # a glob that matches no unit fails before anything is written
        select_units(browser_units(store, analysis), options.browser_globs)
    doc = report_document(analysis, store, registry, options, loc, graders=graders, progress=progress)
    paths = write_report(
        doc,
        options.out_dir,
        html=HtmlOptions(
            browser=options.browser,
            page_size=options.browser_page_size,
            progress=progress,
            units=options.browser_globs,
        ),
        browser=BrowserSource(store, analysis, grader_version=grader_version, is_code=is_code_reasoning),
        protected=[("the store", store.root)],
    )
    record_units(options.out_dir, store, unit_keys)  # a later `run` into this folder adds to these
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
    broken units, settings, run manifests)."""
    sections = reproduction_sections(analysis)
    doc = Document(
        ["rlvr-audit report: ", options.name],
        intro=list(intro(analysis, store, level=options.level, n_resamples=options.n_resamples, seed=options.seed)),
    )
    disagreement = disagreement_section(grader_disagreements(store, analysis.units, analysis.graders))
    if len(analysis.graders) < 2:  # no section, but the (empty) table is written all the same
        doc.tables.update(disagreement.tables)
    elif disagreement.tables["grader_disagreement.csv"].size:  # who is right: the truth set's held-out rates
        add_adjudication(
            disagreement, adjudication_for_report(store, analysis.units, analysis.graders, level=options.level)
        )
    comparisons = comparisons_frame(analysis)
    change_summary = verdict_change_summary(comparisons, graders=analysis.graders)
    if change_summary is not None:  # the summary says when a gain's verdict changes with the grader
        doc.intro.append(change_summary)
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
            **options.bootstrap(),
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
        **options.bootstrap(),
    )
    sections += [
        s
        for s in (
            imported_section(analysis),
            disagreement if len(analysis.graders) > 1 else None,
            gains_section(analysis),
            gains_by_grader_section(comparisons, graders=analysis.graders, names=unit_labels(analysis)),
            anatomy_section(code.anatomies),
            figures_section(analysis),
            cross_family_section(grids) if grids else None,
            seed_spread_section(analysis),
            correction,
            sweep,
            *code_sections(code),
            probe,
            broken_units_section(store.broken_units()),  # left out of every table above: say so
        )
        if s is not None
    ]
    sections += [
        settings_section(analysis, store, level=options.level, n_resamples=options.n_resamples, seed=options.seed),
        manifest_section(store.manifests(), {u.key for u in analysis.units}),
    ]
    doc.sections = sections
    doc.intro.extend(anatomy_summary(code.anatomies))
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
    and their checkpoints as ``checkpoints.yaml`` lists them), then the others by family, step
    and id, numbers compared as numbers (``step50`` before ``step1000``)."""
    infos = {key: store.load_unit(key) for key in dict.fromkeys(unit_keys)}
    rank = {cid: i for i, cid in enumerate(registry.checkpoints)} if registry is not None else {}

    def order(key: str) -> tuple[Any, ...]:
        info = infos[key]
        spec = info.spec
        cid = spec.checkpoint.checkpoint_id
        step = -1 if info.step is None else info.step  # steps numerically: step 1000 after step 50
        known = rank.get(cid, len(rank))
        return (
            known,
            info.family if known == len(rank) else "",
            step,
            natural_key(cid),
            spec.task,
            spec.template_id,
            spec.protocol.seed,
            key,
        )

    return sorted(infos, key=order)


def claims_report(options: ReportOptions, loc: Locations) -> RunResult:
    """Audit the claims ledger without a model (``rlvr-audit run --claims-only``).

    Writes ``<report dir>/index.md`` with the baseline-correction and statistical-resolution
    sections, and ``tables/baseline_correction.csv``, ``resolution.csv``, ``claims.csv``. Needs
    no model, download or store; when the store exists and holds units of the claimed models,
    our estimates of their base models are added as measured baselines (and our paired gains
    of the claimed checkpoints, where measured). ``RunResult.unit_keys``: the units used.
    Synthetic units (backend ``scripted``: no model ran) are never taken for measurements.
    """
    options.check(loc)
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
        claimed = [u for u in store.units() if apply_registry(u, registry).family in families]
        keys = [u.key for u in claimed if not u.spec.synthetic]  # a scripted oracle measures no model
        n_synthetic = len(claimed) - len(keys)
        if keys:
            analysis = analyse(
                store,
                unit_keys=keys,
                registry=registry,
                **options.bootstrap(),
            )
            note = ["Measured baselines come from the store ", store_text, f" ({len(keys)} units of claimed models)."]
        else:
            note = ["The store ", store_text, " holds no unit of a claimed model: every baseline below is cited."]
        if n_synthetic:
            note += [
                f" {n_synthetic} synthetic unit{'s' if n_synthetic > 1 else ''} of claimed models (backend ",
                Code("scripted"),
                f": no model ran) {'are' if n_synthetic > 1 else 'is'} ignored.",
            ]
    doc = claims_document(ledger, catalog, name=options.name, level=options.level, analysis=analysis, store_note=note)
    paths = write_report(doc, options.out_dir, protected=[("the store", loc.store)])
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
    reporting.check(loc)
    after: list[RunResult] = []

    def grade_and_report(gen: RunResult, finish: Callable[[str], None]) -> None:  # under the run's manifest
        after.append(grade(gen.unit_keys, grading, loc, progress=progress))
        if engine.shard is None:  # a shard's units are partial: report after `rlvr-audit store merge`
            finish("finished")  # generation and grading are done: the report shows this run finished
            earlier = [k for k in earlier_units(reporting.out_dir, Store(loc.store)) if k not in gen.unit_keys]
            keys = earlier + list(gen.unit_keys)
            after.append(report(keys, reporting, loc, graders=grading.graders, progress=progress))
            if earlier:
                after[-1].notes.append(
                    f"the report also shows {len(earlier)} unit(s) of the earlier report in {reporting.out_dir} "
                    "(same store); --name or --report-dir writes a separate report"
                )

    gen = generate(selection, overrides, engine, loc, progress=progress, then=grade_and_report)
    gr, rep = after[0], after[1] if len(after) > 1 else None
    notes: list[str] = list(rep.notes) if rep is not None else []
    if rep is None:
        notes.append(
            f"shard {engine.shard}: no report (its units are partial); merge the shards' stores with "
            "`rlvr-audit store merge`, then run `rlvr-audit report`"
        )
    return RunResult(
        unit_keys=gen.unit_keys,
        generated=gen.generated,
        reused=gen.reused,
        graded=gr.graded,
        report=rep.report if rep is not None else None,
        run_id=gen.run_id,
        notes=notes,
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
        with ManifestWriter(store, keys, f"import:{fmt}") as manifest:
            done = write_import(planned, store, progress=prog)
    return RunResult(
        unit_keys=keys,
        generated=done.imported,
        reused=done.already_stored,
        run_id=manifest.manifest.run_id,
        notes=done.summary_lines(),
    )


def merge_stores(sources: list[Path], dest: Path) -> RunResult:
    """Merge the stores ``sources`` into ``dest`` (``rlvr-audit store merge``, see
    :func:`rlvr_audit.core.merge.merge_stores`): ``unit_keys`` are the units new to ``dest``,
    ``generated`` and ``graded`` the generations and grades copied."""
    done = merge_store_folders(sources, dest)
    return RunResult(unit_keys=done.new_units, generated=done.generations, graded=done.grades, notes=done.notes)
