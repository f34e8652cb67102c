"""The ``rlvr-audit`` command line: parses arguments and calls one library function per command.

Heavy modules (torch, lm-eval's engines, math-verify) are imported only inside the commands
that need them, so ``rlvr-audit --help`` is instant.
"""

from __future__ import annotations

import errno
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from .errors import AuditError, UsageError
from .simulate import simulate_app
from .train.cli import train_app


def _flags_as_flags(command: Any) -> Any:
    """Show on/off options as flags in ``--help``: typer 0.29 prints ``<bool>`` beside every flag
    (``--quiet <bool>``), which reads as if ``--quiet true`` were expected. An empty metavar shows
    the flag alone. ``command``: a typer (click) command or group."""
    for param in command.params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    help_option = command.get_help_option(command.context_class(command))  # ``--help`` itself
    if help_option is not None:
        help_option.metavar = ""
    return command


class _Group(TyperGroup):
    """The command groups of ``rlvr-audit``: flags shown as flags (:func:`_flags_as_flags`), in
    every sub-command and sub-group (``train``, ``simulate``, ...)."""

    def get_params(self, ctx: Any) -> list[Any]:
        _flags_as_flags(self)
        return list(super().get_params(ctx))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            return None
        if isinstance(command, TyperGroup) and not isinstance(command, _Group):
            command.__class__ = _Group
        return _flags_as_flags(command)


