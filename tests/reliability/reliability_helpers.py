"""Shared helpers of the reliability suite: a toy registry, CLI commands as subprocesses, and a
canonical snapshot of a store (every record, keyed, with duplicates counted) to compare stores.

Tests read the benchmark files in ``../shared/data/benchmarks`` (beside the project) in place.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed import DATA, ROOT, needs_data  # noqa: F401  (re-exported for the reliability tests)
from testbed import TOY_REGISTRY as REGISTRY


def write_registry(folder: Path) -> Path:
    """Write :data:`REGISTRY` as ``folder/checkpoints.yaml`` and return its path."""
    path = folder / "checkpoints.yaml"
    path.write_text(REGISTRY, encoding="utf-8")
    return path


def cli(*args: str) -> list[str]:
    """The command line of ``rlvr-audit ARGS`` run with this interpreter."""
    return [sys.executable, "-m", "rlvr_audit.cli", *args]


def child_env() -> dict[str, str]:
    """Environment of CLI subprocesses: no colour, wide console (one-line messages stay one line)."""
    env = dict(os.environ)
    env.update({"NO_COLOR": "1", "COLUMNS": "400", "TERM": "dumb", "PYTHONHASHSEED": "0"})
    env.pop("RLVR_AUDIT_STORE", None)
    env.pop("RLVR_AUDIT_CONFIG_DIR", None)
    env.pop("RLVR_AUDIT_DATA_DIR", None)
    return env


def run_cli(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run a CLI command to the end, capturing its output."""
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=child_env())


def one_line(text: str) -> str:
    """Output with line wrapping undone (rich wraps long messages)."""
    return " ".join(text.split())


@dataclass
class StoreSnapshot:
    """Every record of a store, canonically ordered, plus what is wrong with the raw files."""

    units: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Unit key -> parsed ``unit.json``."""
    generations: dict[str, dict[tuple[str, int], dict[str, Any]]] = field(default_factory=dict)
    """Unit key -> (problem, sample) -> generation record."""
    grades: dict[tuple[str, str], dict[tuple[str, int, str], dict[str, Any]]] = field(default_factory=dict)
    """(unit key, grader) -> (problem, sample, version) -> grade record."""
    problems: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Data hash -> problem records."""
    duplicates: list[str] = field(default_factory=list)
    """``file: key`` of every record stored more than once."""
    torn: list[str] = field(default_factory=list)
    """``.torn`` files (torn last lines moved aside by a repair)."""

    def counts(self) -> tuple[int, int]:
        """(generations, grades) stored."""
        return (
            sum(len(v) for v in self.generations.values()),
            sum(len(v) for v in self.grades.values()),
        )


def _jsonl(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), f"{path}: ends in a torn line"
    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


def snapshot(store: Path) -> StoreSnapshot:
    """Read every file of a store directly (not through :class:`rlvr_audit.core.store.Store`)."""
    snap = StoreSnapshot()
    for unit_json in sorted(store.glob("units/*/unit.json")):
        key = unit_json.parent.name
        snap.units[key] = json.loads(unit_json.read_text(encoding="utf-8"))
        gens: dict[tuple[str, int], dict[str, Any]] = {}
        gen_path = unit_json.parent / "generations.jsonl"
        for rec in _jsonl(gen_path) if gen_path.exists() else []:
            k = (rec["problem_id"], rec["sample_idx"])
            if k in gens:
                snap.duplicates.append(f"{gen_path}: {k}")
            gens.setdefault(k, rec)
        snap.generations[key] = gens
        for grade_path in sorted((unit_json.parent / "grades").glob("*.jsonl")):
            grades: dict[tuple[str, int, str], dict[str, Any]] = {}
            for rec in _jsonl(grade_path):
                gk = (rec["problem_id"], rec["sample_idx"], rec["grader_version"])
                if gk in grades:
                    snap.duplicates.append(f"{grade_path}: {gk}")
                grades.setdefault(gk, rec)
            snap.grades[(key, grade_path.stem)] = grades
    for path in sorted(store.glob("problems/*.jsonl")):
        snap.problems[path.stem] = _jsonl(path)
    snap.torn = sorted(str(p.relative_to(store)) for p in store.rglob("*.torn"))
    return snap


def table_bytes(report_dir: Path) -> dict[str, bytes]:
    """``tables/*.csv`` of a report folder, by file name."""
    return {p.name: p.read_bytes() for p in sorted((report_dir / "tables").glob("*.csv"))}


def first_problems(n: int) -> list[dict[str, str]]:
    """Id and gold answer of the first ``n`` MATH-500 problems."""
    rows = [json.loads(line) for line in (DATA / "math500.jsonl").read_text(encoding="utf-8").splitlines()[:n]]
    return [{"id": r.get("unique_id", r.get("id")), "answer": r["answer"]} for r in rows]


def make_store(tmp: Path, responses: list[str], *, base: bool = False) -> Path:
    """A scripted store of one unit (``toy/rl``; with ``base`` also ``toy/base``, same responses):
    the first len(responses) MATH-500 problems, one sample each."""
    write_registry(tmp)
    problems = first_problems(len(responses))
    script = tmp / "script.json"
    script.write_text(json.dumps({"*": {p["id"]: r for p, r in zip(problems, responses, strict=True)}}))
    r = run_cli(
        cli(
            "generate", "--backend", "scripted", "--model-args", f"script={script}", "--checkpoints", "toy/rl",
            *([] if base else ["--no-bases"]), "--tasks", "math500", "--limit", str(len(responses)), "--store", "store",
            "--registry", "checkpoints.yaml", "--config-dir", str(ROOT), "--data-dir", str(DATA), "--quiet",
        ),
        tmp,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    return tmp / "store"
