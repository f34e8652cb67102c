"""The load benchmark (``benchmarks/report_load.py``) at a small scale: the synthetic store it
builds is a valid store, ``rlvr-audit report`` runs on it and reports every unit, and the
script measures the child's memory. No timing is asserted (the full-size run is by hand)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pandas as pd
from reliability_helpers import ROOT

from rlvr_audit.core.store import Store


def load_benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("report_load", ROOT / "benchmarks" / "report_load.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_report_on_a_small_synthetic_store(tmp_path: Path) -> None:
    bench = load_benchmark()
    args = ["--families", "2", "--rewards", "1", "--templates", "2", "--problems", "30", "--samples", "2"]
    result = bench.main([*args, "--keep", str(tmp_path), "--", "--resamples", "200", "--no-browser"])
    units = 2 * 2 * 2
    assert result["samples"] == units * 30 * 2
    assert result["maxrss"] > 0 and result["tree_rss"] > 0
    store = Store(tmp_path / "store")
    assert len(store.unit_keys()) == units
    for key in store.unit_keys():
        assert len(store.read_generations(key)) == 60 and len(store.read_grades(key, "math_verify")) == 60
    estimates = pd.read_csv(tmp_path / "report" / "tables" / "estimates.csv")
    assert len(estimates) == units * 2  # avg@2 and pass@2 of every unit
    assert set(estimates["n_problems"]) == {30}
    comparisons = pd.read_csv(tmp_path / "report" / "tables" / "comparisons.csv")
    assert len(comparisons) == 2 * 2  # each family's RLVR checkpoint against its base, per template
