"""``rlvr-audit train ...``: the training runner's commands (one library call each).

Registered on the main app by ``app.add_typer(train_app, name="train")`` in
:mod:`rlvr_audit.cli`. verl is imported only by the commands that need it, and the command modules
(pandas, pydantic, the graders: seconds) only by their command, so ``--help`` stays instant.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.markup import escape
from rich.table import Table

from ..core.errors import AuditError, UsageError
from ..core.option_help import OPTION_HELP
from ..core.ui import console, fail

train_app = typer.Typer(
    name="train",
    help=(
        "Spurious-reward GRPO experiments with verl: plan a run directory from a spec, validate it on CPU, "
        "launch it (locally or on a Ray cluster), register its checkpoints, merge FSDP shards.\n\n"
        "Example: rlvr-audit train plan experiments/qwen2.5-math-7b-random.yaml --run-dir runs/random"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

RunArg = Annotated[Path, typer.Argument(metavar="RUN", help="Run directory written by `rlvr-audit train plan`.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help=OPTION_HELP["--quiet"])]


def _fail(exc: AuditError) -> NoReturn:
    fail(exc)


def _call(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except AuditError as exc:
        _fail(exc)


@train_app.command("plan")
def plan_cmd(
    spec: Annotated[Path, typer.Argument(metavar="SPEC", help="Experiment spec YAML (see experiments/).")],
    run_dir: Annotated[Path, typer.Option("--run-dir", help="Run directory to write (new, or holding this spec).")],
    config_dir: Annotated[
        Path | None,
        typer.Option(
            "--config-dir",
            help=OPTION_HELP["--config-dir"],
            envvar="RLVR_AUDIT_CONFIG_DIR",
        ),
    ] = None,
    registry: Annotated[
        Path | None,
        typer.Option("--registry", help=OPTION_HELP["--registry"]),
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Validate a spec and write its run directory: verl-format parquet, the Hydra overrides of
    verl's ppo_trainer, a launch script, the resolved spec and its hash.

    Example: rlvr-audit train plan experiments/qwen2.5-math-7b-random.yaml --run-dir runs/random
    """
    from .plan import plan  # lazy: seconds (pandas, graders); --help stays instant

    result = _call(lambda: plan(spec, run_dir, config_dir=config_dir, registry=registry, progress=not quiet))
    verb = "re-planned (same spec)" if result.reused else "planned"
    console.print(f"[green]{verb}:[/green] {result.run_dir} (spec {result.spec_hash})", highlight=False)
    console.print(
        f"  {result.train_rows} training rows, {result.val_rows or 'no'} validation rows; " + "; ".join(result.notes),
        highlight=False,
        markup=False,
    )
    next_cmd = f"rlvr-audit train validate {shlex.quote(str(result.run_dir))} --tokenizer DIR"
    console.print(f"  next: {next_cmd}", highlight=False)


