"""Benchmark: the grading engine against the plain math-verify loop, on real or synthetic responses.

``--corpus real`` (issue 19): the long chain-of-thought responses of
``../shared/data/real_generations/sky-t1/`` (published Sky-T1 outputs: MATH-500, AIME 2024 and
AMC 2023, 630 responses of 17,000 characters on average), imported into a temporary store with
``rlvr-audit``'s own importer, graded against the task files' gold answers. It prints, in
``--rounds`` interleaved rounds (plain loop, then engine, each in a fresh process): the
throughput of both, the ratio, CPU seconds, the verdicts that differ (must be 0); then the
*warm* case: the "wrong" checkpoint's AIME/AMC responses graded after the "correct"
checkpoint's, the verdict cache holding the first one's judgements (the next checkpoint of a
training run); and where the engine's time goes, measured in one process (finding answers,
parsing gold answers, parsing answers, verification; process overhead is the rest of the
engine's CPU). Run::

    python benchmarks/grading.py --corpus real --rounds 2

Figures (2 cores shared with 5-7 other sessions, load average 5.5-9; plain loop and engine
interleaved, each in a fresh process): cold cache 1.44-1.63x the plain loop's throughput and
1.5-1.6x less CPU (plain loop 9.4-10.7 s CPU for 630 responses, engine 6.3-6.7 s over all its
processes), 0 verdict differences. The engine's CPU by step (one process): finding answers
1.16 s (3.4 s before the answer-region scan), parsing gold answers 1.29 s, parsing answers
1.76 s, verification 1.26 s, process overhead and the rest 1.2 s; 307 of 630 samples are plain
integers decided without parsing, and the 298 distinct other (answer, gold) pairs need the
LaTeX parser (ANTLR's pure-Python runtime: about two thirds of parsing is its adaptive
prediction) and sympy. The warm case, the "wrong" 14B checkpoint after the "correct" one: 1.2-2.7x,
because only 14 of its 41 distinct non-integer answers were judged before (the two checkpoints
are different models); the same answers again (a re-grade, another template giving the same
answers): 4.3-5.7x, bounded by finding the answers in 65 long responses and starting two workers.

The synthetic corpus (the default, ``--corpus synthetic``) is described next.

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
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from rlvr_audit.grading import GradeOutcome
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


REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real_generations" / "sky-t1"
BENCHMARKS = DATA.parent
REAL_FILES = {  # file stem -> (checkpoint, task)
    "Sky-T1-math-correct-5K-27B.math500": ("sky-t1-correct-27b", "math500"),
    "Sky-T1-math-correct-5K-14B.aime24": ("sky-t1-correct-14b", "aime24"),
    "Sky-T1-math-correct-5K-14B.amc23": ("sky-t1-correct-14b", "amc"),
    "Sky-T1-math-wrong-5K-14B.aime24": ("sky-t1-wrong-14b", "aime24"),
    "Sky-T1-math-wrong-5K-14B.amc23": ("sky-t1-wrong-14b", "amc"),
}


def import_real(folder: Path) -> dict[str, list[GradeTask]]:
    """Import the real generations into a store under ``folder``; the grading tasks per checkpoint."""
    from rlvr_audit.api import Locations, import_generations
    from rlvr_audit.core.store import Store
    from rlvr_audit.importers import ImportOptions

    loc = Locations(store=folder / "store", data_dir=BENCHMARKS)
    for stem, (checkpoint, task) in REAL_FILES.items():
        options = ImportOptions(checkpoint=checkpoint, task=task, allow_unmatched=True, temperature=0.0)
        import_generations("qwen-math-jsonl", [REAL / f"{stem}.jsonl"], options, loc, progress=False)
    store = Store(loc.store)
    out: dict[str, list[GradeTask]] = {}
    for key in store.unit_keys():
        info = store.load_unit(key)
        gold = {p.problem_id: p.answer for p in store.load_problems(info.spec.data_hash)}
        out.setdefault(info.spec.checkpoint.checkpoint_id, []).extend(
            GradeTask((key, g.problem_id, g.sample_idx), g.completion, gold[g.problem_id], g.finish_reason == "length")
            for g in store.read_generations(key)
        )
    return out


def plain_tasks(tasks: list[GradeTask]) -> tuple[list[bool], float, float]:
    """The plain loop over grading tasks: verdicts, wall and CPU seconds."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    verdicts: list[bool] = []
    start, cpu = time.perf_counter(), time.process_time()
    for task in tasks:
        gold = parse("$" + task.gold.strip() + "$", extraction_config=[LatexExtractionConfig()])
        pred = parse(task.completion, extraction_config=[LatexExtractionConfig(), ExprExtractionConfig()])
        verdicts.append(verify(gold, pred))
    return verdicts, time.perf_counter() - start, time.process_time() - cpu


