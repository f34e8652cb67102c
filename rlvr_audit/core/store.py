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
raises :class:`~rlvr_audit.core.errors.StoreError` naming the file and line, as does a record filed
under another unit or grader than its own, and a unit folder holding records but no
``unit.json``. Duplicate records (the same problem and sample appended twice) keep the first;
duplicates that differ are reported with a warning. A re-grade (``grade --retry``) appends a
grade with a higher ``attempt``; readers take, per sample and grader version, the highest.

Appending is idempotent: under the file's lock, records whose key (problem, sample and, for
grades, grader version) the file already holds are skipped, so two processes that generate or
grade the same samples at once (two ``rlvr-audit grade`` runs on one store) store each once.
Each :class:`Store` remembers the keys it has seen per file and reads only the bytes appended
since (by anyone), so the check costs one pass over the file in all.

Safety (what a store shared by a team, or opened by mistake, must never do):

- **No write leaves the store root.** The store follows no symbolic link below its root (the
  root itself may be one): every path is checked component by component before it is read or
  written, files are opened with ``O_NOFOLLOW``, and a link is refused with its path
  (:class:`~rlvr_audit.core.errors.StoreError`). A unit folder holding a link is a broken unit.
- **One broken unit never disables the rest.** A unit whose ``unit.json`` cannot be read (invalid
  JSON, a value it cannot hold, another schema version, a folder with records but no
  ``unit.json``, a link) is listed by :meth:`Store.broken_units` with its path and reason, logged
  once as a warning, and left out of :meth:`Store.units`; ``ls``, ``grade`` and ``report`` go on
  with the others.
- **Files follow the umask** (``unit.json`` and ``problems/`` files are written through a
  temporary file, which Python creates ``0600``; they get ``0666 & ~umask`` like every other file).
- **Failures are one line.** A store path that is a file, a read-only store and a full disk raise
  :class:`~rlvr_audit.core.errors.StoreError` (exit code 1) naming the path and what to do; an append
  that fails part-way is cut back to the file's previous end, so nothing torn is left behind and
  running the same command again after freeing space stores exactly what is missing.

One module, one concept (just over 800 lines): the store's layout and the rules every write to
it follows (no links, atomic files, locked idempotent appends, one-line failures) are one
contract, kept with every reader and writer of the layout.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil
from filelock import FileLock
from pydantic import BaseModel, ValidationError

from .errors import StoreError, UsageError
from .records import (
    SCHEMA_VERSION,
    EffectiveSampling,
    Generation,
    Grade,
    ImportSource,
    Problem,
    RunManifest,
    UnitSpec,
    stable_hash,
)

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
    sampling: EffectiveSampling | None = None
    """For generated units: the sampling parameters the engine applied (after merging the model's
    generation config where allowed); ``None`` for imported units and units written before it was
    recorded."""


