"""The README's install lines: CI runs exactly the one it documents, and it says which line fits which machine."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def install_section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return readme.split("\n## Install\n", 1)[1].split("\n## ", 1)[0]


def test_ci_runs_the_readme_install_line() -> None:
    first_block = install_section().split("```bash\n", 1)[1].split("\n```", 1)[0].strip()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    ci_line = ci.split("# --- install", 1)[1].splitlines()[1].strip()
    assert ci_line == first_block == 'python3 -m venv .venv && .venv/bin/pip install torch==2.13.0 -e ".[dev]"'


def test_readme_gives_a_cpu_line_and_gpu_lines() -> None:
    section = " ".join(install_section().replace("\\\n", " ").split())
    cpu = 'pip install torch==2.13.0 -e ".[dev]" --extra-index-url https://download.pytorch.org/whl/cpu'
    assert cpu in section
    assert 'pip install torch==2.13.0 -e ".[dev,vllm]"' in section
    for machine in ("**No GPU**", "**NVIDIA GPU, `--backend hf`**", "**NVIDIA GPU, `--backend vllm`**"):
        assert machine in section


def test_lm_eval_is_installed_with_hf_and_api_never_math() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    (extras,) = re.findall(r'^\s*"lm[-_]eval\[([^\]]*)\]', pyproject, flags=re.MULTILINE)
    assert {"hf", "api"} <= set(extras.split(",")) and "math" not in extras.split(",")
