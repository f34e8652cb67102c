"""Build a tiny, random-weight Qwen2-architecture causal LM fully offline.

The result is a directory that ``transformers.AutoTokenizer`` /
``AutoModelForCausalLM`` and lm-eval's ``hf`` backend load like a real Qwen2.5
checkpoint (same tokenizer class and pre-tokenization pipeline, ChatML special
tokens, same config class), but it is ~2 MB and builds in ~0.2 s on CPU (~3 s
cold, almost all of it importing torch/transformers).
No network access is needed: the byte-level BPE vocabulary is trained with the
``tokenizers`` library on the MATH-500 benchmark text shipped in
``../shared/data/benchmarks/math500.jsonl`` (relative to the project root).

Layout mirrors Qwen2.5-Instruct:

* the BPE vocabulary (256 byte symbols + merges) comes first, the three special
  tokens are appended after it, as Qwen's ``<|endoftext|>`` (151643),
  ``<|im_start|>`` (151644) and ``<|im_end|>`` (151645) are;
* ``eos_token`` is ``<|im_end|>``, ``pad_token`` is ``<|endoftext|>``, there is
  no tokenizer-level BOS (``bos_token: null``) so nothing is prepended on encode;
* ``generation_config.json`` stops on either ``<|im_end|>`` or ``<|endoftext|>``
  but sets *no* sampling parameters, so transformers' global defaults apply
  (notably ``top_k=50`` when ``do_sample=True``).

Usage: in tests prefer the session fixtures ``tiny_model_dir`` /
``tiny_model_dir_no_chat`` from tests/conftest.py. To build another variant::

    from tiny_model import build_tiny_qwen2  # or: from tests.tiny_model import ...
    model_dir = build_tiny_qwen2(tmp_path / "tiny-qwen2", seed=1)

Run ``python tests/tiny_model.py OUT_DIR`` to build one by hand.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MATH500_PATH = PROJECT_ROOT / ".." / "shared" / "data" / "benchmarks" / "math500.jsonl"

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = (ENDOFTEXT, IM_START, IM_END)

# Pre-tokenization regex of Qwen2 / Qwen2.5 (identical to
# transformers.models.qwen2.tokenization_qwen2.PRETOKENIZE_REGEX).
QWEN2_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"""
    r""" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

# Total tokenizer length (BPE vocabulary + the 3 special tokens). 1536 is a
# multiple of 64 and leaves room for plenty of LaTeX merges.
VOCAB_SIZE = 1536

# ChatML template in the style of Qwen2.5-Instruct, minus tool calling and
# minus the default system prompt ("You are Qwen, ..."): a system turn is
# rendered only when the conversation contains one.
CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n'"
    " + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- endif %}"
)

MODEL_CONFIG = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,  # head_dim = 128 / 2 = 64, as in Qwen2.5
    "num_key_value_heads": 1,  # grouped-query attention, as in Qwen2.5
    "max_position_embeddings": 4096,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-6,
    "initializer_range": 0.02,
    "tie_word_embeddings": True,
    "use_sliding_window": False,
    "hidden_act": "silu",
}


def _training_texts(path: Path = MATH500_PATH) -> Iterator[str]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            row = json.loads(line)
            for key in ("problem", "solution", "answer"):
                value = row.get(key)
                if value:
                    yield str(value)
    # A few ChatML-formatted snippets so the surrounding "\n" / role names
    # become ordinary tokens.
    for role in ("system", "user", "assistant"):
        yield f"{IM_START}{role}\nPlease reason step by step.{IM_END}\n"


def _build_tokenizer():  # -> tokenizers.Tokenizer
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        normalizers,
        pre_tokenizers,
        processors,
    )
    from tokenizers.models import BPE
    from tokenizers.trainers import BpeTrainer

    if not MATH500_PATH.is_file():
        raise FileNotFoundError(f"tokenizer training data not found: {MATH500_PATH}")

    # Same pipeline as Qwen2.5's tokenizer.json (and as transformers 5.x's
    # Qwen2Tokenizer.__init__, which rebuilds the backend from vocab + merges
    # with exactly this normalizer/pre-tokenizer/decoder and ignores the ones
    # stored in tokenizer.json -- so they must match or encodings would differ).
    tok = Tokenizer(BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)

    trainer = BpeTrainer(
        vocab_size=VOCAB_SIZE - len(SPECIAL_TOKENS),
        min_frequency=2,
        show_progress=False,
        special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_training_texts(), trainer=trainer)

    # Appended after the BPE vocabulary, like Qwen's added tokens. The chat
    # markers are not in the training vocabulary, so they can only ever be
    # produced as these single special ids.
    tok.add_special_tokens(
        [
            AddedToken(
                t,
                special=True,
                normalized=False,
                lstrip=False,
                rstrip=False,
                single_word=False,
            )
            for t in SPECIAL_TOKENS
        ]
    )
    return tok


def _tokenizer_config(tok, *, chat_template: bool) -> dict:
    added = {}
    for t in SPECIAL_TOKENS:
        added[str(tok.token_to_id(t))] = {
            "content": t,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
    cfg = {
        # Mirrors Qwen2.5-Instruct's tokenizer_config.json.
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "additional_special_tokens": [IM_START, IM_END],
        "bos_token": None,
        "clean_up_tokenization_spaces": False,
        "eos_token": IM_END,
        "errors": "replace",
        "model_max_length": MODEL_CONFIG["max_position_embeddings"],
        "pad_token": ENDOFTEXT,
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }
    if chat_template:
        cfg["chat_template"] = CHATML_TEMPLATE
    return cfg


def build_tiny_qwen2(out_dir: Path, *, seed: int = 0, chat_template: bool = True) -> Path:
    """Write a tiny random-weight Qwen2 checkpoint + tokenizer into ``out_dir``.

    The tokenizer is deterministic (same training data, same trainer settings);
    the weights depend only on ``seed``. With ``chat_template=False`` the
    tokenizer has no chat template (``apply_chat_template`` raises), as for a
    base model. Returns ``out_dir``.
    """
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    tok = _build_tokenizer()
    tok.save(str(out_dir / "tokenizer.json"))
    (out_dir / "tokenizer_config.json").write_text(
        json.dumps(
            _tokenizer_config(tok, chat_template=chat_template),
            indent=2,
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )

    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    endoftext_id = tok.token_to_id(ENDOFTEXT)
    im_end_id = tok.token_to_id(IM_END)
    config = Qwen2Config(
        vocab_size=vocab_size,
        # Qwen2.5: bos_token_id = <|endoftext|> in config.json, null in the tokenizer
        bos_token_id=endoftext_id,
        eos_token_id=im_end_id,
        pad_token_id=endoftext_id,
        **MODEL_CONFIG,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).to(torch.float32).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=endoftext_id,
        eos_token_id=[im_end_id, endoftext_id],
        pad_token_id=endoftext_id,
    )
    model.save_pretrained(out_dir, safe_serialization=True)
    return out_dir


if __name__ == "__main__":  # pragma: no cover - manual use
    if len(sys.argv) != 2:
        raise SystemExit("usage: python tests/tiny_model.py OUT_DIR")
    print(build_tiny_qwen2(Path(sys.argv[1])))
