"""Console output: rich progress bars and the shared console (stderr)."""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

__all__ = ["Progress", "TaskID", "console", "fail", "make_progress"]

if TYPE_CHECKING:
    from .errors import AuditError

console = Console(stderr=True)
"""Where progress, warnings and summaries go (stdout stays for data such as ``ls`` output)."""


class RateColumn(ProgressColumn):
    """Items per second, named by the task's ``unit`` field (``add_task(..., unit="samples")``)."""

    def render(self, task: Task) -> Text:
        """``12.3 samples/s`` (blank until rich has a speed estimate)."""
        unit = task.fields.get("unit")
        if unit is None or task.speed is None:
            return Text("")
        return Text(f"{task.speed:.2f} {unit}/s", style="progress.data.speed")


def make_progress(enabled: bool = True) -> Progress:
    """A progress display with a bar, counts, rate, elapsed and remaining time."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        transient=False,
    )


def fail(exc: AuditError) -> NoReturn:
    """Print an error (its text escaped, so brackets in names and values stay visible) and exit with its code."""
    console.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(exc.exit_code)
