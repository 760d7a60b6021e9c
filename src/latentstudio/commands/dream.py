"""`latentstudio dream`: DeepDream on an image file, through a pretrained network or a run's model."""

from __future__ import annotations

import argparse
from pathlib import Path

from latentstudio.commands import finite_float, non_negative_int, positive_float, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `dream` command."""
    p = sub.add_parser(
        "dream",
        help="DeepDream an image through EfficientNet-Lite0, GoogLeNet or your own model",
        description="Amplify what a network sees in an image: gradient ascent on one layer's\n"
                    "activation, over octaves (scales), in tiles with shifting borders so any\n"
                    "size fits in memory. The default network, EfficientNet-Lite0, works offline.",
        epilog="examples:\n"
               "  latentstudio dream photo.jpg\n"
               "  latentstudio dream photo.jpg --net googlenet --layer inception4c --channels 0-5\n"
               "      --octaves 4 --octave-scale 1.4 --iterations 10 --keep-colors --out dream.png\n"
               "  latentstudio dream photo.jpg --frames 60 --zoom 1.02 --out zoom.mp4\n"
               "  latentstudio dream photo.jpg --net run:runs/dcgan-cats --layer 3",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", metavar="IMAGE", help="the picture to dream on (any size, gray or colour)")
    p.add_argument("--net", default="lite0", metavar="NET",
                   help="lite0 (default, offline), googlenet (weights downloaded once), or run:RUN "
                        "(a training run folder: its discriminator/critic or VAE encoder)")
    p.add_argument("--layer", default=None,
                   help="layer to amplify: block0..block15 (lite0, default block9); conv1..conv3, "
                        "inception3a..inception5b or mixed3a..mixed5b (googlenet, default "
                        "inception4c); a module name or index for run:RUN")
    p.add_argument("--channels", default=None, metavar="LIST",
                   help="only these channels of the layer, e.g. 0-5,120 (default: all)")
    p.add_argument("--objective", choices=("mean", "l2"), default=None,
                   help="maximise the mean activation, or its L2 (the original DeepDream's); "
                        "default: l2 for lite0, mean otherwise")
    p.add_argument("--octaves", type=positive_int, default=4, help="scales to dream at (default 4)")
    p.add_argument("--octave-scale", type=finite_float, default=1.4, metavar="RATIO",
                   help="size ratio between octaves (default 1.4)")
    p.add_argument("--iterations", type=positive_int, default=10, metavar="N",
                   help="gradient steps per octave (default 10)")
    p.add_argument("--step", type=positive_float, default=0.02,
                   help="mean change per pixel per step, image range [-1, 1] (default 0.02)")
    p.add_argument("--tile", type=int, default=512, metavar="PX",
                   help="largest tile side; bounds memory (default 512; 0 = whole image)")
    p.add_argument("--blend", type=finite_float, default=0.2,
                   help="share of the original mixed back at each octave, 0..1 (default 0.2)")
    p.add_argument("--keep-colors", action="store_true",
                   help="keep the original colours, dream only the brightness")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the random tile offsets (default 0)")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="output: .png/.jpg, or .gif/.mp4 with --frames "
                        "(default IMAGE-NAME_dream.png or .gif in the current folder)")
    p.add_argument("--frames", type=positive_int, default=1, metavar="N",
                   help="make a zooming dream video of N frames (default 1: a still picture)")
    p.add_argument("--zoom", type=positive_float, default=1.02, metavar="FACTOR",
                   help="magnification between video frames (default 1.02)")
    p.add_argument("--fps", type=positive_float, default=12, help="video frames per second (default 12)")
    p.add_argument("--weights", default=None, metavar="PATH",
                   help="weights file for the network (googlenet: googlenet-1378be20.pth)")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.set_defaults(func=run_dream)


def run_dream(args: argparse.Namespace) -> int:
    """Dream and say where the result went."""
    from latentstudio.dream import DreamConfig, dream_file

    config = DreamConfig(layer=args.layer, channels=args.channels, objective=args.objective,
                         octaves=args.octaves, octave_scale=args.octave_scale,
                         iterations=args.iterations, step=args.step, tile=args.tile,
                         blend=args.blend, keep_colors=args.keep_colors, seed=args.seed)
    out = args.out or f"{Path(args.input).stem}_dream{'.gif' if args.frames > 1 else '.png'}"
    path = dream_file(args.input, out, net=args.net, config=config, weights=args.weights,
                      device=args.device, frames=args.frames, zoom_factor=args.zoom,
                      fps=args.fps, progress=args.progress)
    print(f"wrote {path}")
    return 0
