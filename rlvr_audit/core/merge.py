"""``rlvr-audit store merge SRC... --store DEST``: join stores written by separate processes.

Shards of one grid (``--shard I/N``, a Slurm array, hand-split runs on several machines) each
write their own store; merging them gives the store one run would have written: every unit
(``unit.json``), every task's problems, every generation and grade, every run manifest. Contamination
probe units (the ``probes/`` folder) are merged the same way.

Everything is read and checked before anything is written: a unit whose spec or recorded sampling
parameters differ between stores, or a problems file that differs, is refused with both paths. A
sample stored in several stores with *different* text (engines are not bit-reproducible across
GPUs) keeps the destination's (or the first source's) text, and the other store's grades of that
sample are not copied (they judged other text); the count is reported. Appends skip what the
destination holds, so a merge interrupted and run again completes without duplicates.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import StoreError, UsageError
from .records import Generation, Grade
from .store import Store, UnitInfo

log = logging.getLogger(__name__)

PROBES = "probes"
"""Sub-store of contamination probe units (see :mod:`rlvr_audit.generation.probes`)."""


@dataclass
class MergeSummary:
    """What a merge did."""

    new_units: list[str] = field(default_factory=list)
    """Keys of the units the destination did not hold before."""
    generations: int = 0
    """Generations copied."""
    grades: int = 0
    """Grades copied."""
    manifests: int = 0
    """Run manifests copied."""
    conflicts: int = 0
    """Samples stored with different text in two stores (the first kept, the other's grades left out)."""
    notes: list[str] = field(default_factory=list)
    """Lines for the user."""


def _is_store(path: Path) -> bool:
    return path.is_dir() and any((path / d).is_dir() for d in ("units", "runs", "problems", PROBES))


def _unit_file(store: Store, key: str) -> Path:
    return store.unit_dir(key) / "unit.json"


def _check_units(sources: list[Store], dest: Store) -> dict[str, UnitInfo]:
    """Every unit of the sources, checked for agreement with the destination and each other."""
    seen: dict[str, tuple[UnitInfo, Path]] = {}
    for store in [dest, *sources]:
        for key in store.unit_keys():
            info = store.load_unit(key)
            if key in seen:
                first, where = seen[key]
                if first.spec != info.spec:
                    raise StoreError(f"{_unit_file(store, key)}: another spec than {where} for unit {key}")
                if None not in (first.sampling, info.sampling) and first.sampling != info.sampling:
                    raise StoreError(
                        f"{_unit_file(store, key)}: unit {key} was generated with other sampling parameters than "
                        f"in {where} ({info.sampling} vs {first.sampling}); these stores do not hold one grid"
                    )
                if first.sampling is None and info.sampling is not None:
                    seen[key] = (info, _unit_file(store, key))
            else:
                seen[key] = (info, _unit_file(store, key))
    return {k: v[0] for k, v in seen.items()}


def _check_problems(sources: list[Store], dest: Store) -> None:
    seen: dict[str, Path] = {}
    for store in [dest, *sources]:
        folder = store.root / "problems"
        for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
            if path.name in seen and seen[path.name].read_bytes() != path.read_bytes():
                raise StoreError(
                    f"{path}: differs from {seen[path.name]} (the same task version must hold the same problems)"
                )
            seen.setdefault(path.name, path)


def _merge_level(sources: list[Store], dest: Store, summary: MergeSummary) -> None:
    """Merge units, problems and records of ``sources`` into ``dest`` (one level: the store or its probes)."""
    infos = _check_units(sources, dest)
    _check_problems(sources, dest)
    # read every record first: a corrupt source is refused before anything is written
    gens = {id(s): {k: s.read_generations(k) for k in s.unit_keys()} for s in sources}
    grades = {id(s): {(k, g): s.read_grades(k, g) for k in s.unit_keys() for g in s.graders(k)} for s in sources}
    for store in sources:
        folder = store.root / "problems"
        for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
            if not (dest.root / "problems" / path.name).exists():
                dest.save_problems(path.stem, store.load_problems(path.stem))
        for key, records in gens[id(store)].items():
            info = infos[key]
            current = dest.load_unit(key) if _unit_file(dest, key).is_file() else None
            if current is None or (current.sampling is None and info.sampling is not None):
                dest.ensure_unit(info)
            _copy_side_files(store, dest, key)
            if current is None:
                summary.new_units.append(key)
            kept = {(g.problem_id, g.sample_idx): g for g in dest.read_generations(key)}
            fresh: list[Generation] = []
            differ: set[tuple[str, int]] = set()
            for g in records:
                k = (g.problem_id, g.sample_idx)
                if k not in kept:
                    kept[k] = g
                    fresh.append(g)
                elif kept[k].completion != g.completion:
                    differ.add(k)
            dest.append_generations(key, fresh)
            summary.generations += len(fresh)
            summary.conflicts += len(differ)
            for (gkey, grader), rows in grades[id(store)].items():
                if gkey != key:
                    continue
                mine = [r for r in rows if (r.problem_id, r.sample_idx) not in differ]
                before = len(dest.read_grades(key, grader))
                dest.append_grades(key, grader, _ordered(mine))
                summary.grades += len(dest.read_grades(key, grader)) - before


def _ordered(rows: list[Grade]) -> list[Grade]:
    return sorted(rows, key=lambda r: (r.problem_id, r.sample_idx, r.grader_version))


RECORD_FILES = frozenset({"unit.json", "generations.jsonl"})
"""Files of a unit folder merged record by record; other plain files (``probe.json``) are copied
when the destination lacks them."""


def _copy_side_files(source: Store, dest: Store, key: str) -> None:
    for path in sorted(source.unit_dir(key).iterdir()):
        if path.is_file() and path.name not in RECORD_FILES and path.suffix not in (".lock", ".torn", ".tmp"):
            target = dest.unit_dir(key) / path.name
            if not target.exists():
                _atomic_copy(path, target)


def _atomic_copy(path: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(path.read_bytes())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def merge_stores(sources: list[Path], dest: Path) -> MergeSummary:
    """Merge the stores at ``sources`` into the store at ``dest`` (created if missing)."""
    if not sources:
        raise UsageError(
            "store merge: name the stores to merge (e.g. rlvr-audit store merge shard1 shard2 --store all)"
        )
    for path in sources:
        if not _is_store(path):
            raise UsageError(f"store merge: {path} is not a store (no units/, runs/, problems/ or probes/ folder)")
        if path.resolve() == dest.resolve():
            raise UsageError(f"store merge: {path} is the destination store itself (--store)")
    summary = MergeSummary()
    stores = [Store(p) for p in sources]
    destination = Store(dest)
    _merge_level(stores, destination, summary)
    probe_sources = [Store(p / PROBES) for p in sources if (p / PROBES).is_dir()]
    if probe_sources:
        _merge_level(probe_sources, Store(dest / PROBES), summary)
    for store in stores:
        known = {m.run_id for m in destination.manifests()}
        for manifest in store.manifests():
            if manifest.run_id not in known:
                destination.write_manifest(manifest)
                summary.manifests += 1
    if summary.conflicts:
        summary.notes.append(
            f"{summary.conflicts} samples had different text in two stores: the first stored text was kept and the "
            "other store's grades of those samples were left out (grade again to grade what was kept)"
        )
    return summary
