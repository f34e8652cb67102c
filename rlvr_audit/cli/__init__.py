"""The ``rlvr-audit`` command line: parses arguments and calls one library function per command.

The library API (:mod:`rlvr_audit.api`, which imports every stage) is imported once, by
:func:`~rlvr_audit.cli.common.library`, when a command runs, so ``rlvr-audit --help`` and argument
errors are instant. Commands: :mod:`.evaluate` (run, generate, grade, report, import, ls,
validate), :mod:`.probe` (probe contamination, task synth), :mod:`.store` (store merge),
:mod:`.simulate`, and the training runner's own (:mod:`rlvr_audit.train.cli`).
"""

from __future__ import annotations

from ..train.cli import train_app
from .evaluate import app
from .probe import probe_app, task_app
from .simulate import simulate_app
from .store import store_app

__all__ = ["app", "main"]

app.add_typer(simulate_app, name="simulate")
app.add_typer(probe_app, name="probe")
app.add_typer(store_app, name="store")
app.add_typer(task_app, name="task")
app.add_typer(train_app, name="train")  # rlvr_audit/train/cli.py: the verl training runner


def main() -> None:
    """Console-script entry point."""
    app(prog_name="rlvr-audit")
