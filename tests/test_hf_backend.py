"""Generation through lm-eval's `hf` backend with the tiny offline Qwen2 model."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from rlvr_audit.cli import app
from rlvr_audit.core.records import Problem, SamplingProtocol
from rlvr_audit.core.registry import local_checkpoint_id
from rlvr_audit.core.store import Store
from rlvr_audit.generation.engines import GenOutput, GenRequest
from rlvr_audit.generation.engines.hf import HFEngine

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "benchmarks"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/benchmarks is not beside the project")

PROBLEM = Problem(task="t", problem_id="p", question="What is $1+1$?", answer="2")


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> HFEngine:
    return HFEngine(
        model=str(tiny_model_dir), revision=None, model_args={"dtype": "float32"}, batch_size=2, device="cpu"
    )


def outputs(engine: HFEngine, reqs: list[GenRequest], proto: SamplingProtocol, stop: list[str]) -> list[GenOutput]:
    """Every request's output, in request order."""
    got = dict(pair for batch in engine.generate(reqs, protocol=proto, stop=stop) for pair in batch)
    return [got[i] for i in range(len(reqs))]


def test_token_counts_are_the_generated_tokens(engine: HFEngine) -> None:
    """The count comes from the generated ids, not from re-encoding the text."""
    import torch

    prompt = "<|im_start|>user\nWhat is $1+1$?<|im_end|>\n<|im_start|>assistant\n"
    proto = SamplingProtocol(n=1, temperature=0.0, max_new_tokens=12)
    (out,) = outputs(engine, [GenRequest(prompt, PROBLEM, 0, seed=1)], proto, [])
    tok = engine.tokenizer
    ids = tok(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        direct = engine.lm.model.generate(ids, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
    new = direct[0, ids.shape[1] :].tolist()
    eos = {tok.eos_token_id, tok.pad_token_id}
    expected = next((i + 1 for i, t in enumerate(new) if t in eos), len(new))
    assert out.n_tokens == expected
    assert out.finish_reason == ("length" if expected == 12 and not eos & set(new) else "stop")
    assert out.text == tok.decode(new, skip_special_tokens=True)


def test_greedy_is_deterministic_and_sampling_follows_the_seed(engine: HFEngine) -> None:
    def reqs(seed: int) -> list[GenRequest]:
        return [GenRequest(f"Problem {i}: compute {i}+{i}.", PROBLEM, 0, seed=seed + i) for i in range(3)]

    greedy = SamplingProtocol(n=1, temperature=0.0, max_new_tokens=8)
    a = outputs(engine, reqs(1), greedy, [])
    b = outputs(engine, reqs(2), greedy, [])
    assert [o.text for o in a] == [o.text for o in b]
    hot = SamplingProtocol(n=1, temperature=1.0, max_new_tokens=8)
    s1 = outputs(engine, reqs(7), hot, [])
    s2 = outputs(engine, reqs(7), hot, [])
    s3 = outputs(engine, reqs(70), hot, [])
    assert [o.text for o in s1] == [o.text for o in s2]
    assert [o.text for o in s1] != [o.text for o in s3]


def test_model_directory_that_does_not_load(tmp_path: Path) -> None:
    from rlvr_audit.core.errors import ModelLoadError

    (tmp_path / "config.json").write_text('{"model_type": "qwen2"}')
    with pytest.raises(ModelLoadError, match=str(tmp_path)):
        HFEngine(model=str(tmp_path), revision=None, model_args={}, batch_size=1, device="cpu")


@needs_data
def test_run_end_to_end_with_hf(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's acceptance command, on the tiny model with a short token limit."""
    monkeypatch.chdir(tmp_path)
    args = [
        "run",
        "--backend",
        "hf",
        "--checkpoints",
        str(tiny_model_dir),
        "--tasks",
        "math500",
        "--limit",
        "3",
        "--max-new-tokens",
        "16",
        "--model-args",
        "dtype=float32",
        "--batch-size",
        "2",
        "--device",
        "cpu",
        "--data-dir",
        str(DATA),
        "--config-dir",
        str(ROOT),
        "--quiet",
    ]
    r = CliRunner().invoke(app, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    est = pd.read_csv(tmp_path / "reports" / "audit" / "tables" / "estimates.csv")
    assert (tmp_path / "reports" / "audit" / "tables" / "comparisons.csv").is_file()
    assert est.checkpoint.tolist() == [local_checkpoint_id(tiny_model_dir)]
    assert est.prompt.tolist() == ["model_default"] and est.n_problems.tolist() == [3]
    assert 0.0 <= est.value[0] <= 1.0
    store = Store(tmp_path / "rlvr-audit-store")
    (key,) = store.unit_keys()
    gens = store.read_generations(key)
    assert len(gens) == 3 and all(g.backend == "hf" and g.n_tokens is not None and g.n_tokens <= 16 for g in gens)
    assert all(g.prompt.startswith("<|im_start|>user\n") and g.prompt.endswith("<|im_start|>assistant\n") for g in gens)
    assert len(store.read_grades(key, "math_verify")) == 3
    index = (tmp_path / "reports" / "audit" / "index.md").read_text()
    assert "local/" in index
    assert "; applied: no top-k, min-p or repetition penalty (transformers " in index  # what ran, in the settings
    assert store.load_unit(key).sampling is not None and store.load_unit(key).sampling.source == "protocol"
    again = CliRunner().invoke(app, args, catch_exceptions=False)
    assert "0 samples generated, 3 reused" in again.output


@needs_data
def test_chat_prompt_on_a_tokenizer_without_chat_template(tiny_model_dir_no_chat: Path, tmp_path: Path) -> None:
    r = CliRunner().invoke(
        app,
        [
            "run",
            "--backend",
            "hf",
            "--checkpoints",
            str(tiny_model_dir_no_chat),
            "--tasks",
            "math500",
            "--limit",
            "1",
            "--prompts",
            "qwen_math_default",
            "--max-new-tokens",
            "4",
            "--data-dir",
            str(DATA),
            "--config-dir",
            str(ROOT),
            "--store",
            str(tmp_path / "s"),
            "--report-dir",
            str(tmp_path / "r"),
            "--quiet",
        ],
    )
    assert r.exit_code == 2
    assert "'qwen_math_default' applies a chat template" in " ".join(r.output.split())
