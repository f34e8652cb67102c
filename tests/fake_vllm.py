"""A recording fake of vLLM's offline interface (``vllm.LLM``, ``vllm.SamplingParams``), for
testing the ``vllm`` backend's call pattern where vLLM cannot run (no GPU).

It follows vLLM's documented semantics where they matter to rlvr-audit:

- ``LLM(model, generation_config="auto" | "vllm", seed=..., **engine_args)``: ``"auto"`` (vLLM's
  default) reads the model folder's ``generation_config.json``; ``get_default_sampling_params()``
  returns its sampling fields (repetition_penalty, temperature, top_k, top_p, min_p, as
  ``ModelConfig.get_diff_sampling_param`` does); ``"vllm"`` ignores them. Explicit
  ``SamplingParams`` handed to ``generate`` are used as given.
- ``SamplingParams``: keyword fields with vLLM's names and defaults (unknown names raise
  ``TypeError``); temperature 0 turns top-p, top-k and min-p off, as vLLM's greedy check does.
- ``generate(prompts, sampling_params, *, use_tqdm=...)``: prompts are strings or
  ``{"prompt_token_ids": [...]}``; a list of params pairs one to one with the prompts; ``use_tqdm``
  may be a tqdm-like callable, called like vLLM calls it. Outputs keep the prompt order and
  carry ``outputs[0].text/token_ids/finish_reason/stop_reason``.

Each completion is a deterministic function of (prompt ids, seed, temperature, top_k): an oracle
that writes a short derivation and a boxed number, so tests can check seeds, stops and limits.
Every call is recorded in ``FakeLLM.calls`` (class-wide, so a test sees engines built inside
rlvr-audit), every construction in ``FakeLLM.instances``.
"""

from __future__ import annotations

import hashlib
import json
import sys
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SAMPLING_FIELDS: dict[str, Any] = {
    "n": 1,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
    "repetition_penalty": 1.0,
    "temperature": 1.0,
    "top_p": 1.0,
    "top_k": 0,
    "min_p": 0.0,
    "seed": None,
    "stop": None,
    "stop_token_ids": None,
    "ignore_eos": False,
    "max_tokens": 16,
    "min_tokens": 0,
    "logprobs": None,
    "prompt_logprobs": None,
    "detokenize": True,
    "skip_special_tokens": True,
    "spaces_between_special_tokens": True,
    "include_stop_str_in_output": False,
}
"""vLLM's ``SamplingParams`` fields (those an offline generation call can set) and defaults."""
GENERATION_CONFIG_FIELDS = ("repetition_penalty", "temperature", "top_k", "top_p", "min_p")
"""What ``ModelConfig.get_diff_sampling_param`` reads from ``generation_config.json``."""


class SamplingParams:
    """Keyword-only, vLLM's names and defaults; greedy decoding switches the cuts off."""

    def __init__(self, **kwargs: Any) -> None:
        unknown = set(kwargs) - set(SAMPLING_FIELDS)
        if unknown:
            raise TypeError(f"SamplingParams got unexpected keyword arguments {sorted(unknown)}")
        for name, default in SAMPLING_FIELDS.items():
            setattr(self, name, kwargs.get(name, default))
        if self.n < 1:
            raise ValueError("n must be at least 1")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < -1:
            raise ValueError(f"top_k must be -1 (disable), 0 (disable) or at least 1, got {self.top_k}")
        if self.temperature < 1e-5:  # greedy: vLLM's _verify_greedy_sampling
            self.top_p, self.top_k, self.min_p = 1.0, 0, 0.0

    def as_dict(self) -> dict[str, Any]:
        """Every field."""
        return {name: getattr(self, name) for name in SAMPLING_FIELDS}


@dataclass
class CompletionOutput:
    """``vllm.outputs.CompletionOutput`` (the fields rlvr-audit reads)."""

    index: int
    text: str
    token_ids: list[int]
    finish_reason: str
    stop_reason: int | str | None


@dataclass
class RequestOutput:
    """``vllm.outputs.RequestOutput`` (the fields rlvr-audit reads)."""

    request_id: str
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]
    finished: bool = True


@dataclass
class Call:
    """One recorded ``LLM.generate`` call."""

    model: str
    prompts: list[list[int]]
    params: list[dict[str, Any]]
    tqdm_callable: bool


@dataclass
class _Record:
    calls: list[Call] = field(default_factory=list)
    instances: list[dict[str, Any]] = field(default_factory=list)


RECORD = _Record()


