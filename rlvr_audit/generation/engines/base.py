"""What an engine is: :class:`Engine`, and the :class:`GenRequest` / :class:`GenOutput` it exchanges."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ...core.records import FinishReason, Problem, SamplingProtocol

__all__ = ["Engine", "GenOutput", "GenRequest"]


@dataclass(frozen=True)
class GenRequest:
    """One sample to generate."""

    prompt: str
    """The exact prompt string."""
    problem: Problem
    """The problem (scripted engines answer by problem; real engines only see the prompt)."""
    sample_idx: int
    """Sample index within the problem."""


@dataclass(frozen=True)
class GenOutput:
    """What an engine returns for one request."""

    text: str
    """The completion."""
    n_tokens: int | None
    """Generated tokens, if known."""
    finish_reason: FinishReason
    """``stop``, ``length`` or ``unknown``."""


class Engine(Protocol):
    """A loaded model that generates completions for prompt strings."""

    backend: str
    """Backend name (lm-eval model type or ``scripted``)."""

    @property
    def tokenizer(self) -> Any | None:
        """A Hugging Face tokenizer for chat-template rendering, or ``None``."""
        ...

    def generate(
        self,
        requests: list[GenRequest],
        *,
        protocol: SamplingProtocol,
        seed: int,
        stop: list[str],
        keep_stop: bool = False,
    ) -> list[GenOutput]:
        """Generate one completion per request, all with ``seed`` (one sample round); with
        ``keep_stop`` the stop string that ended a completion stays on it."""
        ...

    def close(self) -> None:
        """Release the model."""
        ...
