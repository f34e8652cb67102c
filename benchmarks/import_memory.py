"""Memory: peak resident memory of ``rlvr-audit import`` against the size of the imported file.

An import streams its files (see :mod:`rlvr_audit.importers`): memory must stay bounded whatever
the number of samples (target: 2,000,000 short samples under 500 MB peak). Before streaming, a
14 MB file of 1,000,000 short samples took 3 GB and 2,000,000 failed with ``MemoryError``.

For each sample count, the script writes one file in the paper's ``eval_checkpoint.py`` format
(``spurious-rewards-json``: one JSON object; MATH-500's 500 problems, ``k = samples / 500``
short completions each, a shape that maximises samples per byte), or with ``--format
qwen-math-jsonl`` Qwen's JSON lines, then runs ``rlvr-audit import`` on it in a child process
(a fresh store each time) and prints the child's peak resident memory (``ru_maxrss``), the file
size, the time, and each peak as a ratio to the first (smallest) one: flat ratios mean memory
does not grow with the file. Run::

    python benchmarks/import_memory.py                          # 250k, 1M and 2M samples
    python benchmarks/import_memory.py --samples 100000,400000 --format qwen-math-jsonl

Needs ``../shared/data/benchmarks/math500.jsonl`` (or ``--data-dir``). Each run writes the store
in a temporary folder (about 0.5 kB per sample: every generation record repeats its prompt).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "benchmarks"
REGISTRY = "families:\n  toy:\n    display_name: Toy\n    checkpoints:\n      base:\n        model: org/toy-base\n"

CHILD = """
import resource, sys
from rlvr_audit.cli import main
sys.argv = ["rlvr-audit", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("MAXRSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def write_source(folder: Path, fmt: str, problems: list[dict[str, str]], k: int) -> Path:
    """A source file of ``len(problems) * k`` short samples (streamed to disk, not built in memory)."""
    if fmt == "spurious-rewards-json":
        path = folder / "model_MATH-500.json"
        with path.open("w", encoding="utf-8") as fh:
            fh.write(f'{{"avg@{k}": 0.5, "dataset": "MATH-500", "model": "m", "temperature": 0.6, ')
            fh.write(f'"rollouts": {k}, "metadata": [')
            for i, p in enumerate(problems):
                outputs = [f"\\boxed{{{j % 10}}}" for j in range(k)]
                prompt = f"<|im_start|>user\n{p['problem']}<|im_end|>\n<|im_start|>assistant\n"
                item = {"prompt": prompt, "label": p["answer"], "index": i, "outputs": outputs}
                fh.write(("," if i else "") + json.dumps(item))
            fh.write("]}")
        return path
    out = folder / "math500"
    out.mkdir()
    path = out / "test_qwen25-math-cot_-1_seed0_t0.6_s0_e-1.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for i, p in enumerate(problems):
            code = [f"\\boxed{{{j % 10}}}" for j in range(k)]
            row = {"idx": i, "question": p["problem"], "gt": p["answer"], "code": code, "score": [False] * k}
            fh.write(json.dumps(row) + "\n")
    return path


def measure(fmt: str, samples: int, data_dir: Path, problems: list[dict[str, str]]) -> tuple[int, float, float]:
    """(peak RSS in kB, file MB, seconds) of one import in a child process."""
    k = max(1, samples // len(problems))
    with tempfile.TemporaryDirectory(prefix="rlvr-import-mem-") as tmp:
        folder = Path(tmp)
        (folder / "checkpoints.yaml").write_text(REGISTRY, encoding="utf-8")
        path = write_source(folder, fmt, problems, k)
        size_mb = path.stat().st_size / 1e6
        args = [
            "import", fmt, str(path), "--checkpoint", "toy/imported", "--quiet", "--max-new-tokens", "3072",
            "--store", str(folder / "store"), "--config-dir", str(ROOT), "--registry", str(folder / "checkpoints.yaml"),
            "--data-dir", str(data_dir),
        ]  # fmt: skip
        start = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if res.returncode != 0:
            raise SystemExit(f"import of {samples} samples failed:\n{res.stdout}\n{res.stderr}")
        peak = next(int(line.split()[1]) for line in res.stderr.splitlines() if line.startswith("MAXRSS_KB"))
        stored = sum(1 for _ in (folder / "store").glob("units/*/generations.jsonl"))
        assert stored == 1, "the import stored no unit"
        shutil.rmtree(folder / "store")
    return peak, size_mb, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", default="250000,1000000,2000000", help="comma-separated sample counts")
    ap.add_argument("--format", default="spurious-rewards-json", choices=["spurious-rewards-json", "qwen-math-jsonl"])
    ap.add_argument("--data-dir", type=Path, default=DATA)
    a = ap.parse_args()
    problems = [json.loads(line) for line in (a.data_dir / "math500.jsonl").read_text(encoding="utf-8").splitlines()]
    counts = [int(x) for x in a.samples.split(",")]
    print(f"rlvr-audit import {a.format}: peak resident memory of the importing process against file size")
    print(f"{'samples':>10} {'file MB':>9} {'peak MB':>9} {'seconds':>8} {'peak / first':>13}")
    first: int | None = None
    for n in counts:
        peak, size_mb, seconds = measure(a.format, n, a.data_dir, problems)
        first = first or peak
        print(f"{n:>10,} {size_mb:>9.1f} {peak / 1024:>9.0f} {seconds:>8.1f} {peak / first:>13.2f}", flush=True)
    print("target: 2,000,000 samples under 500 MB peak; before streaming, 1,000,000 took 3 GB")


if __name__ == "__main__":
    main()
