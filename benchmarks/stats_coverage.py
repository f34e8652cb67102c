"""Coverage table: how often each interval method covers the true accuracy or gain.

Simulated benchmarks with heterogeneous problem difficulty and known truth
(:mod:`rlvr_audit.analysis.interval_coverage`: Beta-distributed solve rates with intra-class correlation
``icc``; pairs coupled by a Gaussian copula). For every cell the share of simulated datasets
whose interval covers the truth, per method (``wilson`` = the default, ``percentile``, ``bca``),
at the 95% level; the target is 93-97%. Cells outside it are marked ``<`` (under) or ``>``
(over). Then how often the default gain interval and the exact paired test disagree about
significance. The figures quoted in the docstring of :mod:`rlvr_audit.analysis.stats` come from::

    python benchmarks/stats_coverage.py                  # everything (several minutes)
    python benchmarks/stats_coverage.py --quick          # 1,000 datasets per cell, fewer cells

``tests/test_stats_theory.py`` checks a subset of these cells on every CI run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rlvr_audit.analysis import interval_coverage as cov

METHODS = ("wilson", "percentile", "bca")
ACCURACIES = (0.01, 0.03, 0.04, 0.054, 0.07, 0.09, 0.12, 0.2, 0.3, 0.5, 0.7, 0.88, 0.93, 0.97)
GAINS = (0.0, 0.05, 0.10)
BASES = (0.03, 0.054, 0.1, 0.2, 0.4, 0.6, 0.8, 0.87)


def mark(x: float) -> str:
    """A coverage in %, with ``<``/``>`` when outside 93-97%."""
    flag = "<" if x < 0.93 else ">" if x > 0.97 else " "
    return f"{100 * x:5.1f}{flag}"


def unit_table(*, n: int, k: int, iccs: tuple[float, ...], datasets: int, resamples: int, seed: int) -> None:
    """Coverage of one accuracy, methods x icc x accuracy."""
    print(f"\n## One accuracy: n={n} problems x k={k} samples, {datasets} datasets per cell")
    print("method      icc  | " + " ".join(f"{100 * a:5.1f} " for a in ACCURACIES))
    for method in METHODS:
        for icc in iccs:
            gen = np.random.default_rng([seed, n, k, int(icc * 100)])
            row = []
            for acc in ACCURACIES:
                scores = cov.simulate_unit(n_problems=n, k=k, accuracy=acc, icc=icc, n_datasets=datasets, rng=gen)
                row.append(cov.unit_coverage(scores, acc, method=method, rng=gen, n_resamples=resamples))
            print(f"{method:<10} {icc:4.2f} | " + " ".join(mark(x) for x in row), flush=True)


def binomial_table(*, sizes: tuple[int, ...], resamples: int, seed: int) -> None:
    """Exact coverage at one sample per problem over accuracies 3-97% (step 0.1 point)."""
    grid = np.round(np.arange(0.03, 0.97 + 1e-9, 0.001), 3)
    print("\n## One accuracy, one sample per problem: exact binomial coverage over accuracies 3-97% (step 0.1)")
    print("n     method     | min (at)        max (at)        mean   share<93% share>97%")
    for n in sizes:
        for method in METHODS:
            c = cov.binomial_coverage(
                n_problems=n,
                accuracies=grid,
                method=method,
                rng=np.random.default_rng([seed, n]),
                n_resamples=resamples,
            )
            print(
                f"{n:<5} {method:<10} | {100 * c.min():5.1f} ({100 * grid[c.argmin()]:4.1f}%)  "
                f"{100 * c.max():5.1f} ({100 * grid[c.argmax()]:4.1f}%)  {100 * c.mean():5.1f}  "
                f"{100 * np.mean(c < 0.93):8.1f}% {100 * np.mean(c > 0.97):8.1f}%",
                flush=True,
            )


def pair_table(
    *,
    n: int,
    k: int,
    iccs: tuple[float, ...],
    correlations: tuple[float, ...],
    datasets: int,
    resamples: int,
    seed: int,
) -> None:
    """Coverage of the paired gain, plus how often the default interval and the exact test disagree."""
    print(f"\n## Paired gain (checkpoint - base): n={n} x k={k}, {datasets} datasets per cell")
    print("rows: method, icc, latent correlation, gain; columns: base accuracy")
    print("method      icc  corr  gain | " + " ".join(f"{100 * b:5.1f} " for b in BASES))
    agreement: list[str] = []
    for icc in iccs:
        for corr in correlations:
            for gain in GAINS:
                gen = np.random.default_rng([seed, n, k, int(icc * 100), int(corr * 100), int(gain * 100)])
                data = []
                for base in BASES:
                    if base + gain > 0.97:
                        data.append(None)
                        continue
                    data.append(
                        cov.simulate_pair(
                            n_problems=n,
                            k=k,
                            base=base,
                            treatment=base + gain,
                            icc=icc,
                            latent_correlation=corr,
                            n_datasets=datasets,
                            rng=gen,
                        )
                    )
                for method in METHODS:
                    cells = []
                    for d in data:
                        if d is None:
                            cells.append("   -  ")
                            continue
                        cells.append(mark(cov.paired_coverage(*d, gain, method=method, rng=gen, n_resamples=resamples)))
                    print(f"{method:<10} {icc:4.2f} {corr:4.2f} {100 * gain:4.1f} | " + " ".join(cells), flush=True)
                row = []
                for d in data:
                    if d is None:
                        row.append("      -       ")
                        continue
                    a = cov.significance_agreement(*d, method="wilson", rng=gen, n_resamples=resamples)
                    row.append(f"{100 * a.interval:3.0f}/{100 * a.test:3.0f}/{100 * a.disagree:4.1f}")
                agreement.append(f"{icc:4.2f} {corr:4.2f} {100 * gain:4.1f} | " + "  ".join(row))
    print(
        f"\n## Significance, default interval vs exact paired test (n={n} x k={k}): "
        "% interval excludes 0 / % test p < 0.05 / % disagree"
    )
    print("icc  corr  gain | " + "  ".join(f"{100 * b:^14.1f}" for b in BASES))
    for line in agreement:
        print(line)


def main() -> None:
    """Parse options and print every table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", type=int, default=4_000, help="simulated datasets per cell")
    ap.add_argument("--resamples", type=int, default=2_000, help="bootstrap resamples (percentile, bca)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="1,000 datasets per cell, the two required sizes only")
    args = ap.parse_args()
    if min(args.datasets, args.resamples) < 1:
        ap.error("--datasets and --resamples must be positive")
    if args.quick:
        args.datasets = 1_000
    start = time.perf_counter()
    common = {"datasets": args.datasets, "resamples": args.resamples, "seed": args.seed}
    iccs = (0.1, 0.3, 0.5, 0.7, 0.9)
    unit_table(n=30, k=8, iccs=iccs, **common)
    binomial_table(sizes=(500,) if args.quick else (30, 40, 83, 500), resamples=args.resamples, seed=args.seed)
    if not args.quick:
        unit_table(n=83, k=8, iccs=(0.3, 0.7), **common)
        unit_table(n=500, k=4, iccs=(0.3, 0.7), **common)
    pair_table(n=30, k=8, iccs=(0.5, 0.7, 0.9) if not args.quick else (0.7,), correlations=(0.5, 0.8), **common)
    pair_table(n=500, k=1, iccs=(0.7,), correlations=(0.5, 0.8), **common)
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
