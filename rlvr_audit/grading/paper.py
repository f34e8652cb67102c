"""The ``paper`` grader: the grader the Spurious Rewards paper evaluated with, re-implemented.

Spurious Rewards (arXiv 2506.10947) scores every model with one verifier (its repository's
``ttrl/verifier``): Qwen2.5-Math's answer parser (``qwen_math_parser.extract_answer`` with
``strip_string``) followed by PRM800K's ``grade_answer``. Its purpose here is to reproduce
the paper's own numbers, quirks included, so the code below follows that pipeline step by
step; where it departs (safety bounds, a timeout, R1-style tags), the class docstring says so.
Written from the description in ``shared/reference/claims.yaml`` (``grader:``) and the public
Qwen2.5-Math evaluation and PRM800K grading code.

sympy (about a second) is imported when a grader is constructed, not when this module is
imported, so listing graders stays cheap; pylatexenc and word2number (milliseconds) come with
the module.

One module, one concept (over 800 lines): the paper's verifier is one piece of code whose
extraction, normalisation and equivalence rules depend on each other; split, its parts would
no longer read against the original they re-implement.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import re
import tokenize
from collections.abc import Callable
from importlib import metadata
from typing import Any

from pylatexenc.latex2text import LatexNodes2Text
from word2number import w2n

from ._timeout import TimeLimitExceeded, in_main_thread, time_limit
from .base import GradeOutcome
from .latex import MAX_ANSWER_CHARS, clip_answer, describe, too_long

IMPLEMENTATION_VERSION = "1"
"""Version of this grader's own logic; bump it whenever a verdict could change."""

# --- extraction: Qwen2.5-Math's parser (qwen_math_parser.py) ------------------------------

_UNIT_TEXTS_SINGULAR: tuple[str, ...] = (
    "east", "degree", "mph", "kmph", "ft", "m sqaure", " m east", "sq m", "deg", "mile", "q .",
    "monkey", "prime", "ratio", "profit of rs", "rd", "o", "gm", "p . m", "lb", "tile", "per",
    "dm", "lt", "gain", "ab", "way", "west", "a .", "b .", "c .", "d .", "e .", "f .", "g .",
    "h .", "t", "a", "h", "no change", "men", "soldier", "pie", "bc", "excess", "st", "inches",
    "noon", "percent", "by", "gal", "kmh", "c", "acre", "rise", "a . m", "th", "π r 2", "sq",
    "mark", "l", "toy", "coin", "sq . m", "gallon", "° f", "profit", "minw", "yr", "women",
    "feet", "am", "pm", "hr", "cu cm", "square", "v â € ™", "are", "rupee", "rounds", "cubic",
    "cc", "mtr", "s", "ohm", "number", "kmph", "day", "hour", "minute", "min", "second", "man",
    "woman", "sec", "cube", "mt", "sq inch", "mp", "∏ cm ³", "hectare", "more", "sec", "unit",
    "cu . m", "cm 2", "rs .", "rs", "kg", "g", "month", "km", "m", "cm", "mm", "apple", "liter",
    "loss", "yard", "pure", "year", "increase", "decrease", "d", "less", "Surface", "litre",
    "pi sq m", "s .", "metre", "meter", "inch",
)  # fmt: skip
"""Qwen2.5-Math's unit words (mostly from MathQA), in its order, duplicates included."""

UNIT_TEXTS: tuple[str, ...] = _UNIT_TEXTS_SINGULAR + tuple(unit + "s" for unit in _UNIT_TEXTS_SINGULAR)
"""The unit words :func:`strip_string` removes: each singular form, then each plus ``s``.

They are used as regular expressions, as in the original (``.`` matches any character)."""

_UNIT_PATTERNS: tuple[re.Pattern[str], ...] = tuple(re.compile(r"(^|\W)" + unit + r"($|\W)") for unit in UNIT_TEXTS)

_LAST_NUMBER = re.compile(r"-?\d*\.?\d+")


def _qwen_fix_fracs(string: str) -> str:
    """``\\frac12`` -> ``\\frac{1}{2}``, ``\\frac1{2}`` -> ``\\frac{1}{2}`` (Qwen2.5-Math's ``_fix_fracs``)."""
    substrs = string.split("\\frac")
    new_str = substrs[0]
    for substr in substrs[1:]:
        new_str += "\\frac"
        if len(substr) > 0 and substr[0] == "{":
            new_str += substr
            continue
        if len(substr) < 2:
            return string
        a, b = substr[0], substr[1]
        if b != "{":
            new_str += "{" + a + "}{" + b + "}" + substr[2:]
        else:
            new_str += "{" + a + "}" + b + substr[2:]
    return new_str


