"""Run manifests: what ran, with which package versions, on what hardware, and how it ended.

Every command that writes units (``run``, ``generate``, ``import``, ``probe``) records one in the
store's ``runs/`` folder through :class:`ManifestWriter`.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import secrets
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from .records import RunManifest
from .store import Store

__all__ = ["ManifestWriter"]


def _package_versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for name in ("rlvr-audit", "lm-eval", "math-verify", "transformers", "torch", "vllm", "numpy", "scipy", "pandas"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        res = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None


def _hardware() -> dict[str, str]:
    hw = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": str(os.cpu_count()),
        "machine": platform.machine(),
    }
    torch = sys.modules.get("torch")  # only if a stage already imported it
    if torch is not None:
        try:
            if torch.cuda.is_available():
                hw["cuda_devices"] = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        except Exception:  # a broken CUDA setup must not fail the manifest
            hw["cuda_devices"] = "unavailable"
    return hw


def _program() -> str:
    """The program that ran: the script's name (``rlvr-audit``), or the module run with ``-m``."""
    name = Path(sys.argv[0]).name
    return "python -m rlvr_audit.cli" if name == "__main__.py" else name


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class ManifestWriter:
    """Writes a run's manifest when the run starts (status ``running``; with ``lazy``, when
    :meth:`start` is called: before the run first writes to the store) and updates it when the
    run ends (:meth:`finish`). As a context manager it records the end itself: ``finished`` (unless
    the run already recorded it), or ``interrupted`` on Ctrl-C, or ``failed`` on any other
    exception (which propagates). The manifest names the process (``pid``, ``host``), so a run
    that died without recording its end can be told from one still running
    (:func:`rlvr_audit.core.store.run_status`)."""

    def __init__(self, store: Store, units: list[str], backend: str | None, *, lazy: bool = False) -> None:
        self.store = store
        self.started = False
        """Whether the manifest has been written."""
        self.finished = False
        """Whether the run's end (any status) has been recorded."""
        run_id = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)
        self.manifest = RunManifest(
            run_id=run_id,
            command=" ".join([_program(), *sys.argv[1:]]),
            started_at=_now(),
            units=units,
            backend=backend,
            packages=_package_versions(),
            git_commit=_git_commit(),
            hardware=_hardware(),
            pid=os.getpid(),
            host=socket.gethostname(),
        )
        if not lazy:
            self.start()

    def start(self) -> None:
        """Write the manifest (once)."""
        if not self.started:
            self.started = True
            self.store.write_manifest(self.manifest)

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if kind is None:
            if not self.finished:
                self.finish("finished")
        else:
            self.finish("interrupted" if issubclass(kind, KeyboardInterrupt) else "failed")

    def finish(self, status: str) -> None:
        """Record how the run ended (``finished``, ``failed``, ``interrupted``) and when. May be
        called again: a run marked finished before its report is written is marked failed if the
        report fails. A lazy manifest that was never started is left unwritten when the run
        failed before it wrote anything."""
        if not self.started and status != "finished":
            return
        self.manifest = self.manifest.model_copy(
            update={"status": status, "finished_at": _now(), "hardware": _hardware()}
        )
        self.started = True
        self.store.write_manifest(self.manifest)
        self.finished = True
