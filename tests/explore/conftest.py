"""Tiny trained runs shared by the exploration tests (16 px, width 8, seeded, one CPU thread)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from explore_runs import make_run, one_thread


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with one_thread():
        yield


@pytest.fixture(scope="session")
def dcgan_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Briefly trained: enough for its batch-norm statistics to settle, so images vary with z."""
    return make_run(tmp_path_factory.mktemp("runs"), "dcgan", steps=80)


@pytest.fixture(scope="session")
def vae_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A convolutional VAE with a 2-D latent, as in the classic latent-space figure."""
    return make_run(tmp_path_factory.mktemp("runs"), "vae-conv", steps=60, latent_dim=2,
                    data="shapes:512")


@pytest.fixture(scope="session")
def cppn_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("runs"), "cppn-gan", steps=4)


@pytest.fixture(scope="session")
def cgan_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Briefly trained too; the classifier-judged class-vector tests train their own."""
    return make_run(tmp_path_factory.mktemp("runs"), "cgan", steps=80)