@train_app.command("validate")
def validate_cmd(
    run: RunArg,
    tokenizer: Annotated[
        str | None,
        typer.Option(
            "--tokenizer",
            help="Tokenizer to load the data with (default: the model's; a small local one works offline).",
        ),
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Check a planned run on CPU: compose it against the installed verl's ppo_trainer config and run
    verl's validate_config, check batches, clipping, context and data, load the parquet with verl's
    dataset class, and call the reward on canned responses.

    Example: rlvr-audit train validate runs/random --tokenizer ./tiny-tokenizer
    """
    from .validate import validate_run  # lazy: seconds (pandas, graders); --help stays instant

    result = _call(lambda: validate_run(run, tokenizer=tokenizer, progress=not quiet))
    table = Table(title=f"train validate {result.run_dir} (verl {result.verl_version})", show_lines=False)
    table.add_column("check")
    table.add_column("result", overflow="fold")
    for check in result.checks:
        table.add_row(f"[green]ok[/green] {check.name}", check.detail)
    console.print(table)
    closure = result.launch
    if closure is not None and not closure.ok:
        console.print(
            f"[yellow]cannot launch here:[/yellow] {escape(closure.reason())}; fine for validation "
            f"({len(result.checks)} checks passed; launch from the GPU training environment)",
            highlight=False,
        )
        return
    launchable = "; launchable here (verl's trainer and rollout engine import)" if closure is not None else ""
    console.print(f"[green]valid:[/green] {len(result.checks)} checks passed{launchable}", highlight=False)


@train_app.command("launch")
def launch_cmd(
    run: RunArg,
    ray_address: Annotated[
        str | None,
        typer.Option("--ray-address", help=OPTION_HELP["--ray-address"]),
    ] = None,
    ray_python: Annotated[
        str | None,
        typer.Option(
            "--ray-python",
            help="Interpreter of the training environment on the cluster (default: this one, same path on every node).",
        ),
    ] = None,
    ray_env: Annotated[
        list[str] | None,
        typer.Option("--ray-env", metavar="KEY=VALUE", help="Environment variable for the Ray job (repeatable)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the exact command and do nothing.")] = False,
    detach: Annotated[bool, typer.Option("--detach", help="Local runs: start in the background and return.")] = False,
    stop_grace: Annotated[
        float,
        typer.Option("--stop-grace", min=0, help="Seconds verl gets to exit after SIGTERM/Ctrl-C before it is killed."),
    ] = 20.0,
    quiet: QuietOpt = False,
) -> None:
    """Run verl's trainer (python -m verl.trainer.main_ppo) on this machine with logs in RUN/logs/,
    or submit it to a Ray cluster with --ray-address (the job pins this environment's Python and
    runs from RUN; a probe job first checks that the cluster imports verl and the rollout engine).
    Refuses a run directory launched with a different spec, and an environment that cannot import
    verl's trainer. SIGTERM or Ctrl-C stops verl and its local Ray and says where the log and the
    last checkpoint are.

    Example: rlvr-audit train launch runs/random --dry-run
    """
    from .launch import Stopped, launch  # lazy: seconds (pandas, graders); --help stays instant

    env: dict[str, str] = {}
    for item in ray_env or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            _fail(UsageError(f"--ray-env takes KEY=VALUE, got {item!r}"))
        env[key] = value
    try:
        result = launch(
            run,
            ray_address=ray_address,
            ray_python=ray_python,
            ray_env=env,
            dry_run=dry_run,
            detach=detach,
            progress=not quiet,
            stop_grace=stop_grace,
        )
    except Stopped as exc:
        console.print(f"[yellow]stopped:[/yellow] {exc}", highlight=False, markup=True, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except AuditError as exc:
        _fail(exc)
    if result.dry_run:
        if result.entrypoint:
            typer.echo(f"ray job {result.submission_id} at {ray_address}")
            typer.echo(f"entrypoint: {result.entrypoint}")
            typer.echo(f"runtime_env: {json.dumps(result.runtime_env)}")
        else:
            typer.echo(shlex.join(result.command))
        return
    if result.output:
        console.print(result.output, highlight=False, markup=False)
    if result.returncode is None:
        console.print(f"[green]started:[/green] pid {result.pid}, log {result.log}", highlight=False)
    else:
        console.print(f"[green]done:[/green] {result.log or 'submitted'}", highlight=False)


@train_app.command("register")
def register_cmd(
    run: RunArg,
    registry: Annotated[
        Path | None,
        typer.Option("--registry", help=OPTION_HELP["--registry"]),
    ] = None,
    into: Annotated[
        Path | None,
        typer.Option(
            "--into",
            help="Also write the run's family into this registry (e.g. checkpoints.yaml), keeping its other lines.",
        ),
    ] = None,
) -> None:
    """Register every saved step of a run in RUN/checkpoints.yaml (idempotent; verl's checkpoint
    callback does it after every save), and with --into in another registry too. Evaluate with
    rlvr-audit run --registry RUN/checkpoints.yaml --checkpoints '<name>/*'.

    Example: rlvr-audit train register runs/random
    """
    from .register import register_into, register_run  # lazy: seconds (pandas, graders); --help stays instant

    if into is not None:
        result = _call(lambda: register_into(run, into))
    else:
        result = _call(lambda: register_run(run, registry=registry))
    for entry in result.entries:
        mark = "new" if entry.checkpoint_id in result.added else "   "
        console.print(
            f"  {mark} {entry.checkpoint_id}  {entry.status:6}  {entry.model}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    console.print(
        f"[green]registered:[/green] {len(result.entries)} steps ({len(result.added)} new) in {result.registry}",
        highlight=False,
    )


@train_app.command("merge")
def merge_cmd(
    run: RunArg,
    step: Annotated[
        list[int] | None,
        typer.Option("--step", help=OPTION_HELP["--step"]),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Merge steps that already have HF weights too.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Convert saved FSDP shards to Hugging Face models with verl's model merger
    (RUN/merged/global_step_N), then re-register.

    Example: rlvr-audit train merge runs/random --step 150
    """
    from .register import merge_run  # lazy: seconds (pandas, graders); --help stays instant

    merged = _call(lambda: merge_run(run, steps=step, force=force, progress=not quiet))
    console.print(f"[green]merged:[/green] {len(merged)} step(s) {', '.join(map(str, merged))}", highlight=False)
