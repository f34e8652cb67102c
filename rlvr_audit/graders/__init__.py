"""Graders: turn one completion and its gold answer into a verdict.

A grader is a small object with an id, a version and one method, :meth:`Grader.grade`. It
reads a completion as text, never executes or evaluates it, and always returns a
:class:`GradeOutcome` (a failure inside the grader is the ``error`` verdict, not an
exception). Graders are looked up by id in the explicit registry :data:`GRADERS`;
:func:`get_grader` names the valid ids when given an unknown one.

Graders that rely on signal-based timeouts (math-verify) only work in a process's main
thread; run many samples through :func:`rlvr_audit.graders.pool.grade_many`, which grades in
worker processes under a wall-clock limit per sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..errors import UnknownNameError
from ..records import VERDICTS, Verdict


@dataclass(frozen=True)
class GradeOutcome:
    """The result of grading one sample (what a :class:`~rlvr_audit.records.Grade` stores)."""

    verdict: Verdict
    """One of :data:`rlvr_audit.records.VERDICTS`; see :data:`rlvr_audit.records.Verdict`."""
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


# Imported after GradeOutcome and Grader are defined: the grader modules import them from here.
from .boxed_strict import BoxedStrictGrader  # noqa: E402
from .consensus import ConsensusGrader  # noqa: E402
from .math_verify import MathVerifyGrader  # noqa: E402
from .minerva import MinervaGrader  # noqa: E402
from .paper import PaperGrader  # noqa: E402

GRADERS: dict[str, type[Grader]] = {
    "math_verify": MathVerifyGrader,
    "paper": PaperGrader,
    "boxed_strict": BoxedStrictGrader,
    "minerva": MinervaGrader,
    "consensus": ConsensusGrader,
}
"""The grader registry: id -> grader class (constructed with no arguments)."""


def get_grader(grader_id: str) -> Grader:
    """A new instance of the grader registered as ``grader_id``.

    Raises :class:`~rlvr_audit.errors.UnknownNameError` (naming the valid ids) if there is none.
    """
    try:
        cls = GRADERS[grader_id]
    except KeyError:
        raise UnknownNameError("grader", grader_id, GRADERS) from None
    return cls()


__all__ = [
    "GRADERS",
    "BoxedStrictGrader",
    "ConsensusGrader",
    "GradeOutcome",
    "Grader",
    "MathVerifyGrader",
    "MinervaGrader",
    "PaperGrader",
    "get_grader",
]
