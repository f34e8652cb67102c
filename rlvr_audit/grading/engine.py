"""The grading engine: many samples graded fast, with the outcomes of one plain call each.

Grading a sample with math-verify costs a few milliseconds: regular expressions over the
whole response, then LaTeX parsing and sympy on the answer it finds. With 8 samples per
problem most answers repeat. :class:`GradingEngine` splits grading in two steps and does the
expensive one once per distinct answer:

1. **prepare** (cheap, per distinct completion): find the answer. For a grader with the
   two-step contract (``extract(completion) -> str | None`` and
   ``judge(*, extracted, gold) -> GradeOutcome``, ``grade`` = extract, then
   ``truncated``/``no_answer`` if nothing, else judge) this is ``extract``. For
   ``math_verify`` it is :meth:`~rlvr_audit.grading.math_verify.MathVerifyGrader.prepare`,
   which finds the candidates math-verify would try, in order, and normalises the first.
   Identical completions are prepared once.
2. **judge** (expensive, per distinct ``(grader, grader version, answer key, gold)``): the
   verdict. Every sample whose completion gave the same key and whose problem has the same
   gold answer gets the same outcome: the cache. For ``math_verify`` the key is the first
   candidate (its normalised LaTeX groups or its number); when that candidate does not
   parse, the outcome also depends on the later candidates, which the judge then takes into
   account per distinct list (see :mod:`rlvr_audit.grading.math_verify` for why the outcome
   is exactly the plain call's).
3. **full path**: a sample the fast path cannot decide (its candidates ran out before one
   parsed while more could follow, the grader has no fast path, ``prepare`` raised) is graded
   with the grader's own ``grade`` on the whole completion; identical ``(completion, gold,
   truncated)`` samples share one call.

Both steps run in worker processes (:class:`rlvr_audit.grading.pool.ChunkPool`), in chunks
(32 completions, 8 keys or 4 full gradings per pool task) so that inter-process traffic stays
small, and every item of a chunk keeps its own wall-clock limit (``timeout``). The parent only
routes: it deduplicates, schedules chunks as workers free up (full-path samples first, then
full chunks of keys, then completions), fans each judged outcome out to the samples waiting
for it and calls ``on_result`` for each sample as soon as its outcome is known.

Outcomes:

- A sample gets the outcome its grader's plain ``grade`` call gives (``no_answer`` becomes
  ``truncated`` for a completion cut at the token limit, exactly as ``grade`` does).
- **Timeouts are shared by a key.** When judging a key runs past ``timeout`` its worker is
  killed and *every* sample with that key and gold answer is graded ``timeout`` (error
  ``grading took over T s (worker killed)``), later ones too: judging the same key again
  would do the same work. A grader's own in-process timeouts (math-verify's 5 s alarms) are
  outcomes like any other and are shared the same way; since the fast path does the same
  parse and comparison as the plain call, it never turns a plain-call ``timeout`` into
  ``correct``/``incorrect`` or the reverse, except for answers within a hair of a limit
  (wall-clock time is never reproducible).
- A prepare step past ``timeout`` grades the samples with that completion ``timeout``; a
  worker that dies grades what it was running ``error`` (``grading worker died (exit code
  N)``); a plain ``grade`` call that raises (against the protocol) is ``error``
  (``grading failed: Type: message``).
- The limit applies to each step (prepare, judge, full path) separately.
- **A step that times out is run again alone**, once: when everything else of the call is
  done, with nothing else in the pool, with :data:`RETRY_FACTOR` times the wall-clock limit
  and the grader's own limits (``with_time_scale``). Only if it times out again are its
  samples graded ``timeout`` (error ``... run alone after taking over T s``), so a verdict
  does not depend on how loaded the machine was when the step first ran.
  :meth:`GradingEngine.limit_for` tells which limit a sample's outcome was reached under.

The caches live as long as the engine: :func:`rlvr_audit.grading.runner.grade_units` uses one engine
for all units and graders of a pass, so answers repeated across checkpoints of the same task
are judged once too. Given a :class:`~rlvr_audit.grading.cache.VerdictCache` (the store's,
persistent), the engine looks each key up there before judging it and writes what it judged
(``correct``/``incorrect``/``no_answer`` only), so the next pass, the next checkpoint of a
run or the next prompt template finds them.

Finding the answer (prepare) costs about what the answer region costs, not the response:
math-verify's patterns are tried only where a match can start, and its number patterns are
scanned from near the end (:mod:`rlvr_audit.grading._starts`; on 630 real long responses
3.4 s became about 1 s of CPU, with the same candidates).

What it gains (``benchmarks/grading.py``, 500 MATH-500 problems x 8 long responses, 2 cores
shared with other work, against math-verify's documented parse + parse + verify loop, none
of them timing the library's import): 1.4-2.0x less CPU in all and 1.3-3.4x the throughput
(the engine needs both cores; the low figures are runs where other work held one), with
identical outcomes. 2,138 of the 4,000 samples are plain integers against plain-integer gold
answers and are decided in the parent without parsing (:meth:`~rlvr_audit.grading.
math_verify.MathVerifyGrader.shortcut`); the judge step parses LaTeX with ANTLR's two-stage
strategy (:mod:`rlvr_audit.grading._two_stage`: SLL prediction, the library's LL parse when
that fails; the same values, about 28% less CPU for the judge step).

The 10x the plain loop that was aimed for is out of reach with exact outcomes. The plain
loop already parses each distinct answer about once (math-verify caches its last 20 parses
and a problem's samples come together), and what is left after deduplication is that same
work. In one process (CPU seconds, cold, machine under load): finding the answers 1.2 s
(3,925 completions; about 0.85 s on a quiet machine); judging the 674 distinct non-integer
(answer, gold) keys 6.2-6.5 s: parsing the answers 2.8-3.0 s, the gold answers 1.8 s,
``verify`` 1.6 s. By kind of key: responses cut at the token limit 2.5 s (94 unique junk
expressions: a few long ones cost 0.1-0.9 s each, the slowest failing to parse in both
prediction modes), wrong answers 1.9 s (237: tuples, intervals, equations and polynomials
cost 50-250 ms each in the parser's cold prediction cache and in sympy's ``simplify`` /
``solve``), correct non-integer answers 1.2 s (140), rewritten gold answers 0.4 s (124).
The plain loop needs 10-16 s (CPU) on the same machine. About half of the parsing time is
ANTLR building its prediction cache (a DFA, per process: each worker builds its own, which
costs the two workers together 0.6-0.7 s more than one process), and no exact grader avoids
it: a decision's first encounter of a token sequence runs the ATN simulation. Even with
perfect use of 2 cores the bound is therefore about (10 to 16) / ((1.2 + 6.3) / 2), some
3-4x, not 10x.

Dropped after measurement: warming the parser in the parent before the workers fork (it
saved the workers about 1.2 s of CPU but cost 2.1 s in the parent); shipping a prediction
cache (DFA) pre-built from a generic list of answer shapes (about 10% less judge CPU; one
built from the benchmark's own answers would gain far more and measure nothing); exact
no-parse decisions for numeric literals beyond integers (the 167 such keys cost 0.45 s in
all: their parses are the cheap ones); a string-equality accept (a correct answer's parse
is a cache hit of its gold answer's, which must be parsed anyway to rule out a gold that
fails or times out).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from . import GradeOutcome, Grader, get_grader
from .cache import VerdictCache
from .math_verify import Decision, Prepared, Tail
from .pool import ChunkPool, GradeTask, ItemFailure

PREPARE_CHUNK = 32
"""Completions per prepare chunk (fewer when they are long: see :data:`PREPARE_CHUNK_CHARS`)."""
PREPARE_CHUNK_CHARS = 262_144
"""Characters of completion text per prepare chunk, at most (one longer completion goes alone)."""
JUDGE_CHUNK = 8
"""Keys per judge chunk."""
FULL_CHUNK = 4
"""Samples per full-path chunk."""
MAX_TAILS_PER_JOB = 8
"""Distinct tails sent with one key; samples with others wait for the key's answer."""
RETRY_FACTOR = 4.0
"""A step that times out is run again alone, once, with its limits (the wall-clock limit and
the grader's own) multiplied by this."""


