"""Can verl's trainer start in this Python? Import what ``main_ppo`` imports at launch.

``python -m verl.trainer.main_ppo`` imports little at module level; the rest comes when the run
starts: the V1 trainer (``verl.trainer.ppo.v1``, which needs ``transfer_queue``), its engine
workers, the agent and reward loops (the rollout router needs ``cachetools``, the servers
``fastapi``/``uvicorn``), the FSDP engine, and the rollout engine the spec names, loaded by
verl's own registries (``get_rollout_replica_class`` / ``get_rollout_class``; vLLM or SGLang).
:func:`import_closure` imports exactly those in order and records every module that fails and
which top-level package was missing. ``train validate`` and ``train launch`` run it in a fresh
interpreter (:func:`check_python`), the way the launch will import them, so a missing package is
found before a run costs GPU hours; on a CPU machine the answer is "cannot launch here: vllm
missing; fine for validation".

``python -m rlvr_audit.train.preflight --rollout vllm [--ray-task --gpus N]`` prints one JSON line
(:data:`MARK` first). With ``--ray-task`` it also connects to the Ray cluster it runs in (as a
Ray job: ``train launch --ray-address`` submits it with the run's runtime environment), checks the
cluster has the GPUs the spec needs, and runs the closure once more in a tiny Ray task on a GPU
worker, where verl's rollout workers will run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import platform
import subprocess
import sys
import warnings
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any

from ..core.errors import UsageError

MARK = "RLVR_AUDIT_PREFLIGHT "
"""Prefix of the JSON line the probe prints (the rest of a job's log is Ray's and verl's)."""

TRAINER_MODULES: tuple[str, ...] = (
    "verl.trainer.main_ppo",
    "transfer_queue",
    "verl.trainer.ppo.v1",
    "verl.workers.engine_workers",
    "verl.workers.engine.fsdp.transformer_impl",
    "verl.workers.rollout.router",
    "verl.workers.rollout.llm_server",
    "verl.experimental.agent_loop",
    "verl.experimental.reward_loop",
    "rlvr_audit.train.rewards",
    "rlvr_audit.train.callback",
)
"""What verl 0.9.1's ``main_ppo`` imports when a run starts with ``trainer.use_v1`` (its default),
the FSDP strategy and our reward and checkpoint callback, in import order."""

ROLLOUT_ENGINES: tuple[str, ...] = ("vllm", "sglang")
"""Rollout engines a spec can name (``resources.rollout_engine``)."""


@dataclass
class Closure:
    """What importing the launch closure found in one Python."""

    python: str
    """The interpreter (``sys.executable``)."""
    rollout: str
    """The rollout engine checked."""
    missing: list[str] = field(default_factory=list)
    """Top-level packages that were not installed, in the order they were first needed."""
    failures: dict[str, str] = field(default_factory=dict)
    """Module (or verl loader) -> ``ExceptionType: message`` for every import that failed."""
    versions: dict[str, str | None] = field(default_factory=dict)
    """Installed versions of rlvr-audit, verl, torch, ray and the rollout engine (``None``: absent)."""
    host: str = ""
    """Host name."""
    gpus: float | None = None
    """GPUs of the Ray cluster (only from ``--ray-task``)."""
    gpu_task: dict[str, Any] | None = None
    """The closure as the tiny Ray task on a GPU worker saw it (only from ``--ray-task``)."""

    @property
    def ok(self) -> bool:
        """Everything imported."""
        return not self.failures

    def reason(self) -> str:
        """One line: what is missing (or what failed), and where it was needed."""
        if self.ok:
            return "every module verl imports at launch imports"
        if self.missing:
            first = next(m for m, e in self.failures.items() if "No module named" in e)
            needed = "" if first in self.missing else f" (first needed by {first})"
            return f"{', '.join(self.missing)} missing{needed}"
        module, error = next(iter(self.failures.items()))
        return f"{module} fails to import ({error})"


def _loaders(rollout: str) -> list[tuple[str, Any]]:
    """verl's own rollout loaders for ``rollout`` (imported lazily: they import the engine)."""

    def replica() -> None:
        from verl.workers.rollout.replica import get_rollout_replica_class  # loads the engine

        get_rollout_replica_class(rollout)

    def server_adapter() -> None:
        from verl.workers.rollout.base import get_rollout_class  # loads the rollout engine

        get_rollout_class(rollout, "async")

    return [
        (f"get_rollout_replica_class({rollout!r})", replica),
        (f"get_rollout_class({rollout!r}, 'async')", server_adapter),
    ]


def _versions(rollout: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist in ("rlvr-audit", "verl", "torch", "ray", "transformers", rollout):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def import_closure(rollout: str) -> Closure:
    """Import the launch closure in this process (see the module docstring).

    Imports heavy packages (torch, verl, the rollout engine) and leaves them imported: run it in
    a fresh interpreter (:func:`check_python`), never inside a long-lived process.
    """
    result = Closure(python=sys.executable, rollout=rollout, versions=_versions(rollout), host=platform.node())
    steps: list[tuple[str, Any]] = [(m, lambda m=m: importlib.import_module(m)) for m in TRAINER_MODULES]
    # the engine itself first: without it verl's loaders fail with a confusing version message
    steps.append((rollout, lambda: importlib.import_module(rollout)))
    logging.disable(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, step in steps:
            _step(result, name, step)
        if rollout not in result.failures:
            for name, step in _loaders(rollout):
                _step(result, name, step)
    return result


def _step(result: Closure, name: str, step: Any) -> None:
    try:
        step()
    except ModuleNotFoundError as exc:
        top = (exc.name or str(exc)).split(".")[0]
        if top not in result.missing:
            result.missing.append(top)
        result.failures[name] = f"ModuleNotFoundError: No module named {exc.name!r}"
    except Exception as exc:  # an engine that imports but cannot initialise is a failure too
        result.failures[name] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"


def parse(output: str) -> dict[str, Any] | None:
    """The probe's JSON record from its output (``None`` if it printed none)."""
    for line in reversed(output.splitlines()):
        if line.startswith(MARK):
            try:
                record: dict[str, Any] = json.loads(line[len(MARK) :])
            except json.JSONDecodeError:
                return None
            return record
    return None


def closure_from(record: dict[str, Any]) -> Closure:
    """A :class:`Closure` from the probe's JSON record."""
    names = {f for f in Closure.__dataclass_fields__}
    return Closure(**{k: v for k, v in record.items() if k in names})


def check_python(rollout: str, *, python: str | None = None, timeout: float = 600) -> Closure:
    """Import the launch closure in a fresh ``python`` (default: this interpreter), as the launch would.

    Raises:
        rlvr_audit.core.errors.UsageError: The interpreter cannot run the probe at all.
    """
    exe = python or sys.executable
    try:
        proc = subprocess.run(
            [exe, "-m", "rlvr_audit.train.preflight", "--rollout", rollout],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"could not run {exe} to check verl's imports: {exc}") from exc
    record = parse(proc.stdout)
    if record is None:
        tail = " ".join((proc.stdout + proc.stderr).split())[-400:]
        raise UsageError(f"{exe} could not check verl's imports (exit {proc.returncode}): {tail}")
    return closure_from(record)


def _ray_probe(rollout: str, gpus_needed: int) -> Closure:
    """Inside a Ray job: the closure here, the cluster's GPUs, and the closure in a GPU task."""
    import ray  # the ray extra: only inside the Ray probe job

    here = import_closure(rollout)
    ray.init(logging_level=logging.ERROR, log_to_driver=False)
    try:
        here.gpus = float(ray.cluster_resources().get("GPU", 0.0))
        if here.gpus >= 1:

            @ray.remote(num_gpus=1, max_retries=0)
            def on_gpu_worker() -> dict[str, Any]:
                return asdict(import_closure(rollout))

            # the workers verl starts will run this interpreter (the job's py_executable)
            task = on_gpu_worker.options(runtime_env={"py_executable": sys.executable})
            here.gpu_task = ray.get(task.remote(), timeout=600)
            worker = closure_from(here.gpu_task)
            for name, error in worker.failures.items():
                here.failures[f"{name} on the GPU worker {worker.host} ({worker.python})"] = error
            here.missing += [m for m in worker.missing if m not in here.missing]
    finally:
        ray.shutdown()
    if here.gpus < gpus_needed:
        here.failures["cluster GPUs"] = f"the cluster has {here.gpus:g} GPU(s), the spec needs {gpus_needed}"
    return here


def main(argv: list[str] | None = None) -> int:
    """``python -m rlvr_audit.train.preflight``: print the closure as one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m rlvr_audit.train.preflight", description=__doc__)
    parser.add_argument("--rollout", choices=ROLLOUT_ENGINES, default="vllm")
    parser.add_argument("--ray-task", action="store_true", help="also check the Ray cluster this job runs in")
    parser.add_argument("--gpus", type=int, default=0, help="GPUs the run needs (with --ray-task)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    closure = _ray_probe(args.rollout, args.gpus) if args.ray_task else import_closure(args.rollout)
    sys.stdout.write(MARK + json.dumps(asdict(closure)) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
