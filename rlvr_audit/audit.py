"""The library API behind the CLI: one function per command.

``run`` = plan -> generate -> grade -> report. Each stage reads what the previous one stored,
so ``generate``, ``grade`` and ``report`` can also be run on their own, and grading or
reporting never needs a GPU.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import os
import platform
import secrets
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .configfile import default_config_dir
from .errors import UsageError
from .importers import ImportOptions
from .plan import PlannedUnit, ProtocolOverrides, Selection, plan
from .records import RunManifest, natural_key
from .registry import Registry
from .store import DEFAULT_STORE, BrokenUnit, Store, UnitInfo
from .ui import make_progress

if TYPE_CHECKING:
    from .analyse import Analysis
    from .crossfamily import Grid
    from .grade import GradeSummary
    from .graders.judge import JudgeSettings
    from .report import ReportPart

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
    """``I/N``: generate only shard I of N of the planned work (see :func:`rlvr_audit.generate.shard_work`)."""
    ray_address: str | None = None
    """Generate on a Ray cluster (``auto`` or ``HOST:PORT``); this process writes the store."""
    gpus_per_unit: int | None = None
    """GPUs each Ray worker holds (default: the tensor-parallel size on a GPU cluster, else 0)."""


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
    """An LLM judge for the samples the graders disagree on (:mod:`rlvr_audit.judging`); ``None``: none."""


CI_METHODS = ("wilson", "percentile", "bca")
"""Valid ``--ci-method`` values, :data:`rlvr_audit.stats.CI_METHODS` (spelled out here so the CLI
starts without numpy); the default is :data:`DEFAULT_CI_METHOD`."""

DEFAULT_CI_METHOD = "wilson"
"""The default ``--ci-method``, :data:`rlvr_audit.stats.DEFAULT_CI_METHOD`."""


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
    """Write the per-sample browser beside ``index.html`` (see :mod:`rlvr_audit.browser`)."""
    browser_page_size: int = 500
    """Samples per page of the per-sample browser."""

    @property
    def out_dir(self) -> Path:
        """The report folder in use."""
        return self.report_dir or Path("reports") / self.name


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
    from .claims import task_catalog
    from .prompts import available_prompts

    reg = Registry.load(loc.registry_path)
    prompts = set(available_prompts(loc.config_dir))
    reg.check_prompts(prompts)
    if len(reg.ledger):
        reg.ledger.check_config(task_catalog(loc.config_dir), prompts)
    return reg


def _package_versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for name in ("rlvr-audit", "lm-eval", "math-verify", "transformers", "torch", "vllm", "numpy", "scipy", "pandas"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        res = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None


def _hardware() -> dict[str, str]:
    hw = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": str(os.cpu_count()),
        "machine": platform.machine(),
    }
    torch = sys.modules.get("torch")  # only if a stage already imported it
    if torch is not None:
        try:
            if torch.cuda.is_available():
                hw["cuda_devices"] = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        except Exception:  # a broken CUDA setup must not fail the manifest
            hw["cuda_devices"] = "unavailable"
    return hw


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class _Manifest:
    """Writes the run manifest at start (or, with ``lazy``, when :meth:`start` is called: before the
    run first writes to the store) and updates it when the run ends."""

    def __init__(self, store: Store, units: list[str], backend: str | None, *, lazy: bool = False) -> None:
        self.store = store
        self.started = False
        run_id = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)
        self.manifest = RunManifest(
            run_id=run_id,
            command=" ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            started_at=_now(),
            units=units,
            backend=backend,
            packages=_package_versions(),
            git_commit=_git_commit(),
            hardware=_hardware(),
            pid=os.getpid(),
            host=socket.gethostname(),
        )
        self.finished = False
        if not lazy:
            self.start()

    def start(self) -> None:
        """Write the manifest (once)."""
        if not self.started:
            self.started = True
            self.store.write_manifest(self.manifest)

    def finish(self, status: str) -> None:
        """Record how the run ended (may be called again: a run marked finished before its
        report is written is marked failed if the report fails). A lazy manifest that was never
        started is left unwritten when the run failed before it wrote anything."""
        if not self.started and status != "finished":
            return
        self.manifest = self.manifest.model_copy(
            update={"status": status, "finished_at": _now(), "hardware": _hardware()}
        )
        self.started = True
        self.store.write_manifest(self.manifest)
        self.finished = True


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
        from .generate import parse_shard

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


def _check_report_options(options: ReportOptions, loc: Locations | None = None) -> None:
    """Refuse bad report options before anything is generated or written: the name must be one
    folder name and, when ``loc`` is given (a report will be written), the report folder must
    not be anything but an earlier report (see :func:`rlvr_audit.report.check_report_target`)."""
    from .report import check_report_name, check_report_target

    check_report_name(options.name)
    if loc is not None:  # the options are for a report that will be written
        protected = [
            ("the current directory", Path.cwd()),
            ("the store", loc.store),
            ("the configuration folder", loc.config_dir),
        ]
        check_report_target(options.out_dir, protected=protected)
    if not 0 < options.level < 1:
        raise UsageError(f"--level must be in (0, 1), got {options.level}")
    if options.n_resamples < 100:
        raise UsageError(f"--resamples must be >= 100, got {options.n_resamples}")
    if options.ci_method not in CI_METHODS:
        raise UsageError(f"unknown --ci-method {options.ci_method!r}; valid: {', '.join(CI_METHODS)}")
    if options.browser_page_size < 1:
        raise UsageError(f"--browser-page-size must be >= 1 samples per page, got {options.browser_page_size}")


def _check_grade_options(options: GradeOptions) -> None:
    from .graders import get_grader

    if not options.graders:
        raise UsageError("no graders given; valid graders: see `rlvr-audit ls graders`")
    for g in options.graders:
        get_grader(g)
    if not 0 < options.timeout < float("inf"):  # also refuses nan
        raise UsageError(f"--timeout must be > 0 seconds (and finite), got {options.timeout}")
    if options.workers is not None and options.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {options.workers}")
    if options.save_every < 1:
        raise UsageError(f"--grade-save-every must be >= 1, got {options.save_every}")
    from .grade import RETRYABLE

    unknown = [v for v in options.retry if v not in RETRYABLE]
    if unknown:
        raise UsageError(f"--retry: unknown verdict {unknown[0]!r}; valid: {', '.join(RETRYABLE)}")


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
    from .generate import EngineSpec, generate_units, parse_shard

    units = plan_units(selection, overrides, engine, loc)
    cluster = None
    if engine.ray_address is not None:  # connect (and check the cluster) before anything is written
        from .distributed import connect

        cluster = connect(engine.ray_address, gpus_per_unit=engine.gpus_per_unit, model_args=engine.model_args)
    store = Store(loc.store)
    manifest = _Manifest(store, [u.key for u in units], engine.backend, lazy=True)
    result = RunResult(unit_keys=[u.key for u in units], run_id=manifest.manifest.run_id)
    status = "failed"
    try:
        with make_progress(progress) as prog:
            s = generate_units(
                store,
                units,
                engine=EngineSpec(
                    backend=engine.backend,
                    model_args=engine.model_args,
                    batch_size=engine.batch_size,
                    device=engine.device,
                    chunk_size=engine.save_every,
                    use_model_generation_config=engine.use_model_generation_config,
                ),
                limit=engine.limit,
                progress=prog,
                shard=parse_shard(engine.shard) if engine.shard is not None else None,
                ray=cluster,
                before_write=manifest.start,
            )
        result.generated, result.reused = s.generated, s.reused
        if engine.shard is not None:
            result.unit_keys = s.stored_units
        if then is not None:
            manifest.start()  # grading and the report write to the store too
            then(result, manifest.finish)
        status = "finished"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        if status != "finished" or not manifest.finished:
            manifest.finish(status)
        if cluster is not None:
            cluster.close()
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
    from .grade import grade_units

    _check_grade_options(options)
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
        from .judging import judge_units

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
    from .analyse import analyse
    from .html import HtmlOptions
    from .report import write_report

    _check_report_options(options, loc)
    store = Store(loc.store)
    if unit_keys is None:
        from .probe import has_probe_units

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
    extra_sections, extra_tables = None, None
    if registry is not None and len(registry.ledger):
        from .claims import report_section, task_catalog

        catalog = registry.ledger.catalog(task_catalog(loc.config_dir))
        section = report_section(registry.ledger, catalog, analysis, level=options.level)
        if section is not None:  # the store measured base models that claims are about
            extra_sections, extra_tables = [section[0]], {"baseline_correction.csv": section[1]}
    grids = _cross_family_grids(analysis, registry)
    parts = _behaviour_parts(analysis, store, registry, options, progress=progress)
    from .probe import report_part as probe_report_part

    probe = probe_report_part(
        store,
        registry=registry,
        graders=graders,
        seed=options.seed,
        n_resamples=options.n_resamples,
        level=options.level,
        ci_method=options.ci_method,
    )
    if probe is not None:  # the store holds contamination probe units
        parts.append(probe)
    broken = store.broken_units()
    if broken:  # left out of every table above: say so in the report itself
        parts.append(_broken_part(broken))
    paths = write_report(
        analysis,
        store,
        options.out_dir,
        name=options.name,
        level=options.level,
        n_resamples=options.n_resamples,
        seed=options.seed,
        extra_sections=extra_sections,
        extra_tables=extra_tables,
        cross_family=grids,
        parts=parts,
        html=HtmlOptions(browser=options.browser, page_size=options.browser_page_size, progress=progress),
    )
    return RunResult(unit_keys=unit_keys, report=paths.index_md)


def _broken_part(broken: list[BrokenUnit]) -> ReportPart:
    """A report section listing the unit folders that could not be read (and were left out)."""
    import pandas as pd

    from .report import ReportPart

    lines = [
        "## Broken units\n",
        f"{len(broken)} unit folder{'s' if len(broken) != 1 else ''} of the store could not be read and "
        "{} left out of every table of this report:\n".format("is" if len(broken) == 1 else "are"),
    ]
    lines += [f"- `{b.key}`: `{str(b.path).replace('`', chr(39))}`: {b.reason}" for b in broken]
    frame = pd.DataFrame([{"unit": b.key, "path": str(b.path), "reason": b.reason} for b in broken])
    return ReportPart(section="\n".join(lines) + "\n", tables={"broken_units.csv": frame})


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


def _behaviour_parts(
    analysis: Analysis, store: Store, registry: Registry | None, options: ReportOptions, *, progress: bool
) -> list[ReportPart]:
    """The prompt-sensitivity part (when some checkpoint was run under two or more templates),
    then the code-reasoning and behaviour-flag parts (see :mod:`rlvr_audit.sweep` and
    :mod:`rlvr_audit.code_report`)."""
    from .code_report import build_code_report, code_parts
    from .sweep import build_sweep, sweep_part

    defaults = {cid: ck.prompt for cid, ck in registry.checkpoints.items()} if registry is not None else {}
    sweep = sweep_part(
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
    return ([sweep] if sweep is not None else []) + code_parts(code)


def _cross_family_grids(analysis: Analysis, registry: Registry | None) -> list[Grid]:
    """Family x reward grids of the measured gains, with the ledger's claimed gains beside them
    (grids with nothing measured are left to the claims report)."""
    from .crossfamily import build_grids, claimed_from_ledger

    ledger = registry.ledger if registry is not None else None
    grids = build_grids(
        analysis,
        claimed=claimed_from_ledger(ledger) if ledger is not None else (),
        family_order=list(registry.families) if registry is not None else (),
        family_display=dict(registry.families) if registry is not None else None,
        default_prompt=dict(ledger.family_prompts) if ledger is not None else None,
    )
    return [g for g in grids if g.measured]


def claims_report(options: ReportOptions, loc: Locations) -> RunResult:
    """Audit the claims ledger without a model (``rlvr-audit run --claims-only``).

    Writes ``<report dir>/index.md`` with the baseline-correction and statistical-resolution
    sections, and ``tables/baseline_correction.csv``, ``resolution.csv``, ``claims.csv``. Needs
    no model, download or store; when the store exists and holds units of the claimed models,
    our estimates of their base models are added as measured baselines (and our paired gains
    of the claimed checkpoints, where measured). ``RunResult.unit_keys``: the units used.
    """
    from .analyse import analyse, apply_registry
    from .claims import task_catalog, write_claims_report

    _check_report_options(options, loc)
    registry = load_registry(loc)
    ledger = registry.ledger
    if not len(ledger):
        raise UsageError(f"{loc.registry_path} has no claims: the ledger is its 'claims' section")
    catalog = ledger.catalog(task_catalog(loc.config_dir))
    keys: list[str] = []
    analysis = None
    if not (loc.store / "units").is_dir():
        note = f"No store at `{loc.store}`: every baseline below is cited, none measured."
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
                seed=options.seed,
                n_resamples=options.n_resamples,
                level=options.level,
                ci_method=options.ci_method,
            )
            note = f"Measured baselines come from the store `{loc.store}` ({len(keys)} units of claimed models)."
        else:
            note = f"The store `{loc.store}` holds no unit of a claimed model: every baseline below is cited."
        if n_synthetic:
            note += (
                f" {n_synthetic} synthetic unit{'s' if n_synthetic > 1 else ''} of claimed models (backend "
                f"`scripted`: no model ran) {'are' if n_synthetic > 1 else 'is'} ignored."
            )
    paths = write_claims_report(
        ledger,
        catalog,
        options.out_dir,
        name=options.name,
        level=options.level,
        analysis=analysis,
        store_note=note,
        protected=[("the store", loc.store)],
    )
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
    _check_grade_options(grading)  # before anything is generated or written
    _check_report_options(reporting, loc)
    after: list[RunResult] = []

    def grade_and_report(gen: RunResult, finish: Callable[[str], None]) -> None:  # under the run's manifest
        after.append(grade(gen.unit_keys, grading, loc, progress=progress))
        if engine.shard is None:  # a shard's units are partial: report after `rlvr-audit store merge`
            finish("finished")  # generation and grading are done: the report shows this run finished
            after.append(report(gen.unit_keys, reporting, loc, graders=grading.graders, progress=progress))

    gen = generate(selection, overrides, engine, loc, progress=progress, then=grade_and_report)
    gr, rep = after[0], after[1] if len(after) > 1 else None
    notes = []
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
    from .importers import plan_import, write_import

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
        manifest = _Manifest(store, keys, f"import:{fmt}")
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


def validate(loc: Locations) -> list[str]:
    """Load and validate every task, prompt and the registry; return a line per file checked."""
    from .prompts import available_prompts, load_prompt
    from .tasks import available_tasks, load_task

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
    from .prompts import available_prompts, load_prompt
    from .tasks import available_tasks, load_task

    given = {k: v for k, v in (filters or {}).items() if v is not None}
    if kind == "claims":
        from .claims import listing_rows

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
        good, broken = store.scan()
        for u in good:
            s = u.spec
            rows.append(
                {
                    "unit": u.key,
                    "checkpoint": s.checkpoint.checkpoint_id,
                    "task": s.task,
                    "prompt": s.template_id,
                    "n": str(s.protocol.n),
                    "T": f"{s.protocol.temperature:g}",
                    "backend": s.backend + (f" ({u.imported.label})" if u.imported is not None else ""),
                    "generated": str(len(store.read_generations(u.key))),
                    "graders": ", ".join(store.graders(u.key)) or "-",
                }
            )
        columns = ("task", "prompt", "n", "T", "backend", "generated", "graders")
        for b in broken:  # listed with the file that is wrong, instead of failing the whole listing
            rows.append({"unit": b.key, "checkpoint": f"BROKEN: {b.line()}", **dict.fromkeys(columns, "-")})
        return rows
    if kind == "graders":
        from .graders import GRADERS, get_grader

        return [
            {
                "grader": g,
                "version": get_grader(g).version,
                "description": (get_grader(g).__doc__ or "").strip().splitlines()[0],
            }
            for g in GRADERS
        ]
    if kind == "backends":
        from .backends import available_backends

        return [{"backend": b} for b in available_backends()]
    if kind == "formats":
        from .importers import FORMATS

        return [
            {
                "format": f.name,
                "default max new tokens": str(f.default_max_new_tokens)
                if f.default_max_new_tokens is not None
                else "none: from the file, else --max-new-tokens",
                "description": f.description,
            }
            for f in FORMATS.values()
        ]
    from .errors import UnknownNameError

    raise UnknownNameError("listing", kind, LISTABLE)
