"""The ``minerva`` grader: lm-eval's Minerva-style extraction and equivalence, reusing lm-eval's code.

lm-eval's ``minerva_math`` task (``lm_eval/tasks/minerva_math/utils.py``) extracts the
answer from "Final Answer: The final answer is X. I hope it is correct." and normalises it
with Minerva's ``normalize_final_answer`` (Lewkowycz et al. 2022, appendix D); ``is_equiv``
then compares strings, and else ``sympy.simplify(parse_latex(a) - parse_latex(b)) == 0``.

That module cannot be imported here: its import guard asserts ``antlr4-python3-runtime``
4.11 (for sympy's ``parse_latex``), while this project installs 4.13 for math-verify
(``math-verify[antlr4_13_2]``). The functions this grader needs are pure string functions
that use none of it, so :func:`load_lm_eval_minerva` compiles exactly those definitions
(and the two constant lists they read) from the installed lm-eval source file, unchanged.
Only ``parse_latex`` is replaced (see :class:`MinervaGrader`, "Known issues").
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from ..core.errors import AuditError
from ._timeout import TimeLimitExceeded, in_main_thread, time_limit
from .base import GradeOutcome
from .latex import MAX_ANSWER_CHARS, antlr_version, clip_answer, describe, too_long

IMPLEMENTATION_VERSION = "1"
"""Version of this grader's own logic; bump it whenever a verdict could change."""

INVALID_ANSWER = "[invalidanswer]"
"""What lm-eval's ``get_unnormalized_answer`` returns when the answer sentence is missing."""

_REUSED_FUNCTIONS = ("last_boxed_only_string", "remove_boxed", "get_unnormalized_answer", "normalize_final_answer")
_REUSED_CONSTANTS = ("SUBSTITUTIONS", "REMOVED_EXPRESSIONS")


@dataclass(frozen=True)
class LmEvalMinerva:
    """lm-eval's Minerva functions, compiled from the installed ``minerva_math/utils.py``."""

    last_boxed_only_string: Callable[[str], str | None]
    """``\\boxed{...}`` / ``\\fbox{...}`` (brace-matched) or ``\\boxed X`` up to ``$``; last one."""
    remove_boxed: Callable[[str], str]
    """The content of a ``\\boxed{...}`` / ``\\boxed X`` string (asserts on anything else)."""
    get_unnormalized_answer: Callable[[str], str]
    """X from "Final Answer: The final answer is X. I hope it is correct.", else
    :data:`INVALID_ANSWER`."""
    normalize_final_answer: Callable[[str], str]
    """Minerva's answer normalisation."""
    source: Path
    """The file they were compiled from."""
    source_hash: str
    """First 12 hex digits of the SHA-256 of their source text (part of the grader version)."""


def _defined_names(node: ast.stmt) -> set[str]:
    """Names a top-level function definition or simple assignment defines."""
    if isinstance(node, ast.FunctionDef):
        return {node.name}
    if isinstance(node, ast.Assign):
        return {target.id for target in node.targets if isinstance(target, ast.Name)}
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return {node.target.id}
    return set()


@functools.cache
def load_lm_eval_minerva() -> LmEvalMinerva:
    """Compile lm-eval's Minerva answer functions from its installed source (once per process).

    Only the top-level definitions named in ``_REUSED_FUNCTIONS`` and ``_REUSED_CONSTANTS``
    are compiled, in a namespace holding just ``re``; the module's own imports (the antlr4
    version guard) are not run. The result is checked on a worked example.

    Raises:
        AuditError: lm-eval is not installed, or its file no longer defines these functions
            or they no longer behave as expected (the grader would otherwise grade wrongly).
    """
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or spec.origin is None:
        raise AuditError("the minerva grader needs lm-eval (pip install 'lm-eval>=0.4.13,<0.5')")
    path = Path(spec.origin).parent / "tasks" / "minerva_math" / "utils.py"
    try:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source, filename=str(path))
    except (OSError, SyntaxError) as exc:
        raise AuditError(f"the minerva grader cannot read lm-eval's {path}: {describe(exc)}") from exc

    wanted = set(_REUSED_FUNCTIONS) | set(_REUSED_CONSTANTS)
    nodes = [node for node in tree.body if _defined_names(node) & wanted]
    missing = wanted - set().union(*(_defined_names(node) for node in nodes))
    if missing:
        raise AuditError(
            f"lm-eval's {path} no longer defines {', '.join(sorted(missing))}; "
            f"the minerva grader reuses {', '.join(_REUSED_FUNCTIONS + _REUSED_CONSTANTS)}"
        )
    # Compiled with this module's ``from __future__ import annotations``: annotations are not
    # evaluated, so lm-eval's type hints may name what this namespace lacks.
    code = compile(ast.Module(body=nodes, type_ignores=[]), str(path), "exec")
    namespace: dict[str, Any] = {"__name__": "lm_eval.tasks.minerva_math.utils", "re": re}
    exec(code, namespace)  # lm-eval's own definitions, from its installed file
    segments = [ast.get_source_segment(source, node) or "" for node in nodes]
    loaded = LmEvalMinerva(
        last_boxed_only_string=namespace["last_boxed_only_string"],
        remove_boxed=namespace["remove_boxed"],
        get_unnormalized_answer=namespace["get_unnormalized_answer"],
        normalize_final_answer=namespace["normalize_final_answer"],
        source=path,
        source_hash=hashlib.sha256("\n".join(segments).encode()).hexdigest()[:12],
    )
    _check(loaded)
    return loaded


