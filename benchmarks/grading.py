"""Benchmark: the grading engine against the plain math-verify loop, on realistic responses.

Corpus: :func:`rlvr_audit.graders.corpus.build_corpus` over the MATH-500 problems
(``../shared/data/benchmarks/math500.jsonl``): per problem ``--samples`` responses of a few
thousand characters (long reasoning borrowed from other solutions, Python code blocks,
second thoughts), ending in the gold answer (sometimes written differently), in recurring
wrong answers, or cut at the token limit; ``--seed`` fixes it.

- baseline: ``MathVerifyGrader().grade`` on every response, one after the other, in this
  process (the plain full-response math-verify call);
- engine: :class:`rlvr_audit.graders.engine.GradingEngine` with ``--workers`` processes
  (prepare each distinct completion, judge each distinct (answer, gold) once, fan out).

The engine runs first, then the baseline, each from a cold start: the parent process has
not parsed any LaTeX before either (math-verify's parser warms up as it goes, in each
process), and the engine's time includes starting its worker processes. Prints the corpus,
what the engine deduplicated, both throughputs and their ratio, the CPU time each used (the
engine's over all its processes: the ratio of work, whatever else the machine is doing),
the plain loop's time by kind of response (where the time goes), and the number of verdicts
that differ (must be 0). Run::

    python benchmarks/grading.py                      # 500 problems x 8 samples (about a minute)
    python benchmarks/grading.py --problems 100       # quicker
    python benchmarks/grading.py --samples 80         # 10 checkpoints x 8 samples of one task:
                                                      # the grade stage's cache spans units

Timings are wall-clock, on whatever else the machine is doing; run it twice before trusting
a ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from rlvr_audit.graders.corpus import build_corpus, load_problems
from rlvr_audit.graders.engine import GradingEngine
from rlvr_audit.graders.math_verify import MathVerifyGrader
from rlvr_audit.graders.pool import GradeTask

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "benchmarks" / "math500.jsonl"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", type=int, default=500, help="MATH-500 problems to use (default: all 500)")
    parser.add_argument("--samples", type=int, default=8, help="responses per problem (default: 8)")
    parser.add_argument("--seed", type=int, default=0, help="corpus seed (default: 0)")
    parser.add_argument("--workers", type=int, default=None, help="engine worker processes (default: CPU count)")
    parser.add_argument("--timeout", type=float, default=10.0, help="engine per-item limit in seconds (default: 10)")
    parser.add_argument("--hostile", action="store_true", help="add responses built to make graders slow or fail")
    parser.add_argument("--data", type=Path, default=DATA, help="benchmark JSONL (default: the shared MATH-500 file)")
    args = parser.parse_args(argv)
    if args.problems < 1 or args.samples < 1:
        parser.error("--problems and --samples must be at least 1")

    problems = load_problems(args.data)[: args.problems]
    items = build_corpus(problems, samples=args.samples, seed=args.seed, hostile=args.hostile)
    lengths = [len(item.completion) for item in items]
    kinds = Counter(item.kind.split(":")[0] for item in items)
    print(
        f"corpus: {len(items):,} responses ({len(problems)} problems x {args.samples}"
        f"{' + hostile' if args.hostile else ''}), seed {args.seed}; "
        f"{statistics.mean(lengths):,.0f} chars on average (median {statistics.median(lengths):,.0f}, "
        f"max {max(lengths):,})"
    )
    print("  kinds: " + ", ".join(f"{kind} {n}" for kind, n in kinds.most_common()))

    tasks = [
        GradeTask((item.problem_id, item.sample_idx), item.completion, item.gold, item.truncated) for item in items
    ]
    grader = MathVerifyGrader()  # imports math-verify before the workers fork; parses nothing
    workers = args.workers or os.cpu_count() or 1

    start, cpu = time.perf_counter(), os.times()
    with GradingEngine(workers=workers, timeout=args.timeout) as engine:
        fast = engine.grade(tasks, grader_id="math_verify")
    engine_s, after = time.perf_counter() - start, os.times()  # workers are reaped: their CPU is counted
    engine_cpu = sum(after[:4]) - sum(cpu[:4])  # user + system, this process and its children

    plain = []
    by_kind: Counter[str] = Counter()
    start, cpu_s = time.perf_counter(), time.process_time()
    for item in items:
        began = time.perf_counter()
        plain.append(grader.grade(completion=item.completion, gold=item.gold, truncated=item.truncated))
        by_kind[item.kind.split(":")[0]] += time.perf_counter() - began
    plain_s, plain_cpu = time.perf_counter() - start, time.process_time() - cpu_s

    stats = engine.stats
    print(f"engine: {workers} worker{'s' if workers != 1 else ''}, per-item limit {args.timeout:g} s")
    print(f"  distinct completions prepared   {stats.completions:>8,}")
    print(f"  distinct (answer, gold) judged  {stats.keys:>8,}   (+ {stats.tail_keys:,} by later candidates)")
    print(f"  graded by the plain call        {stats.full:>8,}")
    print(f"plain loop : {plain_s:8.2f} s  {len(items) / plain_s:8.0f} answers/s   CPU {plain_cpu:7.2f} s")
    print(f"engine     : {engine_s:8.2f} s  {len(items) / engine_s:8.0f} answers/s   CPU {engine_cpu:7.2f} s (all)")
    print(f"ratio      : {plain_s / engine_s:8.2f}x throughput, {plain_cpu / engine_cpu:.2f}x less CPU")
    print(
        "plain loop time by kind: "
        + ", ".join(f"{kind} {seconds:.2f} s ({kinds[kind]})" for kind, seconds in by_kind.most_common())
    )
    verdicts = sum(a.verdict != b.verdict for a, b in zip(fast, plain, strict=True))
    outcomes = sum(a != b for a, b in zip(fast, plain, strict=True))
    print(f"verdict differences: {verdicts}   (outcomes differing in verdict, extracted or error: {outcomes})")
    return 1 if verdicts else 0


if __name__ == "__main__":
    sys.exit(main())
