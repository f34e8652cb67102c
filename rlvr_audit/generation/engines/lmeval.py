"""Generation through lm-evaluation-harness's model layer (any lm-eval model type other than
``hf`` and ``vllm``, which have their own modules: :mod:`.hf`, :mod:`.vllm`).

The prompt strings are rendered by rlvr-audit and handed to ``LM.generate_until`` as
``Instance`` objects; lm-eval does the batching, stopping and decoding for every engine it
supports (``local-completions`` for any OpenAI-compatible server, ``sglang``, ...).

Seeds: every request carries its own sample's seed in its generation arguments (the ``seed``
field of the request payload for OpenAI-compatible servers, a sampling parameter for SGLang);
lm-eval groups requests by their arguments, so each sample is sent with its seed. Engines with no
per-request seed (transformers-based model types other than ``hf``) get one call per seed, after
``transformers.set_seed``. Calls hold at most ``--save-every`` requests; results are stored as
each call returns.

Token counts and finish reasons: lm-eval returns completion strings only, and re-encoding a
string does not give back the tokens that were sampled (invalid UTF-8 byte tokens decode to
U+FFFD, non-canonical BPE splits re-merge, end-of-sequence tokens are dropped). So for model
types built on lm-eval's ``HFLM`` or ``VLLM`` classes this module observes the raw generation: it
wraps the loaded model's ``_model_generate`` to read the generated ids (transformers) or request
outputs (vLLM, which reports token ids and the finish reason itself), and pairs them with prompts
through lm-eval's ``cache_hook``, which lm-eval calls once per completion in the same order.

Known issues:
    Other engines (OpenAI-compatible servers, SGLang, ...) expose no token ids through lm-eval:
    their token count is the completion re-encoded with the engine's tokenizer (approximate),
    and ``finish_reason`` is ``length`` when that count reaches the limit, else ``unknown``.
    They take temperature, top_p, the token limit and stops from rlvr-audit; other sampling
    parameters (``top_k``, ``repetition_penalty``, ...) are the server's defaults (a vLLM server
    applies the model's ``generation_config.json``), recorded as ``protocol+engine``.
"""

from __future__ import annotations

import gc
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from ...core.errors import ModelLoadError
from ...core.records import EffectiveSampling, FinishReason, SamplingProtocol
from .base import GenOutput, GenRequest, OutputBatch, ProgressFn, load_failure

SEED_IN_GEN_KWARGS = frozenset({"vllm", "vllm-vlm", "sglang", "sglang-generate"})
"""Backends whose sampling parameters take a per-request ``seed``."""


def _default_torch_device() -> str:
    """``cuda`` when a GPU is visible to torch, else ``cpu``."""
    import torch  # heavy (seconds): only when a model runs

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class _Observed:
    """What the wrapped ``_model_generate`` saw for one completion."""

    n_tokens: int
    """Generated tokens, end-of-sequence included when generated."""
    ended_by: str
    """``eos``, ``stop_string`` or ``length``."""


