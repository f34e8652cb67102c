"""Training and validation data: read, apply the label transform, write verl's parquet.

verl's ``RLHFDataset`` reads parquet rows with ``data_source``, ``prompt`` (chat messages, to
which it applies the tokenizer's chat template), ``ability``, ``reward_model`` (``style``,
``ground_truth``: the label the reward checks) and ``extra_info`` (handed to the reward:
here ``index``, ``problem_id`` and ``question``, the prompt identity of the random reward).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.errors import ConfigError, UsageError
from ..core.prompts import PromptTemplate
from ..grading.paper import PaperGrader
from .spec import DataSpec, EvalSpec, ExperimentSpec, resolve_path

Row = dict[str, Any]


def read_rows(spec_file: Path, source: DataSpec | EvalSpec, key: str) -> list[Row]:
    """The raw rows of a data section (a local file or a Hub dataset), in file order."""
    hub = getattr(source, "hub", None)
    if source.path is None:
        assert hub is not None
        return _read_hub(hub.dataset, hub.split, hub.config, hub.revision, key=f"{key}.hub")
    path = resolve_path(spec_file, source.path)
    if not path.is_file():
        raise ConfigError(spec_file, f"file {path} does not exist", key=f"{key}.path")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows = []
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ConfigError(path, f"line {n} is not valid JSON ({exc.msg})") from exc
        return rows
    if suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigError(path, f"not valid JSON ({exc.msg} at line {exc.lineno})") from exc
        if not isinstance(data, list):
            raise ConfigError(path, "expected a JSON list of objects")
        return data
    if suffix == ".parquet":
        return list(pd.read_parquet(path).to_dict(orient="records"))
    raise ConfigError(
        spec_file, f"unsupported data file {path.name!r}; use .jsonl, .json or .parquet", key=f"{key}.path"
    )


def _read_hub(dataset: str, split: str, config: str | None, revision: str | None, *, key: str) -> list[Row]:
    try:
        import datasets  # heavy (seconds): only for a Hub dataset
    except ImportError as exc:  # pragma: no cover - datasets comes with lm-eval
        raise UsageError("reading a Hub dataset needs the 'datasets' package") from exc
    try:
        ds = datasets.load_dataset(dataset, config, split=split, revision=revision)
    except Exception as exc:
        raise UsageError(f"{key}: could not load Hub dataset {dataset!r} (split {split!r}): {exc}") from exc
    return [dict(r) for r in ds]


def _field(row: Row, name: str, n: int, spec_file: Path, key: str) -> str:
    if name not in row:
        fields = ", ".join(sorted(map(str, row))) or "(none)"
        raise ConfigError(spec_file, f"row {n} has no field {name!r}; its fields: {fields}", key=key)
    value = row[name]
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ConfigError(spec_file, f"row {n} has an empty {name!r}", key=key)
    return str(value)


def training_problems(
    spec: ExperimentSpec, spec_file: Path, *, grader: Callable[[str, str], bool] | None = None
) -> tuple[list[Row], list[str]]:
    """``(problems, notes)``: the training problems after the label transform, each
    ``{problem_id, question, label}``, and what the transform did (for the plan's summary).

    ``grader(label, gold)`` decides whether a label equals the gold answer (``labels:
    incorrect`` with ``gold_field``); default: the ``paper`` grader.
    """
    data = spec.data
    raw = read_rows(spec_file, data, "data")
    notes: list[str] = [f"read {len(raw)} rows"]
    problems: list[Row] = []
    seen: set[str] = set()
    unlabelled = 0
    for n, row in enumerate(raw, 1):
        if not isinstance(row, dict):
            raise ConfigError(spec_file, f"row {n} is not an object", key="data")
        pid = _field(row, data.id_field, n, spec_file, "data.id_field") if data.id_field else str(n - 1)
        if pid in seen:
            raise ConfigError(spec_file, f"row {n}: id {pid!r} occurs twice", key="data.id_field")
        seen.add(pid)
        question = _field(row, data.problem_field, n, spec_file, "data.problem_field")
        if data.answer_field not in row:
            _field(row, data.answer_field, n, spec_file, "data.answer_field")  # raises: names the fields
        label = row[data.answer_field]
        if label is None or not str(label).strip():
            unlabelled += 1  # e.g. a majority vote that extracted nothing: no answer can match it
            continue
        problem: Row = {"problem_id": pid, "question": question, "label": str(label)}
        if data.gold_field is not None:
            problem["gold"] = _field(row, data.gold_field, n, spec_file, "data.gold_field")
        problems.append(problem)
    if unlabelled:
        notes.append(f"dropped {unlabelled} rows with an empty label")
    if data.labels == "incorrect" and data.gold_field is not None:
        same = grader or _paper_equal
        before = len(problems)
        problems = [p for p in problems if not same(p["label"], p.pop("gold"))]
        notes.append(f"dropped {before - len(problems)} rows whose label is correct (kept the wrong labels)")
    if data.one_shot is not None:
        chosen = [p for p in problems if p["problem_id"] == data.one_shot.id]
        if not chosen:
            raise ConfigError(spec_file, f"no row has id {data.one_shot.id!r}", key="data.one_shot.id")
        copies = data.one_shot.copies or spec.steps * spec.hyperparameters.prompts_per_step
        problems = [dict(chosen[0], problem_id=f"{chosen[0]['problem_id']}#{i}") for i in range(copies)]
        notes.append(f"one-shot: example {data.one_shot.id!r} repeated {copies} times")
    if data.limit is not None and len(problems) > data.limit:
        problems = problems[: data.limit]
        notes.append(f"limited to the first {data.limit} rows")
    if not problems:
        raise ConfigError(spec_file, "no training rows left", key="data")
    return problems, notes


def eval_problems(spec: ExperimentSpec, spec_file: Path) -> list[Row]:
    """The validation problems (``eval`` section), each ``{problem_id, question, label}``."""
    ev = spec.eval
    assert ev is not None
    out: list[Row] = []
    for n, row in enumerate(read_rows(spec_file, ev, "eval"), 1):
        out.append(
            {
                "problem_id": _field(row, ev.id_field, n, spec_file, "eval.id_field") if ev.id_field else str(n - 1),
                "question": _field(row, ev.problem_field, n, spec_file, "eval.problem_field"),
                "label": _field(row, ev.answer_field, n, spec_file, "eval.answer_field"),
            }
        )
        if ev.limit is not None and len(out) >= ev.limit:
            break
    if not out:
        raise ConfigError(spec_file, "the evaluation data has no rows", key="eval.path")
    return out


def _paper_equal(label: str, gold: str) -> bool:
    outcome = PaperGrader().judge(extracted=label, gold=gold)
    return outcome.verdict == "correct"


def messages(template: PromptTemplate, question: str) -> list[dict[str, str]]:
    """The chat messages of one problem under a chat template (system turn only if it has one)."""
    assert template.user is not None
    out = []
    if template.system is not None:
        out.append({"role": "system", "content": template.system})
    out.append({"role": "user", "content": template.user.replace("{question}", question)})
    return out


def verl_rows(problems: list[Row], template: PromptTemplate, *, data_source: str, split: str) -> list[Row]:
    """verl-format rows for ``problems``."""
    return [
        {
            "data_source": data_source,
            "prompt": messages(template, p["question"]),
            "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": p["label"]},
            "extra_info": {"split": split, "index": i, "problem_id": p["problem_id"], "question": p["question"]},
        }
        for i, p in enumerate(problems)
    ]


def write_parquet(rows: list[Row], path: Path) -> None:
    """Write verl rows as parquet (pyarrow, via pandas)."""
    pd.DataFrame(rows).to_parquet(path, index=False)
