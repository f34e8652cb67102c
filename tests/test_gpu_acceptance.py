"""``benchmarks/gpu_acceptance.py`` without a GPU: its options, the comparison with the claims
ledger, the report it prints and its exit status, end to end with the scripted engine and with
the recording fake of vLLM (which also runs the bare ``LLM.generate`` timing path)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import fake_vllm
import pytest
from testbed import DATA, ROOT, needs_data


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_acceptance", ROOT / "benchmarks" / "gpu_acceptance.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


ga = load()


def ledger() -> object:
    from rlvr_audit import api as audit

    return audit.load_registry(audit.Locations(config_dir=ROOT)).ledger


def test_options() -> None:
    opts = ga.parse_args([])
    assert (opts.backend, opts.model, opts.max_overhead, opts.limit) == ("vllm", None, 1.05, None)
    for bad in (["--limit", "0"], ["--max-overhead", "0.9"], ["--backend"]):
        with pytest.raises(SystemExit) as exc:
            ga.parse_args(bad)
        assert exc.value.code == 2


def test_comparison_with_the_ledger() -> None:
    rows = ga.compare(
        [
            ga.Measured("math500", "paper", 36.0, 500, 1, 0.0),
            ga.Measured("math500", "math_verify", 70.0, 500, 1, 0.0),
            ga.Measured("aime24", "paper", 11.0, 30, 8, 0.6),
        ],
        ledger(),
    )
    ref = {(r.task, r.grader): r for r in rows if r.reference}
    assert set(ref) == {("math500", "paper"), ("aime24", "paper")}  # math_verify is shown, not checked
    math = ref[("math500", "paper")]
    # the paper's own greedy MATH-500 number (sr-greedy, qwen_math_default), not Sober's avg@3
    assert (math.claim, math.published) == ("pre.fig2.qwen2.5-math-1.5b.math500.step0", 35.0)
    assert math.interval == pytest.approx(100 * 1.959964 * (0.35 * 0.65 / 500) ** 0.5, abs=0.05) and math.holds
    aime = ref[("aime24", "paper")]
    assert aime.claim == "sober.table3.qwen2.5-math-1.5b.aime24" and aime.interval >= 1.96 * 3.6 and aime.holds
    far = ga.compare([ga.Measured("math500", "paper", 45.0, 500, 1, 0.0)], ledger())
    assert not next(r for r in far if r.reference).holds


def test_report_and_verdict() -> None:
    rows = ga.compare([ga.Measured("math500", "paper", 36.0, 500, 1, 0.0)], ledger())
    text, ok = ga.render(rows, ga.Timing(10.2, 10.0, 500, 500), max_overhead=1.05)
    assert ok and "overhead ratio 1.020 (target <= 1.05) ok" in text and text.endswith("ACCEPTED")
    text, ok = ga.render(rows, ga.Timing(11.0, 10.0, 499, 500), max_overhead=1.05)
    assert not ok and "1.100" in text and "FAIL" in text and text.endswith("NOT ACCEPTED")


@needs_data
def test_end_to_end_with_the_scripted_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An oracle right 35% of the time: MATH-500 matches the paper's 35.0, AIME 2024 does not
    match Sober's 11.3 (exit 1); no bare vLLM engine, so no overhead ratio."""
    argv = ["--backend", "scripted", "--model-args", "accuracy=0.35", "--data-dir", str(DATA), "--limit", "40"]
    code = ga.main([*argv, "--store", str(tmp_path / "s")])
    out = capsys.readouterr().out
    assert code == 1 and out.rstrip().endswith("NOT ACCEPTED")
    lines = {
        line.split()[0] + " " + line.split()[1]: line
        for line in out.splitlines()[1:]
        if " ok " in line or "FAIL" in line
    }
    assert " ok " in lines["math500 paper"] and "FAIL" in lines["aime24 paper"]
    assert "overhead: not measured" in out


@needs_data
def test_end_to_end_with_fake_vllm(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "vllm", fake_vllm.install())
    fake_vllm.FakeLLM.calls.clear()
    argv = ["--model", str(tiny_model_dir), "--data-dir", str(DATA), "--limit", "3", "--store", str(tmp_path / "s")]
    code = ga.main(argv)
    out = capsys.readouterr().out
    assert code == 1  # the fake does not solve MATH-500
    assert "identical samples 27/27" in out and "overhead ratio" in out  # 3 + 3 x 8 samples, each replayed
    assert len(fake_vllm.FakeLLM.calls) == 4 and len(fake_vllm.FakeLLM.instances) == 1  # 2 units, twice; one load