def _qwen_fix_a_slash_b(string: str) -> str:
    """``3/4`` -> ``\\frac{3}{4}`` for plain integers (Qwen2.5-Math's ``_fix_a_slash_b``).

    As in the original, a side containing ``sqrt`` is kept as text, so ``\\sqrt{2}/2`` becomes
    ``\\frac{\\sqrt{2}}{2}``; anything else that is not an integer leaves the string unchanged.
    """
    parts = string.split("/")
    if len(parts) != 2:
        return string
    a_text, b_text = parts
    try:
        a: int | str = a_text if "sqrt" in a_text else int(a_text)
        b: int | str = b_text if "sqrt" in b_text else int(b_text)
    except ValueError:
        return string
    if string != f"{a}/{b}":
        return string
    return "\\frac{" + str(a) + "}{" + str(b) + "}"


def _convert_word_number(text: str) -> str:
    """``five`` -> ``5`` with word2number, as Qwen2.5-Math does (``x + one`` -> ``1`` too)."""
    try:
        return str(w2n.word_to_num(text))
    except Exception:  # word2number raises ValueError (and others) for "no number words"
        return text


def strip_string(string: str) -> str:
    """Qwen2.5-Math's ``strip_string`` (with unit removal), applied to every extracted answer.

    In order: drop line breaks, trailing ``.``, ``\\!``; ``array``/``bmatrix`` -> ``pmatrix``;
    ``tfrac``/``dfrac`` -> ``frac``; ``\\neq``/``\\leq``/``\\geq`` -> ``\\ne``/``\\le``/``\\ge``;
    drop ``\\left``, ``\\right`` and the backslash of ``\\{``/``\\}``; drop a trailing
    ``\\text{...}`` (units) unless it is the whole answer; remove the unit words of
    :data:`UNIT_TEXTS` (twice over); drop ``^\\circ``, ``$``, ``\\(``/``\\)``; number words to
    digits; ``\\text{X}`` -> ``X``; drop ``x=``, ``y\\in``, ``z\\to`` and the like;
    ``\\emptyset`` -> ``{}``; drop ``%``; ``.5`` -> ``0.5``; unwrap ``{X}``/``(X)``/``[X]`` when X
    is alphanumeric; ``infinity``/``inf`` -> ``\\infty``; drop every ``and`` and ``\\mathbf``
    and ``\\mbox{...}``; ``j`` -> ``i`` when there is no ``i``; ``2.000`` -> ``2``; drop a short
    ``k =`` prefix; ``\\sqrt2`` -> ``\\sqrt{2}``; drop spaces; ``\\frac12`` -> ``\\frac{1}{2}``;
    ``3/4`` -> ``\\frac{3}{4}``.
    """
    string = str(string).strip()
    string = string.replace("\n", "")
    string = string.rstrip(".")
    string = string.replace("\\!", "")
    string = re.sub(r"\\begin\{array\}\{.*?\}", r"\\begin{pmatrix}", string)
    string = re.sub(r"\\end\{array\}", r"\\end{pmatrix}", string)
    string = string.replace("bmatrix", "pmatrix")
    string = string.replace("tfrac", "frac")
    string = string.replace("dfrac", "frac")
    string = string.replace("\\neq", "\\ne").replace("\\leq", "\\le").replace("\\geq", "\\ge")
    string = string.replace("\\left", "")
    string = string.replace("\\right", "")
    string = string.replace("\\{", "{")
    string = string.replace("\\}", "}")

    # A trailing \text{...} is a unit ("5 \text{ miles}"), unless it is all there is.
    without_unit = re.sub(r"\\text{.*?}$", "", string).strip()
    if without_unit != "" and without_unit != string:
        string = without_unit

    for _ in range(2):
        for pattern in _UNIT_PATTERNS:
            removed = pattern.sub(r"\1\2", string)
            if removed != "":
                string = removed

    string = string.replace("^{\\circ}", "")
    string = string.replace("^\\circ", "")
    string = string.replace("\\$", "")
    string = string.replace("$", "")
    string = string.replace("\\(", "").replace("\\)", "")

    string = _convert_word_number(string)

    string = re.sub(r"\\text\{(.*?)\}", r"\1", string)
    for key in ["x=", "y=", "z=", "x\\in", "y\\in", "z\\in", "x\\to", "y\\to", "z\\to"]:
        string = string.replace(key, "")
    string = string.replace("\\emptyset", r"{}")
    string = string.replace("(-\\infty,\\infty)", "\\mathbb{R}")

    string = string.replace("\\%", "")
    string = string.replace("%", "")

    string = string.replace(" .", " 0.")
    string = string.replace("{.", "{0.")

    if (
        (string.startswith("{") and string.endswith("}") and string.isalnum())
        or (string.startswith("(") and string.endswith(")") and string.isalnum())
        or (string.startswith("[") and string.endswith("]") and string.isalnum())
    ):  # never true (brackets are not alphanumeric); kept as in the original
        string = string[1:-1]

    string = string.replace("infinity", "\\infty")
    if "\\infty" not in string:
        string = string.replace("inf", "\\infty")
    string = string.replace("+\\inity", "\\infty")

    string = string.replace("and", "")
    string = string.replace("\\mathbf", "")
    string = re.sub(r"\\mbox{.*?}", "", string)

    if "j" in string and "i" not in string:
        string = string.replace("j", "i")

    string = re.sub(r"(\d+)\.0*([^\d])", r"\1\2", string)
    string = re.sub(r"(\d+)\.0*$", r"\1", string)

    if len(string) == 0:
        return string
    if string[0] == ".":
        string = "0" + string

    if len(string.split("=")) == 2 and len(string.split("=")[0]) <= 2:
        string = string.split("=")[1]

    string = re.sub(r"\\sqrt(\w+)", r"\\sqrt{\1}", string)
    string = string.replace(" ", "")
    string = _qwen_fix_fracs(string)
    string = _qwen_fix_a_slash_b(string)
    return string


