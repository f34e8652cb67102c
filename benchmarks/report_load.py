"""Load: ``rlvr-audit report`` on a synthetic store of 1,000,000 graded samples.

Builds a store shaped like a large audit: ``--families`` model families, each a base and
``--rewards`` RLVR checkpoints (25 checkpoints by default), every checkpoint under
``--templates`` prompt templates (10), on one 500-problem task with ``--samples`` samples per
problem (8): 25 x 10 x 500 x 8 = 1,000,000 generations, each graded by ``math_verify``.
Responses are a mix of prose, code reasoning, truncated and degenerate ones (about 700
characters on average), so every report section has work to do. The store is written
directly as JSON lines (the records' own schema; a sample of it is read back through
:class:`rlvr_audit.core.store.Store` first).

Then runs ``rlvr-audit report`` on it in a child process and prints its wall time and its peak
memory: ``ru_maxrss`` of the child and its worker processes (``resource.getrusage
(RUSAGE_CHILDREN)``, the largest single process) and the largest sum of resident memory over
the whole process tree, sampled every 0.2 s. The target is under 4 GB. Run::

    python benchmarks/report_load.py                        # 1,000,000 samples (store ~1 GB on disk)
    python benchmarks/report_load.py --families 1 --rewards 1 --templates 2 --problems 50 --samples 2
    python benchmarks/report_load.py --keep DIR             # keep (and reuse) the store in DIR

Options after ``--`` go to ``rlvr-audit report`` (e.g. ``-- --no-browser``).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from rlvr_audit.core.records import CheckpointRef, Problem, SamplingProtocol, UnitSpec, stable_hash
from rlvr_audit.core.store import Store, UnitInfo

GRADER = "math_verify"
REWARDS = ("ground_truth", "random", "incorrect", "format", "one_shot", "entropy", "majority")


def grader_version() -> str:
    from rlvr_audit.grading import get_grader

    return get_grader(GRADER).version


PROSE = (
    "Let's think step by step. We are given the problem and need to find the value asked for. "
    "First, we rewrite the expression and collect the terms with the same power. "
    "Then we simplify and check the result against the conditions of the problem. "
)
CODE = (
    "We can verify this with a short program.\n```python\nfrom sympy import symbols, solve\n"
    "x = symbols('x')\nprint(solve(x**2 - 5*x + 6, x))\n```\n```output\n[2, 3]\n```\n"
)


def response(rng: random.Random, gold: str, correct: bool) -> tuple[str, str]:
    """(completion, finish reason) of one synthetic sample."""
    kind = rng.random()
    answer = gold if correct else str(rng.randint(0, 999))
    if kind < 0.05:  # cut at the token limit
        return PROSE * 6 + "so we continue with the next case and", "length"
    if kind < 0.08:  # degenerate repetition
        return PROSE + "The answer is 5. " * 40, "stop"
    text = PROSE * rng.randint(1, 3)
    if kind < 0.4:
        text += CODE
    return text + f"Therefore, the final answer is $\\boxed{{{answer}}}$.", "stop"


def registry_yaml(families: int, rewards: int) -> str:
    lines = ["families:"]
    for f in range(families):
        lines += [f"  fam{f}:", f"    display_name: Family {f}", "    checkpoints:", "      base:"]
        lines += [f"        model: org/fam{f}-base", "        prompt: no_template"]
        for r in range(rewards):
            lines += [f"      {REWARDS[r % len(REWARDS)]}{r}:", f"        model: org/fam{f}-rl{r}"]
            lines += [f"        base: fam{f}/base", f"        reward: {REWARDS[r % len(REWARDS)]}"]
            lines += ["        step: 150", "        prompt: no_template"]
    return "\n".join(lines) + "\n"


def build_store(root: Path, args: argparse.Namespace) -> int:
    """Write the synthetic store under ``root``; returns the number of samples."""
    rng = random.Random(0)
    problems = [
        Problem(
            task="math500", problem_id=f"p{i:04d}", question=f"Compute problem {i}.", answer=str(rng.randint(1, 999))
        )
        for i in range(args.problems)
    ]
    data_hash = stable_hash([[p.problem_id, p.question, p.answer] for p in problems])
    store = Store(root)
    store.save_problems(data_hash, problems)
    version = grader_version()
    protocol = SamplingProtocol(n=args.samples, temperature=0.6, max_new_tokens=3072)
    total = 0
    for f in range(args.families):
        checkpoints = [("base", None, None)] + [
            (f"{REWARDS[r % len(REWARDS)]}{r}", "base", REWARDS[r % len(REWARDS)]) for r in range(args.rewards)
        ]
        for name, base, reward in checkpoints:
            cid = f"fam{f}/{name}"
            skill = rng.uniform(0.3, 0.8)
            for t in range(args.templates):
                template = "no_template" if t == 0 else f"variant{t}"
                spec = UnitSpec(
                    checkpoint=CheckpointRef(checkpoint_id=cid, model=f"org/fam{f}-{name}", revision="main"),
                    task="math500",
                    data_hash=data_hash,
                    template_id=template,
                    template_hash=stable_hash(template),
                    protocol=protocol,
                    backend="vllm",
                )
                key = spec.key
                store.ensure_unit(
                    UnitInfo(
                        key=key,
                        spec=spec,
                        family=f"fam{f}",
                        family_display=f"Family {f}",
                        base=f"fam{f}/{base}" if base else None,
                        reward=reward,
                        step=150 if base else None,
                        task_display="MATH-500",
                        n_problems_total=args.problems,
                    )
                )
                gens, grades = [], []
                accuracy = min(0.95, skill + 0.03 * t)
                for p in problems:
                    prompt = f"{p.question}\nTemplate {t}."
                    prompt_hash = stable_hash(prompt)
                    for i in range(args.samples):
                        correct = rng.random() < accuracy
                        text, finish = response(rng, p.answer, correct)
                        gens.append(
                            json.dumps(
                                {
                                    "unit_key": key,
                                    "checkpoint_id": cid,
                                    "task": "math500",
                                    "problem_id": p.problem_id,
                                    "template_id": template,
                                    "sample_idx": i,
                                    "seed": protocol.sample_seed(i),
                                    "prompt": prompt,
                                    "prompt_hash": prompt_hash,
                                    "completion": text,
                                    "finish_reason": finish,
                                    "n_tokens": len(text) // 4,
                                    "backend": "vllm",
                                }
                            )
                        )
                        verdict = "truncated" if finish == "length" else "correct" if correct else "incorrect"
                        extracted = None if finish == "length" else text.rsplit("boxed{", 1)[-1].split("}")[0]
                        grades.append(
                            json.dumps(
                                {
                                    "unit_key": key,
                                    "problem_id": p.problem_id,
                                    "sample_idx": i,
                                    "grader_id": GRADER,
                                    "grader_version": version,
                                    "extracted": extracted,
                                    "verdict": verdict,
                                    "error": None,
                                }
                            )
                        )
                store.generations_path(key).write_text("\n".join(gens) + "\n", encoding="utf-8")
                store.grades_path(key, GRADER).parent.mkdir(parents=True, exist_ok=True)
                store.grades_path(key, GRADER).write_text("\n".join(grades) + "\n", encoding="utf-8")
                total += len(gens)
    # the schema check: one unit read back through the store
    key = store.unit_keys()[0]
    assert len(store.read_generations(key)) == args.problems * args.samples
    assert len(store.read_grades(key, GRADER, version)) == args.problems * args.samples
    return total


def watch_tree(pid: int, peak: list[int], stop: threading.Event) -> None:
    """Largest sum of resident memory over ``pid`` and its descendants, sampled."""
    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    while not stop.is_set():
        try:
            procs = [root, *root.children(recursive=True)]
            rss = 0
            for proc in procs:
                try:
                    rss += proc.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
            peak[0] = max(peak[0], rss)
        except psutil.NoSuchProcess:
            return
        stop.wait(0.2)


def run_report(root: Path, registry: Path, report_dir: Path, extra: list[str]) -> tuple[float, int, int, str]:
    """Run ``rlvr-audit report``; (wall seconds, peak single-process RSS, peak tree RSS, output)."""
    command = [
        sys.executable,
        "-m",
        "rlvr_audit.cli",
        "report",
        "--store",
        str(root),
        "--registry",
        str(registry),
        "--report-dir",
        str(report_dir),
        "--quiet",
        *extra,
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = [0]
    stop = threading.Event()
    watcher = threading.Thread(target=watch_tree, args=(proc.pid, peak, stop), daemon=True)
    watcher.start()
    output, _ = proc.communicate()
    wall = time.perf_counter() - start
    stop.set()
    watcher.join()
    if proc.returncode != 0:
        raise SystemExit(f"rlvr-audit report failed ({proc.returncode}):\n{output}")
    maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # KiB on Linux
    return wall, maxrss, peak[0], output


def main(argv: list[str] | None = None) -> dict[str, float]:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", type=int, default=5)
    parser.add_argument("--rewards", type=int, default=4, help="RLVR checkpoints per family")
    parser.add_argument("--templates", type=int, default=10)
    parser.add_argument("--problems", type=int, default=500)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--keep", type=Path, help="build (or reuse) the store and report in this folder")
    args = parser.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="rlvr-audit-load-"))
    work.mkdir(parents=True, exist_ok=True)
    root, registry, report_dir = work / "store", work / "checkpoints.yaml", work / "report"
    try:
        registry.write_text(registry_yaml(args.families, args.rewards), encoding="utf-8")
        start = time.perf_counter()
        if (root / "units").is_dir():
            n = sum(1 for _ in root.glob("units/*/generations.jsonl")) * args.problems * args.samples
            print(f"reusing the store in {root}: {n:,} samples", flush=True)
        else:
            n = build_store(root, args)
            size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
            print(
                f"built {n:,} graded samples in {time.perf_counter() - start:.1f} s ({size / 1e9:.2f} GB)", flush=True
            )
        wall, maxrss, tree, output = run_report(root, registry, report_dir, extra)
        print(f"rlvr-audit report {' '.join(extra)}".rstrip() + f": {wall:.1f} s wall", flush=True)
        print(f"peak memory: {maxrss / 2**30:.2f} GiB largest process (ru_maxrss), {tree / 2**30:.2f} GiB whole tree")
        print(f"within the 4 GB budget: {'yes' if max(maxrss, tree) < 4e9 else 'NO'}")
        for line in output.splitlines()[-5:]:
            print("  " + line)
        return {"samples": n, "wall": wall, "maxrss": maxrss, "tree_rss": tree}
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
