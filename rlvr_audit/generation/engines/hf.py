"""The ``hf`` engine: a model loaded through lm-eval's ``hf`` model layer, decoded with
transformers' ``generate``, one random stream per sample and stop strings per row.

lm-eval's ``HFLM`` loads the model and tokenizer (dtype, device, revision, PEFT, ... from
``--model-args``, exactly as ``lm_eval --model hf`` does) and encodes the prompts
(``tok_batch_encode``: left padding, lm-eval's truncation and special-token rules). Decoding is
transformers' ``generate`` with two things lm-eval's ``generate_until`` cannot give:

- **A random stream per sample.** Batched sampling in transformers draws every row from one
  global generator, so a sample's text depends on which other prompts share its batch and on
  where a resumed run restarts. Here generation runs greedily over logits that a logits
  processor (:class:`RowSampler`) has reduced to one token per row: the processor applies
  transformers' own temperature, top-k, top-p and min-p warpers, then draws each row's token from
  that row's ``torch.Generator``, seeded with the sample's seed. A sample's text is then the same
  for any batch size and after any interruption (``tests/test_generation_hf.py``;
  ``benchmarks/generation.py`` measures what it costs against transformers' batched sampling and
  against batch-size-1 sampling).
- **Stops per row.** Stop strings go to transformers' per-row ``StopStringCriteria``
  (``stop_strings``), so a row that wrote ``</answer>`` ends there with finish reason ``stop``
  (lm-eval's criterion stops a batch only when every row has stopped, and reports no reason).

The model's ``generation_config.json`` sampling defaults are not applied: the engine keeps only
its special tokens (end-of-sequence, padding) and sets every sampling parameter itself, from the
protocol, or with ``--use-model-generation-config`` takes ``top_k``, ``min_p`` and
``repetition_penalty`` from the model's config (:meth:`HFEngine.sampling` says which).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

from ...core.errors import UsageError
from ...core.records import EffectiveSampling, FinishReason, SamplingProtocol
from .base import GenOutput, GenRequest, OutputBatch, ProgressFn
from .lmeval import _version, load_lm

SPECIAL_TOKEN_FIELDS = ("eos_token_id", "pad_token_id", "bos_token_id", "decoder_start_token_id")
"""Fields of a model's generation config kept by the engine (everything else is set per call)."""


