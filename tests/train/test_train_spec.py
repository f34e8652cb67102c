"""The experiment spec: the paper's defaults, derived batch numbers, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import EXPERIMENTS, base_spec

from rlvr_audit.core.errors import ConfigError
from rlvr_audit.train.plan import check_spec
from rlvr_audit.train.spec import NO_CLIP_RATIO, ExperimentSpec, load_spec


def spec_of(**changes: object) -> ExperimentSpec:
    return ExperimentSpec.model_validate(base_spec(**changes))


def test_defaults_are_the_papers_hyperparameters() -> None:
    spec = spec_of()
    hp = spec.hyperparameters
    assert (hp.algorithm, hp.learning_rate, hp.lr_schedule, hp.warmup_steps) == ("grpo", 5e-7, "constant", 0)
    assert (hp.prompts_per_step, hp.rollouts_per_prompt, spec.mini_batch) == (64, 16, 128)
    assert (hp.clip_ratio, hp.kl_coef, hp.entropy_coef, hp.temperature) == (0.2, 0.0, 0.0, 1.0)
    assert (hp.max_prompt_tokens, hp.max_response_tokens) == (1024, 3072)
    assert spec.batch_samples == 1024 and spec.optimizer_steps_per_batch == 8
    assert (spec.clipping, spec.save.every) == ("standard", 50)


@pytest.mark.parametrize(
    ("mode", "low", "high", "steps"),
    [
        ("standard", 0.2, 0.2, 8),
        ("no_clip", NO_CLIP_RATIO, NO_CLIP_RATIO, 8),
        ("on_policy", 0.2, 0.2, 1),
        ("clip_higher", 0.2, 0.28, 8),
    ],
)
def test_clipping_modes(mode: str, low: float, high: float, steps: int) -> None:
    spec = spec_of(clipping=mode)
    assert (spec.clip_low, spec.clip_high, spec.optimizer_steps_per_batch) == (low, high, steps)
    assert spec.dual_clip_bound == NO_CLIP_RATIO  # no dual clip unless asked: the paper's loss
    if mode != "no_clip":
        assert spec_of(clipping=mode, **{"hyperparameters.dual_clip": 3.0}).dual_clip_bound == 3.0


def test_every_example_spec_is_valid() -> None:
    found = sorted(EXPERIMENTS.glob("*.yaml"))
    assert {p.stem for p in found} >= {
        "qwen2.5-math-7b-random",
        "qwen2.5-math-7b-ground-truth",
        "qwen2.5-math-7b-random-no-clip",
    }
    for path in found:
        spec = load_spec(path)
        check_spec(spec, path)
        small = path.stem.startswith("acceptance-")  # the GPU acceptance run's small model
        assert spec.model.path == ("Qwen/Qwen2.5-0.5B-Instruct" if small else "Qwen/Qwen2.5-Math-7B")
    assert load_spec(EXPERIMENTS / "qwen2.5-math-7b-random-no-clip.yaml").clipping == "no_clip"


def write(tmp_path: Path, data: dict[str, object]) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("changes", "key", "words"),
    [
        ({"reward": {"name": "lucky"}}, "reward", ["'lucky'", "ground_truth", "random", "compound"]),
        ({"reward.gamma": 1.5}, "reward.random.gamma", ["less than or equal to 1"]),
        ({"reward.colour": "red"}, "reward.random.colour", ["unknown key"]),
        ({"hyperparameters.lr": 1e-6}, "hyperparameters.lr", ["unknown key", "learning_rate"]),
        ({"clipping": "none"}, "clipping", ["standard", "no_clip", "on_policy", "clip_higher"]),
        ({"reward": {"name": "incorrect"}}, "(top level)", ["data.labels", "incorrect"]),
        ({"hyperparameters.clip_ratio_high": 0.3}, "(top level)", ["clip_higher"]),
        ({"data.hub": {"dataset": "x/y"}}, "data", ["exactly one"]),
        ({"name": "Has Spaces"}, "name", ["pattern"]),
        ({"hyperparameters.dual_clip": 1.0}, "hyperparameters.dual_clip", ["greater than 1"]),
        ({"clipping": "no_clip", "hyperparameters.dual_clip": 3.0}, "(top level)", ["dual_clip", "no_clip"]),
        ({"project": "a\nb"}, "project", ["one line"]),
    ],
)
def test_bad_specs_name_the_key(tmp_path: Path, changes: dict[str, object], key: str, words: list[str]) -> None:
    path = write(tmp_path, base_spec(**changes))
    with pytest.raises(ConfigError) as info:
        load_spec(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}: "), message
    for word in words:
        assert word in message, message
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("changes", "key", "words"),
    [
        ({"hyperparameters.mini_batch_samples": 100}, "hyperparameters.mini_batch_samples", ["multiple of", "16"]),
        ({"hyperparameters.mini_batch_samples": 96}, "hyperparameters.mini_batch_samples", ["divide", "1024"]),
        ({"hyperparameters.rollouts_per_prompt": 1}, "hyperparameters.rollouts_per_prompt", ["at least 2"]),
        ({"resources.gpus_per_node": 3}, "hyperparameters.prompts_per_step", ["3 GPUs"]),
        ({"hyperparameters.micro_batch_per_gpu": 32}, "hyperparameters.micro_batch_per_gpu", ["16 per GPU"]),
        (
            {"clipping": "on_policy", "hyperparameters.mini_batch_samples": 128},
            "hyperparameters.mini_batch_samples",
            ["exactly one optimizer step", "8"],
        ),
        (
            {"clipping": "no_clip", "hyperparameters.mini_batch_samples": 1024},
            "hyperparameters.mini_batch_samples",
            ["on_policy"],
        ),
        ({"hyperparameters.max_response_tokens": 4000}, "hyperparameters.max_response_tokens", ["5024", "4096"]),
        ({"model": {"path": "org/unknown-model"}}, "model.context_length", ["unknown"]),
        ({"model.prompt": "r1_think"}, "model.prompt", ["chat template"]),
        ({"model.prompt": "nope"}, "model.prompt", ["unknown prompt 'nope'", "qwen_math_default"]),
        ({"model.registry_id": "qwen2.5-math-7b/nope"}, "model.registry_id", ["qwen2.5-math-7b/base"]),
    ],
)
def test_spec_checks_without_verl(tmp_path: Path, changes: dict[str, object], key: str, words: list[str]) -> None:
    path = write(tmp_path, base_spec(**changes))
    spec = load_spec(path)
    with pytest.raises(ConfigError) as info:
        check_spec(spec, path)
    message = str(info.value)
    assert f": {key}: " in message, message
    for word in words:
        assert word in message, message


def test_context_from_a_local_model_directory(tmp_path: Path, tiny_model_dir: Path) -> None:
    path = write(
        tmp_path, base_spec(model={"path": str(tiny_model_dir)}, **{"hyperparameters.max_response_tokens": 3200})
    )
    with pytest.raises(ConfigError, match="exceed the 4096-token context"):
        check_spec(load_spec(path), path)
