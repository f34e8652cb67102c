"""What every import format reader produces, and the checks they share.

A reader streams one file: it is called with a :class:`SourceStream` (the file opened for one
pass, hashed as it is read) and the file's :class:`SourceFile` header, yields one
:class:`SourceItem` per problem with its completions, in file order, and fills the header (the
sampling settings the file records, ``None`` where it records none; the source's own reported
metrics; k) as it goes: the header is complete once the items are exhausted. Readers validate the
whole file and raise :class:`~rlvr_audit.core.errors.UsageError` naming the file, the expected format
and the missing or malformed field; they never touch the store.

Streaming keeps an import's memory bounded by the largest *item*, not the file: an import reads
each file twice (once to validate and match, once to store), and neither pass holds more than
one item's completions. JSON lines are read line by line; a single JSON object (the paper's
format) is read by :meth:`SourceStream.json_object`, which decodes its top-level values one at
a time and the items of one array member one item at a time with Python's own ``json`` decoder
(so the rules match :func:`parse_json`: ``NaN`` literals parse and are refused where a number
must be finite, big integers and deep nesting are errors, lone surrogates become U+FFFD). A
UTF-8 byte-order mark at the start of a file is accepted and skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

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
    """One source file's header: what the file says about its items (filled while reading)."""

    path: Path
    """The file as named by the user."""
    format: str
    """Import format id."""
    sha256: str = ""
    """SHA-256 of the file's bytes (set when the file has been read to the end)."""
    benchmark: str | None = None
    """The benchmark name the file gives (paper ``dataset``, Qwen folder, lm-eval task name)."""
    benchmark_hints: tuple[str, ...] = ()
    """Other names the file suggests for its benchmark, tried after :attr:`benchmark` (e.g. the
    ``aime24`` in a renamed ``<model>.aime24.jsonl``)."""
    n: int = 0
    """Completions per item (k); every item has exactly k."""
    n_items: int = 0
    """Items read (problems, each once)."""
    model: str | None = None
    """The model the file names, if any."""
    temperature: float | None = None
    """Sampling temperature the file records (``None``: not recorded)."""
    top_p: float | None = None
    """Nucleus mass the file records (``None``: not recorded)."""
    max_new_tokens: int | None = None
    """New-token limit the file records (``None``: not recorded)."""
    max_new_tokens_origin: str | None = None
    """Where :attr:`max_new_tokens` was read (field and file), for messages."""
    seed: int | None = None
    """Sampling seed the file records (``None``: not recorded)."""
    prompt_style: str | None = None
    """Name of the prompt format the source used when the file does not record the prompts
    themselves (e.g. Qwen's ``prompt_type``); part of the imported unit's template hash."""
    metrics: list[SourceMetric] = field(default_factory=list)
    """The source's own reported numbers."""
    tool_version: str | None = None
    """Version of the tool that wrote the file, where it is recorded (``None``: not recorded)."""
    task_config_hash: str | None = None
    """Hash of the task configuration the tool recorded for the file (``None``: not recorded)."""


Reader = Callable[["SourceStream", SourceFile], Iterator[SourceItem]]
"""A format's reader: streams the items of one file and fills its header (see the module docstring)."""


@dataclass(frozen=True)
class ImportFormat:
    """An import format: its reader and what it assumes where files are silent."""

    name: str
    """Format id used on the command line."""
    description: str
    """One line: which tool writes it."""
    reader: Reader
    """Streams and validates one file."""
    default_max_new_tokens: int | None
    """New-token limit the writing tool always uses when a file records none (a constant of the
    tool, e.g. a hard-coded ``max_tokens``); ``None`` where the tool takes it from an option the
    files do not record, so it must be stated with ``--max-new-tokens``."""
    default_top_p: float = 1.0
    """Nucleus mass assumed when a file records none."""

    def stream(self, path: Path) -> tuple[SourceFile, Iterator[SourceItem]]:
        """The file's header and an iterator over its items (one pass; the header is complete, and
        ``sha256`` set, once the iterator is exhausted)."""
        header = SourceFile(path=path, format=self.name)
        source = SourceStream(path, self.name)

        def items() -> Iterator[SourceItem]:
            with source:
                n = 0
                for item in self.reader(source, header):
                    n += 1
                    yield item
                source.finish()
            header.n_items = n
            header.sha256 = source.sha256

        return header, items()

    def read(self, path: Path) -> tuple[SourceFile, list[SourceItem]]:
        """The whole file at once: its complete header and every item (for small files and tests)."""
        header, items = self.stream(path)
        return header, list(items)


