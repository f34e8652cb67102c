"""A clean synthetic benchmark: fresh arithmetic expression problems with exact rational answers.

In the spirit of RandomCalculation ("Reasoning or Memorization?", arXiv 2507.10532): problems
that no model can have seen, because they are generated now, from a seed. Each problem is one
arithmetic expression over integers, fractions and decimals with a chosen number of steps
(binary operations, 1 to 20); its gold answer is the exact value, computed with
:class:`fractions.Fraction` and written as an integer (``-12``) or a reduced fraction
(``\\frac{7}{3}``, ``-\\frac{7}{3}``), forms every grader of :mod:`rlvr_audit.grading` accepts.

Determinism. Randomness comes from SHA-256 in counter mode over (generator version, seed,
problem index, draw number), not from :mod:`random` or numpy, whose streams may change between
Python or numpy versions: the same :class:`SynthConfig` gives byte-identical problems, hence
the same file hash (:func:`jsonl_bytes`) and the same task data hash, on any machine. Problem
ids carry :data:`GENERATOR_VERSION` (``v1-0007``), so a new generator version always makes a
new task version (data hash, unit keys), even where it happens to produce the same text.

Construction of one problem with ``s`` steps: start from a random operand; ``s`` times, combine
the expression so far with a fresh operand by ``+``, ``-``, ``\\times`` or ``\\div``, the new
operand on a random side. A draw is rejected and redrawn when it divides by zero, multiplies by zero or
divides zero (either would make the rest of the expression moot), multiplies or divides by 1 or
-1 (no work), or when the exact
intermediate value leaves the bounds (numerator at most :data:`MAX_NUMERATOR` in absolute value,
denominator at most :data:`MAX_DENOMINATOR`), so answers stay readable. Parentheses are written
where precedence needs them, and around a quotient that is multiplied or divided further
(``a \\div b \\times c`` is read both ways). Steps are stratified: problem ``i`` has
``min_steps + i mod (max_steps - min_steps + 1)`` steps, so every step count is equally common.

Operands: an integer in ``[operand_min, operand_max]``; with probability ``fraction_share`` a
fraction ``\\frac{a}{b}`` (``a`` from the integer range, ``2 <= b <= max_denominator``, written
reduced, never an integer); with probability ``decimal_share`` a decimal with
``decimal_places`` places (an integer from the range plus a fractional part, e.g. ``-3.25``).
Negative operands are written in parentheses.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from pydantic import Field, ValidationError, model_validator

from .configfile import StrictModel
from .errors import UsageError

GENERATOR_VERSION = 1
"""Version of the problem generator; bump it whenever the same config would give other problems."""

MIN_STEPS, MAX_STEPS = 1, 20
"""Valid range of the number of steps (binary operations) per problem."""

MAX_NUMERATOR = 10**9
"""Largest absolute numerator of any intermediate or final value."""

MAX_DENOMINATOR = 10**6
"""Largest denominator of any intermediate or final value."""

OPERAND_LIMIT = 10**6
"""Operand range bounds must lie in ``[-OPERAND_LIMIT, OPERAND_LIMIT]``."""

MAX_PROBLEMS = 100_000
"""Largest number of problems one config may ask for."""

INSTRUCTION = (
    "Compute the exact value of the following expression. Give the answer as an integer or as a "
    "fraction in lowest terms."
)
"""The sentence before each expression."""


class SynthConfig(StrictModel):
    """Parameters of a synthetic arithmetic task (``metadata.rlvr_audit.generator`` of a task YAML)."""

    version: int = GENERATOR_VERSION
    """Generator version the task was defined with; must equal :data:`GENERATOR_VERSION`."""
    seed: int = Field(default=0, ge=0)
    """Seed: the same config and seed give the same problems everywhere."""
    n: int = Field(default=500, ge=1, le=MAX_PROBLEMS)
    """Number of problems."""
    min_steps: int = Field(default=1, ge=MIN_STEPS, le=MAX_STEPS)
    """Fewest binary operations in a problem."""
    max_steps: int = Field(default=20, ge=MIN_STEPS, le=MAX_STEPS)
    """Most binary operations in a problem."""
    operand_min: int = Field(default=-20, ge=-OPERAND_LIMIT, le=OPERAND_LIMIT)
    """Smallest integer operand (also the range of fraction numerators and decimal integer parts)."""
    operand_max: int = Field(default=20, ge=-OPERAND_LIMIT, le=OPERAND_LIMIT)
    """Largest integer operand."""
    max_denominator: int = Field(default=9, ge=2, le=1000)
    """Largest denominator of a fraction operand."""
    fraction_share: float = Field(default=0.25, ge=0.0, le=1.0)
    """Probability that an operand is a fraction."""
    decimal_share: float = Field(default=0.25, ge=0.0, le=1.0)
    """Probability that an operand is a decimal."""
    decimal_places: int = Field(default=2, ge=1, le=4)
    """Decimal places of decimal operands."""

    @model_validator(mode="after")
    def _check(self) -> SynthConfig:
        if self.version != GENERATOR_VERSION:
            raise ValueError(
                f"version: this rlvr-audit generates version {GENERATOR_VERSION}, the task asks for "
                f"version {self.version}"
            )
        if self.min_steps > self.max_steps:
            raise ValueError(f"min_steps ({self.min_steps}) must be <= max_steps ({self.max_steps})")
        if self.operand_min > self.operand_max:
            raise ValueError(f"operand_min ({self.operand_min}) must be <= operand_max ({self.operand_max})")
        if self.operand_min == self.operand_max == 0:
            raise ValueError("the operand range [0, 0] only holds zero; widen operand_min..operand_max")
        if self.fraction_share + self.decimal_share > 1.0:
            raise ValueError(
                f"fraction_share + decimal_share must be <= 1 (got {self.fraction_share} + {self.decimal_share})"
            )
        return self

    @property
    def config_hash(self) -> str:
        """SHA-256 (16 hex digits) of the settings that shape each problem: everything but ``n``
        (version included), so a larger set starts with the problems of a smaller one."""
        data = json.dumps(self.model_dump(mode="json", exclude={"n"}), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(data.encode("utf-8")).hexdigest()[:16]


OPTION_NAMES = {
    "seed": "--seed",
    "n": "--n",
    "min_steps": "--min-steps",
    "max_steps": "--max-steps",
    "operand_min": "--operand-min",
    "operand_max": "--operand-max",
    "max_denominator": "--max-denominator",
    "fraction_share": "--fraction-share",
    "decimal_share": "--decimal-share",
    "decimal_places": "--decimal-places",
}
"""Config field -> command-line option of ``rlvr-audit task synth``."""

_RANGES = {
    "seed": ">= 0",
    "n": f"1..{MAX_PROBLEMS}",
    "min_steps": f"{MIN_STEPS}..{MAX_STEPS}",
    "max_steps": f"{MIN_STEPS}..{MAX_STEPS}",
    "operand_min": f"-{OPERAND_LIMIT}..{OPERAND_LIMIT}",
    "operand_max": f"-{OPERAND_LIMIT}..{OPERAND_LIMIT}",
    "max_denominator": "2..1000",
    "fraction_share": "0..1",
    "decimal_share": "0..1",
    "decimal_places": "1..4",
}


def make_config(**values: object) -> SynthConfig:
    """A :class:`SynthConfig` from keyword values, or a :class:`UsageError` naming the option
    (as ``rlvr-audit task synth`` spells it) and its valid range."""
    try:
        return SynthConfig.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(x) for x in err.get("loc", ())]
        field_name = loc[0] if loc else ""
        if field_name in OPTION_NAMES:
            raise UsageError(
                f"{OPTION_NAMES[field_name]} must be in {_RANGES[field_name]}, got {values.get(field_name)!r}"
            ) from None
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        for name, option in OPTION_NAMES.items():  # name the options as the command line spells them
            msg = re.sub(rf"\b{name}\b", option, msg)
        raise UsageError(f"invalid generator settings: {msg}") from None


# ---- deterministic randomness -----------------------------------------------------------------


class _Draws:
    """Uniform draws from SHA-256 in counter mode (stable across Python and numpy versions)."""

    def __init__(self, *key: object) -> None:
        self._key = json.dumps([str(k) for k in key]).encode("utf-8")
        self._counter = 0

    def _word(self) -> int:
        self._counter += 1
        digest = hashlib.sha256(self._key + b"/" + str(self._counter).encode("ascii")).digest()
        return int.from_bytes(digest[:8], "big")

    def below(self, n: int) -> int:
        """Uniform integer in ``[0, n)`` (rejection sampling, no modulo bias)."""
        if n < 1:
            raise ValueError(f"below({n}): n must be >= 1")
        limit = (1 << 64) - (1 << 64) % n
        while True:
            w = self._word()
            if w < limit:
                return w % n

    def between(self, lo: int, hi: int) -> int:
        """Uniform integer in ``[lo, hi]``."""
        return lo + self.below(hi - lo + 1)

    def unit(self) -> float:
        """Uniform float in ``[0, 1)`` (53 bits)."""
        return (self._word() >> 11) / float(1 << 53)


# ---- expressions -------------------------------------------------------------------------------

_OPS = ("+", "-", "*", "/")
_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}
_LATEX = {"+": "+", "-": "-", "*": "\\times", "/": "\\div"}


@dataclass(frozen=True)
class _Expr:
    """An expression: its exact value, its LaTeX and its top operator (``None`` for an operand)."""

    value: Fraction
    latex: str
    op: str | None = None


def _operand(cfg: SynthConfig, draws: _Draws) -> _Expr:
    u = draws.unit()
    if u < cfg.fraction_share:
        for _ in range(32):  # a range like [2, 2] with denominators up to 2 has no proper fraction
            den = draws.between(2, cfg.max_denominator)
            num = draws.between(cfg.operand_min, cfg.operand_max)
            value = Fraction(num, den)
            if value.denominator > 1:
                text = f"\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"
                return _Expr(value, f"(-{text})" if value < 0 else text)
    if u < cfg.fraction_share + cfg.decimal_share:
        scale = 10**cfg.decimal_places
        whole = draws.between(cfg.operand_min, cfg.operand_max)
        frac = draws.between(1, scale - 1)
        sign = -1 if whole < 0 or (whole == 0 and draws.below(2) == 1 and cfg.operand_min < 0) else 1
        value = sign * (abs(whole) + Fraction(frac, scale))
        digits = f"{frac:0{cfg.decimal_places}d}".rstrip("0")
        text = f"{abs(whole)}.{digits}"
        return _Expr(value, f"(-{text})" if value < 0 else text)
    n = draws.between(cfg.operand_min, cfg.operand_max)
    return _Expr(Fraction(n), f"({n})" if n < 0 else str(n))


def _wrap(child: _Expr, op: str, *, right: bool) -> str:
    """``child``'s LaTeX, in parentheses where the precedence of ``op`` needs them."""
    if child.op is None:
        return child.latex
    if (
        _PREC[child.op] < _PREC[op]
        or (right and _PREC[child.op] == _PREC[op] and op in ("-", "/"))
        or (child.op == "/" and op in ("*", "/"))  # "a / b * c" is read both ways; never write it
    ):
        return f"\\left({child.latex}\\right)"
    return child.latex


