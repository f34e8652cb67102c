"""Crash and resume: SIGKILL ``rlvr-audit run`` at random points of generation, grading and the
report, many times (seeded); after the restarts the store holds exactly the records of an
uninterrupted run (same keys, no duplicates, none missing) and the report's CSV tables are
byte-identical to the uninterrupted run's.

The scripted backend answers from a seeded oracle (``accuracy=0.6``) with a per-request
``delay`` so that generation lasts long enough to be killed in the middle; ``--save-every`` and
``--grade-save-every`` make both stages append in small batches, so a kill can land between
any two appends (or inside one).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from reliability_helpers import (
    DATA,
    ROOT,
    StoreSnapshot,
    child_env,
    cli,
    needs_data,
    run_cli,
    snapshot,
    table_bytes,
    write_registry,
)

from rlvr_audit.core.store import Store

pytestmark = needs_data

SEED = 20260601
"""Seed of the kill schedule."""
EPISODES = 3
"""Fresh stores, each driven to completion through a series of kills."""
MAX_ATTEMPTS = 14
"""Kill attempts per episode at most (an attempt whose run finishes first ends the episode)."""
REPORT_KILLS = 2
"""Kills while the report is written, per episode (the store is complete by then)."""

GEN_TOTAL = 2 * (40 * 2 + 30 * 2)
"""Samples of the run: 2 checkpoints x (40 MATH-500 + 30 AIME-2024 problems) x 2 samples."""
GRADERS = ("math_verify", "boxed_strict")


def run_command(store: Path, report: Path, registry: Path) -> list[str]:
    return cli(
        "run",
        "--backend",
        "scripted",
        "--model-args",
        "accuracy=0.6,delay=0.004",
        "--checkpoints",
        "toy/rl",
        "--tasks",
        "math500,aime24",
        "--limit",
        "40",
        "--samples",
        "2",
        "--save-every",
        "8",
        "--graders",
        ",".join(GRADERS),
        "--grade-save-every",
        "16",
        "--workers",
        "2",
        "--resamples",
        "300",
        "--no-browser",
        "--quiet",
        "--report-dir",
        str(report),
        "--store",
        str(store),
        "--config-dir",
        str(ROOT),
        "--registry",
        str(registry),
        "--data-dir",
        str(DATA),
    )


def _lines(paths: list[Path]) -> int:
    total = 0
    for p in paths:
        try:
            total += p.read_bytes().count(b"\n")
        except FileNotFoundError:
            continue
    return total


def generated(store: Path) -> int:
    return _lines(list(store.glob("units/*/generations.jsonl")))


def graded(store: Path) -> int:
    return _lines(list(store.glob("units/*/grades/*.jsonl")))


def kill_when(cmd: list[str], cwd: Path, condition: Callable[[float], bool], timeout: float = 120) -> str:
    """Start ``cmd``; SIGKILL it as soon as ``condition(elapsed)`` holds. Returns ``killed`` or
    ``finished`` (it ended first). Asserts that the killed process leaves no live children."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=child_env())
    start = time.monotonic()
    children: list[psutil.Process] = []
    try:
        while proc.poll() is None:
            elapsed = time.monotonic() - start
            assert elapsed < timeout, "run did not finish nor reach the kill point in time"
            if condition(elapsed):
                try:
                    children = psutil.Process(proc.pid).children(recursive=True)
                except psutil.NoSuchProcess:
                    children = []
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                break
            time.sleep(0.004)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        err = proc.stderr.read().decode() if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
    if proc.returncode == -signal.SIGKILL:
        # grading workers must not outlive their parent (they would keep CPUs busy, or write)
        _gone, alive = psutil.wait_procs(children, timeout=15)
        for p in alive:
            p.kill()
        assert not alive, f"{len(alive)} worker processes outlived the killed run"
        return "killed"
    assert proc.returncode == 0, err
    return "finished"


