"""Generation on a real (local) Ray cluster: the hf backend on two tiny models, a grid of 12 units
over 2 workers, gives the store and the tables of a single-process run; so does a run in which one
worker is SIGKILLed mid-generation (Ray re-runs its task, nothing is stored twice). Bad Ray
options are refused before anything is written."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from testbed import DATA, ROOT, needs_data
from typer.testing import CliRunner, Result

from rlvr_audit.cli import app

ray = pytest.importorskip("ray")  # the dev extra installs it
pytestmark = needs_data

TASK_TITLE = b"ray::rlvr_audit.generation"
"""Process title of a Ray worker while it runs a generation task (``name=`` of the task)."""


@pytest.fixture(scope="module")
def cluster() -> object:
    """A local Ray cluster with 2 CPUs (so 2 generation workers) for the module."""
    import logging

    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def models(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    try:
        from tiny_model import build_tiny_qwen2
    except ImportError:
        from tests.tiny_model import build_tiny_qwen2
    return tiny_model_dir, build_tiny_qwen2(tmp_path_factory.mktemp("tiny-b"), seed=1, chat_template=True)


def args(models: tuple[Path, Path], store: Path, report: Path, *extra: str) -> list[str]:
    """2 checkpoints x 2 tasks x 3 prompts = 12 units, 2 problems x 2 samples each."""
    return [
        "run",
        "--backend",
        "hf",
        "--checkpoints",
        f"{models[0]},{models[1]}",
        "--tasks",
        "math500,aime24",
        "--prompts",
        "model_default,no_template,r1_think",
        "--limit",
        "2",
        "--samples",
        "2",
        "--temperature",
        "1.0",
        "--max-new-tokens",
        "24",
        "--model-args",
        "dtype=float32",
        "--device",
        "cpu",
        "--batch-size",
        "1",
        "--workers",
        "1",
        "--resamples",
        "300",
        "--no-browser",
        "--quiet",
        "--data-dir",
        str(DATA),
        "--config-dir",
        str(ROOT),
        "--store",
        str(store),
        "--report-dir",
        str(report),
        *extra,
    ]


def invoke(argv: list[str]) -> Result:
    return CliRunner().invoke(app, argv)


def contents(store: Path) -> dict[str, bytes]:
    """Every file of a store but the run manifests (whose ids and times differ) and the grading
    cache (a derived SQLite file, not records), records sorted (the order in which workers finish
    may differ)."""
    out = {}
    for path in sorted(store.rglob("*")):
        rel = str(path.relative_to(store))
        if path.is_file() and not rel.startswith(("runs/", "cache/")) and path.suffix != ".lock":
            data = path.read_bytes()
            out[rel] = b"".join(sorted(data.splitlines(keepends=True))) if path.suffix == ".jsonl" else data
    return out


def tables(report: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((report / "tables").glob("*.csv"))}


@pytest.fixture(scope="module")
def single(models: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("single")
    r = invoke(args(models, tmp / "store", tmp / "report"))
    assert r.exit_code == 0, r.output
    assert "12 units; 48 samples generated" in " ".join(r.output.split())
    return tmp


def test_twelve_units_over_two_workers_equal_one_process(
    cluster: object, models: tuple[Path, Path], single: Path, tmp_path: Path
) -> None:
    r = invoke(args(models, tmp_path / "store", tmp_path / "report", "--ray-address", "auto"))
    assert r.exit_code == 0, r.output
    assert "12 units; 48 samples generated" in " ".join(r.output.split())
    assert contents(tmp_path / "store") == contents(single / "store")
    assert tables(tmp_path / "report") == tables(single / "report")


def _descendants(root: int) -> dict[int, bytes]:
    """pid -> command line of every process below ``root`` (this test's own Ray processes)."""
    parent: dict[int, int] = {}
    cmd: dict[int, bytes] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            parent[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            cmd[int(entry.name)] = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
    out = {}
    for pid in parent:
        p = pid
        while p in parent and p != root and p > 1:
            p = parent[p]
        if p == root and pid != root:
            out[pid] = cmd[pid]
    return out


def test_a_worker_killed_mid_run_changes_nothing(
    cluster: object, models: tuple[Path, Path], single: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    result: list[Result] = []
    thread = threading.Thread(
        target=lambda: result.append(invoke(args(models, store, tmp_path / "report", "--ray-address", "auto")))
    )
    thread.start()
    killed = None
    deadline = time.monotonic() + 600
    while thread.is_alive() and time.monotonic() < deadline and killed is None:
        if list(store.glob("units/*/generations.jsonl")):  # mid-run: something is stored already
            workers = [pid for pid, cmd in _descendants(os.getpid()).items() if cmd.startswith(TASK_TITLE)]
            if workers:
                os.kill(workers[0], signal.SIGKILL)
                killed = workers[0]
        time.sleep(0.02)
    thread.join(timeout=900)
    assert killed is not None, "the run ended before a worker could be killed"
    (r,) = result
    assert r.exit_code == 0, r.output
    assert contents(store) == contents(single / "store")
    assert tables(tmp_path / "report") == tables(single / "report")


def test_gpus_per_unit_larger_than_any_node(cluster: object, models: tuple[Path, Path], tmp_path: Path) -> None:
    r = invoke(args(models, tmp_path / "store", tmp_path / "report", "--ray-address", "auto", "--gpus-per-unit", "2"))
    assert r.exit_code == 2
    out = " ".join(r.output.split())
    assert "--gpus-per-unit 2: no node of the Ray cluster at auto has that many GPUs; the largest" in out
    assert "has 0" in out
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize(
    "address, message",
    [
        ("127.0.0.1:9", "--ray-address 127.0.0.1:9: cannot reach a Ray cluster there"),
        ("not an address", "--ray-address 'not an address': expected 'auto', HOST:PORT or ray://HOST:PORT"),
    ],
)
def test_bad_address(models: tuple[Path, Path], tmp_path: Path, address: str, message: str) -> None:
    """In a fresh process (no Ray connection yet): one line naming the address, exit 2, nothing written."""
    import subprocess
    import sys

    argv = [sys.executable, "-m", "rlvr_audit.cli", *args(models, tmp_path / "store", tmp_path / "r")]
    env = {**os.environ, "COLUMNS": "400", "NO_COLOR": "1"}
    r = subprocess.run([*argv, "--ray-address", address], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 2, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], r.stderr
    assert not (tmp_path / "store").exists()
