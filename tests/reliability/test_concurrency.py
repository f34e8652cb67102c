"""Concurrency: two ``rlvr-audit`` processes writing one store at the same time (two grading
runs with other graders or the same grader, two generation runs of the same units) leave it
exactly as one process after the other would: every record once, none torn, same numbers.

Appends hold a per-file lock and skip records whose key the file already holds (see
:mod:`rlvr_audit.core.store`), so the second writer of a sample stores nothing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from reliability_helpers import DATA, ROOT, child_env, cli, needs_data, run_cli, snapshot, write_registry

pytestmark = needs_data


def generate_command(tmp: Path, store: Path, delay: str = "0") -> list[str]:
    return cli(
        "generate",
        "--backend",
        "scripted",
        "--model-args",
        f"accuracy=0.6,delay={delay}",
        "--checkpoints",
        "toy/rl",
        "--tasks",
        "math500",
        "--limit",
        "60",
        "--samples",
        "2",
        "--save-every",
        "5",
        "--quiet",
        "--store",
        str(store),
        "--config-dir",
        str(ROOT),
        "--registry",
        str(tmp / "checkpoints.yaml"),
        "--data-dir",
        str(DATA),
    )


def grade_command(store: Path, graders: str) -> list[str]:
    return cli(
        "grade",
        "--graders",
        graders,
        "--workers",
        "1",
        "--grade-save-every",
        "10",
        "--quiet",
        "--store",
        str(store),
        "--config-dir",
        str(ROOT),
    )


def together(*commands: list[str], cwd: Path) -> None:
    """Start every command at once and wait for all; each must succeed."""
    procs = [
        subprocess.Popen(c, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=child_env())
        for c in commands
    ]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    for p, err in zip(procs, errors, strict=True):
        assert p.returncode == 0, err


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A generated (ungraded) store, and the same store graded by one process after the other."""
    tmp = tmp_path_factory.mktemp("concurrency")
    write_registry(tmp)
    done = run_cli(generate_command(tmp, tmp / "store"), cwd=tmp)
    assert done.returncode == 0, done.stderr
    shutil.copytree(tmp / "store", tmp / "sequential")
    for graders in ("math_verify", "boxed_strict"):
        done = run_cli(grade_command(tmp / "sequential", graders), cwd=tmp)
        assert done.returncode == 0, done.stderr
    return tmp / "store", tmp / "sequential"


@pytest.mark.parametrize(
    "graders", [("math_verify", "boxed_strict"), ("math_verify", "math_verify")], ids=["other-graders", "same-grader"]
)
def test_two_grading_runs_at_once(tmp_path: Path, generated: tuple[Path, Path], graders: tuple[str, str]) -> None:
    store = tmp_path / "store"
    shutil.copytree(generated[0], store)
    together(*(grade_command(store, g) for g in graders), cwd=tmp_path)
    snap, expected = snapshot(store), snapshot(generated[1])
    assert not snap.duplicates and not snap.torn, snap.duplicates[:5]
    assert snap.generations == expected.generations
    for (key, grader), grades in expected.grades.items():
        if grader in graders:
            assert snap.grades[(key, grader)] == grades


def test_two_generation_runs_of_the_same_units_at_once(tmp_path: Path, generated: tuple[Path, Path]) -> None:
    write_registry(tmp_path)
    store = tmp_path / "store"
    command = generate_command(tmp_path, store, delay="0.005")
    together(command, command, cwd=tmp_path)
    snap = snapshot(store)
    assert not snap.duplicates and not snap.torn, snap.duplicates[:5]
    assert snap.units == snapshot(generated[0]).units
    assert snap.generations == snapshot(generated[0]).generations
    assert len(list((store / "runs").glob("*.json"))) == 2  # each run keeps its own manifest
