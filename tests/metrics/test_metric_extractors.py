"""Extractors: lite0 offline, the FID Inception plumbing with random weights, the domain CNN
trained once and reused, and the cached real-data statistics."""

from __future__ import annotations

import io
import math
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from latentstudio.data.shapes import make_shapes
from latentstudio.errors import UserError
from latentstudio.images import from_uint8
from latentstudio.metrics import stats as stats_module
from latentstudio.metrics.extractors import build_extractor, domain, extract_features
from latentstudio.metrics.extractors.inception import (
    FID_WEIGHTS_NAME,
    FID_WEIGHTS_URL,
    FIDInceptionV3,
    inception_weights_path,
)
from latentstudio.metrics.fid import frechet_distance
from latentstudio.metrics.stats import real_features

# Names and shapes of entries in pytorch-fid's pt_inception-2015-12-05-6726825d.pth.
PYTORCH_FID_KEYS = {
    "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
    "Conv2d_4a_3x3.bn.running_var": (192,),
    "Mixed_5b.branch5x5_2.conv.weight": (64, 48, 5, 5),
    "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
    "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
    "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
    "Mixed_7a.branch7x7x3_4.conv.weight": (192, 192, 3, 3),
    "Mixed_7b.branch3x3dbl_1.conv.weight": (448, 1280, 1, 1),
    "Mixed_7c.branch3x3_2b.conv.weight": (384, 384, 3, 1),
    "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1),
    "fc.weight": (1008, 2048),
    "fc.bias": (1008,),
}


def test_lite0_gives_1280_features_and_treats_grey_as_rgb() -> None:
    ext = build_extractor("lite0", progress=False)
    rgb = make_shapes(2, 32, 3, seed=0).images
    grey = rgb.float().mean(1, keepdim=True).round().to(torch.uint8)
    f = extract_features(ext, torch.cat([rgb, grey.expand(-1, 3, -1, -1)]), progress=False)
    g = extract_features(ext, grey, progress=False)
    assert f.shape == (4, 1280) and np.isfinite(f).all() and f.std() > 0
    assert np.allclose(g, f[2:], atol=1e-4)
    assert np.array_equal(f, extract_features(ext, torch.cat([rgb, grey.expand(-1, 3, -1, -1)]),
                                              progress=False))


def test_inception_loads_a_pytorch_fid_shaped_state_dict(tmp_path: Path) -> None:
    net = FIDInceptionV3()
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    for key, shape in PYTORCH_FID_KEYS.items():
        assert shapes[key] == shape, key
    assert sum(p.numel() for p in net.parameters()) == 23_850_960  # pytorch-fid's FID Inception
    gen = torch.Generator().manual_seed(0)
    state = {k: (torch.rand(v.shape, generator=gen) + 0.5 if k.endswith("running_var")
                 else torch.randn(v.shape, generator=gen) * 0.05 if v.is_floating_point() else v)
             for k, v in net.state_dict().items()}
    path = tmp_path / FID_WEIGHTS_NAME
    torch.save(state, path)
    ext = build_extractor("inception", weights=str(path), progress=False)
    feats = extract_features(ext, make_shapes(1, 32, 1, seed=0).images, progress=False)
    assert feats.shape == (1, 2048) and np.isfinite(feats).all() and feats.std() > 0


