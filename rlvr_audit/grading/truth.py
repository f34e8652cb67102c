"""The grader truth set: real responses whose correctness was decided by careful reading.

``rlvr_audit/grading/data/grader_truth.jsonl`` (package data: an installed rlvr-audit has it;
:func:`load_truth_set` without a path reads it through :mod:`importlib.resources`) holds cases
drawn from real model outputs (the Sky-T1 generations in ``../shared/data/real_generations``:
every sample on which our graders disagree, a sample of those on which they agree, and a random
draw of the rest) and from MATH-500 reference solutions (verbatim, or with their final part
rewritten into a wrong, restated, unreduced, interval, set, unit, percent, looping or unanswered
variant; such cases are marked ``constructed``). Each case is the final part of a response, the
gold answer as published, and a verdict a careful human grader gives (``correct`` /
``incorrect``), with a one-line reason and a category. It answers "which grader is right":
``benchmarks/grader_truth.py`` scores every grader on it, and the ``consensus`` grader's rule
was chosen on its ``tune`` split.

File format (JSON lines):

- line 1 is the header record (:class:`TruthHeader`): what the file is, the categories, how
  the cases were labelled, and the **held-out split**: ``n_held_out`` cases with
  ``"split": "held_out"`` on which no grader change may be tuned; the rest are ``tune``.
- every other line is one :class:`TruthCase`.

:func:`load_truth_set` validates the whole file and raises :class:`TruthSetError` naming the
file and line for a missing or unknown field, an unknown category or split, a repeated id, or
split counts that do not match the header.

Labelling rules (also in the header's ``labelling``): the verdict is about the response's
final answer, judged as a mathematician grading an exam would: any equivalent form of the gold
is correct (order of a set, units, ``x =``, a decimal for a fraction); an answer the response
commits to and never takes back counts even when it is not boxed or the text is cut off or
loops afterwards; a response that never commits (cut off mid-derivation, or ending on an
unresolved contradiction between values) is incorrect, whatever numbers it mentions.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..core.errors import UsageError

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:
        from importlib.abc import Traversable

CATEGORIES: dict[str, str] = {
    "plain": "a final answer in the usual (boxed) form; the case turns only on its value",
    "wrong": "a clear final answer that differs from the gold",
    "unboxed": "the final answer is stated in prose or display math, not in a box",
    "notation": "the same value written differently (\\dfrac, 5.5 for 11/2, Unicode pi, base subscripts)",
    "unreduced": "an equivalent but unsimplified value (65/169 for 5/13, 2^8 for 256)",
    "equation": "the answer or the gold is written as an equation (x = 5, y = -2x, a plane)",
    "set": "several values: a list, set, tuple, point or vector (order, spacing, brackets)",
    "interval": "an interval or a union of intervals",
    "unit": "units or words around the number (cm, degrees, dollars, '9 customers', 12th grade)",
    "percent": "a percentage answer or a percent sign around the number",
    "text": "a word answer (a name, a direction, even/odd) or a number written as a word",
    "choice": "a multiple-choice letter",
    "gold_format": "the published gold is oddly written (142.0, \\frac9{19}, 10,\\!080, .35625)",
    "multiple_answers": "the response gives several candidate answers as its result",
    "restated": "the extracted expression restates the problem rather than answering it",
    "truncated": "cut off (or looping) after committing to an answer that nothing later takes back",
    "degenerate_loop": "the response repeats itself until it is cut off",
    "no_answer": "the response never commits to a final answer (cut off mid-derivation or undecided)",
}
"""Category id -> what kind of case it is (what makes it hard for a grader)."""

SPLITS: tuple[str, ...] = ("tune", "held_out")
"""``tune``: rules may be chosen on these cases; ``held_out``: only ever measured."""

TRUTH_KIND = "rlvr-audit grader truth set"
"""The header's ``kind``: marks the first line as this file's header."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class TruthHeader(_Strict):
    """The first line of the truth-set file."""

    kind: Literal["rlvr-audit grader truth set"]
    """Always :data:`TRUTH_KIND`."""
    schema_version: Literal[1]
    """Version of this file format."""
    n_cases: int = Field(ge=1)
    """Number of case lines that follow."""
    n_held_out: int = Field(ge=1)
    """How many of them have ``"split": "held_out"``."""
    held_out: str
    """The held-out rule in words: no grader change is tuned on these cases."""
    split_rule: str
    """How the held-out cases were drawn."""
    labelling: str
    """How verdicts were decided (the rules a labeller follows)."""
    sources: list[str]
    """Where the responses come from."""
    categories: dict[str, str]
    """The category vocabulary with descriptions; must equal :data:`CATEGORIES`."""
    second_pass: list[str]
    """Ids of the cases re-read because the label disagreed with every grader."""
    history: list[str]
    """What happened to the splits, oldest first (a held-out split that was consulted is retired)."""


