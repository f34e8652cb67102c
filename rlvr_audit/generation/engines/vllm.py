"""The ``vllm`` engine: vLLM's offline ``LLM`` API, called directly, one call per unit.

lm-eval's vLLM wrapper sends a call per ``--batch-size`` prompts and reloads the model per call in
its data-parallel mode; here the whole of a unit's missing work (every prompt x every missing
sample) is one ``LLM.generate`` call, so vLLM's scheduler keeps the GPU full and its prefix cache
shares each prompt's KV blocks between its samples. Each sample is its own request with its own
``SamplingParams(n=1, seed=...)`` (the sample's seed), so a sample's text does not depend on the
other requests of the call or on an interruption.

The model's ``generation_config.json`` does not silently change the protocol: the engine is built
with ``generation_config="vllm"`` (vLLM's neutral defaults; the model's end-of-sequence tokens are
still read from it) and every sampling parameter is set on each request. With
``--use-model-generation-config`` it is built with ``generation_config="auto"`` and ``top_k``,
``min_p`` and ``repetition_penalty`` come from ``LLM.get_default_sampling_params()`` (the model's
config); temperature, top_p, the token limit and stops are the protocol's either way. What the
requests carried is recorded on the unit (:meth:`VLLMEngine.sampling` reads it back from a
``SamplingParams`` built the same way).

Prompts are encoded with the engine's tokenizer without special tokens (lm-eval's default for
causal models: the rendered chat template already holds them; ``add_bos_token=true`` in
``--model-args`` adds the BOS token) and sent as token ids. Progress moves per finished request
through ``LLM.generate``'s ``use_tqdm`` hook where the installed vLLM accepts a callable there.

Model arguments are vLLM's engine arguments (``tensor_parallel_size``, ``dtype``,
``gpu_memory_utilization``, ``max_model_len``, ...); lm-eval's ``max_length`` is taken as
``max_model_len``. Batch sizes are vLLM's own business and are ignored.
"""

from __future__ import annotations

import gc
import inspect
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from importlib import metadata
from typing import Any

from ...core.errors import ModelLoadError, UsageError
from ...core.records import EffectiveSampling, FinishReason, SamplingProtocol
from .base import GenOutput, GenRequest, OutputBatch, ProgressFn, load_failure

log = logging.getLogger(__name__)

IGNORED_ARGS = frozenset({"batch_size", "max_batch_size"})
"""lm-eval-style model arguments that mean nothing to vLLM's offline engine (it schedules itself)."""
RENAMED_ARGS = {"max_length": "max_model_len"}
"""lm-eval's names for vLLM engine arguments."""


class TqdmShim:
    """Stands in for ``tqdm`` in ``LLM.generate(use_tqdm=...)``: forwards the finished-request count
    to a progress function (vLLM calls it once to wrap the request list, once with ``total=``)."""

    def __init__(self, iterable: Iterable[Any] | None = None, *args: Any, report: ProgressFn, **kwargs: Any) -> None:
        self.iterable = iterable
        self.report = report
        self.n = 0
        self.total = kwargs.get("total")
        self.postfix: Any = kwargs.get("postfix")
        self.start = time.monotonic()

    def __iter__(self) -> Iterator[Any]:
        return iter(self.iterable if self.iterable is not None else ())

    def __enter__(self) -> TqdmShim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def format_dict(self) -> dict[str, Any]:
        """What vLLM reads to print its own speeds."""
        return {"elapsed": max(time.monotonic() - self.start, 1e-6), "n": self.n, "total": self.total}

    def update(self, n: int = 1) -> None:
        """Count ``n`` finished requests."""
        self.n += n
        if self.iterable is None:
            self.report(float(self.n))

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        """Ignored (vLLM's speed read-out)."""

    def set_description(self, *args: Any, **kwargs: Any) -> None:
        """Ignored."""

    def refresh(self, *args: Any, **kwargs: Any) -> None:
        """Ignored."""

    def close(self) -> None:
        """Nothing to release."""


def _accepts_tqdm_callable(generate: Callable[..., Any]) -> bool:
    """Whether ``LLM.generate``'s ``use_tqdm`` takes a tqdm-like callable (vLLM >= 0.9)."""
    try:
        param = inspect.signature(generate).parameters.get("use_tqdm")
    except (TypeError, ValueError):
        return False
    return param is not None and "Callable" in str(param.annotation)


