"""``train launch`` under SIGTERM (a scheduler's time limit) and SIGINT (Ctrl-C): verl's process
group and everything it started are stopped, and the launcher says where the log and the last
checkpoint are. The trainer is a stand-in (``fake_verl``: a real run needs GPUs) that behaves like
verl's driver: a worker in its process group, and a daemon that leaves the group and ignores
SIGTERM, as Ray's local cluster processes may."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_verl import write_fake_verl

from rlvr_audit.train.plan import plan

TRAINER = """
import json, os, signal, subprocess, sys, time
from pathlib import Path

sleep = [sys.executable, "-c", "import time; time.sleep(600)"]
ignore = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"]
worker = subprocess.Popen(sleep)  # in verl's process group, like a Ray worker
daemon = subprocess.Popen(ignore, start_new_session=True)  # leaves the group and ignores SIGTERM
Path("checkpoints/global_step_1/actor").mkdir(parents=True)
Path("checkpoints/global_step_2/actor").mkdir(parents=True)
Path("pids.json").write_text(json.dumps([os.getpid(), worker.pid, daemon.pid]))
print("step 2 saved", flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_verl_and_everything_it_started(tmp_path: Path, make_spec, signum: int, code: int) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "run"
    plan(make_spec(), run, progress=False)
    fake = write_fake_verl(tmp_path / "fake", TRAINER)
    env = {**os.environ, "PYTHONPATH": str(fake), "PYTHONUNBUFFERED": "1"}
    cli = Path(sys.executable).parent / "rlvr-audit"
    launcher = subprocess.Popen(
        [str(cli), "train", "launch", str(run), "--quiet", "--stop-grace", "3"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the test's own process group never gets the signal
    )
    pids_file = run / "pids.json"
    deadline = time.monotonic() + 240
    while not pids_file.is_file() and launcher.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert pids_file.is_file(), launcher.communicate()[0] if launcher.poll() is not None else "no trainer"
    time.sleep(1.5)  # the launcher samples verl's process tree every 0.5 s
    pids = json.loads(pids_file.read_text())
    assert all(alive(p) for p in pids)
    launcher.send_signal(signum)
    output, _ = launcher.communicate(timeout=60)
    text = " ".join(output.split())
    assert launcher.returncode == code, output
    assert f"stopped: {signal.Signals(signum).name}: stopped verl" in text, output
    assert f"log {run / 'logs' / 'train.log'}" in text, output
    assert f"last checkpoint {run / 'checkpoints' / 'global_step_2'}" in text, output
    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p for p in pids if alive(p)] == [], "processes left running"
    assert "step 2 saved" in (run / "logs" / "train.log").read_text()
    record = json.loads((run / "launches.jsonl").read_text().splitlines()[-1])
    assert record["mode"] == "local" and Path(record["python"]).parent == Path(sys.executable).parent
    assert set(record["versions"]) >= {"rlvr-audit", "verl", "torch", "vllm"}


def test_launch_refuses_where_verl_cannot_start(tmp_path: Path, make_spec) -> None:  # type: ignore[no-untyped-def]
    """The preflight in a fresh interpreter: here without the rollout engine (the stand-in has no
    vllm), nothing is started and nothing recorded."""
    run = tmp_path / "run"
    plan(make_spec(), run, progress=False)
    fake = write_fake_verl(tmp_path / "fake", "raise SystemExit('must not run')")
    for leftover in (fake / "vllm").iterdir():
        leftover.unlink()
    (fake / "vllm").rmdir()
    cli = Path(sys.executable).parent / "rlvr-audit"
    proc = subprocess.run(
        [str(cli), "train", "launch", str(run), "--quiet"],
        env={**os.environ, "PYTHONPATH": str(fake)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    text = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 2, text
    assert "cannot launch here: vllm missing" in text and "GPU training environment" in text, text
    assert not (run / "logs").exists() and not (run / "launches.jsonl").exists()
