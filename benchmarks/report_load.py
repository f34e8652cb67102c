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

``--compare`` runs the report three times in this process and prints each beside the first,
as ratios: the *baseline* (``--baseline-src DIR``: the ``rlvr_audit`` package of another checkout,
e.g. ``git worktree add /tmp/base main``, put first on ``PYTHONPATH``; without it, this checkout
with the column cache bypassed, ``RLVR_AUDIT_COLUMN_CACHE=0``), then this checkout with a
*cold* column cache (removed first: the report builds it) and a *warm* one (the next report of
an unchanged store). Peak memory per run is then the sampled largest single process and the
sampled whole tree (``ru_maxrss`` covers all runs of this process together)::

    python benchmarks/report_load.py --families 1 --rewards 4 --templates 5 --compare -- --no-browser
"""

from __future__ import annotations

import argparse
import json
import os
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
    """Largest sum of resident memory over ``pid`` and its descendants, sampled (``peak[0]``),
    and the largest single process's (``peak[1]``)."""
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
                    one = proc.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
                rss += one
                peak[1] = max(peak[1], one)
            peak[0] = max(peak[0], rss)
        except psutil.NoSuchProcess:
            return
        stop.wait(0.2)


def run_report(
    root: Path,
    registry: Path,
    report_dir: Path,
    extra: list[str],
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[float, int, int, str]:
    """Run ``rlvr-audit report`` (``env``, ``cwd``: its environment and folder; ``python -m`` puts
    the folder first on the import path); (wall seconds, peak single-process RSS (``ru_maxrss``),
    peak tree RSS, output)."""
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
        "--config-dir",  # this checkout's tasks/ and prompts/, whatever the folder it runs in
        str(Path(__file__).resolve().parents[1]),
        *extra,
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd)
    peak = [0, 0]
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
    run_report.sampled_single = peak[1]  # type: ignore[attr-defined]
    return wall, maxrss, peak[0], output


def compare(root: Path, registry: Path, work: Path, extra: list[str], baseline_src: Path | None) -> dict[str, float]:
    """Baseline, cold-cache and warm-cache reports of one store, printed as ratios."""
    env = dict(os.environ)
    env.pop("RLVR_AUDIT_COLUMN_CACHE", None)
    if baseline_src is not None:
        baseline_src = baseline_src.resolve()
        base_env = {**env, "PYTHONPATH": os.pathsep.join([str(baseline_src), env.get("PYTHONPATH", "")]).rstrip(":")}
        base_label = f"baseline ({baseline_src})"
    else:
        base_env = {**env, "RLVR_AUDIT_COLUMN_CACHE": "0"}
        base_label = "baseline (this checkout, RLVR_AUDIT_COLUMN_CACHE=0)"
    shutil.rmtree(root / "cache" / "columns", ignore_errors=True)
    work, root, registry = work.resolve(), root.resolve(), registry.resolve()
    runs: dict[str, tuple[float, int, int]] = {}
    here = Path(__file__).resolve().parents[1]  # this checkout (its rlvr_audit first on the path)
    steps = (
        (base_label, base_env, baseline_src or here),
        ("cold column cache", env, here),
        ("warm column cache", env, here),
    )
    for label, run_env, cwd in steps:
        wall, _, tree, _ = run_report(root, registry, work / f"report-{len(runs)}", extra, run_env, cwd)
        which = subprocess.run(
            [sys.executable, "-c", "import rlvr_audit; print(rlvr_audit.__file__)"],
            env=run_env,
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        print(f"  ({label}: rlvr_audit from {which})", flush=True)
        single = run_report.sampled_single  # type: ignore[attr-defined]
        runs[label] = (wall, single, tree)
        print(
            f"{label}: {wall:.1f} s wall, peak {single / 2**30:.2f} GiB largest process, "
            f"{tree / 2**30:.2f} GiB whole tree (sampled)",
            flush=True,
        )
    base_wall = runs[base_label][0]
    for label in list(runs)[1:]:
        wall, single, tree = runs[label]
        print(f"{label}: {base_wall / wall:.2f}x the baseline's speed ({base_wall:.1f} s -> {wall:.1f} s)")
    same = all(
        (work / "report-0" / "tables" / p.name).read_bytes() == p.read_bytes()
        for p in sorted((work / "report-2" / "tables").glob("*.csv"))
    )
    print(f"report tables byte-identical to the baseline's: {'yes' if same else 'NO'}")
    return {label: wall for label, (wall, _, _) in runs.items()}


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
    parser.add_argument("--compare", action="store_true", help="baseline, cold and warm column cache, as ratios")
    parser.add_argument("--baseline-src", type=Path, help="with --compare: the baseline's checkout (its rlvr_audit)")
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
        if args.compare:
            walls = compare(root, registry, work, extra, args.baseline_src)
            return {"samples": n, **walls}
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
