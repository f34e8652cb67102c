"""``lm-eval-samples``: lm-evaluation-harness per-sample logs (``--log_samples``).

``samples_<task>_<date>.jsonl``, one JSON line per document and filter::

    {"doc_id": 0, "doc": {"problem": "...", "answer": "..."}, "target": "...",
     "arguments": {"gen_args_0": {"arg_0": "<prompt>", "arg_1": {"temperature": 0.6, ...}}},
     "resps": [["<completion 1>", ..., "<completion k>"]], "filtered_resps": ["..."],
     "filter": "last_boxed", "metrics": ["exact_match"], "exact_match": 1.0, ...}

What is read:

- The benchmark is the task name in the file name (``samples_math500_2025-...jsonl``); lm-eval's
  own names for the same benchmarks are understood (``hendrycks_math500``, ``minerva_math500``,
  ...); otherwise pass ``--task``.
- A document is matched to a task problem by its ``problem``/``question`` field, else by the
  prompt (``arguments``' first argument), which is stored as the generation's prompt.
  ``resps`` must hold one request (a ``generate_until`` task) with the k completions.
  ``target`` is the gold answer.
- Sampling settings come from the request's generation arguments: ``temperature`` (0 when
  ``do_sample`` is false or neither is given: lm-eval decodes greedily by default; 1 when only
  ``do_sample: true`` is given), ``top_p``,
  ``max_gen_toks`` (lm-eval's default 256 when absent).
- The source's numbers: each metric named in a line's ``metrics`` list, averaged over documents,
  per filter (labelled ``<metric>,<filter>`` as lm-eval labels them). lm-eval scores the
  *filtered* response, which for k > 1 is usually the first sample only, so it is shown beside
  avg@k only when k = 1.

A document logged once per filter appears on several lines with the same completions; they are
read as one item (differing completions for one ``doc_id`` are an error).

Beside the samples file, lm-eval writes ``results_<date>.json`` with the same ``<date>``. When it is
there, the unit records its ``lm_eval_version`` (:attr:`~rlvr_audit.core.records.ImportSource.tool_version`)
and a hash of its ``configs[<task>]`` (:attr:`~rlvr_audit.core.records.ImportSource.task_config_hash`:
the task file, prompt, filters and metrics lm-eval ran); a results file that is there but cannot
be read is an error, one that is absent leaves both unrecorded.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..core.records import MAX_NEW_TOKENS as MAX_TOKENS
from ..core.records import SourceMetric, stable_hash
from .base import SourceFile, SourceItem, SourceStream, as_texts, gold_text, parse_json
from .base import require as _require
from .base import wrong as _wrong

FORMAT = "lm-eval-samples"
EXPECTED = (
    "JSON lines (lm-eval --log_samples output, samples_<task>_<date>.jsonl) with doc_id, doc, target, "
    "arguments, resps and filtered_resps"
)
MAX_NEW_TOKENS = 256
"""lm-eval's default ``max_gen_toks`` when a task sets none."""

QUESTION_KEYS = ("problem", "question", "Problem", "Question")
"""``doc`` fields tried, in order, for the problem text."""

_DATE_SUFFIX = re.compile(r"_\d{4}-\d{2}-\d{2}T[0-9.\-]+$")


def task_name_from_file(path: Path) -> str | None:
    """The task name in ``samples_<task>_<date>.jsonl`` (``None`` if the name has another shape)."""
    stem = path.stem
    if not stem.startswith("samples_"):
        return None
    name = _DATE_SUFFIX.sub("", stem[len("samples_") :])
    return name or None


def _request(arguments: Any) -> tuple[Any, Any] | None:
    """(prompt, generation kwargs) of the first request, from either shape lm-eval writes."""
    if isinstance(arguments, dict) and arguments:
        first = arguments.get("gen_args_0", next(iter(arguments.values())))
        if isinstance(first, dict):
            return first.get("arg_0"), first.get("arg_1")
        return None
    if isinstance(arguments, list) and arguments and isinstance(arguments[0], list) and arguments[0]:
        req = arguments[0]
        return req[0], req[1] if len(req) > 1 else None
    return None


