"""``rlvr-audit train launch``: start a planned run with verl, locally or on a Ray cluster.

- Local: ``python -m verl.trainer.main_ppo <overrides>`` as a subprocess of this Python, run
  from the run directory, its output in ``RUN/logs/train.log`` (verl starts a local Ray
  instance itself).
- ``--ray-address ADDR``: ``ray job submit --address ADDR --no-wait -- python3 -m
  verl.trainer.main_ppo <overrides>`` on an existing Ray cluster. The run directory must be on
  storage every node sees at the same path (the parquet files and checkpoints live there), and
  the nodes need ``rlvr-audit[train]`` installed (verl imports the reward and the checkpoint
  callback from it).

Every launch is recorded in ``RUN/launches.jsonl`` with the spec hash; a run directory whose
earlier launches ran a different spec is refused (its checkpoints belong to that spec).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import AuditError, UsageError
from .plan import load_run_spec, local_command

LAUNCHES_FILE = "launches.jsonl"


@dataclass
class LaunchResult:
    """What ``launch`` did."""

    command: list[str]
    """The exact command."""
    dry_run: bool
    """Only printed, not run."""
    log: Path | None = None
    """Where the output goes (local runs)."""
    pid: int | None = None
    """Process id (detached local runs)."""
    returncode: int | None = None
    """Exit status (foreground runs and submissions)."""
    output: str = ""
    """What ``ray job submit`` printed (cluster runs)."""


def ray_command(run_dir: Path, address: str, submission_id: str) -> list[str]:
    """``ray job submit`` of the run's verl command."""
    verl = local_command(run_dir, python="python3")
    beside = Path(sys.executable).parent / "ray"  # the ray CLI of this environment, else PATH's
    ray = str(beside) if beside.is_file() else shutil.which("ray") or "ray"
    return [ray, "job", "submit", "--address", address, "--submission-id", submission_id, "--no-wait", "--", *verl]


def _check_launches(run_dir: Path, digest: str) -> None:
    path = run_dir / LAUNCHES_FILE
    if not path.is_file():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            old = json.loads(line).get("spec_hash")
        except json.JSONDecodeError:
            continue
        if old != digest:
            raise UsageError(
                f"{run_dir} was launched with a different spec (hash {old}, now {digest}); its checkpoints belong "
                "to that spec: plan this one into a new run directory"
            )


def _record(run_dir: Path, record: dict[str, object]) -> None:
    with (run_dir / LAUNCHES_FILE).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def launch(
    run_dir: Path,
    *,
    ray_address: str | None = None,
    dry_run: bool = False,
    detach: bool = False,
    progress: bool = True,
) -> LaunchResult:
    """Launch (or with ``dry_run`` only build) the run's command; see the module docstring."""
    run_dir = run_dir.expanduser().resolve()
    spec, plan = load_run_spec(run_dir)
    digest = plan["spec_hash"]
    _check_launches(run_dir, digest)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    if ray_address:
        command = ray_command(run_dir, ray_address, f"{spec.name}-{digest[:8]}-{stamp}".lower())
    else:
        command = local_command(run_dir)
    if dry_run:
        return LaunchResult(command, True)
    record: dict[str, object] = {
        "spec_hash": digest,
        "started": stamp,
        "mode": "ray" if ray_address else "local",
        "command": shlex.join(command),
    }
    if ray_address:
        try:
            proc = subprocess.run(command, cwd=run_dir, capture_output=True, text=True)
        except FileNotFoundError as exc:
            raise UsageError("the `ray` command is not installed here (pip install -e '.[train]')") from exc
        output = (proc.stdout + proc.stderr).strip()
        if proc.returncode != 0:
            raise AuditError(f"ray job submit failed (exit {proc.returncode}): {output[-800:]}")
        _record(run_dir, record)
        return LaunchResult(command, False, returncode=0, output=output)
    logs = run_dir / "logs"
    logs.mkdir(exist_ok=True)
    log = logs / "train.log"
    _record(run_dir, record)
    with log.open("ab") as fh:
        fh.write(f"# rlvr-audit train launch {stamp}: {shlex.join(command)}\n".encode())
        fh.flush()
        child = subprocess.Popen(
            command, cwd=run_dir, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    if detach:
        return LaunchResult(command, False, log=log, pid=child.pid)
    return LaunchResult(command, False, log=log, pid=child.pid, returncode=_follow(child, log, progress))


def _follow(child: subprocess.Popen[bytes], log: Path, progress: bool) -> int:
    """Wait for the local run, showing its latest log line; Ctrl-C stops its process group."""
    from ..core.ui import console

    try:
        with console.status("starting verl", spinner="dots") as status:
            while child.poll() is None:
                time.sleep(1.0)
                if progress:
                    status.update(f"verl running (log {log}): {_last_line(log)[:100]}")
    except KeyboardInterrupt:
        os.killpg(child.pid, signal.SIGTERM)
        child.wait()
        raise
    code = child.returncode
    if code != 0:
        raise AuditError(f"verl exited with status {code}; see {log}: {_last_line(log)}")
    return code


def _last_line(log: Path) -> str:
    try:
        with log.open("rb") as fh:
            fh.seek(max(0, log.stat().st_size - 4096))
            lines = [x for x in fh.read().decode("utf-8", errors="replace").splitlines() if x.strip()]
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""
