"""A report says how its runs ended (issue: data safety, item 7).

A run's own report used to list that run as "running ... to ?", and a run killed earlier stayed
"running" forever. The report written at the end of a run shows it finished; a manifest whose
process is gone (pid, host and start time tell) shows as interrupted.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from reliability_helpers import DATA, needs_data, write_registry
from typer.testing import CliRunner

from rlvr_audit.cli import app
from rlvr_audit.core.records import RunManifest
from rlvr_audit.core.store import Store, run_status

pytestmark = needs_data


def _run(tmp_path: Path, *extra: str) -> str:
    reg = write_registry(tmp_path)
    r = CliRunner().invoke(
        app,
        [
            "run", "--backend", "scripted", "--model-args", "accuracy=0.6", "--checkpoints", "toy/rl",
            "--tasks", "math500", "--limit", "2", "--quiet", "--no-browser", "--resamples", "200",
            "--registry", str(reg), "--data-dir", str(DATA), "--store", str(tmp_path / "store"),
            "--report-dir", str(tmp_path / "report"), *extra,
        ],
        catch_exceptions=False,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    return (tmp_path / "report" / "index.md").read_text(encoding="utf-8")


def _runs_section(index: str) -> str:
    return index.split("## Runs (manifest)", 1)[1]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _manifest(run_id: str, pid: int, *, started: dt.datetime, host: str | None = None) -> RunManifest:
    return RunManifest(
        run_id=run_id,
        command="rlvr-audit run ...",
        started_at=started.isoformat(timespec="seconds"),
        units=[],
        pid=pid,
        host=host or socket.gethostname(),
    )


def test_the_report_of_a_run_shows_that_run_finished(tmp_path: Path) -> None:
    runs = _runs_section(_run(tmp_path))
    (manifest,) = Store(tmp_path / "store").manifests()
    assert manifest.status == "finished" and manifest.pid is not None and manifest.host
    line = next(line for line in runs.splitlines() if manifest.run_id in line)
    assert "(finished, " in line and " to ?" not in line, line
    assert re.search(r"to \d{4}-\d\d-\d\dT", line), line


def test_a_running_manifest_whose_process_is_gone_reads_interrupted(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    dead = _manifest("20260101T000000Z-dead00", _dead_pid(), started=now)
    assert run_status(dead) == "interrupted"
    alive = _manifest("20260101T000000Z-alive0", os.getpid(), started=now)
    assert run_status(alive) == "running"
    # a live process started after the run began is another process with a reused pid
    reused = _manifest("20260101T000000Z-reused", os.getpid(), started=now - dt.timedelta(days=3))
    reused = reused.model_copy(update={"started_at": "2020-01-01T00:00:00+00:00"})
    assert run_status(reused) == "interrupted"
    elsewhere = _manifest("20260101T000000Z-other0", 1, started=now, host="another-host.invalid")
    assert run_status(elsewhere) == "running"


def test_the_report_marks_a_killed_earlier_run_interrupted(tmp_path: Path) -> None:
    _run(tmp_path)
    store = Store(tmp_path / "store")
    (first,) = store.manifests()
    killed = first.model_copy(
        update={"run_id": "20200101T000000Z-killed", "status": "running", "finished_at": None, "pid": _dead_pid()}
    )
    store.write_manifest(killed)
    runs = _runs_section(_run(tmp_path))
    line = next(line for line in runs.splitlines() if killed.run_id in line)
    assert "(interrupted, " in line, line