class KeyedGrader(Protocol):
    """A grader that grades in two steps (see the module docstring); ``math_verify`` is one."""

    grader_id: str
    version: str

    def prepare(self, completion: str) -> Prepared | None:
        """The key (and tail) of ``completion``; ``None``: grade it with ``grade``. Cheap."""
        ...

    def decide(self, head: Any, gold: str, tails: Sequence[Tail]) -> Decision:
        """The outcome for a key and gold answer (``no_answer`` when nothing was found)."""
        ...

    def grade(self, *, completion: str, gold: str, truncated: bool) -> GradeOutcome:
        """The plain call."""
        ...


_NO_TAIL = Tail((), False)
_NOTHING: tuple[str] = ("none",)


class _ExtractJudge:
    """A grader with the ``extract``/``judge`` contract seen as a :class:`KeyedGrader`."""

    def __init__(self, grader: Any) -> None:
        self.grader = grader
        self.grader_id: str = grader.grader_id
        self.version: str = grader.version

    def prepare(self, completion: str) -> Prepared | None:
        extracted = self.grader.extract(completion)
        return Prepared(_NOTHING if extracted is None else ("text", extracted), _NO_TAIL)

    def decide(self, head: Any, gold: str, tails: Sequence[Tail]) -> Decision:
        if head[0] == "none":
            return Decision(GradeOutcome("no_answer", None), ())
        outcome: GradeOutcome = self.grader.judge(extracted=head[1], gold=gold)
        return Decision(outcome, ())

    def grade(self, *, completion: str, gold: str, truncated: bool) -> GradeOutcome:
        outcome: GradeOutcome = self.grader.grade(completion=completion, gold=gold, truncated=truncated)
        return outcome