def _check(lm: LmEvalMinerva) -> None:
    """Raise :class:`AuditError` unless the compiled functions work on a worked example."""
    sentence = "So $x=\\frac{1}{2}$.\nFinal Answer: The final answer is $\\frac12$. I hope it is correct."
    try:
        results = (
            lm.last_boxed_only_string("so \\boxed{1} or \\boxed{\\frac{2}{3}}."),
            lm.remove_boxed("\\boxed{\\frac{2}{3}}"),
            lm.get_unnormalized_answer(sentence),
            lm.normalize_final_answer("$\\frac12$"),
        )
    except Exception as exc:
        raise AuditError(f"lm-eval's Minerva functions in {lm.source} fail: {describe(exc)}") from exc
    expected = ("\\boxed{\\frac{2}{3}}", "\\frac{2}{3}", "$\\frac12$", "\\frac{1}{2}")
    if results != expected:
        raise AuditError(f"lm-eval's Minerva functions in {lm.source} changed: {results!r}, expected {expected!r}")


@functools.lru_cache(maxsize=4096)
def _parse(latex: str) -> Any:
    """``latex`` parsed by latex2sympy2_extended (cached: gold answers repeat); raises on failure."""
    from latex2sympy2_extended import latex2sympy  # heavy (sympy and the ANTLR parser): only when grading

    return latex2sympy(latex)


def sympy_equivalent(x1: str, x2: str) -> bool:
    """lm-eval's ``is_equiv`` after its string check: ``simplify(parse(x1) - parse(x2)) == 0``.

    The parser is latex2sympy2_extended's ``latex2sympy`` instead of sympy's ``parse_latex``.
    As in lm-eval, any failure to parse, subtract or simplify means "not equivalent". Must run
    under a time limit.
    """
    import sympy  # heavy (about a second): only when an answer needs symbolic comparison

    try:
        difference = _parse(x1) - _parse(x2)
        return bool(sympy.simplify(difference) == 0)
    except Exception:
        return False