class TruthCase(_Strict):
    """One adjudicated response."""

    id: str = Field(min_length=1)
    """Unique case id, e.g. ``real/c27/test/algebra/2193.json``."""
    split: Literal["tune", "held_out"]
    """See :data:`SPLITS`."""
    source: str
    """File (and item) the response was taken from."""
    task: str
    """Task id of the problem (``math500``, ``aime24``, ``amc``)."""
    problem_id: str
    """Problem id in the task file."""
    problem: str
    """The problem text."""
    gold: str
    """The gold answer exactly as the task file publishes it."""
    response_tail: str
    """The final part of the response (the whole response when short): what graders grade."""
    response_chars: int = Field(ge=0)
    """Length of the whole response in characters (``len(response_tail)`` or more)."""
    truncated: bool
    """What graders are told about the generation being cut at the token limit."""
    verdict: Literal["correct", "incorrect"]
    """The adjudicated verdict."""
    category: str
    """A key of :data:`CATEGORIES`."""
    reason: str = Field(min_length=1)
    """One line: why the verdict."""
    constructed: bool
    """``True`` when the case was made for the truth set rather than taken as published: a
    reference solution whose final part was rewritten into a variant (a wrong value, a restated
    problem, an unreduced form, a loop, a cut-off, ...) or paired with another problem's gold.
    ``False`` for model outputs and verbatim reference solutions graded against their own gold."""


class TruthSetError(UsageError):
    """A truth-set file that does not follow the format: names the file and line."""


@dataclass(frozen=True)
class TruthSet:
    """A loaded, validated truth set."""

    header: TruthHeader
    """The header record."""
    cases: tuple[TruthCase, ...]
    """Every case, in file order."""

    def split(self, name: str) -> tuple[TruthCase, ...]:
        """The cases of one split (``tune``, ``held_out``; ``all`` for every case)."""
        if name == "all":
            return self.cases
        if name not in SPLITS:
            raise UsageError(f"unknown split {name!r}; valid splits: all, {', '.join(SPLITS)}")
        return tuple(c for c in self.cases if c.split == name)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "record"
        if err["type"] == "missing":
            parts.append(f"missing field {where!r}")
        elif err["type"] == "extra_forbidden":
            parts.append(f"unknown field {where!r}")
        else:
            parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def parse_truth_lines(lines: list[str], *, path: str = "<truth set>") -> TruthSet:
    """Validate the lines of a truth-set file (see the module docstring for the format)."""
    if not lines or not lines[0].strip():
        raise TruthSetError(f"{path}: line 1: expected the header record, found an empty line")
    records: list[tuple[int, dict[str, object]]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise TruthSetError(f"{path}: line {number}: empty line")
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TruthSetError(f"{path}: line {number}: not JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise TruthSetError(f"{path}: line {number}: expected a JSON object")
        records.append((number, obj))
    try:
        header = TruthHeader.model_validate(records[0][1])
    except ValidationError as exc:
        raise TruthSetError(f"{path}: line 1 (header): {_describe(exc)}") from None
    if header.categories != CATEGORIES:
        raise TruthSetError(
            f"{path}: line 1 (header): categories differ from rlvr_audit.grading.truth.CATEGORIES; update both together"
        )
    cases: list[TruthCase] = []
    seen: dict[str, int] = {}
    for number, obj in records[1:]:
        try:
            case = TruthCase.model_validate(obj)
        except ValidationError as exc:
            raise TruthSetError(f"{path}: line {number}: {_describe(exc)}") from None
        if case.category not in CATEGORIES:
            raise TruthSetError(
                f"{path}: line {number}: unknown category {case.category!r}; valid categories: " + ", ".join(CATEGORIES)
            )
        if case.id in seen:
            raise TruthSetError(f"{path}: line {number}: id {case.id!r} repeats line {seen[case.id]}")
        if case.response_chars < len(case.response_tail):
            raise TruthSetError(f"{path}: line {number}: response_chars is shorter than response_tail")
        seen[case.id] = number
        cases.append(case)
    counts = Counter(c.split for c in cases)
    if len(cases) != header.n_cases:
        raise TruthSetError(f"{path}: the header says {header.n_cases} cases, the file has {len(cases)}")
    if counts["held_out"] != header.n_held_out:
        raise TruthSetError(
            f"{path}: the header says {header.n_held_out} held-out cases, the file has {counts['held_out']}"
        )
    unknown = sorted(set(header.second_pass) - set(seen))
    if unknown:
        raise TruthSetError(f"{path}: line 1 (header): second_pass names unknown case ids: {', '.join(unknown)}")
    return TruthSet(header=header, cases=tuple(cases))


TRUTH_RESOURCE = "data/grader_truth.jsonl"
"""The project's truth set, relative to the ``rlvr_audit.grading`` package (declared as package
data in ``pyproject.toml``, so a wheel ships it)."""


def truth_resource() -> Traversable:
    """The project's truth set as an :mod:`importlib.resources` resource (a file of the installed
    package, wherever and however it is installed)."""
    return files(__package__ or "rlvr_audit.grading").joinpath(TRUTH_RESOURCE)


DEFAULT_TRUTH_SET = Path(__file__).resolve().parent / TRUTH_RESOURCE
"""The project's truth set as a path on disk (the package's own copy: a source checkout or an
installed package; :func:`truth_resource` is the same file found through importlib)."""


def load_truth_set(path: Path | None = None) -> TruthSet:
    """Read and validate a truth-set file (``None``: the project's, :func:`truth_resource`);
    :class:`TruthSetError` names the line at fault."""
    source: Path | Traversable = truth_resource() if path is None else path
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise TruthSetError(f"{source}: cannot read: {exc.strerror or exc}") from None
    return parse_truth_lines(text.splitlines(), path=str(source))


__all__ = [
    "CATEGORIES",
    "DEFAULT_TRUTH_SET",
    "SPLITS",
    "TRUTH_RESOURCE",
    "TruthCase",
    "TruthHeader",
    "TruthSet",
    "TruthSetError",
    "load_truth_set",
    "parse_truth_lines",
    "truth_resource",
]
