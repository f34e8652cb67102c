"""``rlvr-audit task export``: lm-eval task files that run offline on local data, with our prompt.

The task YAMLs in ``tasks/`` name Hub datasets, so ``lm_eval --include_path tasks`` needs the
Hub. :func:`export_tasks` writes, for each task, ``OUT/<task>.yaml``: the same lm-eval task
(``repeats``, ``generation_kwargs``, ``filter_list``, ``metric_list``) reading
``DATA_DIR/<task>.jsonl`` (absolute path, ``dataset_path: json``) and prompting with one of our
prompt templates exactly as rlvr-audit renders it:

- a raw template (``chat: false``): ``doc_to_text`` is the template text with the question put in
  (and its ``assistant_prefix`` appended), so lm-eval sends our prompt string character for
  character;
- a chat template (``chat: true``): ``doc_to_text`` is the user message, ``description`` the
  system message (lm-eval makes the description the system turn under ``--apply_chat_template``)
  and ``gen_prefix`` the ``assistant_prefix``. Run it with ``lm_eval --apply_chat_template``
  (and without ``--system_instruction``): the tokenizer's chat template then renders the same
  string ours does.

The literal text of a template goes into Jinja ``{% raw %}`` blocks, so LaTeX braces are never
read as template syntax; the question is the row's question field, as our task settings name it.
The template's stop strings become ``until``. The file's ``metadata.rlvr_audit_export`` records
the source task, the template and its hash, and the data file's SHA-256.

The task name stays the task id, so lm-eval's ``samples_<task>_<date>.jsonl`` imports with
``rlvr-audit import lm-eval-samples`` without ``--task`` (a task of the same name in lm-eval's
own catalogue, e.g. ``aime24``, is overridden by ``--include_path``).

Known limits: lm-eval cannot keep a stop string in the completion (``keep_stop: true``, e.g.
``r1_think``), so its completions end before it where ours include it; a chat template that
relies on ``raw_fallback`` for a tokenizer without a chat template has no lm-eval equivalent.
Both are reported as notes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..core.errors import UsageError
from ..core.prompts import PLACEHOLDER, PromptTemplate, load_prompt
from ..core.tasks import TaskSpec, available_tasks, load_task, read_jsonl_rows, rows_to_problems

__all__ = ["DEFAULT_PROMPT", "ExportResult", "ExportedTask", "export_tasks", "jinja_literal", "question_jinja"]

DEFAULT_PROMPT = "no_template"
"""Template exported when none is named: the raw question, as the task files' ``doc_to_text``."""


@dataclass(frozen=True)
class ExportedTask:
    """One task file written."""

    task: str
    """Task id (and lm-eval task name)."""
    path: Path
    """The YAML written."""
    data_file: Path
    """The local data file it reads (absolute)."""
    n_problems: int
    """Problems in the data file."""


@dataclass
class ExportResult:
    """What :func:`export_tasks` wrote."""

    out: Path
    """The folder (pass it to ``lm_eval --include_path``)."""
    prompt: str
    """Prompt template id."""
    chat: bool
    """Whether the template needs ``lm_eval --apply_chat_template``."""
    tasks: list[ExportedTask] = field(default_factory=list)
    """The task files, in the order asked."""
    notes: list[str] = field(default_factory=list)
    """Where lm-eval cannot do exactly what rlvr-audit does with this template."""

    @property
    def lm_eval_args(self) -> str:
        """The lm-eval arguments that run the exported tasks as exported."""
        args = f"--include_path {self.out} --tasks {','.join(t.task for t in self.tasks)}"
        return args + (" --apply_chat_template" if self.chat else "")


def jinja_literal(text: str) -> str:
    """``text`` as a Jinja template that renders to exactly ``text`` (``{% raw %}`` blocks)."""
    if not text:
        return ""
    parts = text.split("{% endraw %}")
    return "{% raw %}" + "{% endraw %}{{ '{% endraw %}' }}{% raw %}".join(parts) + "{% endraw %}"


def question_jinja(fields: str | list[str]) -> str:
    """Jinja for the row's question: the first of ``fields`` present and not null."""
    names = [fields] if isinstance(fields, str) else list(fields)
    for name in names:
        if not name.isidentifier():
            raise UsageError(f"question field {name!r} is not a plain name; lm-eval's Jinja cannot read it")
    expr = names[-1]
    for name in reversed(names[:-1]):
        expr = f"({name} if {name} is defined and {name} is not none else {expr})"
    return "{{ " + expr + " }}"


