"""``spurious-rewards-json``: the output of the Spurious Rewards paper's ``eval_checkpoint.py``.

One JSON object per model x benchmark (``<model>_<dataset>.json``)::

    {"avg@8": 0.31, "pass@8": 0.63, "dataset": "AIME-2024", "model": "<path or hub id>",
     "temperature": 0.6, "rollouts": 8, "gpu_type": "...", "shards": 4,
     "metadata": [{"prompt": "<chat-formatted prompt>", "label": "204", "index": 0,
                   "outputs": ["<completion 1>", ..., "<completion 8>"]}, ...]}

What is read:

- ``dataset`` names the benchmark (``MATH-500``, ``AIME-2024``, ``AIME-2025``, ``AMC``);
  ``rollouts`` is k and every item must have exactly k ``outputs``; ``temperature`` is the
  sampling temperature; ``model`` is recorded as the source's model.
- Each item's ``prompt`` is the full rendered prompt (chat template included) with the problem
  inside; it is matched to a task problem by the problem text it contains and stored as the
  generation's prompt. ``label`` is the gold answer the paper graded against.
- ``avg@k`` and ``pass@k`` are the paper's own numbers (its ``auto_verify`` grader): means of
  0/1 verdicts, i.e. fractions; a value above 1 is taken as a percentage.

Not recorded, assumed: the new-token limit is the script's hard-coded ``max_tokens=3072``;
top-p is vLLM's default 1.0; no seed (the store records 0).
"""

from __future__ import annotations

from pathlib import Path

from ..core.records import SourceMetric
from .base import (
    SourceFile,
    SourceItem,
    as_number,
    as_text,
    as_texts,
    decode,
    fraction,
    gold_text,
    parse_json,
    read_bytes,
)
from .base import require as _require
from .base import wrong as _wrong

FORMAT = "spurious-rewards-json"
EXPECTED = (
    "one JSON object (eval_checkpoint.py output) with dataset, model, temperature, rollouts, avg@k, "
    "pass@k and metadata: [{prompt, label, index, outputs: [k strings]}]"
)
MAX_NEW_TOKENS = 3072
"""``eval_checkpoint.py`` generates with ``SamplingParams(max_tokens=3072)``."""


def read(path: Path) -> SourceFile:
    """Read and validate one ``eval_checkpoint.py`` output file."""
    data, sha = read_bytes(path, FORMAT)
    text = decode(data, path, FORMAT)
    obj = parse_json(text, path, FORMAT, "the file", EXPECTED)
    if not isinstance(obj, dict):
        raise _wrong(path, FORMAT, f"the top level is a JSON {type(obj).__name__}, not an object", EXPECTED)

    def require(o: dict[str, object], key: str, where: str) -> object:
        return _require(o, key, where, path, FORMAT, EXPECTED)

    dataset = as_text(require(obj, "dataset", "the top-level object"), "'dataset'", path, FORMAT, EXPECTED)
    rollouts = require(obj, "rollouts", "the top-level object")
    if isinstance(rollouts, bool) or not isinstance(rollouts, int) or rollouts < 1:
        raise _wrong(path, FORMAT, f"'rollouts' must be a positive integer, got {rollouts!r}", EXPECTED)
    temperature = as_number(
        require(obj, "temperature", "the top-level object"), "'temperature'", path, FORMAT, EXPECTED
    )
    if temperature < 0:
        raise _wrong(path, FORMAT, f"'temperature' must be >= 0, got {temperature!r}", EXPECTED)
    model = obj.get("model")
    metadata = require(obj, "metadata", "the top-level object")
    if not isinstance(metadata, list) or not metadata:
        raise _wrong(path, FORMAT, "'metadata' must be a non-empty list of items", EXPECTED)
    items: list[SourceItem] = []
    for i, entry in enumerate(metadata):
        where = f"metadata[{i}]"
        if not isinstance(entry, dict):
            raise _wrong(path, FORMAT, f"{where} is a JSON {type(entry).__name__}, not an object", EXPECTED)
        index = entry.get("index")
        ref = f"{where}" + (f" (index {index})" if index is not None else "")
        prompt = as_text(require(entry, "prompt", where), f"{where}.prompt", path, FORMAT, EXPECTED)
        label = require(entry, "label", where)
        outputs = as_texts(require(entry, "outputs", where), f"{where}.outputs", path, FORMAT, EXPECTED)
        if len(outputs) != rollouts:
            raise _wrong(
                path, FORMAT, f"{where}.outputs has {len(outputs)} responses but 'rollouts' is {rollouts}", EXPECTED
            )
        items.append(SourceItem(ref=ref, texts=(prompt,), gold=gold_text(label), completions=outputs, prompt=prompt))
    metrics: list[SourceMetric] = []
    for name, ours in ((f"avg@{rollouts}", f"avg@{rollouts}"), (f"pass@{rollouts}", f"pass@{rollouts}")):
        if name not in obj:
            continue
        value, percent = fraction(as_number(obj[name], f"'{name}'", path, FORMAT, EXPECTED), f"'{name}'", path, FORMAT)
        if rollouts == 1:
            ours = "avg@1"  # pass@1 of one sample is avg@1
        origin = f"'{name}' field of {path.name}" + (" (given in percent)" if percent else "")
        metrics.append(SourceMetric(name=name, value=value, metric=ours, origin=origin))
    return SourceFile(
        path=path,
        format=FORMAT,
        sha256=sha,
        benchmark=dataset,
        n=rollouts,
        items=items,
        model=str(model) if model is not None else None,
        temperature=temperature,
        metrics=metrics,
    )
