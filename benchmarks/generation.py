"""Benchmark: generation at GPU scale, measured on CPU with the tiny model (issue 16's targets).

Four measurements, each printed with its target:

1. **Engine calls per unit, vLLM**: the ``vllm`` backend against the recording fake of vLLM's
   ``LLM``/``SamplingParams`` (``tests/fake_vllm.py``) on a grid of 2 tasks x 2 templates, 8 problems
   x 4 samples each: calls per unit (target 1), requests per call, seeds per call (one per sample).
   The real check is ``benchmarks/gpu_acceptance.py`` on a GPU.
2. **What reproducible sampling costs on hf**: the same sampled requests (T=1, 64 tokens) three ways,
   interleaved ``--repeats`` times in this process so load from other work cancels in the ratios:
   transformers' batched sampling as lm-eval runs it (one global generator; the baseline: its samples
   change with the batch size), the engine's per-row sampler in batches of ``--batch-size``, and
   batch-size-1 sampling (the other way to be reproducible). Prints seconds, ratios to the baseline,
   and whether each way gives the same samples at batch size 4 as at ``--batch-size``.
3. **Shards**: ``--shard 1/3 .. 3/3`` then ``store merge`` against one run (scripted engine, 2 tasks x
   2 templates, 2 graders): identical records (target: identical) and byte-identical tables.
4. **Ray** (``--ray``; needs the ``ray`` extra): a local cluster ``ray.init(num_cpus=2)``, hf on two
   tiny models, a grid of 12 units over 2 workers against one process: identical store contents and
   tables; then with one worker SIGKILLed mid-run: identical again.

Run::

    python benchmarks/generation.py                 # 1-3, about 3 minutes on 2 shared cores
    python benchmarks/generation.py --ray           # and 4 (about 3 more minutes)
    python benchmarks/generation.py --parts 3 --ray # only 3 and 4

Figures (2 cores shared with other sessions, load average 4-10): 1. 4 units, 4 calls of 32 requests
with 32 distinct seeds (1.00 per unit). 2. 16 requests x 64 tokens, batch 8, best of 3: transformers'
batched sampling 35.6 s, per-row sampler 37.3 s (1.05x), batch size 1 36.2 s (1.02x; a 2 MB model
gains nothing from batching on a CPU, a real model on a GPU gains a lot, hence the per-row sampler);
the baseline's samples change with the batch size (8 vs 4), the per-row sampler's do not.
3. records and tables identical. 4. one process 69.5 s, Ray 38.9 s; store and tables identical, and
again with a worker SIGKILLed mid-run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "reliability")]  # the tiny model, the fake vLLM, helpers

DATA = ROOT.parent / "shared" / "data" / "benchmarks"


def invoke(argv: list[str]) -> Any:
    from typer.testing import CliRunner

    from rlvr_audit.cli import app

    r = CliRunner().invoke(app, argv)
    if r.exit_code != 0:
        raise SystemExit(f"rlvr-audit {' '.join(argv[:2])} failed:\n{r.output}{r.exception!r}")
    return r


def engine_calls(model: Path, tmp: Path) -> None:
    import fake_vllm

    sys.modules["vllm"] = fake_vllm.install()
    fake_vllm.FakeLLM.calls.clear()
    argv = ["generate", "--backend", "vllm", "--checkpoints", str(model), "--tasks", "math500,aime24"]
    argv += ["--prompts", "no_template,r1_think", "--limit", "8", "--samples", "4", "--temperature", "0.6"]
    argv += ["--data-dir", str(DATA), "--config-dir", str(ROOT), "--store", str(tmp / "vllm"), "--quiet"]
    invoke(argv)
    calls = fake_vllm.FakeLLM.calls
    units = len(list((tmp / "vllm" / "units").iterdir()))
    print("1. vLLM engine calls per unit (fake vLLM; target 1)")
    print(f"   units {units}, engine calls {len(calls)}: {len(calls) / units:.2f} per unit")
    print(
        f"   requests per call {[len(c.prompts) for c in calls]}, "
        f"n per request {sorted({p['n'] for c in calls for p in c.params})}"
    )
    print(f"   distinct seeds per call {[len({p['seed'] for p in c.params}) for c in calls]}")
    del sys.modules["vllm"]


def sampling_cost(model: Path, batch_size: int, repeats: int, n: int) -> None:
    import torch

    from rlvr_audit.core.records import Problem, SamplingProtocol
    from rlvr_audit.generation.engines import GenRequest
    from rlvr_audit.generation.engines.hf import HFEngine

    problem = Problem(task="t", problem_id="p", question="q", answer="1")
    prompts = [
        f"<|im_start|>user\nCompute {i} + {3 * i}.{' Show the steps.' * (i % 4)}<|im_end|>\n<|im_start|>assistant\n"
        for i in range(n)
    ]
    reqs = [GenRequest(prompt=p, problem=problem, sample_idx=0, seed=7000 + i) for i, p in enumerate(prompts)]
    proto = SamplingProtocol(n=1, temperature=1.0, max_new_tokens=64)
    eng = HFEngine(
        model=str(model), revision=None, model_args={"dtype": "float32"}, batch_size=batch_size, device="cpu"
    )
    lm = eng.lm

    def ours(bs: int) -> list[str]:
        eng.batch_size = bs
        got = dict(pair for batch in eng.generate(reqs, protocol=proto, stop=[]) for pair in batch)
        return [got[i].text for i in range(n)]

    def batched(bs: int) -> list[str]:  # transformers' own sampling, one global generator (lm-eval's way)
        torch.manual_seed(1234)
        out = []
        for start in range(0, n, bs):
            ctx, mask = lm.tok_batch_encode(prompts[start : start + bs], left_truncate_len=lm.max_length - 64)
            with torch.no_grad():
                ids = lm.model.generate(
                    input_ids=ctx,
                    attention_mask=mask,
                    max_new_tokens=64,
                    do_sample=True,
                    temperature=1.0,
                    top_k=0,
                    eos_token_id=eng.eos_ids,
                    pad_token_id=eng.pad_id,
                )
            out += [lm.tok_decode(row[ctx.shape[1] :].tolist()) for row in ids]
        return out

    ways = {
        "transformers batched (baseline)": lambda: batched(batch_size),
        "per-row sampler": lambda: ours(batch_size),
        "batch size 1": lambda: ours(1),
    }
    times: dict[str, list[float]] = {k: [] for k in ways}
    for _ in range(repeats):
        for name, fn in ways.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    base = min(times["transformers batched (baseline)"])
    print(f"2. hf sampling, {n} requests x 64 tokens, batch size {batch_size}, best of {repeats} (interleaved)")
    for name, ts in times.items():
        print(f"   {name:32s} {min(ts):7.2f} s   ratio {min(ts) / base:5.2f}")
    print(
        f"   same samples at batch size 4 as at {batch_size}: baseline {batched(4) == batched(batch_size)}, "
        f"per-row sampler {ours(4) == ours(batch_size)}"
    )


def shards(tmp: Path) -> None:
    from reliability_helpers import snapshot, table_bytes, write_registry

    tmp.mkdir(parents=True, exist_ok=True)
    write_registry(tmp)
    common = [
        "--backend",
        "scripted",
        "--model-args",
        "accuracy=0.6",
        "--checkpoints",
        "toy/rl",
        "--tasks",
        "math500,aime24",
    ]
    common += ["--prompts", "no_template,qwen_math_default", "--limit", "20", "--graders", "math_verify,boxed_strict"]
    common += ["--workers", "1", "--resamples", "300", "--no-browser", "--quiet", "--config-dir", str(ROOT)]
    common += ["--registry", str(tmp / "checkpoints.yaml"), "--data-dir", str(DATA)]
    invoke(["run", *common, "--store", str(tmp / "whole"), "--report-dir", str(tmp / "whole-report")])
    for i in (1, 2, 3):
        invoke(["run", *common, "--store", str(tmp / f"s{i}"), "--shard", f"{i}/3"])
    invoke(["store", "merge", *(str(tmp / f"s{i}") for i in (1, 2, 3)), "--store", str(tmp / "merged")])
    report = ["report", "--resamples", "300", "--no-browser", "--quiet", "--config-dir", str(ROOT)]
    report += [
        "--registry",
        str(tmp / "checkpoints.yaml"),
        "--store",
        str(tmp / "merged"),
        "--report-dir",
        str(tmp / "m"),
    ]
    invoke(report)

    def recs(p: Path) -> Any:
        s = snapshot(p)
        return s.units, s.generations, s.grades, s.problems

    print("3. --shard 1/3 .. 3/3, then store merge, against one run (target: identical)")
    print(
        f"   records identical: {recs(tmp / 'merged') == recs(tmp / 'whole')}, "
        f"tables identical: {table_bytes(tmp / 'm') == table_bytes(tmp / 'whole-report')}"
    )


def on_ray(model_a: Path, tmp: Path) -> None:
    import logging

    import ray
    import test_ray_generation as t
    from tiny_model import build_tiny_qwen2

    tmp.mkdir(parents=True, exist_ok=True)
    models = (model_a, build_tiny_qwen2(tmp / "tiny-b", seed=1, chat_template=True))
    t0 = time.perf_counter()
    invoke(t.args(models, tmp / "single", tmp / "single-report"))
    single = time.perf_counter() - t0
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, configure_logging=False)
    try:
        t0 = time.perf_counter()
        invoke(t.args(models, tmp / "ray", tmp / "ray-report", "--ray-address", "auto"))
        on = time.perf_counter() - t0
        done: list[Any] = []
        runner = threading.Thread(
            target=lambda: done.append(
                invoke(t.args(models, tmp / "kill", tmp / "kill-report", "--ray-address", "auto"))
            )
        )
        runner.start()
        killed = None
        while runner.is_alive() and killed is None:
            if list((tmp / "kill").glob("units/*/generations.jsonl")):
                workers = [p for p, c in t._descendants(os.getpid()).items() if c.startswith(t.TASK_TITLE)]
                if workers:
                    os.kill(workers[0], signal.SIGKILL)
                    killed = workers[0]
            time.sleep(0.02)
        runner.join()
    finally:
        ray.shutdown()
    same = t.contents(tmp / "ray") == t.contents(tmp / "single")
    tables = t.tables(tmp / "ray-report") == t.tables(tmp / "single-report")
    print("4. Ray, local cluster of 2 CPUs, hf on two tiny models, 12 units (target: identical)")
    print(f"   one process {single:.1f} s, Ray {on:.1f} s (ratio {on / single:.2f}; 2 workers, start-up included)")
    print(f"   store identical: {same}, tables identical: {tables}")
    print(
        f"   one worker SIGKILLed mid-run ({'pid ' + str(killed) if killed else 'not killed: run ended first'}): "
        f"store identical: {t.contents(tmp / 'kill') == t.contents(tmp / 'single')}, "
        f"tables identical: {t.tables(tmp / 'kill-report') == t.tables(tmp / 'single-report')}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ray", action="store_true", help="also run the Ray measurement (4)")
    parser.add_argument("--parts", default="1,2,3", help="which of measurements 1-3 to run (default: all)")
    opts = parser.parse_args()
    parts = {int(x) for x in opts.parts.split(",") if x.strip()}
    from tiny_model import build_tiny_qwen2

    tmp = Path(tempfile.mkdtemp(prefix="rlvr-audit-generation-"))
    try:
        model = build_tiny_qwen2(tmp / "tiny", seed=0, chat_template=True)
        if 1 in parts:
            engine_calls(model, tmp)
        if 2 in parts:
            sampling_cost(model, opts.batch_size, opts.repeats, opts.requests)
        if 3 in parts:
            shards(tmp / "shards")
        if opts.ray:
            on_ray(model, tmp / "ray")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
