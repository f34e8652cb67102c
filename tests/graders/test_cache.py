"""The persistent verdict cache: the same outcomes with and without it, keys that say what they
depend on, and damaged, foreign or out-of-date files moved aside and rebuilt."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from rlvr_audit.grading import GradeOutcome
from rlvr_audit.grading.cache import CACHE_FILE, SCHEMA_VERSION, VerdictCache, cache_summary, library_versions
from rlvr_audit.grading.corpus import build_corpus, load_problems
from rlvr_audit.grading.engine import GradingEngine
from rlvr_audit.grading.math_verify import MathVerifyGrader
from rlvr_audit.grading.pool import GradeTask

MATH500 = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "benchmarks" / "math500.jsonl"


def corpus_tasks(problems: int, samples: int, seed: int) -> list[GradeTask]:
    if not MATH500.is_file():
        pytest.skip(f"benchmark data not found at {MATH500}")
    items = build_corpus(load_problems(MATH500)[:problems], samples=samples, seed=seed)
    return [GradeTask((i.problem_id, i.sample_idx), i.completion, i.gold, i.truncated) for i in items]


def grade(tasks: list[GradeTask], cache: VerdictCache | None) -> tuple[list[GradeOutcome], GradingEngine]:
    with GradingEngine(workers=2, timeout=60, cache=cache) as engine:
        return engine.grade(tasks, grader_id="math_verify"), engine


def test_outcomes_are_the_same_with_a_cold_cache_a_warm_cache_and_none(tmp_path: Path) -> None:
    tasks = corpus_tasks(30, 4, seed=3)
    plain = [MathVerifyGrader().grade(completion=t.completion, gold=t.gold, truncated=t.truncated) for t in tasks]
    without, _ = grade(tasks, None)
    with VerdictCache.open(tmp_path) as cache:  # type: ignore[union-attr]
        cold, engine = grade(tasks, cache)
        assert engine.stats.cache_hits == 0 and engine.stats.keys > 20
        stored = cache.entries()
    assert stored == engine.stats.keys + engine.stats.tail_keys  # every judged key (none timed out)
    # the "next checkpoint": other responses to the same problems, many with the same answers
    later = corpus_tasks(30, 4, seed=4)
    plain_later = [MathVerifyGrader().grade(completion=t.completion, gold=t.gold, truncated=t.truncated) for t in later]
    with VerdictCache.open(tmp_path) as cache:  # type: ignore[union-attr]
        warm, engine = grade(tasks, cache)
        assert engine.stats.keys == 0 and engine.stats.cache_hits > 20  # nothing judged again
        warm_later, engine = grade(later, cache)
        assert engine.stats.cache_hits > 0
    assert without == cold == warm == plain
    assert warm_later == plain_later
    (summary,) = cache_summary(tmp_path) or [None]
    assert summary is None  # passes are recorded by the grade stage, not by the engine


def test_keys_include_the_library_versions(tmp_path: Path) -> None:
    outcome = GradeOutcome("correct", "1/2")
    with VerdictCache.open(tmp_path, libraries="antlr4-python3-runtime==4.9.3") as old:  # type: ignore[union-attr]
        old.put("g\x00v", ["head", ["latex", [["1/2", False]]]], "\\frac12", outcome)
    with VerdictCache.open(tmp_path) as now:  # type: ignore[union-attr]
        assert "antlr4-python3-runtime==" in now.libraries and now.libraries == library_versions()
        assert now.get("g\x00v", ["head", ["latex", [["1/2", False]]]], "\\frac12") is None
        assert now.entries() == 0
    with VerdictCache.open(tmp_path, libraries="antlr4-python3-runtime==4.9.3") as old:  # type: ignore[union-attr]
        assert old.get("g\x00v", ["head", ["latex", [["1/2", False]]]], "\\frac12") == outcome
        assert old.get("g\x00v2", ["head", ["latex", [["1/2", False]]]], "\\frac12") is None  # grader version


def test_only_verdicts_that_do_not_depend_on_the_machine_are_kept(tmp_path: Path) -> None:
    with VerdictCache.open(tmp_path) as cache:  # type: ignore[union-attr]
        for n, verdict in enumerate(["correct", "incorrect", "no_answer", "timeout", "error", "truncated"]):
            cache.put(
                "g",
                ["head", n],
                "gold",
                GradeOutcome(verdict, None, "why" if verdict in ("timeout", "error") else None),
            )  # type: ignore[arg-type]
    with VerdictCache.open(tmp_path) as cache:  # type: ignore[union-attr]
        kept = [n for n in range(6) if cache.get("g", ["head", n], "gold") is not None]
    assert kept == [0, 1, 2]


def test_answers_with_lone_surrogates_are_stored(tmp_path: Path) -> None:
    with VerdictCache.open(tmp_path) as cache:  # type: ignore[union-attr]
        cache.put("g", ["head", "\ud800x"], "\udfff", GradeOutcome("incorrect", "\ud800x"))
    with VerdictCache.open(tmp_path) as cache:  # type: ignore[union-attr]
        assert cache.get("g", ["head", "\ud800x"], "\udfff") == GradeOutcome("incorrect", "\ud800x")


def broken(tmp_path: Path, caplog: pytest.LogCaptureFixture, why: str) -> None:
    """Open the cache and check it was moved aside with a warning naming ``why``, and rebuilt."""
    path = tmp_path / CACHE_FILE
    before = path.read_bytes()
    with caplog.at_level(logging.WARNING), VerdictCache.open(tmp_path) as cache:  # type: ignore[union-attr]
        cache.put("g", ["head", 1], "1", GradeOutcome("correct", "1"))
    (aside,) = path.parent.glob("verdicts.sqlite.broken-*[0-9Z]")
    assert aside.read_bytes()[:100] == before[:100]  # kept, not deleted
    assert why in caplog.text and str(aside) in caplog.text
    with VerdictCache.open(tmp_path) as cache:  # type: ignore[union-attr]
        assert cache.get("g", ["head", 1], "1") == GradeOutcome("correct", "1")


def test_a_corrupt_file_is_moved_aside_and_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "cache").mkdir()
    (tmp_path / CACHE_FILE).write_bytes(b"not a database at all\n" * 100)
    broken(tmp_path, caplog, "not a usable SQLite database")


def test_a_damaged_database_is_moved_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with VerdictCache.open(tmp_path) as cache:  # type: ignore[union-attr]
        for n in range(3000):
            cache.put("g", ["head", n, "x" * 50], "gold", GradeOutcome("incorrect", str(n)))
    path = tmp_path / CACHE_FILE
    data = bytearray(path.read_bytes())
    data[4096 * 3 : 4096 * 5] = b"\xff" * 8192  # overwrite pages in the middle of the table
    path.write_bytes(bytes(data))
    broken(tmp_path, caplog, "")


def test_another_applications_database_is_moved_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "cache").mkdir()
    db = sqlite3.connect(tmp_path / CACHE_FILE)
    db.execute("CREATE TABLE photos (id INTEGER)")
    db.commit()
    db.close()
    broken(tmp_path, caplog, "another application's database")


def test_another_schema_version_is_moved_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    VerdictCache.open(tmp_path).close()  # type: ignore[union-attr]
    db = sqlite3.connect(tmp_path / CACHE_FILE)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    broken(tmp_path, caplog, f"schema version {SCHEMA_VERSION + 1}")


def test_a_symbolic_link_is_never_followed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    outside = tmp_path / "outside.sqlite"
    outside.write_bytes(b"precious")
    (tmp_path / "store" / "cache").mkdir(parents=True)
    (tmp_path / "store" / CACHE_FILE).symlink_to(outside)
    with caplog.at_level(logging.WARNING), VerdictCache.open(tmp_path / "store") as cache:  # type: ignore[union-attr]
        cache.put("g", ["head", 1], "1", GradeOutcome("correct", "1"))
    assert outside.read_bytes() == b"precious"
    assert "symbolic link" in caplog.text
    assert not (tmp_path / "store" / CACHE_FILE).is_symlink()


def test_an_unwritable_store_grades_without_the_cache(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "cache").mkdir()
    (tmp_path / CACHE_FILE).mkdir()  # a folder where the file should be: cannot be opened
    (tmp_path / CACHE_FILE / "x").write_text("keep")
    with caplog.at_level(logging.WARNING):
        cache = VerdictCache.open(tmp_path)
    if cache is not None:  # moved aside and rebuilt is fine too; the folder's content is kept
        cache.close()
        assert any(p.name.startswith("verdicts.sqlite.broken-") for p in (tmp_path / "cache").iterdir())
    else:
        assert (tmp_path / CACHE_FILE / "x").read_text() == "keep"
    assert "verdict cache" in caplog.text