def read(source: SourceStream, file: SourceFile) -> Iterator[SourceItem]:
    """Stream one lm-eval samples file (a document logged once per filter is one item)."""
    path = source.path

    def require(o: dict[str, Any], key: str, where: str) -> Any:
        return _require(o, key, where, path, FORMAT, EXPECTED)

    seen: dict[str, tuple[str, str]] = {}
    """doc_id (as JSON) -> (hash of its completions, where it was first) of every document read."""
    metric_sums: dict[str, list[float]] = {}
    """metric label -> [sum, count] over documents."""
    settings: dict[str, Any] | None = None
    n: int | None = None
    file.benchmark = task_name_from_file(path)  # known from the file name before any line is read
    for lineno, line in source.lines():
        if not line.strip():
            continue
        where = f"line {lineno}"
        row = parse_json(line, path, FORMAT, where, EXPECTED)
        if not isinstance(row, dict):
            raise _wrong(path, FORMAT, f"{where} is a JSON {type(row).__name__}, not an object", EXPECTED)
        doc_id = require(row, "doc_id", where)
        doc = require(row, "doc", where)
        if not isinstance(doc, dict):
            raise _wrong(path, FORMAT, f"{where}: 'doc' must be an object", EXPECTED)
        target = require(row, "target", where)
        req = _request(require(row, "arguments", where))
        if req is None or not isinstance(req[0], str):
            raise _wrong(path, FORMAT, f"{where}: 'arguments' holds no request with a prompt string", EXPECTED)
        prompt, gen_kwargs = req
        resps = require(row, "resps", where)
        require(row, "filtered_resps", where)
        if not isinstance(resps, list) or len(resps) != 1:
            got = len(resps) if isinstance(resps, list) else type(resps).__name__
            raise _wrong(
                path,
                FORMAT,
                f"{where}: 'resps' must hold exactly one request (a generate_until task), got {got}",
                EXPECTED,
            )
        completions = as_texts(resps[0], f"{where}: 'resps[0]'", path, FORMAT, EXPECTED)
        if n is None:
            n = len(completions)
        elif len(completions) != n:
            raise _wrong(path, FORMAT, f"{where} has {len(completions)} responses, the first line has {n}", EXPECTED)
        kwargs = gen_kwargs if isinstance(gen_kwargs, dict) else {}
        if settings is None:
            settings = kwargs
            _check_settings(kwargs, path)
        elif kwargs != settings:
            raise _wrong(path, FORMAT, f"{where}: its generation arguments differ from line 1's", EXPECTED)
        filt = row.get("filter")
        names = row.get("metrics")
        for name in names if isinstance(names, list) else []:
            value = row.get(name)
            if isinstance(value, bool):
                value = float(value)
            if isinstance(value, int | float) and math.isfinite(value) and 0.0 <= value <= 1.0:
                label = f"{name},{filt}" if isinstance(filt, str) else str(name)
                acc = metric_sums.setdefault(label, [0.0, 0.0])
                acc[0] += float(value)
                acc[1] += 1
        key = json.dumps(doc_id, sort_keys=True)
        digest = hashlib.sha256(json.dumps(completions).encode("utf-8", "surrogatepass")).hexdigest()
        if key in seen:
            if seen[key][0] != digest:
                raise _wrong(path, FORMAT, f"{where}: doc_id {doc_id} appears again with other responses", EXPECTED)
            continue
        seen[key] = (digest, where)
        texts = (*(doc[k] for k in QUESTION_KEYS if isinstance(doc.get(k), str)), prompt)
        yield SourceItem(
            ref=f"{where} (doc_id {doc_id})",
            texts=texts,
            gold=gold_text(target),
            completions=completions,
            prompt=prompt,
        )
    if not seen or n is None:
        raise _wrong(path, FORMAT, "the file holds no JSON lines", EXPECTED)
    kw = settings or {}
    file.tool_version, file.task_config_hash = _results_provenance(path, file.benchmark)
    file.metrics = [
        SourceMetric(
            name=label,
            value=min(1.0, total / count),
            metric="avg@1" if n == 1 else None,
            origin=f"mean of per-document '{label.split(',')[0]}' in {path.name}"
            + ("" if n == 1 else "; lm-eval scores the filtered response, usually the first sample"),
        )
        for label, (total, count) in metric_sums.items()
        if count == len(seen)
    ]
    file.n = n
    file.temperature = _temperature(kw, path)
    file.top_p = _optional_number(kw, "top_p", path)
    file.max_new_tokens = _optional_int(kw, "max_gen_toks", path)
    if file.max_new_tokens is not None:
        file.max_new_tokens_origin = f"the generation argument 'max_gen_toks' in {path}"


def results_file(path: Path) -> Path | None:
    """The ``results_<date>.json`` lm-eval wrote with ``samples_<task>_<date>.jsonl`` (``None`` when
    the samples file's name has no date)."""
    m = _DATE_SUFFIX.search(path.stem)
    return path.with_name(f"results{m.group(0)}.json") if m else None


def _results_provenance(path: Path, task: str | None) -> tuple[str | None, str | None]:
    """(lm-eval version, hash of the task's config) from the results file beside ``path``."""
    results = results_file(path)
    if results is None or not results.is_file():
        return None, None
    expected = "lm-eval's results_<date>.json (a JSON object with lm_eval_version and configs)"
    try:
        text = results.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _wrong(results, "lm-eval results", f"cannot be read ({exc})", expected) from None
    data = parse_json(text, results, "lm-eval results", "the file", expected)
    if not isinstance(data, dict):
        raise _wrong(results, "lm-eval results", f"is a JSON {type(data).__name__}, not an object", expected)
    version = data.get("lm_eval_version")
    configs = data.get("configs")
    config = configs.get(task) if isinstance(configs, dict) and task is not None else None
    return (
        version if isinstance(version, str) and version else None,
        stable_hash(config) if isinstance(config, dict) else None,
    )


def _check_settings(kw: dict[str, Any], path: Path) -> None:
    """Refuse unusable sampling settings on the first line, before anything else is read."""
    _temperature(kw, path)
    _optional_number(kw, "top_p", path)
    _optional_int(kw, "max_gen_toks", path)


def _optional_number(kw: dict[str, Any], key: str, path: Path) -> float | None:
    """A generation argument that must be a finite number, if given."""
    value = kw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _wrong(path, FORMAT, f"generation argument {key!r} must be a finite number, got {value!r}", EXPECTED)
    return float(value)


def _optional_int(kw: dict[str, Any], key: str, path: Path) -> int | None:
    """A generation argument that must be a whole number of tokens, if given."""
    value = _optional_number(kw, key, path)
    if value is None:
        return None
    if value != int(value) or not 1 <= value <= MAX_TOKENS:
        raise _wrong(
            path,
            FORMAT,
            f"generation argument {key!r} must be a whole number in [1, {MAX_TOKENS}], got {kw[key]!r}",
            EXPECTED,
        )
    return int(value)


def _temperature(kw: dict[str, Any], path: Path) -> float:
    """The temperature lm-eval decoded with: 0 when ``do_sample`` is false or nothing is given
    (lm-eval's greedy default); 1 when ``do_sample`` is true without a temperature (the
    transformers default)."""
    if kw.get("do_sample") is False:
        return 0.0
    t = _optional_number(kw, "temperature", path)
    if t is None:
        return 1.0 if kw.get("do_sample") is True else 0.0
    return t
