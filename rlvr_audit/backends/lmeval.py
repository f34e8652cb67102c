"""Generation through lm-evaluation-harness's model layer (any lm-eval model type).

The prompt strings are rendered by rlvr-audit and handed to ``LM.generate_until`` as
``Instance`` objects; lm-eval does the batching, stopping and decoding for every engine it
supports (``hf``, ``vllm`` with tensor/data parallelism, ``local-completions`` for any
OpenAI-compatible server, ``sglang``, ...).

Seeds: one call generates one *sample round* (sample ``i`` of every problem) with one seed,
applied the way each engine takes it: ``transformers.set_seed`` before the call for the
transformers engines, a per-request ``seed`` sampling parameter for vLLM and SGLang, and the
request ``seed`` field for OpenAI-compatible servers.

Known issues:
    lm-eval returns completion strings only. The token count is the completion re-encoded
    with the engine's tokenizer, and ``finish_reason`` is ``length`` when that count reaches
    the new-token limit. Re-encoding can differ from the sampled tokens by a token or two
    (non-canonical BPE splits), so a completion cut within a couple of tokens of the limit can
    be labelled ``stop``; an engine without a tokenizer gives ``unknown``. lm-eval also cannot
    tell an end-of-sequence token from a stop string, so ``keep_stop`` templates get their stop
    string appended whenever generation ended before the limit.
"""

from __future__ import annotations

from typing import Any

from ..errors import ModelLoadError
from ..records import FinishReason, SamplingProtocol
from . import GenOutput, GenRequest

SEED_IN_GEN_KWARGS = frozenset({"vllm", "vllm-vlm", "sglang", "sglang-generate"})
"""Backends whose sampling parameters take a per-request ``seed``."""


class LMEvalEngine:
    """An lm-eval model loaded once and used for every unit of one checkpoint."""

    def __init__(
        self,
        backend: str,
        *,
        model: str,
        revision: str | None,
        model_args: dict[str, str],
        batch_size: int,
        device: str | None,
    ) -> None:
        import lm_eval.api.registry as registry
        from lm_eval.utils import handle_arg_string

        self.backend = backend
        self.model = model
        args: dict[str, Any] = {k: handle_arg_string(v) for k, v in model_args.items()}
        args["pretrained"] = model
        if revision is not None and "revision" not in args:
            args["revision"] = revision
        try:
            cls = registry.get_model(backend)
            self.lm = cls.create_from_arg_obj(args, {"batch_size": batch_size, "device": device})
        except Exception as exc:  # loaders raise OSError, ValueError, RuntimeError, ...
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"cannot load model {model!r} with backend {backend!r}: {reason}") from exc

    @property
    def tokenizer(self) -> Any | None:
        """The engine's Hugging Face tokenizer, if it has one."""
        return getattr(self.lm, "tokenizer", None)

    def _count_tokens(self, text: str) -> int | None:
        tok_encode = getattr(self.lm, "tok_encode", None)
        if tok_encode is None or self.tokenizer is None:
            return None
        try:
            return len(tok_encode(text))
        except Exception:  # an engine whose tokenizer cannot encode: count unknown
            return None

    def _apply_seed(self, seed: int, gen_kwargs: dict[str, Any]) -> None:
        from lm_eval.models.api_models import TemplateAPI

        if self.backend in SEED_IN_GEN_KWARGS:
            gen_kwargs["seed"] = seed
        elif isinstance(self.lm, TemplateAPI):
            self.lm._seed = seed  # the documented per-request seed of lm-eval's API models
        else:
            import transformers

            transformers.set_seed(seed)

    def generate(
        self,
        requests: list[GenRequest],
        *,
        protocol: SamplingProtocol,
        seed: int,
        stop: list[str],
        keep_stop: bool = False,
    ) -> list[GenOutput]:
        """Generate one completion per request through ``LM.generate_until``."""
        from lm_eval.api.instance import Instance

        gen_kwargs: dict[str, Any] = {
            "until": list(stop),
            "max_gen_toks": protocol.max_new_tokens,
            "do_sample": protocol.temperature > 0,
            "temperature": protocol.temperature,
        }
        if protocol.temperature > 0 and protocol.top_p < 1.0:
            gen_kwargs["top_p"] = protocol.top_p
        self._apply_seed(seed, gen_kwargs)
        instances = [
            Instance(request_type="generate_until", doc={}, arguments=(r.prompt, dict(gen_kwargs)), idx=i)
            for i, r in enumerate(requests)
        ]
        texts = self.lm.generate_until(instances, disable_tqdm=True)
        outputs: list[GenOutput] = []
        for text in texts:
            n = self._count_tokens(text)
            reason: FinishReason
            if n is None:
                reason = "unknown"
            else:
                reason = "length" if n >= protocol.max_new_tokens else "stop"
            if keep_stop and stop and reason == "stop":
                text = text + stop[0]
            outputs.append(GenOutput(text=text, n_tokens=n, finish_reason=reason))
        return outputs

    def close(self) -> None:
        """Drop the model (and free accelerator memory where possible)."""
        self.lm = None
        try:
            import gc

            import torch

            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # torch is a dependency, but an API-only install may lack it
            pass
