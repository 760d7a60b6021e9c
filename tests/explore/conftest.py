"""Tiny trained runs shared by the exploration tests (16 px, width 8, seeded, one CPU thread)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from explore_runs import EXPLORE, one_thread


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with one_thread():
        yield


@pytest.fixture(scope="session")
def dcgan_run(tiny_run: Callable[..., Path]) -> Path:
    """Briefly trained: enough for its batch-norm statistics to settle, so images vary with z."""
    return tiny_run("dcgan", **{**EXPLORE, "steps": 80})


@pytest.fixture(scope="session")
def vae_run(tiny_run: Callable[..., Path]) -> Path:
    """A convolutional VAE with a 2-D latent, as in the classic latent-space figure."""
    return tiny_run("vae-conv", **{**EXPLORE, "steps": 60, "latent_dim": 2, "data": "shapes:512"})


@pytest.fixture(scope="session")
def cppn_run(tiny_run: Callable[..., Path]) -> Path:
    return tiny_run("cppn-gan", **{**EXPLORE, "steps": 4})


@pytest.fixture(scope="session")
def cgan_run(tiny_run: Callable[..., Path]) -> Path:
    """Briefly trained too; the classifier-judged class-vector tests train their own."""
    return tiny_run("cgan", **{**EXPLORE, "steps": 80})
