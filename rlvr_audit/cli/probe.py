"""``rlvr-audit probe contamination``, ``rlvr-audit task synth`` and ``rlvr-audit task export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..core.errors import AuditError, UsageError
from ..core.option_help import OPTION_HELP
from .common import (
    BackendOpt,
    BatchOpt,
    CheckpointsOpt,
    CiMethodOpt,
    ConfigDirOpt,
    DataDirOpt,
    DeviceOpt,
    GpusPerUnitOpt,
    GradersOpt,
    LevelOpt,
    LimitOpt,
    ModelArgsOpt,
    ModelGenConfigOpt,
    NoBasesOpt,
    QuietOpt,
    RayAddressOpt,
    RegistryOpt,
    ReportSeedOpt,
    ResamplesOpt,
    SaveEveryOpt,
    SeedOpt,
    ShardOpt,
    StoreOpt,
    TasksOpt,
    TimeoutOpt,
    WorkersOpt,
    console,
    fail,
    interrupted,
    library,
    locations,
    setup_logging,
    split,
)

probe_app = typer.Typer(
    help="Probes beyond accuracy: does a checkpoint reproduce the benchmark it is evaluated on?",
    no_args_is_help=True,
)
task_app = typer.Typer(
    help="Benchmark tasks: generate a clean synthetic one, or export tasks for lm-eval.", no_args_is_help=True
)


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
    tasks: Annotated[str, typer.Option("--tasks", "-t", help=OPTION_HELP["--tasks"])] = "math500",
    prompts: Annotated[
        str | None,
        typer.Option(
            "--prompts",
            "-p",
            help=OPTION_HELP["--prompts"],
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
        typer.Option("--max-new-tokens", help=OPTION_HELP["--max-new-tokens"]),
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
    audit = library()

    setup_logging()
    try:
        options = audit.ProbeOptions(
            percents=_whole_numbers(percents, "--percents"),
            kinds=tuple(split(kinds) or ()),
            completion_max_new_tokens=completion_max_new_tokens,
            answer_max_new_tokens=max_new_tokens,
            seed=seed,
        )
        audit.check_probe_options(options)
        if not split(tasks):
            raise UsageError("--tasks is empty; name at least one task (see `rlvr-audit ls tasks`)")
        result = audit.run_contamination_probe(
            audit.Selection(
                checkpoints=split(checkpoints) or [],
                tasks=split(tasks),
                prompts=split(prompts),
                include_bases=not no_bases,
            ),
            options,
            audit.EngineOptions(
                backend=backend,
                model_args=audit.parse_model_args(model_args),
                batch_size=batch_size,
                device=device,
                limit=limit,
                save_every=save_every,
                use_model_generation_config=use_model_generation_config,
                shard=shard,
                ray_address=ray_address,
                gpus_per_unit=gpus_per_unit,
            ),
            audit.GradeOptions(graders=split(graders) or [], workers=workers, timeout=timeout),
            audit.ReportOptions(seed=bootstrap_seed, n_resamples=resamples, level=level, ci_method=ci_method),
            locations(store, data_dir, config_dir, registry),
            progress=not quiet,
        )
    except AuditError as exc:
        fail(exc)
    except KeyboardInterrupt:
        interrupted()
    header, rows = audit.rates_rows(result.analysis)
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
    out: Annotated[Path, typer.Option("--out", "-o", help=OPTION_HELP["--out"])],
    task: Annotated[str, typer.Option("--task", help=OPTION_HELP["--task"])] = "synth_arith",
    seed: Annotated[int | None, typer.Option("--seed", help=OPTION_HELP["--seed"])] = None,
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
    audit = library()

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
        result = audit.synthesize(
            out=out,
            config_dir=config_dir or audit.default_config_dir(),
            base_task=task,
            overrides=overrides,
            write_task=write_task,
        )
    except AuditError as exc:
        fail(exc)
    console.print(
        f"[green]wrote[/green] {result.n} problems to {result.path} (generator v{result.config.version}, "
        f"settings {result.config.config_hash})",
        highlight=False,
    )
    typer.echo(f"sha256 {result.sha256}  {result.path}")
    if result.task_file is not None:
        console.print(f"task file: {result.task_file}", highlight=False)


@task_app.command("export")
def task_export(
    data_dir: Annotated[
        Path,
        typer.Option(
            "--data-dir",
            help=OPTION_HELP["--data-dir"],
            envvar="RLVR_AUDIT_DATA_DIR",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help=OPTION_HELP["--out"])],
    tasks: TasksOpt = None,
    prompt: Annotated[
        str, typer.Option("--prompt", help="Prompt template to prompt with, rendered as rlvr-audit renders it.")
    ] = "no_template",
    config_dir: ConfigDirOpt = None,
) -> None:
    """Write lm-eval task files that read local data and prompt with one of our templates, so
    `lm_eval --include_path OUT --tasks TASK` runs offline with the prompt rlvr-audit sends.

    Its --log_samples output imports with `rlvr-audit import lm-eval-samples`. A chat template
    needs `lm_eval --apply_chat_template` (the command to run is printed).

    Example: rlvr-audit task export --data-dir ../shared/data/benchmarks --out lm_eval_tasks --tasks math500

    Example: rlvr-audit task export --data-dir data --out lm_eval_tasks --prompt qwen_math_default
    """
    audit = library()
    try:
        result = audit.export_tasks(
            tasks=split(tasks),
            data_dir=data_dir,
            out=out,
            config_dir=config_dir or audit.default_config_dir(),
            prompt=prompt,
        )
    except AuditError as exc:
        fail(exc)
    for t in result.tasks:
        console.print(f"[green]wrote[/green] {t.path} ({t.n_problems} problems from {t.data_file})", highlight=False)
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {note}", highlight=False)
    typer.echo(
        f"run: lm_eval --model hf --model_args pretrained=MODEL {result.lm_eval_args} --log_samples --output_path OUT"
    )
