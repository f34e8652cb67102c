"""Determinism: the same store and seed give byte-identical CSV tables and figures, however the
store's files are ordered (resumed runs append in another order), however many processes grade
or classify; another bootstrap seed moves only the resampling noise (interval ends, standard
errors, Monte Carlo p-values), never a point estimate or a count.
"""

from __future__ import annotations

import io
import random
import shutil
from pathlib import Path

import pandas as pd
import pytest
from reliability_helpers import DATA, ROOT, needs_data, snapshot, table_bytes, write_registry
from typer.testing import CliRunner, Result

from rlvr_audit.cli import app

pytestmark = needs_data


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def report(tmp: Path, store: Path, out: Path, *extra: str) -> None:
    r = invoke(
        "report",
        "--resamples",
        "300",
        "--no-browser",
        "--quiet",
        "--report-dir",
        str(out),
        "--store",
        str(store),
        "--config-dir",
        str(ROOT),
        "--registry",
        str(tmp / "checkpoints.yaml"),
        *extra,
    )
    assert r.exit_code == 0, r.output


def figure_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "figures").glob("*"))}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A store with two checkpoints, two tasks (1 and 4 samples), two prompts, two graders; and the
    run's own report."""
    tmp = tmp_path_factory.mktemp("determinism")
    write_registry(tmp)
    r = invoke(
        "run",
        "--backend",
        "scripted",
        "--model-args",
        "accuracy=0.6",
        "--checkpoints",
        "toy/rl",
        "--tasks",
        "math500,aime24",
        "--prompts",
        "no_template,qwen_math_default",
        "--limit",
        "20",
        "--graders",
        "math_verify,boxed_strict",
        "--workers",
        "2",
        "--resamples",
        "300",
        "--no-browser",
        "--quiet",
        "--report-dir",
        str(tmp / "run-report"),
        "--store",
        str(tmp / "store"),
        "--config-dir",
        str(ROOT),
        "--registry",
        str(tmp / "checkpoints.yaml"),
        "--data-dir",
        str(DATA),
    )
    assert r.exit_code == 0, r.output
    tables = table_bytes(tmp / "run-report")
    assert {"estimates.csv", "comparisons.csv", "grader_disagreement.csv", "prompt_sweep.csv"} <= set(tables)
    return tmp, tmp / "store"


def private_copy(built: tuple[Path, Path], tmp_path: Path) -> Path:
    write_registry(tmp_path)
    shutil.copytree(built[1], tmp_path / "store")
    return tmp_path / "store"


def test_same_store_and_seed_give_identical_tables_and_figures(built: tuple[Path, Path], tmp_path: Path) -> None:
    tmp, store = built
    report(tmp, store, tmp_path / "a")
    report(tmp, store, tmp_path / "b")
    assert table_bytes(tmp_path / "a") == table_bytes(tmp_path / "b") == table_bytes(tmp / "run-report")
    figures = figure_bytes(tmp_path / "a")
    assert figures and figures == figure_bytes(tmp_path / "b")


def test_order_of_stored_records_does_not_matter(built: tuple[Path, Path], tmp_path: Path) -> None:
    """A resumed run appends samples and grades in another order than an uninterrupted one."""
    store = private_copy(built, tmp_path)
    rng = random.Random(7)
    files = sorted(store.glob("units/*/generations.jsonl")) + sorted(store.glob("units/*/grades/*.jsonl"))
    for path in files:
        lines = path.read_bytes().splitlines(keepends=True)
        rng.shuffle(lines)
        path.write_bytes(b"".join(lines))
    report(tmp_path, store, tmp_path / "shuffled")
    assert table_bytes(tmp_path / "shuffled") == table_bytes(built[0] / "run-report")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_grading_with_any_number_of_workers_gives_the_same_grades(
    built: tuple[Path, Path], tmp_path: Path, workers: str
) -> None:
    store = private_copy(built, tmp_path)
    for grades in store.glob("units/*/grades"):
        shutil.rmtree(grades)
    r = invoke(
        "grade",
        "--graders",
        "math_verify,boxed_strict",
        "--workers",
        workers,
        "--quiet",
        "--store",
        str(store),
        "--config-dir",
        str(ROOT),
    )
    assert r.exit_code == 0, r.output
    assert snapshot(store).grades == snapshot(built[1]).grades
    report(tmp_path, store, tmp_path / "r")
    assert table_bytes(tmp_path / "r") == table_bytes(built[0] / "run-report")


def test_classifying_in_worker_processes_gives_the_same_tables(
    built: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The code-reasoning and behaviour tables, computed in one process and in two workers."""
    import rlvr_audit.analysis.code_reasoning as code_report

    monkeypatch.setattr(code_report, "PARALLEL_MIN_BYTES", 0)
    out: dict[int, dict[str, bytes]] = {}
    for cpus in (1, 2):
        monkeypatch.setattr(code_report.os, "cpu_count", lambda cpus=cpus: cpus)
        report(built[0], built[1], tmp_path / f"cpus{cpus}")
        out[cpus] = table_bytes(tmp_path / f"cpus{cpus}")
    assert out[1] == out[2] == table_bytes(built[0] / "run-report")


NOISE = {"ci_low", "ci_high", "se"}
"""Columns that hold resampling noise (everything named so, in every table)."""


def _frame(data: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(data), keep_default_na=False, dtype=str)


def test_another_bootstrap_seed_moves_only_the_noise(built: tuple[Path, Path], tmp_path: Path) -> None:
    tmp, store = built
    report(tmp, store, tmp_path / "seed1", "--bootstrap-seed", "1")
    one, zero = table_bytes(tmp_path / "seed1"), table_bytes(tmp / "run-report")
    assert set(one) == set(zero)
    moved: set[str] = set()
    for name in sorted(zero):
        a, b = _frame(zero[name]), _frame(one[name])
        assert list(a.columns) == list(b.columns) and len(a) == len(b), name
        for column in a.columns:
            if (a[column] == b[column]).all():
                continue
            moved.add(column)
            noisy = column in NOISE or column.endswith(("_ci_low", "_ci_high", "_low", "_high", "_se"))
            seed_column = column in {"seed", "bootstrap_seed"}
            monte_carlo = column.startswith("p_") and "test" in a.columns and a["test"].str.contains("monte").any()
            assert noisy or seed_column or monte_carlo, f"{name}: column {column!r} changed with the bootstrap seed"
            if name == "estimates.csv":
                # the default interval (wilson) does not resample: the seed cannot move it
                assert column not in {"ci_low", "ci_high", "se"}, f"{name}: {column} moved with the bootstrap seed"
    assert any(c.endswith(("ci_low", "ci_high")) for c in moved)  # the seed does reach the bootstrap intervals