def _umask() -> int:
    """The process's umask, read without changing it (``/proc/self/status`` on Linux; elsewhere
    set and restored at once)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, data: str) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, rename). The file
    gets ``0666 & ~umask`` (``mkstemp`` alone would leave it ``0600``, unreadable by a team)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), 0o666 & ~_umask())
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


def _os_failure(exc: OSError, root: Path, doing: str) -> StoreError:
    """One line for an operating-system failure while writing the store."""
    where = exc.filename or root
    if exc.errno in _NO_SPACE:
        return StoreError(
            f"{where}: no space left on the device holding the store {root} while {doing}; free space and "
            "run the same command again (everything stored before is kept, nothing half-written)"
        )
    if exc.errno in _READ_ONLY:
        return StoreError(
            f"{where}: cannot write ({exc.strerror}): the store {root} is read-only to this user while {doing}; "
            "use a store you can write to (--store DIR), or only read this one (ls, report)"
        )
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return StoreError(f"{where}: {exc.strerror} while {doing}: a file stands where the store {root} needs a folder")
    return StoreError(f"{where}: {exc.strerror or exc} while {doing} (store {root})")


@dataclass(frozen=True)
class BrokenUnit:
    """A unit folder that cannot be read: listed with its path and reason, and skipped."""

    key: str
    """The folder name (the unit key it claims)."""
    path: Path
    """The file (or link) that is wrong."""
    reason: str
    """What is wrong, in words."""

    def line(self) -> str:
        """``<path>: <reason>``."""
        return f"{self.path}: {self.reason}"


class Store:
    """A store rooted at a directory (created on first write)."""

    def __init__(self, root: Path, *, top: Path | None = None) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise UsageError(
                f"{self.root}: is a file, not a store folder; pass --store a folder (it is created when missing)"
            )
        self._top = Path(top) if top is not None else self.root
        """Where the no-link rule starts (a store inside another store's folder starts at the outer root)."""
        self._warned: set[str] = set()
        """Broken units already warned about by this store."""
        self._checked_problems: set[str] = set()
        """Task versions whose problems file was checked against its name."""
        self._seen: dict[Path, tuple[int, int, _Seen]] = {}
        """Per appended file: (inode, bytes read, keys of the records in those bytes)."""

    def substore(self, name: str) -> Store:
        """A store in the folder ``name`` of this one (e.g. the probe units), under the same rules."""
        return Store(self.root / name, top=self._top)

    # ---- safety ------------------------------------------------------------------------
    def _inside(self, path: Path) -> Path:
        """``path`` if no component below the store's top folder is a symbolic link, else a
        :class:`StoreError` naming the link (the store never reads or writes through one)."""
        try:
            rel = path.relative_to(self._top)
        except ValueError:
            raise StoreError(f"{path}: outside the store {self._top}; refusing to touch it") from None
        cur = self._top
        for part in rel.parts:
            cur = cur / part
            if cur.is_symlink():
                raise StoreError(
                    f"{cur}: is a symbolic link inside the store {self._top}; the store follows no links (a write "
                    "through it would leave the store): replace it with the file or folder it points to"
                )
        return path

    @contextmanager
    def _writing(self, doing: str) -> Iterator[None]:
        """Turn an operating-system failure while writing into one :class:`StoreError` line."""
        try:
            yield
        except OSError as exc:
            raise _os_failure(exc, self.root, doing) from exc

    def check_writable(self, doing: str) -> None:
        """Raise the one-line :class:`StoreError` of a failed write now, before long work whose
        results could not be stored (a read-only store, a full disk); ``doing``: what for, in words."""
        with self._writing(doing):
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.root, prefix=".write-check-"):
                pass

    def write_text(self, path: Path, data: str, doing: str) -> None:
        """Atomically write a file of the store (checked for links first; ``doing``: what for, in
        words, for the error line if the write fails)."""
        self._inside(path.parent)
        self._inside(path)
        with self._writing(doing):
            atomic_write(path, data)

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
        if self._inside(path).exists():
            current = self.load_unit(info.key)
            if current.spec != info.spec:
                raise StoreError(f"{path}: holds a different spec for key {info.key}; the store is inconsistent")
            if current == info:
                return
        self.write_text(path, info.model_dump_json(indent=2) + "\n", f"writing unit {info.key}")

    def load_unit(self, key: str) -> UnitInfo:
        """Read ``unit.json`` of a unit."""
        path = self._inside(self.unit_dir(key) / "unit.json")
        try:
            info = UnitInfo.model_validate_json(path.read_bytes())
        except FileNotFoundError as exc:
            raise StoreError(f"{path}: missing (unit {key} has no unit.json)") from exc
        except OSError as exc:
            raise StoreError(f"{path}: cannot read ({exc.strerror})") from exc
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err.get("loc", ()))
            raise StoreError(f"{path}: not a valid unit file: {loc + ': ' if loc else ''}{err['msg']}") from exc
        if info.spec.schema_version != SCHEMA_VERSION:
            raise StoreError(
                f"{path}: written with schema version {info.spec.schema_version}, this rlvr-audit "
                f"reads version {SCHEMA_VERSION}"
            )
        if info.spec.key != key:
            raise StoreError(f"{path}: its spec hashes to {info.spec.key}, not its folder name {key}")
        return info

    def scan(self) -> tuple[list[UnitInfo], list[BrokenUnit]]:
        """Every readable unit (by key) and every broken one.

        A unit folder is broken when its ``unit.json`` cannot be read (see :meth:`load_unit`), when
        it holds generations or grades but no ``unit.json`` (the file is written before any
        record), or when it or anything in it is a symbolic link. A folder with neither
        ``unit.json`` nor records (a run killed while creating it) is skipped silently.
        """
        units = self._inside(self.root / "units")
        if not units.is_dir():
            return [], []
        good: list[UnitInfo] = []
        broken: list[BrokenUnit] = []
        for p in sorted(units.iterdir()):
            link = _first_link(p)
            if link is not None:
                broken.append(BrokenUnit(p.name, link, "a symbolic link inside the store (the store follows no links)"))
                continue
            if not p.is_dir():
                continue
            if not (p / "unit.json").is_file():
                if (p / "generations.jsonl").exists() or (p / "grades").is_dir():
                    broken.append(
                        BrokenUnit(
                            p.name,
                            p / "unit.json",
                            f"missing, but the folder holds records of unit {p.name}: restore unit.json (or move "
                            "the folder aside to drop the unit)",
                        )
                    )
                continue
            try:
                good.append(self.load_unit(p.name))
            except StoreError as exc:
                path = p / "unit.json"
                reason = str(exc).removeprefix(f"{path}: ")
                broken.append(BrokenUnit(p.name, path, reason))
        return good, broken

    def broken_units(self) -> list[BrokenUnit]:
        """Unit folders that cannot be read (see :meth:`scan`)."""
        return self.scan()[1]

    def units(self) -> list[UnitInfo]:
        """Every readable unit's info; each broken unit is logged once (with its path) and skipped."""
        good, broken = self.scan()
        for b in broken:
            if b.key not in self._warned:
                self._warned.add(b.key)
                log.warning("skipping broken unit %s: %s", b.key, b.line())
        return good

    def unit_keys(self) -> list[str]:
        """Keys of every readable unit in the store (broken ones are skipped, see :meth:`units`)."""
        return [u.key for u in self.units()]

    # ---- problems ----------------------------------------------------------------------
    def save_problems(self, data_hash: str, problems: list[Problem]) -> None:
        """Store a task version's problems once (gold answers for grading without the data)."""
        path = self._inside(self.problems_path(data_hash))
        if path.exists():
            return
        self.write_text(path, "".join(p.model_dump_json() + "\n" for p in problems), "writing the task's problems")

    def load_problems(self, data_hash: str) -> list[Problem]:
        """The stored problems of a task version."""
        path = self._inside(self.problems_path(data_hash))
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

    def append_generations(self, key: str, generations: Iterable[Generation]) -> int:
        """Append generations to a unit (those of samples it already holds are skipped); returns
        how many were stored."""
        return self._append(self.generations_path(key), generations, _generation_key)

    def read_grades(self, key: str, grader_id: str, grader_version: str | None = None) -> list[Grade]:
        """A unit's grades by one grader (only ``grader_version`` if given), deduplicated.

        A re-grade supersedes: per sample and grader version only the grades with the highest
        ``attempt`` are read (older attempts stay in the file, which is append-only)."""
        path = self.grades_path(key, grader_id)
        grades = self._read_records(path, Grade, expect={"unit_key": key, "grader_id": grader_id})
        if grader_version is not None:
            grades = [g for g in grades if g.grader_version == grader_version]
        return _dedupe(_latest_attempts(grades), path, version=grader_version is None)

    def append_grades(self, key: str, grader_id: str, grades: Iterable[Grade]) -> int:
        """Append grades of one grader to a unit (those of samples graded already by the same
        grader version are skipped); returns how many were stored."""
        return self._append(self.grades_path(key, grader_id), grades, _grade_key)

    def graders(self, key: str) -> list[str]:
        """Graders that have a grades file for a unit."""
        folder = self._inside(self.unit_dir(key) / "grades")
        return sorted(p.stem for p in folder.glob("*.jsonl")) if folder.is_dir() else []

    def generation_problem_ids(self, key: str) -> set[str]:
        """Problem ids of a unit's stored generations, read line by line (no records are built)."""
        path = self._inside(self.generations_path(key))
        out: set[str] = set()
        if not path.exists():
            return out
        with _open_nofollow(path, os.O_RDONLY) as fh:
            for raw in fh:
                try:
                    out.add(json.loads(raw)["problem_id"])
                except (ValueError, KeyError, TypeError):
                    continue  # a corrupt or torn line: reading the file reports it
        return out

    # ---- taking back a failed write (imports) ------------------------------------------
    def generations_mark(self, key: str) -> int | None:
        """Size of a unit's generations file (0 if it has none yet); ``None`` if the unit does not
        exist. With :meth:`cut_generations`, takes back samples appended since."""
        if not self._inside(self.unit_dir(key) / "unit.json").exists():
            return None
        path = self._inside(self.generations_path(key))
        return path.stat().st_size if path.exists() else 0

    def cut_generations(self, key: str, mark: int) -> None:
        """Cut a unit's generations file back to ``mark`` bytes (see :meth:`generations_mark`)."""
        path = self._inside(self.generations_path(key))
        if not path.exists():
            return
        with self._writing(f"taking back samples of unit {key}"), self._lock(path):
            with _open_nofollow(path, os.O_RDWR) as fh:
                if fh.seek(0, os.SEEK_END) > mark:
                    fh.truncate(mark)
                    fh.flush()
                    os.fsync(fh.fileno())
            self._seen.pop(path, None)

    def remove_unit(self, key: str) -> None:
        """Delete a unit folder this process created (a failed import's), links never followed."""
        folder = self._inside(self.unit_dir(key))
        if folder.is_dir():
            shutil.rmtree(folder)  # rmtree removes links themselves, never what they point to
        for path in list(self._seen):
            if path.parent == folder:
                del self._seen[path]

    def remove_file(self, path: Path) -> None:
        """Delete one file of the store that this process created."""
        self._inside(path).unlink(missing_ok=True)

    # ---- runs --------------------------------------------------------------------------
    def write_manifest(self, manifest: RunManifest) -> None:
        """Write (or replace) a run manifest atomically."""
        self.write_text(
            self.root / "runs" / f"{manifest.run_id}.json",
            manifest.model_dump_json(indent=2) + "\n",
            "writing the run manifest",
        )

    def manifests(self) -> list[RunManifest]:
        """All run manifests, oldest first; unreadable ones are skipped with a warning."""
        folder = self._inside(self.root / "runs")
        out: list[RunManifest] = []
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            if path.is_symlink():
                log.warning("skipping run manifest %s: a symbolic link (the store follows no links)", path)
                continue
            try:
                out.append(RunManifest.model_validate_json(path.read_text(encoding="utf-8")))
            except (ValidationError, OSError) as exc:
                log.warning("skipping unreadable run manifest %s: %s", path, exc)
        return out

    # ---- JSONL machinery ---------------------------------------------------------------
    def _lock(self, path: Path) -> FileLock:
        return FileLock(str(self._inside(Path(str(path) + ".lock"))))

    def _append(self, path: Path, records: Iterable[BaseModel], key: Callable[[Any], tuple[Any, ...]]) -> int:
        """Append the records whose key the file does not hold yet; returns how many were written.

        One ``write`` of whole lines, flushed and fsync'ed, through a descriptor opened with
        ``O_NOFOLLOW``; if it fails part-way (a full disk), the file is cut back to its previous
        end, so it never keeps a torn line."""
        batch = list(records)
        if not batch:
            return 0
        self._inside(path)
        with self._writing(f"appending to {path.name}"):
            self._inside(path.parent)
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock(path):
                self._repair_torn_tail(path)
                seen = self._stored_keys(path, key)
                fresh = [r for r in batch if seen.add(key(r))]
                if not fresh:
                    return 0
                data = "".join(r.model_dump_json() + "\n" for r in fresh).encode("utf-8")
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW, 0o666)
                try:
                    st = os.fstat(fd)
                    start = st.st_size
                    try:
                        view = memoryview(data)
                        while view:
                            view = view[os.write(fd, view) :]
                        os.fsync(fd)
                    except BaseException:
                        os.ftruncate(fd, start)  # no torn line left behind
                        for k in map(key, fresh):
                            seen.discard(k)
                        raise
                    end = start + len(data)
                finally:
                    os.close(fd)
                self._seen[path] = (st.st_ino, end, seen)
        return len(fresh)

    def _stored_keys(self, path: Path, key: Callable[[Any], tuple[Any, ...]]) -> _Seen:
        """Keys of the records ``path`` holds (caller holds the lock; the file ends in a newline).
        Reads only what was appended since this store last looked, unless the file was replaced
        or shrank (a torn tail repaired by another process); line by line, so memory stays small."""
        try:
            st = os.stat(path)
        except FileNotFoundError:
            self._seen.pop(path, None)
            return _Seen()
        inode, offset, seen = self._seen.get(path, (st.st_ino, 0, _Seen()))
        if inode != st.st_ino or offset > st.st_size:
            inode, offset, seen = st.st_ino, 0, _Seen()
        if offset < st.st_size:
            with _open_nofollow(path, os.O_RDONLY) as fh:
                fh.seek(offset)
                for raw in fh:
                    offset += len(raw)
                    if not raw.strip():
                        continue
                    try:
                        seen.add(key(json.loads(raw)))
                    except (ValueError, KeyError, TypeError):
                        continue  # a corrupt line: reading the file reports it with its line number
        self._seen[path] = (inode, offset, seen)
        return seen

    def _repair_torn_tail(self, path: Path) -> None:
        """If ``path`` ends without a newline, move the torn tail to ``<path>.torn`` and
        truncate (caller holds the lock)."""
        if not self._inside(path).exists():
            return
        size = path.stat().st_size
        if size == 0:
            return
        with _open_nofollow(path, os.O_RDWR) as fh:
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
            torn_path = self._inside(Path(str(path) + ".torn"))
            with (
                self._writing(f"repairing {path.name}"),
                _open_nofollow(torn_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT) as out,
            ):
                out.write(torn + b"\n")
                out.flush()
                os.fsync(out.fileno())
            with self._writing(f"repairing {path.name}"):
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
        if not self._inside(path).exists():
            return []
        with _open_nofollow(path, os.O_RDONLY) as fh:
            data = fh.read()
        if data and not data.endswith(b"\n"):
            with self._lock(path):
                self._repair_torn_tail(path)
            with _open_nofollow(path, os.O_RDONLY) as fh:
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


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
"""Open flag refusing a symbolic link as the last path component (0 where the OS has none)."""


