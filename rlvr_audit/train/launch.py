"""``rlvr-audit train launch``: start a planned run with verl, locally or on a Ray cluster.

- Local: first the launch closure is imported in a fresh interpreter
  (:mod:`rlvr_audit.train.preflight`: verl's trainer, ``transfer_queue``, the rollout engine the
  spec names, ...); a missing package is refused before anything starts. Then ``python -m
  verl.trainer.main_ppo <overrides>`` runs as a subprocess of this Python in its own process
  group, from the run directory, its output in ``RUN/logs/train.log`` (verl starts a local Ray
  instance itself). SIGTERM (a scheduler's time limit) or SIGINT (Ctrl-C) to ``train launch``
  stops verl's process group and every process it started, its local Ray included (SIGTERM,
  then SIGKILL after :data:`STOP_GRACE_S`), and says where the log and the last checkpoint are.
- ``--ray-address ADDR``: submitted with Ray's job SDK to an existing cluster, with a runtime
  environment that pins the interpreter (``py_executable``: this environment's Python, or
  ``--ray-python``) and extra environment variables, and an entrypoint that changes to the run
  directory first. Before the job, a tiny probe job with the same runtime environment imports
  the launch closure on the cluster, checks it has the GPUs the spec needs, and imports it again
  in a Ray task on a GPU worker; any failure is refused with the interpreter and module named.
  The run directory must be on storage every node sees at the same path (the parquet files and
  checkpoints live there), and so must the interpreter.

Every launch is recorded in ``RUN/launches.jsonl`` with the spec hash and the rlvr-audit, verl,
torch and rollout-engine versions (the cluster's, for Ray jobs); a run directory whose earlier
launches ran a different spec is refused (its checkpoints belong to that spec).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from ..core.errors import AuditError, UsageError
from ..core.ui import console
from . import preflight
from .plan import load_run_spec, local_command
from .register import saved_steps
from .spec import ExperimentSpec
from .verl_config import TRAIN_ENV_HINT

LAUNCHES_FILE = "launches.jsonl"
STOP_GRACE_S = 20.0
"""Seconds verl's processes get to exit after SIGTERM before they are killed."""
PROBE_TIMEOUT_S = 900.0
"""Longest wait for the cluster probe job (it imports torch and verl twice)."""
GPU_INSTALL_HINT = "install the GPU training environment (README, Install: training on GPUs)"


@dataclass
class LaunchResult:
    """What ``launch`` did."""

    command: list[str]
    """The exact command (local runs; for Ray jobs the entrypoint's words)."""
    dry_run: bool
    """Only printed, not run."""
    log: Path | None = None
    """Where the output goes (local runs)."""
    pid: int | None = None
    """Process id (detached local runs)."""
    returncode: int | None = None
    """Exit status (foreground runs and submissions)."""
    output: str = ""
    """What the submission said (cluster runs)."""
    entrypoint: str = ""
    """The Ray job's shell entrypoint (cluster runs)."""
    runtime_env: dict[str, Any] = field(default_factory=dict)
    """The Ray job's runtime environment (cluster runs)."""
    submission_id: str = ""
    """The Ray job's id (cluster runs)."""


class Stopped(AuditError):
    """``train launch`` was stopped by a signal; verl's processes were ended. Exit code 128 + signal."""

    def __init__(self, signum: int, message: str) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(message)


# --- records -----------------------------------------------------------------------------------


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


def last_checkpoint(run_dir: Path) -> Path | None:
    """The newest ``checkpoints/global_step_N`` verl saved (by N), or ``None``."""
    steps = saved_steps(run_dir)
    return steps[-1][1] if steps else None


def _where(run_dir: Path, log: Path | None) -> str:
    ckpt = last_checkpoint(run_dir)
    saved = f"last checkpoint {ckpt}" if ckpt is not None else "no checkpoint saved yet"
    return (f"log {log}; " if log is not None else "") + saved


# --- launch ------------------------------------------------------------------------------------


