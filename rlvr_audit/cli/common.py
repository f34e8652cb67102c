"""What the command modules share: the library API accessor, option types and helpers."""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.logging import RichHandler
from typer.core import TyperGroup

from ..core.errors import AuditError
from ..core.option_help import OPTION_HELP
from ..core.ui import console, fail

if TYPE_CHECKING:
    from types import ModuleType


def library() -> ModuleType:
    """The library API module."""
    from .. import api  # lazy: every stage (pandas, numpy, pydantic: seconds); --help stays instant

    return api


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


class Group(TyperGroup):
    """The command groups of ``rlvr-audit``: flags shown as flags (:func:`_flags_as_flags`), in
    every sub-command and sub-group (``train``, ``simulate``, ...)."""

    def get_params(self, ctx: Any) -> list[Any]:
        _flags_as_flags(self)
        return list(super().get_params(ctx))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            return None
        if isinstance(command, TyperGroup) and not isinstance(command, Group):
            command.__class__ = Group
        return _flags_as_flags(command)


def print_version(value: bool) -> None:
    """``--version``: print the installed version and exit."""
    if value:
        from importlib import metadata  # lazy: 50 ms (email, zipfile, csv) for --version; --help stays instant

        try:
            version = metadata.version("rlvr-audit")
        except metadata.PackageNotFoundError:  # a source tree that was not installed
            version = "unknown (not installed)"
        typer.echo(f"rlvr-audit {version}")
        raise typer.Exit()


# ---- shared options --------------------------------------------------------------------------
StoreOpt = Annotated[Path, typer.Option("--store", help=OPTION_HELP["--store"], envvar="RLVR_AUDIT_STORE")]
DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help=OPTION_HELP["--data-dir"],
        envvar="RLVR_AUDIT_DATA_DIR",
    ),
]
ConfigDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--config-dir",
        help=OPTION_HELP["--config-dir"],
        envvar="RLVR_AUDIT_CONFIG_DIR",
    ),
]
RegistryOpt = Annotated[Path | None, typer.Option("--registry", help=OPTION_HELP["--registry"])]
CheckpointsOpt = Annotated[
    str | None,
    typer.Option(
        "--checkpoints",
        "-c",
        help=OPTION_HELP["--checkpoints"],
    ),
]
TasksOpt = Annotated[str | None, typer.Option("--tasks", "-t", help=OPTION_HELP["--tasks"])]
PromptsOpt = Annotated[
    str | None,
    typer.Option(
        "--prompts",
        "-p",
        help=OPTION_HELP["--prompts"],
    ),
]
BackendOpt = Annotated[str, typer.Option("--backend", "-b", help=OPTION_HELP["--backend"])]
ModelArgsOpt = Annotated[str | None, typer.Option("--model-args", help=OPTION_HELP["--model-args"])]
LimitOpt = Annotated[int | None, typer.Option("--limit", help=OPTION_HELP["--limit"])]
SamplesOpt = Annotated[int | None, typer.Option("--samples", "-k", help=OPTION_HELP["--samples"])]
SeedOpt = Annotated[int, typer.Option("--seed", help=OPTION_HELP["--seed"])]
TemperatureOpt = Annotated[float | None, typer.Option("--temperature", help=OPTION_HELP["--temperature"])]
TopPOpt = Annotated[float | None, typer.Option("--top-p", help=OPTION_HELP["--top-p"])]
MaxTokensOpt = Annotated[int | None, typer.Option("--max-new-tokens", help=OPTION_HELP["--max-new-tokens"])]
BatchOpt = Annotated[int, typer.Option("--batch-size", help=OPTION_HELP["--batch-size"])]
DeviceOpt = Annotated[str | None, typer.Option("--device", help=OPTION_HELP["--device"])]
SaveEveryOpt = Annotated[
    int,
    typer.Option(
        "--save-every",
        help=OPTION_HELP["--save-every"],
    ),
]
ModelGenConfigOpt = Annotated[
    bool,
    typer.Option(
        "--use-model-generation-config",
        help=OPTION_HELP["--use-model-generation-config"],
    ),
]
ShardOpt = Annotated[
    str | None,
    typer.Option(
        "--shard",
        help=OPTION_HELP["--shard"],
    ),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help=OPTION_HELP["--ray-address"],
    ),
]
GpusPerUnitOpt = Annotated[
    int | None,
    typer.Option(
        "--gpus-per-unit",
        help=OPTION_HELP["--gpus-per-unit"],
    ),
]
GradeSaveEveryOpt = Annotated[int, typer.Option("--grade-save-every", help=OPTION_HELP["--grade-save-every"])]
NoBasesOpt = Annotated[bool, typer.Option("--no-bases", help=OPTION_HELP["--no-bases"])]
GradersOpt = Annotated[str, typer.Option("--graders", "-g", help=OPTION_HELP["--graders"])]
WorkersOpt = Annotated[int | None, typer.Option("--workers", help=OPTION_HELP["--workers"])]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help=OPTION_HELP["--timeout"])]
NameOpt = Annotated[str, typer.Option("--name", help=OPTION_HELP["--name"])]
ReportDirOpt = Annotated[Path | None, typer.Option("--report-dir", help=OPTION_HELP["--report-dir"])]
ReportSeedOpt = Annotated[int, typer.Option("--bootstrap-seed", help=OPTION_HELP["--bootstrap-seed"])]
ResamplesOpt = Annotated[int, typer.Option("--resamples", help=OPTION_HELP["--resamples"])]
LevelOpt = Annotated[float, typer.Option("--level", help=OPTION_HELP["--level"])]
CiMethodOpt = Annotated[
    str,
    typer.Option(
        "--ci-method",
        help=OPTION_HELP["--ci-method"],
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help=OPTION_HELP["--quiet"])]
NoBrowserOpt = Annotated[bool, typer.Option("--no-browser", help=OPTION_HELP["--no-browser"])]
BrowserPageSizeOpt = Annotated[int, typer.Option("--browser-page-size", help=OPTION_HELP["--browser-page-size"])]
BrowserOpt = Annotated[str, typer.Option("--browser", metavar="all|units=GLOB,...", help=OPTION_HELP["--browser"])]


