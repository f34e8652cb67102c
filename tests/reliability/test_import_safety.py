"""Imports refuse what a store cannot hold, accept what real files hold, stream, leave nothing
behind when they fail, and keep sources apart (issue 13, items 4, 8, 9, 10 and 14).

Source files are built in tmp_path from real MATH-500 problems in the shapes the source tools
write; the real Qwen2.5-Math outputs in ``../shared/data/real_generations`` are imported too.
"""

from __future__ import annotations

import codecs
import errno
import json
import tracemalloc
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from reliability_helpers import DATA, ROOT, needs_data, one_line, write_registry
from typer.testing import CliRunner, Result

from rlvr_audit.cli import app
from rlvr_audit.core.errors import UsageError
from rlvr_audit.core.registry import Registry
from rlvr_audit.core.store import Store
from rlvr_audit.core.ui import make_progress
from rlvr_audit.importers import ImportOptions, core, plan_import, write_import

pytestmark = needs_data

REAL = ROOT.parent / "shared" / "data" / "real_generations" / "sky-t1"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def problems(n: int, task: str = "math500") -> list[dict[str, Any]]:
    return [json.loads(line) for line in (DATA / f"{task}.jsonl").read_text(encoding="utf-8").splitlines()[:n]]


def spurious(path: Path, probs: list[dict[str, Any]], *, k: int = 1, answer: str = "1", **top: Any) -> Path:
    meta = [
        {
            "prompt": f"<|im_start|>user\n{p['problem']}<|im_end|>\n<|im_start|>assistant\n",
            "label": p["answer"],
            "index": i,
            "outputs": [f"So $\\boxed{{{answer}}}$ ({j})." for j in range(k)],
        }
        for i, p in enumerate(probs)
    ]
    obj = {f"avg@{k}": 0.5, "dataset": "MATH-500", "model": "m", "temperature": 0.6, "rollouts": k, "metadata": meta}
    obj.update(top)
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def lm_eval(folder: Path, probs: list[dict[str, Any]], gen_kwargs: str) -> Path:
    """An lm-eval samples file whose generation arguments are ``gen_kwargs`` (raw JSON text)."""
    lines = []
    for doc_id, p in enumerate(probs):
        row = {
            "doc_id": doc_id,
            "doc": {"problem": p["problem"], "answer": p["answer"]},
            "target": p["answer"],
            "arguments": {"gen_args_0": {"arg_0": f"Problem: {p['problem']}\nAnswer:", "arg_1": "GEN"}},
            "resps": [[f"$\\boxed{{{p['answer']}}}$"]],
            "filtered_resps": [p["answer"]],
        }
        lines.append(json.dumps(row).replace('"GEN"', gen_kwargs))
    path = folder / "samples_math500_2025-06-01T10-20-30.123456.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def args(tmp: Path, fmt: str, *paths: Path, checkpoint: str = "toy/rl", extra: tuple[str, ...] = ()) -> list[str]:
    return [
        "import",
        fmt,
        *map(str, paths),
        "--checkpoint",
        checkpoint,
        "--quiet",
        *extra,
        "--store",
        str(tmp / "store"),
        "--config-dir",
        str(ROOT),
        "--registry",
        str(tmp / "checkpoints.yaml"),
        "--data-dir",
        str(DATA),
    ]


@pytest.fixture()
def tmp(tmp_path: Path) -> Path:
    write_registry(tmp_path)
    return tmp_path


# ---- 13.9: non-finite numbers ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("gen_kwargs", "message"),
    [
        ('{"temperature": Infinity, "do_sample": true}', "'temperature' must be a finite number, got inf"),
        ('{"temperature": NaN, "do_sample": true}', "'temperature' must be a finite number, got nan"),
        ('{"temperature": 0, "max_gen_toks": NaN}', "'max_gen_toks' must be a finite number, got nan"),
        ('{"temperature": 0, "max_gen_toks": Infinity}', "'max_gen_toks' must be a finite number, got inf"),
        ('{"temperature": 0, "max_gen_toks": 1e300}', "'max_gen_toks' must be a whole number in [1, 2147483647]"),
    ],
)
def test_non_finite_settings_in_an_lm_eval_file_are_refused_and_nothing_is_stored(
    tmp: Path, gen_kwargs: str, message: str
) -> None:
    """On main `"temperature": Infinity` was imported with exit 0 into a unit.json that could not
    be read back; NaN or inf as max_gen_toks crashed with a traceback."""
    path = lm_eval(tmp, problems(3), gen_kwargs)
    r = invoke(*args(tmp, "lm-eval-samples", path))
    assert r.exit_code == 2, r.output
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and str(path) in lines[0] and message in one_line(r.output), r.output
    assert not (tmp / "store").exists()


