"""What a feature space makes of real images: FID and precision/recall of held-out real images,
and of the same images damaged (shifted, blurred, noised, quarters shuffled, halves of two
images), against a training folder.

A metric that ranks models must score unseen real images of the same kind far better than damaged
ones. The README's "Evaluate and compare" and "Few images, high resolution" quote its output for
500 OpenMoji emoji against 500 others:

    python benchmarks/metric_reference.py --train ~/.cache/latentstudio/openmoji/64px-500-seed0 \\
        --held-out HELD_OUT_FOLDER --resolution 64 --extractor domain
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from latentstudio.data import load_dataset
from latentstudio.images import from_uint8
from latentstudio.metrics.extractors import build_extractor, extract_features
from latentstudio.metrics.fid import frechet_distance
from latentstudio.metrics.precision_recall import precision_recall


def shuffled_quarters(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Each image's four quarters in a random order: its colours and strokes, not its shape."""
    g = torch.Generator().manual_seed(seed)
    h, w = x.shape[-2] // 2, x.shape[-1] // 2
    quarters = [x[..., :h, :w], x[..., :h, w:2 * w], x[..., h:2 * h, :w], x[..., h:2 * h, w:2 * w]]
    out = torch.empty_like(x[..., :2 * h, :2 * w])
    for i in range(len(x)):
        q = [quarters[j][i] for j in torch.randperm(4, generator=g).tolist()]
        out[i] = torch.cat([torch.cat(q[:2], -1), torch.cat(q[2:], -1)], -2)
    return out


def damaged(images: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    """The held-out images in [-1, 1] as they are and damaged in five ways: three that change
    pixels, two that keep the pixels and break the shapes."""
    x = from_uint8(images)
    side = x.shape[-1]
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(x.shape, generator=g)
    other = x[torch.randperm(len(x), generator=g)]
    return {
        "held-out": x,
        "shifted 1/8": torch.roll(x, side // 8, dims=3),
        "blurred 4x": F.interpolate(F.interpolate(x, scale_factor=0.25, mode="area"),
                                    size=x.shape[-2:], mode="bilinear"),
        "noise 0.3": (x + 0.3 * noise).clamp(-1, 1),
        "quarters shuffled": shuffled_quarters(x, seed),
        "left and right halves of two images": torch.cat([x[..., :side // 2], other[..., side // 2:]], -1),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train", type=Path, required=True, help="folder the scores are against")
    p.add_argument("--held-out", type=Path, required=True, help="other real images of the kind")
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--extractor", default="domain", help="lite0, domain or inception")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    train = load_dataset(f"folder:{args.train}", resolution=args.resolution, progress=False)
    held = load_dataset(f"folder:{args.held_out}", resolution=args.resolution, progress=False)
    ext = build_extractor(args.extractor, train, progress=True)
    real = extract_features(ext, train.images, progress=False)
    print(f"| images ({len(held)} against {len(train)}) | FID ({args.extractor}) | precision | recall |")
    print("|---|---:|---:|---:|")
    for name, images in damaged(held.images).items():
        fake = extract_features(ext, images, progress=False)
        pr = precision_recall(real, fake)
        print(f"| {name} | {frechet_distance(real, fake):.2f} | {pr.precision:.2f} | {pr.recall:.2f} |")


if __name__ == "__main__":
    main()