class VLLMEngine:
    """vLLM's offline engine (see module docstring)."""

    backend = "vllm"

    def __init__(
        self,
        *,
        model: str,
        revision: str | None,
        model_args: dict[str, str],
        use_model_generation_config: bool = False,
    ) -> None:
        try:  # heavy (CUDA, compiled kernels) and optional: only the vllm backend needs it
            from vllm import LLM  # heavy (seconds; the vllm extra, GPU machines): only when the vllm engine runs
        except ImportError as exc:
            raise UsageError(
                f"the vllm backend needs vLLM ({exc}): install the extra, pip install 'rlvr-audit[vllm]'"
            ) from None
        from lm_eval.utils import handle_arg_string  # heavy (about a second): only when an engine is created

        args: dict[str, Any] = {}
        for key, value in model_args.items():
            if key in IGNORED_ARGS:
                continue
            args[RENAMED_ARGS.get(key, key)] = handle_arg_string(value)
        if "data_parallel_size" in args:
            raise UsageError(
                "--model-args data_parallel_size: run one engine per GPU group with --ray-address (or --shard I/N) "
                "instead; each unit goes to one engine"
            )
        self.add_bos = bool(args.pop("add_bos_token", False))
        self.model = model
        self.use_model_generation_config = use_model_generation_config
        if revision is not None:
            args.setdefault("revision", revision)
        args["generation_config"] = "auto" if use_model_generation_config else "vllm"
        try:
            self.llm = LLM(model=model, **args)
        except Exception as exc:  # vLLM raises ValueError, OSError, RuntimeError, ...
            raise ModelLoadError(load_failure(model, self.backend, exc)) from exc
        self._tqdm_hook = _accepts_tqdm_callable(self.llm.generate)

    @property
    def tokenizer(self) -> Any:
        """vLLM's tokenizer of the model."""
        return self.llm.get_tokenizer()

    def _params(self, sampling: EffectiveSampling, seed: int, keep_stop: bool) -> Any:
        from vllm import SamplingParams  # heavy (seconds; the vllm extra, GPU machines): only when the vllm engine runs

        return SamplingParams(
            n=1,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k if sampling.top_k else -1,
            min_p=sampling.min_p,
            repetition_penalty=sampling.repetition_penalty,
            max_tokens=sampling.max_new_tokens,
            stop=list(sampling.stop) or None,
            include_stop_str_in_output=keep_stop,
            seed=seed,
        )

    def sampling(self, protocol: SamplingProtocol, stop: list[str]) -> EffectiveSampling:
        """The parameters every request of ``protocol`` carries, read back from vLLM's own
        ``SamplingParams`` (which normalises, e.g. greedy decoding turns top-k and top-p off)."""
        top_k: int | None = None
        min_p, penalty = 0.0, 1.0
        if self.use_model_generation_config:
            defaults = self.llm.get_default_sampling_params()
            top_k = defaults.top_k if defaults.top_k and defaults.top_k > 0 else None
            min_p, penalty = float(defaults.min_p), float(defaults.repetition_penalty)
        wanted = EffectiveSampling(
            temperature=protocol.temperature,
            top_p=protocol.top_p,
            top_k=top_k,
            min_p=min_p,
            repetition_penalty=penalty,
            max_new_tokens=protocol.max_new_tokens,
            stop=list(stop),
        )
        sp = self._params(wanted, 0, False)
        return EffectiveSampling(
            temperature=float(sp.temperature),
            top_p=float(sp.top_p),
            top_k=int(sp.top_k) if sp.top_k and sp.top_k > 0 else None,
            min_p=float(sp.min_p),
            repetition_penalty=float(sp.repetition_penalty),
            max_new_tokens=int(sp.max_tokens),
            stop=[sp.stop] if isinstance(sp.stop, str) else list(sp.stop or []),
            source="protocol+model" if self.use_model_generation_config else "protocol",
            engine=f"vllm {_vllm_version()}",
        )

    def _prompt(self, text: str, limit: int) -> dict[str, Any]:
        ids = list(self.tokenizer.encode(text, add_special_tokens=self.add_bos))
        config = getattr(getattr(self.llm, "llm_engine", None), "model_config", None)
        max_len = getattr(config, "max_model_len", None)
        if isinstance(max_len, int) and len(ids) + limit > max_len:
            log.warning("a prompt of %d tokens was left-truncated to fit max_model_len %d", len(ids), max_len)
            ids = ids[-max(1, max_len - limit) :]
        return {"prompt_token_ids": ids}

    def generate(
        self,
        requests: list[GenRequest],
        *,
        protocol: SamplingProtocol,
        stop: list[str],
        keep_stop: bool = False,
        progress: ProgressFn | None = None,
    ) -> Iterator[OutputBatch]:
        """All requests in one ``LLM.generate`` call, each with its sample's seed."""
        if not requests:
            return
        sampling = self.sampling(protocol, stop)
        params = [self._params(sampling, r.seed, keep_stop) for r in requests]
        prompts = [self._prompt(r.prompt, sampling.max_new_tokens) for r in requests]
        use_tqdm: Any = False
        if progress is not None and self._tqdm_hook:

            def use_tqdm(*args: Any, **kwargs: Any) -> TqdmShim:
                return TqdmShim(*args, report=progress, **kwargs)

        outputs = self.llm.generate(prompts, params, use_tqdm=use_tqdm)
        if len(outputs) != len(requests):
            raise RuntimeError(f"vLLM returned {len(outputs)} outputs for {len(requests)} requests")
        yield [(i, _output(o)) for i, o in enumerate(outputs)]

    def close(self) -> None:
        """Drop the engine and free accelerator memory."""
        self.llm = None
        gc.collect()
        try:
            import torch  # heavy (seconds): only when a model runs

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass


def _output(request_output: Any) -> GenOutput:
    """One request's completion: text, generated tokens, ``length`` or ``stop``."""
    o = request_output.outputs[0]
    reason: FinishReason = {"length": "length", "stop": "stop"}.get(o.finish_reason, "unknown")  # type: ignore[assignment]
    return GenOutput(text=o.text, n_tokens=len(o.token_ids), finish_reason=reason)


def _vllm_version() -> str:
    try:
        return metadata.version("vllm")
    except metadata.PackageNotFoundError:
        import vllm  # heavy (seconds; the vllm extra, GPU machines): only when the vllm engine runs

        return str(getattr(vllm, "__version__", "?"))
