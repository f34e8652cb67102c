"""Exceptions with a user-facing message and the exit code the CLI returns for them.

Every error a user can cause (bad name, bad YAML, bad store) is one of these; the CLI prints
``str(error)`` on one line and exits with :attr:`AuditError.exit_code`. Anything else is a bug.
"""

from __future__ import annotations

import difflib
import heapq
from collections.abc import Iterable


class AuditError(Exception):
    """Base class: a failure explained to the user. Exit code 1."""

    exit_code = 1


class UsageError(AuditError):
    """The user asked for something invalid (name, option, configuration). Exit code 2."""

    exit_code = 2


MAX_LISTED = 50
"""An unknown name's message lists every valid one up to this many; beyond, the closest few and
the count (a registry of 200,000 checkpoints must not print megabytes)."""


def _shared_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _closest(name: str, valid: list[str], n: int = 8) -> list[str]:
    """The ``n`` valid names most like ``name`` (difflib's ratio), looking at the 500 sharing the
    longest prefix with it when there are many (difflib over 200,000 names takes seconds)."""
    pool = valid
    if len(valid) > 2000:
        pool = heapq.nlargest(500, valid, key=lambda v: (_shared_prefix(v, name), -abs(len(v) - len(name))))
    return difflib.get_close_matches(name, pool, n=n, cutoff=0.0)


class UnknownNameError(UsageError):
    """A task, prompt, grader, checkpoint or backend name that does not exist. The message lists
    the valid names (all of them up to :data:`MAX_LISTED`, else the closest and their count)."""

    def __init__(self, kind: str, name: str, valid: Iterable[str], hint: str = "") -> None:
        self.kind = kind
        self.name = name
        self.valid = sorted(valid)
        if not self.valid:
            listing = f"valid {kind}s: (none)"
        elif len(self.valid) <= MAX_LISTED:
            listing = f"valid {kind}s: " + ", ".join(self.valid)
        else:
            close = _closest(str(name), self.valid)
            listing = f"closest of the {len(self.valid):,} valid {kind}s: " + ", ".join(close)
        super().__init__(f"unknown {kind} {name!r}; {listing}{hint}")


class ConfigError(UsageError):
    """A configuration file (YAML) that is malformed: names the file, the key and what is expected."""

    def __init__(self, path: object, message: str, key: str | None = None) -> None:
        self.path = str(path)
        self.key = key
        where = f"{self.path}: {key}: " if key else f"{self.path}: "
        super().__init__(where + message)


class ModelLoadError(AuditError):
    """A model or tokenizer that could not be loaded: names the path and the loader's reason.
    Exit code 2 (a wrong path, revision or model argument, as a rule); nothing is written."""

    exit_code = 2


class StoreError(AuditError):
    """The store is corrupt or inconsistent: names the file and line."""