def test_inception_without_weights_offline_says_where_to_get_them(
        monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(UserError) as e:
        build_extractor("inception", progress=False)
    message = str(e.value)
    assert "\n" not in message and FID_WEIGHTS_URL in message
    assert str(cache / "weights" / FID_WEIGHTS_NAME) in message and "--weights" in message
    with pytest.raises(UserError, match="does not exist"):
        build_extractor("inception", weights=str(cache / "nope.pth"), progress=False)


def test_inception_download_is_hash_checked(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    class Response(io.BytesIO):
        headers: dict = {}

        def __enter__(self) -> Response:
            return self

        def __exit__(self, *exc: object) -> None: ...

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Response(b"not the weights"))
    with pytest.raises(UserError, match="hash check"):
        inception_weights_path(progress=False)
    assert not (cache / "weights" / FID_WEIGHTS_NAME).exists()


def test_domain_extractor_is_trained_once_then_reused(monkeypatch: pytest.MonkeyPatch,
                                                      cache: Path) -> None:
    data = make_shapes(48, 16, 1, seed=0)
    calls = []
    real_train = domain.train_domain_network

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(domain, "train_domain_network", counting)
    monkeypatch.setattr(domain, "DEFAULT_TRAINING", domain.DomainTraining(epochs=1))
    first = build_extractor("domain", data, progress=False)
    assert calls == [1] and len(list((cache / "metrics" / "domain").glob("*.pt"))) == 1
    second = build_extractor("domain", data, progress=False)
    assert calls == [1]  # loaded from the cache, not trained again
    cached = next((cache / "metrics" / "domain").glob("*.pt"))
    assert first.cache_id == second.cache_id == f"domain-{cached.stem}"
    assert cached.stem.startswith(data.fingerprint())
    f1 = extract_features(first, data.images[:8], progress=False)
    assert f1.shape == (8, 128)
    assert np.array_equal(f1, extract_features(second, data.images[:8], progress=False))
    data.labels = None  # other data (unlabelled): another network, trained contrastively
    assert build_extractor("domain", data, progress=False).dim == 128 and len(calls) == 2
    # Other training settings: another network, and real-data statistics of their own.
    monkeypatch.setattr(domain, "DEFAULT_TRAINING", domain.DomainTraining(epochs=1, colours="no-hue"))
    other = build_extractor("domain", data, progress=False)
    assert len(calls) == 3 and other.cache_id not in (first.cache_id, f"domain-{data.fingerprint()}")


def test_contrastive_domain_features_rank_unseen_real_images_above_damaged_ones() -> None:
    # Unlabelled shapes: images of the same kind that the network never saw score closer to the
    # training images than the same images blurred or noised (measured in fp32 and bf16: unseen
    # 0.07-0.08, blurred 0.56-0.67, noised 0.27-0.29; without hue jitter blurred was 0.16-0.18
    # and noised 0.34).
    seen, unseen = make_shapes(96, 16, 3, seed=0), make_shapes(96, 16, 3, seed=1)
    seen.labels = unseen.labels = None
    config = domain.DomainTraining(contrastive_steps=60, batch_size=48, width=8)
    net, summary = domain.train_domain_network(seen, config, progress=False)
    assert summary["task"] == "contrastive"
    x = from_uint8(unseen.images)
    blurred = F.interpolate(F.avg_pool2d(x, 4), size=16, mode="nearest")
    noised = (x + 0.5 * torch.randn(x.shape, generator=torch.manual_seed(0))).clamp(-1, 1)
    with torch.no_grad():
        real = net(from_uint8(seen.images)).numpy()
        fid = [frechet_distance(real, net(images).numpy()) for images in (x, blurred, noised)]
    assert 3 * fid[0] < fid[1] and 3 * fid[0] < fid[2], fid


def test_hue_rotation_turns_the_colour_circle_and_keeps_grey() -> None:
    turns = domain._hue_rotation(torch.tensor([0.0, 2 * math.pi / 3, 1.0]))
    torch.testing.assert_close(turns[0], torch.eye(3))
    torch.testing.assert_close(turns[1] @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]))
    torch.testing.assert_close(turns[2] @ torch.full((3,), 0.4), torch.full((3,), 0.4))
    torch.testing.assert_close(turns[2] @ turns[2].T, torch.eye(3))


def test_simclr_colours_make_features_care_less_about_hue() -> None:
    """With hue jitter and greyscale in the views (SimCLR's colour distortion) the same images in
    other hues move less in feature space than with brightness, contrast and saturation alone."""
    seen = make_shapes(96, 16, 3, seed=0)
    seen.labels = None
    x = from_uint8(seen.images)
    # Turned by 0.5 rad, inside the views' jitter (measured: 0.21 against 0.67).
    turned = torch.einsum("ij,njhw->nihw", domain._hue_rotation(torch.tensor([0.5]))[0],
                          (x + 1) / 2).clamp(0, 1) * 2 - 1
    fid = {}
    for colours in ("simclr", "no-hue"):
        config = domain.DomainTraining(contrastive_steps=60, batch_size=48, width=8, colours=colours)
        net, _ = domain.train_domain_network(seen, config, progress=False)
        with torch.no_grad():
            real = net(x).numpy()
            fid[colours] = frechet_distance(real, net(turned).numpy())
    assert fid["simclr"] < 0.6 * fid["no-hue"], fid


def test_domain_extractor_needs_the_data() -> None:
    with pytest.raises(UserError, match="real data"):
        build_extractor("domain", None, progress=False)


def test_unknown_extractor_is_a_user_error() -> None:
    with pytest.raises(UserError, match="lite0"):
        build_extractor("vgg")


def test_real_statistics_are_cached_per_dataset_extractor_and_count(
        tiny_extractor: object, monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    data = make_shapes(40, 16, seed=0)
    first = real_features(data, tiny_extractor, n=30, seed=0, progress=False)
    assert first.features.shape == (30, 128) and len(set(first.index)) == 30
    assert np.allclose(first.stats.mu, first.features.astype(np.float64).mean(0))

    def no_extraction(*args: object, **kwargs: object) -> None:
        raise AssertionError("features were extracted again")

    monkeypatch.setattr(stats_module, "extract_features", no_extraction)
    again = real_features(data, tiny_extractor, n=30, seed=0, progress=False)
    assert np.array_equal(again.features, first.features)
    assert np.array_equal(again.stats.sigma, first.stats.sigma)
    with pytest.raises(AssertionError):
        real_features(data, tiny_extractor, n=20, seed=0, progress=False)  # another sample
    with pytest.raises(AssertionError):
        real_features(make_shapes(40, 16, seed=5), tiny_extractor, n=30, progress=False)


def test_lite0_features_come_from_a_network_with_its_norms_folded() -> None:
    pytest.importorskip("efficientnet_lite_pytorch")
    from torch import nn

    from latentstudio.metrics.extractors import build_extractor
    from latentstudio.metrics.extractors.lite0 import Lite0Features
    from latentstudio.models.lite0 import load_lite0

    ex = build_extractor("lite0", None, "cpu", None, False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in ex.net.modules())
    unfolded = Lite0Features(load_lite0()).eval()
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    with torch.inference_mode():
        expected = unfolded(ex.prepare(x).contiguous())
    assert torch.allclose(ex(x), expected, atol=1e-4, rtol=1e-4)
