"""Progress that moves: per sample (scripted engine, vLLM's finished requests) or per decoding step
inside a batch (hf), with samples/s and an ETA on the bar."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.progress import Progress, TaskID
from testbed import DATA, ROOT, needs_data

from rlvr_audit import api as audit
from rlvr_audit.core.ui import make_progress
from rlvr_audit.generation.plan import ProtocolOverrides, Selection

pytestmark = needs_data


class Recording(Progress):
    """A silent progress display that remembers every ``completed`` value of every task."""

    def __init__(self) -> None:
        super().__init__(disable=True)
        self.seen: list[float] = []

    def update(self, task_id: TaskID, **kwargs: Any) -> None:  # type: ignore[override]
        super().update(task_id, **kwargs)
        if "completed" in kwargs:
            self.seen.append(float(kwargs["completed"]))


def generate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, checkpoint: str, **engine: Any) -> Recording:
    rec = Recording()
    monkeypatch.setattr(audit, "make_progress", lambda enabled=True: rec)
    audit.generate(
        Selection(checkpoints=[checkpoint], tasks=["math500"], prompts=["no_template"], include_bases=False),
        ProtocolOverrides(max_new_tokens=24, temperature=1.0),
        audit.EngineOptions(limit=5, **engine),
        audit.Locations(config_dir=ROOT, store=tmp_path / "store", data_dir=DATA),
    )
    return rec


def test_scripted_engine_moves_per_sample(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_model_dir: Path
) -> None:
    rec = generate(monkeypatch, tmp_path, str(tiny_model_dir), backend="scripted", model_args={"accuracy": "0.5"})
    assert sorted(set(rec.seen)) == [1.0, 2.0, 3.0, 4.0, 5.0]  # one step per sample, though stored at once


def test_hf_batch_moves_before_it_returns(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_model_dir: Path
) -> None:
    rec = generate(
        monkeypatch,
        tmp_path,
        str(tiny_model_dir),
        backend="hf",
        model_args={"dtype": "float32"},
        batch_size=5,
        device="cpu",
    )
    inside = [v for v in rec.seen if 0 < v < 5]
    assert len(set(inside)) >= 10  # the only batch of 5 moved at every decoding step
    assert inside == sorted(inside) and rec.seen[-1] == 5.0


def test_bar_shows_rate_and_eta() -> None:
    progress = make_progress(True)
    task = progress.add_task("generating", total=100, unit="samples")
    for done in (10, 20, 30):
        progress.update(task, completed=done)
    console = Console(record=True, width=200, force_terminal=True)
    console.print(progress.make_tasks_table(progress.tasks))
    text = console.export_text()
    assert "30/100" in text and "samples/s" in text and "-:--:--" not in text
