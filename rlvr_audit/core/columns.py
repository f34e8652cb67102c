"""A columnar cache of the store's per-unit records: what a report reads, without parsing JSON.

The JSON lines stay the source of truth. A report over a million samples reads every unit's
grades and generations (and classifies every response) each time it runs; this module keeps
the columns it needs as Parquet files (pyarrow), one per source file and kind, under
``<store>/cache/columns/<unit key>/``:

- ``grades-<grader>.parquet``: every valid :class:`~rlvr_audit.core.records.Grade` record of the
  grader's file (all versions and attempts, file order); :func:`grade_columns` applies the
  store's reading rules to them (one grader version, the latest attempt, the first of
  duplicates), exactly as :meth:`~rlvr_audit.core.store.Store.read_grades` does.
- ``generations.parquet``: the unit's generations as :meth:`~rlvr_audit.core.store.Store.read_generations`
  returns them (deduplicated, file order), without their texts: ``problem_id``, ``sample_idx``,
  ``checkpoint_id``, ``task``, ``template_id``, ``finish_reason``, ``n_tokens``.
- ``generations-<name>-<version>.parquet``: the same plus the columns a :class:`Derivation`
  computes from the full records (e.g. the behaviour classification of each response). The
  derivation's version is part of the file name: another version is another file.

**Validity.** Each file records the size, modification time (ns) and inode of its source file
as they were *before* the source was read, and this module's :data:`SCHEMA_VERSION`; a file
whose source changed since (an append, a repair, a merge, a replaced file) is rebuilt from the
JSON lines. A source changed while it was being read leaves a file that is rebuilt next time.

**Bad files.** A cache file that cannot be read as Parquet, or lacks this cache's metadata, or
has another schema version or kind, is moved aside to ``<file>.broken-<UTC time>`` with a
warning and rebuilt.

**The store's rules hold.** Reading the source goes through the store (links refused, torn
tails repaired, corrupt lines raised). The cache never writes outside the store root and follows
no link: a store whose root is a symbolic link, a link anywhere on the cache's path inside the
store, or a store this user cannot write (read-only) means no cache: the columns are computed
from the JSON lines every time (a warning says so once per process for links; read-only
stores are silent, as reports of read-only stores are ordinary). Cache files follow the umask.

``RLVR_AUDIT_COLUMN_CACHE=0`` bypasses the cache (no file read or written); results are the
same either way.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import StoreError
from .records import Generation, Grade
from .store import Store, _open_nofollow, _umask

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
"""Version of the files' layout; a file of another version is moved aside and rebuilt."""
CACHE_DIR = Path("cache") / "columns"
"""Where the cache lives, relative to the store root."""
ENV = "RLVR_AUDIT_COLUMN_CACHE"
"""Environment variable: ``0`` bypasses the cache."""
_META_KEY = b"rlvr_audit.columns"
"""Key of this cache's metadata in each Parquet file's schema metadata."""

GRADE_COLUMNS = (
    "problem_id",
    "sample_idx",
    "grader_version",
    "attempt",
    "verdict",
    "extracted",
    "error",
    "limit_s",
    "antlr_version",
)
"""Columns of :func:`grade_columns` (the Grade fields other than the unit key and grader)."""
GENERATION_COLUMNS = ("problem_id", "sample_idx", "checkpoint_id", "task", "template_id", "finish_reason", "n_tokens")
"""Columns of :func:`generation_columns` (the Generation fields a report needs, no texts)."""

_warned: set[str] = set()


@dataclass(frozen=True)
class Derivation:
    """Columns computed from a unit's full generation records (texts included), cached beside
    the stored columns.

    ``compute`` gets the unit's generations (as :meth:`Store.read_generations` returns them) and
    gives one list per name of ``columns``, aligned with them. ``version`` must change whenever
    the results could (e.g. a hash of the code that computes them)."""

    name: str
    """Short name (a file name part: letters, digits, ``_``)."""
    version: str
    """Version of the computation (a file name part)."""
    columns: dict[str, str]
    """Names of the computed columns and their pandas dtypes (``bool``, ``Int64`` for integers
    that may be missing, ``float64``, ``object`` for strings that may be missing)."""
    compute: Callable[[list[Generation]], dict[str, list[Any]]]
    """The computation."""


def enabled() -> bool:
    """Whether the cache is used (``RLVR_AUDIT_COLUMN_CACHE`` is not ``0``)."""
    return os.environ.get(ENV, "1").strip() != "0"


def _warn_once(key: str, message: str, *args: Any) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message, *args)


def _source_stat(store: Store, path: Path) -> dict[str, int] | None:
    """Size, mtime and inode of a source file (``None`` if it does not exist)."""
    try:
        st = store._inside(path).stat(follow_symlinks=False)
    except FileNotFoundError:
        return None
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}