def _box_content(text: str) -> str:
    """What follows the last ``boxed`` in ``text``: a brace-matched group, else up to ``$``.

    Qwen2.5-Math's rule: split on the word ``boxed`` (so ``\\boxed`` and a bare ``boxed``
    alike); if the rest starts with ``{``, take the group (to the end of the text if it never
    closes), else take the rest up to the first ``$``.
    """
    rest = text.rsplit("boxed", 1)[-1]
    if not rest:
        return ""
    if rest[0] != "{":
        return rest.split("$")[0].strip()
    depth = 1
    for index in range(1, len(rest)):
        char = rest[index]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return rest[1:index]
    return rest[1:]


def _raw_answer(text: str, *, whole_text_fallback: bool) -> str | None:
    """The unnormalised answer by Qwen2.5-Math's rules, or ``None`` if none applies.

    Minerva's "final answer is $X$. I hope" (the first one), else the last box, else what
    follows the last "he answer is" / "final answer is" (to the end of the text), else what
    follows the first "答案是" (to the next blank line), else the last number (commas
    removed); with ``whole_text_fallback``, the whole text instead of the last number.
    """
    if "final answer is $" in text and "$. I hope" in text:
        return text.split("final answer is $", 1)[1].split("$. I hope", 1)[0].strip()
    if "boxed" in text:
        return _box_content(text)
    if "he answer is" in text:
        return text.split("he answer is")[-1].strip()
    if "final answer is" in text:
        return text.split("final answer is")[-1].strip()
    if "答案是" in text:
        return text.split("答案是")[1].strip().split("\n\n")[0].strip()
    if whole_text_fallback:
        return text.strip()
    numbers = _LAST_NUMBER.findall(text.replace(",", ""))
    return numbers[-1] if numbers else None


def extract_answer(completion: str) -> str | None:
    """The paper's extracted answer for ``completion`` (normalised), or ``None`` if there is none.

    1. The step tag ``ки`` is removed.
    2. R1-style: if ``<answer>`` occurs, only the text after the last ``<answer>``, minus
       ``</answer>``, is read; a box or answer phrase in it is taken as in 3, else all of it.
    3. Otherwise Qwen2.5-Math's order (:func:`_raw_answer`): the Minerva sentence "final
       answer is $X$. I hope", the last ``boxed``, "he answer is" / "final answer is", "答案是",
       the last number.
    4. Line breaks (with the spaces after them) are removed, then a leading ``:`` and a
       trailing ``.`` and ``/``, then :func:`strip_string`.

    ``None`` when no rule finds anything or the answer normalises to the empty string. An
    answer over :data:`~rlvr_audit.grading.latex.MAX_ANSWER_CHARS` characters is returned
    clipped and not normalised (:meth:`PaperGrader.judge` grades it ``error``).
    """
    text = completion.replace("\u043a\u0438", "")
    if "<answer>" in text:
        segment = text.rsplit("<answer>", 1)[1].replace("</answer>", "")
        pred = _raw_answer(segment, whole_text_fallback=True)
    else:
        pred = _raw_answer(text, whole_text_fallback=False)
    if pred is None:
        return None
    if len(pred) > MAX_ANSWER_CHARS:
        return clip_answer(pred)
    pred = re.sub(r"\n\s*", "", pred)
    if pred != "" and pred[0] == ":":
        pred = pred[1:]
    if pred != "" and pred[-1] == ".":
        pred = pred[:-1]
    if pred != "" and pred[-1] == "/":
        pred = pred[:-1]
    pred = strip_string(pred)
    return pred or None


