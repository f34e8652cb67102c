"""Registering saved steps: entries in the registry format, idempotent, and the verl callback."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from rlvr_audit.core.errors import UsageError
from rlvr_audit.core.registry import Registry
from rlvr_audit.train.callback import RegisterCheckpoints
from rlvr_audit.train.plan import plan
from rlvr_audit.train.register import merge_command, register_run


def fake_step(run: Path, step: int, hf_from: Path | None = None) -> Path:
    """A saved step as verl lays it out: FSDP shards, and HF weights when ``hf_from`` is given."""
    actor = run / "checkpoints" / f"global_step_{step}" / "actor"
    actor.mkdir(parents=True)
    (actor / "model_world_size_8_rank_0.pt").write_bytes(b"shard")
    if hf_from is not None:
        hf = actor / "huggingface"
        hf.mkdir()
        for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
            shutil.copy(hf_from / name, hf / name)
    return actor


@pytest.fixture
def run(tmp_path: Path, make_spec) -> Path:  # type: ignore[no-untyped-def]
    out = tmp_path / "run"
    plan(make_spec(clipping="no_clip"), out, progress=False)
    return out


def test_register_is_idempotent(run: Path, tiny_model_dir: Path) -> None:
    empty = register_run(run)
    assert empty.entries == [] and Registry.load(empty.registry).checkpoints.keys() == {"qwen2.5-math-7b/base"}
    fake_step(run, 10, hf_from=tiny_model_dir)
    fake_step(run, 20)
    first = register_run(run)
    text = first.registry.read_text()
    assert first.added == ["test-run/step10", "test-run/step20"]
    assert [(e.step, e.status) for e in first.entries] == [(10, "hf"), (20, "fsdp")]
    again = register_run(run)
    assert again.added == [] and again.registry.read_text() == text

    registry = Registry.load(first.registry)
    step10 = registry.get("test-run/step10")
    assert step10.model == str((run / "checkpoints" / "global_step_10" / "actor" / "huggingface").resolve())
    assert (step10.base, step10.reward, step10.step, step10.prompt) == (
        "qwen2.5-math-7b/base",
        "random",
        10,
        "qwen_math_default",
    )
    assert step10.is_local
    assert [c.checkpoint_id for c in registry.select(["test-run/*"])] == ["test-run/step10", "test-run/step20"]
    notes = __import__("yaml").safe_load(text)["families"]["test-run"]["checkpoints"]["step20"]["notes"]
    assert "clipping no_clip" in notes and "status fsdp" in notes and "train merge" in notes

    # a merged step is preferred, then a new step is added and nothing else changes
    merged = run / "merged" / "global_step_20"
    shutil.copytree(tiny_model_dir, merged)
    fake_step(run, 30, hf_from=tiny_model_dir)
    third = register_run(run)
    assert third.added == ["test-run/step30"]
    assert [(e.step, e.status, e.model) for e in third.entries][1] == (20, "merged", "./merged/global_step_20")


def test_the_verl_callback_registers_each_save(run: Path, tiny_model_dir: Path) -> None:
    config = SimpleNamespace(trainer=SimpleNamespace(default_local_dir=str(run / "checkpoints")))
    callback = RegisterCheckpoints(config)
    fake_step(run, 50, hf_from=tiny_model_dir)
    callback.on_save(trainer=None, global_step=50, checkpoint_dir=str(run / "checkpoints" / "global_step_50"))
    assert "test-run/step50" in Registry.load(run / "checkpoints.yaml").checkpoints
    # a failure is logged, not raised (the checkpoint itself is safe)
    RegisterCheckpoints(SimpleNamespace(trainer=SimpleNamespace(default_local_dir="/nonexistent/x"))).on_save(
        global_step=1
    )


def test_register_refuses_what_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a planned run directory"):
        register_run(tmp_path)


def test_merge_uses_verls_model_merger(run: Path) -> None:
    actor = fake_step(run, 40)
    command = merge_command(run, actor.parent, python="python")
    assert command == [
        "python",
        "-m",
        "verl.model_merger",
        "merge",
        "--backend",
        "fsdp",
        "--local_dir",
        str(actor),
        "--target_dir",
        str(run / "merged" / "global_step_40"),
    ]


def test_register_into_the_project_registry_keeps_its_other_lines(
    run: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from conftest import PROJECT_ROOT

    from rlvr_audit.train.register import register_into

    project = tmp_path / "config" / "checkpoints.yaml"
    project.parent.mkdir()
    original = (PROJECT_ROOT / "checkpoints.yaml").read_text()
    project.write_text(original)
    (project.parent / "claims.yaml").write_text((PROJECT_ROOT / "claims.yaml").read_text())  # its ledger, beside it
    fake_step(run, 10, hf_from=tiny_model_dir)
    register_into(run, project)
    first = project.read_text()
    lines = first.splitlines()
    start = lines.index("  test-run:")
    end = start + 1
    while end < len(lines) and lines[end].startswith("    "):
        end += 1
    assert lines[:start] + lines[end:] == original.splitlines()  # every other line, comments included
    assert lines[start - 1].startswith("        ")  # after the last family, before the comments that follow
    registry = Registry.load(project)
    step = registry.get("test-run/step10")
    assert step.model == str((run / "checkpoints" / "global_step_10" / "actor" / "huggingface").resolve())
    assert step.base == "qwen2.5-math-7b/base" and len(registry.ledger.claims) > 0
    register_into(run, project)
    assert project.read_text() == first  # idempotent
    fake_step(run, 20, hf_from=tiny_model_dir)
    result = register_into(run, project)
    assert result.added == ["test-run/step20"]
    assert Registry.load(project).get("test-run/step20").step == 20
    assert project.read_text().count("  test-run:") == 1