def _combine(left: _Expr, op: str, right: _Expr) -> _Expr | None:
    """``left op right``, or ``None`` when it divides by zero, multiplies by zero or divides zero
    (which would make the rest of the expression moot), multiplies or divides by 1 or -1 (a step
    that is no work), or leaves the value bounds."""
    if op in ("*", "/") and (left.value == 0 or right.value == 0):
        return None
    if (op == "*" and 1 in (abs(left.value), abs(right.value))) or (op == "/" and abs(right.value) == 1):
        return None  # a step that changes nothing but the sign is not a step
    if op == "+":
        value = left.value + right.value
    elif op == "-":
        value = left.value - right.value
    elif op == "*":
        value = left.value * right.value
    else:
        value = left.value / right.value
    if abs(value.numerator) > MAX_NUMERATOR or value.denominator > MAX_DENOMINATOR:
        return None
    latex = f"{_wrap(left, op, right=False)} {_LATEX[op]} {_wrap(right, op, right=True)}"
    return _Expr(value, latex, op)


def _expression(cfg: SynthConfig, steps: int, draws: _Draws) -> _Expr:
    """An expression of exactly ``steps`` binary operations (redraws rejected steps)."""
    for _restart in range(100):  # a rare dead end (no acceptable step in 64 draws) restarts the problem
        expr = _operand(cfg, draws)
        for _ in range(steps):
            for _attempt in range(64):
                op = _OPS[draws.below(4)]
                new = _operand(cfg, draws)
                combined = _combine(new, op, expr) if draws.below(2) else _combine(expr, op, new)
                if combined is not None:
                    expr = combined
                    break
            else:
                break
        else:
            return expr
    raise UsageError(
        f"cannot build a {steps}-step expression within the value bounds (|numerator| <= {MAX_NUMERATOR}, "
        f"denominator <= {MAX_DENOMINATOR}) from operands in {cfg.operand_min}..{cfg.operand_max}; "
        "narrow the operand range or lower --max-steps"
    )