@pytest.mark.parametrize("option", [("--temperature", "inf"), ("--temperature", "nan"), ("--max-new-tokens", "0")])
def test_non_finite_import_options_are_refused(tmp: Path, option: tuple[str, str]) -> None:
    path = lm_eval(tmp, problems(3), '{"do_sample": false}')
    r = invoke(*args(tmp, "lm-eval-samples", path, extra=option))
    assert r.exit_code == 2 and option[0] in r.output, r.output
    assert not (tmp / "store").exists()


# ---- 13.14: a UTF-8 byte-order mark ------------------------------------------------------------
def test_files_with_a_utf8_byte_order_mark_are_imported_like_the_same_files_without(tmp: Path) -> None:
    probs = problems(4)
    plain = [spurious(tmp / "a.json", probs), lm_eval(tmp, probs, '{"do_sample": false}')]
    stored: dict[str, list[list[tuple[str, int, str]]]] = {}
    for bom in (False, True):
        for path, fmt in zip(plain, ("spurious-rewards-json", "lm-eval-samples"), strict=True):
            folder = tmp / f"bom-{bom}"
            folder.mkdir(exist_ok=True)
            copy = folder / path.name
            copy.write_bytes((codecs.BOM_UTF8 if bom else b"") + path.read_bytes())
            r = invoke(*args(tmp, fmt, copy, checkpoint=f"toy/bom-{bom}-{fmt}"))
            assert r.exit_code == 0, r.output
            s = Store(tmp / "store")
            unit = next(u for u in s.units() if u.spec.checkpoint.checkpoint_id == f"toy/bom-{bom}-{fmt}")
            gens = sorted((g.problem_id, g.sample_idx, g.completion) for g in s.read_generations(unit.key))
            stored.setdefault(fmt, []).append(gens)
    for fmt, (without, with_bom) in stored.items():
        assert without == with_bom and len(without) == 4, fmt


# ---- 13.10: streaming, and a failed import leaves nothing behind ---------------------------------
def _plan(tmp: Path, fmt: str, paths: list[Path], **options: Any) -> tuple[core.ImportPlan, Store]:
    store = Store(tmp / "store")
    with make_progress(False) as prog:
        plan = plan_import(
            fmt,
            paths,
            ImportOptions(**({"checkpoint": "toy/rl"} | options)),
            config_dir=ROOT,
            registry=Registry.load(tmp / "checkpoints.yaml"),
            store=store,
            data_dir=DATA,
            progress=prog,
        )
    return plan, store


def _write(plan: core.ImportPlan, store: Store) -> core.ImportResult:
    with make_progress(False) as prog:
        return write_import(plan, store, progress=prog)


