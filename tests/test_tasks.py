"""Task YAMLs: validation, problem loading from local files, lm-eval compatibility."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rlvr_audit.core.errors import ConfigError, UnknownNameError, UsageError
from rlvr_audit.core.tasks import DATA_DIR_ENV, available_tasks, data_hash, load_problems, load_task

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "benchmarks"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/benchmarks is not beside the project")

EXPECTED = {"math500": (500, 1, 0.0), "amc": (83, 8, 0.6), "aime24": (30, 8, 0.6), "aime25": (30, 8, 0.6)}


def test_every_task_has_the_papers_protocol() -> None:
    assert set(available_tasks(ROOT)) == {*EXPECTED, "synth_arith"}  # synth_arith: see test_synthetic.py
    for name, (size, n, temperature) in EXPECTED.items():
        spec = load_task(name, ROOT)
        p = spec.default_protocol()
        assert (spec.settings.expected_size, p.n, p.temperature, p.max_new_tokens) == (size, n, temperature, 3072)


@needs_data
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_problems_load_from_data_dir(name: str) -> None:
    problems = load_problems(load_task(name, ROOT), data_dir=DATA)
    assert len(problems) == EXPECTED[name][0]
    assert len({p.problem_id for p in problems}) == len(problems)
    assert all(p.question and p.answer for p in problems)


@needs_data
def test_answers_are_kept_verbatim_and_metadata_kept() -> None:
    aime25 = load_problems(load_task("aime25", ROOT), data_dir=DATA)
    assert aime25[0].answer == "070"
    math = load_problems(load_task("math500", ROOT), data_dir=DATA)
    assert math[0].answer == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert set(math[0].metadata) == {"subject", "level"}


@needs_data
def test_data_dir_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(DATA))
    assert len(load_problems(load_task("aime24", ROOT))) == 30


def test_missing_data_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="aime24.jsonl does not exist"):
        load_problems(load_task("aime24", ROOT), data_dir=tmp_path)


def test_wrong_size_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "aime24.jsonl").write_text('{"id": "a", "problem": "1+1?", "answer": "2"}\n')
    with pytest.raises(UsageError, match="1 problems, but task 'aime24' has 30"):
        load_problems(load_task("aime24", ROOT), data_dir=tmp_path)


def test_malformed_line_is_named(tmp_path: Path) -> None:
    (tmp_path / "aime24.jsonl").write_text('{"id": "a", "problem": "x", "answer": "2"}\n{oops\n')
    with pytest.raises(UsageError, match=r"aime24.jsonl:2: not valid JSON"):
        load_problems(load_task("aime24", ROOT), data_dir=tmp_path)


def test_unknown_task_lists_valid_ones() -> None:
    with pytest.raises(UnknownNameError, match="valid tasks: aime24, aime25, amc, math500, synth_arith"):
        load_task("gsm8k", ROOT)


def _copy_task(tmp_path: Path, mutate) -> Path:  # type: ignore[no-untyped-def]
    (tmp_path / "tasks").mkdir()
    data = yaml.safe_load((ROOT / "tasks" / "aime24.yaml").read_text())
    mutate(data)
    (tmp_path / "tasks" / "aime24.yaml").write_text(yaml.safe_dump(data))
    return tmp_path


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    cfg = _copy_task(tmp_path, lambda d: d["metadata"]["rlvr_audit"].update(id_feild="id"))
    with pytest.raises(ConfigError) as err:
        load_task("aime24", cfg)
    msg = str(err.value)
    assert "aime24.yaml" in msg and "metadata.rlvr_audit.id_feild" in msg and "unknown key" in msg
    assert "id_field" in msg  # the valid keys are listed


def test_wrong_type_names_expectation(tmp_path: Path) -> None:
    cfg = _copy_task(tmp_path, lambda d: d.update(repeats="eight"))
    with pytest.raises(ConfigError, match=r"aime24.yaml: repeats: .*integer"):
        load_task("aime24", cfg)


def test_contradictory_sampling_is_refused(tmp_path: Path) -> None:
    cfg = _copy_task(tmp_path, lambda d: d["generation_kwargs"].update(do_sample=False))
    with pytest.raises(ConfigError, match="do_sample"):
        load_task("aime24", cfg)


@needs_data
def test_data_hash_changes_with_an_answer() -> None:
    spec = load_task("aime24", ROOT)
    problems = load_problems(spec, data_dir=DATA)
    changed = [problems[0].model_copy(update={"answer": "205"}), *problems[1:]]
    assert data_hash(problems) != data_hash(changed)
    assert data_hash(problems) == data_hash(load_problems(spec, data_dir=DATA))


@needs_data
def test_task_yamls_load_as_lm_eval_tasks() -> None:
    """lm-eval users can run tasks/ with `lm_eval --include_path tasks` (datasets pointed at the
    local files here, since the Hub is not reachable in tests)."""
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=str(ROOT / "tasks"), include_defaults=False)
    assert set(EXPECTED) <= set(tm.all_tasks)
    for name, (size, repeats, _) in EXPECTED.items():
        cfg = yaml.safe_load((ROOT / "tasks" / f"{name}.yaml").read_text())
        cfg.update(dataset_path="json", dataset_kwargs={"data_files": {cfg["test_split"]: str(DATA / f"{name}.jsonl")}})
        task = tm.load([cfg])["tasks"][name]
        docs = list(task.eval_docs)
        assert len(docs) == size
        assert task.config.repeats == repeats
        assert task.doc_to_text(docs[0]) == docs[0]["problem"]
        assert str(task.doc_to_target(docs[0])) == str(docs[0]["answer"])
