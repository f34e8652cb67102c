"""Rewards as plain Python: the function verl calls, and one function per reward.

verl (``reward.custom_reward_function.path: pkg://rlvr_audit.train.rewards``, ``name:
compute_score``) calls :func:`compute_score` once per response, from the worker threads of
its reward loop (``loop.run_in_executor``), with the reward's parameters from
``reward.custom_reward_function.reward_kwargs.reward``. Nothing here may rely on signals:
``SIGALRM`` time limits (math-verify's, and the graders' sympy limits) only work in a
process's main thread. So:

- extraction and string comparison run in the calling thread (pure Python, linear in the
  response: :mod:`rlvr_audit.grading.latex`);
- anything that may run long (sympy in the ``paper`` grader, the whole ``math_verify``
  grader) runs in the main thread of a worker process of a small ``pebble`` pool (started with
  ``spawn``, safe inside Ray's multi-threaded workers) under a wall-clock limit; a worker stuck
  past it is killed and the response gets reward 0.

The rewards (names as in the paper and ``rlvr_audit.core.claims.REWARDS``):

- ``ground_truth`` / ``majority_vote`` / ``incorrect``: 1 if the answer matches the row's
  label (gold answer / majority-vote label / wrong majority-vote label), checked with one of
  our graders (default ``paper``, the paper's own verifier);
- ``format_boxed``: 1 if a non-empty ``\\boxed{}`` can be extracted;
- ``random``: Bernoulli(gamma) from a hash of seed, prompt and response (reproducible in any
  process);
- ``python``: 1 if "python" occurs (case-insensitive);
- ``no_repetition``: 0 for a degenerate repeated stretch, else 1;
- ``compound``: AND / OR of rewards; any reward can be negated (``negate: true``).
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import multiprocessing
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pebble import ProcessPool
from pydantic import TypeAdapter, ValidationError

from ..analysis.behaviour import find_repetition
from ..core.configfile import describe_validation_error
from ..core.errors import ConfigError
from ..grading.boxed_strict import BoxedStrictGrader
from ..grading.latex import last_boxed, too_long
from ..grading.math_verify import MathVerifyGrader
from ..grading.paper import NeedsMainThread, PaperGrader, extract_answer, grade_answer, refuse_sympy
from .spec import (
    CompoundReward,
    FormatReward,
    LabelReward,
    NoRepetitionReward,
    PythonReward,
    RandomReward,
    RewardSpec,
)

REWARD_KWARG = "reward"
"""Name of the keyword argument (``reward_kwargs.reward``) that carries the reward spec."""

WORKERS_ENV = "RLVR_AUDIT_REWARD_WORKERS"
"""Environment variable: worker processes of the grading pool (default 2)."""


@dataclass(frozen=True)
class Sample:
    """What a reward sees of one response."""

    response: str
    """The decoded response (``solution_str``)."""
    label: str
    """The row's label (``reward_model.ground_truth``)."""
    prompt: str
    """The prompt's identity: the problem text (``extra_info.question``), else its id."""
    data_source: str
    """verl's ``data_source`` column."""


RewardFn = Callable[[Sample], float]


# --- the entry point verl calls ----------------------------------------------------------------


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str,
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> float:
    """The reward of one response (0.0 or 1.0), as verl's reward loop calls it.

    ``kwargs[reward]`` is the reward spec (a mapping, as in the experiment spec's ``reward``
    section); without it the reward is ``ground_truth`` with the ``paper`` grader. Other keyword
    arguments verl may add are ignored. Safe to call from any thread.
    """
    spec = _plain(kwargs.get(REWARD_KWARG)) or {"name": "ground_truth"}
    reward = build_reward(json.dumps(spec, sort_keys=True))
    info = _plain(extra_info) or {}
    prompt = str(info.get("question") or info.get("problem_id") or info.get("index") or "")
    sample = Sample(
        response=solution_str or "", label=str(ground_truth or ""), prompt=prompt, data_source=str(data_source)
    )
    return float(reward(sample))


