"""The embedded store: local files, JSON lines as the source of truth.

Layout under the store root::

    units/<key>/unit.json              the UnitSpec and checkpoint info (written once, atomically)
    units/<key>/generations.jsonl      Generation records, append-only
    units/<key>/grades/<grader>.jsonl  Grade records of one grader, append-only
    problems/<data_hash>.jsonl         the task's Problem records (gold answers), written once
    runs/<run_id>.json                 RunManifest of each run (atomically replaced)

Appends are one ``write`` of whole lines under a file lock, flushed and fsync'ed, so a crash
leaves at most one torn last line. Reading detects a torn last line (no trailing newline),
moves its bytes to ``<file>.torn`` (nothing is silently dropped), truncates the file back to
the last complete line and logs a warning; a malformed *complete* line is corruption and
raises :class:`~rlvr_audit.errors.StoreError` naming the file and line, as does a record filed
under another unit or grader than its own, and a unit folder holding records but no
``unit.json``. Duplicate records (the same problem and sample appended twice) keep the first;
duplicates that differ are reported with a warning. A re-grade (``grade --retry``) appends a
grade with a higher ``attempt``; readers take, per sample and grader version, the highest.

Appending is idempotent: under the file's lock, records whose key (problem, sample and, for
grades, grader version) the file already holds are skipped, so two processes that generate or
grade the same samples at once (two ``rlvr-audit grade`` runs on one store) store each once.
Each :class:`Store` remembers the keys it has seen per file and reads only the bytes appended
since (by anyone), so the check costs one pass over the file in all.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import socket
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock
from pydantic import BaseModel, ValidationError

from .errors import StoreError
from .records import SCHEMA_VERSION, Generation, Grade, ImportSource, Problem, RunManifest, UnitSpec, stable_hash

log = logging.getLogger(__name__)

R = TypeVar("R", bound=BaseModel)

DEFAULT_STORE = Path("rlvr-audit-store")
"""Default store location, relative to the current directory."""


class UnitInfo(BaseModel):
    """What ``unit.json`` holds: the spec (which defines the key) plus descriptive info that
    does not change generations (family, base, reward, step, display names)."""

    key: str
    """The unit key (``spec.key``)."""
    spec: UnitSpec
    """The unit's spec."""
    family: str = "local"
    """Family id of the checkpoint."""
    family_display: str = "Local models"
    """Family display name."""
    base: str | None = None
    """Checkpoint id this unit's checkpoint is compared against."""
    reward: str | None = None
    """RLVR reward of the checkpoint."""
    step: int | None = None
    """Training step of the checkpoint."""
    task_display: str = ""
    """Benchmark display name."""
    n_problems_total: int = 0
    """Number of problems in the task (the unit is partial if fewer are generated)."""
    source: str = "generated"
    """``generated`` by an engine, or ``imported:<format>`` from published outputs."""
    imported: ImportSource | None = None
    """For imported units: source files, the source's own reported metrics, match counts."""


