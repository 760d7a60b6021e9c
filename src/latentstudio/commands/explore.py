"""Commands `interpolate`, `vector`, `project`, `latent-map`, `render` and `cppn`."""

from __future__ import annotations

import argparse
from pathlib import Path

from latentstudio.commands import non_negative_float, non_negative_int, positive_float
from latentstudio.commands import positive_int as _positive
from latentstudio.errors import UserError


def size_arg(text: str) -> int | str:
    """--size: a positive number of pixels, or 'native'."""
    if text == "native":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size: give pixels (e.g. 512) "
                                         "or 'native'") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"--size must be positive or 'native', not {value}")
    return value


def _run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run folder")
    p.add_argument("--checkpoint", default="last", help="last or best [default: last]")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto [default: cpu]")


def cmd_interpolate(args: argparse.Namespace) -> int:
    from latentstudio.explore.interpolate import interpolate

    written = interpolate(args.run, args.seeds, args.out, steps=args.steps, mode=args.mode,
                          loop=args.loop, fps=args.fps, class_=args.class_,
                          truncation=args.truncation, size=args.size,
                          checkpoint=args.checkpoint, device=args.device,
                          easing=args.easing, hold=args.hold)
    print(f"wrote {written}")
    return 0


def cmd_vector(args: argparse.Namespace) -> int:
    from latentstudio.explore.latents import check_output, split_keys
    from latentstudio.explore.vectors import sweep, vector_from_classes, vector_from_examples
    from latentstudio.images import make_grid, save_png
    from latentstudio.runs import load_run

    by_class = args.from_class is not None or args.to_class is not None
    by_example = bool(args.positive or args.negative)
    if by_class == by_example:
        raise UserError("give either --from-class A --to-class B, or --positive ... --negative ...")
    if by_class and (args.from_class is None or args.to_class is None):
        raise UserError("--from-class and --to-class go together")
    out = check_output(args.out, (".pt",))
    run = load_run(args.run, device=args.device, checkpoint=args.checkpoint)
    if by_class:
        vec = vector_from_classes(run, args.from_class, args.to_class, n=args.n)
    else:
        keys = [split_keys(",".join(args.positive or [])), split_keys(",".join(args.negative or []))]
        vec = vector_from_examples(run, *keys, class_=args.class_)
    vec.save(out)
    grid = out.with_suffix(".png")
    strengths = (-2.0, -1.0, 0.0, 1.0, 2.0)
    save_png(make_grid(sweep(run, vec, n=args.rows, seed=args.seed, strengths=strengths,
                             class_=args.class_), nrow=len(strengths)), grid)
    print(f"wrote {out} ({vec.description}; |v| = {vec.vector.norm():.2f})")
    print(f"wrote {grid} (rows: seeds {args.seed}.., columns: strength -2 ... +2)")
    print(f"  apply it: latentstudio sample {args.run} --add {out}:1.5")
    return 0


def cmd_project(args: argparse.Namespace) -> int:
    from latentstudio.explore.project import ProjectSettings, project_file

    out = args.out or str(Path(args.image).with_suffix(".latent.pt").name)
    settings = ProjectSettings(steps=args.steps, restarts=args.restarts, seed=args.seed)
    latent, side, result = project_file(args.run, args.image, out, class_=args.class_,
                                        settings=settings, checkpoint=args.checkpoint,
                                        device=args.device)
    print(f"wrote {latent} (pixel MSE {result.mse:.4f}"
          + (f", class {result.label})" if result.label is not None else ")"))
    print(f"wrote {side} (target | result)")
    print(f"  use it as a keyframe: latentstudio interpolate {args.run} --seeds {latent},7 --out walk.gif")
    if args.star:
        from latentstudio.images import to_pil
        from latentstudio.web.curation import add_item

        name = Path(args.image).name
        add_item(Path(args.run), f"projected:{name}:{latent.name}", to_pil(result.image),
                 {"source": "projected", "target": name, "mse": round(result.mse, 6), "seed": None},
                 result.z, result.label)
        print(f"  starred in {args.run}: the gallery's favourites and video keyframes show it")
    return 0


