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

from collections.abc import Iterator
from typing import Any

from ..core.records import SourceMetric
from .base import SourceFile, SourceItem, SourceStream, as_number, as_text, as_texts, fraction, gold_text
from .base import require as _require
from .base import wrong as _wrong

FORMAT = "spurious-rewards-json"
EXPECTED = (
    "one JSON object (eval_checkpoint.py output) with dataset, model, temperature, rollouts, avg@k, "
    "pass@k and metadata: [{prompt, label, index, outputs: [k strings]}]"
)
MAX_NEW_TOKENS = 3072
"""``eval_checkpoint.py`` generates with ``SamplingParams(max_tokens=3072)``."""

TOP = "the top-level object"


def read(source: SourceStream, file: SourceFile) -> Iterator[SourceItem]:
    """Stream one ``eval_checkpoint.py`` output file: the items of ``metadata`` one at a time (the
    other members may come before or after it); the header is checked once the object ends."""
    path = source.path

    def require(o: dict[str, Any], key: str, where: str) -> Any:
        return _require(o, key, where, path, FORMAT, EXPECTED)

    top: dict[str, Any] = {}
    n_items = 0
    k: int | None = None
    for key, value, streamed in source.json_object("metadata", EXPECTED):
        if not streamed:
            top[key] = value
            if key == "dataset" and isinstance(value, str):
                file.benchmark = value  # known before the items in the paper's files: matching can start
            continue
        where = f"metadata[{n_items}]"
        if not isinstance(value, dict):
            raise _wrong(path, FORMAT, f"{where} is a JSON {type(value).__name__}, not an object", EXPECTED)
        index = value.get("index")
        ref = f"{where}" + (f" (index {index})" if index is not None else "")
        prompt = as_text(require(value, "prompt", where), f"{where}.prompt", path, FORMAT, EXPECTED)
        label = require(value, "label", where)
        outputs = as_texts(require(value, "outputs", where), f"{where}.outputs", path, FORMAT, EXPECTED)
        rollouts = top.get("rollouts")
        expected_k = rollouts if isinstance(rollouts, int) and not isinstance(rollouts, bool) else k
        if expected_k is not None and len(outputs) != expected_k:
            said = f"'rollouts' is {expected_k}" if expected_k == rollouts else f"metadata[0] has {expected_k}"
            raise _wrong(path, FORMAT, f"{where}.outputs has {len(outputs)} responses but {said}", EXPECTED)
        k = len(outputs)
        n_items += 1
        yield SourceItem(ref=ref, texts=(prompt,), gold=gold_text(label), completions=outputs, prompt=prompt)
    _header(top, file, n_items, k)


def _header(top: dict[str, Any], file: SourceFile, n_items: int, k: int | None) -> None:
    """Check the top-level members and fill the header."""
    path = file.path

    def require(key: str) -> Any:
        return _require(top, key, TOP, path, FORMAT, EXPECTED)

    dataset = as_text(require("dataset"), "'dataset'", path, FORMAT, EXPECTED)
    rollouts = require("rollouts")
    if isinstance(rollouts, bool) or not isinstance(rollouts, int) or rollouts < 1:
        raise _wrong(path, FORMAT, f"'rollouts' must be a positive integer, got {rollouts!r}", EXPECTED)
    temperature = as_number(require("temperature"), "'temperature'", path, FORMAT, EXPECTED)
    if temperature < 0:
        raise _wrong(path, FORMAT, f"'temperature' must be >= 0, got {temperature!r}", EXPECTED)
    if "metadata" not in top and n_items == 0:
        require("metadata")
    if n_items == 0:
        raise _wrong(path, FORMAT, "'metadata' must be a non-empty list of items", EXPECTED)
    if k != rollouts:
        raise _wrong(path, FORMAT, f"metadata[0].outputs has {k} responses but 'rollouts' is {rollouts}", EXPECTED)
    metrics: list[SourceMetric] = []
    for name, ours in ((f"avg@{rollouts}", f"avg@{rollouts}"), (f"pass@{rollouts}", f"pass@{rollouts}")):
        if name not in top:
            continue
        value, percent = fraction(as_number(top[name], f"'{name}'", path, FORMAT, EXPECTED), f"'{name}'", path, FORMAT)
        if rollouts == 1:
            ours = "avg@1"  # pass@1 of one sample is avg@1
        origin = f"'{name}' field of {path.name}" + (" (given in percent)" if percent else "")
        metrics.append(SourceMetric(name=name, value=value, metric=ours, origin=origin))
    model = top.get("model")
    file.benchmark = dataset
    file.n = rollouts
    file.model = str(model) if model is not None else None
    file.temperature = temperature
    file.metrics = metrics
