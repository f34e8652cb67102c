"""The bundled training runner: spurious-reward GRPO experiments on verl, one spec file away.

An experiment spec (YAML, :mod:`rlvr_audit.train.spec`) names a base model, a reward
(:mod:`rlvr_audit.train.rewards`), training data with a label transform, the paper's
hyper-parameters and a clipping mode. ``rlvr-audit train plan`` turns it into a run
directory (verl-format parquet, the Hydra overrides of verl's ``ppo_trainer``, a launch
script, the resolved spec and its hash; :mod:`rlvr_audit.train.plan`); ``train validate``
composes that configuration against the installed verl and checks what verl does not
(:mod:`rlvr_audit.train.validate`); ``train launch`` starts verl locally or on a Ray cluster
(:mod:`rlvr_audit.train.launch`); ``train register`` and the checkpoint callback turn every
saved step into a checkpoint-registry entry, and ``train merge`` converts FSDP shards with
verl's model merger (:mod:`rlvr_audit.train.register`).

verl (the ``[train]`` extra) is imported only inside the functions that need it: planning,
the rewards and registration work without it.
"""
