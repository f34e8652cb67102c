"""A persistent verdict cache: the judged outcome of each distinct (answer, gold answer) pair.

A real audit grades the same pairs again and again: every checkpoint of a training run, every
prompt template and every re-grade meets the same final answers (``\\frac{1}{2}`` against the
gold ``\\frac12``). :class:`~rlvr_audit.grading.engine.GradingEngine` judges each distinct pair
once per call; this cache keeps those judgements across calls, in the store
(``<store>/cache/verdicts.sqlite``), so that the next checkpoint only pays for finding its
answers and for the pairs nobody judged before.

It is an SQLite database (the standard library's ``sqlite3``) in write-ahead-log mode: several
``rlvr-audit grade`` processes on one store read and write it at once (each write is one short
transaction; a writer waits up to :data:`BUSY_TIMEOUT_S` for another's), and a process killed
mid-write leaves the last committed state.

**The key** of an entry is everything its outcome depends on:

- the grader id and version (its implementation version and the versions of the libraries it
  names, e.g. ``math_verify`` / ``2+math-verify==0.9.0+...``);
- :func:`library_versions`: Python's minor version and the installed versions of the ANTLR
  runtime, sympy, math-verify and latex2sympy2_extended (math-verify's verdicts change
  between ANTLR 4.9 and 4.13), plus :data:`KEY_VERSION`, this module's own. A cache written
  under other versions is never read: its entries simply do not match;
- the normalised extracted answer: the engine's *key* of the completion (for ``math_verify``
  the first candidate math-verify would try, normalised; when that does not parse, also the
  later candidates), serialised as canonical ASCII JSON;
- the gold answer as published.

**Only verdicts that do not depend on the machine are kept**: ``correct``, ``incorrect`` and
``no_answer``. ``timeout`` and ``error`` outcomes (a time limit, a worker that died) are
never cached, so ``grade --retry timeout,error`` really grades them again.

**A damaged or foreign file** (not an SQLite database, another application's database, another
schema version of this cache, or one that fails SQLite's ``quick_check``) is moved aside to
``verdicts.sqlite.broken-<UTC time>`` with a warning naming it and why, and a new cache is
built in its place. A cache that cannot be opened or written at all (a read-only store, a full
disk) is skipped with one warning: grading goes on without it, never with a wrong verdict.

``grade --no-cache`` bypasses it entirely. :func:`cache_summary` gives the hit rate of the last
grading pass of each grader (for the report's settings).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import sqlite3
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from .base import GradeOutcome

log = logging.getLogger(__name__)

CACHE_FILE = Path("cache") / "verdicts.sqlite"
"""Where the cache lives, relative to the store root."""
SCHEMA_VERSION = 1
"""Version of the tables below (SQLite ``user_version``); another one is moved aside."""
APPLICATION_ID = 0x524C5641
"""SQLite ``application_id`` of this cache (``RLVA``): a database without it is foreign."""
KEY_VERSION = "1"
"""Version of how keys are made; part of :func:`library_versions`."""
BUSY_TIMEOUT_S = 60.0
"""How long a writer waits for another process's transaction before giving up on the cache."""
CACHED_VERDICTS = frozenset({"correct", "incorrect", "no_answer"})
"""Verdicts the cache keeps (the others depend on time limits and on the machine)."""
LIBRARIES = ("antlr4-python3-runtime", "sympy", "math-verify", "latex2sympy2_extended")
"""Distributions whose versions are part of every key."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
    grader TEXT NOT NULL,
    libraries TEXT NOT NULL,
    answer TEXT NOT NULL,
    gold TEXT NOT NULL,
    outcome TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (grader, libraries, answer, gold)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS passes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    grader TEXT NOT NULL,
    libraries TEXT NOT NULL,
    finished REAL NOT NULL,
    hits INTEGER NOT NULL,
    judged INTEGER NOT NULL,
    samples INTEGER NOT NULL
);
"""


def library_versions() -> str:
    """The library part of every key: Python's minor version, :data:`LIBRARIES`, :data:`KEY_VERSION`."""
    parts = [f"python=={sys.version_info.major}.{sys.version_info.minor}"]
    for name in LIBRARIES:
        try:
            parts.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name}==none")
    parts.append(f"key=={KEY_VERSION}")
    return ";".join(parts)


def encode_key(value: Any) -> str:
    """Canonical ASCII JSON of a key (tuples as lists; lone surrogates escaped, so always storable)."""
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"))


def _encode_outcome(outcome: GradeOutcome) -> str:
    return json.dumps([outcome.verdict, outcome.extracted, outcome.error], ensure_ascii=True)


def _decode_outcome(text: str) -> GradeOutcome:
    verdict, extracted, error = json.loads(text)
    return GradeOutcome(verdict, extracted, error)