# --- equivalence: PRM800K's grade_answer (math_grade.py + math_normalize.py) --------------


def _mathd_fix_fracs(string: str) -> str:
    """Hendrycks' MATH ``_fix_fracs`` (as in PRM800K's ``math_normalize``)."""
    substrs = string.split("\\frac")
    new_str = substrs[0]
    for substr in substrs[1:]:
        new_str += "\\frac"
        if substr[0] == "{":  # IndexError on a bare trailing \frac, as in the original
            new_str += substr
            continue
        if len(substr) < 2:
            return string
        a, b = substr[0], substr[1]
        if b != "{":
            new_str += "{" + a + "}{" + b + "}" + substr[2:]
        else:
            new_str += "{" + a + "}" + b + substr[2:]
    return new_str


def _mathd_fix_a_slash_b(string: str) -> str:
    """``3/4`` -> ``\\frac{3}{4}`` for plain integers only (Hendrycks' ``_fix_a_slash_b``)."""
    parts = string.split("/")
    if len(parts) != 2:
        return string
    try:
        a, b = int(parts[0]), int(parts[1])
    except ValueError:
        return string
    if string != f"{a}/{b}":
        return string
    return "\\frac{" + str(a) + "}{" + str(b) + "}"


def _mathd_remove_right_units(string: str) -> str:
    """Drop a unit written as ``\\text{ ...}`` (with a space) and what follows it.

    The original asserts there is exactly one such unit; with two, PRM800K's
    ``normalize_answer`` catches the failure and returns the answer merely stripped, which
    is what :func:`mathd_normalize` does here by raising.
    """
    if "\\text{ " in string:
        splits = string.split("\\text{ ")
        if len(splits) != 2:
            raise ValueError("more than one \\text{ unit")
        return splits[0]
    return string


def _mathd_fix_sqrt(string: str) -> str:
    """``\\sqrt3`` -> ``\\sqrt{3}`` (Hendrycks' ``_fix_sqrt``; fails on a trailing ``\\sqrt``)."""
    if "\\sqrt" not in string:
        return string
    splits = string.split("\\sqrt")
    new_string = splits[0]
    for split in splits[1:]:
        if split[0] != "{":  # IndexError on a bare trailing \sqrt, as in the original
            new_string += "\\sqrt{" + split[0] + "}" + split[1:]
        else:
            new_string += "\\sqrt" + split
    return new_string


def _mathd_strip_string(string: str) -> str:
    """Hendrycks' MATH ``_strip_string`` (PRM800K's ``math_normalize``)."""
    string = string.replace("\n", "")
    string = string.replace("\\!", "")
    string = string.replace("\\\\", "\\")
    string = string.replace("tfrac", "frac")
    string = string.replace("dfrac", "frac")
    string = string.replace("\\left", "")
    string = string.replace("\\right", "")
    string = string.replace("^{\\circ}", "")
    string = string.replace("^\\circ", "")
    string = string.replace("\\$", "")
    string = _mathd_remove_right_units(string)
    string = string.replace("\\%", "")
    string = string.replace(" .", " 0.")
    string = string.replace("{.", "{0.")
    if len(string) == 0:
        return string
    if string[0] == ".":
        string = "0" + string
    if len(string.split("=")) == 2 and len(string.split("=")[0]) <= 2:
        string = string.split("=")[1]
    string = _mathd_fix_sqrt(string)
    string = string.replace(" ", "")
    string = _mathd_fix_fracs(string)
    if string == "0.5":
        string = "\\frac{1}{2}"
    string = _mathd_fix_a_slash_b(string)
    return string


def mathd_normalize(answer: str) -> str:
    """PRM800K's ``normalize_answer`` (the "mathd" normalisation of Hendrycks' MATH).

    Strips, unwraps an enclosing ``\\text{...}``, then :func:`_mathd_strip_string`; if that
    fails, the stripped answer as is.
    """
    answer = answer.strip()
    try:
        match = re.search(r"^\\text\{(?P<text>.+?)\}$", answer)
        if match is not None:
            answer = match.group("text").strip()
        return _mathd_strip_string(answer)
    except Exception:
        return answer


_PRM_UNITS = (
    "degree", "cm", "centimeter", "meter", "mile", "second", "minute", "hour", "day", "week",
    "month", "year", "foot", "feet", "inch", "yard",
)  # fmt: skip
_PRM_UNIT_PATTERNS = tuple(re.compile(f"{unit}(es)?(s)? *(\\^[0-9]+)?") for unit in _PRM_UNITS)
_BAD_SUBSTRINGS = ("^{", "^(")
_BAD_REGEXES = (re.compile(r"\^[0-9]+\^"), re.compile(r"\^[0-9][0-9]+"))
_TUPLE_CHARS = "()[]"


