"""``rlvr-audit probe contamination``: plan, generate, grade and analyse partial-prompt probes
(:mod:`rlvr_audit.generation.probes`, :mod:`rlvr_audit.analysis.contamination`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..analysis.contamination import ProbeAnalysis, analyse_probes
from ..core.errors import UsageError
from ..core.manifest import ManifestWriter
from ..core.store import Store
from ..core.ui import make_progress
from ..generation.plan import Selection
from ..generation.probes import (
    ProbeOptions,
    plan_probes,
    probe_overrides,
    probe_store,
    write_probe_info,
)
from ..grading.runner import grade_units
from .options import EngineOptions, GradeOptions, Locations, ReportOptions, generate_with, load_registry, plan_units


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
    run manifest to its ``runs/``. Probes run in this process: ``--shard`` and ``--ray-address``
    are refused."""
    grading.check()
    reporting.check()
    given = [flag for flag, value in (("--shard", engine.shard), ("--ray-address", engine.ray_address)) if value]
    if given:
        raise UsageError(f"{' and '.join(given)}: the contamination probe runs in this process; drop it")
    planned = plan_probes(plan_units(selection, probe_overrides(options), engine, loc), options)
    store = Store(loc.store)
    pstore = probe_store(store)
    keys = [p.unit.key for p in planned]
    with ManifestWriter(store, keys, engine.backend) as manifest:
        for p in planned:
            pstore.ensure_unit(p.unit.info)
            write_probe_info(pstore, p.probe)
            store.save_problems(p.probe.source_data_hash, p.source)
        with make_progress(progress) as prog:
            gen = generate_with(engine, pstore, [p.unit for p in planned], prog)
            graded = grade_units(
                pstore, keys, graders=grading.graders, workers=grading.workers, timeout=grading.timeout, progress=prog
            )
    registry = load_registry(loc) if loc.registry_path.is_file() else None
    analysis = analyse_probes(
        store,
        registry=registry,
        keys=keys,
        graders=grading.graders,
        **reporting.bootstrap(),
    )
    return ProbeResult(
        unit_keys=keys,
        generated=gen.generated,
        reused=gen.reused,
        graded=graded.graded,
        analysis=analysis,
        run_id=manifest.manifest.run_id,
    )
