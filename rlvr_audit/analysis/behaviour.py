"""What a model's responses *do*: code reasoning, truncation, repetition, missing answers.

"Spurious Rewards" (arXiv 2506.10947) explains why any reward lifts Qwen2.5-Math by a change of
strategy: the base model writes Python-like code without running it in 65% of its MATH-500
answers (60.9% accurate, against 35.0% for language-only answers), and after RLVR with any
reward it does so in over 90%. This module measures that behaviour on stored generations, and
the other behaviours that often explain a "gain" (a base model that runs out of tokens, loops,
or never writes a final answer). It only reads text: model output is never executed, compiled
or evaluated (no :func:`exec`, :func:`eval`, :func:`compile` or :mod:`ast`; regular
expressions and array comparisons only, each linear in the length of the response).

Code reasoning
--------------
Two definitions, in the explicit registry :data:`CODE_DEFINITIONS`; both read the same
:class:`CodeEvidence` from :func:`detect_code`, and :func:`is_code_reasoning` applies one.

``code_lines`` (the default, :data:`DEFAULT_DEFINITION`): the response *writes a program*.
It holds at least one counted fenced code block, or at least :data:`MIN_UNFENCED_CODE_LINES`
code-style lines outside fences and outside LaTeX math.

- A *fenced block* is a Markdown fence: a line whose first non-blank characters are three or
  more backticks (or tildes), up to the next line holding only a fence of the same character
  at least as long (an unclosed fence runs to the end of the response). Its language is the
  first word of the info string, lower-cased. The block *counts* as code when its content is
  not blank and the language is a programming language (:data:`PROGRAMMING_LANGUAGES`:
  ``python``, ``py``, ``sympy``, ``cpp``, ``java``, ``bash``, ...), or when it is unlabelled or
  labelled with a language in neither list and at least one of its lines is a (strong, see
  below) code-style line.
  Blocks labelled as output or markup (:data:`NON_CODE_LANGUAGES`: ``output``, ``text``,
  ``latex``, ``asy``, ...) never count. Fences opened in the middle of a line are not fences.
- *LaTeX math regions* are ``$...$``, ``$$...$$``, ``\\(...\\)``, ``\\[...\\]`` and the display
  environments of :data:`MATH_ENVIRONMENTS` (``\\begin{align}...\\end{align}``, ...); an escaped
  ``\\$`` is not a delimiter, a region ends at the first closer of its kind and cannot hold
  another opener of its kind, and an opener without a closer is literal text. They are blanked
  out (line breaks kept) before lines are read, so ``$x = 5$`` or ``\\[a_{n+1} = a_n + 1\\]``
  are never code.
- A *code-style line* is judged on the line stripped of indentation, a ``>>>`` prompt, a
  wrapping pair of single backticks, string literals and a trailing ``#`` comment, and is one of
  (:data:`CODE_LINE_RULES` names each rule): a ``def``/``class`` header; ``import`` or
  ``from ... import`` of dotted names; a whole-line ``print(...)``; a whole-line call of a dotted
  name (``sp.solve(eq, x)``) or of a code-only function (:data:`CODE_FUNCTIONS`: ``symbols``,
  ``range``, ``len``, ...); ``for <targets> in ...:``, ``while ...:``, ``if/elif ...:``,
  ``else:``, ``try:``, ``except ...:``, ``with ... as name:``; ``return ...``; a line starting
  with a ``>>>`` prompt; an assignment ``target = expr`` (or ``+=`` and the other augmented
  operators) whose target is a Python name, attribute, subscript or tuple of them and which
  shows code syntax: an augmented operator, an attribute or subscript target, a snake_case
  name (``total_cost``, not ``a_n``), or a right-hand side with a string literal, ``**``,
  ``//``, ``==``, ``!=``, a bracket ``[``, ``lambda``, ``True``/``False``/``None``, a dotted
  call or a call of a code-only function. An assignment without code syntax (``answer = 42``,
  rule ``plain_assignment``) is *weak*: it counts only in a run of consecutive code-style
  lines (blank lines allowed) that holds a strong one, so ``answer = 42`` above
  ``print(answer)`` is code while ``x = 5`` in a language-only solution is not. ``y = 2x + 3``,
  ``f(x) = x^2`` or ``a_{n+1} = a_n + 1`` are not assignments at all.
  Never code-style: lines longer than :data:`MAX_CODE_LINE_CHARS` characters, lines with a
  LaTeX command (a backslash before a letter) or, for assignments, a ``^``, and *prose* lines,
  which hold three words in a row (alphabetic tokens that are not Python keywords, separated
  by single spaces), as in ``print(the sum of digits)``.

``mentions_python``: the paper's reward rule and its code-frequency measure: ``"python"``
appears anywhere in the response, case-insensitive (so ``"Let's solve this using Python."``
counts, with or without code, and a program with no mention of Python does not).

Every threshold and rule above was set so that the hand-labelled responses of
``tests/behaviour_cases.json`` (Qwen2.5-Math-style MATH-500 answers: fenced and unfenced code,
prose that mentions Python, LaTeX that looks like code, other languages, output blocks) all
come out as labelled under both definitions.

Known issues: pseudo-code written in prose syntax (``for i from 1 to n``) and unfenced code
in languages other than Python are language-only under ``code_lines``; an inline snippet in a
sentence (``we call `solve(x**2 - 4, x)` ``) is not a code line; LaTeX outside math delimiters
is read as text (its backslash commands keep it from being code).

Behaviour flags
---------------
:func:`flag_completion` (and :func:`response_behaviour` for a record): ``truncated``
(``finish_reason == "length"``), ``repetition`` (:func:`find_repetition`: degenerate
repetition, a unit repeated consecutively more than 10 times over at least 100 characters),
``empty`` (blank completion), ``boxed_nothing`` (no final answer in a box: the last
``\\boxed{...}``/``\\fbox{...}`` is blank or never closes, or there is none) and ``n_tokens``.

Behaviour classes
-----------------
:func:`behaviour_class` gives each response one class of :data:`BEHAVIOUR_CLASSES`, the first
that applies in this priority order: ``degenerate`` (a degenerate repetition), ``truncated``
(stopped at the token limit), ``no_answer`` (no non-blank boxed final answer; empty responses
too), ``code`` (code reasoning under the chosen definition), ``clean`` (language only, with a
boxed answer). :func:`problem_class` gives a problem the class most of its samples have (a tie
goes to the class first in priority). Imported responses carry no finish reason or token
count, so whether they were truncated cannot be known (:attr:`BehaviourFlags.truncation_known`):
they are never ``truncated``, and a cut-off one is ``degenerate`` or ``no_answer`` by its text.
The gain anatomy (:mod:`rlvr_audit.analysis.anatomy`) splits a paired gain by these classes.

Per unit and per checkpoint pair: the statistics of these flags (code frequency, accuracy given
code, transition tables) are in :mod:`rlvr_audit.analysis.behaviour_stats`.

One module, one concept (just over 800 lines): the per-response detectors, which share the
text scanning (fences, math regions) and are tested together on hand-labelled responses.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from ..core.errors import UnknownNameError
from ..core.records import Generation
from ..grading.latex import last_boxed

__all__ = [
    "BEHAVIOUR_CLASSES",
    "CLASS_DESCRIPTIONS",
    "CODE_DEFINITIONS",
    "CODE_FUNCTIONS",
    "CODE_LINE_RULES",
    "DEFAULT_DEFINITION",
    "MATH_ENVIRONMENTS",
    "MAX_CODE_LINE_CHARS",
    "MIN_UNFENCED_CODE_LINES",
    "NON_CODE_LANGUAGES",
    "PROGRAMMING_LANGUAGES",
    "REPEAT_MIN_COPIES",
    "REPEAT_MIN_SPAN",
    "BehaviourClass",
    "BehaviourFlags",
    "CodeDefinition",
    "CodeEvidence",
    "CodeLine",
    "FencedBlock",
    "Repetition",
    "ResponseBehaviour",
    "behaviour_class",
    "classify_completion",
    "detect_code",
    "find_repetition",
    "flag_completion",
    "get_definition",
    "is_code_reasoning",
    "problem_class",
    "response_behaviour",
]

# --------------------------------------------------------------------------------------
# Constants of the code detector
# --------------------------------------------------------------------------------------

MIN_UNFENCED_CODE_LINES = 2
"""Code-style lines outside fences that make a response code reasoning under ``code_lines``.

