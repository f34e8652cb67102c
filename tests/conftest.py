"""Shared pytest fixtures.

Keep this file small: fixtures that only one test module needs belong in that
module.
"""

from __future__ import annotations

from pathlib import Path

import pytest

try:  # default rootdir-relative import mode: tests/ itself is on sys.path
    from tiny_model import build_tiny_qwen2
except ImportError:  # tests/ imported as a package
    from tests.tiny_model import build_tiny_qwen2


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny random-weight Qwen2 checkpoint (seed 0) with a ChatML chat template.

    Loadable offline with ``AutoTokenizer`` / ``AutoModelForCausalLM`` and with
    lm-eval's ``hf`` backend (``pretrained={dir},dtype=float32``, device cpu).
    Treat it as read-only: it is shared by the whole session.
    """
    return build_tiny_qwen2(tmp_path_factory.mktemp("tiny-qwen2-chat"), seed=0, chat_template=True)


@pytest.fixture(scope="session")
def tiny_model_dir_no_chat(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Same checkpoint as ``tiny_model_dir`` but with no chat template (base style)."""
    return build_tiny_qwen2(tmp_path_factory.mktemp("tiny-qwen2-base"), seed=0, chat_template=False)
