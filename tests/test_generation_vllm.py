"""The ``vllm`` backend's call pattern against a recording fake of vLLM's offline interface
(``tests/fake_vllm.py``): one engine call per unit, a request and a seed per sample, the template's
stop strings, and a model generation config that never silently overrides the protocol."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import fake_vllm
import pytest
from testbed import DATA, ROOT, needs_data
from typer.testing import CliRunner

from rlvr_audit.cli import app
from rlvr_audit.core.records import sample_seed
from rlvr_audit.core.store import Store

pytestmark = needs_data


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch) -> type[fake_vllm.FakeLLM]:
    import sys

    monkeypatch.setitem(sys.modules, "vllm", fake_vllm.install())
    fake_vllm.FakeLLM.calls.clear()
    fake_vllm.FakeLLM.instances.clear()
    return fake_vllm.FakeLLM


@pytest.fixture()
def model(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """The tiny model, with a generation config that would change sampling if it were applied."""
    out = tmp_path / "model"
    shutil.copytree(tiny_model_dir, out)
    cfg = json.loads((out / "generation_config.json").read_text())
    cfg.update(
        {"do_sample": True, "temperature": 0.9, "top_p": 0.5, "top_k": 1, "min_p": 0.1, "repetition_penalty": 1.3}
    )
    (out / "generation_config.json").write_text(json.dumps(cfg))
    return out


def generate(model: Path, store: Path, *extra: str) -> str:
    args = [
        "generate",
        "--backend",
        "vllm",
        "--checkpoints",
        str(model),
        "--tasks",
        "math500,aime24",
        "--prompts",
        "r1_think",
        "--limit",
        "4",
        "--samples",
        "3",
        "--temperature",
        "0.6",
        "--max-new-tokens",
        "64",
        "--data-dir",
        str(DATA),
        "--config-dir",
        str(ROOT),
        "--store",
        str(store),
        *extra,
    ]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    return " ".join(r.output.split())


def test_one_call_per_unit_with_a_seed_per_sample(fake: type[fake_vllm.FakeLLM], model: Path, tmp_path: Path) -> None:
    out = generate(model, tmp_path / "s")
    assert "24 samples generated" in out
    assert len(fake.instances) == 1 and fake.instances[0]["generation_config"] == "vllm"  # one model load
    assert len(fake.calls) == 2  # two units (math500, aime24): one engine call each
    store = Store(tmp_path / "s")
    by_task = {store.load_unit(k).spec.task: k for k in store.unit_keys()}
    for call in fake.calls:
        assert len(call.prompts) == 12 and call.tqdm_callable  # 4 problems x 3 samples, progress per request
        assert all(p["n"] == 1 for p in call.params)
        assert len({p["seed"] for p in call.params}) == 12
        for p in call.params:  # the protocol, not the model's generation config
            assert (p["temperature"], p["top_p"], p["top_k"], p["min_p"], p["repetition_penalty"]) == (
                0.6,
                1.0,
                -1,
                0.0,
                1.0,
            )
            assert p["stop"] == ["</answer>"] and p["include_stop_str_in_output"] is True  # r1_think keeps it
            assert p["max_tokens"] == 64
    for task, key in by_task.items():
        gens = store.read_generations(key)
        assert len(gens) == 12
        for g in gens:
            assert g.seed == sample_seed(key, g.problem_id, g.sample_idx)
            assert g.completion.endswith("</answer>") and g.finish_reason == "stop" and g.backend == "vllm"
        # the requests carried exactly the stored seeds, problem by problem
        call = next(c for c in fake.calls if sorted(p["seed"] for p in c.params) == sorted(g.seed for g in gens))
        assert call is not None, task
        info = store.load_unit(key)
        assert info.sampling is not None
        assert (info.sampling.top_k, info.sampling.repetition_penalty, info.sampling.source) == (None, 1.0, "protocol")
        assert info.sampling.engine == "vllm 0.0.0-fake" and info.sampling.stop == ["</answer>"]
    texts = [g.completion for g in store.read_generations(by_task["math500"])]
    assert len(set(texts)) > 3  # distinct seeds, distinct samples

    # resumable by sample: lose some samples, run again: one call with exactly those, same text back
    path = store.generations_path(by_task["math500"])
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:5]))
    fake.calls.clear()
    assert "7 samples generated, 17 reused" in generate(model, tmp_path / "s")
    assert len(fake.calls) == 1 and len(fake.calls[0].prompts) == 7
    again = Store(tmp_path / "s").read_generations(by_task["math500"])
    assert sorted(line for line in path.read_text().splitlines()) == sorted(line.rstrip("\n") for line in lines)
    assert len(again) == 12
    fake.calls.clear()
    assert "0 samples generated, 24 reused" in generate(model, tmp_path / "s")
    assert fake.calls == [] and len(fake.instances) == 2  # nothing missing: no model load at all


def test_model_generation_config_only_when_asked(fake: type[fake_vllm.FakeLLM], model: Path, tmp_path: Path) -> None:
    generate(model, tmp_path / "plain", "--tasks", "math500")
    generate(model, tmp_path / "model", "--tasks", "math500", "--use-model-generation-config")
    plain, used = Store(tmp_path / "plain"), Store(tmp_path / "model")
    (kp,), (ku,) = plain.unit_keys(), used.unit_keys()
    assert kp != ku  # the flag is part of the unit key
    assert used.load_unit(ku).spec.use_model_generation_config
    assert [i["generation_config"] for i in fake.instances] == ["vllm", "auto"]
    for p in fake.calls[1].params:  # the model supplies top_k, min_p, repetition_penalty; the protocol the rest
        assert (p["temperature"], p["top_p"], p["top_k"], p["min_p"], p["repetition_penalty"]) == (
            0.6,
            1.0,
            1,
            0.1,
            1.3,
        )
    applied = used.load_unit(ku).sampling
    assert applied is not None
    assert (applied.top_k, applied.min_p, applied.repetition_penalty, applied.source) == (1, 0.1, 1.3, "protocol+model")
    # what ran is what is recorded: top_k=1 leaves one completion per problem, the protocol several
    per_problem = {g.problem_id: set() for g in used.read_generations(ku)}
    for g in used.read_generations(ku):
        per_problem[g.problem_id].add(g.completion)
    assert all(len(v) == 1 for v in per_problem.values())
    assert len({g.completion for g in plain.read_generations(kp)}) > len(per_problem)


def test_without_vllm_installed(monkeypatch: pytest.MonkeyPatch, model: Path, tmp_path: Path) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    args = ["generate", "--backend", "vllm", "--checkpoints", str(model), "--tasks", "math500", "--limit", "1"]
    args += ["--data-dir", str(DATA), "--config-dir", str(ROOT), "--store", str(tmp_path / "s"), "--quiet"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2
    assert "pip install 'rlvr-audit[vllm]'" in " ".join(r.output.split())
    assert not (tmp_path / "s").exists()


def test_lm_eval_data_parallel_is_refused(fake: type[fake_vllm.FakeLLM], model: Path, tmp_path: Path) -> None:
    args = ["generate", "--backend", "vllm", "--checkpoints", str(model), "--tasks", "math500", "--limit", "1"]
    args += ["--model-args", "data_parallel_size=2", "--data-dir", str(DATA), "--config-dir", str(ROOT)]
    r = CliRunner().invoke(app, [*args, "--store", str(tmp_path / "s"), "--quiet"])
    assert r.exit_code == 2 and "--ray-address" in r.output
    assert not (tmp_path / "s").exists()
