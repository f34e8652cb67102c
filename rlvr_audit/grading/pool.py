"""Worker processes that run small items in chunks, each item under its own wall-clock limit.

Math-Verify's timeouts use ``signal.alarm``: they only work in a process's main thread and
cannot interrupt code stuck in C (a huge integer power). So grading runs in the main thread
of worker processes of a ``pebble`` process pool, and a worker stuck past the limit is
killed (the pool starts a new one).

One pool task per item would spend more on inter-process traffic than on grading (a pebble
task costs about 0.25 ms; preparing a completion about 0.2 ms), so :class:`ChunkPool` sends
items in *chunks* and still gives every item its own limit:

- a worker runs a chunk's items one after the other and, before each, writes the item's
  index and start time into its slot of a shared array (three doubles per chunk in flight:
  the chunk's sequence number, the index, the start time);
- the parent polls the slots (every :attr:`ChunkPool.poll` seconds, and whenever a chunk
  finishes) and cancels a chunk whose current item has run longer than ``limit``: pebble
  kills the worker, that item fails with ``timeout``, and the chunk's other items, whose
  results died with the worker, are sent again as a new chunk ahead of the queue;
- a worker that dies (segfault, ``os._exit``, out of memory) fails the item it was running
  with ``died`` and its chunk's other items are sent again the same way; if the running item
  cannot be told, the items are sent again one per chunk, so only the culprit fails;
- an item that finishes but took longer than ``limit`` fails with ``timeout`` too, so the
  verdict does not depend on how fast the parent noticed;
- pebble's own per-task timeout (the limit times the chunk's length, plus one) is only a
  backstop should a slot ever go unread.

So an item is failed with ``timeout`` within about ``limit + poll`` seconds of starting,
whatever chunk it travels in, and the others carry on. :func:`rlvr_audit.grading.engine.grade_many`,
the public entry point for grading a list of samples, is built on this pool by
:class:`rlvr_audit.grading.engine.GradingEngine`.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pebble import ProcessExpired, ProcessPool


@dataclass(frozen=True)
class GradeTask:
    """One sample to grade."""

    key: tuple[Any, ...]
    """Opaque to grading and handed back to ``on_result``, e.g. ``(unit_key, problem_id, sample_idx)``."""
    completion: str
    """The model's completion."""
    gold: str
    """The gold answer as published."""
    truncated: bool
    """Whether the completion was cut at the token limit (``finish_reason == "length"``)."""


@dataclass(frozen=True)
class ItemFailure:
    """Why an item of a chunk has no result."""

    kind: Literal["timeout", "died", "raised"]
    """``timeout``: it ran past the limit (its worker was killed, or it finished late);
    ``died``: its worker process ended while running it; ``raised``: it raised."""
    message: str
    """``timeout``: the limit; ``died``: the exit code; ``raised``: ``Type: message``."""
    killed: bool = False
    """For ``timeout``: whether the worker was killed (rather than the item finishing late)."""


# --- worker side -----------------------------------------------------------------------

_PROGRESS: Any = None
"""Per worker process: the shared slot array (set by :func:`_init_worker`)."""

_OK, _RAISED, _LATE = 0, 1, 2


def _init_worker(progress: Any) -> None:
    """Pool initializer: remember the shared slot array."""
    global _PROGRESS
    _PROGRESS = progress


def _describe(exc: BaseException) -> str:
    """``Type: message`` of an exception (just ``Type`` when the message is empty)."""
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _run_chunk(
    function: Callable[..., Any], slot: int, seq: int, items: Sequence[tuple[Any, ...]], limit: float
) -> list[tuple[int, Any]]:
    """Runs in a worker: ``function(*item)`` for each item, recording progress in ``slot``.

    Returns ``(status, value)`` per item: the result, the description of what it raised, or
    (status late) nothing when it took longer than ``limit``.
    """
    progress = _PROGRESS
    base = 3 * slot
    out: list[tuple[int, Any]] = []
    for index, args in enumerate(items):
        start = time.monotonic()
        if progress is not None and progress[base] == seq:
            progress[base + 2] = start  # start first: a reader that sees the new index sees its start
            progress[base + 1] = index
        try:
            result: tuple[int, Any] = (_OK, function(*args))
        except BaseException as exc:  # one item's failure must not lose the others
            result = (_RAISED, _describe(exc))
        if time.monotonic() - start > limit:
            result = (_LATE, None)
        if progress is not None and progress[base] == seq:
            progress[base + 1] = -2  # between items: nothing to time
        out.append(result)
    return out


