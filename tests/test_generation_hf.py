"""The ``hf`` engine on the tiny model: samples that do not depend on the batch size or on an
interruption, stops per row, and a model generation config that applies only when asked."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from testbed import DATA, ROOT, needs_data

from rlvr_audit.core.records import Problem, SamplingProtocol
from rlvr_audit.generation.engines import GenOutput, GenRequest
from rlvr_audit.generation.engines.hf import HFEngine

PROBLEM = Problem(task="t", problem_id="p", question="q", answer="1")


def requests(n: int = 10) -> list[GenRequest]:
    """Prompts of different lengths (so batches are padded differently), each with its own seed."""
    return [
        GenRequest(
            prompt=f"<|im_start|>user\nCompute {i} + {3 * i}.{' Show the steps.' * (i % 4)}<|im_end|>\n"
            "<|im_start|>assistant\n",
            problem=PROBLEM,
            sample_idx=0,
            seed=1000 + i,
        )
        for i in range(n)
    ]


def run(
    engine: HFEngine, reqs: list[GenRequest], proto: SamplingProtocol, stop: list[str], keep: bool = False
) -> list[GenOutput]:
    got = dict(pair for batch in engine.generate(reqs, protocol=proto, stop=stop, keep_stop=keep) for pair in batch)
    assert sorted(got) == list(range(len(reqs)))
    return [got[i] for i in range(len(reqs))]


def engine(model: Path, batch_size: int, **kwargs: bool) -> HFEngine:
    return HFEngine(
        model=str(model), revision=None, model_args={"dtype": "float32"}, batch_size=batch_size, device="cpu", **kwargs
    )


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path) -> HFEngine:
    """One loaded engine for the module; tests set its batch size."""
    return engine(tiny_model_dir, 1)


def with_batch(eng: HFEngine, batch_size: int) -> HFEngine:
    eng.batch_size = batch_size
    return eng


@pytest.mark.parametrize("temperature, top_p", [(1.0, 0.9), (0.0, 1.0)])
def test_batch_size_does_not_change_a_sample(tiny: HFEngine, temperature: float, top_p: float) -> None:
    proto = SamplingProtocol(n=1, temperature=temperature, top_p=top_p, max_new_tokens=20)
    reqs = requests()
    outs = {bs: run(with_batch(tiny, bs), reqs, proto, []) for bs in (1, 4, 8)}
    assert outs[1] == outs[4] == outs[8]
    if temperature > 0:
        assert len({o.text for o in outs[1]}) == len(reqs)
        other = [GenRequest(r.prompt, r.problem, 0, seed=r.seed + 1) for r in reqs]
        assert run(with_batch(tiny, 4), other, proto, []) != outs[4]  # the seed does matter


def test_stops_end_each_row_on_its_own(tiny: HFEngine) -> None:
    """With 8 rows in a batch, a row that writes the stop string ends there ('stop', the string
    kept or dropped as asked) while the others run on; as with one row per batch."""
    proto = SamplingProtocol(n=1, temperature=1.0, max_new_tokens=24)  # seeded per row: reproducible
    reqs = requests(8)
    eng = with_batch(tiny, 8)
    free = run(eng, reqs, proto, [])
    assert sum(o.finish_reason == "length" and o.n_tokens == 24 for o in free) >= 4
    tok = eng.tokenizer
    ids = tok(free[0].text, add_special_tokens=False).input_ids
    stop = next(t for t in (tok.decode([i]) for i in ids[2:]) if len(t.strip()) >= 2)
    cut = run(eng, reqs, proto, [stop])
    kept = run(eng, reqs, proto, [stop], keep=True)
    assert cut == run(with_batch(tiny, 1), reqs, proto, [stop])
    stopped = 0
    for before, after, with_stop in zip(free, cut, kept, strict=True):
        if stop in before.text:
            stopped += 1
            head = before.text[: before.text.index(stop)]
            assert (after.text, after.finish_reason) == (head, "stop")
            assert (with_stop.text, with_stop.finish_reason) == (head + stop, "stop")
            assert after.n_tokens is not None and before.n_tokens is not None and after.n_tokens <= before.n_tokens
        else:
            assert after == before
    assert stopped >= 1 and cut[0].finish_reason == "stop"
    assert any(o.finish_reason == "length" for o in cut)  # rows without the stop string ran on


def test_model_generation_config_applies_only_when_asked(tiny_model_dir: Path, tmp_path: Path) -> None:
    """A generation_config.json with top_k 1 (one distinct completion of 4 at T=0.6 if applied)."""
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    cfg = json.loads((model / "generation_config.json").read_text())
    cfg.update({"do_sample": True, "top_k": 1, "temperature": 0.6, "repetition_penalty": 1.3})
    (model / "generation_config.json").write_text(json.dumps(cfg))
    proto = SamplingProtocol(n=4, temperature=0.6, max_new_tokens=16)
    same_prompt = [GenRequest(requests(1)[0].prompt, PROBLEM, i, seed=50 + i) for i in range(4)]
    plain = engine(model, 4)
    assert plain.sampling(proto, []).model_dump(exclude={"engine"}) == {
        "temperature": 0.6,
        "top_p": 1.0,
        "top_k": None,
        "min_p": 0.0,
        "repetition_penalty": 1.0,
        "max_new_tokens": 16,
        "stop": [],
        "source": "protocol",
    }
    assert len({o.text for o in run(plain, same_prompt, proto, [])}) == 4
    asked = engine(model, 4, use_model_generation_config=True)
    applied = asked.sampling(proto, [])
    assert (applied.top_k, applied.repetition_penalty, applied.source) == (1, 1.3, "protocol+model")
    assert len({o.text for o in run(asked, same_prompt, proto, [])}) == 1


def _generate_cmd(model: Path, store: Path, batch_size: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "rlvr_audit.cli",
        "generate",
        "--backend",
        "hf",
        "--checkpoints",
        str(model),
        "--tasks",
        "math500",
        "--limit",
        "6",
        "--samples",
        "2",
        "--temperature",
        "1.0",
        "--max-new-tokens",
        "40",
        "--model-args",
        "dtype=float32",
        "--device",
        "cpu",
        "--batch-size",
        str(batch_size),
        "--save-every",
        "2",
        "--data-dir",
        str(DATA),
        "--config-dir",
        str(ROOT),
        "--store",
        str(store),
        "--quiet",
    ]


def _records(store: Path) -> dict[tuple[str, int], dict[str, object]]:
    (path,) = store.glob("units/*/generations.jsonl")
    out = {}
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        out[(rec["problem_id"], rec["sample_idx"])] = rec
    return out


@needs_data
def test_killed_and_resumed_run_gives_the_same_samples(tiny_model_dir: Path, tmp_path: Path) -> None:
    """SIGKILL mid-generation (batch size 2), resume: the same 12 samples as one uninterrupted run
    with another batch size."""
    whole = subprocess.run(_generate_cmd(tiny_model_dir, tmp_path / "whole", 5), capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr
    store = tmp_path / "killed"
    proc = subprocess.Popen(_generate_cmd(tiny_model_dir, store, 2), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        files = list(store.glob("units/*/generations.jsonl"))
        if files and files[0].read_bytes().count(b"\n") >= 2:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert 0 < len(_records(store)) < 12
    again = subprocess.run(_generate_cmd(tiny_model_dir, store, 2), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert _records(store) == _records(tmp_path / "whole")
    assert len(_records(store)) == 12
    (unit,) = store.glob("units/*/unit.json")
    sampling = json.loads(unit.read_text())["sampling"]
    assert sampling["source"] == "protocol" and sampling["top_k"] is None and sampling["temperature"] == 1.0