app = typer.Typer(
    name="rlvr-audit",
    cls=_Group,
    help=(
        "Audit claims about RL with verifiable rewards on math benchmarks: generate once, grade with "
        "several graders, report accuracies and gains over base models with confidence intervals.\n\n"
        "Example: rlvr-audit run --backend hf --checkpoints ./my-model --tasks math500 --limit 5 "
        "--data-dir ../shared/data/benchmarks"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        from importlib import metadata

        try:
            version = metadata.version("rlvr-audit")
        except metadata.PackageNotFoundError:  # a source tree that was not installed
            version = "unknown (not installed)"
        typer.echo(f"rlvr-audit {version}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Audit claims about RL with verifiable rewards on math benchmarks."""


# ---- shared options --------------------------------------------------------------------------
StoreOpt = Annotated[Path, typer.Option("--store", help="Store directory (JSONL records).", envvar="RLVR_AUDIT_STORE")]
DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Read benchmarks from DIR/<task>.jsonl instead of the Hugging Face Hub.",
        envvar="RLVR_AUDIT_DATA_DIR",
    ),
]
ConfigDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--config-dir",
        help="Folder with tasks/, prompts/ and checkpoints.yaml (default: the project's).",
        envvar="RLVR_AUDIT_CONFIG_DIR",
    ),
]
RegistryOpt = Annotated[
    Path | None, typer.Option("--registry", help="Checkpoint registry YAML (default: <config-dir>/checkpoints.yaml).")
]
CheckpointsOpt = Annotated[
    str | None,
    typer.Option(
        "--checkpoints",
        "-c",
        help="Comma-separated registry ids, globs (qwen2.5-math-7b/*) or local model directories.",
    ),
]
TasksOpt = Annotated[str | None, typer.Option("--tasks", "-t", help="Comma-separated task ids (default: all).")]
PromptsOpt = Annotated[
    str | None,
    typer.Option(
        "--prompts",
        "-p",
        help="Comma-separated prompt templates; 'default' = each checkpoint's own, 'all' = every template.",
    ),
]
BackendOpt = Annotated[
    str, typer.Option("--backend", "-b", help="lm-eval model type (hf, vllm, local-completions, ...) or 'scripted'.")
]
ModelArgsOpt = Annotated[
    str | None, typer.Option("--model-args", help="Engine arguments, lm-eval style: 'dtype=bfloat16,max_length=4096'.")
]
LimitOpt = Annotated[int | None, typer.Option("--limit", help="Only the first N problems of each task.")]
SamplesOpt = Annotated[
    int | None, typer.Option("--samples", "-k", help="Samples per problem (default: the task's protocol).")
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Base sampling seed (part of the unit key).")]
TemperatureOpt = Annotated[
    float | None, typer.Option("--temperature", help="Sampling temperature (default: the task's).")
]
TopPOpt = Annotated[float | None, typer.Option("--top-p", help="Nucleus sampling mass (default: the task's).")]
MaxTokensOpt = Annotated[
    int | None, typer.Option("--max-new-tokens", help="New-token limit (default: the task's, 3072).")
]
BatchOpt = Annotated[int, typer.Option("--batch-size", help="Engine batch size.")]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="Device for transformers engines (cuda, cpu).")]
SaveEveryOpt = Annotated[
    int,
    typer.Option(
        "--save-every",
        help="Requests per engine call for servers and SGLang (vLLM takes a unit per call, hf a batch); what an "
        "engine hands back is stored at once.",
    ),
]
ModelGenConfigOpt = Annotated[
    bool,
    typer.Option(
        "--use-model-generation-config",
        help="Let the model's generation_config.json supply top_k, min_p and repetition_penalty (part of the unit "
        "key). Default: every sampling parameter comes from the protocol.",
    ),
]
ShardOpt = Annotated[
    str | None,
    typer.Option(
        "--shard",
        help="I/N: generate only shard I of N of the planned work (Slurm arrays, hand-split runs); join the "
        "shards' stores with `rlvr-audit store merge`.",
    ),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="Generate on a Ray cluster: 'auto' or HOST:PORT (this process alone writes the store).",
    ),
]
GpusPerUnitOpt = Annotated[
    int | None,
    typer.Option(
        "--gpus-per-unit",
        help="GPUs each Ray worker holds (default: tensor_parallel_size on a GPU cluster, 0 on CPUs).",
    ),
]
GradeSaveEveryOpt = Annotated[
    int, typer.Option("--grade-save-every", help="Store a unit's grades after every N graded samples.")
]
NoBasesOpt = Annotated[bool, typer.Option("--no-bases", help="Do not add each checkpoint's base model to the run.")]
GradersOpt = Annotated[
    str, typer.Option("--graders", "-g", help="Comma-separated grader ids (see `rlvr-audit ls graders`).")
]
WorkersOpt = Annotated[int | None, typer.Option("--workers", help="Grading worker processes (default: all cores).")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Wall-clock seconds per graded answer.")]
NameOpt = Annotated[str, typer.Option("--name", help="Report name: the report goes to reports/<name>.")]
ReportDirOpt = Annotated[Path | None, typer.Option("--report-dir", help="Report folder (default: reports/<name>).")]
ReportSeedOpt = Annotated[int, typer.Option("--bootstrap-seed", help="Seed of the bootstrap resampling.")]
ResamplesOpt = Annotated[int, typer.Option("--resamples", help="Bootstrap resamples.")]
LevelOpt = Annotated[float, typer.Option("--level", help="Confidence level of the intervals.")]
CiMethodOpt = Annotated[
    str,
    typer.Option(
        "--ci-method",
        help="Interval: 'wilson' (default; Wilson score interval with a cluster design effect over problems, "
        "MOVER for gains), or a bootstrap over problems: 'percentile' or 'bca' (bias-corrected, accelerated).",
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
NoBrowserOpt = Annotated[
    bool, typer.Option("--no-browser", help="Write index.html without the per-sample browser pages.")
]
BrowserPageSizeOpt = Annotated[
    int, typer.Option("--browser-page-size", help="Samples per page of the per-sample browser.")
]


def _report_options(opts: dict[str, Any]) -> Any:
    """``audit.ReportOptions`` from a command's report options (its ``locals()``)."""
    from . import audit

    return audit.ReportOptions(
        name=opts["name"],
        report_dir=opts["report_dir"],
        seed=opts["bootstrap_seed"],
        n_resamples=opts["resamples"],
        level=opts["level"],
        ci_method=opts["ci_method"],
        browser=not opts.get("no_browser", False),
        browser_page_size=opts.get("browser_page_size", 500),
    )


def _split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    return items or None


def _fail(exc: AuditError) -> NoReturn:
    from .ui import fail

    fail(exc)


def _locations(store: Path, data_dir: Path | None, config_dir: Path | None, registry: Path | None):  # type: ignore[no-untyped-def]
    from .audit import Locations
    from .configfile import default_config_dir

    return Locations(config_dir=config_dir or default_config_dir(), registry=registry, store=store, data_dir=data_dir)


def _setup_logging() -> None:
    from rich.logging import RichHandler

    from .ui import console

    handler = RichHandler(console=console, show_path=False, show_time=False)
    logging.basicConfig(level=logging.WARNING, handlers=[handler], format="%(message)s", force=True)


def _summary(result, what: str) -> None:  # type: ignore[no-untyped-def]
    from .ui import console

    parts = [f"{len(result.unit_keys)} units"]
    if what == "claims":
        parts = [f"claims audited ({len(result.unit_keys)} stored units used for measured baselines)"]
    if what in ("run", "generate"):
        parts.append(f"{result.generated} samples generated, {result.reused} reused")
    if what in ("run", "grade"):
        parts.append(f"{result.graded} graded")
    if what == "import":
        parts.append(f"{result.generated} samples imported, {result.reused} already stored")
    if what == "merge":
        parts = [f"{len(result.unit_keys)} new units"]
        parts.append(f"{result.generated} generations and {result.graded} grades copied")
    console.print("[green]done:[/green] " + "; ".join(parts), highlight=False)
    for note in result.notes:
        console.print(f"  {note}", highlight=False, markup=False, soft_wrap=True)
    if result.report is not None:
        console.print(f"report: {result.report}", highlight=False)


def _interrupted() -> NoReturn:
    from .ui import console

    console.print(
        "[yellow]interrupted:[/yellow] what was generated or graded is stored; run the same command again to resume."
    )
    raise typer.Exit(130)


def _generation_inputs(opts: dict[str, Any]) -> tuple[Any, Any, Any]:
    """Selection, protocol overrides and engine options from a command's options."""
    from .audit import EngineOptions
    from .backends import parse_model_args
    from .plan import ProtocolOverrides, Selection

    selection = Selection(
        checkpoints=_split(opts["checkpoints"]) or [],
        tasks=_split(opts["tasks"]),
        prompts=_split(opts["prompts"]),
        include_bases=not opts["no_bases"],
    )
    overrides = ProtocolOverrides(
        samples=opts["samples"],
        temperature=opts["temperature"],
        top_p=opts["top_p"],
        max_new_tokens=opts["max_new_tokens"],
        seed=opts["seed"],
    )
    try:
        model_args = parse_model_args(opts["model_args"])
    except AuditError as exc:
        _fail(exc)
    engine = EngineOptions(
        backend=opts["backend"],
        model_args=model_args,
        batch_size=opts["batch_size"],
        device=opts["device"],
        limit=opts["limit"],
        save_every=opts["save_every"],
        use_model_generation_config=opts["use_model_generation_config"],
        shard=opts["shard"],
        ray_address=opts["ray_address"],
        gpus_per_unit=opts["gpus_per_unit"],
    )
    return selection, overrides, engine


def _execute(what: str, call: Callable[[], Any]) -> None:
    """Run a library call: user errors exit with their code, Ctrl-C keeps what is stored."""
    _setup_logging()
    try:
        result = call()
    except AuditError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        _interrupted()
    except OSError as exc:
        if exc.errno not in _DISK_ERRORS:
            raise
        # outside the store (which names its own failures): a report folder on a full or read-only disk
        _fail(AuditError(f"{exc.filename or 'a file'}: {exc.strerror}; nothing else was changed"))
    _summary(result, what)


_DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)
"""Operating-system failures a user fixes (space, permissions): one line instead of a traceback."""


@app.command()
def run(
    checkpoints: CheckpointsOpt = None,
    tasks: TasksOpt = None,
    prompts: PromptsOpt = None,
    backend: BackendOpt = "hf",
    model_args: ModelArgsOpt = None,
    limit: LimitOpt = None,
    samples: SamplesOpt = None,
    seed: SeedOpt = 0,
    temperature: TemperatureOpt = None,
    top_p: TopPOpt = None,
    max_new_tokens: MaxTokensOpt = None,
    batch_size: BatchOpt = 8,
    device: DeviceOpt = None,
    save_every: SaveEveryOpt = 64,
    use_model_generation_config: ModelGenConfigOpt = False,
    shard: ShardOpt = None,
    ray_address: RayAddressOpt = None,
    gpus_per_unit: GpusPerUnitOpt = None,
    no_bases: NoBasesOpt = False,
    graders: GradersOpt = "math_verify",
    workers: WorkersOpt = None,
    timeout: TimeoutOpt = 10.0,
    grade_save_every: GradeSaveEveryOpt = 500,
    name: NameOpt = "audit",
    report_dir: ReportDirOpt = None,
    bootstrap_seed: ReportSeedOpt = 0,
    resamples: ResamplesOpt = 10_000,
    level: LevelOpt = 0.95,
    ci_method: CiMethodOpt = "wilson",
    no_browser: NoBrowserOpt = False,
    browser_page_size: BrowserPageSizeOpt = 500,
    store: StoreOpt = Path("rlvr-audit-store"),
    data_dir: DataDirOpt = None,
    config_dir: ConfigDirOpt = None,
    registry: RegistryOpt = None,
    quiet: QuietOpt = False,
    claims_only: Annotated[
        bool,
        typer.Option(
            "--claims-only",
            help="No model: audit the published claims in the ledger (baseline correction, statistical "
            "resolution); measured baselines are added when the store holds the claimed base models.",
        ),
    ] = False,
) -> None:
    """Plan, generate what is missing, grade, and write the report.

    Each checkpoint x task x prompt is a unit; generations are stored once (resumable: an
    interrupted run, started again, generates only what is missing) and each RLVR checkpoint's
    base model is added so its gain can be reported. With --claims-only, no model is run: the
    claims ledger is audited into reports/<name>/ (works offline on any CPU machine).

    Example: rlvr-audit run --backend hf --checkpoints ./my-model --tasks math500 --limit 5
    --data-dir ../shared/data/benchmarks

    Example: rlvr-audit run --claims-only --name claims
    """
    from . import audit

    if claims_only:
        opts = dict(locals())
        flags = {"checkpoints": "--checkpoints", "tasks": "--tasks", "prompts": "--prompts"}
        flags |= {"model_args": "--model-args", "limit": "--limit", "samples": "--samples"}
        flags |= {"temperature": "--temperature", "top_p": "--top-p", "max_new_tokens": "--max-new-tokens"}
        flags |= {"shard": "--shard", "ray_address": "--ray-address", "gpus_per_unit": "--gpus-per-unit"}
        given = [flag for key, flag in flags.items() if opts[key] is not None]

        def claims_call() -> audit.RunResult:
            if given:
                raise UsageError(f"--claims-only runs no model; drop {', '.join(given)}")
            return audit.claims_report(
                _report_options(opts),
                _locations(store, data_dir, config_dir, registry),
            )

        _execute("claims", claims_call)
        return
    selection, overrides, engine = _generation_inputs(locals())
    reporting = _report_options(locals())
    _execute(
        "run",
        lambda: audit.run(
            selection,
            overrides,
            engine,
            audit.GradeOptions(
                graders=_split(graders) or [], workers=workers, timeout=timeout, save_every=grade_save_every
            ),
            reporting,
            _locations(store, data_dir, config_dir, registry),
            progress=not quiet,
        ),
    )


@app.command()
def generate(
    checkpoints: CheckpointsOpt = None,
    tasks: TasksOpt = None,
    prompts: PromptsOpt = None,
    backend: BackendOpt = "hf",
    model_args: ModelArgsOpt = None,
    limit: LimitOpt = None,
    samples: SamplesOpt = None,
    seed: SeedOpt = 0,
    temperature: TemperatureOpt = None,
    top_p: TopPOpt = None,
    max_new_tokens: MaxTokensOpt = None,
    batch_size: BatchOpt = 8,
    device: DeviceOpt = None,
    save_every: SaveEveryOpt = 64,
    use_model_generation_config: ModelGenConfigOpt = False,
    shard: ShardOpt = None,
    ray_address: RayAddressOpt = None,
    gpus_per_unit: GpusPerUnitOpt = None,
    no_bases: NoBasesOpt = False,
    store: StoreOpt = Path("rlvr-audit-store"),
    data_dir: DataDirOpt = None,
    config_dir: ConfigDirOpt = None,
    registry: RegistryOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Generate and store completions only (no grading, no report).

    Example: rlvr-audit generate --backend vllm --model-args tensor_parallel_size=2
    --checkpoints 'qwen2.5-math-7b/*' --tasks math500,aime24
    """
    from . import audit

    selection, overrides, engine = _generation_inputs(locals())
    _execute(
        "generate",
        lambda: audit.generate(
            selection, overrides, engine, _locations(store, data_dir, config_dir, registry), progress=not quiet
        ),
    )


@app.command()
def grade(
    graders: GradersOpt = "math_verify",
    checkpoints: CheckpointsOpt = None,
    tasks: TasksOpt = None,
    prompts: PromptsOpt = None,
    workers: WorkersOpt = None,
    timeout: TimeoutOpt = 10.0,
    grade_save_every: GradeSaveEveryOpt = 500,
    retry: Annotated[
        str | None,
        typer.Option(
            "--retry",
            help="Re-grade only the samples whose latest grade is one of these verdicts (timeout, error); "
            "the new grade supersedes the old.",
        ),
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Bypass the store's verdict cache (cache/verdicts.sqlite).")
    ] = False,
    judge_endpoint: Annotated[
        str | None,
        typer.Option(
            "--judge-endpoint",
            help="OpenAI-compatible API base URL (e.g. http://localhost:8000/v1) of an LLM judge asked about "
            "the samples the graders disagree on; nothing is sent without it.",
        ),
    ] = None,
    judge_model: Annotated[
        str | None, typer.Option("--judge-model", help="The judge's model name on that server (with --judge-endpoint).")
    ] = None,
    judge_timeout: Annotated[
        float, typer.Option("--judge-timeout", help="Seconds to wait for one judge reply.")
    ] = 60.0,
    judge_retries: Annotated[
        int,
        typer.Option(
            "--judge-retries", help="Retries of a judge request after a timeout, connection or 5xx/429 error."
        ),
    ] = 2,
    judge_concurrency: Annotated[
        int, typer.Option("--judge-concurrency", help="Judge requests in flight at once.")
    ] = 4,
    store: StoreOpt = Path("rlvr-audit-store"),
    config_dir: ConfigDirOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Grade stored generations (every unit, or those selected) without touching a model.

    Prints the timeout and error verdicts of every graded unit and grader. Judged answers are
    kept in the store's verdict cache, so the next checkpoint of a run is graded fast.

    With --judge-endpoint and --judge-model, the samples on which math_verify, paper, boxed_strict
    and minerva disagree are then sent to that LLM judge and recorded as the `judge` grader (the
    graders' own verdict where they agree); judgements are cached in the store.

    Example: rlvr-audit grade --graders math_verify --checkpoints 'qwen2.5-math-7b/*'
    """
    from . import audit

    def judge_settings() -> Any:
        if judge_endpoint is None and judge_model is None:
            return None
        if judge_endpoint is None or judge_model is None:
            raise UsageError("--judge-endpoint and --judge-model go together; give both or neither")
        from .graders.judge import JudgeSettings

        return JudgeSettings(
            endpoint=judge_endpoint,
            model=judge_model,
            timeout=judge_timeout,
            retries=judge_retries,
            concurrency=judge_concurrency,
        )

    _execute(
        "grade",
        lambda: audit.grade(
            None,
            audit.GradeOptions(
                graders=_split(graders) or [],
                workers=workers,
                timeout=timeout,
                save_every=grade_save_every,
                retry=_split(retry) or [],
                cache=not no_cache,
                judge=judge_settings(),
            ),
            _locations(store, None, config_dir, None),
            progress=not quiet,
            selectors={"checkpoints": _split(checkpoints), "tasks": _split(tasks), "prompts": _split(prompts)},
        ),
    )


@app.command()
def report(
    checkpoints: CheckpointsOpt = None,
    tasks: TasksOpt = None,
    prompts: PromptsOpt = None,
    graders: Annotated[
        str | None, typer.Option("--graders", "-g", help="Graders to report (default: all graded).")
    ] = None,
    name: NameOpt = "audit",
    report_dir: ReportDirOpt = None,
    bootstrap_seed: ReportSeedOpt = 0,
    resamples: ResamplesOpt = 10_000,
    level: LevelOpt = 0.95,
    ci_method: CiMethodOpt = "wilson",
    no_browser: NoBrowserOpt = False,
    browser_page_size: BrowserPageSizeOpt = 500,
    store: StoreOpt = Path("rlvr-audit-store"),
    config_dir: ConfigDirOpt = None,
    registry: RegistryOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Write reports/<name>/ from the stored grades: index.md, index.html, tables, figures, sample pages.

    Example: rlvr-audit report --name qwen-math --checkpoints 'qwen2.5-math-7b/*'
    """
    from . import audit

    reporting = _report_options(locals())
    _execute(
        "report",
        lambda: audit.report(
            None,
            reporting,
            _locations(store, None, config_dir, registry),
            graders=_split(graders),
            selectors={"checkpoints": _split(checkpoints), "tasks": _split(tasks), "prompts": _split(prompts)},
            progress=not quiet,
        ),
    )


@app.command("import")
def import_(
    fmt: Annotated[
        str,
        typer.Argument(
            metavar="FORMAT",
            help="spurious-rewards-json, qwen-math-jsonl or lm-eval-samples (see `rlvr-audit ls formats`).",
        ),
    ],
    paths: Annotated[list[Path], typer.Argument(metavar="PATH...", help="Files to import (one or more).")],
    checkpoint: Annotated[
        str,
        typer.Option(
            "--checkpoint", help="Checkpoint id the generations belong to: a registry id or a new name (required)."
        ),
    ],
    base: Annotated[
        str | None,
        typer.Option("--base", help="Checkpoint it is compared against (default: the registry's base)."),
    ] = None,
    task: Annotated[
        str | None,
        typer.Option("--task", "-t", help="Task of every file, when a file names no known benchmark."),
    ] = None,
    allow_unmatched: Annotated[
        bool,
        typer.Option("--allow-unmatched", help="Import the matched problems even if some match no task problem."),
    ] = False,
    temperature: Annotated[
        float | None, typer.Option("--temperature", help="Sampling temperature, for files that record none.")
    ] = None,
    max_new_tokens: Annotated[
        int | None,
        typer.Option(
            "--max-new-tokens",
            help="New-token limit the generations were made with, for files that record none (required where "
            "the tool has no fixed limit: qwen-math-jsonl).",
        ),
    ] = None,
    family: Annotated[
        str | None,
        typer.Option("--family", help="Family of a new checkpoint id (default: the registry family it starts with)."),
    ] = None,
    step: Annotated[int | None, typer.Option("--step", help="Training step of a new checkpoint id.")] = None,
    reward: Annotated[str | None, typer.Option("--reward", help="RLVR reward of a new checkpoint id.")] = None,
    store: StoreOpt = Path("rlvr-audit-store"),
    data_dir: DataDirOpt = None,
    config_dir: ConfigDirOpt = None,
    registry: RegistryOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Import published generations (another tool's output files) as stored units.

    Problems are matched to the task files by their text, not by position; items that match
    none are listed and refused unless --allow-unmatched. Nothing is stored if any file is in
    the wrong format. Importing the same file again stores nothing new. Then grade and report
    as usual; the report shows the source's own numbers beside ours.

    Shards of one source imported in separate commands are added to the same unit; another
    source for the same checkpoint and setting becomes a unit of its own, labelled by its files.

    Example: rlvr-audit import spurious-rewards-json out/Qwen2.5-Math-7B_MATH-500.json
    --checkpoint qwen2.5-math-7b/base --data-dir ../shared/data/benchmarks

    Example: rlvr-audit import qwen-math-jsonl sky-t1/Sky-T1-math-wrong-5K-14B.aime24.jsonl
    --checkpoint sky-t1/wrong-14b --family sky-t1 --step 5000 --reward wrong-answers --temperature 0
    --max-new-tokens 32768 --data-dir ../shared/data/benchmarks
    """
    from . import audit

    _execute(
        "import",
        lambda: audit.import_generations(
            fmt,
            paths,
            audit.ImportOptions(
                checkpoint=checkpoint,
                base=base,
                task=task,
                allow_unmatched=allow_unmatched,
                temperature=temperature,
                max_new_tokens=max_new_tokens,
                family=family,
                step=step,
                reward=reward,
            ),
            _locations(store, data_dir, config_dir, registry),
            progress=not quiet,
        ),
    )


@app.command("ls")
def ls(
    what: Annotated[
        str, typer.Argument(help="tasks, prompts, checkpoints, units, graders, backends, formats or claims.")
    ],
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, tsv or json.")] = "table",
    store: StoreOpt = Path("rlvr-audit-store"),
    config_dir: ConfigDirOpt = None,
    registry: RegistryOpt = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="ls claims: only this kind (rlvr_gain, evaluation, ...).")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", help="ls claims: only this family (qwen2.5-math-7b).")] = None,
    benchmark: Annotated[
        str | None, typer.Option("--benchmark", help="ls claims: only this benchmark (math500).")
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="ls claims: only this source (SR-v1, critique).")
    ] = None,
) -> None:
    """List tasks, prompts, checkpoints, stored units, graders, backends, import formats or claims.

    Example: rlvr-audit ls checkpoints

    Example: rlvr-audit ls claims --model qwen2.5-math-7b --benchmark math500
    """
    from rich.console import Console
    from rich.table import Table

    from . import audit

    try:
        if fmt not in ("table", "tsv", "json"):
            raise UsageError(f"--format must be table, tsv or json, got {fmt!r}")
        rows = audit.listing(
            what,
            _locations(store, None, config_dir, registry),
            filters={"kind": kind, "model": model, "benchmark": benchmark, "source": source},
        )
    except AuditError as exc:
        _fail(exc)
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=2))
        return
    if fmt == "tsv":
        for i, row in enumerate(rows):
            if i == 0:
                typer.echo("\t".join(row))
            typer.echo("\t".join(v.replace("\t", " ") for v in row.values()))
        return
    out = Console()
    if not rows:
        out.print(f"(no {what})")
        return
    table = Table(show_lines=False)
    for col in rows[0]:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*row.values())
    out.print(table)