class MinervaGrader:
    """lm-eval's Minerva grading (``minerva_math``): answer sentence, Minerva normalisation, sympy.

    Two steps (the grading engine caches the second on ``(grader, extracted, gold)``):

    - :meth:`extract`: X from the first "Final Answer: The final answer is X. I hope it is
      correct." (lm-eval's ``get_unnormalized_answer``); if there is no such sentence, the
      content of the last ``\\boxed{...}`` (``last_boxed_only_string`` + ``remove_boxed``, the
      functions lm-eval applies to reference solutions). Then ``normalize_final_answer``.
      ``None`` when neither is found or the answer normalises to the empty string.
    - :meth:`judge`: lm-eval's ``is_equiv(extracted, normalize_final_answer(gold))``:
      ``correct`` if the strings are equal, else if ``simplify(a - b) == 0`` after parsing
      both (:func:`sympy_equivalent`); ``incorrect`` otherwise, including when either side
      does not parse (as in lm-eval).

    :meth:`grade` runs both; ``truncated`` (cut at the token limit) or ``no_answer`` when
    nothing is extracted. ``timeout`` when parsing and simplifying take longer than
    ``timeout`` seconds (lm-eval's 5 s ``SIGALRM`` limit; main thread only, the pool's
    wall-clock limit covers code stuck in C); ``error`` for an answer over 1000 characters
    or when the sympy step is needed off the main thread.

    Known issues:

    - ``is_equiv`` needs sympy's ANTLR LaTeX parser, which requires
      ``antlr4-python3-runtime`` 4.11; this project pins 4.13 for math-verify. The parse is
      done by ``latex2sympy2_extended`` instead (the ANTLR 4.13 parser math-verify uses),
      followed by lm-eval's own test, ``simplify(a - b) == 0``. The two parsers mostly agree,
      but not always: latex2sympy2_extended lower-cases symbols, reads ``(1,2)`` as an open
      interval and ``1 \\pm \\sqrt{2}`` as a set, and parses some text sympy's parser rejects;
      so a few answers that lm-eval grades wrong for failing to parse may be graded here by
      value. String-equal answers (the common case) are unaffected.
    - lm-eval grades a timeout as wrong; here it is the ``timeout`` verdict.
    - lm-eval's ``minerva_math`` reads only the answer sentence (its prompt asks for it);
      the box fallback is this grader's, so that completions from box-asking prompts are
      not all ``no_answer``. The sentence is matched case-sensitively and the first one wins.
    - lm-eval's ``remove_boxed`` only accepts ``\\boxed``; a last ``\\fbox{X}`` is read as X here.
    - Inherited from ``normalize_final_answer``: only the part after the last ``=`` is kept
      (``x = 5`` is ``5``, ``5x - 7y + 11z + 4 = 0`` is ``0``); unit words (``cm``, ``feet``,
      ``degrees``, ...) and ``\\text{...}`` wrappers are removed; spaces are removed, so
      ``a``/``an`` followed by a space disappear from text answers.
    """

    grader_id = "minerva"

    def __init__(self, *, timeout: float = 5.0) -> None:
        """Compile lm-eval's functions and import sympy; ``timeout`` is in seconds (> 0)."""
        if not timeout > 0:
            raise ValueError(f"timeout must be positive seconds, got {timeout!r}")
        import latex2sympy2_extended  # noqa: F401 - fail at construction, not mid-run
        import sympy  # noqa: F401

        self.timeout = float(timeout)
        self._lm = load_lm_eval_minerva()
        self.version = (
            f"{IMPLEMENTATION_VERSION}+lm-eval=={metadata.version('lm_eval')}"
            f"+minerva_math-{self._lm.source_hash}"
            f"+latex2sympy2_extended=={metadata.version('latex2sympy2_extended')}"
            f"+sympy=={metadata.version('sympy')}"
            f"+antlr4-python3-runtime=={antlr_version()}"
        )

    def with_time_scale(self, factor: float) -> MinervaGrader:
        """The same grader with its time limit multiplied by ``factor`` (engine retries)."""
        return MinervaGrader(timeout=self.timeout * factor)

    def extract(self, completion: str) -> str | None:
        """The normalised answer from the answer sentence, else from the last box; or ``None``."""
        answer = self._lm.get_unnormalized_answer(completion)
        if answer == INVALID_ANSWER:
            boxed = self._lm.last_boxed_only_string(completion)
            if boxed is None:
                return None
            if boxed.startswith("\\fbox{") and boxed.endswith("}"):
                answer = boxed[len("\\fbox{") : -1]
            else:
                try:
                    answer = self._lm.remove_boxed(boxed)
                except AssertionError:  # "\boxedx{...}": not a box lm-eval can read
                    return None
        if len(answer) > MAX_ANSWER_CHARS:
            return clip_answer(answer)
        return self._lm.normalize_final_answer(answer) or None

    def normalize_gold(self, gold: str) -> str:
        """The gold answer as lm-eval compares it: ``normalize_final_answer(gold)``."""
        return self._lm.normalize_final_answer(gold)

    def judge(self, *, extracted: str, gold: str) -> GradeOutcome:
        """lm-eval's ``is_equiv`` as a verdict; depends only on ``extracted`` and ``gold``."""
        rejected = too_long(extracted)
        if rejected is not None:
            return rejected
        try:
            target = self.normalize_gold(gold)
        except Exception as exc:  # a grader reports failures as verdicts, never raises
            return GradeOutcome("error", extracted, f"normalising the gold answer failed: {describe(exc)}")
        if extracted and extracted == target:
            return GradeOutcome("correct", extracted)
        if not in_main_thread():
            return GradeOutcome(
                "error", extracted, "the sympy step only runs in a process's main thread; use grade_many"
            )
        try:
            with time_limit(self.timeout) as limit:
                equal = sympy_equivalent(extracted, target)
        except TimeLimitExceeded:
            return self._timed_out(extracted)
        if limit.fired:
            return self._timed_out(extracted)
        return GradeOutcome("correct" if equal else "incorrect", extracted)

    def _timed_out(self, extracted: str) -> GradeOutcome:
        return GradeOutcome("timeout", extracted, f"comparing with the gold answer took over {self.timeout:g} s")

    def grade(self, *, completion: str, gold: str, truncated: bool) -> GradeOutcome:
        """:meth:`extract`, then :meth:`judge`; ``truncated``/``no_answer`` when nothing is extracted."""
        try:
            extracted = self.extract(completion)
        except Exception as exc:
            return GradeOutcome("error", None, f"extracting the answer failed: {describe(exc)}")
        if extracted is None:
            return GradeOutcome("truncated" if truncated else "no_answer", None)
        return self.judge(extracted=extracted, gold=gold)
