"""Commands `eval` (metrics of a run), `nearest` (is it copying?) and `runs` (compare runs)."""

from __future__ import annotations

import argparse
import sys

from latentstudio.commands import non_negative_int
from latentstudio.commands import positive_int as _positive
from latentstudio.errors import UserError

EXTRACTOR_HELP = ("feature network: auto (default: domain for images of 32 px or less and for "
                  "grayscale data, else lite0), lite0 (offline ImageNet EfficientNet-Lite0), "
                  "inception (pytorch-fid weights, comparable with papers) or domain (small CNN "
                  "trained on your data, cached per dataset)")


def cmd_eval(args: argparse.Namespace) -> int:
    from latentstudio.metrics.evaluate import EvalConfig, evaluate_run, format_result

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    if "mem" not in metrics:
        metrics.append("mem")  # the copy check is always reported; it costs little once extracted
    config = EvalConfig(metrics=tuple(metrics), n=args.n, extractor=args.extractor,
                        weights=args.weights, seed=args.seed, batch_size=args.batch_size,
                        device=args.device, progress=args.progress)
    result = evaluate_run(args.run, config, checkpoint=args.checkpoint)
    print(format_result(result))
    print(f"wrote {args.run.rstrip('/')}/eval.json")
    return 0


def cmd_nearest(args: argparse.Namespace) -> int:
    from latentstudio.metrics.nearest import nearest_run

    path = nearest_run(args.run, n=args.n, k=args.k, extractor=args.extractor, out=args.out,
                       seed=args.seed, device=args.device, weights=args.weights,
                       progress=args.progress, checkpoint=args.checkpoint, max_train=args.max_train)
    print(f"wrote {path}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from latentstudio.metrics import compare

    if args.csv and args.markdown:
        raise UserError("choose one of --csv and --markdown")
    runs = compare.collect_runs(args.dir)
    if not runs:
        print(f"no runs in {args.dir} (run folders hold a config.json)", file=sys.stderr)
        return 0
    table = compare.build_table(runs, sort=args.sort, reverse=args.reverse)
    if args.sort and table.sorted_by != args.sort:
        print(f"sorted by {table.sorted_by} (runs without it are listed last)", file=sys.stderr)
    if args.csv:
        sys.stdout.write(compare.to_csv(table))
    elif args.markdown:
        sys.stdout.write(compare.to_markdown(table))
    else:
        import os
        import shutil

        color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
        width = args.width
        if width is None and (sys.stdout.isatty() or "COLUMNS" in os.environ):
            width = shutil.get_terminal_size().columns  # a file or pipe gets every column
        sys.stdout.write(compare.to_terminal(table, color=color, width=width))
    return 0


def _run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run folder")
    p.add_argument("--extractor", default="auto", help=EXTRACTOR_HELP)
    p.add_argument("--weights", metavar="PATH",
                   help="weights file for the extractor (inception: pt_inception-2015-12-05-"
                        "6726825d.pth; default: downloaded once into the cache)")
    p.add_argument("--checkpoint", default="last", help="last or best [default: last]")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the samples [default: 0]")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda [default: auto]")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `eval`, `nearest` and `runs` commands."""
    p = sub.add_parser(
        "eval", help="score a run: FID, KID, precision/recall, density/coverage, memorisation",
        description="Sample N images from a run and compare them with its training data in a\n"
                    "network's feature space; print a table and write RUN/eval.json. Values are\n"
                    "labelled with the extractor, e.g. 'FID (lite0)'. Real-data features are\n"
                    "cached, so a second eval is faster. With fewer than 1000 real images FID is\n"
                    "strongly biased, so KID leads the table. The memorisation score (share of\n"
                    "samples much closer to a training image than training images are to each\n"
                    "other) is always included.",
        epilog="examples:\n"
               "  latentstudio eval runs/demo --metrics fid,kid,pr --n 10000\n"
               "  latentstudio eval runs/demo --n 500             # a quick look\n"
               "  latentstudio eval runs/mnist --extractor domain\n"
               "  latentstudio eval runs/demo --extractor inception --weights pt_inception.pth",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _run_flags(p)
    p.add_argument("--metrics", default="fid,kid,pr,dc",
                   help="comma list of fid, kid, pr (precision/recall), dc (density/coverage), "
                        "mem (memorisation) [default: fid,kid,pr,dc]")
    p.add_argument("--n", type=_positive, default=None,
                   help="generated images, and real images (at most the dataset) [default: as "
                        "many as the real images, at least 200, at most 2000 on a CPU and 10000 "
                        "on a GPU; lite0 embeds ~15-30 images/s on a laptop CPU]")
    p.add_argument("--batch-size", type=_positive, default=64,
                   help="images per feature batch [default: 64]")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "nearest", help="sheet of samples beside their nearest training images (is it copying?)",
        description="Write a sheet: each generated sample, its K nearest training images in the\n"
                    "extractor's feature space, then its K nearest in pixels. Near-identical\n"
                    "neighbours mean the model memorised its training images.",
        epilog="example:\n  latentstudio nearest runs/demo --n 32 --out nearest.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _run_flags(p)
    p.add_argument("--n", type=_positive, default=32, help="generated samples [default: 32]")
    p.add_argument("--k", type=_positive, default=3, help="neighbours of each kind [default: 3]")
    p.add_argument("--max-train", type=_positive, default=10000,
                   help="training images searched in feature space (pixels: all) [default: 10000]")
    p.add_argument("--out", help="PNG to write [default: RUN/nearest.png]")
    p.set_defaults(func=cmd_nearest)

    p = sub.add_parser(
        "runs", help="table of all runs: settings, progress and latest metrics",
        description="List every run folder in DIR with model, data, resolution, key\n"
                    "hyper-parameters, the step reached, wall time and latest metrics (losses,\n"
                    "--eval-every values, eval.json). Settings that differ between the runs are\n"
                    "highlighted; unreadable folders are listed as corrupt.",
        epilog="examples:\n"
               "  latentstudio runs\n"
               "  latentstudio runs runs/ --sort fid_lite0\n"
               "  latentstudio runs --sort step --reverse --markdown > runs.md",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dir", nargs="?", default="runs", help="folder of runs [default: ./runs]")
    p.add_argument("--sort", metavar="KEY",
                   help="column to sort by: name, model, lr, step, wall, fid_domain, ...; a "
                        "plain fid or kid picks the extractor most runs were scored with")
    p.add_argument("--reverse", action="store_true", help="sort descending")
    p.add_argument("--csv", action="store_true", help="print CSV")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument("--width", type=_positive, metavar="COLUMNS",
                   help="fit the table in this many columns [default: the terminal's width; "
                        "all columns when writing to a file]")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="colour the differing settings (auto: when printing to a terminal)")
    p.set_defaults(func=cmd_runs)
