"""``rlvr-audit task synth``: write a synthetic task's problems, or register a variant of it.

The problems come from the generator of :mod:`rlvr_audit.core.synthetic`; this module writes them
out and, with ``write_task``, a new task file with other generator settings.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from ..core.configfile import read_yaml
from ..core.errors import UsageError
from ..core.synthetic import SynthResult, make_config, write_synthetic
from ..core.tasks import available_tasks, load_task, tasks_dir

__all__ = ["synthesize"]

_TASK_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
"""Task ids a variant may be written under."""


def synthesize(
    *,
    out: Path,
    config_dir: Path,
    base_task: str = "synth_arith",
    overrides: dict[str, object] | None = None,
    write_task: str | None = None,
) -> SynthResult:
    """``rlvr-audit task synth``: write the problems of a synthetic task to ``out``.

    The generator settings are those of ``tasks/<base_task>.yaml`` with ``overrides`` (config
    field -> value; ``None`` values are ignored). With ``write_task``, also write
    ``tasks/<write_task>.yaml``: a copy of the base task with these settings, so the new set runs
    through ``rlvr-audit run --tasks <write_task>`` like any benchmark. Everything is validated
    before anything is written; an existing task file is never overwritten.
    """
    spec = load_task(base_task, config_dir)
    if spec.settings.generator is None:
        synthetic = [t for t in available_tasks(config_dir) if load_task(t, config_dir).settings.generator is not None]
        raise UsageError(
            f"task {base_task!r} is not synthetic (it has no metadata.rlvr_audit.generator); synthetic tasks: "
            + (", ".join(synthetic) or "(none)")
        )
    values = spec.settings.generator.model_dump()
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    cfg = make_config(**values)
    task_path: Path | None = None
    data: dict[str, object] = {}
    if write_task is not None:
        if not _TASK_NAME.match(write_task):
            raise UsageError(
                f"--write-task must be a task id of lower-case letters, digits and '_' (starting with a letter), "
                f"got {write_task!r}"
            )
        task_path = tasks_dir(config_dir) / f"{write_task}.yaml"
        if task_path.exists():
            raise UsageError(f"--write-task: {task_path} exists; pick another name or remove it")
        data = read_yaml(available_tasks(config_dir)[base_task])
        meta = data["metadata"]["rlvr_audit"]  # type: ignore[index]
        meta["generator"] = cfg.model_dump()
        meta["expected_size"] = cfg.n
        meta["display_name"] = f"{meta['display_name']} ({write_task})"
        data["task"] = write_task
        data["dataset_kwargs"] = {"data_files": {"test": f"{write_task}.jsonl"}}
    result = write_synthetic(cfg, out)
    if task_path is not None and write_task is not None:
        header = (
            f"# Synthetic arithmetic task written by `rlvr-audit task synth --write-task {write_task}` from "
            f"tasks/{base_task}.yaml;\n# its problems are generated from metadata.rlvr_audit.generator "
            f"(file SHA-256 {result.sha256}).\n"
        )
        text = header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        tmp = task_path.with_name(f".{task_path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(task_path)
        load_task(write_task, config_dir)  # the file it wrote is a valid task
    return SynthResult(path=result.path, sha256=result.sha256, n=result.n, config=cfg, task_file=task_path)