def cmd_latent_map(args: argparse.Namespace) -> int:
    from latentstudio.explore.latent_map import latent_map

    result = latent_map(args.run, args.out, n=args.n, grid=args.grid, data=args.data,
                        checkpoint=args.checkpoint, device=args.device)
    how = "first two principal components" if result.pca else "the 2-D latent"
    print(f"wrote {result.scatter} ({len(result.coords)} encoded images, {how})")
    print(f"wrote {result.manifold} ({args.grid} x {args.grid} decoded grid)")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from latentstudio.explore.render import render

    seeds = [args.seed]
    out = Path(args.out)
    if args.seeds is not None:
        from latentstudio.explore.seeds import parse_seeds

        if args.latent or args.seed != 0:
            raise UserError("give --seeds alone, without --seed or --latent")
        seeds = parse_seeds(args.seeds)
    for seed in seeds:
        target = out if args.seeds is None else out.with_name(f"{out.stem}-seed{seed}{out.suffix}")
        written = render(args.run, target, width=args.width, height=args.height, seed=seed,
                         latent=args.latent, class_=args.class_, truncation=args.truncation,
                         tile=args.tile, checkpoint=args.checkpoint, device=args.device)
        print(f"wrote {written}")
    return 0


def cmd_cppn(args: argparse.Namespace) -> int:
    from latentstudio.explore.render import render_random

    written = render_random(args.out, seed=args.seed, width=args.width, height=args.height,
                            latent_dim=args.latent_dim, hidden=args.hidden, layers=args.layers,
                            scale=args.scale, channels=args.channels, z_seed=args.z_seed,
                            tile=args.tile, device=args.device)
    print(f"wrote {written}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "interpolate", help="animate a walk through latent keyframes (GIF, MP4 or frames)",
        description="Walk smoothly through keyframes: seeds, latent .pt files (from `project`) or "
                    "images to project, mixed. Example: latentstudio interpolate runs/demo "
                    "--seeds 3,17,42 --steps 60 --loop --fps 24 --out walk.gif",
    )
    _run_flags(p)
    p.add_argument("--seeds", required=True, metavar="KEYS",
                   help="comma-separated keyframes: seeds (3,17), seed ranges (10-14), latent files "
                        "(a.pt), images (me.png)")
    p.add_argument("--steps", type=_positive, default=60, help="frames per transition [default: 60]")
    p.add_argument("--mode", choices=["slerp", "lerp"], default="slerp",
                   help="slerp follows the sphere where Gaussian latents live [default: slerp]")
    p.add_argument("--loop", action="store_true", help="return to the first keyframe, seamlessly")
    p.add_argument("--fps", type=positive_float, default=24, help="frames per second [default: 24]")
    p.add_argument("--out", default="walk.gif", help="walk.gif, walk.mp4 or frames/ [default: walk.gif]")
    p.add_argument("--size", type=size_arg, metavar="PX",
                   help="frame size in pixels, or 'native' for the model's own pixels (CPPN "
                        "runs render at it; others are enlarged, sharp) [default: at least "
                        "512 for .gif/.mp4, native for frames/]")
    p.add_argument("--class", dest="class_", help="class of seed keyframes (conditional models)")
    p.add_argument("--truncation", type=non_negative_float, metavar="PSI", help="pull latents towards the mean")
    p.add_argument("--easing", choices=["linear", "smooth", "cubic"], default="linear",
                   help="speed within each transition: linear (constant), smooth (smoothstep "
                        "3t^2-2t^3) or cubic (ease-in-out cubic, slower near keyframes) "
                        "[default: linear]")
    p.add_argument("--hold", type=non_negative_int, default=0, metavar="N",
                   help="show each keyframe N extra frames, so the walk rests on it [default: 0]")
    p.set_defaults(func=cmd_interpolate)

    p = sub.add_parser(
        "vector", help="make a concept vector (a direction in latent space) and a -2..+2 preview",
        description="Make a concept vector from two classes of the run's labelled data, or from "
                    "examples you picked. Writes VEC.pt and VEC.png (a -2...+2 sweep). Examples: "
                    "latentstudio vector runs/shapes --from-class circle --to-class square --out "
                    "square.pt; latentstudio vector runs/demo --positive 3,8,21 --negative 5,9 "
                    "--out bright.pt; then: latentstudio sample runs/demo --add bright.pt:1.5",
    )
    _run_flags(p)
    p.add_argument("--from-class", metavar="A", help="class name or index to move away from")
    p.add_argument("--to-class", metavar="B", help="class name or index to move towards")
    p.add_argument("--positive", action="append", metavar="KEYS",
                   help="examples with the idea: seeds or seed ranges (3,10-14), latent .pt files or "
                        "images (comma-separated)")
    p.add_argument("--negative", action="append", metavar="KEYS", help="examples without it")
    p.add_argument("--n", type=_positive, default=64,
                   help="images per class for --from-class/--to-class [default: 64]")
    p.add_argument("--class", dest="class_", help="class for seed examples and the preview "
                   "(conditional models)")
    p.add_argument("--rows", type=_positive, default=4, help="preview rows [default: 4]")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the preview's latents [default: 0]")
    p.add_argument("--out", default="vector.pt", help="vector file [default: vector.pt]")
    p.set_defaults(func=cmd_vector)

    p = sub.add_parser(
        "project", help="find the latent that best reproduces an image",
        description="Find the latent whose image best matches a picture (VAE: encoder then "
                    "refinement; GAN: optimisation from several restarts). Writes the latent "
                    "(.pt, usable as a keyframe) and a side-by-side PNG. Example: latentstudio "
                    "project runs/demo photo.png --out photo.pt",
    )
    _run_flags(p)
    p.add_argument("image", help="image file to reproduce")
    p.add_argument("--out", help="latent file [default: IMAGE.latent.pt]")
    p.add_argument("--steps", type=int, default=300, help="optimisation steps [default: 300]")
    p.add_argument("--restarts", type=_positive, default=8,
                   help="random starts for GANs, best kept [default: 8]")
    p.add_argument("--class", dest="class_", help="class (conditional models; default: try all)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the restarts [default: 0]")
    p.add_argument("--star", action="store_true",
                   help="also add the result to the run's favourites (a keyframe in the gallery's "
                        "video panel)")
    p.set_defaults(func=cmd_project)

    p = sub.add_parser(
        "latent-map", help="VAE: scatter of encoded data by label and a decoded latent grid",
        description="Plot where a VAE puts held-out images (coloured by label; PCA above 2-D) and "
                    "decode a regular grid across that plane. Example: latentstudio latent-map "
                    "runs/vae-mnist --out map  (writes map-scatter.png and map-manifold.png)",
    )
    _run_flags(p)
    p.add_argument("--out", default="latent-map", help="file prefix [default: latent-map]")
    p.add_argument("--n", type=_positive, default=2000, help="images to encode [default: 2000]")
    p.add_argument("--grid", type=_positive, default=15, help="manifold grid size [default: 15]")
    p.add_argument("--data", help="data spec to encode (default: the run's, with another seed), "
                                  "e.g. mnist:test")
    p.set_defaults(func=cmd_latent_map)

    p = sub.add_parser(
        "render", help="render a CPPN run at any size (e.g. 4096 x 4096)",
        description="Render a trained coordinate-based generator (--model cppn-gan) at any size, "
                    "tile by tile. Example: latentstudio render runs/cppn --width 4096 --height "
                    "4096 --seed 5 --out big.png",
    )
    _run_flags(p)
    p.add_argument("--width", type=_positive, default=1024, help="pixels [default: 1024]")
    p.add_argument("--height", type=_positive, help="pixels [default: the width]")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the latent [default: 0]")
    p.add_argument("--latent", help="a latent .pt file instead of --seed")
    p.add_argument("--seeds", metavar="LIST",
                   help="one picture per seed, e.g. 0-3 or 1,5,9: OUT-seedS.png each")
    p.add_argument("--class", dest="class_", help="class (conditional models)")
    p.add_argument("--truncation", type=non_negative_float, metavar="PSI", help="pull the latent towards the mean")
    p.add_argument("--tile", type=_positive, default=256, help="tile side; bounds memory [default: 256]")
    p.add_argument("--out", default="render.png", help="PNG file [default: render.png]")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser(
        "cppn", help="render an untrained random CPPN (abstract patterns, any size)",
        description="Render a random compositional pattern-producing network (Ha 2016): no "
                    "training, any size. --seed picks the network, --z-seed a variation. "
                    "Example: latentstudio cppn --seed 1 --width 2048 --out pattern.png",
    )
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the network [default: 0]")
    p.add_argument("--z-seed", type=non_negative_int, help="seed of the latent [default: --seed]")
    p.add_argument("--width", type=_positive, default=1024, help="pixels [default: 1024]")
    p.add_argument("--height", type=_positive, help="pixels [default: the width]")
    p.add_argument("--latent-dim", type=_positive, default=8, help="latent size [default: 8]")
    p.add_argument("--hidden", type=_positive, default=32, help="units per layer [default: 32]")
    p.add_argument("--layers", type=_positive, default=4, help="layers [default: 4]")
    p.add_argument("--scale", type=positive_float, default=8.0,
                   help="coordinate range: larger = busier patterns [default: 8]")
    p.add_argument("--channels", type=int, choices=[1, 3], default=3, help="1 grey or 3 colour")
    p.add_argument("--tile", type=_positive, default=256, help="tile side; bounds memory [default: 256]")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto [default: cpu]")
    p.add_argument("--out", default="cppn.png", help="PNG file [default: cppn.png]")
    p.set_defaults(func=cmd_cppn)
