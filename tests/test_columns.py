"""The store's column cache (rlvr_audit.core.columns): same rows as the JSON lines, invalidation,
bad files, stores it must not write to, the bypass, and the same report bytes with and without it."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import shutil
import stat
from argparse import Namespace
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from rlvr_audit.analysis import code_reasoning
from rlvr_audit.analysis.behaviour_stats import (
    summarize_columns,
    summarize_definitions,
    summarize_unit,
    transition_columns,
    transition_table,
)
from rlvr_audit.analysis.code_reasoning import behaviour_derivation, unit_columns
from rlvr_audit.analysis.estimates import grader_version
from rlvr_audit.cli import app
from rlvr_audit.core import columns
from rlvr_audit.core.columns import CACHE_DIR, ENV, generation_columns, grade_columns
from rlvr_audit.core.records import Grade
from rlvr_audit.core.store import Store

ROOT = Path(__file__).resolve().parents[1]
GRADER = "math_verify"


def _load_benchmark() -> object:
    spec = importlib.util.spec_from_file_location("report_load", ROOT / "benchmarks" / "report_load.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


load = _load_benchmark()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small store shaped like the load benchmark's (prose, code, truncated and degenerate
    responses): one family, a base and one RLVR checkpoint, two templates, 12 problems x 3."""
    work = tmp_path_factory.mktemp("columns")
    args = Namespace(families=1, rewards=1, templates=2, problems=12, samples=3)
    load.build_store(work / "store", args)  # type: ignore[attr-defined]
    (work / "checkpoints.yaml").write_text(load.registry_yaml(1, 1))  # type: ignore[attr-defined]
    return work