def engine_tasks(args: tuple[list[GradeTask], Path | None, int]) -> tuple[list[bool], float, float, object]:
    """The engine over grading tasks (``cache``: a store folder holding the verdict cache, or
    ``None``): verdicts, wall and CPU seconds of all processes, engine statistics. Opening the
    cache and starting the workers are timed."""
    from rlvr_audit.grading.cache import VerdictCache

    tasks, cache_root, workers = args
    start, cpu = time.perf_counter(), os.times()
    cache = VerdictCache.open(cache_root) if cache_root is not None else None
    with GradingEngine(workers=workers, timeout=10.0, cache=cache) as engine:
        outcomes = engine.grade(tasks, grader_id="math_verify")
    if cache is not None:
        cache.close()
    wall, after = time.perf_counter() - start, os.times()
    return [o.verdict == "correct" for o in outcomes], wall, sum(after[:4]) - sum(cpu[:4]), engine.stats


def breakdown(tasks: list[GradeTask]) -> dict[str, float]:
    """CPU seconds of the engine's steps done one after the other in one fresh process."""
    from rlvr_audit.grading import math_verify as mv

    grader = MathVerifyGrader()
    seconds: Counter[str] = Counter()
    decided: set[tuple[object, str]] = set()
    for task in tasks:
        began = time.process_time()
        prepared = grader.prepare(task.completion)
        seconds["finding answers"] += time.process_time() - began
        assert prepared is not None
        if grader.shortcut(prepared.head, task.gold) is not None or (prepared.head, task.gold) in decided:
            continue
        decided.add((prepared.head, task.gold))
        began = time.process_time()
        gold = grader._gold(task.gold, fast=True)
        seconds["parsing gold answers"] += time.process_time() - began
        if isinstance(gold, GradeOutcome) or prepared.head[0] not in ("latex", "expr"):
            continue
        began = time.process_time()
        try:
            value, text = mv._candidate_value(prepared.head, grader._latex_config)
        except Exception:
            continue
        seconds["parsing answers"] += time.process_time() - began
        if value is not None:
            began = time.process_time()
            grader._compare(gold, [value, text] if text else [value], truncated=False)
            seconds["verification"] += time.process_time() - began
    return dict(seconds)