def gold_answer(value: Fraction) -> str:
    """An exact value as the gold answer: ``12``, ``-12``, ``\\frac{7}{3}`` or ``-\\frac{7}{3}``."""
    if value.denominator == 1:
        return str(value.numerator)
    text = f"\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"
    return f"-{text}" if value < 0 else text


def generate_rows(cfg: SynthConfig) -> list[dict[str, object]]:
    """The task's rows (``id``, ``problem``, ``answer``, ``steps``, ``generator``), in order."""
    span = cfg.max_steps - cfg.min_steps + 1
    rows: list[dict[str, object]] = []
    for i in range(cfg.n):
        steps = cfg.min_steps + i % span
        draws = _Draws("rlvr-audit-synth", GENERATOR_VERSION, cfg.config_hash, i)
        expr = _expression(cfg, steps, draws)
        rows.append(
            {
                "id": f"v{GENERATOR_VERSION}-{i:04d}",
                "problem": f"{INSTRUCTION}\n\n${expr.latex}$",
                "answer": gold_answer(expr.value),
                "steps": steps,
                "generator": f"arithmetic-v{GENERATOR_VERSION}:{cfg.config_hash}",
            }
        )
    return rows


def jsonl_bytes(rows: list[dict[str, object]]) -> bytes:
    """The canonical JSON-lines file of ``rows`` (sorted keys, ``\\n`` line ends, UTF-8)."""
    return "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


@dataclass(frozen=True)
class SynthResult:
    """What :func:`write_synthetic` wrote."""

    path: Path
    """The JSON-lines file."""
    sha256: str
    """SHA-256 of its bytes (equal for equal configs)."""
    n: int
    """Problems written."""
    config: SynthConfig
    """The config used."""
    task_file: Path | None = None
    """The task YAML written with ``--write-task``, if any."""


def write_synthetic(cfg: SynthConfig, path: Path) -> SynthResult:
    """Generate the problems of ``cfg`` and write them to ``path`` (atomically)."""
    data = jsonl_bytes(generate_rows(cfg))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return SynthResult(path=path, sha256=hashlib.sha256(data).hexdigest(), n=cfg.n, config=cfg)


__all__ = [
    "GENERATOR_VERSION",
    "INSTRUCTION",
    "SynthConfig",
    "SynthResult",
    "generate_rows",
    "gold_answer",
    "jsonl_bytes",
    "make_config",
    "write_synthetic",
]
