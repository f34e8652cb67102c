"""Fixtures of the reliability suite (helpers shared by its modules are in ``reliability_helpers``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def wide_console() -> Iterator[None]:
    """In-process CLI calls print warnings through rich at 80 columns, wrapping file paths;
    widen the shared console so a message that names a file keeps the name in one piece."""
    from rlvr_audit.core.ui import console

    saved = console._width
    console.width = 1000
    try:
        yield
    finally:
        console._width = saved