def keyed(grader: Grader) -> KeyedGrader | None:
    """``grader`` as a two-step grader, or ``None`` if it only has ``grade`` (full path only)."""
    if callable(getattr(grader, "prepare", None)) and callable(getattr(grader, "decide", None)):
        return grader  # type: ignore[return-value]
    if callable(getattr(grader, "extract", None)) and callable(getattr(grader, "judge", None)):
        return _ExtractJudge(grader)
    return None


# --- worker side -----------------------------------------------------------------------

_WORKER_GRADERS: dict[tuple[str, float], Grader] = {}
"""Per worker process: the grader instance for each id and time scale, built on first use."""


def scaled(grader: Grader, factor: float) -> Grader:
    """``grader`` with its own time limits multiplied by ``factor`` (itself if it has none)."""
    rescale = getattr(grader, "with_time_scale", None)
    if factor == 1 or not callable(rescale):
        return grader
    return cast(Grader, rescale(factor))


def _worker_grader(grader_id: str, scale: float = 1.0) -> Grader:
    grader = _WORKER_GRADERS.get((grader_id, scale))
    if grader is None:
        grader = _WORKER_GRADERS[(grader_id, scale)] = scaled(get_grader(grader_id), scale)
    return grader


def _prepare_item(grader_id: str, completion: str, scale: float = 1.0) -> Prepared | None:
    """Runs in a worker: the prepare step for one completion."""
    fast = keyed(_worker_grader(grader_id, scale))
    return None if fast is None else fast.prepare(completion)


def _decide_item(grader_id: str, head: Any, gold: str, tails: tuple[Tail, ...], scale: float = 1.0) -> Decision:
    """Runs in a worker: the judge step for one key."""
    fast = keyed(_worker_grader(grader_id, scale))
    if fast is None:  # cannot happen: the parent only sends keys of keyed graders
        raise TypeError(f"grader {grader_id!r} has no two-step grading")
    return fast.decide(head, gold, tails)


def _grade_item(grader_id: str, completion: str, gold: str, truncated: bool, scale: float = 1.0) -> GradeOutcome:
    """Runs in a worker: the plain call for one sample."""
    return _worker_grader(grader_id, scale).grade(completion=completion, gold=gold, truncated=truncated)


# --- parent side -----------------------------------------------------------------------