def report_options(opts: dict[str, Any]) -> Any:
    """``api.ReportOptions`` from a command's report options (its ``locals()``)."""
    audit = library()

    return audit.ReportOptions(
        name=opts["name"],
        report_dir=opts["report_dir"],
        seed=opts["bootstrap_seed"],
        n_resamples=opts["resamples"],
        level=opts["level"],
        ci_method=opts["ci_method"],
        browser=not opts.get("no_browser", False),
        browser_page_size=opts.get("browser_page_size", 500),
        browser_units=opts.get("browser_units", "all"),
    )


def split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    return items or None


def locations(store: Path, data_dir: Path | None, config_dir: Path | None, registry: Path | None):  # type: ignore[no-untyped-def]
    api = library()
    return api.Locations(
        config_dir=config_dir or api.default_config_dir(), registry=registry, store=store, data_dir=data_dir
    )


def setup_logging() -> None:

    handler = RichHandler(console=console, show_path=False, show_time=False)
    logging.basicConfig(level=logging.WARNING, handlers=[handler], format="%(message)s", force=True)


def summary(result, what: str) -> None:  # type: ignore[no-untyped-def]

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


def interrupted() -> NoReturn:

    console.print(
        "[yellow]interrupted:[/yellow] what was generated or graded is stored; run the same command again to resume."
    )
    raise typer.Exit(130)


def generation_inputs(opts: dict[str, Any]) -> tuple[Any, Any, Any]:
    """Selection, protocol overrides and engine options from a command's options."""
    api = library()
    EngineOptions, ProtocolOverrides, Selection = api.EngineOptions, api.ProtocolOverrides, api.Selection
    parse_model_args = api.parse_model_args

    selection = Selection(
        checkpoints=split(opts["checkpoints"]) or [],
        tasks=split(opts["tasks"]),
        prompts=split(opts["prompts"]),
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
        fail(exc)
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


def execute(what: str, call: Callable[[], Any]) -> None:
    """Run a library call: user errors exit with their code, Ctrl-C keeps what is stored."""
    setup_logging()
    try:
        result = call()
    except AuditError as exc:
        fail(exc)
    except KeyboardInterrupt:
        interrupted()
    except OSError as exc:
        if exc.errno not in _DISK_ERRORS:
            raise
        # outside the store (which names its own failures): a report folder on a full or read-only disk
        fail(AuditError(f"{exc.filename or 'a file'}: {exc.strerror}; nothing else was changed"))
    summary(result, what)


_DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)
"""Operating-system failures a user fixes (space, permissions): one line instead of a traceback."""