def real_main(args: argparse.Namespace) -> int:
    workers = args.workers or os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        by_checkpoint = import_real(folder)
        tasks = [t for ts in by_checkpoint.values() for t in ts]
        lengths = [len(t.completion) for t in tasks]
        print(
            f"real corpus: {len(tasks)} responses of {len(by_checkpoint)} checkpoints "
            f"({statistics.mean(lengths):,.0f} characters on average, median {statistics.median(lengths):,.0f}, "
            f"max {max(lengths):,}); engine: {workers} workers; {os.cpu_count()} cores"
        )
        MathVerifyGrader()  # import the library before any clock starts (children are forked)
        differences = 0
        ratios = []
        for n in range(args.rounds):
            plain, plain_s, plain_cpu = in_fresh_process(plain_tasks, tasks)
            cold = folder / f"cold-{n}"
            cold.mkdir()
            fast, engine_s, engine_cpu, stats = in_fresh_process(engine_tasks, (tasks, cold, workers))
            differences += sum(a != b for a, b in zip(plain, fast, strict=True))
            ratios.append(plain_s / engine_s)
            cold_cpu = engine_cpu
            print(
                f"round {n + 1} cold cache: plain loop {plain_s:6.2f} s ({len(tasks) / plain_s:5.1f}/s, "
                f"CPU {plain_cpu:5.2f} s)  engine {engine_s:6.2f} s ({len(tasks) / engine_s:5.1f}/s, "
                f"CPU {engine_cpu:5.2f} s all processes)  ratio {plain_s / engine_s:4.2f}x throughput, "
                f"{plain_cpu / engine_cpu:4.2f}x less CPU; load average {os.getloadavg()[0]:.1f}"
            )
        print(f"  engine: {stats}")
        first = by_checkpoint["sky-t1-correct-14b"]
        nxt = by_checkpoint["sky-t1-wrong-14b"]
        warm_ratios = []
        for n in range(args.rounds):
            warm = folder / f"warm-{n}"
            warm.mkdir()
            in_fresh_process(engine_tasks, (first, warm, workers))  # the first checkpoint fills the cache
            plain, plain_s, plain_cpu = in_fresh_process(plain_tasks, nxt)
            fast, engine_s, engine_cpu, stats = in_fresh_process(engine_tasks, (nxt, warm, workers))
            differences += sum(a != b for a, b in zip(plain, fast, strict=True))
            warm_ratios.append(plain_s / engine_s)
            print(
                f"round {n + 1} warm cache (next checkpoint, {len(nxt)} responses after {len(first)}): plain loop "
                f"{plain_s:6.2f} s (CPU {plain_cpu:5.2f} s)  engine {engine_s:6.3f} s (CPU {engine_cpu:5.2f} s)  "
                f"ratio {plain_s / engine_s:5.1f}x throughput, {plain_cpu / engine_cpu:4.1f}x less CPU; "
                f"{stats.cache_hits} answers from the cache, {stats.keys} judged, {stats.shortcut} plain integers"  # type: ignore[attr-defined]
            )
            again, again_s, _ = in_fresh_process(plain_tasks, first)
            fast_again, again_engine_s, again_cpu, again_stats = in_fresh_process(engine_tasks, (first, warm, workers))
            differences += sum(a != b for a, b in zip(again, fast_again, strict=True))
            print(
                f"round {n + 1} warm cache, the same answers again (a re-grade, or a template with the same answers): "
                f"plain loop {again_s:6.2f} s  engine {again_engine_s:6.3f} s (CPU {again_cpu:5.2f} s)  "
                f"ratio {again_s / again_engine_s:5.1f}x throughput; "
                f"{again_stats.cache_hits} answers from the cache, {again_stats.keys} judged"  # type: ignore[attr-defined]
            )
        seconds = in_fresh_process(breakdown, tasks)
        print(
            "where the engine's time goes (CPU, one process, cold): "
            + ", ".join(f"{k} {v:.2f} s" for k, v in seconds.items())
            + f"; process overhead and the rest (engine CPU less these): {cold_cpu - sum(seconds.values()):.2f} s"
        )
        print(
            f"median ratio: cold {statistics.median(ratios):.2f}x (target 5x), "
            f"warm {statistics.median(warm_ratios):.1f}x (target 20x); "
            f"verdict differences against the plain loop: {differences} (must be 0)"
        )
        return 1 if differences else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", type=int, default=500, help="MATH-500 problems to use (default: all 500)")
    parser.add_argument("--samples", type=int, default=8, help="responses per problem (default: 8)")
    parser.add_argument("--seed", type=int, default=0, help="corpus seed (default: 0)")
    parser.add_argument("--workers", type=int, default=None, help="engine worker processes (default: CPU count)")
    parser.add_argument("--timeout", type=float, default=10.0, help="engine per-item limit in seconds (default: 10)")
    parser.add_argument("--hostile", action="store_true", help="add responses built to make graders slow or fail")
    parser.add_argument("--data", type=Path, default=DATA, help="benchmark JSONL (default: the shared MATH-500 file)")
    parser.add_argument(
        "--corpus", choices=("synthetic", "real"), default="synthetic", help="which responses (default: synthetic)"
    )
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of the real corpus (default: 2)")
    args = parser.parse_args(argv)
    if args.corpus == "real":
        if not REAL.is_dir():
            parser.error(f"real generations not found at {REAL}")
        if args.rounds < 1:
            parser.error("--rounds must be at least 1")
        return real_main(args)
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