One line alone (a stray ``return x`` or ``print(y)``) is too weak; every unfenced program in
the hand-labelled cases has at least two (``import`` + call, assignment + ``print``, ...)."""

MAX_CODE_LINE_CHARS = 500
"""Lines longer than this are never code-style lines (keeps every per-line regex bounded)."""

PROGRAMMING_LANGUAGES: frozenset[str] = frozenset(
    {
        "python", "py", "python3", "py3", "ipython", "ipython3", "pycon", "sympy", "sage", "sagemath",
        "c", "cpp", "c++", "cxx", "csharp", "c#", "cs", "java", "javascript", "js", "typescript", "ts",
        "r", "matlab", "octave", "julia", "jl", "rust", "rs", "go", "golang", "ruby", "rb", "haskell",
        "hs", "mathematica", "wolfram", "wl", "maxima", "maple", "gap", "pari", "perl", "php", "scala",
        "kotlin", "swift", "lua", "fortran", "pascal", "lean", "lean4", "coq", "isabelle", "prolog",
        "bash", "sh", "shell", "zsh", "powershell",
    }
)  # fmt: skip
"""Fence labels that mark a program: a non-blank block with one of them counts as code."""

NON_CODE_LANGUAGES: frozenset[str] = frozenset(
    {
        "output", "stdout", "result", "results", "text", "txt", "plaintext", "plain", "latex", "tex",
        "math", "katex", "markdown", "md", "json", "yaml", "yml", "csv", "asy", "asymptote", "diff",
    }
)  # fmt: skip
"""Fence labels of output, prose or markup: such a block never counts as code. ``asy`` is here
because models copy the problem's Asymptote diagram; that is not code reasoning."""

