"""``rlvr-audit store merge``: join the stores of shards or machines into one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .common import StoreOpt, execute, library

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
        return library().merge_stores(list(sources), store)

    execute("merge", call)
