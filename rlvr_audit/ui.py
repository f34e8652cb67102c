"""Console output: rich progress bars and the shared console (stderr)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["Progress", "TaskID", "console", "make_progress"]

console = Console(stderr=True)
"""Where progress, warnings and summaries go (stdout stays for data such as ``ls`` output)."""


def make_progress(enabled: bool = True) -> Progress:
    """A progress display with a bar, counts, elapsed and remaining time."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        transient=False,
    )