def _with_question(template_text: str, question: str) -> str:
    """``template_text`` with every ``{question}`` replaced by the Jinja ``question`` expression."""
    return question.join(jinja_literal(part) for part in template_text.split(PLACEHOLDER))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def task_config(
    spec: TaskSpec, template: PromptTemplate, template_id: str, data_file: Path, data_sha256: str
) -> dict[str, Any]:
    """The lm-eval task config of ``spec`` reading ``data_file`` and prompting with ``template``."""
    question = question_jinja(spec.settings.question_field)
    g = spec.generation_kwargs
    until = list(dict.fromkeys([*g.until, *template.stop]))
    cfg: dict[str, Any] = {
        "task": spec.task,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {spec.test_split: str(data_file)}},
        "test_split": spec.test_split,
        "output_type": spec.output_type,
        "repeats": spec.repeats,
        "generation_kwargs": {**g.model_dump(), "until": until},
    }
    if template.chat:
        assert template.user is not None  # guaranteed by validation
        cfg["doc_to_text"] = _with_question(template.user, question)
        if template.system is not None:
            cfg["description"] = jinja_literal(template.system)
        if template.assistant_prefix:
            cfg["gen_prefix"] = jinja_literal(template.assistant_prefix)
    else:
        assert template.text is not None
        cfg["doc_to_text"] = _with_question(template.text, question) + jinja_literal(template.assistant_prefix)
    cfg["doc_to_target"] = spec.doc_to_target
    if spec.filter_list is not None:
        cfg["filter_list"] = spec.filter_list
    if spec.metric_list is not None:
        cfg["metric_list"] = spec.metric_list
    cfg["metadata"] = {
        "version": spec.metadata.version,
        "rlvr_audit_export": {
            "task": spec.task,
            "prompt": template_id,
            "template_hash": template.template_hash,
            "apply_chat_template": template.chat,
            "data_sha256": data_sha256,
        },
    }
    return cfg


def _notes(template: PromptTemplate, template_id: str) -> list[str]:
    notes = []
    if template.keep_stop and template.stop:
        notes.append(
            f"template {template_id!r} keeps its stop string in the completion (keep_stop); lm-eval cuts it off, "
            "so lm-eval's completions end before it"
        )
    if template.chat and template.raw_fallback:
        notes.append(
            f"template {template_id!r} falls back to a raw prompt for tokenizers without a chat template; lm-eval "
            "has no such fallback: use it with models that have a chat template"
        )
    return notes


def export_tasks(
    *,
    tasks: list[str] | None,
    data_dir: Path,
    out: Path,
    config_dir: Path,
    prompt: str = DEFAULT_PROMPT,
) -> ExportResult:
    """Write ``out/<task>.yaml`` for each of ``tasks`` (see the module docstring); ``None``: every
    task with a data file in ``data_dir``.

    Every task, the template and every data file (``data_dir/<task>.jsonl``, read and validated as
    ``--data-dir`` reads it) are checked before anything is written; existing files of the same
    names in ``out`` are replaced.
    """
    template = load_prompt(prompt, config_dir)
    data_dir = data_dir.expanduser().resolve()
    if not data_dir.is_dir():
        raise UsageError(f"--data-dir {data_dir} is not a folder")
    if tasks is None:
        tasks = [t for t in available_tasks(config_dir) if (data_dir / f"{t}.jsonl").is_file()]
        if not tasks:
            raise UsageError(
                f"no <task>.jsonl in {data_dir} for any task ({', '.join(available_tasks(config_dir))}); "
                "name the tasks with --tasks"
            )
    if not tasks:
        raise UsageError("no task to export: name at least one with --tasks")
    configs: list[tuple[TaskSpec, Path, int, dict[str, Any]]] = []
    for name in dict.fromkeys(tasks):
        spec = load_task(name, config_dir)
        path = data_dir / f"{spec.task}.jsonl"
        if not path.is_file():
            raise UsageError(
                f"no data file for task {spec.task!r}: {path} does not exist"
                + (" (write it with `rlvr-audit task synth --out FILE`)" if spec.settings.generator else "")
            )
        problems = rows_to_problems(spec, read_jsonl_rows(path), str(path))
        configs.append((spec, path, len(problems), task_config(spec, template, prompt, path, _sha256(path))))
    out.mkdir(parents=True, exist_ok=True)
    result = ExportResult(out=out, prompt=prompt, chat=template.chat, notes=_notes(template, prompt))
    result.tasks = [
        ExportedTask(task=spec.task, path=out / f"{spec.task}.yaml", data_file=path, n_problems=n)
        for spec, path, n, _ in configs
    ]
    for (spec, path, _, cfg), exported in zip(configs, result.tasks, strict=True):
        target = exported.path
        header = (
            f"# lm-eval task {spec.task!r} with rlvr-audit's prompt template {prompt!r}, reading {path}.\n"
            f"# Written by `rlvr-audit task export`; run: lm_eval ... {result.lm_eval_args}\n"
        )
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(header + yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), encoding="utf-8")
        tmp.replace(target)
    return result
