"""The lightweight-gan baseline (benchmarks/lwgan_baseline.py): its port of lightweight-gan's
training step against the package's own Trainer.train, and the step benchmark in quick mode.

Needs the `lightweight-gan` package (.ci/run installs it without its dependencies); skipped
where it is not installed."""

import importlib.util
import inspect
import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path
from unittest import mock

import pytest
import torch

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"
pytestmark = pytest.mark.skipif(importlib.util.find_spec("lightweight_gan") is None,
                                reason="lightweight-gan is not installed (see .ci/run)")


@pytest.fixture(scope="module")
def baseline():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import lwgan_baseline
    finally:
        sys.path.pop(0)
    return lwgan_baseline


def _their_trainer(lwg, tmp_path, image_size, batch, fmap_max, attn_res_layers):
    """lightweight-gan's own Trainer with its train() made to run on the CPU: the two CUDA
    spellings in its source replaced, nothing else; no images or checkpoints written."""
    trainer = lwg.Trainer(base_dir=str(tmp_path), image_size=image_size, batch_size=batch,
                          fmap_max=fmap_max, attn_res_layers=attn_res_layers, disc_output_size=1,
                          aug_types=["cutout", "translation"], gradient_accumulate_every=2,
                          use_aim=False, save_every=10**6, evaluate_every=10**6)
    source = textwrap.dedent(inspect.getsource(lwg.Trainer.train))
    for cuda, cpu in (("torch.device(f'cuda:{self.rank}')", "torch.device('cpu')"),
                      (".cuda(self.rank)", "")):
        assert cuda in source, f"lightweight-gan's Trainer.train no longer has {cuda}"
        source = source.replace(cuda, cpu)
    namespace = dict(vars(lwg))
    exec(compile(source, "Trainer.train (on the CPU)", "exec"), namespace)
    trainer.train = namespace["train"].__get__(trainer)
    trainer.evaluate = trainer.save = lambda *args, **kwargs: None
    with mock.patch.object(torch.nn.Module, "cuda", lambda self, *args, **kwargs: self):
        trainer.init_GAN()
    return trainer


def test_the_port_trains_exactly_as_lightweight_gans_own_trainer(baseline, tmp_path):
    """Same seeds, same batches: after 2 steps (a gradient penalty one and one without, with
    gradient accumulation and augmentation) every weight is the same. Small and without the
    optional attention layers, as its discriminator's own attention at 32 px takes seconds."""
    lwg = baseline.import_lightweight_gan()
    batches = [torch.rand(1, 3, 32, 32) for _ in range(10)]
    size = {"image_size": 32, "batch": 1, "fmap_max": 16, "attn_res_layers": []}

    torch.manual_seed(0)
    random.seed(0)
    theirs = _their_trainer(lwg, tmp_path, **size)
    theirs.aug_prob = 0.5
    theirs.loader = (b.clone() for b in batches)  # it sets requires_grad on what it gets
    for _ in range(2):
        theirs.train()

    torch.manual_seed(0)
    random.seed(0)
    ours = baseline.LightweightGAN(32, "cpu", batch_size=1, fmap_max=16, aug_prob=0.5,
                                   gradient_accumulate_every=2, attn_res_layers=[])
    feed = iter(batches)
    for _ in range(2):
        ours.step(lambda: next(feed).clone())

    assert theirs.steps == ours.steps == 2
    for name in ("G", "D", "GE"):
        a, b = getattr(theirs.GAN, name).state_dict(), getattr(ours, name).state_dict()
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-6, msg=f"{name}.{key}")
    assert ours.last_losses[0] == pytest.approx(theirs.d_loss, abs=1e-6)
    assert ours.last_losses[1] == pytest.approx(theirs.g_loss, abs=1e-6)
    before = ours.G.state_dict()["out_conv.weight"].clone()
    ours.step(lambda: next(feed).clone())
    assert not torch.equal(before, ours.G.state_dict()["out_conv.weight"])  # it does train


def test_saved_and_loaded_it_draws_the_same_images(baseline, tmp_path):
    model = baseline.LightweightGAN(64, "cpu", n_images=500, batch_size=2, fmap_max=16,
                                    gradient_accumulate_every=1)
    assert model.aug_prob == pytest.approx(min(0.5, (1e5 - 500) * 3e-6))
    real = torch.rand(2, 3, 64, 64)
    model.step(lambda: real.clone())
    torch.save(model.state_dict(), tmp_path / "lw.pt")
    again = baseline.LightweightGAN.load(tmp_path / "lw.pt")
    images = model.generate(5, seed=3, batch=2)
    assert images.dtype == torch.uint8 and images.shape == (5, 3, 64, 64)
    assert torch.equal(images, again.generate(5, seed=3, batch=2))
    assert not torch.equal(images, again.generate(5, seed=4, batch=2))
    assert again.steps == 1 and again.settings == model.settings
    with pytest.raises(ValueError, match="unknown lightweight-gan settings: widht"):
        baseline.LightweightGAN(64, "cpu", widht=8)


def test_step_benchmark_quick(tmp_path):
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "lwgan_baseline.py"), "--quick",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "lwgan_step_quick.json").read_text())
    (row,) = result["results"]
    for name in ("latentstudio", "lightweight_gan"):
        assert row[name]["seconds"] > 0 and row[name]["peak_bytes"] > 0
        assert row[name]["parameters"] > 0
    assert "| 64 | 2 |" in (tmp_path / "lwgan_step_quick.md").read_text()