@dataclass
class EngineStats:
    """What an engine did (cumulative over its :meth:`GradingEngine.grade` calls)."""

    samples: int = 0
    """Samples graded."""
    completions: int = 0
    """Distinct completions prepared."""
    keys: int = 0
    """Distinct ``(grader, key, gold)`` judged (the judge step's work)."""
    tail_keys: int = 0
    """Judgements of keys whose first candidate did not parse, per distinct later candidates."""
    full: int = 0
    """Plain ``grade`` calls (distinct samples the fast path did not decide)."""
    shortcut: int = 0
    """Samples decided in the parent by the grader's exact ``shortcut`` (no judge step: for
    ``math_verify``, a plain-integer answer against a plain-integer gold answer)."""
    timed_out: int = 0
    """Items (a completion to prepare, a key to judge, a plain call) stopped by the wall-clock limit."""
    retried: int = 0
    """Steps that timed out (wall-clock limit or the grader's own) and were run again alone."""
    retry_timeouts: int = 0
    """Of those, steps that timed out again (their samples are graded ``timeout``)."""
    cache_hits: int = 0
    """Distinct keys whose outcome came from the persistent verdict cache."""
    cache_samples: int = 0
    """Samples whose outcome came from the persistent verdict cache."""


@dataclass
class _Job:
    """A key waiting for its judgement."""

    grader_id: str
    head: Any
    gold: str
    tail_key: Tail | None
    """``None`` for a key's first judgement; a tail for a judgement of that tail alone."""
    tails: list[Tail] = field(default_factory=list)
    waiters: list[tuple[int, Prepared]] = field(default_factory=list)
    dispatched: bool = False


def _failure_outcome(failure: ItemFailure, *, retried: float | None = None) -> GradeOutcome:
    """The outcome a sample gets when the work for it failed in the pool (``retried``: the
    first limit, when this was the retry alone)."""
    if failure.kind == "timeout":
        killed = " (worker killed)" if failure.killed else ""
        again = f", run alone after taking over {retried:g} s" if retried is not None else ""
        return GradeOutcome("timeout", None, f"grading took over {failure.message} s{killed}{again}")
    if failure.kind == "died":
        return GradeOutcome("error", None, f"grading worker died (exit code {failure.message})")
    return GradeOutcome("error", None, f"grading failed: {failure.message}")