class CacheBroken(Exception):
    """The file is not a usable verdict cache (the message says why)."""


@dataclass
class CacheStats:
    """What a cache did for one grading pass of one grader."""

    hits: int = 0
    """Distinct keys whose outcome the cache held."""
    judged: int = 0
    """Distinct keys judged in this pass (not in the cache before)."""
    samples: int = 0
    """Samples whose outcome came from the cache."""

    @property
    def hit_rate(self) -> float | None:
        """``hits / (hits + judged)``, ``None`` when nothing was looked up."""
        total = self.hits + self.judged
        return self.hits / total if total else None


class VerdictCache:
    """The store's verdict cache (see the module docstring). Open with :meth:`open`."""

    def __init__(self, path: Path, connection: sqlite3.Connection, libraries: str) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = connection
        self.libraries = libraries
        self._pending: list[tuple[str, str, str, str, str, float]] = []
        self.stats: dict[str, CacheStats] = {}
        """Per grader (``id\\x00version``): what this cache did since it was opened."""

    # -- opening ----------------------------------------------------------------------

    @classmethod
    def open(cls, store_root: Path, *, libraries: str | None = None) -> VerdictCache | None:
        """The cache of the store at ``store_root``, created if missing; ``None`` (with a
        warning) when it cannot be used at all. A damaged or foreign file is moved aside first."""
        path = Path(store_root) / CACHE_FILE
        libraries = libraries if libraries is not None else library_versions()
        for attempt in range(2):
            try:
                return cls(path, _connect(path), libraries)
            except CacheBroken as exc:
                if attempt == 0 and _move_aside(path, str(exc)):
                    continue
                log.warning("verdict cache %s not used: %s", path, exc)
                return None
            except (sqlite3.Error, OSError) as exc:
                log.warning("verdict cache %s not used (grading without it): %s", path, exc)
                return None
        return None

    def close(self) -> None:
        """Write what is pending and close the database."""
        self.flush()
        if self._db is not None:
            db, self._db = self._db, None
            db.close()

    def __enter__(self) -> VerdictCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _failed(self, exc: BaseException) -> None:
        log.warning("verdict cache %s: %s; grading goes on without it", self.path, exc)
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
        self._db = None
        self._pending.clear()

    # -- use --------------------------------------------------------------------------

    def _stats(self, grader: str) -> CacheStats:
        return self.stats.setdefault(grader, CacheStats())

    def get(self, grader: str, answer: Any, gold: str) -> GradeOutcome | None:
        """The cached outcome of ``answer`` (a key, see :func:`encode_key`) against ``gold``."""
        if self._db is None:
            return None
        try:
            row = self._db.execute(
                "SELECT outcome FROM verdicts WHERE grader = ? AND libraries = ? AND answer = ? AND gold = ?",
                (grader, self.libraries, encode_key(answer), encode_key(gold)),
            ).fetchone()
            outcome = None if row is None else _decode_outcome(row[0])
        except (sqlite3.Error, ValueError, TypeError) as exc:
            self._failed(exc)
            return None
        if outcome is not None:
            self._stats(grader).hits += 1
        return outcome

    def served(self, grader: str, samples: int = 1) -> None:
        """Count samples whose outcome came from the cache."""
        self._stats(grader).samples += samples

    def put(self, grader: str, answer: Any, gold: str, outcome: GradeOutcome) -> None:
        """Remember a judged outcome (only :data:`CACHED_VERDICTS`; written by :meth:`flush`)."""
        self._stats(grader).judged += 1
        if self._db is None or outcome.verdict not in CACHED_VERDICTS:
            return
        self._pending.append(
            (grader, self.libraries, encode_key(answer), encode_key(gold), _encode_outcome(outcome), time.time())
        )
        if len(self._pending) >= 500:
            self.flush()

    def flush(self) -> None:
        """Write pending entries in one transaction (an entry another process wrote first wins)."""
        if self._db is None or not self._pending:
            return
        rows, self._pending = self._pending, []
        try:
            with self._db:
                self._db.executemany("INSERT OR IGNORE INTO verdicts VALUES (?, ?, ?, ?, ?, ?)", rows)
        except sqlite3.Error as exc:
            self._failed(exc)

    def record_passes(self, samples: dict[str, int]) -> None:
        """Record the hit rate of this pass, per grader (``samples``: samples graded per grader)."""
        self.flush()
        if self._db is None:
            return
        now = time.time()
        rows = []
        for grader, n in samples.items():
            stats = self._stats(grader)
            rows.append((grader, self.libraries, now, stats.hits, stats.judged, n))
        try:
            with self._db:
                self._db.executemany(
                    "INSERT INTO passes (grader, libraries, finished, hits, judged, samples) VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
        except sqlite3.Error as exc:
            self._failed(exc)

    def entries(self) -> int:
        """Entries stored under this cache's library versions."""
        if self._db is None:
            return 0
        row = self._db.execute("SELECT count(*) FROM verdicts WHERE libraries = ?", (self.libraries,)).fetchone()
        return int(row[0])


# --- opening, checking, moving aside -------------------------------------------------------


def _connect(path: Path) -> sqlite3.Connection:
    """Open (creating) the cache at ``path`` and check it; raises :class:`CacheBroken`."""
    if path.is_symlink():
        raise CacheBroken("it is a symbolic link (the cache is always a plain file inside the store)")
    if path.exists() and not path.is_file():
        raise CacheBroken("it is not a file")
    path.parent.mkdir(parents=True, exist_ok=True)
    # SQLite creates a new database 0644 whatever the umask; every other store file follows the umask
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    db = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    try:
        try:
            _check_or_create(db)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and _not_damage(exc):
                raise
            raise CacheBroken(f"not a usable SQLite database ({exc})") from exc
    except BaseException:
        db.close()
        raise
    db.isolation_level = "DEFERRED"  # the `with db:` blocks of flush and record_passes are transactions
    return db


def _not_damage(exc: sqlite3.OperationalError) -> bool:
    """Whether an error is about the environment (locked, read-only, disk full), not the file."""
    text = str(exc).lower()
    return any(word in text for word in ("locked", "readonly", "read-only", "disk", "unable to open", "busy"))


def _check_or_create(db: sqlite3.Connection) -> None:
    application_id = db.execute("PRAGMA application_id").fetchone()[0]
    version = db.execute("PRAGMA user_version").fetchone()[0]
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if application_id == 0 and version == 0 and not tables:  # a new (or empty) file: ours now
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("PRAGMA application_id").fetchone()[0] == 0:  # no one else made it meanwhile
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        application_id = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
    if application_id != APPLICATION_ID:
        raise CacheBroken(f"it is another application's database (application_id {application_id:#x})")
    if version != SCHEMA_VERSION:
        raise CacheBroken(f"it has schema version {version}; this rlvr-audit writes version {SCHEMA_VERSION}")
    check = db.execute("PRAGMA quick_check").fetchall()
    if check != [("ok",)]:
        raise CacheBroken(f"SQLite's integrity check failed: {'; '.join(str(r[0]) for r in check[:3])}")
    missing = {"verdicts", "passes"} - {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    if missing:
        raise CacheBroken(f"tables missing: {', '.join(sorted(missing))}")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")


def _move_aside(path: Path, why: str) -> bool:
    """Rename a broken cache (and its WAL files) aside with a warning; whether it worked."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    target = path.with_name(f"{path.name}.broken-{stamp}")
    try:
        os.replace(path, target)
    except FileNotFoundError:
        return True  # another process moved it already
    except OSError as exc:
        log.warning("verdict cache %s is unusable (%s) and could not be moved aside: %s", path, why, exc)
        return False
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        with contextlib.suppress(OSError):
            os.replace(side, target.with_name(target.name + suffix))
    log.warning("verdict cache %s was unusable (%s): moved aside to %s; a new cache is built", path, why, target)
    return True


# --- for the report --------------------------------------------------------------------------


def cache_summary(store_root: Path) -> list[dict[str, Any]]:
    """The last grading pass of each grader that used the cache of the store at ``store_root``:
    ``grader``, ``libraries``, ``finished`` (UTC, ISO 8601), ``hits``, ``judged``, ``samples``,
    ``hit_rate`` (hits / distinct keys; ``None`` when nothing was looked up). ``[]`` without a
    usable cache. Read-only: never creates, repairs or moves the file."""
    path = Path(store_root) / CACHE_FILE
    if not path.is_file() or path.is_symlink():
        return []
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
    except sqlite3.Error:
        return []
    try:
        if db.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            return []
        rows = db.execute(
            "SELECT grader, libraries, finished, hits, judged, samples FROM passes p WHERE id = "
            "(SELECT max(id) FROM passes q WHERE q.grader = p.grader) ORDER BY grader"
        ).fetchall()
    except sqlite3.Error:
        return []
    finally:
        db.close()
    out = []
    for grader, libraries, finished, hits, judged, samples in rows:
        total = hits + judged
        out.append(
            {
                "grader": grader.replace("\x00", " "),
                "libraries": libraries,
                "finished": _dt.datetime.fromtimestamp(finished, _dt.timezone.utc).isoformat(timespec="seconds"),
                "hits": hits,
                "judged": judged,
                "samples": samples,
                "hit_rate": hits / total if total else None,
            }
        )
    return out