CODE_FUNCTIONS: frozenset[str] = frozenset(
    {
        "print", "range", "len", "int", "float", "str", "list", "dict", "set", "tuple", "sorted",
        "enumerate", "zip", "map", "filter", "isinstance", "round", "pow", "divmod", "bin", "hex",
        "symbols", "Symbol", "solve", "solveset", "linsolve", "nsolve", "simplify", "nsimplify",
        "sympify", "expand", "factorint", "Rational", "Eq", "Matrix", "integrate", "diff", "limit",
        "summation", "binomial", "factorial", "isprime", "primefactors", "divisors", "totient",
    }
)  # fmt: skip
"""Functions whose call marks code (``x = symbols('x')``, ``solve(eq, x)``). Names that plain-text
math also writes as functions (``sqrt``, ``sin``, ``log``, ``gcd``, ``max``, ``abs``, ...) are
left out: ``r = sqrt(2)`` alone is not code."""

MATH_ENVIRONMENTS: frozenset[str] = frozenset(
    {
        "equation", "equation*", "align", "align*", "alignat", "alignat*", "flalign", "flalign*",
        "gather", "gather*", "multline", "multline*", "eqnarray", "eqnarray*", "displaymath", "math",
    }
)  # fmt: skip
"""LaTeX display environments blanked out as math regions (``aligned``/``cases`` only occur
inside other math regions)."""

_MATH_ENV_NAMES = "|".join(re.escape(e) for e in sorted(MATH_ENVIRONMENTS, key=len, reverse=True))
_MATH_REGION = re.compile(
    r"\\[\\$]"  # escapes \\ and \$: consumed so that they open nothing
    r"|\$\$(?:[^$\\]|\\[\s\S])*\$\$"
    r"|\$(?:[^$\\]|\\[\s\S])*\$"
    r"|\\\[(?:[^\\]|\\[^\[\]])*\\\]"
    r"|\\\((?:[^\\]|\\[^()])*\\\)"
    rf"|\\begin\{{({_MATH_ENV_NAMES})\}}(?:(?!\\(?:begin|end)\{{\1\}})[\s\S])*\\end\{{\1\}}"
)
"""A LaTeX math region (or an escape, left as is). Contents never hold their own opener."""

CODE_LINE_RULES: tuple[str, ...] = (
    "def",
    "class",
    "import",
    "from_import",
    "print",
    "call",
    "for",
    "while",
    "if",
    "else",
    "try",
    "except",
    "with",
    "return",
    "repl",
    "assignment",
    "plain_assignment",
)
"""Names of the code-style line rules, as :attr:`CodeLine.rule` reports them (module docstring)."""

# --------------------------------------------------------------------------------------
# Evidence records
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FencedBlock:
    """One Markdown fenced block of a response."""

    start_line: int
    """Line number (from 1) of the opening fence."""
    end_line: int
    """Line number of the closing fence, or of the response's last line when unclosed."""
    language: str
    """First word of the info string, lower-cased (``""`` for an unlabelled fence)."""
    closed: bool
    """Whether a closing fence was found."""
    is_code: bool
    """Whether the block counts as code (see the module docstring)."""
    reason: str
    """Why it counts or not, in words (``"labelled python"``, ``"output block"``, ...)."""


@dataclass(frozen=True)
class CodeLine:
    """A code-style line found outside fenced blocks and LaTeX math."""

    line: int
    """Line number, from 1."""
    rule: str
    """Which rule of :data:`CODE_LINE_RULES` it matched."""
    text: str
    """The line as written (stripped, clipped to 200 characters)."""


@dataclass(frozen=True)
class CodeEvidence:
    """What :func:`detect_code` found in one response; every definition decides from this."""

    n_lines: int
    """Lines in the response (``text.split("\\n")``; 0 for an empty response)."""
    fenced_blocks: tuple[FencedBlock, ...]
    """Every fenced block, code or not, in order."""
    code_lines: tuple[CodeLine, ...]
    """Code-style lines outside fenced blocks and LaTeX math, in order."""
    python_mentions: tuple[int, ...]
    """Line numbers holding ``"python"`` (any case), each line once, in order."""

    @property
    def code_blocks(self) -> tuple[FencedBlock, ...]:
        """The fenced blocks that count as code."""
        return tuple(b for b in self.fenced_blocks if b.is_code)

    def fired(self, definition: str = "code_lines") -> bool:
        """Whether the response is code reasoning under ``definition`` (a key of :data:`CODE_DEFINITIONS`)."""
        return get_definition(definition).decide(self)

    @property
    def definitions_fired(self) -> tuple[str, ...]:
        """The names of the definitions under which the response is code reasoning."""
        return tuple(name for name, d in CODE_DEFINITIONS.items() if d.decide(self))


@dataclass(frozen=True)
class CodeDefinition:
    """A definition of "code reasoning": a name, its rule in words, and its decision."""

    name: str
    """Registry key."""
    description: str
    """The rule, in one sentence (shown in reports)."""
    decide: Callable[[CodeEvidence], bool] = field(repr=False)
    """Decision from the evidence."""


def _decide_code_lines(evidence: CodeEvidence) -> bool:
    return bool(evidence.code_blocks) or len(evidence.code_lines) >= MIN_UNFENCED_CODE_LINES


def _decide_mentions_python(evidence: CodeEvidence) -> bool:
    return bool(evidence.python_mentions)


