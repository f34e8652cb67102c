"""The store's verdict cache through the CLI (issue 19): shared by concurrent ``grade`` processes
without damage, bypassed by ``--no-cache``, rebuilt when damaged, never changing a verdict."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

from reliability_helpers import ROOT, child_env, cli, first_problems, make_store, needs_data, one_line, run_cli

from rlvr_audit.core.store import Store
from rlvr_audit.grading.cache import CACHE_FILE, cache_summary
from rlvr_audit.grading.math_verify import MathVerifyGrader

pytestmark = needs_data


def responses(n: int) -> list[str]:
    """Non-integer answers (integers are decided without the judge, so never reach the cache)."""
    out = []
    for k, p in enumerate(first_problems(n)):
        answer = p["answer"] if k % 3 else f"{p['answer']}+1"
        out.append(f"Reasoning.\n\nThe final answer is $\\boxed{{{answer}}}$ or $\\frac{{{k}}}{{7}}$.")
    return out


def verdicts(store: Path) -> dict[tuple[str, str, int], tuple[str, str | None]]:
    s = Store(store)
    version = MathVerifyGrader().version
    return {
        (key, g.problem_id, g.sample_idx): (g.verdict, g.extracted)
        for key in s.unit_keys()
        for g in s.read_grades(key, "math_verify", version)
    }


def grade_args(store: Path, *args: str) -> list[str]:
    return cli("grade", "--store", str(store), "--config-dir", str(ROOT), "--quiet", *args)


def test_two_grade_processes_share_the_cache(tmp_path: Path) -> None:
    store = make_store(tmp_path, responses(40), base=True)
    shutil.copytree(store, tmp_path / "copy")
    procs = [
        subprocess.Popen(
            grade_args(store, "--checkpoints", checkpoint, "--workers", "1"),
            cwd=tmp_path,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for checkpoint in ("toy/rl", "toy/base")
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    db = sqlite3.connect(store / CACHE_FILE)
    assert db.execute("PRAGMA quick_check").fetchall() == [("ok",)]
    entries = db.execute("SELECT count(*) FROM verdicts").fetchone()[0]
    passes = db.execute("SELECT count(*) FROM passes").fetchone()[0]
    db.close()
    assert entries >= 20 and passes == 2
    # the same verdicts as grading without the cache, and a warm pass serves them all
    r = run_cli(grade_args(tmp_path / "copy", "--no-cache"), tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not (tmp_path / "copy" / CACHE_FILE).exists()  # --no-cache writes no cache
    assert verdicts(store) == verdicts(tmp_path / "copy")
    r = run_cli(grade_args(store, "--retry", "timeout,error"), tmp_path)
    assert r.returncode == 0
    (summary,) = cache_summary(store)
    assert summary["grader"].startswith("math_verify ")


def test_the_summary_shows_the_hit_rate_and_a_damaged_cache_is_rebuilt(tmp_path: Path) -> None:
    store = make_store(tmp_path, responses(12), base=True)

    def grade(*args: str) -> str:
        r = run_cli(grade_args(store, *args), tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
        return one_line(r.stdout + r.stderr)

    found = re.search(
        r"verdict cache \(\S+\): 0 of (\d+) distinct answers found \(0%\)", grade("--checkpoints", "toy/rl")
    )
    assert found is not None
    judged = int(found.group(1))
    assert judged >= 6
    rl = verdicts(store)
    (store / CACHE_FILE).write_bytes(b"\x00garbage" * 1000)
    for side in ("-wal", "-shm"):
        (store / CACHE_FILE).with_name("verdicts.sqlite" + side).unlink(missing_ok=True)
    out = grade("--checkpoints", "toy/base")
    assert "was unusable" in out and "moved aside to" in out
    assert f"0 of {judged} distinct answers found" in out  # rebuilt empty: nothing read from the garbage
    base = {k: v for k, v in verdicts(store).items() if k not in rl}
    assert sorted(base.values()) == sorted(rl.values())  # toy/base gave the same responses
    rows = cache_summary(store)
    assert rows and rows[0]["judged"] == judged and rows[0]["hit_rate"] == 0.0
    # a third checkpoint with the same answers would be served from the cache: check it on a re-grade
    (key,) = {k[0] for k in base}
    grades = (store / "units" / key / "grades" / "math_verify.jsonl").read_text().splitlines()
    (store / "units" / key / "grades" / "math_verify.jsonl").write_text("")
    out = grade("--checkpoints", "toy/base")
    assert f"{judged} of {judged} distinct answers found (100%)" in out
    assert sorted(v for k, v in verdicts(store).items() if k[0] == key) == sorted(rl.values())
    assert len(grades) == len(rl)
