"""What an engine is: :class:`Engine`, and the :class:`GenRequest` / :class:`GenOutput` it exchanges."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from ...core.records import EffectiveSampling, FinishReason, Problem, SamplingProtocol

__all__ = ["Engine", "GenOutput", "GenRequest", "OutputBatch", "ProgressFn", "load_failure"]


@dataclass(frozen=True)
class GenRequest:
    """One sample to generate."""

    prompt: str
    """The exact prompt string."""
    problem: Problem
    """The problem (scripted engines answer by problem; real engines only see the prompt)."""
    sample_idx: int
    """Sample index within the problem."""
    seed: int = 0
    """This sample's seed (:func:`rlvr_audit.core.records.sample_seed`)."""


@dataclass(frozen=True)
class GenOutput:
    """What an engine returns for one request."""

    text: str
    """The completion."""
    n_tokens: int | None
    """Generated tokens, if known."""
    finish_reason: FinishReason
    """``stop``, ``length`` or ``unknown``."""


ProgressFn = Callable[[float], None]
"""Called by an engine during a call with how many of the call's samples are done so far
(fractional while rows are mid-generation), so progress moves before a batch returns."""

OutputBatch = list[tuple[int, GenOutput]]
"""Completions as they arrive: (index of the request in the call, its output)."""


class Engine(Protocol):
    """A loaded model that generates completions for prompt strings."""

    backend: str
    """Backend name (``vllm``, ``hf``, another lm-eval model type, or ``scripted``)."""

    @property
    def tokenizer(self) -> Any | None:
        """A Hugging Face tokenizer for chat-template rendering, or ``None``."""
        ...

    def sampling(self, protocol: SamplingProtocol, stop: list[str]) -> EffectiveSampling:
        """The sampling parameters this engine applies to requests of ``protocol`` (after merging
        the model's generation config where the engine was told to)."""
        ...

    def generate(
        self,
        requests: list[GenRequest],
        *,
        protocol: SamplingProtocol,
        stop: list[str],
        keep_stop: bool = False,
        progress: ProgressFn | None = None,
    ) -> Iterator[OutputBatch]:
        """Generate one completion per request, each with its request's seed, yielding outputs as
        they complete (every request exactly once); with ``keep_stop`` the stop string that ended a
        completion stays on it."""
        ...

    def close(self) -> None:
        """Release the model."""
        ...


def load_failure(model: str, backend: str, exc: BaseException) -> str:
    """One line for a model that did not load: the model, the backend and the loader's reason."""
    text = str(exc).strip()
    reason = text.splitlines()[0] if text else type(exc).__name__
    return f"cannot load model {model!r} with backend {backend!r}: {reason}"
