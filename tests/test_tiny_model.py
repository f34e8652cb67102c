"""Tests for the offline tiny Qwen2 fixture (tests/tiny_model.py).

lm-eval ``hf`` backend notes (lm-eval 0.4.13, transformers 5.x), as observed
on this fixture:

* ``max_length`` resolves from ``config.max_position_embeddings`` (4096) before
  the tokenizer's ``model_max_length``; ``max_gen_toks`` must be < max_length.
  The default ``max_gen_toks`` is 256 when a request gives none.
* No BOS is prepended: ``add_bos_token`` stays None and Qwen2 has no bos_token,
  so ``tok_encode(s) == tokenizer.encode(s)``.
* ``tok_decode`` defaults to ``skip_special_tokens=True``, and
  ``generate_until`` decodes with that default: ``<|im_start|>``,
  ``<|im_end|>`` and the ``<|endoftext|>`` padding never reach the returned
  text. The EOS string (``tok_decode(eos, skip_special_tokens=False)``) is
  appended to ``until``.
* Greedy needs ``do_sample=False`` (``temperature`` is then dropped). With
  ``do_sample=True`` a temperature > 0 must be given explicitly: lm-eval
  defaults it to 0.0 and transformers then raises ValueError.
* Sampling uses transformers' global defaults for anything not in
  ``generation_config.json`` -- in particular ``top_k=50``.
* No warnings are logged for this checkpoint; nothing touches the Hub when
  ``pretrained`` is a local directory.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

try:
    from tiny_model import IM_END, IM_START, MATH500_PATH, build_tiny_qwen2
except ImportError:  # tests/ imported as a package
    from tests.tiny_model import IM_END, IM_START, MATH500_PATH, build_tiny_qwen2


def _math500_texts(limit: int | None = None) -> list[str]:
    texts: list[str] = []
    with MATH500_PATH.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            texts.extend(row[k] for k in ("problem", "solution", "answer"))
    return texts if limit is None else texts[:limit]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- build


def test_layout_size_and_config(tiny_model_dir: Path) -> None:
    for name in (
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ):
        assert (tiny_model_dir / name).is_file(), name
    total = sum(p.stat().st_size for p in tiny_model_dir.iterdir())
    assert total < 5 * 1024 * 1024

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    cfg = transformers.AutoConfig.from_pretrained(tiny_model_dir)
    assert cfg.model_type == "qwen2"
    assert cfg.hidden_size // cfg.num_attention_heads == 64
    assert cfg.vocab_size == len(tok)
    assert 1000 <= cfg.vocab_size <= 2000
    assert cfg.max_position_embeddings == 4096
    assert cfg.tie_word_embeddings is True
    assert cfg.eos_token_id == tok.convert_tokens_to_ids(IM_END)
    assert cfg.pad_token_id == tok.pad_token_id

    gen = transformers.GenerationConfig.from_pretrained(tiny_model_dir)
    assert gen.eos_token_id == [tok.convert_tokens_to_ids(IM_END), tok.pad_token_id]


def test_build_is_deterministic(tmp_path: Path, tiny_model_dir: Path) -> None:
    again = build_tiny_qwen2(tmp_path / "again", seed=0)
    other = build_tiny_qwen2(tmp_path / "other", seed=1, chat_template=False)
    for name in (
        "tokenizer.json",
        "tokenizer_config.json",
        "config.json",
        "model.safetensors",
    ):
        assert _sha(again / name) == _sha(tiny_model_dir / name), name
    assert _sha(other / "tokenizer.json") == _sha(tiny_model_dir / "tokenizer.json")
    assert _sha(other / "model.safetensors") != _sha(tiny_model_dir / "model.safetensors")


# ----------------------------------------------------------------------- transformers


def test_auto_classes_load(tiny_model_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert type(tok).__name__ == "Qwen2Tokenizer"
    assert tok.eos_token == IM_END
    assert tok.pad_token == "<|endoftext|>"
    assert tok.bos_token is None
    assert set(tok.all_special_tokens) == {"<|endoftext|>", IM_START, IM_END}
    assert tok.model_max_length == 4096
    # no BOS/EOS added on encode, like Qwen2.5
    assert tok("x + 1")["input_ids"] == tok.encode("x + 1", add_special_tokens=False)

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    assert type(model).__name__ == "Qwen2ForCausalLM"
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    ids = tok(["Let $x=2$."], return_tensors="pt")
    with torch.no_grad():
        logits = model(**ids).logits
    assert logits.shape == (1, ids["input_ids"].shape[1], len(tok))


def test_transformers_tokenizer_matches_tokenizer_json(tiny_model_dir: Path) -> None:
    # transformers 5.x rebuilds Qwen2Tokenizer's backend from vocab+merges with
    # its own pipeline; it must agree with the raw tokenizer.json.
    from tokenizers import Tokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    raw = Tokenizer.from_file(str(tiny_model_dir / "tokenizer.json"))
    texts = [*_math500_texts(300), f"{IM_START}user\nCafé ½ 日本 😀{IM_END}\n"]
    for text in texts:
        assert tok.encode(text) == raw.encode(text).ids


def test_latex_round_trip(tiny_model_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    samples = [
        r"\boxed{\frac{\sqrt{3}}{2}}",
        r"$$\int_0^{\pi} \sin^2 x \, dx = \frac{\pi}{2}$$",
        "\\begin{align*}\n  a^2 + b^2 &= c^2 \\\\\n  x &\\in \\mathbb{R}\n\\end{align*}",
        "  tabs\tand  double  spaces\n\n\nnewlines, ünïcödé π ≤ ∞ 😀",
    ]
    for text in samples + _math500_texts():
        ids = tok.encode(text)
        assert tok.decode(ids) == text
    # the BPE actually learned LaTeX: far fewer tokens than bytes
    text = _math500_texts()[1]
    assert len(tok.encode(text)) < 0.5 * len(text.encode("utf-8"))
    # special tokens are atomic and skipped on request
    ids = tok.encode(f"{IM_START}user\nhi{IM_END}")
    assert ids[0] == tok.convert_tokens_to_ids(IM_START)
    assert ids[-1] == tok.convert_tokens_to_ids(IM_END)
    assert tok.decode(ids, skip_special_tokens=True) == "user\nhi"


def test_chat_template(tiny_model_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    system = {"role": "system", "content": "Please reason step by step."}
    user = {"role": "user", "content": r"What is $\frac{1}{2} + \frac{1}{3}$?"}
    rendered = tok.apply_chat_template([system, user], tokenize=False, add_generation_prompt=True)
    assert rendered == (
        "<|im_start|>system\nPlease reason step by step.<|im_end|>\n"
        "<|im_start|>user\nWhat is $\\frac{1}{2} + \\frac{1}{3}$?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    # no default system prompt for this tiny model
    assert tok.apply_chat_template([user], tokenize=False, add_generation_prompt=True).startswith("<|im_start|>user\n")
    assert tok.apply_chat_template([user], tokenize=False, add_generation_prompt=False).endswith("<|im_end|>\n")
    # transformers 5.x: tokenize=True returns a BatchEncoding by default
    enc = tok.apply_chat_template([system, user], add_generation_prompt=True)
    assert enc["input_ids"] == tok.encode(rendered)


def test_no_chat_template(tiny_model_dir_no_chat: Path) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_model_dir_no_chat)
    assert tok.chat_template is None
    with pytest.raises(ValueError):
        tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)


# ---------------------------------------------------------------------------- lm-eval


@pytest.fixture(scope="module")
def hf_lm(tiny_model_dir: Path):
    from lm_eval.api.registry import get_model

    return get_model("hf").create_from_arg_string(
        f"pretrained={tiny_model_dir},dtype=float32", {"batch_size": 2, "device": "cpu"}
    )


PROMPTS = [
    "<|im_start|>user\nWhat is $1+1$?<|im_end|>\n<|im_start|>assistant\n",
    r"Compute $\frac{3}{4} \cdot 8$.",
    "Let $x$ be a real number.",
]


def _requests(prompts: list[str], **gen_kwargs):
    from lm_eval.api.instance import Instance

    kwargs = {
        "until": ["</answer>"],
        "max_gen_toks": 16,
        "do_sample": False,
        "temperature": 0.0,
    }
    kwargs.update(gen_kwargs)
    return [
        Instance(request_type="generate_until", doc={}, arguments=(p, dict(kwargs)), idx=i)
        for i, p in enumerate(prompts)
    ]


def test_lm_eval_properties(hf_lm) -> None:
    tok = hf_lm.tokenizer
    assert hf_lm.max_length == 4096
    assert hf_lm.eot_token_id == tok.convert_tokens_to_ids(IM_END)
    assert hf_lm.tok_encode("a + b") == tok.encode("a + b", add_special_tokens=False)
    im_start = tok.convert_tokens_to_ids(IM_START)
    ids = [im_start, *tok.encode("x"), hf_lm.eot_token_id, tok.pad_token_id]
    assert hf_lm.tok_decode(ids) == "x"  # special tokens skipped by default
    assert hf_lm.tok_decode(ids, skip_special_tokens=False) == f"{IM_START}x{IM_END}<|endoftext|>"


def test_lm_eval_greedy_is_deterministic(hf_lm) -> None:
    first = hf_lm.generate_until(_requests(PROMPTS), disable_tqdm=True)
    second = hf_lm.generate_until(_requests(PROMPTS), disable_tqdm=True)
    assert len(first) == len(PROMPTS)
    assert all(isinstance(s, str) for s in first)
    assert first == second


def test_lm_eval_greedy_matches_direct_generate(hf_lm) -> None:
    [text] = hf_lm.generate_until(_requests(PROMPTS[1:2]), disable_tqdm=True)
    enc = hf_lm.tokenizer(PROMPTS[1], return_tensors="pt")
    out = hf_lm.model.generate(**enc, max_new_tokens=16, do_sample=False)
    assert text == hf_lm.tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)


def test_lm_eval_sampling_is_seeded(hf_lm) -> None:
    def reqs():
        return _requests(PROMPTS, do_sample=True, temperature=1.0)

    transformers.set_seed(11)
    a = hf_lm.generate_until(reqs(), disable_tqdm=True)
    transformers.set_seed(11)
    b = hf_lm.generate_until(reqs(), disable_tqdm=True)
    transformers.set_seed(12)
    c = hf_lm.generate_until(reqs(), disable_tqdm=True)
    assert a == b
    assert a != c
