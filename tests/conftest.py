"""Fixtures shared by every test folder: one CPU thread, and tiny trained runs."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from latentstudio.train.config import TrainConfig
from latentstudio.train.loop import train

# A run that trains in about a second: 32 px, width 8, 4 steps on 64 shapes.
TINY_RUN = dict(data="shapes:64", resolution=32, width=8, latent_dim=16, batch_size=16, steps=4,
                log_every=2, preview_count=4, seed=3, device="cpu")


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Run the test on one CPU thread: for tiny nets a second thread only spin-waits, which on a
    shared machine is many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """`tiny_run(model="dcgan", name=None, **settings)`: a run trained with TINY_RUN's settings
    (overridden by `settings`) on one CPU thread, into a folder named `name` (default: the
    model). Asked for twice with the same arguments, it is trained once: treat it as read-only
    and copy it to write into it."""
    made: dict[str, Path] = {}

    def make(model: str = "dcgan", name: str | None = None, **settings) -> Path:
        cfg = {**TINY_RUN, "model": model, **settings}
        key = json.dumps([name, cfg], sort_keys=True, default=str)
        if key not in made:
            out = tmp_path_factory.mktemp("tiny-runs") / (name or model)
            before = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                made[key] = Path(train(TrainConfig(**cfg, out=str(out)), progress=False))
            finally:
                torch.set_num_threads(before)
        return made[key]

    return make
