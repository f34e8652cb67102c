"""Prompt templates: verbatim texts, rendering, chat-template handling."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rlvr_audit.core.errors import ConfigError, UnknownNameError, UsageError
from rlvr_audit.core.prompts import available_prompts, load_prompt, render
from rlvr_audit.core.records import Problem

ROOT = Path(__file__).resolve().parents[1]
CLAIMS = ROOT.parent / "shared" / "reference" / "claims.yaml"

ALL = {
    "qwen_math_default",
    "model_default",
    "no_template",
    "r1_think",
    "math_problem",
    "simplerl_zoo",
    "sober",
    "lipsum",
    "code_forcing",
}


class ChatML:
    """A tokenizer stand-in with Qwen's ChatML chat template."""

    chat_template = "chatml"

    def apply_chat_template(self, conversation, **kwargs):  # type: ignore[no-untyped-def]
        text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in conversation)
        return text + "<|im_start|>assistant\n"


PROBLEM = Problem(task="t", problem_id="p1", question="Compute $\\frac{1}{2} + {x}$ for {question}.", answer="1")


def test_all_templates_exist_and_validate() -> None:
    assert set(available_prompts(ROOT)) == ALL
    hashes = {load_prompt(n, ROOT).template_hash for n in ALL}
    assert len(hashes) == len(ALL)


@pytest.mark.skipif(not CLAIMS.is_file(), reason="../shared/reference is not beside the project")
def test_texts_are_verbatim_from_the_reference() -> None:
    ref = yaml.safe_load(CLAIMS.read_text())["prompts"]
    assert load_prompt("qwen_math_default", ROOT).system == ref["qwen_math_default_chat"]["system"]
    assert load_prompt("r1_think", ROOT).text == ref["r1_think_base_model"]["text"]
    for ours, theirs in [
        ("math_problem", "math_problem"),
        ("simplerl_zoo", "simplerl_zoo"),
        ("lipsum", "spurious_lipsum"),
    ]:
        t = load_prompt(ours, ROOT)
        assert (t.system, t.user) == (ref[theirs]["system"], ref[theirs]["user"])
    assert load_prompt("sober", ROOT).user == ref["sober"]["user"]
    assert load_prompt("code_forcing", ROOT).assistant_prefix == ref["code_forcing_prefix"]["assistant_prefix"]


@pytest.mark.skipif(not CLAIMS.is_file(), reason="../shared/reference is not beside the project")
def test_qwen_default_renders_like_the_paper() -> None:
    ref = yaml.safe_load(CLAIMS.read_text())["prompts"]["qwen_math_default_chat"]["rendered"]
    p = render(load_prompt("qwen_math_default", ROOT), "qwen_math_default", PROBLEM, tokenizer=ChatML())
    assert p.text == ref.replace("{question}", PROBLEM.question)


def test_question_braces_are_inserted_literally() -> None:
    p = render(load_prompt("no_template", ROOT), "no_template", PROBLEM, tokenizer=None)
    assert p.text == PROBLEM.question
    assert p.template_id == "no_template" and len(p.prompt_hash) == 16


def test_raw_template_needs_no_tokenizer_and_keeps_stop() -> None:
    t = load_prompt("r1_think", ROOT)
    p = render(t, "r1_think", PROBLEM, tokenizer=None)
    assert p.text.endswith(f"<|user|>\n{PROBLEM.question}\n<|assistant|>\n<think>")
    assert t.stop == ["</answer>"] and t.keep_stop


def test_code_forcing_appends_assistant_prefix() -> None:
    p = render(load_prompt("code_forcing", ROOT), "code_forcing", PROBLEM, tokenizer=ChatML())
    assert p.text.endswith("<|im_start|>assistant\nLet's solve this using Python.")


def test_model_default_has_no_system_message() -> None:
    p = render(load_prompt("model_default", ROOT), "model_default", PROBLEM, tokenizer=ChatML())
    assert p.text == f"<|im_start|>user\n{PROBLEM.question}<|im_end|>\n<|im_start|>assistant\n"


def test_chat_template_without_chat_tokenizer_is_a_clear_error() -> None:
    class NoChat:
        chat_template = None

        def apply_chat_template(self, conversation, **kwargs):  # type: ignore[no-untyped-def]
            raise AssertionError("not called")

    with pytest.raises(
        UsageError, match="'sober' applies a chat template, but checkpoint 'fam/x' has a tokenizer without"
    ):
        render(load_prompt("sober", ROOT), "sober", PROBLEM, tokenizer=NoChat(), checkpoint_id="fam/x")


def test_raw_fallback(tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "fb.yaml").write_text(
        "description: d\nchat: true\nsystem: S\nuser: 'Q: {question}'\nraw_fallback: true\n"
    )
    p = render(load_prompt("fb", tmp_path), "fb", PROBLEM, tokenizer=None)
    assert p.text == f"S\n\nQ: {PROBLEM.question}"


def test_unknown_prompt_lists_valid() -> None:
    with pytest.raises(UnknownNameError, match="valid prompts: code_forcing, lipsum"):
        load_prompt("qwen", ROOT)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("description: d\nchat: true\nuser: 'no placeholder'\n", "must contain {question}"),
        ("description: d\nchat: false\nsystem: s\ntext: '{question}'\n", "takes 'text', not 'system'"),
        ("description: d\nchat: true\nuser: '{question}'\nstops: []\n", "stops: unknown key"),
        ("description: d\nchat: maybe\nuser: '{question}'\n", "chat: .*boolean"),
        ("description: d\nchat: [\n", "invalid YAML at line"),
    ],
)
def test_bad_template_files(tmp_path: Path, body: str, message: str) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "bad.yaml").write_text(body)
    with pytest.raises(ConfigError, match=message) as err:
        load_prompt("bad", tmp_path)
    assert "bad.yaml" in str(err.value)