@pytest.fixture
def work(built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the built store (no cache yet), the cache enabled."""
    monkeypatch.delenv(ENV, raising=False)
    shutil.copytree(built, tmp_path / "w")
    return tmp_path / "w"


def cache_files(store: Path) -> list[Path]:
    folder = store / CACHE_DIR
    return sorted(p for p in folder.rglob("*.parquet")) if folder.is_dir() else []


def grades_as_frame(grades: list[Grade]) -> pd.DataFrame:
    return columns._to_pandas(columns._arrow(columns._grades_frame(grades)))


def test_columns_equal_the_records(work: Path) -> None:
    store = Store(work / "store")
    version = grader_version(GRADER)
    for key in store.unit_keys():
        for _ in range(2):  # built, then read back from the cache
            expect = grades_as_frame(store.read_grades(key, GRADER, version))
            pd.testing.assert_frame_equal(grade_columns(store, key, GRADER, version), expect)
            gens = store.read_generations(key)
            frame = generation_columns(store, key)
            pd.testing.assert_frame_equal(frame, columns._to_pandas(columns._arrow(columns._generations_frame(gens))))
            derived = generation_columns(store, key, behaviour_derivation())
            assert list(derived["code_code_lines"]) == [
                code_reasoning.response_behaviour(g).code["code_lines"] for g in gens
            ]
    assert len(cache_files(work / "store")) == 3 * len(store.unit_keys())


def test_array_summaries_equal_the_record_summaries(work: Path) -> None:
    """summarize_columns / transition_columns give exactly summarize_unit / transition_table."""
    import numpy as np

    store = Store(work / "store")
    infos = {u.key: u for u in store.units()}
    base_key, rl_key = (k for k in infos if infos[k].spec.template_id == "no_template")
    version = grader_version(GRADER)
    sides = []
    for key in (base_key, rl_key):
        gens = store.read_generations(key)
        ok = {(g.problem_id, g.sample_idx): g.verdict == "correct" for g in store.read_grades(key, GRADER, version)}
        cols = unit_columns(store, infos[key])
        assert cols is not None
        flat = np.array([ok[(cols.problem_ids[r], s)] for r, s in zip(cols.row, cols.sample_idx, strict=True)])
        for d in ("code_lines", "mentions_python"):
            a = summarize_unit(gens, rng=np.random.default_rng(3), correct=ok, definition=d, n_resamples=300)
            b = summarize_columns(cols, rng=np.random.default_rng(3), correct=flat, definition=d, n_resamples=300)
            assert a == b
        together = summarize_definitions(
            cols,
            rng=np.random.default_rng(3),
            correct=flat,
            definitions=("code_lines", "mentions_python"),
            n_resamples=300,
        )
        for d, summary in together.items():  # one plan for both definitions: the same numbers
            assert summary == summarize_columns(
                cols, rng=np.random.default_rng(3), correct=flat, definition=d, n_resamples=300
            )
        sides.append((gens, ok, cols, flat))
    (bg, bok, bc, bf), (rg, rok, rc, rf) = sides
    for d in ("code_lines", "mentions_python"):
        t1 = transition_table(bg, rg, base_correct=bok, rlvr_correct=rok, definition=d)
        t2 = transition_columns(bc, rc, base_correct=bf, rlvr_correct=rf, definition=d)
        assert t1 == t2


def test_an_append_invalidates(work: Path) -> None:
    store = Store(work / "store")
    key = store.unit_keys()[0]
    version = grader_version(GRADER)
    before = grade_columns(store, key, GRADER, version)
    first = before.iloc[0]
    regrade = Grade(
        unit_key=key,
        problem_id=first["problem_id"],
        sample_idx=int(first["sample_idx"]),
        grader_id=GRADER,
        grader_version=str(version),
        extracted="41",
        verdict="incorrect" if first["verdict"] == "correct" else "correct",
        attempt=1,
    )
    assert store.append_grades(key, GRADER, [regrade]) == 1
    after = grade_columns(store, key, GRADER, version)
    pd.testing.assert_frame_equal(after, grades_as_frame(Store(work / "store").read_grades(key, GRADER, version)))

    def row(frame: pd.DataFrame) -> pd.Series:
        match = frame[(frame["problem_id"] == regrade.problem_id) & (frame["sample_idx"] == regrade.sample_idx)]
        assert len(match) == 1
        return match.iloc[0]

    assert row(after)["verdict"] == regrade.verdict and row(after)["attempt"] == 1 and len(after) == len(before)
    # a file replaced by one of the same size and modification time (another inode): rebuilt too
    path = store.grades_path(key, GRADER)
    data = path.read_bytes()
    st = path.stat()
    other = path.with_name("other.tmp")
    other.write_bytes(data.replace(b'"extracted":"41"', b'"extracted":"42"'))
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(other, path)
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    assert row(grade_columns(store, key, GRADER, version))["extracted"] == "42"


def test_a_corrupt_cache_file_is_moved_aside_and_rebuilt(work: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = Store(work / "store")
    key = store.unit_keys()[0]
    expect = generation_columns(store, key)
    (path,) = [p for p in cache_files(work / "store") if p.name == "generations.parquet"]
    path.write_bytes(b"PAR1 not really parquet")
    with caplog.at_level(logging.WARNING):
        again = generation_columns(Store(work / "store"), key)
    pd.testing.assert_frame_equal(again, expect)
    assert "unreadable column cache file" in caplog.text
    assert len(list(path.parent.glob("generations.parquet.broken-*"))) == 1
    assert path.is_file()  # rebuilt
    # a valid Parquet file that is not ours (no metadata) is foreign: moved aside too
    pd.DataFrame({"x": [1]}).to_parquet(path)
    pd.testing.assert_frame_equal(generation_columns(Store(work / "store"), key), expect)
    assert len(list(path.parent.glob("generations.parquet.broken-*"))) == 2


def test_read_only_store_uses_no_cache(work: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes to read-only folders")
    store_dir = work / "store"
    modes = {}
    for p in [store_dir, *store_dir.rglob("*")]:
        if p.is_dir():
            modes[p] = p.stat().st_mode
            p.chmod(stat.S_IMODE(p.stat().st_mode) & ~0o222)
    try:
        store = Store(store_dir)
        key = store.unit_keys()[0]
        frame = generation_columns(store, key)
        assert len(frame) == len(store.read_generations(key))
        assert not (store_dir / "cache").exists()
    finally:
        for p, mode in modes.items():
            p.chmod(stat.S_IMODE(mode))


def test_read_only_write_failure_is_harmless(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whoever runs the test (root ignores permissions): a write that fails with EROFS is skipped."""
    import errno

    def refuse(*_a: object, **_k: object) -> tuple[int, str]:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(columns.tempfile, "mkstemp", refuse)
    store = Store(work / "store")
    key = store.unit_keys()[0]
    frame = grade_columns(store, key, GRADER)
    assert len(frame) == len(store.read_grades(key, GRADER))
    assert cache_files(work / "store") == []


def test_links_mean_no_cache(work: Path, tmp_path: Path) -> None:
    # the store reached through a link: no cache (nothing written through the link)
    link = tmp_path / "linked-store"
    link.symlink_to(work / "store")
    store = Store(link)
    key = store.unit_keys()[0]
    assert len(generation_columns(store, key)) == len(store.read_generations(key))
    assert cache_files(work / "store") == []
    # a link inside the store on the cache's path is refused: no write leaves the store
    outside = tmp_path / "outside"
    outside.mkdir()
    (work / "store" / "cache").symlink_to(outside)
    store = Store(work / "store")
    assert len(generation_columns(store, key)) == len(store.read_generations(key))
    assert list(outside.rglob("*")) == []


def test_bypass_reads_and_writes_nothing(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "0")
    store = Store(work / "store")
    for key in store.unit_keys():
        generation_columns(store, key, behaviour_derivation())
        grade_columns(store, key, GRADER)
    assert not (work / "store" / "cache").exists()


def report_bytes(work: Path, name: str) -> dict[str, bytes]:
    out = work / name
    args = ["report", "--quiet", "--no-browser", "--resamples", "300", "--store", str(work / "store")]
    args += ["--registry", str(work / "checkpoints.yaml"), "--report-dir", str(out), "--config-dir", str(ROOT)]
    r = CliRunner().invoke(app, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    when = re.compile(rb"Written \d{4}-\d\d-\d\d \d\d:\d\d UTC")  # the report's time stamp
    return {
        str(p.relative_to(out)): when.sub(b"Written <time>", p.read_bytes())
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.suffix in (".csv", ".md", ".html", ".json")
    }


def test_same_report_bytes_with_and_without_the_cache(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "0")
    plain = report_bytes(work, "plain")
    assert not (work / "store" / "cache").exists()
    monkeypatch.delenv(ENV)
    cold = report_bytes(work, "cold")
    assert cache_files(work / "store")
    warm = report_bytes(work, "warm")
    assert any(name.startswith("tables/") for name in plain)
    for name, data in plain.items():
        if name.endswith(".json"):
            continue
        assert cold[name] == data, name
        assert warm[name] == data, name
    assert set(plain) == set(cold) == set(warm)
    transitions = pd.read_csv(work / "warm" / "tables" / "code_transitions.csv")
    assert len(transitions) > 0  # the comparison path (transition tables) was exercised
    assert json.dumps(sorted(plain)) == json.dumps(sorted(warm))
