"""A synthetic corpus of long model-like responses, for grading benchmarks and exactness tests.

:func:`build_corpus` turns benchmark problems (question, reference solution, gold answer)
into responses that look like sampled model output: a restatement of the problem, paragraphs
of LaTeX-heavy reasoning (borrowed from other problems' reference solutions, their boxes
unboxed), Python code blocks with their output, second thoughts, the problem's own solution
(unboxed), and an ending in one of the styles models use (``$\\boxed{...}$``, a bare or
displayed box, Minerva's "Final Answer: The final answer is $...$. I hope it is correct.",
"Putting everything together ...", the reference solution itself). Complete responses have
log-normal lengths (median about 3,500 characters, up to 14,000); responses cut at the token
limit loop over their reasoning up to 9,000-11,000 characters (about 3,000 tokens).

Each problem gets ``samples`` responses whose answers repeat the way sampled answers do
(:data:`_WEIGHTS`): 55% the gold answer as published, 8% the gold answer written
differently (``\\dfrac``, no spaces, ``.0``, no leading zero), 22% one of three wrong
answers fixed per problem (two near misses, a guess; drawn 6:3:1, so they recur), 5% a wrong
intermediate box before the right final one, 5% the reference solution, 3% cut at the token
limit, 2% prose with no number at all (half of them rambling up to the limit). ``hostile``
adds responses built to make a grader slow or fail (huge powers, deep braces, 200 KB of
text, stray delimiters, unicode digits). Everything is drawn from one seeded
``random.Random``, so a seed fixes the corpus.

Used by ``benchmarks/grading.py`` (throughput of the grading engine against the plain
math-verify loop) and ``tests/graders/test_engine.py`` (the engine's verdicts equal the plain
call's on every item).
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import UsageError


@dataclass(frozen=True)
class CorpusItem:
    """One response to grade."""

    problem_id: str
    """The benchmark problem it answers."""
    sample_idx: int
    """Its index among the problem's samples (hostile items: counted on after the samples)."""
    completion: str
    """The response text."""
    gold: str
    """The problem's gold answer as published."""
    truncated: bool
    """Whether the response was cut as if at the token limit."""
    kind: str
    """How it was built: ``correct``, ``variant``, ``wrong``, ``multibox``, ``truncated``,
    ``reference``, ``noanswer`` or ``hostile:<name>``."""


