"""The ``consensus`` grader: one verdict from ``math_verify``, ``paper`` and ``boxed_strict``.

Each grader is wrong in its own way (the grader truth set, ``rlvr_audit/grading/data/grader_truth.jsonl``,
shows how): ``math_verify`` has the best equivalence checking but reads prose answers with
fixed pattern priorities and misses answers the last sentence states (it takes ``90`` from
"2250 - 6 x 360 = 90 degrees ... the final answer is east"); ``paper`` (Qwen2.5-Math's
extraction, then the last number) finds those but rejects unreduced or reformatted boxed
answers; ``boxed_strict`` only reads the last box; and both prose readers pick numbers out of
responses that were cut off mid-derivation. The rule (version 2):

1. **The response has a final box** (``boxed_strict`` extracted one): ``math_verify``'s
   outcome. With a box every grader reads the same answer and ``math_verify``'s equivalence
   checking is the most complete.
2. **No final box, and the response is finished** (its text ends a sentence or a formula:
   ``.``, ``!``, ``?``, a closing bracket, ``$``, ``$$``, ``\\]``, ``**`` or a closing code
   fence): ``correct`` when ``math_verify`` *or* ``paper`` grades
   it correct (the first that does, ``math_verify`` first); otherwise ``math_verify``'s
   outcome. Each reads prose differently and each misses answers the other finds.
3. **No final box, and the response stops mid-sentence**: not ``correct``. A number a reader
   finds in an unfinished derivation is not an answer the response committed to; the outcome
   is ``math_verify``'s, turned into ``incorrect`` if it was ``correct``.

Like every grader, the ``truncated`` flag (cut at the token limit) only turns ``no_answer``
into ``truncated``; whether the text was cut is read from the text itself, which also catches
generations whose engine did not report why they ended.

``minerva`` is not a member: on the truth set it never accepted an answer ``math_verify``
rejected. The outcome keeps the deciding member's extracted answer and error, so a
``no_answer``, ``timeout`` or ``error`` of ``math_verify`` passes through.

How the rule was chosen, and how it failed once: version 1 (rules 1 and 2 for every prose
answer) was chosen on the ``tune`` split of truth set v1 and measured once on its held-out
split, where it lost to ``math_verify`` (93/100 against 95/100: two of the prose answers only
``paper`` accepted were numbers taken from cut-off text). That held-out split was then retired
into ``tune`` (the truth set's ``history``). Version 2 was chosen on the ``tune`` split only (339
cases then; 26 of them have since been withdrawn from the truth set), as the most accurate of a
fixed family of rules over the members' verdicts, the presence of a box and the response's
ending (majority votes, re-grading the last paragraphs or last 500 characters, with and without
``paper``). On the current ``tune`` split (313 cases) it is still the most accurate:
``math_verify`` alone is right on 287, version 1 on 289, version 2 on 290, a majority of three
or four graders on at most 263 (it adds prose answers only ``paper`` reads and turns away prose
"answers" in cut-off text). It was then measured once on held-out split v3 (100 cases labelled
and frozen before any grader ran on them): ``consensus`` 91/100, ``math_verify`` 89,
``minerva`` 87, ``paper`` 84, ``boxed_strict`` 84. The lead over ``math_verify`` rests on two
discordant cases (both cut-off texts from which ``math_verify`` took a number), so it is not
significant. ``benchmarks/grader_truth.py`` prints these figures.

Known issues: a response that committed to its answer and was then cut off while re-checking
is graded incorrect (truth-set category ``truncated``) unless the answer is boxed; a finished
response stuck in a loop, or one that ends undecided between values, is still credited when a
member picks the gold value out of it; a boxed expression that restates the problem or is left
unsimplified where the problem asks to simplify is credited when ``math_verify`` finds it equal
to the gold (both seen on held-out split v3); the rule only decides between its members, so an
answer every member misreads (a Unicode ``π``, a midpoint in prose) stays wrong. It costs what
its members cost together.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .base import GradeOutcome, Grader
from .boxed_strict import BoxedStrictGrader
from .math_verify import MathVerifyGrader
from .paper import PaperGrader

IMPLEMENTATION_VERSION = "2"
"""Version of the rule itself; bump it whenever a verdict could change."""

_MEMBER_CLASSES: dict[str, type[Grader]] = {
    "math_verify": MathVerifyGrader,
    "paper": PaperGrader,
    "boxed_strict": BoxedStrictGrader,
}
"""The member graders by registry id (the registry in :mod:`rlvr_audit.grading` holds this
grader too, so the members are named here rather than looked up there)."""

MEMBERS: tuple[str, ...] = tuple(_MEMBER_CLASSES)
"""The graders the rule reads, in the order their versions appear in the consensus version."""


_FINISHED = re.compile(r"(?:[.!?)\]}$]|\*\*|```)\s*$")
"""A response's text ends a sentence or a formula (see rule 2 in the module docstring)."""


def finished(completion: str) -> bool:
    """Whether ``completion`` ends a sentence or a formula: its last character (spaces aside) is
    ``.``, ``!``, ``?``, ``)``, ``]``, ``}`` or ``$``, or it ends with ``**`` or a code fence."""
    return _FINISHED.search(completion) is not None


def consensus_outcome(outcomes: Mapping[str, GradeOutcome], *, completion: str) -> GradeOutcome:
    """The consensus verdict from the members' outcomes on one sample (see the module docstring).

    ``outcomes`` maps each of :data:`MEMBERS` to its outcome on ``completion`` (e.g. from
    stored grades); a missing member is an error, not a guess.
    """
    missing = [m for m in MEMBERS if m not in outcomes]
    if missing:
        raise ValueError(f"consensus needs the outcomes of {', '.join(MEMBERS)}; missing: {', '.join(missing)}")
    first = outcomes["math_verify"]
    if outcomes["boxed_strict"].extracted is not None:
        return first
    if not finished(completion):
        return GradeOutcome("incorrect", first.extracted) if first.verdict == "correct" else first
    for member in ("math_verify", "paper"):
        if outcomes[member].verdict == "correct":
            return outcomes[member]
    return first


class ConsensusGrader:
    """Consensus of math_verify, paper and boxed_strict: math_verify with a box, else either reader if finished.

    The rule, its evidence and its known issues are in :mod:`rlvr_audit.grading.consensus`.
    Its version is the rule's version followed by each member's id and version
    (``1(math_verify=...;paper=...;boxed_strict=...)``), so a new version of any member is a
    new consensus version.
    """

    grader_id = "consensus"

    def __init__(self) -> None:
        """Construct the members."""
        self.members: dict[str, Grader] = {member: cls() for member, cls in _MEMBER_CLASSES.items()}
        members = ";".join(f"{member}={grader.version}" for member, grader in self.members.items())
        self.version = f"{IMPLEMENTATION_VERSION}({members})"

    def grade(self, *, completion: str, gold: str, truncated: bool) -> GradeOutcome:
        """Grade with every member, then apply :func:`consensus_outcome`. Never raises."""
        outcomes = {
            member: grader.grade(completion=completion, gold=gold, truncated=truncated)
            for member, grader in self.members.items()
        }
        return consensus_outcome(outcomes, completion=completion)


__all__ = ["IMPLEMENTATION_VERSION", "MEMBERS", "ConsensusGrader", "consensus_outcome", "finished"]
