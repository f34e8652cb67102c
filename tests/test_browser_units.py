"""``--browser units=GLOB[,GLOB...]``: per-sample browser pages for chosen units only, the report's
wording for the others, one-line usage errors that write nothing, and the same bytes whether the
pages are written by one process or by a pool of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from testbed import DATA, ROOT, needs_data
from testbed import TOY_REGISTRY as REGISTRY
from typer.testing import CliRunner

from rlvr_audit.analysis.estimates import Analysis
from rlvr_audit.cli import app
from rlvr_audit.core.errors import UsageError
from rlvr_audit.core.records import CheckpointRef, Comparison, Generation, Grade, Problem, SamplingProtocol, UnitSpec
from rlvr_audit.core.store import Store, UnitInfo
from rlvr_audit.report import browser
from rlvr_audit.report.browser import (
    NOT_WRITTEN,
    browser_section,
    parse_browser_units,
    select_units,
    unit_names,
    write_browser,
)

GRADER = "toy_grader"


def _unit(store: Store, checkpoint: str, problems: list[Problem], *, base: str | None = None) -> UnitInfo:
    spec = UnitSpec(
        checkpoint=CheckpointRef(checkpoint_id=checkpoint, model=f"org/{checkpoint}"),
        task="toy",
        data_hash="d" * 16,
        template_id="no_template",
        template_hash="t" * 16,
        protocol=SamplingProtocol(n=2, temperature=0.6, max_new_tokens=64),
        backend="scripted",
    )
    info = UnitInfo(key=spec.key, spec=spec, family="toy", base=base, n_problems_total=len(problems))
    store.ensure_unit(info)
    store.save_problems(spec.data_hash, problems)
    return info


def _fill(store: Store, info: UnitInfo, problems: list[Problem], shift: int) -> None:
    gens, grades = [], []
    for j, p in enumerate(problems):
        for i in range(2):
            ok = (j + i + shift) % 3 == 0
            gens.append(
                Generation(
                    unit_key=info.key,
                    checkpoint_id=info.spec.checkpoint.checkpoint_id,
                    task="toy",
                    problem_id=p.problem_id,
                    template_id="no_template",
                    sample_idx=i,
                    seed=i,
                    prompt=f"Q {p.problem_id}",
                    prompt_hash="h",
                    completion=f"answer {'right' if ok else 'wrong'}\n```python\nprint({j})\n```\n",
                    finish_reason="stop",
                    backend="scripted",
                )
            )
            grades.append(
                Grade(
                    unit_key=info.key,
                    problem_id=p.problem_id,
                    sample_idx=i,
                    grader_id=GRADER,
                    grader_version="1",
                    extracted="1" if ok else "2",
                    verdict="correct" if ok else "incorrect",
                )
            )
    store.append_generations(info.key, gens)
    store.append_grades(info.key, GRADER, grades)


def _comparison(base: UnitInfo, rl: UnitInfo) -> Comparison:
    return Comparison(
        baseline=base.spec.checkpoint.checkpoint_id,
        treatment=rl.spec.checkpoint.checkpoint_id,
        baseline_unit=base.key,
        treatment_unit=rl.key,
        task="toy",
        template_id="no_template",
        grader_id=GRADER,
        metric="mean@2",
        baseline_value=0.3,
        treatment_value=0.4,
        delta=0.1,
        ci_low=-0.1,
        ci_high=0.3,
        level=0.95,
        method="wilson",
        n_problems=7,
        seed=0,
    )


@pytest.fixture
def toy(tmp_path: Path) -> dict[str, Any]:
    """toy/base, toy/rl (compared with toy/base) and other/rl on 7 problems, page size 3."""
    store = Store(tmp_path / "store")
    problems = [Problem(task="toy", problem_id=f"p{i}", question=f"What is {i}?", answer="1") for i in range(7)]
    base = _unit(store, "toy/base", problems)
    rl = _unit(store, "toy/rl", problems, base="toy/base")
    other = _unit(store, "other/rl", problems)
    for shift, info in enumerate((base, rl, other)):
        _fill(store, info, problems, shift)
    analysis = Analysis(
        units=[rl, other], matrices={}, estimates=[], comparisons=[_comparison(base, rl)], graders=[GRADER]
    )
    return {"store": store, "analysis": analysis, "base": base, "rl": rl, "other": other, "tmp": tmp_path}


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("value", "globs"),
    [("all", None), ("units=toy/*", ("toy/*",)), ("units=toy/rl, other/*", ("toy/rl", "other/*"))],
)
def test_parse_browser_units(value: str, globs: tuple[str, ...] | None) -> None:
    assert parse_browser_units(value) == globs


@pytest.mark.parametrize("value", ["foo", "units=", "units=a,,b", "unit=a", "", "ALL"])
def test_bad_browser_values_name_the_valid_ones_in_one_line(value: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_browser_units(value)
    message = str(err.value)
    assert "\n" not in message and "--browser all" in message and "units=GLOB" in message


def test_globs_match_key_checkpoint_or_label(toy: dict[str, Any]) -> None:
    units = [toy["rl"], toy["other"], toy["base"]]
    assert unit_names(toy["rl"]) == (toy["rl"].key, "toy/rl", "toy/rl · toy · no_template")
    assert select_units(units, None) == {u.key for u in units}
    assert select_units(units, ["toy/*"]) == {toy["rl"].key, toy["base"].key}
    assert select_units(units, [toy["other"].key[:6] + "*"]) == {toy["other"].key}
    assert select_units(units, ["* · toy · no_template"]) == {u.key for u in units}
    assert select_units(units, ["other/rl", "toy/base"]) == {toy["other"].key, toy["base"].key}
    with pytest.raises(UsageError, match=r"units='toy/RL' matches no unit.*checkpoints: toy/rl, other/rl, toy/base"):
        select_units(units, ["toy/*", "toy/RL"])  # case-sensitive, and every glob must match


def test_only_chosen_units_get_pages_and_the_others_say_so(toy: dict[str, Any]) -> None:
    out = toy["tmp"] / "samples"
    pages = write_browser(toy["store"], toy["analysis"], out, page_size=3, units=["toy/rl"], workers=1)
    assert [(p.unit.key, p.written) for p in pages] == [
        (toy["rl"].key, True),
        (toy["other"].key, False),
        (toy["base"].key, False),
    ]
    assert sorted(p.name for p in out.iterdir()) == [toy["rl"].key]
    assert (pages[0].n_samples, pages[0].n_pages) == (14, 5)
    # the base has no pages: no link to it from the unit's index or pages, but the flips are still there
    index = (out / toy["rl"].key / "index.html").read_text()
    assert toy["base"].key not in index.replace(f"<code>{toy['rl'].key}</code>", "")
    assert NOT_WRITTEN in index
    page = (out / toy["rl"].key / "page-0001.html").read_text()
    assert "base-link" not in page and 'data-f="' in page and 'data-f=""' not in page
    section = browser_section(pages)
    assert section.count(NOT_WRITTEN) == 2
    assert section.count('class="browse"') == 1 and f'href="samples/{toy["rl"].key}/index.html"' in section
    assert f"samples/{toy['other'].key}" not in section and f"samples/{toy['base'].key}" not in section


def test_with_the_base_chosen_too_the_links_to_it_are_back(toy: dict[str, Any]) -> None:
    out = toy["tmp"] / "samples"
    pages = write_browser(toy["store"], toy["analysis"], out, page_size=3, units=["toy/*"], workers=1)
    assert [p.written for p in pages] == [True, False, True]
    page = (out / toy["rl"].key / "page-0001.html").read_text()
    assert f'class="base-link" href="../{toy["base"].key}/page-0001.html#p0-s0"' in page
    assert f'href="../{toy["base"].key}/index.html"' in (out / toy["rl"].key / "index.html").read_text()


def test_a_glob_that_matches_nothing_writes_nothing(toy: dict[str, Any]) -> None:
    out = toy["tmp"] / "samples"
    with pytest.raises(UsageError, match="matches no unit"):
        write_browser(toy["store"], toy["analysis"], out, page_size=3, units=["toy/rl", "nope*"], workers=1)
    assert not out.exists()


@pytest.mark.parametrize("units", [None, ["toy/rl", "toy/base"]])
def test_a_process_pool_writes_the_same_bytes_as_one_process(toy: dict[str, Any], units: list[str] | None) -> None:
    serial = write_browser(toy["store"], toy["analysis"], toy["tmp"] / "serial", page_size=3, units=units, workers=1)
    pooled = write_browser(toy["store"], toy["analysis"], toy["tmp"] / "pooled", page_size=3, units=units, workers=2)
    assert [(p.unit.key, p.written, p.n_samples, p.n_pages, p.graders, p.base) for p in serial] == [
        (p.unit.key, p.written, p.n_samples, p.n_pages, p.graders, p.base) for p in pooled
    ]
    a, b = _files(toy["tmp"] / "serial"), _files(toy["tmp"] / "pooled")
    assert len(a) == (3 if units is None else 2) * 6  # index + 5 pages per written unit
    assert a == b
    assert browser_section(serial) == browser_section(pooled)


def test_workers_none_uses_a_pool_only_for_big_units(toy: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    pools: list[int] = []

    class Counted(browser.ProcessPoolExecutor):
        def __init__(self, max_workers: int) -> None:
            pools.append(max_workers)
            super().__init__(max_workers=max_workers)

    monkeypatch.setattr(browser, "ProcessPoolExecutor", Counted)
    monkeypatch.setattr(browser, "_cpus", lambda: 4)
    write_browser(toy["store"], toy["analysis"], toy["tmp"] / "small", page_size=3)
    assert pools == []  # a few kilobytes of generations: written in this process
    monkeypatch.setattr(browser, "PARALLEL_MIN_BYTES", 0)
    write_browser(toy["store"], toy["analysis"], toy["tmp"] / "big", page_size=3)
    assert pools == [3]  # one process per unit, at most one per CPU
    assert _files(toy["tmp"] / "small") == _files(toy["tmp"] / "big")


# --------------------------------------------------------------------------------------
# The CLI: `report --browser ...` over a scripted run
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """toy/rl and its base toy/base on 4 MATH-500 problems, scripted and graded by boxed_strict."""
    if not DATA.is_dir():
        pytest.skip("../shared/data/benchmarks is not beside the project")
    tmp = tmp_path_factory.mktemp("browser-units")
    rows = [json.loads(line) for line in (DATA / "math500.jsonl").read_text().splitlines()[:4]]
    script = {
        "toy/base": {r["id"]: f"$\\boxed{{{r['answer'] if i % 2 else 0}}}$" for i, r in enumerate(rows)},
        "toy/rl": {r["id"]: f"$\\boxed{{{r['answer']}}}$" for r in rows},
    }
    (tmp / "script.json").write_text(json.dumps(script))
    (tmp / "checkpoints.yaml").write_text(REGISTRY)
    args = ["--config-dir", str(ROOT), "--registry", str(tmp / "checkpoints.yaml"), "--store", str(tmp / "store")]
    r = CliRunner().invoke(
        app,
        [
            "run",
            "--backend",
            "scripted",
            "--model-args",
            f"script={tmp / 'script.json'}",
            "--checkpoints",
            "toy/rl",
            "--tasks",
            "math500",
            "--limit",
            "4",
            "--graders",
            "boxed_strict",
            "--resamples",
            "200",
            "--no-browser",
            "--report-dir",
            str(tmp / "first"),
            "--quiet",
            "--data-dir",
            str(DATA),
            *args,
        ],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    units = {u.spec.checkpoint.checkpoint_id: u for u in Store(tmp / "store").units()}
    return {"tmp": tmp, "args": args, "units": units}


def _report(stored: dict[str, Any], folder: str, *extra: str) -> Any:
    return CliRunner().invoke(
        app,
        ["report", "--resamples", "200", "--quiet", "--report-dir", str(stored["tmp"] / folder), *extra]
        + stored["args"],
    )


@needs_data
def test_report_browser_units_writes_only_the_chosen_units(stored: dict[str, Any]) -> None:
    rl, base = stored["units"]["toy/rl"], stored["units"]["toy/base"]
    r = _report(stored, "chosen", "--browser", "units=toy/rl")
    assert r.exit_code == 0, r.output
    report = stored["tmp"] / "chosen"
    assert sorted(p.name for p in (report / "samples").iterdir()) == [rl.key]
    text = (report / "index.html").read_text()
    assert f'href="samples/{rl.key}/index.html"' in text and f"samples/{base.key}" not in text
    assert text.count(NOT_WRITTEN) == 1
    r = _report(stored, "every", "--browser", "all")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (stored["tmp"] / "every" / "samples").iterdir()) == sorted([rl.key, base.key])
    assert NOT_WRITTEN not in (stored["tmp"] / "every" / "index.html").read_text()
    r = _report(stored, "none", "--no-browser")
    assert r.exit_code == 0, r.output
    assert not (stored["tmp"] / "none" / "samples").exists()


@needs_data
@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--browser", "foo"], "unknown --browser 'foo'"),
        (["--browser", "units="], "empty glob"),
        (["--browser", "units=toy/rl,nope*"], "units='nope*' matches no unit"),
        (["--no-browser", "--browser", "units=toy/rl"], "contradict"),
    ],
)
def test_bad_browser_values_exit_2_and_write_nothing(stored: dict[str, Any], extra: list[str], said: str) -> None:
    r = _report(stored, "bad", *extra)
    assert r.exit_code == 2, r.output
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and said in lines[0], r.output
    assert "valid: --browser all" in lines[0] or "contradict" in lines[0]
    assert not (stored["tmp"] / "bad").exists()
    assert not list(stored["tmp"].glob(".bad.build-*"))