CODE_DEFINITIONS: dict[str, CodeDefinition] = {
    "code_lines": CodeDefinition(
        name="code_lines",
        description=(
            "a fenced code block in a programming language (or an unlabelled one holding a code-style line), "
            f"or at least {MIN_UNFENCED_CODE_LINES} code-style lines outside fences and LaTeX math"
        ),
        decide=_decide_code_lines,
    ),
    "mentions_python": CodeDefinition(
        name="mentions_python",
        description="the paper's rule: 'python' appears anywhere in the response (case-insensitive)",
        decide=_decide_mentions_python,
    ),
}
"""The definitions of code reasoning, by name. ``code_lines`` is ours and the default;
``mentions_python`` is the paper's reward rule, recorded so both can be reported."""

DEFAULT_DEFINITION = "code_lines"
"""The definition used when none is named."""


def get_definition(name: str) -> CodeDefinition:
    """The definition registered as ``name``; :class:`~rlvr_audit.core.errors.UnknownNameError`
    (naming the valid ones) for any other name."""
    try:
        return CODE_DEFINITIONS[name]
    except (KeyError, TypeError):
        raise UnknownNameError("code definition", str(name), CODE_DEFINITIONS) from None


# --------------------------------------------------------------------------------------
# The detector
# --------------------------------------------------------------------------------------

_FENCE = re.compile(r"[ \t]*(`{3,}|~{3,})(.*)")
_PYTHON = re.compile("python", re.IGNORECASE)
_NOT_NEWLINE = re.compile(r"[^\n]")

_STRING = re.compile(r"""(?<![A-Za-z0-9_])[rbfuRBFU]{0,2}(?:'[^'\n]*'|"[^"\n]*")""")
"""A one-line string literal; a quote right after a letter is an apostrophe (``Alice's``), not one."""
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]")
_WORD_RUN = re.compile(r"[A-Za-z]+(?: [A-Za-z]+){2,}")
_KEYWORDS = frozenset(keyword.kwlist)

_ID = r"[A-Za-z_][A-Za-z0-9_]*"
_DOTTED = rf"{_ID}(?:\.{_ID})*"
_TARGET = rf"{_DOTTED}(?:\[[^\]\n]*\])?"
_TARGETS = rf"{_TARGET}(?:\s*,\s*{_TARGET})*"
_ALIAS = rf"{_DOTTED}(?:\s+as\s+{_ID})?"
_NAMES = rf"{_ID}(?:\s+as\s+{_ID})?(?:\s*,\s*{_ID}(?:\s+as\s+{_ID})?)*"

_CANDIDATE = re.compile(
    r"(?:def|class|import|from|print|for|while|if|elif|else|try|except|with|return)\b"
    rf"|{_DOTTED}\s*(?:\[[^\]\n]*\]\s*)?(?:,\s*{_TARGET}\s*)*(?:\*\*|//|>>|<<|[-+*/%&|^@])?=(?!=)"
    rf"|{_DOTTED}\s*\("
)
"""Cheap first test: only lines starting like a statement are read by the rules."""

_STATEMENTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("def", re.compile(rf"def\s+{_ID}\s*\(.*\)\s*(?:->\s*[^:]+)?:")),
    ("class", re.compile(rf"class\s+{_ID}\s*(?:\(.*\))?\s*:")),
    ("import", re.compile(rf"import\s+{_ALIAS}(?:\s*,\s*{_ALIAS})*")),
    ("from_import", re.compile(rf"from\s+\.*{_DOTTED}\s+import\s+(?:\*|{_NAMES}|\(\s*{_NAMES}\s*,?\s*\))")),
    ("print", re.compile(r"print\s*\(.*\)\s*;?")),
    ("for", re.compile(rf"for\s+\(?{_TARGETS}\)?\s+in\s+\S.*:")),
    ("while", re.compile(r"while\s+\S.*:")),
    ("if", re.compile(r"(?:el)?if\s+\S.*:")),
    ("else", re.compile(r"else\s*:")),
    ("try", re.compile(r"try\s*:")),
    ("except", re.compile(r"except\b.*:")),
    ("with", re.compile(rf"with\s+\S.*\s+as\s+{_ID}\s*:")),
    ("return", re.compile(r"return(?:\s+\S.*)?")),
)
_RULES: dict[str, tuple[str, re.Pattern[str]]] = {
    {"from_import": "from"}.get(name, name): (name, pattern) for name, pattern in _STATEMENTS
}
"""Statement rules by the line's first word (``elif`` added below)."""
_RULES["elif"] = _RULES["if"]
_FIRST_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SNAKE_CASE = re.compile(r"\b[A-Za-z]{2,}_[A-Za-z0-9]{2,}")
"""A snake_case name (``total_cost``, ``num_divisors``), not a math subscript (``a_n``, ``x_1``)."""
_CALL = re.compile(rf"(?P<callee>{_DOTTED})\s*\(.*\)\s*;?")
_ASSIGN = re.compile(rf"(?P<lhs>{_TARGETS})\s*(?P<op>(?:\*\*|//|>>|<<|[-+*/%&|^@])?=)(?!=)\s*(?P<rhs>\S.*)")
_CODEISH_RHS = re.compile(
    rf"\*\*|//|==|!=|\[|\blambda\b|\b(?:True|False|None)\b|{_ID}\.{_ID}\s*\(|\b(?:{'|'.join(sorted(CODE_FUNCTIONS))})\s*\("
)