class _Observer:
    """Pairs raw generation results with prompts (see module docstring)."""

    def __init__(self, lm: Any) -> None:
        self.queue: deque[_Observed] = deque()
        self.by_prompt: dict[str, list[_Observed]] = {}
        self.active = False
        self.lm = lm
        kind = type(lm).__name__
        if hasattr(lm, "_model_generate") and hasattr(lm, "cache_hook"):
            if kind == "HFLM" or any(c.__name__ == "HFLM" for c in type(lm).__mro__):
                self._wrap(self._observe_hf)
                self.active = True
            elif any(c.__name__ == "VLLM" for c in type(lm).__mro__):
                self._wrap(self._observe_vllm)
                self.active = True

    def _wrap(self, observe: Any) -> None:
        original_generate = self.lm._model_generate
        original_hook = self.lm.cache_hook.add_partial

        def model_generate(*args: Any, **kwargs: Any) -> Any:
            out = original_generate(*args, **kwargs)
            observe(out, args, kwargs)
            return out

        def add_partial(attr: str, req: Any, res: Any) -> None:
            if attr == "generate_until" and self.queue:
                self.by_prompt.setdefault(req[0], []).append(self.queue.popleft())
            original_hook(attr, req, res)

        self.lm._model_generate = model_generate
        self.lm.cache_hook.add_partial = add_partial

    def _observe_hf(self, out: Any, args: Any, kwargs: Any) -> None:
        context = kwargs.get("context", args[0] if args else None)
        width = int(context.shape[1])
        max_length = int(kwargs.get("max_length", width))
        tok = self.lm.tokenizer
        eos: set[int] = set()
        for source in (getattr(tok, "eos_token_id", None), getattr(self.lm, "eot_token_id", None)):
            if isinstance(source, int):
                eos.add(source)
        gen_cfg = getattr(getattr(self.lm, "model", None), "generation_config", None)
        cfg_eos = getattr(gen_cfg, "eos_token_id", None)
        eos.update([cfg_eos] if isinstance(cfg_eos, int) else list(cfg_eos or []))
        pad = getattr(tok, "pad_token_id", None)
        limit = max_length - width
        for row in out.tolist():
            cont = row[width:]
            n, ended = len(cont), "length" if len(cont) >= limit else "stop_string"
            for i, t in enumerate(cont):
                if t in eos:
                    n, ended = i + 1, "eos"
                    break
                if t == pad:
                    n, ended = i, "stop_string"
                    break
            self.queue.append(_Observed(n, ended))

    def _observe_vllm(self, out: Any, args: Any, kwargs: Any) -> None:
        if not kwargs.get("generate", args[1] if len(args) > 1 else False):
            return
        for request_output in out:
            o = request_output.outputs[0]
            if o.finish_reason == "length":
                ended = "length"
            else:
                ended = "stop_string" if isinstance(getattr(o, "stop_reason", None), str) else "eos"
            self.queue.append(_Observed(len(o.token_ids), ended))

    def take(self, prompt: str) -> _Observed | None:
        """The observation for one completion of ``prompt`` (in order), if any."""
        found = self.by_prompt.get(prompt)
        return found.pop(0) if found else None

    def reset(self) -> None:
        """Forget observations of a previous call."""
        self.queue.clear()
        self.by_prompt.clear()


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
        chunk_size: int = 64,
    ) -> None:
        self.backend = backend
        self.model = model
        self.chunk_size = chunk_size
        """Most requests per ``generate_until`` call (``--save-every``)."""
        self.lm = load_lm(
            backend, model=model, revision=revision, model_args=model_args, batch_size=batch_size, device=device
        )
        self._observer = _Observer(self.lm)

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

    def _seed_in_request(self) -> bool:
        """Whether a ``seed`` generation argument reaches the engine per request."""
        from lm_eval.models.api_models import TemplateAPI  # heavy (about a second): only when an engine is created

        return self.backend in SEED_IN_GEN_KWARGS or isinstance(self.lm, TemplateAPI)

    def sampling(self, protocol: SamplingProtocol, stop: list[str]) -> EffectiveSampling:
        """Temperature, top_p, the token limit and stops as given; the rest is the engine's."""
        return EffectiveSampling(
            temperature=protocol.temperature,
            top_p=protocol.top_p,
            max_new_tokens=protocol.max_new_tokens,
            stop=list(stop),
            source="protocol+engine",
            engine=f"lm-eval {_version('lm_eval')} {self.backend}",
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
        """Generate through ``LM.generate_until``, at most :attr:`chunk_size` requests per call."""
        order = list(range(len(requests)))
        if not self._seed_in_request():  # one call per seed, after transformers.set_seed
            order.sort(key=lambda i: requests[i].seed)
        start = 0
        while start < len(order):
            end = min(start + self.chunk_size, len(order))
            if not self._seed_in_request():
                seed = requests[order[start]].seed
                end = start + 1
                while end < len(order) and end - start < self.chunk_size and requests[order[end]].seed == seed:
                    end += 1
            idx = order[start:end]
            outs = self._call([requests[i] for i in idx], protocol=protocol, stop=stop, keep_stop=keep_stop)
            yield list(zip(idx, outs, strict=True))
            start = end

    def _call(
        self, requests: list[GenRequest], *, protocol: SamplingProtocol, stop: list[str], keep_stop: bool
    ) -> list[GenOutput]:
        from lm_eval.api.instance import Instance  # heavy (about a second): only when an engine is created

        gen_kwargs: dict[str, Any] = {
            "until": list(stop),
            "max_gen_toks": protocol.max_new_tokens,
            "do_sample": protocol.temperature > 0,
            "temperature": protocol.temperature,
        }
        if protocol.temperature > 0:
            gen_kwargs["top_p"] = protocol.top_p
        per_request = self._seed_in_request()
        if not per_request:
            import transformers  # heavy (seconds): only when a model or tokenizer is loaded

            transformers.set_seed(requests[0].seed)
        instances = [
            Instance(
                request_type="generate_until",
                doc={},
                arguments=(r.prompt, {**gen_kwargs, "seed": r.seed} if per_request else dict(gen_kwargs)),
                idx=i,
            )
            for i, r in enumerate(requests)
        ]
        self._observer.reset()
        texts = self.lm.generate_until(instances, disable_tqdm=True)
        outputs: list[GenOutput] = []
        for req, text in zip(requests, texts, strict=True):
            seen = self._observer.take(req.prompt) if self._observer.active else None
            reason: FinishReason
            if seen is not None:
                n: int | None = seen.n_tokens
                reason = "length" if seen.ended_by == "length" else "stop"
                if keep_stop and stop and seen.ended_by == "stop_string":
                    text = text + stop[0]
            else:  # engines that expose no token ids: approximate (see module docstring)
                n = self._count_tokens(text)
                reason = "length" if n is not None and n >= protocol.max_new_tokens else "unknown"
            outputs.append(GenOutput(text=text, n_tokens=n, finish_reason=reason))
        return outputs

    def close(self) -> None:
        """Drop the model (and free accelerator memory where possible)."""
        self.lm = None
        try:
            import torch  # heavy (seconds): only when a model runs

            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # torch is a dependency, but an API-only install may lack it
            pass


def _version(module: str) -> str:
    """Installed version of a distribution by its import name, or ``?``."""
    try:
        return metadata.version(module.replace("_", "-"))
    except metadata.PackageNotFoundError:
        return "?"


def load_lm(
    backend: str,
    *,
    model: str,
    revision: str | None,
    model_args: dict[str, str],
    batch_size: int,
    device: str | None,
) -> Any:
    """An lm-eval model of type ``backend`` (``pretrained`` = ``model``); a ``batch_size`` in
    ``model_args`` (e.g. ``auto``) wins over ``batch_size``. Load failures raise
    :class:`ModelLoadError` with the loader's reason."""
    import lm_eval.api.registry as registry  # heavy (about a second): only when an engine is created
    from lm_eval.utils import handle_arg_string  # heavy (about a second): only when an engine is created

    args: dict[str, Any] = {k: handle_arg_string(v) for k, v in model_args.items()}
    args["pretrained"] = model
    if revision is not None and "revision" not in args:
        args["revision"] = revision
    config: dict[str, Any] = {"batch_size": args.pop("batch_size", batch_size), "device": args.pop("device", device)}
    try:
        cls = registry.get_model(backend)
        if config["device"] is None and any(c.__name__ == "HFLM" for c in cls.__mro__):
            config["device"] = _default_torch_device()  # lm-eval's own default is "cuda", even without a GPU
        return cls.create_from_arg_obj(args, config)
    except Exception as exc:  # loaders raise OSError, ValueError, RuntimeError, ...
        raise ModelLoadError(load_failure(model, backend, exc)) from exc