@functools.cache
def _latex_to_text() -> Any:
    """pylatexenc's ``LatexNodes2Text`` with default settings (built once per process).

    pylatexenc logs a warning for every malformed macro it meets (``\\frac`` with one
    argument); grading workers share the user's terminal, so its logger is set to errors only.
    """
    logging.getLogger("pylatexenc.latex2text").setLevel(logging.ERROR)
    return LatexNodes2Text()


def _prm_parse_latex(expr: str) -> str:
    """PRM800K's ``_parse_latex``: LaTeX to plain text (pylatexenc), then sympy-friendly names."""
    expr = expr.replace("\\tfrac", "\\frac")
    expr = expr.replace("\\dfrac", "\\frac")
    expr = expr.replace("\\frac", " \\frac")  # mixed numbers: 1\frac{1}{2} -> 1 1/2
    expr = _latex_to_text().latex_to_text(expr)
    expr = expr.replace("√", "sqrt")
    expr = expr.replace("π", "pi")
    expr = expr.replace("∞", "inf")
    expr = expr.replace("∪", "U")
    expr = expr.replace("·", "*")
    expr = expr.replace("×", "*")
    return str(expr).strip()


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_int(value: float) -> bool:
    try:
        return abs(value - round(value)) <= 1e-7
    except (OverflowError, ValueError):  # inf, nan
        return False


def _is_frac(expr: str) -> bool:
    return bool(re.search(r"^-?[0-9]+.?/0*[1-9][0-9]*.?$", expr))


def _strip_properly_formatted_commas(expr: str) -> str:
    """``1,000,000`` -> ``1000000`` without touching tuple commas like ``(1,2)``."""
    pattern = re.compile(r"(\d)(,)(\d\d\d)($|\D)")
    while True:
        next_expr = pattern.sub("\\1\\3\\4", expr)
        if next_expr == expr:
            return next_expr
        expr = next_expr


def _str_is_int(text: str) -> bool:
    try:
        value = float(_strip_properly_formatted_commas(text))
        return abs(value - round(value)) <= 1e-7
    except (ValueError, OverflowError):
        return False


def _str_to_int(text: str) -> int:
    return int(float(text.replace(",", "")))


def prm800k_normalize(expr: str) -> str:
    """PRM800K's ``_normalize``: the second, more aggressive normalisation of ``grade_answer``.

    Unwraps ``\\text{...}``; drops ``$``, ``%`` and unit words; ``million`` -> ``*10^6`` (and
    billion, trillion); ``or``/``and`` -> ``,``; drops ``^\\circ`` and one pair of enclosing
    braces; ``,\\!`` thousands marks; integral floats to integers; LaTeX to text with
    pylatexenc (``\\frac{1}{2}`` -> ``1/2``, ``\\sqrt{3}`` -> ``sqrt(3)``); ``7 3/4`` ->
    ``7+3/4``; drops spaces and braces; lower case.
    """
    match = re.search("^\\\\text\\{(?P<text>.+?)\\}$", expr)
    if match is not None:
        expr = match.group("text")
    expr = expr.replace("\\%", "%")
    expr = expr.replace("\\$", "$")
    expr = expr.replace("$", "")
    expr = expr.replace("%", "")
    expr = expr.replace(" or ", " , ")
    expr = expr.replace(" and ", " , ")
    expr = expr.replace("million", "*10^6")
    expr = expr.replace("billion", "*10^9")
    expr = expr.replace("trillion", "*10^12")
    for pattern in _PRM_UNIT_PATTERNS:
        expr = pattern.sub("", expr)
    expr = re.sub("\\^ *\\\\circ", "", expr)
    if len(expr) > 0 and expr[0] == "{" and expr[-1] == "}":
        expr = expr[1:-1]
    expr = re.sub(",\\\\! *", "", expr)
    if _is_float(expr) and _is_int(float(expr)):
        expr = str(round(float(expr)))
    if "\\" in expr:
        with contextlib.suppress(Exception):  # as in the original: keep the LaTeX if pylatexenc fails
            expr = _prm_parse_latex(expr)
    expr = re.sub("- *", "-", expr)
    expr = re.sub("([0-9]) +([0-9])", "\\1+\\2", expr)  # implicit mixed numbers
    expr = expr.replace(" ", "")
    expr = expr.replace("{", "")
    expr = expr.replace("}", "")
    expr = expr.lower()
    if _str_is_int(expr):
        expr = str(_str_to_int(expr))
    return expr


def _count_unknown_letters(expr: str) -> int:
    expr = expr.replace("sqrt", "")
    expr = expr.replace("frac", "")
    return len({char for char in expr if char.isalpha()})