def _clean_line(line: str) -> tuple[str, bool, bool]:
    """``(statement, had_string, repl)``: ``line`` stripped of indentation, a ``>>>``/``...``
    prompt, wrapping single backticks, string literals (replaced by ``""``) and a trailing
    comment."""
    s = line.strip()
    repl = False
    if s.startswith(">>>"):
        s, repl = s[3:].strip(), True
    elif s.startswith("... "):
        s = s[4:].strip()
    if len(s) >= 2 and s[0] == "`" and s[-1] == "`" and s.count("`") == 2:
        s = s[1:-1].strip()
    had_string = False
    if "'" in s or '"' in s:
        s, n = _STRING.subn('""', s)
        had_string = n > 0
    hash_at = s.find("#")
    if hash_at >= 0:
        s = s[:hash_at].rstrip()
    return s, had_string, repl


def _is_prose(statement: str) -> bool:
    """Three alphabetic non-keyword words in a row separated by single spaces."""
    for match in _WORD_RUN.finditer(statement):
        run = 0
        for word in match.group().split(" "):
            run = 0 if word in _KEYWORDS else run + 1
            if run >= 3:
                return True
    return False


def _code_rule(line: str) -> str | None:
    """The rule of :data:`CODE_LINE_RULES` that ``line`` matches, or ``None``.

    ``plain_assignment`` (an assignment without code syntax, ``answer = 42``) is *weak*: it is
    returned here, but counts as a code-style line only next to a strong one (:func:`_code_lines`).
    """
    if len(line) > MAX_CODE_LINE_CHARS:
        return None
    head = line.lstrip()
    if not head.startswith((">>>", "... ", "`")) and not _CANDIDATE.match(head):
        return None  # fast path: most lines do not start like a statement
    statement, had_string, repl = _clean_line(line)
    if repl and statement:
        return "repl"
    if not statement or not _CANDIDATE.match(statement):
        return None
    if _LATEX_COMMAND.search(statement) or _is_prose(statement):
        return None
    first = _FIRST_WORD.match(statement)
    rule = _RULES.get(first.group()) if first is not None else None
    if rule is not None and rule[1].fullmatch(statement):
        return rule[0]
    call = _CALL.fullmatch(statement)
    if call is not None:
        callee = call.group("callee")
        if "." in callee or callee in CODE_FUNCTIONS:
            return "call"
    assign = _ASSIGN.fullmatch(statement)
    if assign is not None and "^" not in statement:
        lhs, op, rhs = assign.group("lhs"), assign.group("op"), assign.group("rhs")
        if (
            op != "="
            or had_string
            or "." in lhs
            or "[" in lhs
            or _CODEISH_RHS.search(rhs)
            or _SNAKE_CASE.search(statement)
        ):
            return "assignment"
        if op == "=" and "," not in lhs:
            return "plain_assignment"
    return None


def _code_lines(lines: list[str]) -> list[tuple[int, str]]:
    """``(index, rule)`` of the code-style lines among ``lines`` (fences and math already blanked).

    A ``plain_assignment`` counts only inside a *run* that holds a strong code-style line: a run
    is a maximal sequence of lines that are each code-style (strong or plain) or blank, so
    ``answer = 42`` followed by ``print(answer)`` is two code lines, while ``x = 5`` and
    ``y = 7`` in a language-only solution are none.
    """
    found: list[tuple[int, str]] = []
    run: list[tuple[int, str]] = []
    for index, line in enumerate(lines):
        if not line or line.isspace():
            continue
        rule = _code_rule(line)
        if rule is None:
            if any(r != "plain_assignment" for _, r in run):
                found.extend(run)
            run = []
            continue
        run.append((index, rule))
    if any(r != "plain_assignment" for _, r in run):
        found.extend(run)
    return found


def _fence_language(info: str) -> str:
    word = info.strip().split(maxsplit=1)[0] if info.strip() else ""
    return word.strip("{}").lstrip(".").lower()


def _scan_fences(lines: list[str]) -> tuple[list[FencedBlock], list[bool]]:
    """The fenced blocks of ``lines`` and, per line, whether it belongs to one (fences included)."""
    blocks: list[FencedBlock] = []
    fenced = [False] * len(lines)
    i, n = 0, len(lines)
    while i < n:
        opening = _FENCE.match(lines[i]) if lines[i].lstrip(" \t")[:3] in ("```", "~~~") else None
        if opening is None:
            i += 1
            continue
        marker, info = opening.group(1), opening.group(2)
        if marker[0] == "`" and "`" in info:  # inline code spanning backticks, not a fence
            i += 1
            continue
        char, width = marker[0], len(marker)
        j = i + 1
        while j < n:
            closing = _FENCE.match(lines[j]) if lines[j].lstrip(" \t")[:3] == marker[:3] else None
            if (
                closing is not None
                and closing.group(1)[0] == char
                and len(closing.group(1)) >= width
                and not closing.group(2).strip()
            ):
                break
            j += 1
        closed = j < n
        end = j if closed else n - 1
        for k in range(i, end + 1):
            fenced[k] = True
        content = lines[i + 1 : j]
        blocks.append(_judge_block(i + 1, end + 1, _fence_language(info), closed, content))
        i = end + 1
    return blocks, fenced


