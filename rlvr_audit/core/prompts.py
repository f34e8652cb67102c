"""Prompt templates (``prompts/*.yaml``) and rendering them into exact prompt strings.

A template either goes through the checkpoint tokenizer's chat template (``chat: true``:
an optional system message, a user message, then the generation prompt) or is a raw string
(``chat: false``). Both can end with an ``assistant_prefix`` that the model continues from
(e.g. "Let's solve this using Python."). ``{question}`` is replaced literally (never with
``str.format``: LaTeX is full of braces).

rlvr-audit renders every prompt itself and records the exact string and its hash, so two
tools that claim "the same prompt" can be compared character by character.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from pydantic import Field, model_validator

from .configfile import StrictModel, load_yaml_model, yaml_files
from .errors import UnknownNameError, UsageError
from .records import Problem, Prompt, stable_hash

PLACEHOLDER = "{question}"
"""The placeholder replaced by the problem statement."""


class PromptTemplate(StrictModel):
    """A prompt template YAML."""

    description: str
    """What the template is and who used it."""
    source: str = ""
    """Where the text comes from (paper, table, code file)."""
    chat: bool
    """Apply the tokenizer's chat template (``true``) or send a raw string (``false``)."""
    system: str | None = None
    """System message (chat only); ``null`` leaves the tokenizer template's own default."""
    user: str | None = None
    """User message with ``{question}`` (chat only)."""
    text: str | None = None
    """The whole prompt with ``{question}`` (raw only)."""
    assistant_prefix: str = ""
    """Text the assistant turn starts with; the model continues after it."""
    stop: list[str] = Field(default_factory=list)
    """Stop strings, in addition to the model's end-of-sequence token."""
    keep_stop: bool = False
    """Append the stop string that ended generation back to the completion."""
    raw_fallback: bool = False
    """For chat templates: render ``user`` as a raw string when the tokenizer has no chat
    template (otherwise that is an error)."""

    @model_validator(mode="after")
    def _check_shape(self) -> PromptTemplate:
        if self.chat:
            if self.user is None:
                raise ValueError("a chat template needs 'user' (with {question})")
            if self.text is not None:
                raise ValueError("a chat template takes 'system'/'user', not 'text'")
            if PLACEHOLDER not in self.user:
                raise ValueError("'user' must contain {question}")
        else:
            if self.text is None:
                raise ValueError("a raw template (chat: false) needs 'text' (with {question})")
            if self.system is not None or self.user is not None:
                raise ValueError("a raw template takes 'text', not 'system'/'user'")
            if PLACEHOLDER not in self.text:
                raise ValueError("'text' must contain {question}")
        return self

    @property
    def template_hash(self) -> str:
        """Hash of everything that changes the rendered string or the stopping."""
        return stable_hash(
            self.model_dump(mode="json", exclude={"description", "source"}),
        )


class ChatTokenizer(Protocol):
    """The part of a Hugging Face tokenizer used for rendering."""

    chat_template: Any

    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any:
        """Render a conversation (transformers' signature)."""
        ...


def prompts_dir(config_dir: Path) -> Path:
    """The ``prompts/`` folder of a configuration directory."""
    return config_dir / "prompts"


def available_prompts(config_dir: Path) -> dict[str, Path]:
    """Template id -> YAML path, for every ``prompts/*.yaml``."""
    return yaml_files(prompts_dir(config_dir))


def load_prompt(name: str, config_dir: Path) -> PromptTemplate:
    """Load and validate the template ``name``; an unknown name lists the valid ones."""
    found = available_prompts(config_dir)
    if name not in found:
        raise UnknownNameError("prompt", name, found)
    return load_yaml_model(found[name], PromptTemplate)


def render(
    template: PromptTemplate,
    template_id: str,
    problem: Problem,
    *,
    tokenizer: ChatTokenizer | None,
    checkpoint_id: str = "",
) -> Prompt:
    """Render ``problem`` with ``template`` into the exact string sent to the engine.

    Chat templates need ``tokenizer`` (a Hugging Face tokenizer with a chat template); a
    tokenizer without one is an error naming the template and the checkpoint, unless the
    template sets ``raw_fallback``.
    """
    question = problem.question
    if template.chat:
        assert template.user is not None  # guaranteed by validation
        user = template.user.replace(PLACEHOLDER, question)
        has_chat = tokenizer is not None and bool(getattr(tokenizer, "chat_template", None))
        if has_chat:
            assert tokenizer is not None
            messages = []
            if template.system is not None:
                messages.append({"role": "system", "content": template.system})
            messages.append({"role": "user", "content": user})
            rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            if not isinstance(rendered, str):
                raise UsageError(f"the chat template of {checkpoint_id or 'the tokenizer'} did not render to text")
            text = rendered
        elif template.raw_fallback:
            text = user if template.system is None else f"{template.system}\n\n{user}"
        else:
            who = f"checkpoint {checkpoint_id!r}" if checkpoint_id else "this checkpoint"
            what = (
                "has a tokenizer without a chat template" if tokenizer is not None else "has no tokenizer to render it"
            )
            raise UsageError(
                f"prompt template {template_id!r} applies a chat template, but {who} {what}; "
                "use a raw template (no_template, r1_think) or one with raw_fallback: true"
            )
    else:
        assert template.text is not None
        text = template.text.replace(PLACEHOLDER, question)
    text += template.assistant_prefix
    return Prompt(
        problem_id=problem.problem_id,
        template_id=template_id,
        template_hash=template.template_hash,
        text=text,
        prompt_hash=stable_hash(text),
    )