@pytest.mark.parametrize(
    "failure", [MemoryError(), OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()]
)
def test_a_failed_import_leaves_nothing_behind(
    tmp: Path, monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    """On main a MemoryError while storing left an empty unit (unit.json, no samples) behind."""
    path = spurious(tmp / "a.json", problems(30), k=4)
    plan, store = _plan(tmp, "spurious-rewards-json", [path])
    monkeypatch.setattr(core, "BATCH", 25)
    calls = []
    real = Store.append_generations

    def failing(self: Store, key: str, generations: Any) -> int:
        calls.append(key)
        if len(calls) == 3:
            raise failure
        return real(self, key, generations)

    monkeypatch.setattr(Store, "append_generations", failing)
    with pytest.raises(type(failure)):
        _write(plan, store)
    assert len(calls) == 3  # two batches were stored, then taken back
    assert [p for p in (tmp / "store").rglob("*") if p.is_file() and p.parent.name != "runs"] == []
    assert Store(tmp / "store").units() == []


def test_a_failed_import_into_a_stored_unit_takes_back_only_its_own_samples(
    tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    probs = problems(40)
    first = spurious(tmp / "s0.json", probs[:20], k=2)
    r = invoke(*args(tmp, "spurious-rewards-json", first))
    assert r.exit_code == 0, r.output
    (unit_dir,) = (tmp / "store" / "units").iterdir()
    before = {p.name: p.read_bytes() for p in unit_dir.iterdir() if p.is_file()}
    second = spurious(tmp / "s1.json", probs[20:], k=2)  # a further shard: goes into the same unit
    plan, store = _plan(tmp, "spurious-rewards-json", [second])
    assert [u.extends for u in plan.units] == ["shards"]
    monkeypatch.setattr(core, "BATCH", 10)
    real = Store.append_generations
    calls = []

    def failing(self: Store, key: str, generations: Any) -> int:
        calls.append(key)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, key, generations)

    monkeypatch.setattr(Store, "append_generations", failing)
    with pytest.raises(OSError):
        _write(plan, store)
    assert {p.name: p.read_bytes() for p in unit_dir.iterdir() if p.is_file()} == before


def test_a_file_changed_between_reading_and_storing_stops_the_import(tmp: Path) -> None:
    path = spurious(tmp / "a.json", problems(6))
    plan, store = _plan(tmp, "spurious-rewards-json", [path])
    spurious(path, problems(6), answer="2")  # same shape, other completions
    with pytest.raises(UsageError, match="changed while it was being imported"):
        _write(plan, store)
    assert Store(tmp / "store").units() == [] and not list((tmp / "store").glob("problems/*"))


def _peak_bytes(tmp: Path, name: str, k: int) -> int:
    path = spurious(tmp / f"{name}.json", problems(100), k=k)
    tracemalloc.start()
    try:
        plan, store = _plan(tmp, "spurious-rewards-json", [path], checkpoint=f"toy/{name}")
        _write(plan, store)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_import_memory_does_not_grow_with_the_number_of_samples(tmp: Path) -> None:
    """Memory is bounded by a batch and one item, not the file: 4x the samples (100 problems x 100
    vs x 400 short completions) must not need anywhere near 4x the memory (on main it did: every
    record was built before the first was stored). `benchmarks/import_memory.py` measures the
    process's peak at up to 2,000,000 samples."""
    small = _peak_bytes(tmp, "small", 100)
    large = _peak_bytes(tmp, "large", 400)
    assert large < 1.6 * small, (small, large)


# ---- 13.4 (import side): shards in two commands, two sources of one checkpoint -------------------
def test_shards_imported_in_two_commands_are_one_unit_and_another_source_is_a_distinct_labelled_unit(
    tmp: Path,
) -> None:
    probs = problems(20)
    a = spurious(tmp / "shard0" / "out.json", probs[:10]) if (tmp / "shard0").mkdir() is None else None
    b = spurious(tmp / "shard1" / "out.json", probs[10:]) if (tmp / "shard1").mkdir() is None else None
    assert a is not None and b is not None
    for path in (a, b, b):  # the second shard, then the same shard again
        r = invoke(*args(tmp, "spurious-rewards-json", path))
        assert r.exit_code == 0, r.output
    assert "already stored in this unit" in one_line(r.output)
    store = Store(tmp / "store")
    (unit,) = store.units()
    assert unit.imported is not None and unit.imported.files == [str(a), str(b)]
    assert unit.imported.label == "shard0/out.json, shard1/out.json"
    assert len(store.read_generations(unit.key)) == 20
    # a re-run of the first half (other completions): another source, its own unit
    rerun = spurious(tmp / "rerun.json", probs[:10], answer="7")
    r = invoke(*args(tmp, "spurious-rewards-json", rerun))
    assert r.exit_code == 0, r.output
    units = {u.key: u for u in Store(tmp / "store").units()}
    assert len(units) == 2
    r = invoke("ls", "units", "--format", "json", "--store", str(tmp / "store"), "--config-dir", str(ROOT))
    backends = sorted(row["backend"] for row in json.loads(r.output))
    assert backends == [
        "import:spurious-rewards-json (shard0/out.json, shard1/out.json)",
        f"import:spurious-rewards-json ({tmp.name}/rerun.json)",
    ]


# ---- 13.8 (record side): truncation of imported units is unknown -------------------------------
def test_imported_units_report_truncation_as_unknown_not_zero(tmp: Path) -> None:
    """The source recorded no finish reason or token count: the behaviour table showed 0.0 [0.0, 0.0]."""
    path = REAL / "Sky-T1-math-correct-5K-14B.amc23.jsonl"
    r = invoke(*args(tmp, "qwen-math-jsonl", path, extra=("--temperature", "0", "--max-new-tokens", "32768")))
    assert r.exit_code == 0, r.output
    (unit,) = Store(tmp / "store").units()
    assert unit.imported is not None and unit.imported.truncation_known is False
    common = ["--store", str(tmp / "store"), "--config-dir", str(ROOT), "--quiet"]
    assert invoke("grade", "--graders", "boxed_strict", "--workers", "1", *common).exit_code == 0
    r = invoke("report", "--resamples", "200", "--no-browser", "--report-dir", str(tmp / "r"), *common)
    assert r.exit_code == 0, r.output
    flags = pd.read_csv(tmp / "r" / "tables" / "behaviour_flags.csv")
    assert flags["truncation_rate"].isna().all() and not flags["repetition_rate"].isna().any()
    index = (tmp / "r" / "index.md").read_text()
    table = index[index.index("| Truncated (%)") :]
    row = next(line for line in table.splitlines() if line.startswith("| toy/rl | amc"))
    assert row.split(" | ")[4] == "unknown", row


# ---- 13.4 (report side): two imports of one base are two labelled rows, gains pair one of them -----
def test_two_imports_of_a_base_are_two_labelled_rows_and_the_ambiguous_pairing_one_warning(tmp: Path) -> None:
    """On main the reproduction table kept one of the two base imports (silently) and a gain could
    sit in a row of the other one's numbers ("base 87.5, rl 17.5, +10.0 vs base" matching neither)."""
    probs = problems(8)
    (tmp / "first").mkdir()
    (tmp / "rerun").mkdir()
    first = spurious(tmp / "first" / "base.json", probs, answer="1")
    rerun = spurious(tmp / "rerun" / "base.json", probs, answer="2")
    rl = spurious(tmp / "rl.json", probs, answer="3")
    for path, checkpoint in ((first, "toy/base"), (rerun, "toy/base"), (rl, "toy/rl")):
        r = invoke(*args(tmp, "spurious-rewards-json", path, checkpoint=checkpoint))
        assert r.exit_code == 0, r.output
    store = Store(tmp / "store")
    assert len(store.units()) == 3
    common = ["--store", str(tmp / "store"), "--config-dir", str(ROOT), "--quiet"]
    assert invoke("grade", "--graders", "boxed_strict", "--workers", "1", *common).exit_code == 0
    r = invoke("report", "--resamples", "200", "--no-browser", "--report-dir", str(tmp / "r"), *common)
    assert r.exit_code == 0, r.output
    warnings = [line for line in r.output.splitlines() if "fit equally" in line]
    keys = {u.imported.label if u.imported else "": u.key for u in store.units()}
    assert len(warnings) == 1, r.output
    assert keys["first/base.json"] in warnings[0] and keys["rerun/base.json"] in warnings[0]
    index = (tmp / "r" / "index.md").read_text()
    table = index[index.index("## Reproduction table") :].split("\n## ", 1)[0]
    names = [line.split(" | ")[0].lstrip("| ") for line in table.splitlines() if "`imported`" in line]
    assert names == ["base (source first/base.json)", "base (source rerun/base.json)", "rl (random, step 50)"]
    est = pd.read_csv(tmp / "r" / "tables" / "estimates.csv")
    comp = pd.read_csv(tmp / "r" / "tables" / "comparisons.csv")
    (c,) = comp.itertuples()
    base_value = est.set_index("unit_key").loc[c.baseline_unit, "value"]
    assert c.baseline_value == pytest.approx(base_value)  # the gain is of the units it names, nothing else
