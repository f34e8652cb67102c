"""What every import format reader produces, and the checks they share.

A reader turns one file into a :class:`SourceFile`: the sampling settings the file records
(``None`` where it records none), the source's own reported metrics, and one
:class:`SourceItem` per problem with its completions. Readers validate the whole file and
raise :class:`~rlvr_audit.core.errors.UsageError` naming the file, the expected format and the
missing or malformed field; they never touch the store.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import UsageError
from ..core.records import SourceMetric

log = logging.getLogger(__name__)

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
"""A UTF-16 surrogate left alone by a ``\\udXXX`` escape (a pair is decoded to one character)."""


@dataclass(frozen=True)
class SourceItem:
    """One problem's published generations, as read from a source file."""

    ref: str
    """Where the item is in its file, for messages (``metadata[3] (index 3)``, ``line 12``)."""
    texts: tuple[str, ...]
    """Texts holding the problem statement, most specific first (a question field, then the
    rendered prompt); matched against task problems by :mod:`.matching`."""
    gold: str | None
    """The gold answer the file records (compared with the task file's, never graded against)."""
    completions: tuple[str, ...]
    """The k completions, in the file's order (sample index = position)."""
    prompt: str | None = None
    """The exact prompt string the model was given, when the file records it."""


@dataclass
class SourceFile:
    """One source file, fully read and validated."""

    path: Path
    """The file as named by the user."""
    format: str
    """Import format id."""
    sha256: str
    """SHA-256 of the file's bytes."""
    benchmark: str | None
    """The benchmark name the file gives (paper ``dataset``, Qwen folder, lm-eval task name)."""
    n: int
    """Completions per item (k); every item has exactly k."""
    items: list[SourceItem]
    """The items, in file order."""
    model: str | None = None
    """The model the file names, if any."""
    temperature: float | None = None
    """Sampling temperature the file records (``None``: not recorded)."""
    top_p: float | None = None
    """Nucleus mass the file records (``None``: not recorded)."""
    max_new_tokens: int | None = None
    """New-token limit the file records (``None``: not recorded)."""
    seed: int | None = None
    """Sampling seed the file records (``None``: not recorded)."""
    prompt_style: str | None = None
    """Name of the prompt format the source used when the file does not record the prompts
    themselves (e.g. Qwen's ``prompt_type``); part of the imported unit's template hash."""
    metrics: list[SourceMetric] = field(default_factory=list)
    """The source's own reported numbers."""


@dataclass(frozen=True)
class ImportFormat:
    """An import format: its reader and what it assumes where files are silent."""

    name: str
    """Format id used on the command line."""
    description: str
    """One line: which tool writes it."""
    read: Callable[[Path], SourceFile]
    """Reads and validates one file."""
    default_max_new_tokens: int
    """New-token limit assumed when a file records none (the writing tool's default)."""
    default_top_p: float = 1.0
    """Nucleus mass assumed when a file records none."""


def read_bytes(path: Path, fmt: str) -> tuple[bytes, str]:
    """The file's bytes and their SHA-256; a missing or unreadable file is a usage error."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file (expected a {fmt} file)") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory; name the {fmt} files in it") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from exc
    return data, hashlib.sha256(data).hexdigest()


def decode(data: bytes, path: Path, fmt: str) -> str:
    """UTF-8 text of a file, or a usage error naming the format."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not a {fmt} file: not UTF-8 text (byte {exc.start})") from None