def _open_nofollow(path: Path, flags: int) -> Any:
    """A binary file object for ``path`` opened with ``O_NOFOLLOW`` (``flags``: ``O_RDONLY``,
    ``O_RDWR`` or ``O_WRONLY | O_APPEND | O_CREAT``); new files get ``0666 & ~umask``."""
    try:
        fd = os.open(path, flags | _NOFOLLOW, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StoreError(f"{path}: is a symbolic link inside the store; the store follows no links") from None
        raise
    mode = "rb" if flags == os.O_RDONLY else ("r+b" if flags & os.O_RDWR else "ab")
    return os.fdopen(fd, mode)


def _first_link(folder: Path) -> Path | None:
    """``folder`` itself, or the first thing inside it (two levels: its files and ``grades/``),
    that is a symbolic link; ``None`` if there is none."""
    if folder.is_symlink():
        return folder
    if not folder.is_dir():
        return None
    for child in sorted(folder.iterdir()):
        if child.is_symlink():
            return child
        if child.is_dir():
            for grandchild in sorted(child.iterdir()):
                if grandchild.is_symlink():
                    return grandchild
    return None


class _Seen:
    """Keys of stored records, compactly: a key is ``(problem_id, sample_idx, *rest)``; the sample
    indexes of each ``(problem_id, *rest)`` are kept as a bitmap (a million samples of one
    unit cost kilobytes, not a set of a million tuples). Odd keys go to a plain set."""

    _MAX_INDEX = 1 << 24

    def __init__(self) -> None:
        self._bits: dict[tuple[Any, ...], bytearray] = {}
        self._other: set[tuple[Any, ...]] = set()

    def _split(self, k: tuple[Any, ...]) -> tuple[tuple[Any, ...], int] | None:
        idx = k[1] if len(k) >= 2 else None
        if type(idx) is not int or not 0 <= idx < self._MAX_INDEX:
            return None
        return (k[0], *k[2:]), idx

    def add(self, k: tuple[Any, ...]) -> bool:
        """Add ``k``; whether it was new."""
        split = self._split(k)
        if split is None:
            if k in self._other:
                return False
            self._other.add(k)
            return True
        group, idx = split
        bits = self._bits.get(group)
        if bits is None:
            bits = self._bits[group] = bytearray()
        byte, bit = divmod(idx, 8)
        if byte >= len(bits):
            bits.extend(bytes(byte + 1 - len(bits)))
        if bits[byte] >> bit & 1:
            return False
        bits[byte] |= 1 << bit
        return True

    def discard(self, k: tuple[Any, ...]) -> None:
        """Remove ``k`` if present."""
        split = self._split(k)
        if split is None:
            self._other.discard(k)
            return
        group, idx = split
        bits = self._bits.get(group)
        byte, bit = divmod(idx, 8)
        if bits is not None and byte < len(bits):
            bits[byte] &= ~(1 << bit) & 0xFF

    def __contains__(self, k: tuple[Any, ...]) -> bool:
        split = self._split(k)
        if split is None:
            return k in self._other
        group, idx = split
        bits = self._bits.get(group)
        byte, bit = divmod(idx, 8)
        return bits is not None and byte < len(bits) and bool(bits[byte] >> bit & 1)


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
    try:
        created = psutil.Process(manifest.pid).create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return "interrupted"
    except psutil.Error:  # cannot tell (permissions): trust the record
        return manifest.status
    started = _dt.datetime.fromisoformat(manifest.started_at).timestamp()
    return "interrupted" if created > started + 1.0 else "running"