def _plain(value: Any) -> Any:
    """``value`` with mappings as dicts and sequences as lists (verl hands OmegaConf containers
    and numpy arrays)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping) or hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if isinstance(value, list | tuple) or hasattr(value, "__iter__"):
        return [_plain(v) for v in value]
    return value


@functools.lru_cache(maxsize=64)
def build_reward(spec_json: str) -> RewardFn:
    """The reward function of a spec (JSON text of the experiment spec's ``reward`` section).

    Raises:
        rlvr_audit.core.errors.ConfigError: The spec is invalid (names the key).
    """
    try:
        spec = TypeAdapter(RewardSpec).validate_python(json.loads(spec_json))
    except ValidationError as exc:
        key, expected = describe_validation_error(exc)
        raise ConfigError("reward_kwargs.reward", expected, key=key) from exc
    return _make(spec)


def _make(spec: Any) -> RewardFn:
    fn: RewardFn
    if isinstance(spec, LabelReward):
        fn = functools.partial(label_reward, grader=spec.grader, timeout=spec.timeout)
    elif isinstance(spec, FormatReward):
        fn = format_reward
    elif isinstance(spec, RandomReward):
        fn = functools.partial(random_reward, gamma=spec.gamma, seed=spec.seed)
    elif isinstance(spec, PythonReward):
        fn = python_reward
    elif isinstance(spec, NoRepetitionReward):
        fn = no_repetition_reward
    elif isinstance(spec, CompoundReward):
        parts = [_make(p) for p in spec.rewards]
        combine = all if spec.op == "and" else any
        fn = functools.partial(_compound, parts=parts, combine=combine)
    else:  # pragma: no cover - the discriminated union has no other members
        raise TypeError(f"unknown reward {spec!r}")
    if spec.negate:
        inner = fn
        return lambda sample: 1.0 - inner(sample)
    return fn


def _compound(sample: Sample, *, parts: list[RewardFn], combine: Callable[[Any], bool]) -> float:
    return 1.0 if combine(part(sample) >= 0.5 for part in parts) else 0.0


# --- the rewards -------------------------------------------------------------------------------


def format_reward(sample: Sample) -> float:
    """1 if the last ``\\boxed{}`` closes and holds something other than spaces."""
    content = last_boxed(sample.response)
    return 1.0 if content is not None and content.strip() else 0.0


def python_reward(sample: Sample) -> float:
    """1 if ``python`` occurs anywhere in the response, case-insensitive."""
    return 1.0 if "python" in sample.response.lower() else 0.0


def no_repetition_reward(sample: Sample) -> float:
    """0 if :func:`rlvr_audit.analysis.behaviour.find_repetition` finds a degenerate repetition, else 1."""
    return 0.0 if find_repetition(sample.response) is not None else 1.0


def random_draw(*, seed: int, prompt: str, response: str) -> float:
    """A uniform number in [0, 1) determined by ``(seed, prompt, response)`` alone: the first 8
    bytes of SHA-256 over the three, NUL-separated, as an integer / 2**64."""
    digest = hashlib.sha256(f"{seed}\0{prompt}\0{response}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def random_reward(sample: Sample, *, gamma: float, seed: int) -> float:
    """1 with probability ``gamma``: ``random_draw(seed, prompt, response) < gamma``.

    Independent of correctness; the same response to the same prompt under the same seed
    always gets the same reward (so a run's rewards can be recomputed after the fact).
    """
    return 1.0 if random_draw(seed=seed, prompt=sample.prompt, response=sample.response) < gamma else 0.0


def label_reward(sample: Sample, *, grader: str, timeout: float) -> float:
    """1 if the response's answer matches the label under ``grader``, else 0 (also 0 when the
    check fails or runs past ``timeout`` seconds)."""
    if grader == "boxed_strict":
        outcome = BoxedStrictGrader().grade(completion=sample.response, gold=sample.label, truncated=False)
        return 1.0 if outcome.verdict == "correct" else 0.0
    if grader == "paper":
        return _paper_reward(sample, timeout)
    if grader == "math_verify":
        return _in_worker("math_verify_grade", (sample.response, sample.label), timeout)
    raise ValueError(f"unknown grader {grader!r}")


def _paper_reward(sample: Sample, timeout: float) -> float:
    """The paper's verifier: extraction and string rules here; sympy, when needed, in a worker."""
    try:
        extracted = extract_answer(sample.response)
    except Exception:
        return 0.0
    if extracted is None or too_long(extracted) is not None:
        return 0.0
    try:
        return 1.0 if grade_answer(extracted, sample.label, equal_under_sympy=refuse_sympy) else 0.0
    except NeedsMainThread:
        return _in_worker("paper_judge", (extracted, sample.label), timeout)
    except Exception:
        return 0.0


# --- the worker pool (wall-clock limits without signals in the caller) -------------------------

_pool_lock = threading.Lock()
_pool: Any = None
_pool_pid: int | None = None


def _get_pool() -> Any:
    """The process's grading pool, started on first use (again after a fork)."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            workers = max(1, int(os.environ.get(WORKERS_ENV, "2")))
            _pool = ProcessPool(max_workers=workers, context=multiprocessing.get_context("spawn"))
            _pool_pid = os.getpid()
            atexit.register(_stop_pool)
        return _pool


def _stop_pool() -> None:
    global _pool
    with _pool_lock:
        if _pool is not None and _pool_pid == os.getpid():
            _pool.stop()
            _pool.join(timeout=5)
        _pool = None


def _in_worker(task: str, args: tuple[str, str], timeout: float) -> float:
    """Run ``_worker_task(task, *args)`` in the pool under ``timeout`` seconds; 0.0 on any failure."""
    future = _get_pool().schedule(_worker_task, args=(task, *args, timeout), timeout=timeout + 1.0)
    try:
        return float(future.result())
    except Exception:  # timeout (worker killed), worker death, grader failure: no reward
        return 0.0


def _worker_task(task: str, first: str, second: str, timeout: float) -> float:
    """In a worker's main thread: the signal-limited grader call."""
    if task == "paper_judge":
        grader = _worker_grader("paper", timeout)
        outcome = grader.judge(extracted=first, gold=second)
    elif task == "math_verify_grade":
        grader = _worker_grader("math_verify", timeout)
        outcome = grader.grade(completion=first, gold=second, truncated=False)
    else:
        raise ValueError(f"unknown worker task {task!r}")
    return 1.0 if outcome.verdict == "correct" else 0.0


@functools.lru_cache(maxsize=8)
def _worker_grader(grader_id: str, timeout: float) -> Any:
    if grader_id == "paper":
        return PaperGrader(sympy_timeout=timeout)
    seconds = max(1, int(timeout))
    return MathVerifyGrader(parsing_timeout=seconds, verify_timeout=seconds)