def parse_json(text: str, path: Path, fmt: str, where: str, expected: str) -> Any:
    """``json.loads(text)`` for a reader: JSON it cannot hold is a usage error naming ``where``
    (not valid JSON; an integer of over 4300 digits; nesting deeper than Python's recursion
    limit), and strings holding a lone UTF-16 surrogate (``"\\ud800"``: a broken escape, which
    no UTF-8 file can store) get U+FFFD in its place, with a warning naming the file."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        at = f" at line {exc.lineno}" if exc.lineno > 1 or where == "the file" else ""
        raise wrong(path, fmt, f"{where} is not valid JSON ({exc.msg}{at})", expected) from None
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).split(";")[0]
        raise wrong(path, fmt, f"{where} is JSON that cannot be read ({reason})", expected) from None
    return _replace_lone_surrogates(value, path, where)


def _replace_lone_surrogates(value: Any, path: Path, where: str) -> Any:
    """``value`` with U+FFFD for every lone surrogate in its strings (keys included); iterative."""
    fixed = 0

    def clean(text: str) -> str:
        nonlocal fixed
        if _LONE_SURROGATE.search(text) is None:
            return text
        fixed += 1
        return _LONE_SURROGATE.sub("\ufffd", text)

    if isinstance(value, str):
        value = clean(value)
    stack: list[Any] = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in list(node):
                item = node[key]
                new_key = clean(key) if isinstance(key, str) else key
                if new_key != key:
                    del node[key]
                if isinstance(item, str):
                    item = clean(item)
                node[new_key] = item
                if isinstance(item, dict | list):
                    stack.append(item)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                if isinstance(item, str):
                    node[i] = clean(item)
                elif isinstance(item, dict | list):
                    stack.append(item)
    if fixed:
        log.warning(
            "%s: %s: %d strings hold a lone UTF-16 surrogate escape (not a character); stored with U+FFFD instead",
            path,
            where,
            fixed,
        )
    return value


def wrong(path: Path | str, fmt: str, problem: str, expected: str) -> UsageError:
    """The error for a file that is not in the format it was imported as."""
    return UsageError(f"{path}: not a {fmt} file: {problem}; expected {expected}. Nothing was stored.")


def require(obj: dict[str, Any], key: str, where: str, path: Path, fmt: str, expected: str) -> Any:
    """``obj[key]``, or an error naming the missing field and the fields that are there."""
    if key not in obj:
        have = ", ".join(sorted(obj)[:12]) or "(none)"
        raise wrong(path, fmt, f"{where} has no field {key!r} (its fields: {have})", expected)
    return obj[key]


def as_text(value: Any, what: str, path: Path, fmt: str, expected: str) -> str:
    """``value`` if it is a string, else an error naming the field."""
    if not isinstance(value, str):
        raise wrong(path, fmt, f"{what} must be a string, got {type(value).__name__}", expected)
    return value


def as_texts(value: Any, what: str, path: Path, fmt: str, expected: str) -> tuple[str, ...]:
    """``value`` if it is a non-empty list of strings, else an error naming the field."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        got = type(value).__name__ if not isinstance(value, list) else "an empty list or non-strings"
        raise wrong(path, fmt, f"{what} must be a non-empty list of strings, got {got}", expected)
    return tuple(value)


def gold_text(value: Any) -> str | None:
    """A gold answer as text (numbers are written as JSON writes them; ``None`` stays ``None``)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list) and len(value) == 1:
        return gold_text(value[0])
    return json.dumps(value, ensure_ascii=False)


def as_number(value: Any, what: str, path: Path, fmt: str, expected: str) -> float:
    """A finite JSON number (bools refused), or an error naming the field."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise wrong(path, fmt, f"{what} must be a number, got {value!r}", expected)
    return float(value)


def fraction(value: float, what: str, path: Path, fmt: str) -> tuple[float, bool]:
    """A reported accuracy as a fraction, and whether it was given in percent.

    Values in [0, 1] are fractions; values in (1, 100] are percentages and are divided by 100.
    (A percentage of at most 1% would be misread as a fraction; no source writes accuracies
    that way, and the report shows the source's number beside ours, so it would be visible.)
    """
    if 0.0 <= value <= 1.0:
        return value, False
    if 1.0 < value <= 100.0:
        return value / 100.0, True
    raise UsageError(f"{path}: {fmt}: {what} = {value!r} is neither a fraction nor a percentage")
