"""Exceptions with a user-facing message and the exit code the CLI returns for them.

Every error a user can cause (bad name, bad YAML, bad store) is one of these; the CLI prints
``str(error)`` on one line and exits with :attr:`AuditError.exit_code`. Anything else is a bug.
"""

from __future__ import annotations

from collections.abc import Iterable


class AuditError(Exception):
    """Base class: a failure explained to the user. Exit code 1."""

    exit_code = 1


class UsageError(AuditError):
    """The user asked for something invalid (name, option, configuration). Exit code 2."""

    exit_code = 2


class UnknownNameError(UsageError):
    """A task, prompt, grader, checkpoint or backend name that does not exist."""

    def __init__(self, kind: str, name: str, valid: Iterable[str], hint: str = "") -> None:
        self.kind = kind
        self.name = name
        self.valid = sorted(valid)
        listing = ", ".join(self.valid) if self.valid else "(none)"
        super().__init__(f"unknown {kind} {name!r}; valid {kind}s: {listing}{hint}")


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
