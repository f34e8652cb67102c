"""Generation engines.

rlvr-audit does not write generation loops. ``vllm`` calls vLLM's offline ``LLM.generate`` directly
(:mod:`.vllm`): a unit's prompts x samples go to the engine in one call, each request with its own
seed, so vLLM schedules, batches and caches the shared prompt prefixes itself. ``hf`` loads the
model through lm-evaluation-harness's ``hf`` model layer and decodes with transformers'
``generate`` (:mod:`.hf`): a per-row sampler gives each sample its own random stream and stop
strings end each row on its own. Every other engine is a model type of lm-eval's model layer
(``local-completions`` for any OpenAI-compatible server, ``sglang``, ...), driven through
:mod:`.lmeval`. The ``scripted`` engine (:mod:`.scripted`) answers from a script or a seeded
oracle, for tests and demos.

An engine receives fully rendered prompt strings (rlvr-audit renders them itself), each with
the seed of its sample, and yields, as they complete, the completion, its token count and why it
ended (the interface is in :mod:`.base`). It also says which sampling parameters it applies
(:class:`~rlvr_audit.core.records.EffectiveSampling`).
"""

from __future__ import annotations

from ...core.errors import UnknownNameError, UsageError
from .base import Engine, GenOutput, GenRequest, OutputBatch, ProgressFn, load_failure
from .hf import HFEngine
from .lmeval import LMEvalEngine
from .scripted import ScriptedEngine
from .vllm import VLLMEngine

__all__ = [
    "ENGINE_ONLY_ARGS",
    "HF",
    "SCRIPTED",
    "VLLM",
    "Engine",
    "GenOutput",
    "GenRequest",
    "HFEngine",
    "LMEvalEngine",
    "OutputBatch",
    "ProgressFn",
    "ScriptedEngine",
    "VLLMEngine",
    "available_backends",
    "check_backend",
    "create_engine",
    "key_args",
    "load_failure",
    "parse_model_args",
]

SCRIPTED = "scripted"
"""Name of the scripted test backend."""
VLLM = "vllm"
"""vLLM's offline engine, called directly (:mod:`.vllm`)."""
HF = "hf"
"""transformers through lm-eval's ``hf`` model layer (:mod:`.hf`)."""

ENGINE_ONLY_ARGS = frozenset(
    {
        "batch_size",
        "max_batch_size",
        "device",
        "gpu_memory_utilization",
        "data_parallel_size",
        "max_num_seqs",
        "num_concurrent",
        "max_retries",
        "timeout",
        "base_url",
        "tokenized_requests",
        "delay",
    }
)
"""Model arguments that change speed or placement but not the generations; they are left out
of unit keys, so e.g. a different batch size reuses stored generations."""


def available_backends() -> list[str]:
    """Every backend name: lm-eval's model types (listed without importing them) and ``scripted``."""
    import lm_eval.api.registry as registry  # heavy (about a second): only when backends are listed or checked
    import lm_eval.models  # noqa: F401  (registers names lazily; no torch import)

    return sorted({*registry.model_registry.keys(), SCRIPTED})


def check_backend(name: str) -> None:
    """Raise :class:`UnknownNameError` unless ``name`` is a backend."""
    if name == SCRIPTED:
        return
    valid = available_backends()
    if name not in valid:
        raise UnknownNameError("backend", name, valid)


def parse_model_args(text: str | None) -> dict[str, str]:
    """Parse ``key=value,key=value`` (lm-eval's ``--model_args`` syntax)."""
    out: dict[str, str] = {}
    if not text:
        return out
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise UsageError(
                f"--model-args: {part!r} is not key=value (expected e.g. 'dtype=bfloat16,max_length=4096')"
            )
        k, v = part.split("=", 1)
        out[k.strip()] = v.strip()
    if "pretrained" in out:
        raise UsageError("--model-args: 'pretrained' comes from --checkpoints; do not set it in --model-args")
    return out


def key_args(model_args: dict[str, str]) -> dict[str, str]:
    """The model arguments that enter a unit key (see :data:`ENGINE_ONLY_ARGS`)."""
    return {k: v for k, v in sorted(model_args.items()) if k not in ENGINE_ONLY_ARGS}


def create_engine(
    backend: str,
    *,
    model: str,
    revision: str | None,
    model_args: dict[str, str],
    batch_size: int,
    device: str | None,
    checkpoint_id: str,
    use_model_generation_config: bool = False,
    chunk_size: int = 64,
) -> Engine:
    """Load ``model`` with ``backend``; errors name the model and the loader's reason
    (:class:`~rlvr_audit.core.errors.ModelLoadError`). A ``batch_size`` in ``model_args`` wins over
    ``batch_size``. ``chunk_size``: most requests per call for engines driven through lm-eval, and
    completions handed back at a time by the scripted engine."""
    if backend == SCRIPTED:
        return ScriptedEngine(model=model, checkpoint_id=checkpoint_id, model_args=model_args, chunk_size=chunk_size)
    if backend == VLLM:
        return VLLMEngine(
            model=model,
            revision=revision,
            model_args=model_args,
            use_model_generation_config=use_model_generation_config,
        )
    if backend == HF:
        return HFEngine(
            model=model,
            revision=revision,
            model_args=model_args,
            batch_size=batch_size,
            device=device,
            use_model_generation_config=use_model_generation_config,
        )
    return LMEvalEngine(
        backend,
        model=model,
        revision=revision,
        model_args=model_args,
        batch_size=batch_size,
        device=device,
        chunk_size=chunk_size,
    )