def _atomic_write(path: Path, data: str) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Store:
    """A store rooted at a directory (created on first write)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._checked_problems: set[str] = set()
        """Task versions whose problems file was checked against its name."""
        self._seen: dict[Path, tuple[int, int, set[tuple[Any, ...]]]] = {}
        """Per appended file: (inode, bytes read, keys of the records in those bytes)."""

    # ---- paths -------------------------------------------------------------------------
    def unit_dir(self, key: str) -> Path:
        """Folder of one unit."""
        return self.root / "units" / key

    def generations_path(self, key: str) -> Path:
        """The unit's generations file."""
        return self.unit_dir(key) / "generations.jsonl"

    def grades_path(self, key: str, grader_id: str) -> Path:
        """The unit's grades file for one grader."""
        return self.unit_dir(key) / "grades" / f"{grader_id}.jsonl"

    def problems_path(self, data_hash: str) -> Path:
        """The problems file of a task version."""
        return self.root / "problems" / f"{data_hash}.jsonl"

    # ---- units -------------------------------------------------------------------------
    def ensure_unit(self, info: UnitInfo) -> None:
        """Create the unit's folder and ``unit.json`` if new; refresh the descriptive info if
        it changed (the spec of an existing key never changes: same key, same spec)."""
        path = self.unit_dir(info.key) / "unit.json"
        if path.exists():
            current = self.load_unit(info.key)
            if current.spec != info.spec:
                raise StoreError(f"{path}: holds a different spec for key {info.key}; the store is inconsistent")
            if current == info:
                return
        _atomic_write(path, info.model_dump_json(indent=2) + "\n")

    def load_unit(self, key: str) -> UnitInfo:
        """Read ``unit.json`` of a unit."""
        path = self.unit_dir(key) / "unit.json"
        try:
            info = UnitInfo.model_validate_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise StoreError(f"{path}: missing (unit {key} has no unit.json)") from exc
        except ValidationError as exc:
            raise StoreError(f"{path}: not a valid unit file: {exc.errors()[0]['msg']}") from exc
        if info.spec.schema_version != SCHEMA_VERSION:
            raise StoreError(
                f"{path}: written with schema version {info.spec.schema_version}, this rlvr-audit "
                f"reads version {SCHEMA_VERSION}"
            )
        if info.spec.key != key:
            raise StoreError(f"{path}: its spec hashes to {info.spec.key}, not its folder name {key}")
        return info

    def unit_keys(self) -> list[str]:
        """Keys of every unit in the store (folders with a ``unit.json``).

        A unit folder that holds generations or grades but no ``unit.json`` is corruption (the
        file is written before any record), raised as :class:`StoreError` rather than leaving
        the unit silently out of every report. A folder with neither (a run killed while
        creating it) is skipped.
        """
        units = self.root / "units"
        if not units.is_dir():
            return []
        keys = []
        for p in sorted(units.iterdir()):
            if (p / "unit.json").is_file():
                keys.append(p.name)
            elif (p / "generations.jsonl").exists() or (p / "grades").is_dir():
                raise StoreError(
                    f"{p / 'unit.json'}: missing, but the folder holds records of unit {p.name}; the store is "
                    "corrupt: restore unit.json (or move the folder aside to drop the unit)"
                )
        return keys

    def units(self) -> list[UnitInfo]:
        """Every unit's info."""
        return [self.load_unit(k) for k in self.unit_keys()]

    # ---- problems ----------------------------------------------------------------------
    def save_problems(self, data_hash: str, problems: list[Problem]) -> None:
        """Store a task version's problems once (gold answers for grading without the data)."""
        path = self.problems_path(data_hash)
        if path.exists():
            return
        _atomic_write(path, "".join(p.model_dump_json() + "\n" for p in problems))

    def load_problems(self, data_hash: str) -> list[Problem]:
        """The stored problems of a task version."""
        path = self.problems_path(data_hash)
        if not path.exists():
            raise StoreError(f"{path}: missing (problems of task version {data_hash})")
        problems = self._read_records(path, Problem)
        if data_hash not in self._checked_problems:
            self._checked_problems.add(data_hash)
            if stable_hash([[p.problem_id, p.question, p.answer] for p in problems], len(data_hash)) != data_hash:
                log.warning(
                    "%s: its problems do not hash to the file's name (the task version): the file was edited or "
                    "damaged, so its gold answers may not be the ones the units were generated for",
                    path,
                )
        return problems

    # ---- generations and grades --------------------------------------------------------
    def read_generations(self, key: str) -> list[Generation]:
        """A unit's generations, first record kept for each (problem, sample)."""
        path = self.generations_path(key)
        return _dedupe(self._read_records(path, Generation, expect={"unit_key": key}), path)

    def append_generations(self, key: str, generations: Iterable[Generation]) -> None:
        """Append generations to a unit (those of samples it already holds are skipped)."""
        self._append(self.generations_path(key), generations, _generation_key)

    def read_grades(self, key: str, grader_id: str, grader_version: str | None = None) -> list[Grade]:
        """A unit's grades by one grader (only ``grader_version`` if given), deduplicated.

        A re-grade supersedes: per sample and grader version only the grades with the highest
        ``attempt`` are read (older attempts stay in the file, which is append-only)."""
        path = self.grades_path(key, grader_id)
        grades = self._read_records(path, Grade, expect={"unit_key": key, "grader_id": grader_id})
        if grader_version is not None:
            grades = [g for g in grades if g.grader_version == grader_version]
        return _dedupe(_latest_attempts(grades), path, version=grader_version is None)

    def append_grades(self, key: str, grader_id: str, grades: Iterable[Grade]) -> None:
        """Append grades of one grader to a unit (those of samples graded already by the same
        grader version are skipped)."""
        self._append(self.grades_path(key, grader_id), grades, _grade_key)

    def graders(self, key: str) -> list[str]:
        """Graders that have a grades file for a unit."""
        folder = self.unit_dir(key) / "grades"
        return sorted(p.stem for p in folder.glob("*.jsonl")) if folder.is_dir() else []

    # ---- runs --------------------------------------------------------------------------
    def write_manifest(self, manifest: RunManifest) -> None:
        """Write (or replace) a run manifest atomically."""
        _atomic_write(self.root / "runs" / f"{manifest.run_id}.json", manifest.model_dump_json(indent=2) + "\n")

    def manifests(self) -> list[RunManifest]:
        """All run manifests, oldest first; unreadable ones are skipped with a warning."""
        folder = self.root / "runs"
        out: list[RunManifest] = []
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                out.append(RunManifest.model_validate_json(path.read_text(encoding="utf-8")))
            except (ValidationError, OSError) as exc:
                log.warning("skipping unreadable run manifest %s: %s", path, exc)
        return out

    # ---- JSONL machinery ---------------------------------------------------------------
    def _lock(self, path: Path) -> FileLock:
        return FileLock(str(path) + ".lock")

    def _append(self, path: Path, records: Iterable[BaseModel], key: Callable[[Any], tuple[Any, ...]]) -> None:
        batch = list(records)
        if not batch:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock(path):
            self._repair_torn_tail(path)
            seen = self._stored_keys(path, key)
            fresh = []
            for r in batch:
                k = key(r)
                if k not in seen:
                    seen.add(k)
                    fresh.append(r)
            data = "".join(r.model_dump_json() + "\n" for r in fresh)
            if not data:
                return
            with path.open("ab") as fh:
                fh.write(data.encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
                end = fh.tell()
            inode = os.stat(path).st_ino
            self._seen[path] = (inode, end, seen)

    def _stored_keys(self, path: Path, key: Callable[[Any], tuple[Any, ...]]) -> set[tuple[Any, ...]]:
        """Keys of the records ``path`` holds (caller holds the lock; the file ends in a newline).
        Reads only what was appended since this store last looked, unless the file was replaced
        or shrank (a torn tail repaired by another process)."""
        try:
            st = os.stat(path)
        except FileNotFoundError:
            self._seen.pop(path, None)
            return set()
        inode, offset, seen = self._seen.get(path, (st.st_ino, 0, set()))
        if inode != st.st_ino or offset > st.st_size:
            inode, offset, seen = st.st_ino, 0, set()
        if offset < st.st_size:
            with path.open("rb") as fh:
                fh.seek(offset)
                data = fh.read()
            for raw in data.split(b"\n"):
                if not raw.strip():
                    continue
                try:
                    seen.add(key(json.loads(raw)))
                except (ValueError, KeyError, TypeError):
                    continue  # a corrupt line: reading the file reports it with its line number
            offset += len(data)
        self._seen[path] = (inode, offset, seen)
        return seen

    def _repair_torn_tail(self, path: Path) -> None:
        """If ``path`` ends without a newline, move the torn tail to ``<path>.torn`` and
        truncate (caller holds the lock)."""
        if not path.exists():
            return
        size = path.stat().st_size
        if size == 0:
            return
        with path.open("rb+") as fh:
            fh.seek(size - 1)
            if fh.read(1) == b"\n":
                return
            # find the last newline
            block = 1 << 16
            pos = size
            cut = 0
            while pos > 0:
                start = max(0, pos - block)
                fh.seek(start)
                chunk = fh.read(pos - start)
                idx = chunk.rfind(b"\n")
                if idx >= 0:
                    cut = start + idx + 1
                    break
                pos = start
            fh.seek(cut)
            torn = fh.read()
            with open(str(path) + ".torn", "ab") as out:
                out.write(torn + b"\n")
                out.flush()
                os.fsync(out.fileno())
            fh.truncate(cut)
            fh.flush()
            os.fsync(fh.fileno())
        log.warning(
            "%s: the last line was torn (an interrupted write, %d bytes); moved it to %s.torn and "
            "kept the %d complete bytes before it",
            path,
            len(torn),
            path,
            cut,
        )

    def _read_records(self, path: Path, model: type[R], expect: dict[str, str] | None = None) -> list[R]:
        """Every record of ``path``; ``expect``: field values every record must have (the unit
        key and grader its file belongs to), else the file is corrupt."""
        if not path.exists():
            return []
        with path.open("rb") as fh:
            data = fh.read()
        if data and not data.endswith(b"\n"):
            with self._lock(path):
                self._repair_torn_tail(path)
            with path.open("rb") as fh:
                data = fh.read()
        out: list[R] = []
        for lineno, raw in enumerate(data.split(b"\n")[:-1] if data else [], 1):
            if not raw.strip():
                continue
            try:
                record = model.model_validate_json(raw)
            except ValidationError as exc:
                err = exc.errors()[0]
                what = err.get("msg", "invalid")
                loc = ".".join(str(p) for p in err.get("loc", ()))
                raise StoreError(
                    f"{path}:{lineno}: not a valid {model.__name__} record ({loc + ': ' if loc else ''}{what}); "
                    "the store is corrupt: move the file aside or repair that line"
                ) from exc
            for name, value in (expect or {}).items():
                if getattr(record, name) != value:
                    raise StoreError(
                        f"{path}:{lineno}: a {model.__name__} record of {name} {getattr(record, name)!r} in the "
                        f"file of {name} {value!r}; the store is corrupt: move the file aside or repair that line"
                    )
            out.append(record)
        return out


def _generation_key(record: Any) -> tuple[Any, ...]:
    """Identity of a stored generation (a record or its parsed JSON): problem and sample."""
    if isinstance(record, dict):
        return (record["problem_id"], record["sample_idx"])
    return (record.problem_id, record.sample_idx)


def _grade_key(record: Any) -> tuple[Any, ...]:
    """Identity of a stored grade (a record or its parsed JSON): problem, sample, grader version
    and attempt (a re-grade is a new record, see :func:`_latest_attempts`)."""
    if isinstance(record, dict):
        return (record["problem_id"], record["sample_idx"], record["grader_version"], record.get("attempt", 0))
    return (record.problem_id, record.sample_idx, record.grader_version, record.attempt)


def _latest_attempts(grades: list[Grade]) -> list[Grade]:
    """The grades whose ``attempt`` is the highest of their sample and grader version, in file order."""
    latest: dict[tuple[str, int, str], int] = {}
    for g in grades:
        k = (g.problem_id, g.sample_idx, g.grader_version)
        if g.attempt > latest.get(k, -1):
            latest[k] = g.attempt
    return [g for g in grades if g.attempt == latest[(g.problem_id, g.sample_idx, g.grader_version)]]


def _dedupe(records: list[Any], path: Path | None = None, *, version: bool = False) -> list[Any]:
    """Keep the first record for each (problem_id, sample_idx); a later duplicate that differs
    from the kept one is reported (with ``path``) rather than silently dropped. ``version``:
    grades of several grader versions, where equal keys of different versions are not
    duplicates worth a warning."""
    first: dict[tuple[str, int], Any] = {}
    out = []
    conflicts = 0
    for r in records:
        k = (r.problem_id, r.sample_idx)
        kept = first.get(k)
        if kept is None:
            first[k] = r
            out.append(r)
        elif kept != r and not (version and kept.grader_version != r.grader_version):
            conflicts += 1
    if conflicts:
        log.warning(
            "%s: %d records repeat a sample already stored with other content; the first stored one is used",
            path,
            conflicts,
        )
    return out


def run_status(manifest: RunManifest) -> str:
    """A run's status as it is now: the recorded one, except that a manifest still saying
    ``running`` whose process is gone (same host, and no process with its pid, or one started
    after the run: a reused pid) is ``interrupted`` (killed, or the machine went down). A run on
    another host, or from a manifest without pid and host, keeps its recorded status."""
    if manifest.status != "running" or manifest.pid is None or manifest.host != socket.gethostname():
        return manifest.status
    import psutil  # only here: a process table lookup

    try:
        created = psutil.Process(manifest.pid).create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return "interrupted"
    except psutil.Error:  # cannot tell (permissions): trust the record
        return manifest.status
    started = _dt.datetime.fromisoformat(manifest.started_at).timestamp()
    return "interrupted" if created > started + 1.0 else "running"
