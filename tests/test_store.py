"""The embedded store: round trips, torn last lines, corruption, duplicates, unit keys."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rlvr_audit.core.errors import StoreError
from rlvr_audit.core.records import CheckpointRef, Generation, Grade, SamplingProtocol, UnitSpec
from rlvr_audit.core.store import Store, UnitInfo


def spec(**changes: object) -> UnitSpec:
    base = dict(
        checkpoint=CheckpointRef(checkpoint_id="f/base", model="org/m", revision="main"),
        task="math500",
        data_hash="d" * 16,
        template_id="qwen_math_default",
        template_hash="t" * 16,
        protocol=SamplingProtocol(n=1, temperature=0.0, max_new_tokens=3072),
        backend="hf",
        engine_args={},
    )
    base.update(changes)
    return UnitSpec(**base)  # type: ignore[arg-type]


def gen(key: str, pid: str, idx: int = 0, text: str = "x") -> Generation:
    return Generation(
        unit_key=key,
        checkpoint_id="f/base",
        task="math500",
        problem_id=pid,
        template_id="t",
        sample_idx=idx,
        seed=1,
        prompt="p",
        prompt_hash="h",
        completion=text,
        finish_reason="stop",
        n_tokens=1,
        backend="hf",
    )


def test_unit_key_covers_everything_that_changes_generations() -> None:
    s = spec()
    variants = [
        spec(checkpoint=CheckpointRef(checkpoint_id="f/base", model="org/m", revision="abc123")),
        spec(data_hash="e" * 16),
        spec(template_hash="u" * 16),
        spec(task="aime24"),
        spec(protocol=SamplingProtocol(n=8, temperature=0.0, max_new_tokens=3072)),
        spec(protocol=SamplingProtocol(n=1, temperature=0.6, max_new_tokens=3072)),
        spec(protocol=SamplingProtocol(n=1, temperature=0.0, max_new_tokens=1024)),
        spec(protocol=SamplingProtocol(n=1, temperature=0.0, max_new_tokens=3072, seed=1)),
        spec(backend="vllm"),
        spec(engine_args={"dtype": "float32"}),
    ]
    keys = {v.key for v in variants}
    assert s.key not in keys and len(keys) == len(variants)
    assert spec().key == s.key


def test_engine_only_args_do_not_change_the_key() -> None:
    from rlvr_audit.generation.engines import key_args

    assert key_args({"batch_size": "16", "dtype": "bfloat16", "device": "cuda"}) == {"dtype": "bfloat16"}


def test_round_trip_and_dedupe(tmp_path: Path) -> None:
    store = Store(tmp_path)
    s = spec()
    store.ensure_unit(UnitInfo(key=s.key, spec=s))
    store.append_generations(s.key, [gen(s.key, "a"), gen(s.key, "b")])
    store.append_generations(s.key, [gen(s.key, "a", text="dup")])
    got = store.read_generations(s.key)
    assert [(g.problem_id, g.completion) for g in got] == [("a", "x"), ("b", "x")]
    assert store.unit_keys() == [s.key]
    grade = Grade(
        unit_key=s.key,
        problem_id="a",
        sample_idx=0,
        grader_id="math_verify",
        grader_version="1",
        extracted="1",
        verdict="correct",
    )
    store.append_grades(s.key, "math_verify", [grade])
    assert store.read_grades(s.key, "math_verify") == [grade]
    assert store.read_grades(s.key, "math_verify", "2") == []
    assert store.graders(s.key) == ["math_verify"]


def test_torn_last_line_is_repaired_not_lost(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = Store(tmp_path)
    s = spec()
    store.ensure_unit(UnitInfo(key=s.key, spec=s))
    store.append_generations(s.key, [gen(s.key, "a")])
    path = store.generations_path(s.key)
    torn = gen(s.key, "b").model_dump_json()[:40]
    with path.open("a") as fh:
        fh.write(torn)
    with caplog.at_level(logging.WARNING):
        got = store.read_generations(s.key)
    assert [g.problem_id for g in got] == ["a"]
    assert "torn" in caplog.text
    assert Path(str(path) + ".torn").read_text() == torn + "\n"
    store.append_generations(s.key, [gen(s.key, "b")])
    assert [g.problem_id for g in store.read_generations(s.key)] == ["a", "b"]


def test_garbage_line_in_the_middle_is_an_error_naming_the_line(tmp_path: Path) -> None:
    store = Store(tmp_path)
    s = spec()
    store.ensure_unit(UnitInfo(key=s.key, spec=s))
    store.append_generations(s.key, [gen(s.key, "a")])
    with store.generations_path(s.key).open("a") as fh:
        fh.write("not json\n")
    store.append_generations(s.key, [gen(s.key, "b")])
    with pytest.raises(StoreError, match=r"generations.jsonl:2: not a valid Generation record"):
        store.read_generations(s.key)


def test_unit_file_checks(tmp_path: Path) -> None:
    store = Store(tmp_path)
    s = spec()
    store.ensure_unit(UnitInfo(key=s.key, spec=s, family="f"))
    store.ensure_unit(UnitInfo(key=s.key, spec=s, family="g"))  # descriptive info may change
    assert store.load_unit(s.key).family == "g"
    other = spec(task="aime24")
    with pytest.raises(StoreError, match="different spec"):
        store.ensure_unit(UnitInfo(key=s.key, spec=other))
    with pytest.raises(StoreError, match="missing"):
        store.load_unit("0" * 16)
    path = store.unit_dir(s.key) / "unit.json"
    path.write_text(path.read_text().replace('"schema_version": 1', '"schema_version": 99'))
    with pytest.raises(StoreError, match="schema version 99"):
        store.load_unit(s.key)