class GradingEngine:
    """Grades lists of samples in worker processes with deduplication and a verdict cache.

    Use as a context manager (or call :meth:`close`); the worker processes start on the first
    :meth:`grade` call and are reused by later ones, as are the caches. See the module
    docstring for what is cached and why outcomes equal the plain calls'.
    """

    def __init__(self, *, workers: int | None = None, timeout: float = 10.0, cache: VerdictCache | None = None) -> None:
        """Configure the engine (nothing starts yet).

        Args:
            workers: Worker processes (``None``: ``os.cpu_count()``; never more than the
                samples of the first :meth:`grade` call).
            timeout: Wall-clock seconds one step for one item may take in a worker. A step
                that times out is run again alone with :data:`RETRY_FACTOR` times the limits.
            cache: A persistent verdict cache to read judged outcomes from and write them to
                (:mod:`rlvr_audit.grading.cache`); ``None``: this engine's memory only.
        """
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers!r}")
        self.workers = workers
        self.timeout = float(timeout)
        self.cache = cache
        self.stats = EngineStats()
        self._long_limit: set[Hashable] = set()
        self._pool: ChunkPool | None = None
        self._decided: dict[tuple[str, Any, str], GradeOutcome] = {}
        self._head_fails: set[tuple[str, Any, str]] = set()
        self._decided_tail: dict[tuple[str, Any, str, Tail], GradeOutcome | None] = {}
        self._looked_up: set[tuple[Any, ...]] = set()
        self._from_cache: set[tuple[Any, ...]] = set()

    def __enter__(self) -> GradingEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker processes (the engine can grade again: it starts new ones)."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.close()

    def _stop(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.stop()

    def _pool_for(self, n_tasks: int) -> ChunkPool:
        wanted = min(self.workers or os.cpu_count() or 1, max(n_tasks, 1))
        if self._pool is not None and self._pool.workers < wanted:
            self.close()
        if self._pool is None:
            self._pool = ChunkPool(workers=wanted, limit=self.timeout)
        return self._pool

    def grade(
        self,
        tasks: Sequence[GradeTask],
        *,
        grader_id: str,
        on_result: Callable[[GradeTask, GradeOutcome], None] | None = None,
    ) -> list[GradeOutcome]:
        """Grade ``tasks`` with ``grader_id``; one outcome per task, in input order.

        ``on_result(task, outcome)`` is called in the calling thread for each task as soon as
        its outcome is known (completion order). An exception it raises, or Ctrl-C, kills
        the workers and propagates; outcomes already reported stay reported.
        Raises :class:`~rlvr_audit.core.errors.UnknownNameError` for an unknown ``grader_id``.
        """
        grader = get_grader(grader_id)  # validates; also imports its libraries before workers fork
        if not tasks:
            return []
        run = _Run(self, grader, tasks, on_result)
        try:
            return run.execute(self._pool_for(len(tasks)))
        except BaseException:
            self._stop()
            raise
        finally:
            if self.cache is not None:
                self.cache.flush()

    def limit_for(self, task: GradeTask) -> float:
        """The wall-clock limit per step under which ``task``'s outcome was reached: the
        engine's ``timeout``, or :data:`RETRY_FACTOR` times it when the step that decided it
        was run again alone (call it from ``on_result`` or after :meth:`grade`)."""
        return self.timeout * RETRY_FACTOR if task.key in self._long_limit else self.timeout


class _Run:
    """One :meth:`GradingEngine.grade` call: the routing state."""

    def __init__(
        self,
        engine: GradingEngine,
        grader: Grader,
        tasks: Sequence[GradeTask],
        on_result: Callable[[GradeTask, GradeOutcome], None] | None,
    ) -> None:
        self.engine = engine
        engine._long_limit = set()
        self.grader_id = grader.grader_id
        self.key_prefix = f"{grader.grader_id}\x00{grader.version}"
        self.cache = engine.cache
        fast = keyed(grader)
        self.keyed = fast is not None
        shortcut = getattr(fast, "shortcut", None)
        self.shortcut: Callable[[Any, str], GradeOutcome | None] | None = shortcut if callable(shortcut) else None
        """The grader's exact no-parse decision for a key and gold answer, if it has one."""
        self.nothing_is_no_answer = isinstance(fast, _ExtractJudge)
        """For extract/judge graders nothing extracted is ``no_answer`` without a judge (their contract)."""
        self.tasks = tasks
        self.on_result = on_result
        self.outcomes: list[GradeOutcome | None] = [None] * len(tasks)
        self.remaining = len(tasks)
        self.by_completion: dict[str, list[int]] = {}
        self.prepare_queue: list[str] = []
        self.jobs: dict[tuple[Any, ...], _Job] = {}
        self.judge_queue: list[tuple[Any, ...]] = []
        self.full_waiters: dict[tuple[str, str, bool], list[int]] = {}
        self.full_done: dict[tuple[str, str, bool], GradeOutcome] = {}
        self.full_queue: list[tuple[str, str, bool]] = []
        self.retry_queue: list[tuple[str, Any]] = []
        """Tokens of steps that timed out, to run again alone once the rest is done."""
        self.retried: set[tuple[str, Any]] = set()
        self.now_retried: tuple[str, Any] | None = None
        """The token being handled, when it is a step's retry (its samples got the long limit)."""

    # -- the loop

    def execute(self, pool: ChunkPool) -> list[GradeOutcome]:
        self.engine.stats.samples += len(self.tasks)
        for index, task in enumerate(self.tasks):
            if self.keyed:
                waiting = self.by_completion.setdefault(task.completion, [])
                if not waiting:
                    self.prepare_queue.append(task.completion)
                waiting.append(index)
            else:
                self._full(index)
        self.prepare_queue.reverse()  # popped from the end: input order
        self.engine.stats.completions += len(self.prepare_queue)
        while self.remaining:
            self._schedule(pool)
            for token, result in pool.collect():
                self._handle(token, result)
            if self.remaining and not pool.pending and not self._has_work():
                raise RuntimeError(f"grading lost {self.remaining} of {len(self.tasks)} outcomes")
        done = [outcome for outcome in self.outcomes if outcome is not None]
        if len(done) != len(self.tasks):  # every path finishes each sample once; this would be a bug
            raise RuntimeError(f"grading lost {len(self.tasks) - len(done)} of {len(self.tasks)} outcomes")
        return done

    def _has_work(self) -> bool:
        return bool(self.prepare_queue or self.judge_queue or self.full_queue or self.retry_queue)

    def _schedule(self, pool: ChunkPool) -> None:
        """Fill the pool: full-path samples, then full chunks of keys, then completions; once
        all of that is done, the steps that timed out, one at a time (alone)."""
        if self.retry_queue and not pool.pending and not (self.prepare_queue or self.judge_queue or self.full_queue):
            self._submit_retry(pool, self.retry_queue.pop(0))
            return
        while pool.spare and (self.prepare_queue or self.judge_queue or self.full_queue):
            if self.full_queue:
                batch = [self.full_queue.pop() for _ in range(min(FULL_CHUNK, len(self.full_queue)))]
                pool.submit(_grade_item, [(self.grader_id, c, g, t) for c, g, t in batch], [("full", k) for k in batch])
            elif self.judge_queue and (len(self.judge_queue) >= JUDGE_CHUNK or not self.prepare_queue):
                size = min(JUDGE_CHUNK, len(self.judge_queue))
                last_gold = self.jobs[self.judge_queue[size - 1]].gold
                while (
                    size < min(2 * JUDGE_CHUNK, len(self.judge_queue))
                    and self.jobs[self.judge_queue[size]].gold == last_gold
                ):
                    size += 1  # keep a problem's keys together: its gold is parsed in one worker
                batch = self.judge_queue[:size]
                del self.judge_queue[:size]
                items = []
                for job_key in batch:
                    job = self.jobs[job_key]
                    job.dispatched = True
                    items.append((self.grader_id, job.head, job.gold, tuple(job.tails)))
                pool.submit(_decide_item, items, [("judge", k) for k in batch])
            else:
                texts: list[str] = []
                size = 0
                while self.prepare_queue and len(texts) < PREPARE_CHUNK:
                    if texts and size + len(self.prepare_queue[-1]) > PREPARE_CHUNK_CHARS:
                        break
                    texts.append(self.prepare_queue.pop())
                    size += len(texts[-1])
                pool.submit(_prepare_item, [(self.grader_id, t) for t in texts], [("prepare", t) for t in texts])

    def _submit_retry(self, pool: ChunkPool, token: tuple[str, Any]) -> None:
        """Run a step that timed out again, alone, with :data:`RETRY_FACTOR` times its limits."""
        kind, key = token
        factor = RETRY_FACTOR
        item: tuple[Any, ...]
        if kind == "prepare":
            function: Callable[..., Any] = _prepare_item
            item = (self.grader_id, key, factor)
        elif kind == "judge":
            job = self.jobs[key]
            function, item = _decide_item, (self.grader_id, job.head, job.gold, tuple(job.tails), factor)
        else:
            completion, gold, truncated = key
            function, item = _grade_item, (self.grader_id, completion, gold, truncated, factor)
        pool.submit(function, [item], [token], limit=self.engine.timeout * factor)

    def _handle(self, token: Hashable, result: Any) -> None:
        kind, key = cast(tuple[str, Any], token)
        if (kind, key) not in self.retried and _timed_out(kind, result):
            self.retried.add((kind, key))
            self.retry_queue.append((kind, key))
            self.engine.stats.retried += 1
            if isinstance(result, ItemFailure):
                self._count(result)
            return
        self.now_retried = (kind, key) if (kind, key) in self.retried else None
        if self.now_retried is not None and _timed_out(kind, result):
            self.engine.stats.retry_timeouts += 1
        try:
            if kind == "prepare":
                self._prepared(key, result)
            elif kind == "judge":
                self._judged(key, result)
            else:
                self._graded(key, result)
        finally:
            self.now_retried = None

    def _failure(self, failure: ItemFailure) -> GradeOutcome:
        retried = self.engine.timeout if self.now_retried is not None else None
        return _failure_outcome(failure, retried=retried)

    # -- finishing samples

    def _count(self, failure: ItemFailure) -> None:
        if failure.kind == "timeout":
            self.engine.stats.timed_out += 1

    def _finish(self, index: int, outcome: GradeOutcome, *, keyed: bool) -> None:
        task = self.tasks[index]
        if self.now_retried is not None:
            self.engine._long_limit.add(task.key)
        if keyed and outcome.verdict == "no_answer" and task.truncated:
            outcome = GradeOutcome("truncated", outcome.extracted, outcome.error)
        self.outcomes[index] = outcome
        self.remaining -= 1
        if self.on_result is not None:
            self.on_result(task, outcome)

    # -- prepare

    def _prepared(self, completion: str, result: Any) -> None:
        indices = self.by_completion.pop(completion)
        if isinstance(result, ItemFailure):
            self._count(result)
            if result.kind == "raised":  # the plain call decides what a failing extraction means
                for index in indices:
                    self._full(index)
            else:
                outcome = self._failure(result)
                for index in indices:
                    self._finish(index, outcome, keyed=False)
            return
        if result is None:
            for index in indices:
                self._full(index)
            return
        for index in indices:
            self._route(index, result)

    def _route(self, index: int, prepared: Prepared) -> None:
        """Send a prepared sample to its cached outcome, a waiting job, or a new job."""
        engine = self.engine
        gold = self.tasks[index].gold
        head = prepared.head
        if self.nothing_is_no_answer and head == _NOTHING:
            self._finish(index, GradeOutcome("no_answer", None), keyed=True)
            return
        if self.shortcut is not None:
            quick = self.shortcut(head, gold)
            if quick is not None:
                engine.stats.shortcut += 1
                self._finish(index, quick, keyed=True)
                return
        key = (self.key_prefix, head, gold)
        outcome = engine._decided.get(key)
        if outcome is None and self.cache is not None and key not in engine._looked_up:
            engine._looked_up.add(key)
            outcome = self.cache.get(self.key_prefix, ["head", head], gold)
            if outcome is not None:
                engine._decided[key] = outcome
                engine._from_cache.add(key)
                engine.stats.cache_hits += 1
        if outcome is not None:
            self._served(key)
            self._finish(index, outcome, keyed=True)
            return
        if self.cache is not None and key not in engine._head_fails:
            tail_key = (*key, prepared.tail)
            if tail_key not in engine._looked_up:  # a tail entry exists only when the head did not parse
                engine._looked_up.add(tail_key)
                tail_outcome = self.cache.get(self.key_prefix, ["tail", head, prepared.tail], gold)
                if tail_outcome is not None:
                    engine._decided_tail[tail_key] = tail_outcome
                    engine._from_cache.add(tail_key)
                    engine.stats.cache_hits += 1
            tail_outcome = engine._decided_tail.get(tail_key)
            if tail_outcome is not None:
                self._served(tail_key)
                self._finish(index, tail_outcome, keyed=True)
                return
        if key in engine._head_fails:
            tail_key = (*key, prepared.tail)
            if tail_key in engine._decided_tail:
                tail_outcome = engine._decided_tail[tail_key]
                if tail_outcome is None:
                    self._full(index)
                else:
                    self._served(tail_key)
                    self._finish(index, tail_outcome, keyed=True)
                return
            self._join(("tail", *tail_key), head, gold, prepared.tail, index, prepared)
            return
        self._join(("head", *key), head, gold, None, index, prepared)

    def _join(
        self, job_key: tuple[Any, ...], head: Any, gold: str, tail_key: Tail | None, index: int, prepared: Prepared
    ) -> None:
        job = self.jobs.get(job_key)
        if job is None:
            job = self.jobs[job_key] = _Job(self.grader_id, head, gold, tail_key)
            self.judge_queue.append(job_key)
            if tail_key is None:
                self.engine.stats.keys += 1
            else:
                self.engine.stats.tail_keys += 1
        job.waiters.append((index, prepared))
        if not job.dispatched and prepared.tail not in job.tails and len(job.tails) < MAX_TAILS_PER_JOB:
            job.tails.append(prepared.tail)

    # -- judge

    def _judged(self, job_key: tuple[Any, ...], result: Any) -> None:
        engine = self.engine
        job = self.jobs.pop(job_key)
        key = (self.key_prefix, job.head, job.gold)
        if isinstance(result, ItemFailure):
            self._count(result)
            if result.kind == "raised":  # a judge that raises: the plain call decides
                for index, _ in job.waiters:
                    self._full(index)
                return
            outcome = self._failure(result)  # shared by every sample with this key (see module docstring)
            if job.tail_key is None:
                engine._decided[key] = outcome
            else:
                engine._decided_tail[(*key, job.tail_key)] = outcome
            for index, _ in job.waiters:
                self._finish(index, outcome, keyed=False)
            return
        decision: Decision = result
        if decision.outcome is not None:
            if job.tail_key is None:
                engine._decided[key] = decision.outcome
                self._remember(["head", job.head], job.gold, decision.outcome)
            else:
                engine._decided_tail[(*key, job.tail_key)] = decision.outcome
                self._remember(["tail", job.head, job.tail_key], job.gold, decision.outcome)
            for index, _ in job.waiters:
                self._finish(index, decision.outcome, keyed=True)
            return
        engine._head_fails.add(key)
        for tail, tail_outcome in zip(job.tails, decision.per_tail, strict=False):
            engine._decided_tail[(*key, tail)] = tail_outcome
            if tail_outcome is not None:
                self._remember(["tail", job.head, tail], job.gold, tail_outcome)
        if job.tail_key is not None:  # never judge the same tail twice: undecided means the plain call
            engine._decided_tail.setdefault((*key, job.tail_key), None)
        for index, prepared in job.waiters:
            self._route(index, prepared)

    # -- full path

    def _full(self, index: int) -> None:
        task = self.tasks[index]
        key = (task.completion, task.gold, task.truncated)
        outcome = self.full_done.get(key)
        if outcome is not None:
            self._finish(index, outcome, keyed=False)
            return
        waiters = self.full_waiters.get(key)
        if waiters is None:
            self.full_waiters[key] = [index]
            self.full_queue.append(key)
            self.engine.stats.full += 1
        else:
            waiters.append(index)

    def _graded(self, key: tuple[str, str, bool], result: Any) -> None:
        if isinstance(result, ItemFailure):
            self._count(result)
        outcome = self._failure(result) if isinstance(result, ItemFailure) else result
        self.full_done[key] = outcome
        for index in self.full_waiters.pop(key):
            self._finish(index, outcome, keyed=False)

    # -- the persistent cache

    def _served(self, key: tuple[Any, ...]) -> None:
        if self.cache is not None and key in self.engine._from_cache:
            self.engine.stats.cache_samples += 1
            self.cache.served(self.key_prefix)

    def _remember(self, answer: list[Any], gold: str, outcome: GradeOutcome) -> None:
        if self.cache is not None:
            self.cache.put(self.key_prefix, answer, gold, outcome)


def _timed_out(kind: str, result: Any) -> bool:
    """Whether a step's result is a timeout (the pool's wall-clock limit or the grader's own)."""
    if isinstance(result, ItemFailure):
        return result.kind == "timeout"
    if kind == "prepare":
        return isinstance(result, Prepared) and result.head == ("timeout",)
    if kind == "judge":
        decision = cast(Decision, result)
        outcomes = [decision.outcome] if decision.outcome is not None else list(decision.per_tail)
        return any(o is not None and o.verdict == "timeout" for o in outcomes)
    return isinstance(result, GradeOutcome) and result.verdict == "timeout"


def grade_many(
    tasks: Sequence[GradeTask],
    *,
    grader_id: str,
    workers: int | None = None,
    timeout: float = 10.0,
    on_result: Callable[[GradeTask, GradeOutcome], None] | None = None,
) -> list[GradeOutcome]:
    """Grade ``tasks`` with the grader ``grader_id``; outcomes come back in input order.

    Runs :class:`rlvr_audit.grading.engine.GradingEngine` (fast path with a cache for graders
    that support it, one plain ``grade`` call per distinct sample otherwise) and shuts its
    worker processes down afterwards.

    Args:
        tasks: The samples to grade.
        grader_id: A key of :data:`rlvr_audit.grading.GRADERS`; an unknown id raises
            :class:`~rlvr_audit.core.errors.UnknownNameError` before any work starts.
        workers: Worker processes (``None``: ``os.cpu_count()``; never more than tasks).
        timeout: Wall-clock seconds one step of grading one sample may take in its worker
            (counted from when the worker starts it). Past it the worker is killed and the
            sample is graded ``timeout``. Keep it above the grader's own timeouts
            (math-verify: about 3 x 2 s at worst) so that those, which cost no worker restart,
            fire first.
        on_result: Called in the calling thread with each task and its outcome as soon as it
            is known (completion order, not input order), e.g. to append to the store. An
            exception it raises stops the pool and propagates.

    Returns:
        One :class:`~rlvr_audit.grading.GradeOutcome` per task, in the order of ``tasks``.
        A worker that dies (other than by the timeout) gives ``error`` for its sample.
    """
    get_grader(grader_id)  # validates the id first, even with no tasks
    with GradingEngine(workers=workers, timeout=timeout) as engine:
        return engine.grade(tasks, grader_id=grader_id, on_result=on_result)