class RowSampler:
    """A transformers logits processor that samples each row with its own generator.

    ``__call__`` returns scores that are ``-inf`` everywhere but at the drawn token, so greedy
    decoding takes that token. The warpers are transformers' own, in transformers' order
    (temperature, top-k, top-p, min-p); draws are made on the CPU from ``torch.Generator`` objects
    seeded per row, so they do not depend on the device or on the other rows."""

    def __init__(self, seeds: list[int], sampling: EffectiveSampling) -> None:
        import torch  # heavy (seconds): only when a model runs
        from transformers import (  # heavy (seconds): only when a model runs
            MinPLogitsWarper,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        self.generators = [torch.Generator(device="cpu").manual_seed(s) for s in seeds]
        self.warpers: list[Any] = [TemperatureLogitsWarper(sampling.temperature)]
        if sampling.top_k:
            self.warpers.append(TopKLogitsWarper(top_k=sampling.top_k))
        if sampling.top_p < 1.0:
            self.warpers.append(TopPLogitsWarper(top_p=sampling.top_p))
        if sampling.min_p > 0.0:
            self.warpers.append(MinPLogitsWarper(min_p=sampling.min_p))

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch  # heavy (seconds): only when a model runs

        for warper in self.warpers:
            scores = warper(input_ids, scores)
        probs = torch.softmax(scores.float(), dim=-1).cpu()
        picked = torch.cat([torch.multinomial(probs[i], 1, generator=g) for i, g in enumerate(self.generators)])
        out = torch.full_like(scores, float("-inf"))
        out[torch.arange(out.shape[0], device=out.device), picked.to(out.device)] = 0.0
        return out


class _StepProgress:
    """A logits processor that reports progress each decoding step: a row counts as done once it
    produced an end token, else as (steps so far / token limit)."""

    def __init__(self, rows: int, limit: int, ends: set[int], report: ProgressFn) -> None:
        import torch  # heavy (seconds): only when a model runs

        self.done = torch.zeros(rows, dtype=torch.bool)
        self.ends = torch.tensor(sorted(ends)) if ends else None
        self.limit = limit
        self.step = 0
        self.report = report

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch  # heavy (seconds): only when a model runs

        if self.step and self.ends is not None:
            self.done |= torch.isin(input_ids[:, -1].cpu(), self.ends)
        self.step += 1
        running = float((~self.done).sum()) * min(1.0, (self.step - 1) / self.limit)
        self.report(float(self.done.sum()) + running)
        return scores


class HFEngine:
    """transformers through lm-eval's ``hf`` model layer (see module docstring)."""

    backend = "hf"

    def __init__(
        self,
        *,
        model: str,
        revision: str | None,
        model_args: dict[str, str],
        batch_size: int,
        device: str | None,
        use_model_generation_config: bool = False,
    ) -> None:
        args = dict(model_args)
        given = args.pop("batch_size", None)
        if given is not None:
            if not given.isdigit() or int(given) < 1:
                raise UsageError(
                    f"--model-args batch_size={given}: the hf backend takes a whole number of rows per batch "
                    "(use --batch-size N; 'auto' is not supported)"
                )
            batch_size = int(given)
        self.batch_size = batch_size
        self.model = model
        self.use_model_generation_config = use_model_generation_config
        self.lm = load_lm("hf", model=model, revision=revision, model_args=args, batch_size=batch_size, device=device)
        from transformers import GenerationConfig  # heavy (seconds): only when a model or tokenizer is loaded

        hf_model = self.lm.model
        self.model_generation_config = hf_model.generation_config
        """The model's own generation config (read for ``--use-model-generation-config``)."""
        hf_model.generation_config = GenerationConfig(
            **{f: getattr(self.model_generation_config, f, None) for f in SPECIAL_TOKEN_FIELDS}
        )
        tok = self.lm.tokenizer
        ends: set[int] = set()
        for source in (self.model_generation_config.eos_token_id, tok.eos_token_id):
            ends.update([source] if isinstance(source, int) else list(source or []))
        self.eos_ids = sorted(ends)
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else self.eos_ids[0]

    @property
    def tokenizer(self) -> Any:
        """The model's tokenizer."""
        return self.lm.tokenizer

    def sampling(self, protocol: SamplingProtocol, stop: list[str]) -> EffectiveSampling:
        """The protocol's parameters; with ``--use-model-generation-config`` also the model's
        ``top_k``, ``min_p`` and ``repetition_penalty`` (where its config sets them)."""
        top_k: int | None = None
        min_p, penalty = 0.0, 1.0
        if self.use_model_generation_config:
            cfg = self.model_generation_config
            top_k = cfg.top_k if cfg.top_k else None
            min_p = float(cfg.min_p or 0.0)
            penalty = float(cfg.repetition_penalty or 1.0)
        return EffectiveSampling(
            temperature=protocol.temperature,
            top_p=protocol.top_p,
            top_k=top_k,
            min_p=min_p,
            repetition_penalty=penalty,
            max_new_tokens=protocol.max_new_tokens,
            stop=list(stop),
            source="protocol+model" if self.use_model_generation_config else "protocol",
            engine=f"transformers {_version('transformers')}",
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
        """Generate in batches of :attr:`batch_size` (longest prompts first), yielding each batch."""
        sampling = self.sampling(protocol, stop)
        lengths = [len(self.tokenizer(r.prompt, add_special_tokens=False).input_ids) for r in requests]
        order = sorted(range(len(requests)), key=lambda i: (-lengths[i], i))
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            outs = self._batch([requests[i] for i in idx], sampling, keep_stop=keep_stop, progress=progress)
            yield list(zip(idx, outs, strict=True))

    def _batch(
        self, requests: list[GenRequest], sampling: EffectiveSampling, *, keep_stop: bool, progress: ProgressFn | None
    ) -> list[GenOutput]:
        import torch  # heavy (seconds): only when a model runs
        from transformers import LogitsProcessorList  # heavy (seconds): only when a model or tokenizer is loaded

        lm = self.lm
        limit = sampling.max_new_tokens
        context, mask = lm.tok_batch_encode(
            [r.prompt for r in requests], left_truncate_len=max(1, lm.max_length - limit), truncation=lm.truncation
        )
        context, mask = context.to(lm.device), mask.to(lm.device)
        processors: list[Any] = []
        if sampling.temperature > 0:
            processors.append(RowSampler([r.seed for r in requests], sampling))
        if progress is not None:
            processors.append(_StepProgress(len(requests), limit, {*self.eos_ids, self.pad_id}, progress))
        with torch.no_grad():
            out = lm.model.generate(
                input_ids=context,
                attention_mask=mask,
                max_new_tokens=limit,
                do_sample=False,
                num_beams=1,
                repetition_penalty=sampling.repetition_penalty,
                eos_token_id=self.eos_ids,
                pad_token_id=self.pad_id,
                stop_strings=list(sampling.stop) or None,
                tokenizer=self.tokenizer if sampling.stop else None,
                logits_processor=LogitsProcessorList(processors),
                use_cache=True,
            )
        width = context.shape[1]
        return [self._output(row[width:].tolist(), sampling, limit, keep_stop) for row in out]

    def _output(self, ids: list[int], sampling: EffectiveSampling, limit: int, keep_stop: bool) -> GenOutput:
        """Text, token count and finish reason of one row's generated ids: the row ends at its first
        end-of-sequence or padding token (a row stopped by a stop string is padded after it)."""
        ends = set(self.eos_ids)
        cut = next((i for i, t in enumerate(ids) if t in ends or t == self.pad_id), len(ids))
        text = self.tokenizer.decode(ids[:cut], skip_special_tokens=True)
        hits = [(text.find(s), s) for s in sampling.stop if s and s in text]
        finish: FinishReason = "stop"
        if hits:  # ended by a stop string: the tokens up to the one that completed it
            pos, matched = min(hits)
            text, n = text[:pos] + (matched if keep_stop else ""), cut
        elif cut < len(ids):  # an end-of-sequence token (counted) or padding
            n = cut + 1 if ids[cut] in ends else cut
        else:
            n, finish = len(ids), "length"
        return GenOutput(text=text, n_tokens=n, finish_reason=finish)

    def close(self) -> None:
        """Drop the model (and free accelerator memory where possible)."""
        self.lm = None
        import torch  # heavy (seconds): only when a model runs

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