@app.command()
def validate(
    config_dir: ConfigDirOpt = None,
    registry: RegistryOpt = None,
) -> None:
    """Validate every task, prompt template and the checkpoint registry (unknown keys are errors).

    Example: rlvr-audit validate --config-dir .
    """
    from . import audit
    from .ui import console

    try:
        lines = audit.validate(_locations(Path("rlvr-audit-store"), None, config_dir, registry))
    except AuditError as exc:
        _fail(exc)
    for line in lines:
        console.print(line, highlight=False)
    console.print(f"[green]all {len(lines)} files valid[/green]")


app.add_typer(simulate_app, name="simulate")


# ---- probe contamination, task synth -----------------------------------------------------------

probe_app = typer.Typer(
    help="Probes beyond accuracy: does a checkpoint reproduce the benchmark it is evaluated on?",
    no_args_is_help=True,
)
task_app = typer.Typer(help="Benchmark tasks: generate a clean synthetic one.", no_args_is_help=True)


def _whole_numbers(value: str, option: str) -> tuple[int, ...]:
    """``"40,60,80"`` -> ``(40, 60, 80)``; anything else is a UsageError naming ``option``."""
    out = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(int(part))
        except ValueError:
            raise UsageError(
                f"{option} must be comma-separated whole numbers strictly between 0 and 100, got {part!r}"
            ) from None
    return tuple(out)