def launch(
    run_dir: Path,
    *,
    ray_address: str | None = None,
    ray_python: str | None = None,
    ray_env: dict[str, str] | None = None,
    dry_run: bool = False,
    detach: bool = False,
    progress: bool = True,
    stop_grace: float = STOP_GRACE_S,
) -> LaunchResult:
    """Launch (or with ``dry_run`` only build) the run's command; see the module docstring.
    ``stop_grace``: seconds verl gets after SIGTERM before what is left is killed.

    Raises:
        UsageError: A different spec was launched here, or verl cannot start (here or on the cluster).
        Stopped: SIGTERM/SIGINT while following a local run (verl's processes were ended).
        AuditError: verl exited with an error, or the cluster refused the job.
    """
    run_dir = run_dir.expanduser().resolve()
    spec, plan = load_run_spec(run_dir)
    digest = plan["spec_hash"]
    _check_launches(run_dir, digest)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    if ray_address:
        return _launch_ray(
            run_dir,
            spec,
            digest,
            address=ray_address,
            python=ray_python or sys.executable,
            env=dict(ray_env or {}),
            submission_id=f"{spec.name}-{digest[:8]}-{stamp}".lower(),
            dry_run=dry_run,
            stamp=stamp,
        )
    command = local_command(run_dir)
    if dry_run:
        return LaunchResult(command, True)
    closure = _check_here(spec, progress)
    logs = run_dir / "logs"
    logs.mkdir(exist_ok=True)
    log = logs / "train.log"
    _record(
        run_dir,
        {
            "spec_hash": digest,
            "started": stamp,
            "mode": "local",
            "command": shlex.join(command),
            "python": sys.executable,
            "versions": closure.versions,
        },
    )
    with log.open("ab") as fh:
        fh.write(f"# rlvr-audit train launch {stamp}: {shlex.join(command)}\n".encode())
        fh.flush()
        child = subprocess.Popen(
            command, cwd=run_dir, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    if detach:
        return LaunchResult(command, False, log=log, pid=child.pid)
    code = _follow(child, log, run_dir, progress, stop_grace)
    return LaunchResult(command, False, log=log, pid=child.pid, returncode=code)


def _check_here(spec: ExperimentSpec, progress: bool) -> preflight.Closure:
    engine = spec.resources.rollout_engine
    with console.status(f"checking that verl and {engine} import here", spinner="dots") if progress else _Null():
        closure = preflight.check_python(engine)
    if not closure.ok:
        raise UsageError(f"cannot launch here: {closure.reason()}; {GPU_INSTALL_HINT}")
    return closure


# --- following a local run, and stopping it ------------------------------------------------------


class _Signal(Exception):
    def __init__(self, signum: int) -> None:
        self.signum = signum


def _follow(child: subprocess.Popen[bytes], log: Path, run_dir: Path, progress: bool, grace: float) -> int:
    """Wait for the local run, showing its latest log line. SIGTERM/SIGINT stop verl and every
    process it started (:func:`stop_tree`) and raise :class:`Stopped`."""
    tree = _Tree(child.pid)

    def on_signal(signum: int, frame: object) -> None:
        raise _Signal(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        with console.status("starting verl", spinner="dots") if progress else _Null() as status:
            while child.poll() is None:
                tree.update()
                time.sleep(0.5)
                if progress and status is not None:
                    status.update(f"verl running (log {log}): {_last_line(log)[:100]}")
    except _Signal as sig:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        ended = stop_tree(child, tree, grace)
        name = signal.Signals(sig.signum).name
        where = _where(run_dir, log)
        message = f"{name}: stopped verl ({ended} process(es) ended, its local Ray included); {where}"
        raise Stopped(sig.signum, message) from None
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    code = child.returncode
    if code != 0:
        raise AuditError(f"verl exited with status {code}; see {log}: {_last_line(log)}")
    return code


class _Tree:
    """Every process started under verl's driver, remembered while it runs: Ray's daemons and
    workers may leave verl's process group or be re-parented when their parent dies."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.seen: dict[int, Any] = {}

    def update(self) -> None:
        try:
            for proc in self.root.children(recursive=True):
                self.seen.setdefault(proc.pid, proc)
        except psutil.Error:
            pass

    def alive(self) -> list[Any]:
        """Remembered processes still running (a reused pid is a different process: skipped)."""
        self.update()
        return [p for p in self.seen.values() if p.is_running()]


def stop_tree(child: subprocess.Popen[bytes], tree: _Tree, grace: float = STOP_GRACE_S) -> int:
    """SIGTERM verl's process group and every process remembered under it; SIGKILL what is left
    after ``grace`` seconds. Returns how many processes were ended."""
    procs = [*tree.alive(), tree.root]
    ended = sum(1 for p in procs if p.is_running())
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGTERM)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs([p for p in procs if p.is_running()], timeout=grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(timeout=5)
    return ended


def _last_line(log: Path) -> str:
    try:
        with log.open("rb") as fh:
            fh.seek(max(0, log.stat().st_size - 4096))
            lines = [x for x in fh.read().decode("utf-8", errors="replace").splitlines() if x.strip()]
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


# --- Ray jobs ----------------------------------------------------------------------------------


def ray_job(run_dir: Path, *, python: str, env: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """``(entrypoint, runtime_env)`` of the run's Ray job: change to the run directory, run verl
    with ``python``; workers use ``python`` too (``py_executable``)."""
    verl = local_command(run_dir, python=python)
    entrypoint = f"cd {shlex.quote(str(run_dir))} && exec {shlex.join(verl)}"
    runtime_env: dict[str, Any] = {"py_executable": python}
    if env:
        runtime_env["env_vars"] = dict(env)
    return entrypoint, runtime_env


def _client(address: str) -> Any:
    try:
        from ray.job_submission import JobSubmissionClient  # the ray extra: only with --ray-address
    except ImportError as exc:
        raise UsageError(f"Ray's job SDK is not installed here ({exc}); launch from the training environment") from exc
    try:
        return JobSubmissionClient(address)
    except Exception as exc:
        raise UsageError(f"cannot reach the Ray cluster at {address}: {' '.join(str(exc).split())[:300]}") from exc


def _wait(client: Any, job_id: str, timeout: float) -> str:
    from ray.job_submission import JobStatus  # the ray extra: only with --ray-address

    deadline = time.monotonic() + timeout
    while True:
        status = client.get_job_status(job_id)
        if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
            return str(status.value)
        if time.monotonic() > deadline:
            client.stop_job(job_id)
            raise AuditError(f"the cluster probe job {job_id} did not finish in {timeout:g} s; stopped it")
        time.sleep(1.0)


def probe_cluster(
    client: Any, *, run_dir: Path, spec: ExperimentSpec, python: str, env: dict[str, str], job_id: str, address: str
) -> preflight.Closure:
    """Run the preflight as a Ray job with the run's runtime environment (see the module docstring).

    Raises:
        UsageError: The cluster's Python cannot run verl's trainer, the rollout engine, or has too few GPUs.
    """
    # no py_executable for the probe job itself: Ray's job supervisor would start under it, and an
    # interpreter without Ray costs minutes of worker-start retries before failing. The probe runs
    # under ``python`` (its entrypoint) and pins ``python`` for its Ray task.
    runtime_env = {"env_vars": dict(env)} if env else {}
    probe = [python, "-m", "rlvr_audit.train.preflight", "--rollout", spec.resources.rollout_engine]
    probe += ["--ray-task", "--gpus", str(spec.n_gpus)]
    entrypoint = f"cd {shlex.quote(str(run_dir))} && exec {shlex.join(probe)}"
    client.submit_job(entrypoint=entrypoint, submission_id=job_id, runtime_env=runtime_env or None)
    status = _wait(client, job_id, PROBE_TIMEOUT_S)
    logs = client.get_job_logs(job_id)
    record = preflight.parse(logs)
    if record is None:
        # a job whose interpreter cannot even start Ray's job supervisor leaves no log, only a message
        message = str(getattr(client.get_job_info(job_id), "message", "") or "")
        tail = " ".join((logs + " " + message).split())[-400:]
        raise UsageError(
            f"the cluster at {address} could not run {python} -m rlvr_audit.train.preflight (job {job_id} "
            f"{status}): {tail or 'no output'}; the interpreter must exist at that path on the cluster, with "
            f"rlvr-audit and verl installed ({TRAIN_ENV_HINT}), or pass --ray-python"
        )
    closure = preflight.closure_from(record)
    if not closure.ok:
        raise UsageError(
            f"cannot launch on the cluster at {address}: {closure.reason()} (python {closure.python} on "
            f"{closure.host}); {GPU_INSTALL_HINT} there, or pass --ray-python"
        )
    return closure


def _launch_ray(
    run_dir: Path,
    spec: ExperimentSpec,
    digest: str,
    *,
    address: str,
    python: str,
    env: dict[str, str],
    submission_id: str,
    dry_run: bool,
    stamp: str,
) -> LaunchResult:
    entrypoint, runtime_env = ray_job(run_dir, python=python, env=env)
    words = shlex.split(entrypoint)
    if dry_run:
        return LaunchResult(words, True, entrypoint=entrypoint, runtime_env=runtime_env, submission_id=submission_id)
    client = _client(address)
    closure = probe_cluster(
        client,
        run_dir=run_dir,
        spec=spec,
        python=python,
        env=env,
        job_id=f"{submission_id}-preflight",
        address=address,
    )
    try:
        job_id = client.submit_job(
            entrypoint=entrypoint,
            submission_id=submission_id,
            runtime_env=runtime_env,
            metadata={"rlvr_audit_spec_hash": digest, "rlvr_audit_run_dir": str(run_dir)},
        )
    except Exception as exc:
        raise AuditError(f"the Ray cluster at {address} refused the job: {' '.join(str(exc).split())[:500]}") from exc
    _record(
        run_dir,
        {
            "spec_hash": digest,
            "started": stamp,
            "mode": "ray",
            "address": address,
            "submission_id": job_id,
            "entrypoint": entrypoint,
            "runtime_env": runtime_env,
            "versions": closure.versions,
            "cluster_gpus": closure.gpus,
            "gpu_worker": (closure.gpu_task or {}).get("host"),
        },
    )
    output = f"submitted Ray job {job_id}; follow it with: ray job logs --follow {job_id} --address {address}"
    return LaunchResult(
        words,
        False,
        returncode=0,
        output=output,
        entrypoint=entrypoint,
        runtime_env=runtime_env,
        submission_id=job_id,
    )


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
