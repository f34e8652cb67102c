"""A stand-in for verl and vLLM on ``PYTHONPATH``, for the launch mechanics a CPU cannot run.

It has the same interface where ``train launch`` touches it: every module of the launch closure
(:data:`rlvr_audit.train.preflight.TRAINER_MODULES`), verl's two rollout loaders, a ``vllm``
package, and ``python -m verl.trainer.main_ppo`` running the given body. The real package is
used everywhere else (``tests/train/test_train_verl*.py``)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from rlvr_audit.train.preflight import TRAINER_MODULES

FAKE_VERSION = "0.9.1+fake"


def write_fake_verl(root: Path, main_body: str) -> Path:
    """Write the stand-in under ``root`` (put it first on ``PYTHONPATH``); ``main_body`` is the
    code ``python -m verl.trainer.main_ppo`` runs."""
    modules = {m for m in TRAINER_MODULES if m.split(".")[0] in ("verl", "transfer_queue")}
    modules |= {"vllm", "verl.workers.rollout.replica", "verl.workers.rollout.base"}
    for module in sorted(modules):
        parts = module.split(".")
        for i in range(1, len(parts)):
            package = root.joinpath(*parts[:i])
            package.mkdir(parents=True, exist_ok=True)
            (package / "__init__.py").touch()
        path = root.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        (path / "__init__.py").touch()
    (root / "verl" / "__init__.py").write_text(f"__version__ = {FAKE_VERSION!r}\n")
    loader = "def {name}(rollout, *args):\n    import importlib\n    importlib.import_module(rollout)\n"
    (root / "verl/workers/rollout/replica/__init__.py").write_text(loader.format(name="get_rollout_replica_class"))
    (root / "verl/workers/rollout/base/__init__.py").write_text(loader.format(name="get_rollout_class"))
    (root / "verl/trainer/main_ppo/__main__.py").write_text(textwrap.dedent(main_body))
    return root