def _judge_block(start: int, end: int, language: str, closed: bool, content: list[str]) -> FencedBlock:
    if not any(line.strip() for line in content):
        return FencedBlock(start, end, language, closed, False, "empty block")
    if language in PROGRAMMING_LANGUAGES:
        return FencedBlock(start, end, language, closed, True, f"labelled {language}")
    if language in NON_CODE_LANGUAGES:
        return FencedBlock(start, end, language, closed, False, f"{language} block")
    for offset, line in enumerate(content):
        rule = _code_rule(line)
        if rule is not None and rule != "plain_assignment":
            what = f"labelled {language!r}" if language else "unlabelled"
            return FencedBlock(start, end, language, closed, True, f"{what}, code line {start + 1 + offset} ({rule})")
    what = f"labelled {language!r}" if language else "unlabelled"
    return FencedBlock(start, end, language, closed, False, f"{what}, no code-style line")


def _blank(match: re.Match[str]) -> str:
    text = match.group()
    if len(text) == 2 and text[0] == "\\":  # an escape (\\\\ or \\$): kept
        return text
    return _NOT_NEWLINE.sub(" ", text) if "\n" in text else " " * len(text)


def _mask_math(text: str) -> str:
    """``text`` with every LaTeX math region replaced by spaces (line breaks kept).

    One regular-expression pass (:data:`_MATH_REGION`). A region's content cannot hold its own
    opener, so an unclosed opener only scans to the next opener of its kind: linear time, also
    on 100,000 unclosed ``\\[``.
    """
    if "$" not in text and "\\" not in text:
        return text
    return _MATH_REGION.sub(_blank, text)


def _line_numbers(text: str, offsets: Iterable[int]) -> tuple[int, ...]:
    """Distinct 1-based line numbers of increasing character ``offsets`` in ``text``, in order."""
    seen: list[int] = []
    line, previous = 1, 0
    for offset in offsets:
        line += text.count("\n", previous, offset)
        previous = offset
        if not seen or seen[-1] != line:
            seen.append(line)
    return tuple(seen)


