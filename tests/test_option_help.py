"""One wording per option (issue 21): an option that several commands take reads the same in
each command's ``--help``, and that wording is :data:`~rlvr_audit.core.option_help.OPTION_HELP`'s."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import typer
from typer.testing import CliRunner

from rlvr_audit.cli import app
from rlvr_audit.core.option_help import OPTION_HELP


def commands(cmd: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Every leaf command under ``cmd`` by its path (``("train", "plan")``)."""
    if not hasattr(cmd, "list_commands"):
        return {path: cmd}
    ctx = cmd.context_class(cmd)
    found: dict[tuple[str, ...], Any] = {}
    for name in cmd.list_commands(ctx):
        found |= commands(cmd.get_command(ctx, name), (*path, name))
    return found


def option_helps() -> dict[str, dict[str, list[str]]]:
    """Option name -> help text -> the commands that show it."""
    helps: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path, cmd in commands(typer.main.get_command(app)).items():
        for param in cmd.params:
            if getattr(param, "param_type_name", "") == "option" and not param.hidden:
                helps[param.opts[0]][param.help or ""].append(" ".join(path))
    return helps


def test_an_option_reads_the_same_under_every_command() -> None:
    helps = option_helps()
    walked = commands(typer.main.get_command(app))
    assert {("train", "plan"), ("simulate", "clipping"), ("task", "synth"), ("run",)} <= set(walked)
    shared = {opt for opt, by_text in helps.items() if sum(len(c) for c in by_text.values()) > 1}
    assert {"--store", "--quiet", "--seed", "--registry", "--config-dir"} <= shared
    differing = {opt: dict(by_text) for opt, by_text in helps.items() if len(by_text) > 1}
    assert not differing, differing
    assert shared <= set(OPTION_HELP), sorted(shared - set(OPTION_HELP))  # every shared option has its one wording
    for opt, by_text in helps.items():
        if opt in OPTION_HELP:
            assert set(by_text) == {OPTION_HELP[opt]}, (opt, dict(by_text))


def test_the_shared_wording_is_what_help_prints() -> None:
    for command in (["run"], ["train", "plan"], ["probe", "contamination"]):
        r = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "400", "NO_COLOR": "1"})
        assert r.exit_code == 0, r.output
        text = " ".join(r.output.replace("│", " ").split())
        assert "No progress bars." in text and OPTION_HELP["--registry"] in text, command