class FakeLLM:
    """``vllm.LLM`` (see module docstring)."""

    calls = RECORD.calls
    instances = RECORD.instances

    def __init__(self, model: str, *, generation_config: str = "auto", seed: int | None = None, **kwargs: Any) -> None:
        from transformers import AutoTokenizer

        path = Path(model)
        if not (path / "config.json").is_file():
            raise OSError(f"{model} is not a model folder (no config.json)")
        FakeLLM.instances.append({"model": model, "generation_config": generation_config, "seed": seed, **kwargs})
        self.model = model
        self.generation_config = generation_config
        self._tokenizer = AutoTokenizer.from_pretrained(model)
        self._defaults: dict[str, Any] = {}
        gc_path = path / "generation_config.json"
        if generation_config == "auto" and gc_path.is_file():
            data = json.loads(gc_path.read_text())
            self._defaults = {k: data[k] for k in GENERATION_CONFIG_FIELDS if k in data}

    def get_tokenizer(self) -> Any:
        """The model's Hugging Face tokenizer."""
        return self._tokenizer

    def get_default_sampling_params(self) -> SamplingParams:
        """The model's generation config as sampling parameters (``generation_config="auto"``)."""
        return SamplingParams(**self._defaults)

    def generate(
        self,
        prompts: Sequence[str | dict[str, Any]],
        sampling_params: SamplingParams | Sequence[SamplingParams] | None = None,
        *,
        use_tqdm: bool | Callable[..., Any] = True,
        lora_request: Any = None,
        priority: list[int] | None = None,
    ) -> list[RequestOutput]:
        """Complete every prompt; record the call."""
        if sampling_params is None:
            sampling_params = self.get_default_sampling_params()
        params = list(sampling_params) if isinstance(sampling_params, Sequence) else [sampling_params] * len(prompts)
        if len(params) != len(prompts):
            raise ValueError("The lengths of prompts and params must be the same.")
        ids = [list(p["prompt_token_ids"]) if isinstance(p, dict) else self._tokenizer(p).input_ids for p in prompts]
        FakeLLM.calls.append(Call(self.model, ids, [sp.as_dict() for sp in params], callable(use_tqdm)))
        tqdm_func = use_tqdm if callable(use_tqdm) else None
        if tqdm_func is not None:
            for _ in tqdm_func(prompts, desc="Adding requests"):
                pass
            pbar = tqdm_func(total=len(prompts), desc="Processed prompts", dynamic_ncols=True, postfix="")
        outputs = []
        for i, (prompt_ids, sp) in enumerate(zip(ids, params, strict=True)):
            outputs.append(self._complete(str(i), prompt_ids, sp))
            if tqdm_func is not None:
                pbar.postfix = f"est. speed output: {1 / pbar.format_dict['elapsed']:.2f} toks/s"
                pbar.update(1)
        if tqdm_func is not None:
            pbar.close()
        return outputs

    def _complete(self, request_id: str, prompt_ids: list[int], sp: SamplingParams) -> RequestOutput:
        material = json.dumps([prompt_ids, sp.seed if sp.temperature > 0 else None, sp.temperature, sp.top_k])
        h = int(hashlib.sha256(material.encode()).hexdigest()[:12], 16)
        text = f"We add the numbers step by step. The answer is $\\boxed{{{h % 1000}}}$. </answer> Done."
        if sp.top_k == 1:  # the model's generation config cut to one token: every sample alike
            text = "We add the numbers step by step. The answer is $\\boxed{7}$. </answer> Done."
        reason, stop_reason = "stop", None
        for s in sp.stop or []:
            pos = text.find(s)
            if pos >= 0:
                text, reason, stop_reason = text[: pos + (len(s) if sp.include_stop_str_in_output else 0)], "stop", s
                break
        tokens = self._tokenizer(text, add_special_tokens=False).input_ids
        if len(tokens) > sp.max_tokens:
            tokens = tokens[: sp.max_tokens]
            text, reason, stop_reason = self._tokenizer.decode(tokens), "length", None
        elif stop_reason is None:
            tokens = [*tokens, self._tokenizer.eos_token_id]  # ended by EOS: the EOS token is generated
        return RequestOutput(request_id, prompt_ids, [CompletionOutput(0, text, tokens, reason, stop_reason)])


def install() -> types.ModuleType:
    """Put the fake in ``sys.modules['vllm']`` (tests undo it with monkeypatch)."""
    module = types.ModuleType("vllm")
    module.LLM = FakeLLM  # type: ignore[attr-defined]
    module.SamplingParams = SamplingParams  # type: ignore[attr-defined]
    module.__version__ = "0.0.0-fake"  # type: ignore[attr-defined]
    sys.modules["vllm"] = module
    return module
