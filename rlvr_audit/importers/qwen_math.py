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

Not recorded, assumed: the new-token limit is the script's default ``--max_tokens_per_call
2048`` (pass ``--max-new-tokens`` if the run used another); top-p 1.0 (the script's default).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..core.records import SourceMetric
from .base import SourceFile, SourceItem, as_number, as_texts, decode, fraction, gold_text, parse_json, read_bytes
from .base import require as _require
from .base import wrong as _wrong

FORMAT = "qwen-math-jsonl"
EXPECTED = (
    "JSON lines (Qwen2.5-Math math_eval.py output), one per problem, with idx, question, gt, "
    "code (list of responses), pred and score (lists), plus a *_metrics.json beside it"
)
MAX_NEW_TOKENS = 2048
"""``math_eval.py``'s default ``--max_tokens_per_call``."""

NAME_PATTERN = re.compile(
    r"^(?P<split>[^_]+)_(?P<prompt_type>.+)_(?P<num>-?\d+)_seed(?P<seed>\d+)_t(?P<t>\d+(?:\.\d+)?)"
    r"_s(?P<start>-?\d+)_e(?P<end>-?\d+)$"
)
"""The file-name stem ``math_eval.py`` writes (``test_qwen25-math-cot_-1_seed0_t0.0_s0_e-1``)."""


def _metrics_file(path: Path, prompt_type: str | None) -> Path | None:
    """The ``*_metrics.json`` written beside ``path``, if there is exactly one candidate."""
    if prompt_type is not None:
        exact = path.with_name(f"{path.stem}_{prompt_type}_metrics.json")
        if exact.is_file():
            return exact
    found = sorted(path.parent.glob(f"{path.stem}_*metrics.json"))
    return found[0] if len(found) == 1 else None


def _read_acc(path: Path) -> tuple[float, bool] | None:
    """``acc`` of a metrics file as a fraction (and whether it was in percent), if present."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _wrong(path, FORMAT, f"its metrics file is not readable JSON ({exc})", EXPECTED) from None
    if not isinstance(obj, dict) or "acc" not in obj:
        return None
    acc = as_number(obj["acc"], "'acc'", path, FORMAT, EXPECTED)
    return fraction(acc, "'acc'", path, FORMAT)


def read(path: Path) -> SourceFile:
    """Read and validate one ``math_eval.py`` output file (and its metrics file, if beside it)."""
    data, sha = read_bytes(path, FORMAT)
    text = decode(data, path, FORMAT)

    def require(o: dict[str, Any], key: str, where: str) -> Any:
        return _require(o, key, where, path, FORMAT, EXPECTED)

    items: list[SourceItem] = []
    scores: list[list[bool]] = []
    n: int | None = None
    for lineno, line in enumerate(text.splitlines(), 1):
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
            scores.append(score)
        prompt = row.get("prompt") if isinstance(row.get("prompt"), str) else None
        texts = (question, prompt) if prompt else (question,)
        items.append(
            SourceItem(
                ref=f"{where} (idx {idx})",
                texts=texts,
                gold=gold_text(gt),
                completions=code,
                prompt=prompt or question,
            )
        )
    if not items or n is None:
        raise _wrong(path, FORMAT, "the file holds no JSON lines", EXPECTED)
    if scores and len(scores) != len(items):
        raise _wrong(path, FORMAT, f"only {len(scores)} of {len(items)} lines have a 'score' list", EXPECTED)

    m = NAME_PATTERN.match(path.stem)
    prompt_type = m["prompt_type"] if m else None
    metrics: list[SourceMetric] = []
    metrics_path = _metrics_file(path, prompt_type)
    acc = _read_acc(metrics_path) if metrics_path is not None else None
    if acc is not None and metrics_path is not None:
        origin = f"'acc' in {metrics_path.name}" + (" (given in percent)" if acc[1] else "")
        if n > 1:
            origin += "; math_eval.py computes it over the first sample of each problem"
        metrics.append(SourceMetric(name="acc", value=acc[0], metric="avg@1" if n == 1 else None, origin=origin))
    if scores:
        mean = sum(sum(s) / len(s) for s in scores) / len(scores)
        metrics.append(
            SourceMetric(name="mean score", value=mean, metric=f"avg@{n}", origin=f"mean of 'score' in {path.name}")
        )
        if n > 1:
            anyc = sum(any(s) for s in scores) / len(scores)
            metrics.append(
                SourceMetric(
                    name="any score",
                    value=anyc,
                    metric=f"pass@{n}",
                    origin=f"share of lines with a true 'score' in {path.name}",
                )
            )
    return SourceFile(
        path=path,
        format=FORMAT,
        sha256=sha,
        benchmark=path.parent.name or None,
        n=n,
        items=items,
        temperature=float(m["t"]) if m else None,
        seed=int(m["seed"]) if m else None,
        prompt_style=prompt_type,
        metrics=metrics,
    )