def _cache_folder(store: Store, key: str) -> Path | None:
    """The unit's cache folder, or ``None`` when the cache is not to be used for this store."""
    if not enabled():
        return None
    if store._top.is_symlink() or store.root.is_symlink():
        _warn_once(
            f"link:{store.root}",
            "%s: the store is reached through a symbolic link; its column cache is not used (reports read the "
            "JSON lines)",
            store.root,
        )
        return None
    folder = store.root / CACHE_DIR / key
    try:
        store._inside(folder)
    except StoreError as exc:
        _warn_once(f"inside:{store.root}", "column cache not used: %s", exc)
        return None
    return folder


def _read_cached(
    store: Store, path: Path, kind: str, source: dict[str, int]
) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """The cached frame and its metadata when ``path`` is a valid, current cache of ``kind``;
    ``None`` when it is missing or stale; a broken file is moved aside (and ``None``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        store._inside(path)
        if not path.exists():
            return None
        with _open_nofollow(path, os.O_RDONLY) as fh:
            table = pq.read_table(fh)
        raw = (table.schema.metadata or {}).get(_META_KEY)
        if raw is None:
            raise ValueError("no rlvr-audit column cache metadata (a foreign file)")
        meta = json.loads(raw)
        if not isinstance(meta, dict):
            raise ValueError("malformed rlvr-audit column cache metadata")
        if table.column_names != list(meta.get("columns", ())):
            raise ValueError("its columns are not the ones its metadata names")
        if meta.get("schema") != SCHEMA_VERSION or meta.get("kind") != kind:
            raise ValueError(
                f"schema {meta.get('schema')!r} kind {meta.get('kind')!r}, expected {SCHEMA_VERSION} {kind}"
            )
    except StoreError as exc:
        _warn_once(f"inside:{store.root}", "column cache not used: %s", exc)
        return None
    except (OSError, ValueError, pa.ArrowException) as exc:
        _move_aside(path, str(exc))
        return None
    if meta.get("source") != source:
        return None  # stale: the source changed since
    return _to_pandas(table), meta


def _to_pandas(table: Any) -> pd.DataFrame:
    """A frame of an Arrow table, one way for cached and freshly built columns alike (integers
    that may be missing as ``Int64``; strings as pandas makes them)."""
    import pyarrow as pa

    return table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)


def _arrow(frame: pd.DataFrame) -> Any:
    import pyarrow as pa

    return pa.Table.from_pandas(frame, preserve_index=False)


def _move_aside(path: Path, why: str) -> None:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    aside = path.with_name(f"{path.name}.broken-{stamp}")
    try:
        os.replace(path, aside)
    except OSError as exc:
        log.warning("%s: unreadable column cache file (%s) and it cannot be moved aside (%s)", path, why, exc)
        return
    log.warning("%s: unreadable column cache file (%s); moved it to %s and rebuilt it", path, why, aside.name)


def _write_cached(store: Store, path: Path, frame: pd.DataFrame, meta: dict[str, Any]) -> None:
    """Write ``frame`` atomically to ``path`` with ``meta``; a store that cannot take it is left alone."""
    import pyarrow.parquet as pq

    table = _arrow(frame)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), _META_KEY: json.dumps(meta).encode()})
    tmp: str | None = None
    try:
        for part in (path.parent.parent.parent, path.parent.parent, path.parent):
            store._inside(part)
            part.mkdir(exist_ok=True, mode=0o777)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o666 & ~_umask())
            pq.write_table(table, fh)
            fh.flush()
            os.fsync(fh.fileno())
        store._inside(path)
        os.replace(tmp, path)
        tmp = None
    except StoreError as exc:
        _warn_once(f"inside:{store.root}", "column cache not used: %s", exc)
    except OSError as exc:  # a read-only store or a full disk: the report goes on without the cache
        log.debug("column cache not written (%s): %s", path, exc)
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _cached(
    store: Store, key: str, source_path: Path, name: str, kind: str, build: Callable[[], tuple[pd.DataFrame, int]]
) -> tuple[pd.DataFrame, int]:
    """``(frame, conflicts)`` of one source file, from the cache when current, else built (and cached)."""
    folder = _cache_folder(store, key)
    source = _source_stat(store, source_path) if folder is not None else None
    if folder is None or source is None:
        frame, conflicts = build()
        return _to_pandas(_arrow(frame)), conflicts
    path = folder / name
    hit = _read_cached(store, path, kind, source)
    if hit is not None:
        return hit[0], int(hit[1].get("conflicts", 0))
    frame, conflicts = build()
    frame = _to_pandas(_arrow(frame))
    meta = {"schema": SCHEMA_VERSION, "kind": kind, "source": source, "conflicts": conflicts, "columns": list(frame)}
    _write_cached(store, path, frame, meta)
    return frame, conflicts


# ---- grades ----------------------------------------------------------------------------


def _grades_frame(grades: Sequence[Grade]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "problem_id": pd.Series([g.problem_id for g in grades], dtype=object),
            "sample_idx": pd.Series([g.sample_idx for g in grades], dtype="Int64"),
            "grader_version": pd.Series([g.grader_version for g in grades], dtype=object),
            "attempt": pd.Series([g.attempt for g in grades], dtype="Int64"),
            "verdict": pd.Series([g.verdict for g in grades], dtype=object),
            "extracted": pd.Series([g.extracted for g in grades], dtype=object),
            "error": pd.Series([g.error for g in grades], dtype=object),
            "limit_s": pd.Series([g.limit_s for g in grades], dtype="float64"),
            "antlr_version": pd.Series([g.antlr_version for g in grades], dtype=object),
        },
        columns=list(GRADE_COLUMNS),
    )


def grade_columns(store: Store, key: str, grader_id: str, grader_version: str | None = None) -> pd.DataFrame:
    """A unit's grades by one grader as columns (:data:`GRADE_COLUMNS`), the same rows in the same
    order as :meth:`Store.read_grades` with the same arguments gives (and the same warning about
    differing duplicates)."""
    path = store.grades_path(key, grader_id)

    def build() -> tuple[pd.DataFrame, int]:
        records = store._read_records(path, Grade, expect={"unit_key": key, "grader_id": grader_id})
        return _grades_frame(records), 0

    frame, _ = _cached(store, key, path, f"grades-{grader_id}.parquet", "grades", build)
    if grader_version is not None:
        frame = frame[frame["grader_version"] == grader_version]
    if frame.empty:
        return frame.reset_index(drop=True)
    attempts = frame["attempt"]
    if attempts.min() != attempts.max():  # re-grades: per sample and version, the latest attempt
        latest = frame.groupby(["problem_id", "sample_idx", "grader_version"], sort=False)["attempt"].transform("max")
        frame = frame[attempts == latest]
    later = frame.duplicated(["problem_id", "sample_idx"], keep="first")
    if later.any():
        _warn_conflicts(frame, later, path, version=grader_version is None)
        frame = frame[~later]
    return frame.reset_index(drop=True)


def _warn_conflicts(frame: pd.DataFrame, later: pd.Series, path: Path, *, version: bool) -> None:
    """The warning :func:`~rlvr_audit.core.store._dedupe` gives for duplicates that differ."""

    def row(values: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else v for v in values)

    first: dict[tuple[Any, Any], tuple[Any, ...]] = {}
    conflicts = 0
    cols = list(frame.columns)
    vi = cols.index("grader_version")
    for values, is_later in zip(frame.itertuples(index=False, name=None), later, strict=True):
        k = (values[0], values[1])
        if not is_later:
            first[k] = row(values)
            continue
        kept = first[k]
        current = row(values)
        if kept != current and not (version and kept[vi] != current[vi]):
            conflicts += 1
    _log_conflicts(path, conflicts)


def _log_conflicts(path: Path, conflicts: int) -> None:
    if conflicts:
        log.warning(
            "%s: %d records repeat a sample already stored with other content; the first stored one is used",
            path,
            conflicts,
        )


# ---- generations -------------------------------------------------------------------------


def _generations_frame(gens: Sequence[Generation]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "problem_id": pd.Series([g.problem_id for g in gens], dtype=object),
            "sample_idx": pd.Series([g.sample_idx for g in gens], dtype="Int64"),
            "checkpoint_id": pd.Series([g.checkpoint_id for g in gens], dtype=object),
            "task": pd.Series([g.task for g in gens], dtype=object),
            "template_id": pd.Series([g.template_id for g in gens], dtype=object),
            "finish_reason": pd.Series([g.finish_reason for g in gens], dtype=object),
            "n_tokens": pd.Series([g.n_tokens for g in gens], dtype="Int64"),
        },
        columns=list(GENERATION_COLUMNS),
    )


def _counting_dedupe(records: list[Generation]) -> tuple[list[Generation], int]:
    """The first record of each (problem, sample), as :func:`~rlvr_audit.core.store._dedupe` keeps
    them, and how many later duplicates differ from the kept one."""
    seen: dict[tuple[str, int], Generation] = {}
    out: list[Generation] = []
    conflicts = 0
    for r in records:
        kept = seen.setdefault((r.problem_id, r.sample_idx), r)
        if kept is r:
            out.append(r)
        elif kept != r:
            conflicts += 1
    return out, conflicts


def generation_columns(store: Store, key: str, derive: Derivation | None = None) -> pd.DataFrame:
    """A unit's generations as columns (:data:`GENERATION_COLUMNS`, plus ``derive``'s columns):
    the rows of :meth:`Store.read_generations`, in its order, without the texts (and its warning
    about differing duplicates, on every call)."""
    path = store.generations_path(key)

    def build() -> tuple[pd.DataFrame, int]:
        records = store._read_records(path, Generation, expect={"unit_key": key})
        gens, conflicts = _counting_dedupe(records)
        frame = _generations_frame(gens)
        if derive is not None:
            computed = derive.compute(gens)
            for name, dtype in derive.columns.items():
                frame[name] = pd.Series(computed[name], dtype=dtype)
        return frame, conflicts

    if derive is None:
        name, kind = "generations.parquet", "generations"
    else:
        name = f"generations-{derive.name}-{derive.version}.parquet"
        kind = f"generations+{derive.name}-{derive.version}"
    frame, conflicts = _cached(store, key, path, name, kind, build)
    _log_conflicts(path, conflicts)
    return frame
