"""The checkpoint registry: ids, bases, selection by glob and local directory, bad files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rlvr_audit.core.errors import ConfigError, UnknownNameError, UsageError
from rlvr_audit.core.prompts import available_prompts
from rlvr_audit.core.registry import Registry, local_checkpoint_id

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = {
    "qwen2.5-math-7b",
    "qwen2.5-math-1.5b",
    "qwen2.5-7b",
    "qwen2.5-1.5b",
    "llama-3.1-8b-instruct",
    "llama-3.2-3b-instruct",
    "olmo-2-1124-7b",
    "olmo-2-1124-7b-sft",
    # registered for the claims ledger's independent evaluations and contamination probes
    "qwen2.5-math-7b-instruct",
    "qwen2.5-7b-instruct",
    "llama-3.1-8b",
}


@pytest.fixture(scope="module")
def reg() -> Registry:
    r = Registry.load(ROOT / "checkpoints.yaml")
    r.check_prompts(set(available_prompts(ROOT)))
    return r


def test_families_and_paper_checkpoints(reg: Registry) -> None:
    assert {c.family for c in reg.checkpoints.values()} == FAMILIES
    gt = reg.get("qwen2.5-math-7b/ground_truth-step150")
    assert gt.base == "qwen2.5-math-7b/base" and gt.reward == "ground_truth" and gt.step == 150
    assert gt.model.startswith("stellalisy/rethink_rlvr_reproduce-ground_truth-qwen2.5_math_7b")
    assert reg.get("qwen2.5-math-7b/base").model == "Qwen/Qwen2.5-Math-7B"
    assert reg.get("qwen2.5-math-7b/base").prompt == "qwen_math_default"


def test_glob_selection_adds_bases_first(reg: Registry) -> None:
    sel = reg.select(["qwen2.5-math-7b/incorrect*"])
    assert [c.checkpoint_id for c in sel] == ["qwen2.5-math-7b/incorrect-step150"]
    assert [c.checkpoint_id for c in reg.with_bases(sel)] == [
        "qwen2.5-math-7b/base",
        "qwen2.5-math-7b/incorrect-step150",
    ]


def test_unknown_checkpoint_lists_valid(reg: Registry) -> None:
    with pytest.raises(UnknownNameError, match="valid checkpoints: llama-3.1-8b-instruct/base"):
        reg.select(["qwen2.5-math-7b/random-step150"])


def test_local_directory_is_an_ad_hoc_checkpoint(reg: Registry, tmp_path: Path) -> None:
    model = tmp_path / "my-model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (ck,) = reg.select([str(model)])
    assert ck.checkpoint_id == local_checkpoint_id(model) and ck.base is None
    assert re.fullmatch(r"local/my-model-[0-9a-f]{8}", ck.checkpoint_id) and ck.prompt == "no_template"
    (model / "tokenizer_config.json").write_text('{"chat_template": "{{ x }}"}')
    assert reg.select([str(model)])[0].prompt == "model_default"
    ref = ck.ref()
    (model / "config.json").write_text('{"changed": 1}')
    assert reg.select([str(model)])[0].ref().fingerprint != ref.fingerprint


def test_directory_without_config_is_refused(reg: Registry, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="has no config.json"):
        reg.select([str(tmp_path)])


def test_unknown_base_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.yaml"
    path.write_text(
        "families:\n  f:\n    display_name: F\n    checkpoints:\n      rl:\n        model: a/b\n        base: f/nope\n"
    )
    with pytest.raises(ConfigError, match=r"families.f.checkpoints.rl.base: base 'f/nope' is not a checkpoint id"):
        Registry.load(path)


def test_unknown_key_and_bad_prompt(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.yaml"
    path.write_text(
        "families:\n  f:\n    display_name: F\n    checkpoints:\n      b:\n        model: a/b\n        rewrd: x\n"
    )
    with pytest.raises(ConfigError, match=r"checkpoints.yaml: families.f.checkpoints.b.rewrd: unknown key"):
        Registry.load(path)
    path.write_text(
        "families:\n  f:\n    display_name: F\n    checkpoints:\n      b:\n        model: a/b\n        prompt: nope\n"
    )
    with pytest.raises(ConfigError, match="unknown prompt template 'nope'"):
        Registry.load(path).check_prompts(set(available_prompts(ROOT)))