BOM = b"\xef\xbb\xbf"
"""The UTF-8 byte-order mark some Windows tools write at the start of a file."""

CHUNK = 1 << 20
"""Bytes read at a time."""


class SourceStream:
    """A source file opened for one pass: every byte read is hashed; a leading UTF-8 byte-order
    mark is skipped; decoding and JSON errors are usage errors naming the file and format."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path = path
        self.fmt = fmt
        self._hash = hashlib.sha256()
        self._fh: IO[bytes] | None = None
        self._offset = 0
        """Bytes consumed so far (for messages)."""

    def __enter__(self) -> SourceStream:
        try:
            self._fh = self.path.open("rb")
        except FileNotFoundError:
            raise UsageError(f"{self.path}: no such file (expected a {self.fmt} file)") from None
        except IsADirectoryError:
            raise UsageError(f"{self.path}: is a directory; name the {self.fmt} files in it") from None
        except OSError as exc:
            raise UsageError(f"{self.path}: cannot read: {exc.strerror}") from exc
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the bytes read so far (of the whole file after :meth:`finish`)."""
        return self._hash.hexdigest()

    def _take(self, data: bytes) -> bytes:
        """Hash ``data`` (just read); drop a byte-order mark at the start of the file."""
        if self._offset == 0 and data.startswith(BOM):
            self._hash.update(BOM)
            self._offset = len(BOM)
            data = data[len(BOM) :]
        self._hash.update(data)
        self._offset += len(data)
        return data

    def _read(self, size: int) -> bytes:
        assert self._fh is not None, "use the stream as a context manager"
        try:
            return self._take(self._fh.read(size))
        except OSError as exc:
            raise UsageError(f"{self.path}: cannot read: {exc.strerror}") from exc

    def _readline(self) -> bytes:
        assert self._fh is not None, "use the stream as a context manager"
        try:
            return self._take(self._fh.readline())
        except OSError as exc:
            raise UsageError(f"{self.path}: cannot read: {exc.strerror}") from exc

    def finish(self) -> None:
        """Hash whatever the reader left unread (trailing bytes), so :attr:`sha256` covers the file."""
        while self._read(CHUNK):
            pass

    def _decode(self, raw: bytes, start: int, where: str) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            at = f" at {where}" if where else ""
            raise wrong(self.path, self.fmt, f"not UTF-8 text (byte {start + exc.start}{at})", "UTF-8 text") from None

    def lines(self) -> Iterator[tuple[int, str]]:
        """``(line number, text)`` of every line (split at ``\\n`` only: JSON text holds no raw
        newline, while ``\\u2028`` and friends may stand raw inside its strings)."""
        lineno = 0
        start = self._offset
        while True:
            raw = self._readline()
            if not raw:
                return
            lineno += 1
            yield lineno, self._decode(raw[:-1] if raw.endswith(b"\n") else raw, start, f"line {lineno}")
            start = self._offset

    def json_object(self, stream_member: str, expected: str) -> Iterator[tuple[str, Any, bool]]:
        """The members of the file's top-level JSON object, in file order: ``(key, value, False)``
        for every member, except that the array member ``stream_member`` is given one element at
        a time as ``(stream_member, element, True)`` (its elements are never all in memory)."""
        decoder = json.JSONDecoder()
        text = ""
        pos = 0
        eof = False
        consumed = 0  # characters dropped from the front of ``text``
        byte_start = 0
        pending = b""

        def more() -> bool:
            nonlocal text, pos, eof, consumed, pending, byte_start
            if eof:
                return False
            data = self._read(max(CHUNK, len(text) - pos))  # doubles the text a long value is retried on
            if not data:
                eof = True
                if pending:
                    self._decode(pending, byte_start, "")  # raises: a cut multi-byte character
                return False
            data = pending + data
            keep = _incomplete_utf8_tail(data)
            pending = data[len(data) - keep :] if keep else b""
            body = data[: len(data) - keep] if keep else data
            decoded = self._decode(body, byte_start, "")
            byte_start += len(body)
            consumed += pos
            text = text[pos:] + decoded
            pos = 0
            return True

        def skip_ws() -> str:
            """The next non-space character (``""`` at the end of the file)."""
            nonlocal pos
            while True:
                while pos < len(text) and text[pos] in " \t\n\r":
                    pos += 1
                if pos < len(text):
                    return text[pos]
                if not more():
                    return ""

        def value(where: str) -> Any:
            nonlocal pos
            skip_ws()
            while True:
                try:
                    obj, end = decoder.raw_decode(text, pos)
                except json.JSONDecodeError as exc:
                    if more():
                        continue
                    raise wrong(self.path, self.fmt, f"{where} is not valid JSON ({exc.msg})", expected) from None
                except (ValueError, RecursionError) as exc:
                    if isinstance(exc, ValueError) and more():
                        continue
                    reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).split(";")[0]
                    raise wrong(
                        self.path, self.fmt, f"{where} is JSON that cannot be read ({reason})", expected
                    ) from None
                # a number or literal that ends exactly at the buffer's end may go on in the next chunk
                if end == len(text) and not isinstance(obj, dict | list | str) and more():
                    continue
                pos = end
                return _replace_lone_surrogates(obj, self.path, where)

        def expect(chars: str, where: str) -> str:
            nonlocal pos
            c = skip_ws()
            if not c or c not in chars:
                got = repr(c) if c else "the end of the file"
                want = " or ".join(repr(x) for x in chars)
                raise wrong(
                    self.path, self.fmt, f"the file is not valid JSON (expected {want} {where}, got {got})", expected
                )
            pos += 1
            return c

        first = skip_ws()
        if first != "{":
            if first in '["-0123456789tfn':
                top = value("the file")
                raise wrong(
                    self.path, self.fmt, f"the top level is a JSON {type(top).__name__}, not an object", expected
                )
            expect("{", "at the start")
        pos += 1
        if skip_ws() == "}":
            pos += 1
        else:
            while True:
                if skip_ws() != '"':
                    expect('"', "(a member name)")
                key = value("a member name")
                expect(":", f"after the member name {key!r}")
                if key == stream_member and skip_ws() == "[":
                    pos += 1
                    if skip_ws() == "]":
                        pos += 1
                    else:
                        i = 0
                        while True:
                            yield key, value(f"{stream_member}[{i}]"), True
                            i += 1
                            if expect(",]", f"after {stream_member}[{i - 1}]") == "]":
                                break
                else:
                    yield key, value(f"the value of {key!r}"), False
                if expect(",}", f"after the value of {key!r}") == "}":
                    break
        if skip_ws():
            raise wrong(
                self.path, self.fmt, "the file is not valid JSON (extra data after the top-level object)", expected
            )


def _incomplete_utf8_tail(data: bytes) -> int:
    """How many bytes at the end of ``data`` start a UTF-8 character that continues beyond it."""
    for back in range(1, min(4, len(data)) + 1):
        b = data[-back]
        if b & 0xC0 == 0x80:  # a continuation byte: look further back
            continue
        need = 2 if b & 0xE0 == 0xC0 else 3 if b & 0xF0 == 0xE0 else 4 if b & 0xF8 == 0xF0 else 1
        return back if need > back else 0
    return 0


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