def assert_consistent(store: Path) -> StoreSnapshot:
    """After any kill: every file reads back (torn tails are repaired), no record is stored twice."""
    s = Store(store)
    for key in s.unit_keys():
        s.read_generations(key)
        for grader in s.graders(key):
            s.read_grades(key, grader)
    snap = snapshot(store)
    assert not snap.duplicates, snap.duplicates[:5]
    return snap


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[StoreSnapshot, dict[str, bytes]]:
    """An uninterrupted run: its store and its report tables."""
    tmp = tmp_path_factory.mktemp("reference")
    registry = write_registry(tmp)
    done = run_cli(run_command(tmp / "store", tmp / "report", registry), cwd=tmp)
    assert done.returncode == 0, done.stderr
    snap = snapshot(tmp / "store")
    assert snap.counts() == (GEN_TOTAL, GEN_TOTAL * len(GRADERS))
    assert not snap.duplicates and not snap.torn
    return snap, table_bytes(tmp / "report")


@pytest.mark.parametrize("episode", range(EPISODES))
def test_killed_runs_end_with_the_uninterrupted_store_and_report(
    tmp_path: Path, reference: tuple[StoreSnapshot, dict[str, bytes]], episode: int
) -> None:
    ref_store, ref_tables = reference
    rng = random.Random(SEED + episode)
    registry = write_registry(tmp_path)
    store, report = tmp_path / "store", tmp_path / "report"
    cmd = run_command(store, report, registry)
    grades_total = GEN_TOTAL * len(GRADERS)
    log: list[str] = []
    report_kills = 0
    for _ in range(MAX_ATTEMPTS):
        # aim at the stage the store is in: a random number of records further, or a random time
        if generated(store) < GEN_TOTAL:
            phase = "startup" if rng.random() < 0.2 else "generation"
        elif graded(store) < grades_total:
            phase = "grading"
        elif report_kills < REPORT_KILLS:
            phase, report_kills = "report", report_kills + 1
        else:
            break
        if phase == "startup":  # at a random time: loading, planning, creating units and problems
            at = rng.uniform(0.0, 2.0)
            result = kill_when(cmd, tmp_path, lambda t, at=at: t >= at)  # type: ignore[misc]
        elif phase == "generation":
            target = min(generated(store) + rng.randint(10, GEN_TOTAL // 2), GEN_TOTAL - 1)
            result = kill_when(cmd, tmp_path, lambda _, n=target: generated(store) >= n)  # type: ignore[misc]
        elif phase == "grading":
            target = min(graded(store) + rng.randint(10, grades_total // 2), grades_total - 1)
            result = kill_when(cmd, tmp_path, lambda _, n=target: graded(store) >= n)  # type: ignore[misc]
        else:  # all grades stored: the report is being written
            delay = rng.uniform(0.0, 3.0)
            marks: list[float] = []

            def report_running(t: float, delay: float = delay, marks: list[float] = marks) -> bool:
                if not marks and graded(store) >= grades_total:
                    marks.append(t)
                return bool(marks) and t - marks[0] >= delay

            result = kill_when(cmd, tmp_path, report_running)
        snap = assert_consistent(store)
        log.append(f"{phase}: {result} at {snap.counts()}")
        if result == "finished" and phase != "report":
            break
    print(f"episode {episode}: " + "; ".join(log))  # shown with -s / on failure: where each kill landed
    done = run_cli(cmd, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    final = assert_consistent(store)
    killed = {entry.split(":")[0] for entry in log if ": killed at" in entry}
    assert {"generation", "grading", "report"} <= killed, log  # every stage was interrupted at least once
    # exactly the uninterrupted run's records: same keys, same content, nothing missing or doubled
    assert final.units == ref_store.units, log
    assert final.problems == ref_store.problems, log
    assert final.generations == ref_store.generations, log
    assert final.grades == ref_store.grades, log
    assert final.counts() == (GEN_TOTAL, grades_total)
    assert table_bytes(report) == ref_tables, log
    # every run is on record; a killed one stays "running" (it never got to say otherwise)
    statuses = [m.status for m in Store(store).manifests()]
    assert statuses[-1] == "finished" and set(statuses) <= {"running", "finished"}, statuses
    # a kill can land after the run wrote "finished" (its last act) but before it exited: such a
    # run did finish, so it may count as finished too, but no run that finished may count as running
    finished = 1 + sum(": finished" in entry for entry in log)
    late = sum(": killed at" in entry for entry in log)
    assert finished <= statuses.count("finished") <= finished + late, (statuses, log)
    leftovers = [p.name for p in report.parent.iterdir() if p.name.startswith(f".{report.name}.")]
    assert not leftovers, f"half-built report folders left behind: {leftovers}"
