"""``--shard I/N`` and ``rlvr-audit store merge``: three shards merged give the store (and the
tables) of one run; bad shard specs and disagreeing stores are refused before anything is written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from reliability_helpers import DATA, ROOT, needs_data, snapshot, table_bytes, write_registry
from typer.testing import CliRunner, Result

from rlvr_audit.cli import app

pytestmark = needs_data


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def run_args(tmp: Path, store: Path, *extra: str) -> list[str]:
    return [
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
        "7",
        "--graders",
        "math_verify,boxed_strict",
        "--workers",
        "1",
        "--resamples",
        "300",
        "--no-browser",
        "--quiet",
        "--store",
        str(store),
        "--config-dir",
        str(ROOT),
        "--registry",
        str(tmp / "checkpoints.yaml"),
        "--data-dir",
        str(DATA),
        *extra,
    ]


def report(tmp: Path, store: Path, out: Path) -> dict[str, bytes]:
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
    )
    assert r.exit_code == 0, r.output
    return table_bytes(out)


def records(store: Path) -> tuple[object, ...]:
    snap = snapshot(store)
    assert not snap.duplicates and not snap.torn
    return snap.units, snap.generations, snap.grades, snap.problems


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One whole run, and the same grid as three shards merged (twice: the merge is idempotent)."""
    tmp = tmp_path_factory.mktemp("shards")
    write_registry(tmp)
    r = invoke(*run_args(tmp, tmp / "whole", "--report-dir", str(tmp / "whole-report")))
    assert r.exit_code == 0, r.output
    sizes = []
    for i in (1, 2, 3):
        r = invoke(*run_args(tmp, tmp / f"shard{i}", "--shard", f"{i}/3", "--report-dir", str(tmp / f"r{i}")))
        assert r.exit_code == 0, r.output
        assert "no report" in " ".join(r.output.split()) and not (tmp / f"r{i}").exists()
        sizes.append(sum(len(v) for v in snapshot(tmp / f"shard{i}").generations.values()))
    assert sum(sizes) == sum(len(v) for v in snapshot(tmp / "whole").generations.values())
    assert all(s > 0 for s in sizes)
    for _ in range(2):
        r = invoke("store", "merge", *(str(tmp / f"shard{i}") for i in (1, 2, 3)), "--store", str(tmp / "merged"))
        assert r.exit_code == 0, r.output
    return tmp


def test_three_shards_merged_are_one_run(shards: Path) -> None:
    assert records(shards / "merged") == records(shards / "whole")
    assert len(list((shards / "merged" / "runs").glob("*.json"))) == 3  # each shard's manifest
    assert report(shards, shards / "merged", shards / "merged-report") == report(
        shards, shards / "whole", shards / "whole-again"
    )
    assert report(shards, shards / "whole", shards / "whole-again") == table_bytes(shards / "whole-report")


def test_a_shard_of_a_partly_stored_grid_takes_only_its_share(shards: Path, tmp_path: Path) -> None:
    """The split depends on the plan, not on the store: a shard run against the whole run's store
    generates nothing and claims only its own samples as reused."""
    write_registry(tmp_path)
    store = tmp_path / "store"
    shutil.copytree(shards / "whole", store)
    r = invoke(*run_args(tmp_path, store, "--shard", "2/3"))
    assert r.exit_code == 0, r.output
    own = sum(len(v) for v in snapshot(shards / "shard2").generations.values())
    assert f"0 samples generated, {own} reused" in " ".join(r.output.split())


@pytest.mark.parametrize("spec", ["0/3", "4/3", "a/b", "3", "1/0"])
def test_bad_shard_specs_are_refused(spec: str, tmp_path: Path) -> None:
    write_registry(tmp_path)
    r = invoke(*run_args(tmp_path, tmp_path / "store", "--shard", spec))
    assert r.exit_code == 2
    assert f"--shard {spec!r}: expected I/N with 1 <= I <= N" in " ".join(r.output.split())
    assert not (tmp_path / "store").exists()


def test_merge_refuses_stores_that_disagree(shards: Path, tmp_path: Path) -> None:
    """A problems file that differs between two stores (another task version under one name) is
    refused, naming both files, and nothing is written."""
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(shards / "shard1", a)
    shutil.copytree(shards / "shard2", b)
    problems = sorted((b / "problems").glob("*.jsonl"))[0]
    lines = problems.read_text().splitlines()
    first = json.loads(lines[0])
    first["answer"] = "not the gold answer"
    problems.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    r = invoke("store", "merge", str(a), str(b), "--store", str(tmp_path / "merged"))
    assert r.exit_code == 1
    assert f"{problems}: differs from" in " ".join(r.output.split())
    assert not (tmp_path / "merged").exists()
    r = invoke("store", "merge", str(tmp_path / "nothing-here"), "--store", str(tmp_path / "merged"))
    assert r.exit_code == 2 and "is not a store" in r.output
