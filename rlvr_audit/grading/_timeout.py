"""An in-process time limit for sympy work, by ``SIGALRM`` (main thread only).

Graders run in the main thread of :mod:`rlvr_audit.grading.pool` worker processes, so a
signal can interrupt sympy (pure Python) and the grader reports ``timeout`` without losing
its worker. A signal cannot interrupt code stuck in C (a huge integer power); the pool's
wall-clock limit, which kills the worker, covers that case.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType


class TimeLimitExceeded(BaseException):
    """Raised inside a :func:`time_limit` block when its time is up.

    A ``BaseException`` so that the broad ``except Exception`` handlers of the grading code
    it interrupts (PRM800K's and lm-eval's equivalence checks swallow every ``Exception``)
    do not turn a timeout into a silent "not equal".
    """


class NotMainThreadError(RuntimeError):
    """:func:`time_limit` was entered off the main thread, where no signal can be delivered."""


@dataclass
class TimeLimit:
    """State of one :func:`time_limit` block."""

    seconds: float
    """The limit, in seconds."""
    fired: bool = False
    """Whether the alarm went off (even if the code it interrupted caught the exception)."""


def in_main_thread() -> bool:
    """Whether the caller runs in the process's main thread (where signal handlers run)."""
    return threading.current_thread() is threading.main_thread()


@contextmanager
def time_limit(seconds: float) -> Iterator[TimeLimit]:
    """Raise :class:`TimeLimitExceeded` in the block if it runs longer than ``seconds``.

    Uses ``setitimer(ITIMER_REAL)`` and a ``SIGALRM`` handler; both are restored on exit, and
    a timer that was already running (an outer limit) is re-armed with what is left of it.
    Callers should check :attr:`TimeLimit.fired` after the block as well as catching the
    exception, in case the interrupted code swallowed it.

    Raises:
        NotMainThreadError: Called off the main thread.
        ValueError: ``seconds`` is not positive.
    """
    if not seconds > 0:
        raise ValueError(f"a time limit must be positive, got {seconds!r}")
    if not in_main_thread():
        raise NotMainThreadError("signal-based time limits only work in a process's main thread")
    state = TimeLimit(seconds)

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        state.fired = True
        raise TimeLimitExceeded(f"took over {seconds:g} s")

    started = time.monotonic()
    previous_handler = signal.signal(signal.SIGALRM, on_alarm)
    previous_delay, previous_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield state
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_delay > 0:
            left = previous_delay - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-6), previous_interval)
