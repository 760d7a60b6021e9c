"""Model-zoo tests run their tiny networks on one CPU thread."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _tiny_nets(one_thread: None) -> None:
    """Every test here uses the shared one_thread fixture."""
