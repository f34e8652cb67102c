"""A verl checkpoint callback that registers every saved step.

verl 0.9's trainer instantiates ``trainer.checkpoint_callback_class`` on the driver and calls
its ``on_save(trainer, global_step, checkpoint_dir, ...)`` after each save; ``train plan``
sets it to :class:`RegisterCheckpoints`, which rebuilds the run's ``checkpoints.yaml``
(:func:`rlvr_audit.train.register.register_run`). A failure to register is logged, not raised:
the checkpoint itself is safe on disk and ``rlvr-audit train register RUN`` can be run later.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .register import register_run

logger = logging.getLogger(__name__)


class RegisterCheckpoints:
    """verl ``CheckpointCallback``: register each saved step in ``RUN/checkpoints.yaml``.

    Duck-typed (verl loads it by name and only calls ``on_save``), so importing this module
    does not need verl.
    """

    def __init__(self, config: Any = None) -> None:
        """Keep verl's config; the run directory is the parent of ``trainer.default_local_dir``."""
        self.config = config

    def run_dir(self) -> Path:
        """The run directory of the training job."""
        return Path(str(self.config.trainer.default_local_dir)).parent

    def on_save(
        self,
        trainer: Any = None,
        global_step: int = 0,
        checkpoint_dir: str = "",
        async_save: bool = False,
        **kwargs: Any,
    ) -> None:
        """Register every step saved so far (idempotent); log and carry on if that fails."""
        try:
            result = register_run(self.run_dir())
        except Exception as exc:  # the checkpoint is on disk; registering can be redone by hand
            logger.warning(
                "rlvr-audit: could not register step %s (%s); run `rlvr-audit train register`", global_step, exc
            )
            return
        logger.info("rlvr-audit: registered %s in %s", ", ".join(result.added) or "nothing new", result.registry)
