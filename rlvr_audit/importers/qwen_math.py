"""``qwen-math-jsonl``: the output of Qwen2.5-Math's ``evaluation/math_eval.py``.

One JSON line per problem, written to ``<output_dir>/<data_name>/<split>_<prompt_type>_
<num_test_sample>_seed<seed>_t<temperature>_s<start>_e<end>.jsonl``::

    {"idx": 0, "question": "...", "gt": "204", "gt_cot": "...", "code": ["<completion>", ...],
     "pred": ["204", ...], "report": [...], "score": [true, ...]}

and beside it ``<same stem>_<prompt_type>_metrics.json`` with ``{"num_samples": ...,
"acc": 75.2, ...}``.

What is read:

- ``question`` is the problem text (matched exactly, after normalisation, to a task problem;
  a ``prompt`` field, if a variant of the script keeps one, is the fallback and is stored as the
  generation's prompt, else the question is). ``gt`` is the gold answer. ``code`` holds the k
  completions (every line must have the same k). ``score`` (optional) holds Qwen's own
  per-sample verdicts and must have one entry per completion.
- The benchmark is the name of the folder holding the file (``math500``, ``aime24``, ``amc23``,
  ...). The temperature, seed and prompt type come from the file name when it has the
  script's pattern; a renamed file needs ``--temperature``.
- The source's numbers: ``acc`` from the metrics file (a percentage; in ``math_eval.py`` it is
  the accuracy of the *first* sample of each problem, so it estimates avg@1, and it is shown
  beside avg@k only when k = 1), and from ``score``: the mean verdict (Qwen's avg@k) and, for
  k > 1, the share of problems with any correct sample (Qwen's pass@k).

- The new-token limit: ``max_tokens_per_call`` (or ``max_tokens`` / ``max_new_tokens``) in the
  metrics file or on the lines, where a variant of the script records it. ``math_eval.py`` itself
  records it nowhere, and runs differ (2048 is the script's default; long chain-of-thought
  evaluations use 32768), so a truncation rate computed from a guessed limit would be wrong:
  when the files do not say, ``--max-new-tokens`` must, and the import stops naming it.

Not recorded, assumed: top-p 1.0 (the script's default).

The metrics file is ``<stem>_<prompt_type>_metrics.json`` (as the script writes it), else the
only ``<stem>_*metrics.json`` or ``<stem>.metrics.json`` beside the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..core.errors import UsageError
from ..core.records import SourceMetric
from .base import SourceFile, SourceItem, SourceStream, as_number, as_texts, fraction, gold_text, parse_json
from .base import require as _require
from .base import wrong as _wrong

FORMAT = "qwen-math-jsonl"
EXPECTED = (
    "JSON lines (Qwen2.5-Math math_eval.py output), one per problem, with idx, question, gt, "
    "code (list of responses), pred and score (lists), plus a *_metrics.json beside it"
)
MAX_NEW_TOKENS: int | None = None
"""No default: ``math_eval.py``'s ``--max_tokens_per_call`` (default 2048) is not in its output."""

TOKEN_KEYS = ("max_tokens_per_call", "max_tokens", "max_new_tokens")
"""Fields that record the new-token limit, where a variant of the script writes one."""

NAME_PATTERN = re.compile(
    r"^(?P<split>[^_]+)_(?P<prompt_type>.+)_(?P<num>-?\d+)_seed(?P<seed>\d+)_t(?P<t>\d+(?:\.\d+)?)"
    r"_s(?P<start>-?\d+)_e(?P<end>-?\d+)$"
)
"""The file-name stem ``math_eval.py`` writes (``test_qwen25-math-cot_-1_seed0_t0.0_s0_e-1``)."""


def metrics_file(path: Path, prompt_type: str | None) -> Path | None:
    """The metrics file written beside ``path``, if there is exactly one candidate."""
    if prompt_type is not None:
        exact = path.with_name(f"{path.stem}_{prompt_type}_metrics.json")
        if exact.is_file():
            return exact
    found = sorted(path.parent.glob(f"{glob_escape(path.stem)}_*metrics.json"))
    if len(found) == 1:
        return found[0]
    dotted = path.with_name(f"{path.stem}.metrics.json")
    return dotted if not found and dotted.is_file() else None


def glob_escape(text: str) -> str:
    """``text`` with glob wildcards escaped."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def _read_metrics(path: Path) -> dict[str, Any]:
    """The metrics file as an object (a UTF-8 byte-order mark is accepted)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise _wrong(path, FORMAT, f"its metrics file is not readable ({exc})", EXPECTED) from None
    obj = parse_json(text, path, FORMAT, "the metrics file", EXPECTED)
    return obj if isinstance(obj, dict) else {}