def load_problems(path: str | Path) -> list[dict[str, str]]:
    """Rows of a benchmark JSONL file (``id``, ``problem``, ``answer``; ``solution`` if any).

    Raises :class:`~rlvr_audit.core.errors.UsageError` naming the file when it is missing or a row
    lacks a required field.
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"benchmark file not found: {path}")
    rows: list[dict[str, str]] = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            missing = [key for key in ("id", "problem", "answer") if not isinstance(row.get(key), str)]
            if missing:
                raise UsageError(f"{path}:{number}: missing or non-text field(s) {', '.join(missing)}")
            rows.append(row)
    return rows


_KINDS = ("correct", "variant", "wrong", "multibox", "truncated", "reference", "noanswer")
_WEIGHTS = (55, 8, 22, 5, 3, 5, 2)
"""How often each kind of sample is drawn (percent)."""

_CODE = (
    "Let me verify this with Python.\n\n"
    "```python\n"
    "from sympy import Rational, sqrt, simplify, symbols, solve\n\n"
    "x = symbols('x')\n"
    "values = [Rational(k, {d}) for k in range(1, {n})]\n"
    "total = sum(v**2 for v in values)\n"
    "roots = solve(x**2 - {a}*x + {b}, x)\n"
    "print(simplify(total), roots)\n"
    "```\n"
    "```output\n"
    "{out} [{r1}, {r2}]\n"
    "```\n"
    "The computation agrees with the reasoning above: the sum is ${out}$ and the roots are "
    "${r1}$ and ${r2}$."
)

_SECOND_THOUGHTS = (
    "Wait, let me double-check the previous step. ",
    "Hmm, that does not look right; let me recompute. ",
    "Let me re-examine this more carefully. ",
    "Actually, we should check whether we have counted every case. ",
)

_OPENINGS = (
    "To solve this problem, we need to carefully analyze the given information.\n\n",
    "Let's think step by step.\n\n",
    "We are asked the following.\n\n",
)


def _unbox(text: str) -> str:
    """Reference-solution text without its boxes (``\\boxed{x}`` -> ``{x}``)."""
    return text.replace("\\boxed{", "{").replace("\\fbox{", "{")


def _solution_body(solution: str) -> str:
    """A reference solution without its final sentence (the one with the box), unboxed."""
    cut = solution.rfind("\\boxed")
    if cut > 0:
        stop = max(solution.rfind(".", 0, cut), solution.rfind("\n", 0, cut))
        solution = solution[: stop + 1] if stop > 0 else solution[:cut]
    return _unbox(solution).strip()


_INT = re.compile(r"-?\d+")
_FRAC = re.compile(r"\\[dt]?frac\{(-?\d+)\}\{(\d+)\}")


def _perturbed(text: str, rng: random.Random) -> str:
    """``text`` with one digit changed, else one sign flipped, else ``+ 1`` appended: a near miss."""
    digits = [i for i, c in enumerate(text) if c.isdigit()]
    if digits:
        at = rng.choice(digits)
        return text[:at] + str((int(text[at]) + rng.randint(1, 8)) % 10) + text[at + 1 :]
    signs = [i for i, c in enumerate(text) if c in "+-"]
    if signs:
        at = rng.choice(signs)
        return text[:at] + ("-" if text[at] == "+" else "+") + text[at + 1 :]
    return f"{text} + 1"


def _wrong_answers(gold: str, rng: random.Random) -> list[str]:
    """Three wrong answers for ``gold``, fixed per problem so that they recur: two near misses
    (off by a little, a digit or a sign) and a guess."""
    text = gold.strip()
    number = text[:-2] if text.endswith(".0") else text
    wrong: list[str] = []
    if _INT.fullmatch(number):
        value = int(number)
        wrong = [str(value + rng.choice((1, 2, -1, 10))), str(value * 2 + 1)]
    elif _FRAC.fullmatch(text):
        match = _FRAC.fullmatch(text)
        assert match is not None
        a, b = int(match.group(1)), int(match.group(2))
        wrong = [f"\\frac{{{a + 1}}}{{{b}}}", f"\\frac{{{b}}}{{{a if a else 1}}}"]
    while len(wrong) < 2:
        candidate = _perturbed(text, rng)
        if candidate != text and candidate not in wrong:
            wrong.append(candidate)
        elif len(wrong) < 2:
            wrong.append(f"{text} + {len(wrong) + 1}")
    wrong.append(str(rng.randint(2, 999)))
    return wrong


def _variant(gold: str, rng: random.Random) -> str:
    """The gold answer written differently but equivalently (or as is, if no rewrite applies)."""
    text = gold.strip()
    options = []
    if "\\frac" in text:
        options.append(text.replace("\\frac", "\\dfrac"))
    if " " in text:
        options.append(text.replace(" ", ""))
    if text.endswith(".0") and _INT.fullmatch(text[:-2]):
        options.append(text[:-2])
    if _INT.fullmatch(text) and text.startswith("0") and len(text) > 1:
        options.append(str(int(text)))
    if _INT.fullmatch(text):
        options.append(f"{text}.0")
    return rng.choice(options) if options else text


def _ending(answer: str, rng: random.Random) -> str:
    """A final sentence stating ``answer`` in one of the styles models use."""
    style = rng.randrange(6)
    if style == 0:
        return f"Therefore, the final answer is $\\boxed{{{answer}}}$."
    if style == 1:
        return f"So the answer is \\boxed{{{answer}}}."
    if style == 2:
        return f"Thus, the answer is:\n\\[\n\\boxed{{{answer}}}\n\\]"
    if style == 3:
        return f"Final Answer: The final answer is ${answer}$. I hope it is correct."
    if style == 4:
        return f"The final answer is $\\boxed{{{answer}}}$"
    return f"Putting everything together, we get $\\boxed{{{answer}}}$ as the answer."


def _code_block(rng: random.Random) -> str:
    d, n, a, b = rng.randint(2, 9), rng.randint(3, 12), rng.randint(2, 20), rng.randint(1, 50)
    return _CODE.format(
        d=d, n=n, a=a, b=b, out=f"{rng.randint(1, 999)}/{d}", r1=rng.randint(-9, 9), r2=rng.randint(10, 99)
    )


def _reasoning(problem: Mapping[str, str], others: Sequence[Mapping[str, str]], rng: random.Random, length: int) -> str:
    """About ``length`` characters of reasoning: a restatement of the problem, paragraphs
    borrowed from other problems' solutions (unboxed), code blocks with their output, second
    thoughts, and the problem's own solution (unboxed) last."""
    parts = [rng.choice(_OPENINGS) + problem["problem"].strip()]
    own = _solution_body(problem.get("solution", ""))
    size = len(parts[0]) + len(own)
    while size < length:
        if rng.random() < 0.25:
            part = _code_block(rng)
        else:
            other = rng.choice(list(others))
            part = _solution_body(other.get("solution", "") or other["problem"])
            if rng.random() < 0.4:
                part = rng.choice(_SECOND_THOUGHTS) + part
        parts.append(part)
        size += len(part) + 2
    if own:
        parts.append("Now for our problem. " + own)
    return "\n\n".join(parts)


def _length(rng: random.Random) -> int:
    """Characters of reasoning in a complete response: log-normal, median 3,000, 800 to 14,000."""
    return int(min(max(rng.lognormvariate(math.log(3000), 0.5), 800), 14000))