def should_allow_eval(expr: str) -> bool:
    """PRM800K's guard before sympy, plus this project's bounds (see :class:`PaperGrader`).

    PRM800K: at most 2 distinct letters (``sqrt``, ``frac`` not counted), no ``^{`` (which
    cannot survive :func:`prm800k_normalize`, as it drops braces) or ``^(``, no ``^2^`` towers
    and no exponent of two or more digits. Added here: no ``**``,
    at most 3 powers of a parenthesised expression (``)^``), and only the tokens of
    :func:`_safe_tokens` (numbers, plain names, ``+ - * / ^ ( ) ,``).
    """
    if _count_unknown_letters(expr) > 2:
        return False
    if any(bad in expr for bad in _BAD_SUBSTRINGS):
        return False
    if any(pattern.search(expr) is not None for pattern in _BAD_REGEXES):
        return False
    if "**" in expr or expr.count(")^") > 3:
        return False
    return _safe_tokens(expr.replace("^", "**"))


_ALLOWED_OPERATORS = frozenset({"+", "-", "*", "/", "**", "(", ")", ","})
_NAME = re.compile(r"[a-z][a-z0-9]*")


def _safe_tokens(py_expr: str) -> bool:
    """Whether ``py_expr`` is only numbers, lower-case names and arithmetic, by Python's tokenizer.

    This is what makes handing the text to sympy's ``parse_expr`` (which ends in ``eval``)
    safe: no attribute access, subscripts, strings, keywords beyond two letters, ``!``, ``=``,
    comparisons or any other operator can reach it.
    """
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(py_expr).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return False
    for token in tokens:
        if token.type in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER):
            continue
        if token.type == tokenize.NUMBER:
            continue
        if token.type == tokenize.NAME and _NAME.fullmatch(token.string):
            continue
        if token.type == tokenize.OP and token.string in _ALLOWED_OPERATORS:
            continue
        return False
    return True


@functools.cache
def _sympy_namespace() -> dict[str, Any]:
    """The names ``parse_expr`` may resolve: sympy's, restricted to what can pass the guard.

    The original parses with sympy's full namespace. An expression that passes
    :func:`should_allow_eval` has at most two distinct letters, so the only names it can
    spell are sympy's lower-case names of at most two distinct letters (``pi``, ``oo``,
    ``ln``, ``re``, ``im``, ``csc``, ...) plus ``sqrt`` and ``frac``; those are kept, as are the
    constructors ``parse_expr``'s transformations emit. Builtins are not reachable.
    """
    import sympy  # heavy (about a second): only when an answer needs symbolic comparison

    namespace: dict[str, Any] = {}
    exec("from sympy import *", namespace)  # a constant statement: sympy's public names
    allowed = {
        name: value
        for name, value in namespace.items()
        if name.isascii() and name.isalpha() and name.islower() and len(set(name)) <= 2
    }
    allowed.update(
        sqrt=sympy.sqrt,
        frac=sympy.frac,
        Integer=sympy.Integer,
        Float=sympy.Float,
        Rational=sympy.Rational,
        Symbol=sympy.Symbol,
        Function=sympy.Function,
    )
    allowed["__builtins__"] = {}
    return allowed


def sympy_equal(ground_truth: str, given: str) -> bool:
    """PRM800K's ``are_equal_under_sympy``: ``simplify((gt) - (given)) == 0`` on safe expressions.

    ``False`` when the guard (:func:`should_allow_eval`) refuses the expression or when
    parsing or simplifying raises, as in the original. Must run under a time limit.
    """
    from sympy import simplify  # heavy (about a second): only when an answer needs symbolic comparison
    from sympy.parsing import sympy_parser  # heavy (about a second): only when an answer needs symbolic comparison

    expr = f"({ground_truth})-({given})"
    if not should_allow_eval(expr):
        return False
    try:
        parsed = sympy_parser.parse_expr(
            expr.replace("^", "**"),
            local_dict={},
            global_dict=dict(_sympy_namespace()),
            transformations=(
                *sympy_parser.standard_transformations,
                sympy_parser.implicit_multiplication_application,
            ),
        )
        return bool(simplify(parsed) == 0)
    except Exception:
        return False


def split_tuple(expr: str) -> list[str]:
    """Elements of a tuple or interval (``(1,2]`` -> ``["1", "2"]``), else ``[expr]``."""
    expr = _strip_properly_formatted_commas(expr)
    if len(expr) == 0:
        return []
    if (
        len(expr) > 2
        and expr[0] in _TUPLE_CHARS
        and expr[-1] in _TUPLE_CHARS
        and all(char not in expr[1:-1] for char in _TUPLE_CHARS)
    ):
        return [element.strip() for element in expr[1:-1].split(",")]
    return [expr]


