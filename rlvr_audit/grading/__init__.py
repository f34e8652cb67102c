"""Graders: turn one completion and its gold answer into a verdict.

A grader is a small object with an id, a version and one method, :meth:`Grader.grade`. It
reads a completion as text, never executes or evaluates it, and always returns a
:class:`GradeOutcome` (a failure inside the grader is the ``error`` verdict, not an
exception). Graders are looked up by id in the explicit registry :data:`GRADERS`;
:func:`get_grader` names the valid ids when given an unknown one.

Graders that rely on signal-based timeouts (math-verify) only work in a process's main
thread; run many samples through :func:`rlvr_audit.grading.engine.grade_many`, which grades in
worker processes under a wall-clock limit per sample.

Adding a grader: one module here with a class that has ``grader_id``, ``version`` and
:meth:`Grader.grade` (see :mod:`.base`), and one line in :data:`GRADERS`.
"""

from __future__ import annotations

from ..core.errors import UnknownNameError
from .base import GradeOutcome, Grader
from .boxed_strict import BoxedStrictGrader
from .consensus import ConsensusGrader
from .math_verify import MathVerifyGrader
from .minerva import MinervaGrader
from .paper import PaperGrader

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

    Raises :class:`~rlvr_audit.core.errors.UnknownNameError` (naming the valid ids) if there is none.
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