def detect_code(text: str) -> CodeEvidence:
    """Read ``text`` (one response) for code: fenced blocks, code-style lines, mentions of Python.

    Lines are ``text.split("\\n")`` with a trailing ``\\r`` dropped, numbered from 1. Fenced
    blocks are found first; the lines outside them have their LaTeX math blanked out and are
    then matched against the code-style line rules (module docstring). Nothing is executed,
    compiled or parsed as Python. Runs in linear time: a few milliseconds for 30,000
    characters, about 0.1 ms for a typical MATH-500 answer; a line longer than
    :data:`MAX_CODE_LINE_CHARS` is skipped by the line rules.

    Raises TypeError when ``text`` is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f"detect_code needs the response text as a str; got {type(text).__name__}")
    mentions = _line_numbers(text, (m.start() for m in _PYTHON.finditer(text)))
    if not text:
        return CodeEvidence(0, (), (), mentions)
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    blocks, fenced = _scan_fences(lines)
    outside = "\n".join("" if in_block else line for line, in_block in zip(lines, fenced, strict=True))
    masked = _mask_math(outside).split("\n")
    found = tuple(CodeLine(i + 1, rule, lines[i].strip()[:200]) for i, rule in _code_lines(masked))
    return CodeEvidence(len(lines), tuple(blocks), found, mentions)


def is_code_reasoning(text: str, definition: str = DEFAULT_DEFINITION) -> bool:
    """Whether ``text`` is code reasoning under ``definition`` (a key of :data:`CODE_DEFINITIONS`).

    Raises :class:`~rlvr_audit.core.errors.UnknownNameError` (naming the valid definitions) for an
    unknown definition, TypeError when ``text`` is not a string.
    """
    rule = get_definition(definition)
    return rule.decide(detect_code(text))


# --------------------------------------------------------------------------------------
# Degenerate repetition
# --------------------------------------------------------------------------------------

REPEAT_MIN_COPIES = 11
"""A unit must repeat *more than 10 times* in a row (the paper's ``no_repetition`` reward count)."""

REPEAT_MIN_SPAN = 100
"""...and the repeated stretch must be at least this many characters long, so that ``"000000000000"``
or a short rule ``"-----------"`` is not degenerate."""

_WINDOW = 32
"""Length of the probe windows of :func:`find_repetition` (any stretch that qualifies holds one)."""


@dataclass(frozen=True)
class Repetition:
    """A degenerate repetition found by :func:`find_repetition`.

    Lengths are measured in the response with each whitespace run replaced by one space.
    """

    period: int
    """Length of the unit, in characters."""
    copies: int
    """Whole copies of the unit in the repeated stretch (at least :data:`REPEAT_MIN_COPIES`)."""
    start: int
    """Character offset in the response where the stretch starts."""
    span: int
    """Length of the stretch, in characters (the last copy may be partial)."""
    unit: str
    """The unit, clipped to 200 characters."""


def _first_run(eq: npt.NDArray[np.bool_], need: int) -> tuple[int, int] | None:
    """``(start, length)`` of the first run of ``True`` in ``eq`` at least ``need`` long, or ``None``."""
    if need > eq.size:
        return None
    block = max(1, need // 2)  # a run of >= need holds an aligned all-True block of this size
    m = eq.size // block
    if m == 0 or not eq[: m * block].reshape(m, block).all(axis=1).any():
        return None
    edges = np.diff(np.concatenate(([0], eq.view(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    lengths = np.flatnonzero(edges == -1) - starts
    keep = np.flatnonzero(lengths >= need)
    if keep.size == 0:
        return None
    return int(starts[keep[0]]), int(lengths[keep[0]])


def _original_offset(text: str, index: int) -> int:
    """Offset in ``text`` of character ``index`` of ``" ".join(text.split())``."""
    seen = 0
    for match in re.finditer(r"\S+", text):
        length = match.end() - match.start()
        if index <= seen + length:
            return match.start() + (index - seen)
        seen += length + 1
    return len(text)


def find_repetition(text: str) -> Repetition | None:
    """The first degenerate repetition in ``text``, or ``None``.

    Definition: with every whitespace run of ``text`` replaced by one space (so a line repeated
    with different spacing or line breaks is the same unit), a stretch of at least
    :data:`REPEAT_MIN_SPAN` characters made of one unit of any length repeated consecutively at
    least :data:`REPEAT_MIN_COPIES` times (*more than 10 times*, the count of the paper's
    ``no_repetition`` reward; the last copy may be partial): ``"0.3333..."`` (unit ``"3"``),
    ``"\\frac{1}{2}+\\frac{1}{2}+..."``, or the same paragraph again and again until the token
    limit. The repetition reported is the first one met scanning from the start, with the
    shortest unit that recurs there.

    This is stricter than the paper's reward ("a substring repeats more than 10 times"), which
    also counts non-consecutive repeats: normal text that reuses a phrase (``"we have"``) is
    never degenerate here, while a model stuck in a loop always is. Known issues: a loop whose
    copies differ (a counter: ``"Step 12: ... Step 13: ..."``) is not a repetition; runs of
    blank lines or spaces are not either (whitespace is collapsed).

    Method: a qualifying stretch with unit length ``p`` contains a window of :data:`_WINDOW`
    characters starting at a multiple of :data:`_WINDOW` that occurs again ``p`` characters
    later. So each such window is looked up (``str.find``) in the next ``len / 11`` characters,
    and only the distances found are checked, each once, by a vectorised comparison of the text
    with itself shifted. Normal text has almost no such recurrences: about a millisecond for
    30,000 characters, and as fast on 100,000 identical characters (found at the first window).
    """
    if not isinstance(text, str):
        raise TypeError(f"find_repetition needs a str; got {type(text).__name__}")
    if len(text) < REPEAT_MIN_SPAN:
        return None
    flat = " ".join(text.split())
    n = len(flat)
    if n < REPEAT_MIN_SPAN:
        return None
    longest = n // REPEAT_MIN_COPIES
    codes: npt.NDArray[np.uint32] | None = None
    checked: set[int] = set()
    for a in range(0, n - _WINDOW + 1, _WINDOW):
        window = flat[a : a + _WINDOW]
        stop = min(n, a + longest + _WINDOW)
        j = flat.find(window, a + 1, stop)
        while j >= 0:
            period = j - a
            if period not in checked:
                checked.add(period)
                if codes is None:
                    codes = np.frombuffer(flat.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
                stretch = max(REPEAT_MIN_COPIES * period, REPEAT_MIN_SPAN)
                run = _first_run(codes[:-period] == codes[period:], stretch - period)
                if run is not None:
                    start, length = run
                    span = length + period
                    unit = flat[start : start + period][:200]
                    return Repetition(period, span // period, _original_offset(text, start), span, unit)
            j = flat.find(window, j + 1, stop)
    return None


# --------------------------------------------------------------------------------------
# Per-response flags
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BehaviourFlags:
    """Behaviour flags of one response (see :func:`flag_completion`)."""

    truncated: bool
    """Generation stopped at the token limit (``finish_reason == "length"``)."""
    repetition: bool
    """The response holds a degenerate repetition (:func:`find_repetition`)."""
    empty: bool
    """The completion is empty or only whitespace."""
    boxed_nothing: bool
    """No boxed final answer: the last ``\\boxed{...}``/``\\fbox{...}`` is blank or never closes,
    or there is none (an empty response is also ``boxed_nothing``)."""
    n_tokens: int | None
    """Generated tokens, from the record; ``None`` when the engine did not report them."""
    repeat: Repetition | None = None
    """The repetition found, when :attr:`repetition`."""
    truncation_known: bool = True
    """Whether :attr:`truncated` is known: the record has a finish reason other than ``unknown``
    or a token count. Imported samples have neither (their sources do not record it)."""


def flag_completion(completion: str, *, finish_reason: str = "unknown", n_tokens: int | None = None) -> BehaviourFlags:
    """The behaviour flags of one completion.

    ``finish_reason`` is the record's (``stop``, ``length`` or ``unknown``); ``n_tokens`` is
    passed through. "Boxed" is the final-answer marker of the Qwen2.5-Math prompts; under a
    template that asks for another marker (``<answer>`` tags) ``boxed_nothing`` measures only
    the absence of a box.

    Raises TypeError for a non-string completion, ValueError for an unknown finish reason or a
    negative token count.
    """
    if not isinstance(completion, str):
        raise TypeError(f"completion must be a str; got {type(completion).__name__}")
    if finish_reason not in ("stop", "length", "unknown"):
        raise ValueError(f"finish_reason must be 'stop', 'length' or 'unknown'; got {finish_reason!r}")
    if n_tokens is not None and (isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or n_tokens < 0):
        raise ValueError(f"n_tokens must be a non-negative integer or None; got {n_tokens!r}")
    repeat = find_repetition(completion)
    box = last_boxed(completion)
    return BehaviourFlags(
        truncated=finish_reason == "length",
        repetition=repeat is not None,
        empty=not completion.strip(),
        boxed_nothing=box is None or not box.strip(),
        n_tokens=n_tokens,
        repeat=repeat,
        truncation_known=finish_reason != "unknown" or n_tokens is not None,
    )


@dataclass(frozen=True)
class ResponseBehaviour:
    """Everything this module measures about one stored response, computed once."""

    problem_id: str
    """Problem id."""
    sample_idx: int
    """Sample index within the problem."""
    code: dict[str, bool]
    """Code reasoning under each definition of :data:`CODE_DEFINITIONS`, by name."""
    flags: BehaviourFlags
    """Truncation, repetition, empty, boxed-nothing, tokens."""


def response_behaviour(generation: Generation) -> ResponseBehaviour:
    """Code reasoning (every definition) and behaviour flags of one :class:`~rlvr_audit.core.records.Generation`."""
    evidence = detect_code(generation.completion)
    return ResponseBehaviour(
        problem_id=generation.problem_id,
        sample_idx=generation.sample_idx,
        code={name: d.decide(evidence) for name, d in CODE_DEFINITIONS.items()},
        flags=flag_completion(
            generation.completion, finish_reason=generation.finish_reason, n_tokens=generation.n_tokens
        ),
    )


# --------------------------------------------------------------------------------------
# Behaviour classes
# --------------------------------------------------------------------------------------

BehaviourClass = Literal["degenerate", "truncated", "no_answer", "code", "clean"]
"""One response's (or one problem's) behaviour class."""

BEHAVIOUR_CLASSES: tuple[BehaviourClass, ...] = ("degenerate", "truncated", "no_answer", "code", "clean")
"""The behaviour classes, in priority order: a response gets the first that applies."""

CLASS_DESCRIPTIONS: dict[BehaviourClass, str] = {
    "degenerate": "degenerate repetition (a stretch repeated more than 10 times in a row, at least 100 characters)",
    "truncated": "stopped at the token limit (finish reason 'length'), without degenerate repetition",
    "no_answer": "no non-blank boxed final answer (empty responses included)",
    "code": "code reasoning (unexecuted), with a boxed answer",
    "clean": "language only, with a boxed answer",
}
"""Each class in words (shown in reports)."""


def behaviour_class(behaviour: ResponseBehaviour, definition: str = DEFAULT_DEFINITION) -> BehaviourClass:
    """The class of one classified response: the first of :data:`BEHAVIOUR_CLASSES` that applies.

    ``truncated`` needs a known truncation (:attr:`BehaviourFlags.truncation_known`); an imported
    response is classed by its text only. Raises
    :class:`~rlvr_audit.core.errors.UnknownNameError` for an unknown code ``definition``.
    """
    get_definition(definition)
    flags = behaviour.flags
    if flags.repetition:
        return "degenerate"
    if flags.truncated:
        return "truncated"
    if flags.boxed_nothing:
        return "no_answer"
    if behaviour.code[definition]:
        return "code"
    return "clean"


def classify_completion(
    completion: str,
    *,
    finish_reason: str = "unknown",
    n_tokens: int | None = None,
    definition: str = DEFAULT_DEFINITION,
) -> BehaviourClass:
    """The behaviour class of one completion (see :func:`behaviour_class` and :func:`flag_completion`)."""
    evidence = detect_code(completion)
    flags = flag_completion(completion, finish_reason=finish_reason, n_tokens=n_tokens)
    code = {name: d.decide(evidence) for name, d in CODE_DEFINITIONS.items()}
    return behaviour_class(ResponseBehaviour("", 0, code, flags), definition)


def problem_class(classes: Iterable[str]) -> BehaviourClass:
    """A problem's class from its samples' classes: the most frequent; a tie goes to the class
    first in :data:`BEHAVIOUR_CLASSES` (so one degenerate and one clean sample make a
    degenerate problem). Raises ValueError for no classes or an unknown class."""
    counts = dict.fromkeys(BEHAVIOUR_CLASSES, 0)
    n = 0
    for c in classes:
        if c not in counts:
            raise ValueError(f"unknown behaviour class {c!r}; valid: {', '.join(BEHAVIOUR_CLASSES)}")
        counts[c] += 1
        n += 1
    if n == 0:
        raise ValueError("a problem needs at least one sample's class")
    best = max(counts.values())
    return next(c for c in BEHAVIOUR_CLASSES if counts[c] == best)


# --------------------------------------------------------------------------------------
# Records -> per-problem arrays
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# Per-unit summary
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# Transition table (the paper's Table 2)
# --------------------------------------------------------------------------------------