def grade_answer(given_answer: str, ground_truth: str, *, equal_under_sympy: Callable[[str, str], bool]) -> bool:
    """PRM800K's ``grade_answer``: is ``given_answer`` (already extracted) the ``ground_truth``?

    Correct if the mathd-normalised strings match, or the :func:`prm800k_normalize` strings
    match; otherwise tuples and intervals are compared element by element (same number of
    elements, and the same brackets when the gold has several), where two fractions must be
    identical (no simplification), an integer never equals a non-integer, and anything else
    is equal iff ``equal_under_sympy(gt_element, given_element)``.
    """
    if mathd_normalize(ground_truth) == mathd_normalize(given_answer):
        return True
    ground_truth_normalized = prm800k_normalize(ground_truth)
    given_normalized = prm800k_normalize(given_answer)
    if ground_truth_normalized == given_normalized:
        return True
    if len(given_normalized) == 0:
        return False
    ground_truth_elems = split_tuple(ground_truth_normalized)
    given_elems = split_tuple(given_normalized)
    if len(ground_truth_elems) > 1 and (
        ground_truth_normalized[0] != given_normalized[0] or ground_truth_normalized[-1] != given_normalized[-1]
    ):
        return False
    if len(ground_truth_elems) != len(given_elems):
        return False
    for ground_truth_elem, given_elem in zip(ground_truth_elems, given_elems, strict=True):
        if _is_frac(ground_truth_elem) and _is_frac(given_elem):
            is_correct = ground_truth_elem == given_elem  # unreduced fractions are wrong
        elif _str_is_int(ground_truth_elem) != _str_is_int(given_elem):
            is_correct = False  # an integer gold needs a strict match
        else:
            is_correct = equal_under_sympy(ground_truth_elem, given_elem)
        if not is_correct:
            return False
    return True


class NeedsMainThread(Exception):
    """Raised when the sympy step is reached off the main thread (no time limit possible)."""


def refuse_sympy(ground_truth: str, given: str) -> bool:
    raise NeedsMainThread