def _truncated(body: str, rng: random.Random) -> str:
    """A response that ran into the token limit: reasoning that loops until ~10,000 characters."""
    loop = body[len(body) // 3 :] or body
    text = body
    while len(text) < 9000:
        text += "\n\n" + rng.choice(_SECOND_THOUGHTS) + loop
    return text[: rng.randint(9000, 11000)]


def _hostile(rng: random.Random) -> list[tuple[str, str, str, bool]]:
    """``(name, completion, gold, truncated)`` for responses built to make a grader slow or fail."""
    filler = "We compute the value step by step, with $x = 12$ and $y = 3$. " * 40
    return [
        ("tower", f"{filler}\nSo the answer is $\\boxed{{10^{{10^{{10^{{10}}}}}}}}$.", "5", False),
        ("nested-braces", f"{filler}\n$\\boxed{{{'{' * 300}1{'}' * 300}}}$", "1", False),
        ("long", ("word 12 $x$ and more text " * 8000) + "\\boxed{7}", "7", False),
        ("dollar-storm", "$" * 50000 + " 5", "5", False),
        ("unclosed-box", f"{filler}\nThe answer is \\boxed{{3", "3", True),
        ("empty-box", f"{filler}\nThe answer is $\\boxed{{}}$.", "3", False),
        ("text-box", f"{filler}\nThe answer is $\\boxed{{\\text{{none of these}}}}$.", "\\text{(C)}", False),
        ("unicode-digits", f"{filler}\nThe answer is ٣٤.", "34", False),
        ("percent", f"{filler}\nThe answer is $50\\%$.", "0.5", False),
        ("stray-delimiters", f"{filler}\n\\[ \\boxed{{2}} $$ \\( \\boxed{{2}} \\] $ [\\boxed{{2}}] \n", "2", False),
        ("many-boxes", " ".join(f"\\boxed{{{rng.randint(1, 9)}}}" for _ in range(300)), "5", False),
        ("answer-words", "answer " * 3000 + "answer: $4$", "4", False),
        ("ramble-to-limit", "Let me think about this once more, slowly and carefully. " * 180, "4", True),
        ("empty", "", "1", False),
    ]


def build_corpus(
    problems: Sequence[Mapping[str, str]],
    *,
    samples: int = 8,
    seed: int = 0,
    hostile: bool = False,
) -> list[CorpusItem]:
    """``samples`` realistic responses per problem (see the module docstring), in problem order.

    Args:
        problems: Benchmark rows with ``id``, ``problem``, ``answer`` and, ideally, ``solution``
            (the MATH-500 file has all four).
        samples: Responses per problem (at least 1).
        seed: Fixes every random choice.
        hostile: Also add the hostile responses (once, after the problems' samples, answering
            the first problem's id with their own gold answers).

    Raises:
        UsageError: ``samples`` below 1, or no problems.
    """
    if samples < 1:
        raise UsageError(f"samples must be at least 1, got {samples}")
    if not problems:
        raise UsageError("the corpus needs at least one problem")
    rng = random.Random(seed)
    items: list[CorpusItem] = []
    for index, problem in enumerate(problems):
        gold = problem["answer"]
        others = [p for j, p in enumerate(problems) if j != index] or [problem]
        if len(others) > 40:
            others = rng.sample(others, 40)
        wrong = _wrong_answers(gold, rng)
        for sample_idx in range(samples):
            kind = rng.choices(_KINDS, weights=_WEIGHTS)[0]
            body = _reasoning(problem, others, rng, _length(rng))
            truncated = False
            if kind == "correct":
                text = f"{body}\n\n{_ending(gold.strip(), rng)}"
            elif kind == "variant":
                text = f"{body}\n\n{_ending(_variant(gold, rng), rng)}"
            elif kind == "wrong":
                text = f"{body}\n\n{_ending(rng.choices(wrong, weights=(6, 3, 1))[0], rng)}"
            elif kind == "multibox":
                first = rng.choice(wrong)
                text = (
                    f"{body}\n\nAt first glance the result is $\\boxed{{{first}}}$, but we must "
                    f"double-check the last step.\n\n{rng.choice(_SECOND_THOUGHTS)}"
                    f"{_solution_body(rng.choice(others).get('solution', ''))}\n\n{_ending(gold.strip(), rng)}"
                )
            elif kind == "truncated":
                text = _truncated(body, rng)
                truncated = True
            elif kind == "reference":
                text = f"{body}\n\nLet me write the solution cleanly.\n\n{problem.get('solution') or body}"
            else:  # noanswer: prose with no number and no math, sometimes rambling up to the limit
                truncated = rng.random() < 0.5
                text = "I am not able to solve this problem. Let me think about it differently. " * (
                    140 if truncated else 3
                )
            items.append(CorpusItem(problem["id"], sample_idx, text, gold, truncated, kind))
    if hostile:
        first_id = problems[0]["id"]
        for offset, (name, text, gold, truncated) in enumerate(_hostile(rng)):
            items.append(CorpusItem(first_id, samples + offset, text, gold, truncated, f"hostile:{name}"))
    return items
