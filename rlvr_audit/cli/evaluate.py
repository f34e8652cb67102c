"""The evaluation commands: ``run``, ``generate``, ``grade``, ``report``, ``import``, ``ls``, ``validate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ..core.errors import AuditError, UsageError
from ..core.option_help import OPTION_HELP
from .common import (
    BackendOpt,
    BatchOpt,
    BrowserOpt,
    BrowserPageSizeOpt,
    CheckpointsOpt,
    CiMethodOpt,
    ConfigDirOpt,
    DataDirOpt,
    DeviceOpt,
    GpusPerUnitOpt,
    GradersOpt,
    GradeSaveEveryOpt,
    Group,
    LevelOpt,
    LimitOpt,
    MaxTokensOpt,
    ModelArgsOpt,
    ModelGenConfigOpt,
    NameOpt,
    NoBasesOpt,
    NoBrowserOpt,
    PromptsOpt,
    QuietOpt,
    RayAddressOpt,
    RegistryOpt,
    ReportDirOpt,
    ReportSeedOpt,
    ResamplesOpt,
    SamplesOpt,
    SaveEveryOpt,
    SeedOpt,
    ShardOpt,
    StoreOpt,
    TasksOpt,
    TemperatureOpt,
    TimeoutOpt,
    TopPOpt,
    WorkersOpt,
    console,
    execute,
    fail,
    generation_inputs,
    library,
    locations,
    print_version,
    report_options,
    split,
)
from .listing_table import print_table

app = typer.Typer(
    name="rlvr-audit",
    cls=Group,
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


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Audit claims about RL with verifiable rewards on math benchmarks."""


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
    browser_units: BrowserOpt = "all",
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
    audit = library()

    if claims_only:
        opts = dict(locals())
        flags = {"checkpoints": "--checkpoints", "tasks": "--tasks", "prompts": "--prompts"}
        flags |= {"model_args": "--model-args", "limit": "--limit", "samples": "--samples"}
        flags |= {"temperature": "--temperature", "top_p": "--top-p", "max_new_tokens": "--max-new-tokens"}
        flags |= {"shard": "--shard", "ray_address": "--ray-address", "gpus_per_unit": "--gpus-per-unit"}
        given = [flag for key, flag in flags.items() if opts[key] is not None]

        def claims_call() -> Any:
            if given:
                raise UsageError(f"--claims-only runs no model; drop {', '.join(given)}")
            return audit.claims_report(
                report_options(opts),
                locations(store, data_dir, config_dir, registry),
            )

        execute("claims", claims_call)
        return
    selection, overrides, engine = generation_inputs(locals())
    reporting = report_options(locals())
    execute(
        "run",
        lambda: audit.run(
            selection,
            overrides,
            engine,
            audit.GradeOptions(
                graders=split(graders) or [], workers=workers, timeout=timeout, save_every=grade_save_every
            ),
            reporting,
            locations(store, data_dir, config_dir, registry),
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
    audit = library()

    selection, overrides, engine = generation_inputs(locals())
    execute(
        "generate",
        lambda: audit.generate(
            selection, overrides, engine, locations(store, data_dir, config_dir, registry), progress=not quiet
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
    audit = library()

    def judge_settings() -> Any:
        if judge_endpoint is None and judge_model is None:
            return None
        if judge_endpoint is None or judge_model is None:
            raise UsageError("--judge-endpoint and --judge-model go together; give both or neither")
        return audit.JudgeSettings(
            endpoint=judge_endpoint,
            model=judge_model,
            timeout=judge_timeout,
            retries=judge_retries,
            concurrency=judge_concurrency,
        )

    execute(
        "grade",
        lambda: audit.grade(
            None,
            audit.GradeOptions(
                graders=split(graders) or [],
                workers=workers,
                timeout=timeout,
                save_every=grade_save_every,
                retry=split(retry) or [],
                cache=not no_cache,
                judge=judge_settings(),
            ),
            locations(store, None, config_dir, None),
            progress=not quiet,
            selectors={"checkpoints": split(checkpoints), "tasks": split(tasks), "prompts": split(prompts)},
        ),
    )


@app.command()
def report(
    checkpoints: CheckpointsOpt = None,
    tasks: TasksOpt = None,
    prompts: PromptsOpt = None,
    graders: Annotated[str | None, typer.Option("--graders", "-g", help=OPTION_HELP["--graders"])] = None,
    name: NameOpt = "audit",
    report_dir: ReportDirOpt = None,
    bootstrap_seed: ReportSeedOpt = 0,
    resamples: ResamplesOpt = 10_000,
    level: LevelOpt = 0.95,
    ci_method: CiMethodOpt = "wilson",
    no_browser: NoBrowserOpt = False,
    browser_page_size: BrowserPageSizeOpt = 500,
    browser_units: BrowserOpt = "all",
    store: StoreOpt = Path("rlvr-audit-store"),
    config_dir: ConfigDirOpt = None,
    registry: RegistryOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Write reports/<name>/ from the stored grades: index.md, index.html, tables, figures, sample pages.

    Example: rlvr-audit report --name qwen-math --checkpoints 'qwen2.5-math-7b/*'
    """
    audit = library()

    reporting = report_options(locals())
    execute(
        "report",
        lambda: audit.report(
            None,
            reporting,
            locations(store, None, config_dir, registry),
            graders=split(graders),
            selectors={"checkpoints": split(checkpoints), "tasks": split(tasks), "prompts": split(prompts)},
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
        typer.Option("--task", "-t", help=OPTION_HELP["--task"]),
    ] = None,
    allow_unmatched: Annotated[
        bool,
        typer.Option("--allow-unmatched", help="Import the matched problems even if some match no task problem."),
    ] = False,
    temperature: Annotated[float | None, typer.Option("--temperature", help=OPTION_HELP["--temperature"])] = None,
    max_new_tokens: Annotated[
        int | None,
        typer.Option(
            "--max-new-tokens",
            help=OPTION_HELP["--max-new-tokens"],
        ),
    ] = None,
    family: Annotated[
        str | None,
        typer.Option("--family", help="Family of a new checkpoint id (default: the registry family it starts with)."),
    ] = None,
    step: Annotated[int | None, typer.Option("--step", help=OPTION_HELP["--step"])] = None,
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
    audit = library()

    execute(
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
            locations(store, data_dir, config_dir, registry),
            progress=not quiet,
        ),
    )


@app.command("ls")
def ls(
    what: Annotated[
        str, typer.Argument(help="tasks, prompts, checkpoints, units, graders, backends, formats or claims.")
    ],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="table (fitted to the terminal), tsv (tab-separated, a header line, every column in full: for "
            "cut, awk and spreadsheets) or json.",
        ),
    ] = "table",
    wide: Annotated[
        bool, typer.Option("--wide", "-w", help="table: every column in full, however wide (no cut cells).")
    ] = False,
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

    The table fits the terminal: long cells end in an ellipsis and the least needed columns are
    left out (and named); --wide shows every column in full, --format tsv or json suits scripts.

    Example: rlvr-audit ls checkpoints

    Example: rlvr-audit ls claims -f tsv | cut -f1,9,10

    Example: rlvr-audit ls claims --model qwen2.5-math-7b --benchmark math500
    """
    audit = library()

    try:
        if fmt not in ("table", "tsv", "json"):
            raise UsageError(f"--format must be table, tsv or json, got {fmt!r}")
        rows = audit.listing(
            what,
            locations(store, None, config_dir, registry),
            filters={"kind": kind, "model": model, "benchmark": benchmark, "source": source},
        )
    except AuditError as exc:
        fail(exc)
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
        if what == "units":  # say where it looked: from another folder, the default store is another one
            where = store.resolve()
            found = "no units in the store" if where.is_dir() else "no store"
            out.print(f"({found} {where}; --store or RLVR_AUDIT_STORE names another)", highlight=False, markup=False)
        else:
            out.print(f"(no {what})", highlight=False, markup=False)
        return
    print_table(rows, what=what, wide=wide, legend=audit.listing_notes(what, rows), out=out)


@app.command()
def validate(
    config_dir: ConfigDirOpt = None,
    registry: RegistryOpt = None,
) -> None:
    """Validate every task, prompt template and the checkpoint registry (unknown keys are errors).

    Example: rlvr-audit validate --config-dir .
    """
    audit = library()

    try:
        lines = audit.validate(locations(Path("rlvr-audit-store"), None, config_dir, registry))
    except AuditError as exc:
        fail(exc)
    for line in lines:
        console.print(line, highlight=False)
    console.print(f"[green]all {len(lines)} files valid[/green]")
