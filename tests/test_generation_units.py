"""Unit keys and unit records of the generation stage: earlier keys stay valid, what an engine
applied is recorded and a change of it is refused, engine arguments reach lm-eval once."""

from __future__ import annotations

from pathlib import Path

import pytest
from testbed import DATA, ROOT, TOY_REGISTRY, needs_data

from rlvr_audit import api as audit
from rlvr_audit.core.errors import UsageError
from rlvr_audit.core.records import (
    SAMPLING_SCHEME,
    CheckpointRef,
    EffectiveSampling,
    Generation,
    SamplingProtocol,
    UnitSpec,
    sample_seed,
    stable_hash,
)
from rlvr_audit.core.store import Store
from rlvr_audit.core.ui import make_progress
from rlvr_audit.generation.plan import ProtocolOverrides, Selection
from rlvr_audit.generation.runner import StoreWriter
from rlvr_audit.generation.work import UnitStarted

SPEC = UnitSpec(
    checkpoint=CheckpointRef(checkpoint_id="toy/base", model="org/toy-base", revision="main"),
    task="math500",
    data_hash="0123456789abcdef",
    template_id="no_template",
    template_hash="fedcba9876543210",
    protocol=SamplingProtocol(n=8, temperature=0.6, max_new_tokens=3072),
    backend="vllm",
)


def test_keys_of_units_written_before_stay_valid() -> None:
    """A spec without the new fields hashes exactly as before they existed; each new field, when
    set, changes the key."""
    legacy = SPEC.model_dump(mode="json", exclude={"sampling_scheme", "use_model_generation_config"})
    assert SPEC.key == stable_hash(legacy)
    scheme = SPEC.model_copy(update={"sampling_scheme": SAMPLING_SCHEME})
    model = scheme.model_copy(update={"use_model_generation_config": True})
    assert len({SPEC.key, scheme.key, model.key}) == 3


def test_sample_seeds_differ_by_unit_problem_and_sample() -> None:
    seeds = {sample_seed(k, p, i) for k in ("a", "b") for p in ("1", "2") for i in range(8)}
    assert len(seeds) == 32 and all(0 <= s < 2**31 for s in seeds)
    assert sample_seed("a", "1", 0) == sample_seed("a", "1", 0)


@needs_data
def test_a_unit_generated_with_other_parameters_is_refused(tmp_path: Path) -> None:
    (tmp_path / "checkpoints.yaml").write_text(TOY_REGISTRY)
    loc = audit.Locations(config_dir=ROOT, registry=tmp_path / "checkpoints.yaml", store=tmp_path / "s", data_dir=DATA)
    selection = Selection(checkpoints=["toy/base"], tasks=["math500"], prompts=["no_template"])
    (unit,) = audit.plan_units(selection, ProtocolOverrides(), audit.EngineOptions(backend="scripted"), loc)
    before = EffectiveSampling(temperature=0.0, top_p=1.0, top_k=20, max_new_tokens=3072, source="protocol+model")
    store = Store(loc.store)
    store.ensure_unit(unit.info.model_copy(update={"sampling": before}))
    problem = unit.problems[0]
    store.append_generations(
        unit.key,
        [
            Generation(
                unit_key=unit.key,
                checkpoint_id="toy/base",
                task="math500",
                problem_id=problem.problem_id,
                template_id="no_template",
                sample_idx=0,
                seed=1,
                prompt="p",
                prompt_hash="h",
                completion="c",
                finish_reason="stop",
                backend="scripted",
            )
        ],
    )
    from rlvr_audit.generation.runner import GenerateSummary
    from rlvr_audit.generation.work import UnitWork

    writer = StoreWriter(store, [UnitWork(unit, ())], make_progress(False), 0, GenerateSummary(), None)
    now = before.model_copy(update={"top_k": 40})
    with pytest.raises(UsageError, match="top_k=20.*top_k=40"):
        writer.handle(UnitStarted(unit_key=unit.key, sampling=now))
    assert store.load_unit(unit.key).sampling == before  # nothing rewritten
    writer.started.clear()
    writer.handle(UnitStarted(unit_key=unit.key, sampling=before))  # the same parameters: fine


def test_batch_size_in_model_args_reaches_lm_eval_once(tiny_model_dir: Path) -> None:
    """`--model-args batch_size=auto` used to fail with 'multiple values for keyword argument'."""
    from rlvr_audit.generation.engines.hf import HFEngine
    from rlvr_audit.generation.engines.lmeval import load_lm

    lm = load_lm(
        "hf",
        model=str(tiny_model_dir),
        revision=None,
        model_args={"batch_size": "auto", "dtype": "float32"},
        batch_size=8,
        device="cpu",
    )
    assert str(lm.batch_size_per_gpu) == "auto"
    with pytest.raises(UsageError, match="batch_size=auto: the hf backend takes a whole number"):
        HFEngine(
            model=str(tiny_model_dir), revision=None, model_args={"batch_size": "auto"}, batch_size=8, device="cpu"
        )
    engine = HFEngine(
        model=str(tiny_model_dir), revision=None, model_args={"batch_size": "3"}, batch_size=8, device="cpu"
    )
    assert engine.batch_size == 3