class PaperGrader:
    """The Spurious Rewards paper's grader: Qwen2.5-Math extraction, PRM800K equivalence.

    Two steps (the grading engine caches the second on ``(grader, extracted, gold)``):

    - :meth:`extract` (:func:`extract_answer`): the Minerva sentence "final answer is $X$. I
      hope", else the content of the LAST ``boxed`` (even if prose such as "the final answer
      is 5" follows it), else what follows "he answer is" / "final answer is", else the last
      number; R1-style completions are read after their last ``<answer>``. Then
      Qwen2.5-Math's :func:`strip_string`. ``None`` when nothing is found.
    - :meth:`judge` (:func:`grade_answer`): PRM800K's ``grade_answer`` between the extracted
      answer and the gold answer as published: equal mathd-normalised or PRM800K-normalised
      strings, else element-wise over tuples/intervals with exact fractions, strict integers,
      and ``sympy.simplify(gt - pred) == 0`` on guarded expressions only (:func:`sympy_equal`).

    :meth:`grade` runs both; ``truncated`` (cut at the token limit) or ``no_answer`` when
    nothing is extracted. ``timeout`` when the sympy step runs past ``sympy_timeout`` seconds
    (a ``SIGALRM`` limit, main thread only; the pool's wall-clock limit covers code stuck in
    C); ``error`` for an answer over 1000 characters, when the grader itself fails, or when
    the sympy step is needed off the main thread.

    Departures from the paper's code (none changes a verdict on an ordinary answer):

    - sympy's ``parse_expr`` (which ends in ``eval``) only sees text made of numbers, plain
      lower-case names and ``+ - * / ^ ( ) ,``, parsed in a namespace without builtins; text
      with ``!``, ``**``, ``=``, ``<`` or more than three ``)^`` powers is not compared
      symbolically (the original may hang or fail on it). Lower-case names that sympy does not
      define are symbols (the original also exposed Python builtins such as ``id``).
    - A time limit on sympy (the original has none) and a 1000-character limit on answers.
    - The paper's reward switches to multiple-choice extraction when the gold answer is a
      bare ``A``-``D`` (GPQA); not done here, since extraction does not see the gold answer.
      No gold answer of math500, amc, aime24 or aime25 is a bare letter.
    - ``<answer>`` handling is reconstructed from the description in ``claims.yaml`` ("text
      after the last ``<answer>`` minus ``</answer>``"); a box or "the answer is" inside the
      tag is then extracted as usual.

    Known issues (the paper's grader, reproduced on purpose):

    - "Last box wins": ``\\boxed{3}``, then "so the final answer is 5", extracts 3.
    - No answer is rarely "no answer": without a box or answer phrase the last number in
      the text is the answer, so a completion cut mid-reasoning is usually ``incorrect``.
    - Unit words are removed as regular expressions anywhere in the answer: ``\\text{east}``
      becomes empty (``no_answer``; gold ``\\text{east}`` can never be matched through a box),
      and a single letter such as ``a``, ``c``, ``d``, ``g``, ``h``, ``l``, ``m``, ``o``, ``s``
      or ``t`` standing alone is deleted (``p - q`` survives, ``a - b`` does not), and so is
      the ``pm`` of ``\\pm``. Five of the 643 gold answers of math500, amc, aime24 and aime25
      therefore do not grade ``correct`` against themselves in a box: ``1 \\pm \\sqrt{19}``,
      ``3 \\pm 2 \\sqrt{2}``, ``\\{1\\pm\\sqrt{5},-2\\}``, ``(a+5)(b+2)`` and ``\\text{east}``.
    - Number words anywhere become the number: ``x + one`` is extracted as ``1``; every
      ``and`` is deleted.
    - Unreduced fractions are wrong (``\\frac{2}{4}`` is not ``\\frac{1}{2}``), and an integer
      gold needs an integer answer (``4.0`` is ``4``, ``\\frac{8}{2}`` is not).
    - sympy is only asked about expressions with at most two distinct letters, no ``^(``,
      no tower ``2^3^2`` and no exponent of two or more digits: ``a+b+c`` does not equal
      ``c+b+a``, nor ``x^{10}+1`` equal ``1+x^{10}`` (``x^{2}+1`` does equal ``1+x^{2}``).
    """

    grader_id = "paper"

    def __init__(self, *, sympy_timeout: float = 3.0) -> None:
        """Import sympy; ``sympy_timeout`` is in seconds (> 0)."""
        if not sympy_timeout > 0:
            raise ValueError(f"sympy_timeout must be positive seconds, got {sympy_timeout!r}")
        import sympy.parsing.sympy_parser  # noqa: F401 - fail at construction, not mid-run

        self.sympy_timeout = float(sympy_timeout)
        self.version = (
            f"{IMPLEMENTATION_VERSION}+sympy=={metadata.version('sympy')}"
            f"+pylatexenc=={metadata.version('pylatexenc')}+word2number=={metadata.version('word2number')}"
        )

    def with_time_scale(self, factor: float) -> PaperGrader:
        """The same grader with its sympy time limit multiplied by ``factor`` (engine retries)."""
        return PaperGrader(sympy_timeout=self.sympy_timeout * factor)

    def extract(self, completion: str) -> str | None:
        """The normalised extracted answer (see :func:`extract_answer`), or ``None``."""
        return extract_answer(completion)

    def judge(self, *, extracted: str, gold: str) -> GradeOutcome:
        """PRM800K's ``grade_answer(extracted, gold)`` as a verdict; depends only on the two."""
        rejected = too_long(extracted)
        if rejected is not None:
            return rejected
        if not in_main_thread():
            try:
                correct = grade_answer(extracted, gold, equal_under_sympy=refuse_sympy)
            except NeedsMainThread:
                return GradeOutcome(
                    "error", extracted, "the sympy step only runs in a process's main thread; use grade_many"
                )
            except Exception as exc:
                return GradeOutcome("error", extracted, f"comparing with the gold answer failed: {describe(exc)}")
            return GradeOutcome("correct" if correct else "incorrect", extracted)
        try:
            with time_limit(self.sympy_timeout) as limit:
                correct = grade_answer(extracted, gold, equal_under_sympy=sympy_equal)
        except TimeLimitExceeded:
            return self._timed_out(extracted)
        except Exception as exc:  # a grader reports failures as verdicts, never raises
            return GradeOutcome("error", extracted, f"comparing with the gold answer failed: {describe(exc)}")
        if limit.fired:
            return self._timed_out(extracted)
        return GradeOutcome("correct" if correct else "incorrect", extracted)

    def _timed_out(self, extracted: str) -> GradeOutcome:
        return GradeOutcome("timeout", extracted, f"comparing with the gold answer took over {self.sympy_timeout:g} s")

    def grade(self, *, completion: str, gold: str, truncated: bool) -> GradeOutcome:
        """:meth:`extract`, then :meth:`judge`; ``truncated``/``no_answer`` when nothing is extracted."""
        try:
            extracted = self.extract(completion)
        except Exception as exc:
            return GradeOutcome("error", None, f"extracting the answer failed: {describe(exc)}")
        if extracted is None:
            return GradeOutcome("truncated" if truncated else "no_answer", None)
        return self.judge(extracted=extracted, gold=gold)
