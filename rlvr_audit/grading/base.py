"""What every grader is: :class:`Grader` (an id, a version, one method) and its :class:`GradeOutcome`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..core.records import VERDICTS, Verdict

__all__ = ["GradeOutcome", "Grader"]


@dataclass(frozen=True)
class GradeOutcome:
    """The result of grading one sample (what a :class:`~rlvr_audit.core.records.Grade` stores)."""

    verdict: Verdict
    """One of :data:`rlvr_audit.core.records.VERDICTS`; see :data:`rlvr_audit.core.records.Verdict`."""
    extracted: str | None
    """The answer text the grader extracted from the completion, or ``None`` if none."""
    error: str | None = None
    """Why grading failed or timed out (``error`` and ``timeout`` verdicts); else ``None``."""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {self.verdict!r}; valid verdicts: {', '.join(VERDICTS)}")


class Grader(Protocol):
    """What every grader provides. Constructed with no arguments by :func:`get_grader`."""

    grader_id: str
    """Registry id, e.g. ``math_verify``."""
    version: str
    """Implementation version plus the versions of the libraries it grades with,
    e.g. ``1+math-verify==0.9.0``; stored on every Grade."""

    def grade(self, *, completion: str, gold: str, truncated: bool) -> GradeOutcome:
        """Grade ``completion`` against the ``gold`` answer as published.

        ``truncated`` says the completion was cut at the token limit; it only changes the
        verdict when no answer can be extracted (``truncated`` instead of ``no_answer``).
        Never raises for a bad completion: failures are the ``error`` verdict.
        """
        ...
