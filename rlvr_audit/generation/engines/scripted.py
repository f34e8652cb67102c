"""The scripted engine: known answers without a model, for tests, demos and dry runs.

Model arguments (``--model-args``):

- ``script=PATH``: a JSON file ``{"<checkpoint id or *>": {"<problem id>": response or
  [response per sample]}}``; a problem missing from the script gets ``default``.
- ``accuracy=P``: a seeded oracle: sample ``i`` of a problem is answered with the gold answer
  in ``\\boxed{}`` with probability ``P`` and a wrong boxed number otherwise, decided by a hash
  of (checkpoint, problem, sample, the protocol's seed of sample round ``i``), so runs are
  reproducible and checkpoints differ.
- ``default=TEXT``: the response when neither applies (default: no answer at all).
- ``delay=SECONDS``: sleep per request (to test interruption); not part of the unit key.

The token count is the number of whitespace-separated words; a response longer than the
protocol's ``max_new_tokens`` words is cut after that many (finish reason ``length``), as an
engine cuts at its token limit, so truncation can be tested without a model.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...core.errors import UsageError
from ...core.records import EffectiveSampling, FinishReason, SamplingProtocol, stable_hash
from .base import GenOutput, GenRequest, OutputBatch, ProgressFn

WRONG = "999999"
"""The wrong answer the oracle gives (``888888`` when the gold answer is ``999999``)."""


def oracle_is_correct(checkpoint_id: str, problem_id: str, sample_idx: int, seed: int, accuracy: float) -> bool:
    """The oracle's deterministic coin: ``True`` with probability ``accuracy``."""
    h = int(stable_hash([checkpoint_id, problem_id, sample_idx, seed], 12), 16)
    return h / float(1 << 48) < accuracy


def check_model_args(model_args: dict[str, str]) -> tuple[float | None, float]:
    """Validate the scripted backend's model arguments (before anything is written); returns
    ``(accuracy or None, delay in seconds)``. Raises :class:`UsageError` naming the argument."""
    unknown = set(model_args) - {"script", "accuracy", "default", "delay"}
    if unknown:
        raise UsageError(
            f"scripted backend: unknown model args {sorted(unknown)}; valid: script, accuracy, default, delay"
        )
    accuracy: float | None = None
    if "accuracy" in model_args:
        try:
            accuracy = float(model_args["accuracy"])
        except ValueError:
            accuracy = -1.0
        if not 0.0 <= accuracy <= 1.0:
            raise UsageError(f"scripted backend: accuracy must be a number in [0, 1], got {model_args['accuracy']!r}")
    try:
        delay = float(model_args.get("delay", 0) or 0)
    except ValueError:
        delay = -1.0
    if not 0.0 <= delay < float("inf"):
        raise UsageError(f"scripted backend: delay must be a number of seconds >= 0, got {model_args.get('delay')!r}")
    return accuracy, delay


def cut_at_limit(text: str, limit: int) -> tuple[str, int, FinishReason]:
    """``(text, n_tokens, finish_reason)``: ``text`` up to the end of its ``limit``-th
    whitespace-separated word and ``"length"`` when it has more words, else unchanged and ``"stop"``."""
    words = list(re.finditer(r"\S+", text))
    if len(words) <= limit:
        return text, len(words), "stop"
    return text[: words[limit - 1].end()] if limit > 0 else "", limit, "length"


class ChatMLStandIn:
    """Renders chat messages in ChatML (Qwen's format) for scripted runs of Hub checkpoints."""

    chat_template = "chatml"

    def apply_chat_template(self, conversation: list[dict[str, str]], **kwargs: Any) -> str:
        """``<|im_start|>role\ncontent<|im_end|>\n`` per message, then the assistant header."""
        text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in conversation)
        return text + ("<|im_start|>assistant\n" if kwargs.get("add_generation_prompt") else "")


class ScriptedEngine:
    """Answers from a script or a seeded oracle (see module docstring)."""

    backend = "scripted"

    def __init__(self, *, model: str, checkpoint_id: str, model_args: dict[str, str], chunk_size: int = 64) -> None:
        self.accuracy, self.delay = check_model_args(model_args)
        self.chunk_size = chunk_size
        """Completions handed back at a time (``--save-every``)."""
        self.model = model
        self.checkpoint_id = checkpoint_id
        self.default = model_args.get("default", "I could not solve this problem.")
        self.script: dict[str, Any] = {}
        if "script" in model_args:
            path = Path(model_args["script"])
            try:
                self.script = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise UsageError(f"scripted backend: cannot read script {path}: {exc}") from exc
            if not isinstance(self.script, dict):
                raise UsageError(f"scripted backend: {path} must hold a JSON object keyed by checkpoint id")
        self._tokenizer: Any | None = None
        self._tokenizer_loaded = False

    @property
    def tokenizer(self) -> Any:
        """The checkpoint's tokenizer when it is a local model directory, else a ChatML
        stand-in (no model is loaded, so nothing better is known)."""
        if not self._tokenizer_loaded:
            self._tokenizer_loaded = True
            path = Path(self.model)
            if path.is_dir() and (path / "tokenizer_config.json").is_file():
                from transformers import AutoTokenizer  # heavy (seconds): only when a model or tokenizer is loaded

                self._tokenizer = AutoTokenizer.from_pretrained(str(path))
            else:
                self._tokenizer = ChatMLStandIn()
        return self._tokenizer

    def _respond(self, req: GenRequest, seed: int) -> str:
        pid = req.problem.problem_id
        for key in (self.checkpoint_id, "*"):
            table = self.script.get(key)
            if isinstance(table, dict) and pid in table:
                entry = table[pid]
                if isinstance(entry, list):
                    return str(entry[req.sample_idx % len(entry)])
                return str(entry)
        if self.accuracy is not None:
            if oracle_is_correct(self.checkpoint_id, pid, req.sample_idx, seed, self.accuracy):
                answer = req.problem.answer
            else:
                answer = "888888" if req.problem.answer.strip() == WRONG else WRONG
            return f"Working through the problem step by step.\nThe final answer is $\\boxed{{{answer}}}$."
        return self.default

    def sampling(self, protocol: SamplingProtocol, stop: list[str]) -> EffectiveSampling:
        """The protocol's parameters (the script ignores them)."""
        return EffectiveSampling(
            temperature=protocol.temperature,
            top_p=protocol.top_p,
            max_new_tokens=protocol.max_new_tokens,
            stop=list(stop),
            engine="scripted",
        )

    def generate(
        self,
        requests: list[GenRequest],
        *,
        protocol: SamplingProtocol,
        stop: list[str],
        keep_stop: bool = False,
        progress: ProgressFn | None = None,
    ) -> Iterator[OutputBatch]:
        """Answer each request from the script or the oracle, :attr:`chunk_size` at a time."""
        batch: OutputBatch = []
        for i, req in enumerate(requests):
            if self.delay:
                time.sleep(self.delay)
            text = self._respond(req, protocol.sample_seed(req.sample_idx))
            text, n_tokens, reason = cut_at_limit(text, protocol.max_new_tokens)
            batch.append((i, GenOutput(text=text, n_tokens=n_tokens, finish_reason=reason)))
            if progress is not None:
                progress(i + 1)
            if len(batch) >= self.chunk_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def close(self) -> None:
        """Nothing to release."""