# --- parent side -----------------------------------------------------------------------


@dataclass
class _Chunk:
    """A chunk in the parent: what to run and, once dispatched, where it runs."""

    function: Callable[..., Any]
    items: list[tuple[Any, ...]]
    tokens: list[Hashable]
    limit: float
    slot: int = -1
    seq: int = 0
    future: Any = field(default=None, repr=False)


class ChunkPool:
    """A pebble process pool running chunks of items, each item under a wall-clock ``limit``.

    Submit chunks with :meth:`submit`; call :meth:`collect` repeatedly to get
    ``(token, result)`` pairs, where ``result`` is the item function's return value or an
    :class:`ItemFailure`. Every submitted item yields exactly one pair (in completion order).
    The module docstring explains how per-item limits survive chunking.
    """

    def __init__(self, *, workers: int, limit: float, poll: float | None = None) -> None:
        """Start nothing yet: pebble starts the worker processes on the first chunk.

        Args:
            workers: Worker processes (at least 1).
            limit: Wall-clock seconds one item may run (positive).
            poll: Seconds between checks of the running items (default: ``min(0.05, limit / 4)``).
        """
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers!r}")
        if not limit > 0:
            raise ValueError(f"limit must be positive, got {limit!r}")
        self.workers = workers
        self.limit = float(limit)
        self.poll = poll if poll is not None else min(0.05, self.limit / 4)
        self.max_running = 2 * workers
        """Chunks handed to pebble at once: one running and one waiting per worker."""
        self._slots = multiprocessing.RawArray("d", 3 * self.max_running)
        self._free_slots = list(range(self.max_running))
        self._seq = 0
        self._pool = ProcessPool(max_workers=workers, initializer=_init_worker, initargs=(self._slots,))
        self._queue: deque[_Chunk] = deque()
        self._running: dict[Any, _Chunk] = {}
        self._ready: list[tuple[Hashable, Any]] = []

    # -- submitting

    def submit(
        self,
        function: Callable[..., Any],
        items: Sequence[tuple[Any, ...]],
        tokens: Sequence[Hashable],
        *,
        limit: float | None = None,
    ) -> None:
        """Queue one chunk: ``function(*item)`` for each item; results come back with its token.

        ``function`` must be a module-level function (it is pickled by reference). ``limit``:
        this chunk's wall-clock seconds per item (default: the pool's :attr:`limit`).
        """
        if len(items) != len(tokens):
            raise ValueError(f"{len(items)} items but {len(tokens)} tokens")
        if limit is not None and not limit > 0:
            raise ValueError(f"limit must be positive, got {limit!r}")
        if items:
            self._queue.append(_Chunk(function, list(items), list(tokens), float(limit or self.limit)))
            self._dispatch()

    @property
    def spare(self) -> int:
        """How many more chunks could start now without waiting (submit that many to keep busy)."""
        return max(0, self.max_running - len(self._running) - len(self._queue))

    @property
    def pending(self) -> int:
        """Chunks queued or running."""
        return len(self._running) + len(self._queue)

    def _dispatch(self) -> None:
        while self._queue and self._free_slots:
            chunk = self._queue.popleft()
            chunk.slot = self._free_slots.pop()
            self._seq += 1
            chunk.seq = self._seq
            base = 3 * chunk.slot
            self._slots[base] = chunk.seq
            self._slots[base + 1] = -1
            self._slots[base + 2] = 0.0
            chunk.future = self._pool.schedule(
                _run_chunk,
                args=(chunk.function, chunk.slot, chunk.seq, chunk.items, chunk.limit),
                timeout=chunk.limit * (len(chunk.items) + 1),
            )
            self._running[chunk.future] = chunk

    # -- collecting

    def collect(self, wait: float | None = None) -> list[tuple[Hashable, Any]]:
        """Results that are ready, waiting up to ``wait`` seconds (default :attr:`poll`) for one.

        Also enforces the per-item limit on running chunks. Returns ``[]`` when nothing is
        pending or nothing finished in time.
        """
        self._dispatch()
        if not self._ready and self._running:
            done, _ = concurrent.futures.wait(
                list(self._running),
                timeout=self.poll if wait is None else wait,
                return_when=concurrent.futures.FIRST_COMPLETED,
            )
            for future in done:
                chunk = self._running.pop(future, None)
                if chunk is not None:
                    self._finished(chunk)
            self._check_running()
            self._dispatch()
        ready, self._ready = self._ready, []
        return ready

    def _release(self, chunk: _Chunk) -> None:
        self._slots[3 * chunk.slot] = 0  # a late write from the old worker no longer matches
        self._free_slots.append(chunk.slot)

    def _running_index(self, chunk: _Chunk) -> tuple[int, float]:
        """The index and start time of the item ``chunk`` is running, ``(-1, 0)`` if unknown."""
        base = 3 * chunk.slot
        if self._slots[base] != chunk.seq:
            return -1, 0.0
        index = int(self._slots[base + 1])  # index first, then start: see _run_chunk
        start = float(self._slots[base + 2])
        return index, start

    def _check_running(self) -> None:
        now = time.monotonic()
        for future, chunk in list(self._running.items()):
            index, start = self._running_index(chunk)
            if index >= 0 and now - start > chunk.limit and not future.done():
                future.cancel()  # pebble kills the worker
                self._running.pop(future, None)
                self._lost(chunk, index, ItemFailure("timeout", f"{chunk.limit:g}", killed=True))

    def _finished(self, chunk: _Chunk) -> None:
        future = chunk.future
        if future.cancelled():
            self._release(chunk)
            return
        try:
            results = future.result()
        except ProcessExpired as exc:
            index, _ = self._running_index(chunk)
            self._lost(chunk, index, ItemFailure("died", f"{exc.exitcode}"))
            return
        except concurrent.futures.TimeoutError:
            index, _ = self._running_index(chunk)
            self._lost(chunk, index, ItemFailure("timeout", f"{chunk.limit:g}", killed=True))
            return
        except Exception as exc:  # e.g. an item that cannot be pickled: fail each item alike
            self._release(chunk)
            failure = ItemFailure("raised", _describe(exc))
            self._ready.extend((token, failure) for token in chunk.tokens)
            return
        self._release(chunk)
        for token, (status, value) in zip(chunk.tokens, results, strict=True):
            if status == _OK:
                self._ready.append((token, value))
            elif status == _RAISED:
                self._ready.append((token, ItemFailure("raised", value)))
            else:
                self._ready.append((token, ItemFailure("timeout", f"{chunk.limit:g}")))

    def _lost(self, chunk: _Chunk, index: int, failure: ItemFailure) -> None:
        """A chunk's worker was killed or died while running item ``index`` (-1: unknown)."""
        self._release(chunk)
        if 0 <= index < len(chunk.items):
            self._ready.append((chunk.tokens[index], failure))
            rest = [i for i in range(len(chunk.items)) if i != index]
            if rest:
                again = _Chunk(
                    chunk.function, [chunk.items[i] for i in rest], [chunk.tokens[i] for i in rest], chunk.limit
                )
                self._queue.appendleft(again)
        elif len(chunk.items) == 1:
            self._ready.append((chunk.tokens[0], failure))
        else:  # the culprit is unknown: one chunk per item, so that only it fails
            for item, token in reversed(list(zip(chunk.items, chunk.tokens, strict=True))):
                self._queue.appendleft(_Chunk(chunk.function, [item], [token], chunk.limit))

    # -- shutting down

    def close(self) -> None:
        """Wait for running chunks and stop the workers (results not yet collected are lost)."""
        self._pool.close()
        self._pool.join()

    def stop(self) -> None:
        """Kill the workers now (after an error or Ctrl-C)."""
        self._pool.stop()
        self._pool.join()
