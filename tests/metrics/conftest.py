"""Fixtures for the metric tests: a private cache and a tiny, fast, deterministic extractor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from latentstudio.metrics.extractors import EXTRACTORS, Extractor


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """These tensors are tiny: threads only add OpenMP spin-waiting, which on a busy machine
    made the suite 4x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every metric test gets its own empty cache."""
    root = tmp_path / "cache"
    monkeypatch.setenv("LATENTSTUDIO_CACHE", str(root))
    return root


def tiny_net(channels: int = 3, seed: int = 0) -> nn.Module:
    """A fixed random conv net: random features still keep near images near."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(channels, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 3, 2, 1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten()).eval()


def make_tiny_extractor(channels: int = 3) -> Extractor:
    return Extractor("tiny", "tiny", 128, tiny_net(channels), None, False)


@pytest.fixture
def tiny_extractor(monkeypatch: pytest.MonkeyPatch) -> Extractor:
    """Register `tiny` as an extractor name (like lite0) for the duration of a test."""
    monkeypatch.setitem(EXTRACTORS, "tiny", lambda dataset, device, weights, progress:
                        make_tiny_extractor(dataset.channels if dataset is not None else 3))
    return make_tiny_extractor()
