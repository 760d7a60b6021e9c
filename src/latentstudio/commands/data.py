"""`latentstudio pack` (decode a data spec once into a .npz) and `latentstudio info` (describe one)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from latentstudio.commands import non_negative_int
from latentstudio.data import RESOLUTIONS
from latentstudio.data.base import size_text

if TYPE_CHECKING:
    import torch

_SPECS = ("shapes, shapes:N, folder:PATH or a directory, mnist, fashion-mnist, cifar10, "
          "cifar10:horse,deer, or a pack.npz")


def _size(text: str) -> int | str:
    """--resolution: an int for a square size, "WxH" otherwise (checked where it is used)."""
    return int(text) if text.strip().isdigit() else text.strip().lower()


def _add_decode_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", metavar="SPEC", help=f"what to read: {_SPECS}")
    p.add_argument("--resolution", type=_size, default=32, metavar="PX",
                   help=f"size in pixels, or WIDTHxHEIGHT like 64x128 (default 32; usual: "
                        f"{', '.join(map(str, RESOLUTIONS))})")
    p.add_argument("--channels", type=int, choices=(1, 2, 3, 4), default=None,
                   help="1 (grey) or 3 (colour); 4 (RGBA) or 2 (grey + alpha) keep a folder's "
                        "transparency; default: the source's own (a folder is 1 when every "
                        "image in it is grayscale, else 3)")
    p.add_argument("--fit", choices=("crop", "pad"), default="crop",
                   help="images of another shape: centre-crop to the size's aspect ratio "
                        "(default) or pad")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="use at most N images")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of procedural sources (default 0)")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bars")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `pack` and `info` commands."""
    p = sub.add_parser(
        "pack",
        help="decode a dataset once into a single .npz for fast loading",
        description="Decode a data spec once (download, resize, convert) into one uint8 .npz\n"
                    "archive with images, labels, class names and metadata; then train with\n"
                    "--data FILE.npz, which loads without decoding again.",
        epilog="examples:\n"
               "  latentstudio pack ~/photos/cats --resolution 64 --fit pad --out cats64.npz\n"
               "  latentstudio pack cifar10:horse --resolution 32 --out horses.npz",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_decode_flags(p)
    p.add_argument("--out", required=True, metavar="FILE.npz", help="where to write the pack")
    p.add_argument("--no-compress", dest="compress", action="store_false",
                   help="store uncompressed: larger file, faster to load")
    p.set_defaults(func=lambda args: run_pack(args))

    p = sub.add_parser(
        "info",
        help="describe a dataset: count, size, classes, fingerprint",
        description="Load a data spec and print what it holds; for a pack, also its metadata.",
        epilog="examples:\n  latentstudio info cifar10:horse,deer\n  latentstudio info cats64.npz",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_decode_flags(p)
    p.set_defaults(func=lambda args: run_info(args))


def _channels(n: int) -> str:
    return {1: "1 channel", 2: "2 channels (grey + alpha)", 4: "4 channels (RGBA)"}.get(
        n, f"{n} channels")


def _alpha_line(images: torch.Tensor) -> str:
    """How much of the images' alpha (last channel of uint8 (N, C, H, W)) is clear or partial."""
    alpha = images[:, -1]
    clear = (alpha == 0).float().mean().item()
    opaque = (alpha == 255).float().mean().item()
    return (f"alpha: {clear:.0%} of pixels transparent, {1 - clear - opaque:.0%} partly, "
            f"{opaque:.0%} opaque")


def run_pack(args: argparse.Namespace) -> int:
    """Write the pack and say where, how many images and how big."""
    from latentstudio.data.packed import pack_dataset

    path, images = pack_dataset(args.spec, args.out, args.resolution, args.channels, args.fit,
                                args.seed, args.limit, args.progress, args.compress)
    size_mb = path.stat().st_size / 1e6
    classes = f", {images.num_classes} classes" if images.labels is not None else ""
    print(f"wrote {len(images)} images ({size_text(*images.size)} px, {_channels(images.channels)}"
          f"{classes}) to {path} ({size_mb:.1f} MB), fingerprint {images.fingerprint()}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    """Print a short description of a data spec (a pack is described as stored)."""
    from latentstudio.data import load_dataset
    from latentstudio.data.packed import read_pack

    if args.spec.lower().endswith(".npz"):
        images, meta = read_pack(Path(args.spec))
        print(f"pack {args.spec}: made from {meta.get('spec')!r} by latentstudio "
              f"{meta.get('latentstudio_version')} on {meta.get('created')}")
    else:
        images = load_dataset(args.spec, args.resolution, args.channels, args.fit, args.seed,
                              args.limit, args.progress)
    print(f"{len(images)} images, {size_text(*images.size)} px, {_channels(images.channels)}, "
          f"fingerprint {images.fingerprint()}")
    if images.channels in (2, 4):
        print(_alpha_line(images.images))
    if images.labels is None:
        print("no class labels")
        return 0
    counts = images.labels.bincount(minlength=images.num_classes).tolist()
    print("classes: " + ", ".join(f"{n} ({c})" for n, c in zip(images.class_names, counts,
                                                                strict=True)))
    return 0
