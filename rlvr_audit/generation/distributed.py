"""Generation on a Ray cluster: many GPUs, many nodes, one writer.

``rlvr-audit run ... --ray-address auto|HOST:PORT [--gpus-per-unit N]`` plans the grid once in the
driver (the process that runs the command), then sends each checkpoint's missing work (split into
pieces of units when there are fewer checkpoints than worker slots) to a Ray task that asks for
the GPUs one engine needs. The task loads the model once and *streams* its results back (a Ray
generator task); the driver alone writes the store, so the store needs no shared filesystem and
no two processes write one file. Ray schedules the tasks over the cluster; nothing here decides
placement.

Failures: a worker that dies (a node lost, a process killed) has its task retried by Ray
(``max_retries``); the replayed task yields the same results (every sample has its own seed), and
the store's appends skip samples it already holds, so nothing is stored twice. A task that fails
with an error (a model that does not load) is not retried: its error reaches the user.

Ray is an optional dependency (the ``ray`` extra), imported only here and only when
``--ray-address`` is given; every node needs rlvr-audit (with its engine extras) installed and the
model reachable (Hub id or a path that exists on the nodes).
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..core.errors import AuditError, UsageError
from .work import EngineSpec, Event, UnitWork, run_checkpoint

log = logging.getLogger(__name__)

MAX_RETRIES = 3
"""Times Ray re-runs a task whose worker died."""
CONNECT_TIMEOUT_S = 5.0
"""How long to wait for a ``HOST:PORT`` to answer before calling it unreachable."""


@dataclass
class RayCluster:
    """A connection to a Ray cluster and how generation uses it."""

    address: str
    """The address as given."""
    gpus_per_unit: int
    """GPUs each generation task holds (0: CPU tasks)."""
    slots: int
    """Tasks that can run at once (the cluster's GPUs / ``gpus_per_unit``, or its CPUs)."""
    owns_connection: bool
    """Whether :func:`connect` opened the connection (and :meth:`close` ends it)."""

    def close(self) -> None:
        """Disconnect, if :func:`connect` connected."""
        if self.owns_connection:
            import ray  # the ray extra: only with --ray-address

            ray.shutdown()


def _check_address(address: str) -> None:
    """Refuse a malformed address, and a ``HOST:PORT`` nothing answers on, in one line."""
    if address == "auto":
        return
    m = re.fullmatch(r"(?:ray://)?\[?([^\s\[\]]+?)\]?:(\d{1,5})", address)
    if m is None:
        raise UsageError(f"--ray-address {address!r}: expected 'auto', HOST:PORT or ray://HOST:PORT")
    host, port = m.group(1), int(m.group(2))
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(
            f"--ray-address {address}: cannot reach a Ray cluster there ({reason}); start one with "
            "`ray start --head` or check the address"
        ) from None


def connect(address: str, *, gpus_per_unit: int | None, model_args: dict[str, str]) -> RayCluster:
    """Connect to the cluster at ``address`` and check that a generation task fits on one of its
    nodes, before anything is written. An already initialised Ray (e.g. ``ray.init(num_cpus=2)``
    in the same process) is used as it is."""
    try:
        import ray  # the ray extra: only with --ray-address
    except ImportError:
        raise UsageError("--ray-address needs Ray: pip install 'rlvr-audit[ray]'") from None
    owns = False
    if not ray.is_initialized():
        _check_address(address)
        try:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=True)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(f"--ray-address {address}: cannot connect to a Ray cluster: {first}") from None
        owns = True
    try:
        return _size(address, gpus_per_unit, model_args, owns)
    except BaseException:
        if owns:
            ray.shutdown()
        raise


def _size(address: str, gpus_per_unit: int | None, model_args: dict[str, str], owns: bool) -> RayCluster:
    import ray  # the ray extra: only with --ray-address

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    gpus = {n.get("NodeManagerAddress", "?"): int(n.get("Resources", {}).get("GPU", 0)) for n in nodes}
    cpus = sum(int(n.get("Resources", {}).get("CPU", 0)) for n in nodes)
    tp = int(model_args.get("tensor_parallel_size", "1") or 1)
    largest = max(gpus.items(), key=lambda kv: kv[1], default=("?", 0))
    if gpus_per_unit is None:
        gpus_per_unit = tp if largest[1] > 0 else 0
    if gpus_per_unit > largest[1]:
        raise UsageError(
            f"--gpus-per-unit {gpus_per_unit}: no node of the Ray cluster at {address} has that many GPUs; the "
            f"largest, {largest[0]}, has {largest[1]}"
        )
    if gpus_per_unit and tp > gpus_per_unit:
        raise UsageError(f"--model-args tensor_parallel_size={tp} needs --gpus-per-unit >= {tp}, got {gpus_per_unit}")
    slots = sum(g // gpus_per_unit for g in gpus.values()) if gpus_per_unit else max(1, cpus)
    return RayCluster(address=address, gpus_per_unit=gpus_per_unit, slots=max(1, slots), owns_connection=owns)


def split_for_slots(groups: list[list[UnitWork]], slots: int) -> list[list[UnitWork]]:
    """One piece per checkpoint; when there are fewer checkpoints than slots, each checkpoint's
    units are dealt round-robin into up to ``slots // checkpoints`` pieces (a model load each)."""
    if not groups or len(groups) >= slots:
        return groups
    per = max(1, slots // len(groups))
    pieces: list[list[UnitWork]] = []
    for group in groups:
        parts = [group[i::per] for i in range(min(per, len(group)))]
        pieces.extend(p for p in parts if p)
    return pieces


def _generate_piece(spec: EngineSpec, works: list[UnitWork]) -> Iterator[Event]:
    """The Ray task: load the checkpoint once, stream its events back to the driver."""
    yield from run_checkpoint(spec, works)


def generate_on_ray(cluster: RayCluster, spec: EngineSpec, groups: list[list[UnitWork]]) -> Iterator[Event]:
    """Run every group on the cluster and yield events as they arrive (from any task)."""
    import ray  # the ray extra: only with --ray-address

    task = ray.remote(_generate_piece).options(
        num_cpus=1,
        num_gpus=cluster.gpus_per_unit,
        max_retries=MAX_RETRIES,
        retry_exceptions=False,
        name="rlvr_audit.generation",
    )
    running: list[Any] = [task.remote(spec, piece) for piece in split_for_slots(groups, cluster.slots)]
    try:
        while running:
            ready: list[Any] = ray.wait(running, num_returns=1)[0]
            for gen in ready:
                try:
                    ref = next(gen)
                except StopIteration:
                    running.remove(gen)
                    continue
                yield _get(ref)
    finally:
        for gen in running:  # the driver failed or was interrupted: stop what still runs
            try:
                ray.cancel(gen, force=True)
            except Exception as exc:  # cancelling a finished or dead task is harmless
                log.debug("could not cancel a Ray task: %s", exc)


def _get(ref: Any) -> Event:
    """The event behind ``ref``; a task's own error (a model that does not load) is re-raised as
    itself, so the user sees its one-line message and exit code."""
    import ray  # the ray extra: only with --ray-address

    try:
        event: Event = ray.get(ref)
        return event
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, AuditError):
            raise cause from None
        raise