@probe_app.command("contamination")
def probe_contamination(
    checkpoints: CheckpointsOpt = None,
    tasks: Annotated[str, typer.Option("--tasks", "-t", help="Comma-separated task ids.")] = "math500",
    prompts: Annotated[
        str | None,
        typer.Option(
            "--prompts",
            "-p",
            help="Templates of the 'answer' probe; 'default' = each checkpoint's own (the 'completion' probe "
            "uses no template).",
        ),
    ] = None,
    percents: Annotated[
        str, typer.Option("--percents", help="Shares of each problem shown, in % (each strictly between 0 and 100).")
    ] = "40,60,80",
    kinds: Annotated[
        str,
        typer.Option(
            "--kinds", help="'completion' (raw prefix: does it write the rest?), 'answer' (prefix under the template)."
        ),
    ] = "completion,answer",
    completion_max_new_tokens: Annotated[
        int, typer.Option("--completion-max-new-tokens", help="New-token limit of the 'completion' probe.")
    ] = 512,
    max_new_tokens: Annotated[
        int | None,
        typer.Option("--max-new-tokens", help="New-token limit of the 'answer' probe (default: the task's)."),
    ] = None,
    backend: BackendOpt = "hf",
    model_args: ModelArgsOpt = None,
    limit: LimitOpt = None,
    seed: SeedOpt = 0,
    batch_size: BatchOpt = 8,
    device: DeviceOpt = None,
    save_every: SaveEveryOpt = 64,
    use_model_generation_config: ModelGenConfigOpt = False,
    shard: ShardOpt = None,
    ray_address: RayAddressOpt = None,
    gpus_per_unit: GpusPerUnitOpt = None,
    no_bases: NoBasesOpt = False,
    graders: GradersOpt = "math_verify",
    workers: WorkersOpt = None,
    timeout: TimeoutOpt = 10.0,
    bootstrap_seed: ReportSeedOpt = 0,
    resamples: ResamplesOpt = 10_000,
    level: LevelOpt = 0.95,
    ci_method: CiMethodOpt = "wilson",
    store: StoreOpt = Path("rlvr-audit-store"),
    data_dir: DataDirOpt = None,
    config_dir: ConfigDirOpt = None,
    registry: RegistryOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Partial-prompt contamination probe: show each problem's first 40/60/80% and measure whether
    the model writes the rest verbatim (exact match, ROUGE-L) and answers correctly anyway.

    Greedy; stored (resumable) in the store's probes/ folder; graded with --graders; prints the
    rates with bootstrap intervals. `rlvr-audit report` adds a section with the rates, paired
    comparisons (vs base, across families) and a figure when the store holds probe units.

    Example: rlvr-audit probe contamination --backend vllm --checkpoints
    'qwen2.5-math-7b/base,llama-3.1-8b-instruct/base' --tasks math500,synth_arith --data-dir ../shared/data/benchmarks
    """
    from rich.table import Table

    from . import audit, probe
    from .backends import parse_model_args
    from .plan import Selection
    from .ui import console

    _setup_logging()
    try:
        options = probe.ProbeOptions(
            percents=_whole_numbers(percents, "--percents"),
            kinds=tuple(_split(kinds) or ()),
            completion_max_new_tokens=completion_max_new_tokens,
            answer_max_new_tokens=max_new_tokens,
            seed=seed,
        )
        probe.check_options(options)
        if not _split(tasks):
            raise UsageError("--tasks is empty; name at least one task (see `rlvr-audit ls tasks`)")
        result = probe.run_contamination_probe(
            Selection(
                checkpoints=_split(checkpoints) or [],
                tasks=_split(tasks),
                prompts=_split(prompts),
                include_bases=not no_bases,
            ),
            options,
            audit.EngineOptions(
                backend=backend,
                model_args=parse_model_args(model_args),
                batch_size=batch_size,
                device=device,
                limit=limit,
                save_every=save_every,
            ),
            audit.GradeOptions(graders=_split(graders) or [], workers=workers, timeout=timeout),
            audit.ReportOptions(seed=bootstrap_seed, n_resamples=resamples, level=level, ci_method=ci_method),
            _locations(store, data_dir, config_dir, registry),
            progress=not quiet,
        )
    except AuditError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        _interrupted()
    header, rows = probe.rates_rows(result.analysis)
    table = Table(title=f"Contamination probe: rates in % [{int(level * 100)}% CI]")
    for col in header:
        table.add_column(col.replace("`", ""), overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(
        f"[green]done:[/green] {len(result.unit_keys)} probe units; {result.generated} samples generated, "
        f"{result.reused} reused; {result.graded} graded",
        highlight=False,
    )


@task_app.command("synth")
def task_synth(
    out: Annotated[Path, typer.Option("--out", "-o", help="JSON-lines file to write the problems to.")],
    task: Annotated[
        str, typer.Option("--task", help="Synthetic task whose generator settings to start from.")
    ] = "synth_arith",
    seed: Annotated[int | None, typer.Option("--seed", help="Generator seed (>= 0).")] = None,
    n: Annotated[int | None, typer.Option("--n", help="Number of problems (1..100000).")] = None,
    min_steps: Annotated[int | None, typer.Option("--min-steps", help="Fewest operations per problem (1..20).")] = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps", help="Most operations per problem (1..20).")] = None,
    operand_min: Annotated[int | None, typer.Option("--operand-min", help="Smallest integer operand.")] = None,
    operand_max: Annotated[int | None, typer.Option("--operand-max", help="Largest integer operand.")] = None,
    max_denominator: Annotated[
        int | None, typer.Option("--max-denominator", help="Largest denominator of fraction operands (2..1000).")
    ] = None,
    fraction_share: Annotated[
        float | None, typer.Option("--fraction-share", help="Share of operands that are fractions (0..1).")
    ] = None,
    decimal_share: Annotated[
        float | None, typer.Option("--decimal-share", help="Share of operands that are decimals (0..1).")
    ] = None,
    decimal_places: Annotated[
        int | None, typer.Option("--decimal-places", help="Decimal places of decimal operands (1..4).")
    ] = None,
    write_task: Annotated[
        str | None,
        typer.Option("--write-task", help="Also write tasks/NAME.yaml with these settings (a new benchmark)."),
    ] = None,
    config_dir: ConfigDirOpt = None,
) -> None:
    """Write a clean synthetic arithmetic benchmark: fresh expressions with exact rational answers,
    the same file (same SHA-256) for the same settings on every machine.

    The task synth_arith generates its problems itself (no file needed to run it); this command
    writes them out (for lm-eval or inspection) and, with --write-task, registers a variant.

    Example: rlvr-audit task synth --out synth_arith.jsonl

    Example: rlvr-audit task synth --seed 7 --max-steps 5 --out easy.jsonl --write-task synth_easy
    """
    from .configfile import default_config_dir
    from .synthetic import synthesize
    from .ui import console

    overrides: dict[str, object] = {
        "seed": seed,
        "n": n,
        "min_steps": min_steps,
        "max_steps": max_steps,
        "operand_min": operand_min,
        "operand_max": operand_max,
        "max_denominator": max_denominator,
        "fraction_share": fraction_share,
        "decimal_share": decimal_share,
        "decimal_places": decimal_places,
    }
    try:
        result = synthesize(
            out=out,
            config_dir=config_dir or default_config_dir(),
            base_task=task,
            overrides=overrides,
            write_task=write_task,
        )
    except AuditError as exc:
        _fail(exc)
    console.print(
        f"[green]wrote[/green] {result.n} problems to {result.path} (generator v{result.config.version}, "
        f"settings {result.config.config_hash})",
        highlight=False,
    )
    typer.echo(f"sha256 {result.sha256}  {result.path}")
    if result.task_file is not None:
        console.print(f"task file: {result.task_file}", highlight=False)


store_app = typer.Typer(
    help="Work on stores: merge the stores of shards or machines into one.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@store_app.command("merge")
def store_merge(
    sources: Annotated[list[Path], typer.Argument(help="Stores to merge (e.g. the stores of --shard 1/3 .. 3/3).")],
    store: StoreOpt = Path("rlvr-audit-store"),
) -> None:
    """Merge stores into --store: the store one run of the whole grid would have written.

    Units, problems, generations, grades and run manifests are copied; what --store holds already
    is kept. Stores that disagree on a unit's spec or sampling parameters are refused before
    anything is written.

    Example: rlvr-audit store merge shard-1 shard-2 shard-3 --store merged && rlvr-audit report --store merged
    """

    def call() -> Any:
        from .audit import RunResult
        from .merge import merge_stores

        done = merge_stores(list(sources), store)
        return RunResult(unit_keys=done.new_units, generated=done.generations, graded=done.grades, notes=done.notes)

    _execute("merge", call)


app.add_typer(probe_app, name="probe")
app.add_typer(store_app, name="store")
app.add_typer(task_app, name="task")
app.add_typer(train_app, name="train")  # rlvr_audit/train/cli.py: the verl training runner


def main() -> None:
    """Console-script entry point."""
    app(prog_name="rlvr-audit")


if __name__ == "__main__":  # pragma: no cover
    main()
