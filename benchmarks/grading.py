"""Benchmark: the grading engine against the plain math-verify loop, on realistic responses.

Corpus: :func:`rlvr_audit.grading.corpus.build_corpus` over the MATH-500 problems
(``../shared/data/benchmarks/math500.jsonl``): per problem ``--samples`` responses of a few
thousand characters (long reasoning borrowed from other solutions, Python code blocks,
second thoughts), ending in the gold answer (sometimes written differently), in recurring
wrong answers, or cut at the token limit; ``--seed`` fixes it.

Three ways to grade it, each from a cold start (math-verify's LaTeX parser warms up as it
goes, in each process):

- **plain loop** (the baseline): math-verify as its documentation shows it, per response,
  nothing cached by us::

      gold = parse("$" + gold + "$", extraction_config=[LatexExtractionConfig()])
      pred = parse(response, extraction_config=[LatexExtractionConfig(), ExprExtractionConfig()])
      verify(gold, pred)

  (the gold answer wrapped in ``$...$`` as :func:`~rlvr_audit.grading.math_verify.normalize_gold`
  does; math-verify's defaults otherwise). Its ``True`` is checked to be exactly the grader
  loop's ``correct``;
- **grader loop** (secondary, for transparency): ``MathVerifyGrader().grade`` on every
  response, one after the other; the same parse and verify, but each gold answer parsed once
  (cached) and verdicts for errors/timeouts. It is the reference the engine's outcomes are
  compared with;
- **engine**: :class:`rlvr_audit.grading.engine.GradingEngine` with ``--workers`` processes
  (prepare each distinct completion, decide plain-integer answers against plain-integer gold
  answers without parsing, judge each other distinct (answer, gold) once, fan out).

The two loops run in forked child processes that have parsed nothing; the engine's time
includes starting its worker processes. No timing includes importing math-verify (each
loop imports it before its clock starts; the parent imports it before the engine's).
Prints the corpus, what the engine did, the throughput and CPU time of each (the engine's
over all its processes: the ratio of work, whatever else the machine is doing), the ratios,
the plain loop's time by kind of response (where the time goes), and the number of verdicts
that differ (must be 0). Run::

    python benchmarks/grading.py                      # 500 problems x 8 samples (about 1.5 minutes)
    python benchmarks/grading.py --problems 100       # quicker
    python benchmarks/grading.py --samples 80         # 10 checkpoints x 8 samples of one task:
                                                      # the grade stage's cache spans units

Timings are wall-clock, on whatever else the machine is doing; run it twice before trusting
a ratio.

Figures (default corpus, 2 cores shared with other work, load average 2-4.5, nine runs):
plain loop 10.4-21.3 s (188-386 answers/s, CPU 10.2-15.7 s), engine 4.4-12.8 s (312-903
answers/s, CPU 6.7-10.0 s): 1.3-3.4x the plain loop's throughput, 1.4-2.0x less CPU; the
engine needs both cores, and the runs below 2x are runs where other work held one (its
CPU then roughly equals its wall time). ``--problems 100 --samples 80``: 2.2x throughput and
CPU. 0 verdict differences in every run. 2,138 samples are decided as plain integers; the
rest is the distinct answers' parsing and comparison, which no exact grader avoids (see
:mod:`rlvr_audit.grading.engine` for where the time goes and why 10x is out of reach).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from rlvr_audit.grading.corpus import CorpusItem, build_corpus, load_problems
from rlvr_audit.grading.engine import GradingEngine
from rlvr_audit.grading.math_verify import MathVerifyGrader
from rlvr_audit.grading.pool import GradeTask

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "benchmarks" / "math500.jsonl"


def plain_loop(items: list[CorpusItem]) -> tuple[list[bool], float, float, dict[str, float]]:
    """The baseline: math-verify's documented parse + parse + verify per response.

    Returns the verdicts, wall and CPU seconds, and wall seconds by kind of response.
    """
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    verdicts: list[bool] = []
    by_kind: Counter[str] = Counter()
    start, cpu = time.perf_counter(), time.process_time()
    for item in items:
        began = time.perf_counter()
        gold = parse("$" + item.gold.strip() + "$", extraction_config=[LatexExtractionConfig()])
        pred = parse(item.completion, extraction_config=[LatexExtractionConfig(), ExprExtractionConfig()])
        verdicts.append(verify(gold, pred))
        by_kind[item.kind.split(":")[0]] += time.perf_counter() - began
    return verdicts, time.perf_counter() - start, time.process_time() - cpu, dict(by_kind)


def grader_loop(items: list[CorpusItem]) -> tuple[list[object], float, float]:
    """The reference: ``MathVerifyGrader().grade`` per response (gold answers cached)."""
    grader = MathVerifyGrader()
    start, cpu = time.perf_counter(), time.process_time()
    outcomes = [grader.grade(completion=i.completion, gold=i.gold, truncated=i.truncated) for i in items]
    return outcomes, time.perf_counter() - start, time.process_time() - cpu


def in_fresh_process(function, items):  # type: ignore[no-untyped-def]
    """``function(items)`` in a forked child that has parsed nothing (a cold start)."""
    context = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as executor:
        return executor.submit(function, items).result()


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
    workers = args.workers or os.cpu_count() or 1

    # Import math-verify (sympy, the LaTeX parser) before the clock starts, as the two loops
    # do: none of the three timings includes importing the library.
    MathVerifyGrader()
    start, cpu = time.perf_counter(), os.times()
    with GradingEngine(workers=workers, timeout=args.timeout) as engine:
        fast = engine.grade(tasks, grader_id="math_verify")
    engine_s, after = time.perf_counter() - start, os.times()  # workers are reaped: their CPU is counted
    engine_cpu = sum(after[:4]) - sum(cpu[:4])  # user + system, this process and its children

    plain, plain_s, plain_cpu, by_kind = in_fresh_process(plain_loop, items)
    reference, grader_s, grader_cpu = in_fresh_process(grader_loop, items)

    stats = engine.stats
    n = len(items)
    print(f"engine: {workers} worker{'s' if workers != 1 else ''}, per-item limit {args.timeout:g} s")
    print(f"  distinct completions prepared   {stats.completions:>8,}")
    print(f"  decided as plain integers       {stats.shortcut:>8,}   (samples, in the parent, no parsing)")
    print(f"  distinct (answer, gold) judged  {stats.keys:>8,}   (+ {stats.tail_keys:,} by later candidates)")
    print(f"  graded by the plain call        {stats.full:>8,}")
    print(f"plain loop  : {plain_s:8.2f} s  {n / plain_s:8.0f} answers/s   CPU {plain_cpu:7.2f} s")
    print(f"grader loop : {grader_s:8.2f} s  {n / grader_s:8.0f} answers/s   CPU {grader_cpu:7.2f} s")
    print(f"engine      : {engine_s:8.2f} s  {n / engine_s:8.0f} answers/s   CPU {engine_cpu:7.2f} s (all processes)")
    print(
        f"ratio (engine vs plain loop)  : {plain_s / engine_s:6.2f}x throughput, "
        f"{plain_cpu / engine_cpu:.2f}x less CPU   <- the target figure"
    )
    print(
        f"ratio (engine vs grader loop) : {grader_s / engine_s:6.2f}x throughput, "
        f"{grader_cpu / engine_cpu:.2f}x less CPU   (secondary: gold answers already cached)"
    )
    print(
        "plain loop time by kind: "
        + ", ".join(f"{kind} {seconds:.2f} s ({kinds[kind]})" for kind, seconds in Counter(by_kind).most_common())
    )
    baseline = sum(p != (r.verdict == "correct") for p, r in zip(plain, reference, strict=True))  # type: ignore[attr-defined]
    verdicts = sum(a.verdict != b.verdict for a, b in zip(fast, reference, strict=True))  # type: ignore[attr-defined]
    outcomes = sum(a != b for a, b in zip(fast, reference, strict=True))
    print(f"plain loop True vs grader 'correct' differences: {baseline}")
    print(
        f"verdict differences (engine vs MathVerifyGrader().grade): {verdicts}   "
        f"(outcomes differing in verdict, extracted or error: {outcomes})"
    )
    return 1 if verdicts or outcomes or baseline else 0


if __name__ == "__main__":
    sys.exit(main())