def _token_limit(obj: dict[str, Any], where: str, path: Path) -> int | None:
    """The new-token limit ``obj`` records under one of :data:`TOKEN_KEYS`, if any."""
    for key in TOKEN_KEYS:
        if key in obj:
            value = obj[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise _wrong(path, FORMAT, f"{where}: {key!r} must be a positive integer, got {value!r}", EXPECTED)
            return value
    return None


def read(source: SourceStream, file: SourceFile) -> Iterator[SourceItem]:
    """Stream one ``math_eval.py`` output file (and read its metrics file, if beside it)."""
    path = source.path

    def require(o: dict[str, Any], key: str, where: str) -> Any:
        return _require(o, key, where, path, FORMAT, EXPECTED)

    file.benchmark = path.parent.name or None  # known from the path before any line is read
    file.benchmark_hints = tuple(part for part in path.stem.split(".")[1:] if part)[::-1]
    n: int | None = None
    n_lines = 0
    n_scored = 0
    score_sum = 0.0
    any_sum = 0
    limit: tuple[int, str] | None = None
    per_item: dict[str, dict[int, float]] = {}
    for lineno, line in source.lines():
        if not line.strip():
            continue
        where = f"line {lineno}"
        row = parse_json(line, path, FORMAT, where, EXPECTED)
        if not isinstance(row, dict):
            raise _wrong(path, FORMAT, f"{where} is a JSON {type(row).__name__}, not an object", EXPECTED)
        idx = require(row, "idx", where)
        question = require(row, "question", where)
        if not isinstance(question, str):
            raise _wrong(path, FORMAT, f"{where}: 'question' must be a string", EXPECTED)
        gt = require(row, "gt", where)
        code = as_texts(require(row, "code", where), f"{where}: 'code'", path, FORMAT, EXPECTED)
        if n is None:
            n = len(code)
        elif len(code) != n:
            raise _wrong(path, FORMAT, f"{where} has {len(code)} responses in 'code', line 1 has {n}", EXPECTED)
        if "score" in row:
            score = row["score"]
            if not isinstance(score, list) or len(score) != len(code) or not all(isinstance(s, bool) for s in score):
                raise _wrong(
                    path,
                    FORMAT,
                    f"{where}: 'score' must be a list of {len(code)} booleans (one per response)",
                    EXPECTED,
                )
            n_scored += 1
            score_sum += sum(score) / len(score)
            any_sum += any(score)
            for name, value in (("mean score", sum(score) / len(score)), ("any score", any(score)), ("acc", score[0])):
                per_item.setdefault(name, {})[n_lines] = float(value)  # n_lines: this item's position
        tokens = _token_limit(row, where, path)
        if tokens is not None:
            if limit is not None and tokens != limit[0]:
                raise _wrong(
                    path, FORMAT, f"{where} records a new-token limit of {tokens}, {limit[1]} {limit[0]}", EXPECTED
                )
            limit = limit or (tokens, f"{where}")
        n_lines += 1
        prompt = row.get("prompt") if isinstance(row.get("prompt"), str) else None
        texts = (question, prompt) if prompt else (question,)
        yield SourceItem(
            ref=f"{where} (idx {idx})", texts=texts, gold=gold_text(gt), completions=code, prompt=prompt or question
        )
    if not n_lines or n is None:
        raise _wrong(path, FORMAT, "the file holds no JSON lines", EXPECTED)
    if n_scored and n_scored != n_lines:
        raise _wrong(path, FORMAT, f"only {n_scored} of {n_lines} lines have a 'score' list", EXPECTED)

    m = NAME_PATTERN.match(path.stem)
    prompt_type = m["prompt_type"] if m else None
    metrics: list[SourceMetric] = []
    metrics_path = metrics_file(path, prompt_type)
    stats = _read_metrics(metrics_path) if metrics_path is not None else {}
    if metrics_path is not None and "acc" in stats:
        acc = fraction(as_number(stats["acc"], "'acc'", metrics_path, FORMAT, EXPECTED), "'acc'", metrics_path, FORMAT)
        origin = f"'acc' in {metrics_path.name}" + (" (given in percent)" if acc[1] else "")
        if n > 1:
            origin += "; math_eval.py computes it over the first sample of each problem"
        metrics.append(SourceMetric(name="acc", value=acc[0], metric="avg@1" if n == 1 else None, origin=origin))
    if n_scored:
        metrics.append(
            SourceMetric(
                name="mean score",
                value=min(1.0, score_sum / n_scored),
                metric=f"avg@{n}",
                origin=f"mean of 'score' in {path.name}",
            )
        )
        if n > 1:
            metrics.append(
                SourceMetric(
                    name="any score",
                    value=any_sum / n_scored,
                    metric=f"pass@{n}",
                    origin=f"share of lines with a true 'score' in {path.name}",
                )
            )
    if metrics_path is not None:
        recorded = _token_limit(stats, "the metrics file", metrics_path)
        if recorded is not None:
            if limit is not None and recorded != limit[0]:
                raise UsageError(
                    f"{path}: {limit[1]} records a new-token limit of {limit[0]}, its metrics file {metrics_path} "
                    f"{recorded}"
                )
            limit = (recorded, f"the metrics file {metrics_path}")
    file.n = n
    file.temperature = float(m["t"]) if m else None
    file.seed = int(m["seed"]) if m else None
    file.prompt_style = prompt_type
    file.metrics = metrics
    # per item: 'mean score' (avg@k), 'any score' (pass@k), and 'acc' (the first sample's score, as math_eval.py's acc)
    file.item_scores = {m.name: per_item[m.name] for m in metrics if m.name in per_item}
    if limit is not None:
        file.max_new_tokens, file.max_new_tokens_origin = limit
