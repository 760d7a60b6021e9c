"""Commands `train`, `demo` and `sample`."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from pathlib import Path
from typing import Any

from latentstudio.commands import positive_int as _positive
from latentstudio.commands.explore import size_arg
from latentstudio.errors import UserError

HELP = {
    "model": "model family (dcgan, vae-conv, cgan, wgan-gp, ...; see `latentstudio models`)",
    "data": "shapes (default), shapes:N, folder:PATH or a directory, mnist, fashion-mnist, "
            "cifar10, cifar10:horse, or a packed .npz",
    "resolution": "image size in pixels: 28, 32, 64 or 128 (fastgan: 64 up to 1024), or "
                  "WIDTHxHEIGHT like 64x128 (dcgan, vae-conv, fastgan)",
    "channels": "1 (grayscale), 3 (colour), 2 or 4 (the same with transparency); default: the "
                "data's own",
    "fit": "how images are fitted to the size: crop (centre, to its aspect ratio) or pad",
    "data_limit": "use at most this many images",
    "epochs": "passes over the data",
    "steps": "stop after this many steps instead (overrides --epochs)",
    "batch_size": "images per step",
    "lr": "learning rate (default: the model's)",
    "lr_d": "discriminator/critic learning rate (default: --lr)",
    "betas": "Adam betas, e.g. 0.5,0.999",
    "optimizer": "adam or rmsprop (default: the model's)",
    "latent_dim": "size of the latent vector z",
    "width": "feature maps in the outer conv layers (network size)",
    "loss": "bce, hinge or wasserstein (default: the model's)",
    "n_critic": "discriminator steps per generator step",
    "clip": "WGAN weight clipping bound, e.g. 0.01",
    "gp_weight": "gradient penalty weight (WGAN-GP: 10)",
    "spectral_norm": "spectral normalisation in the discriminator",
    "label_smoothing": "one-sided label smoothing for real images, e.g. 0.1",
    "label_noise": "fraction of discriminator labels flipped, e.g. 0.05",
    "instance_noise": "std of Gaussian noise on discriminator inputs, annealed to 0",
    "r1": "R1 penalty weight on real images' discriminator gradients, e.g. 1 (steadies GANs)",
    "ema": "keep an exponential moving average of the generator, e.g. 0.999 (per step)",
    "ema_rampup": "the average's half-life stays under this fraction of the images seen so far, "
                  "so short runs average recent weights (StyleGAN2-ADA's ema_rampup; 0: off)",
    "augment": "none, diffaug (for a few hundred images) or ada (DiffAugment's augmentations "
               "applied with a probability steered by the discriminator, Karras et al. 2020)",
    "diffaug_policy": "--augment diffaug: which of color, translation, cutout, comma-separated "
                      "(default: the model's; fastgan color,translation as in its paper's code, "
                      "others all three)",
    "ada_target": "--augment ada: the E[sign(D(real))] it holds (higher: less augmentation)",
    "ada_speed": "--augment ada: thousands of images over which p may go from 0 to 1",
    "mirror": "flip training images left-right at random (for data without a handedness)",
    "recon": "VAE reconstruction loss: bce or mse",
    "beta": "VAE KL weight",
    "kl_warmup": "VAE: steps over which the KL weight ramps up from 0",
    "preview_every": "write a sample grid every 500steps, 90s, 5m, 1h or 2epochs of training "
                     "(a bare number counts epochs); also at the start and the end",
    "preview_count": "images in each sample grid",
    "checkpoint_every": "write checkpoints/last.pt every 500steps, 5m, 2epochs, ... (as "
                        "--preview-every); also at the end and on Ctrl-C",
    "log_every": "log losses every K steps",
    "seed": "random seed",
    "out": "run folder (default: runs/MODEL-DATA-RESpx-TIME)",
    "device": "auto, cpu, cuda or cuda:N",
    "precision": "auto (bf16 on GPUs that support it, fp32 on CPU), bf16, fp16 or fp32",
    "compile": "torch.compile the models (the first time 2-3 minutes on a 2-core CPU, seconds "
               "once torch's cache holds them; falls back with a warning if it fails; a folder "
               "on a CPU gets it for fastgan runs of 2,500 steps or more, --no-compile to skip)",
    "init_from": "fine-tune: start a new run from the weights of RUN (its last checkpoint; "
                 "RUN:best for best.pt) with fresh optimisers at step 0; model and loss settings "
                 "not given default to RUN's",
    "grow_from": "train at this smaller side first (fastgan, e.g. 64), in a run of its own "
                 "beside --out (OUT-64px), then grow that run to --resolution in --out: on a "
                 "CPU it draws shapes at 256 px long before a run from 256 px does; 0: "
                 "train at --resolution from the start (a folder on a CPU grows above 128 px)",
    "grow_steps": "--grow-from: steps at the smaller size",
    "grow_batch_size": "--grow-from: batch size at the smaller size (default: --batch-size)",
}


def _flag_kwargs(hint: Any) -> dict[str, Any]:
    """argparse keywords for a TrainConfig field's type."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        hint = args[0]
    if hint is bool:
        return {"action": argparse.BooleanOptionalAction}
    if typing.get_origin(hint) is typing.Literal:
        return {"choices": [a for a in typing.get_args(hint) if a is not None]}
    if typing.get_origin(hint) is tuple:
        return {"type": _betas}
    if hint in (int, float, str):
        return {"type": hint}
    return {}


def _betas(text: str) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers like 0.5,0.999, got {text!r}") from None
    return a, b


def _add_flags(parser: Any, cls: type, helps: dict[str, str], skip: set[str]) -> None:
    """One flag per field of the dataclass `cls`; unset flags stay None (defaults apply later)."""
    defaults = cls()
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        default = getattr(defaults, f.name)
        shown = f" [default: {default}]" if default not in (None, False) else ""
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, default=None,
                            help=helps.get(f.name, f.metadata.get("help", "")) + shown,
                            **_flag_kwargs(hints[f.name]))


def _family_settings_owners() -> dict[str, list[str]]:
    """Each family-owned setting's name and the families that have it."""
    from latentstudio.models import all_families

    owners: dict[str, list[str]] = {}
    for family in all_families():
        for f in dataclasses.fields(family.settings) if family.settings else ():
            owners.setdefault(f.name, []).append(family.name)
    return owners


def add_train_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field and per setting a model family declares as its own."""
    from latentstudio.models import all_families
    from latentstudio.train.config import TrainConfig

    _add_flags(parser, TrainConfig, HELP, skip={"family_settings"})
    seen = set(f.name for f in dataclasses.fields(TrainConfig))
    for family in all_families():
        if family.settings is None:
            continue
        group = parser.add_argument_group(f"settings of --model {family.name}")
        _add_flags(group, family.settings, {}, skip=seen)
        seen |= {f.name for f in dataclasses.fields(family.settings)}


def config_from_args(args: argparse.Namespace, pick_model: bool = False) -> tuple[Any, dict[str, Any]]:
    """TrainConfig from defaults < --config file < flags, and the flags given explicitly.
    With `pick_model`, a folder trained without --model gets the family and tricks that suit its
    size and resolution (train/auto.py), said in one line.

    Settings a family owns (flags or config-file keys) go into `family_settings`; one that the
    chosen model does not have is a UserError naming the models that do.
    """
    from latentstudio.train.config import TrainConfig, load_config_file

    owners = _family_settings_owners()
    names = [f.name for f in dataclasses.fields(TrainConfig)] + list(owners)
    given = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    settings = load_config_file(args.config) if args.config else {}
    settings.update(given)
    if pick_model and "model" not in settings:
        _pick_model(settings)
    own = {n: settings.pop(n) for n in list(settings) if n in owners}
    model = settings.get("model", TrainConfig.model)
    for name in own:
        if model not in owners[name]:
            raise UserError(f"--{name.replace('_', '-')} is a setting of {', '.join(owners[name])}, "
                            f"not of {model}")
    if own:
        settings["family_settings"] = {**settings.get("family_settings", {}), **own}
    _check_kind_settings(model, settings)
    return TrainConfig.from_dict(settings), given


def _readers(name: str) -> list[str]:
    """The kinds whose training reads the kind-specific setting `name` (none: every kind's)."""
    from latentstudio.models import all_families, get_kind

    return sorted({f.kind for f in all_families() if name in get_kind(f.kind).step_settings})


def _other_kinds_setting(model: str, name: str) -> bool:
    """Whether `name` is a setting that only kinds other than `model`'s read."""
    from latentstudio.models import all_families, get_family

    if model not in {f.name for f in all_families()}:
        return False  # TrainConfig names the models there are
    readers = _readers(name)
    return bool(readers) and get_family(model).kind not in readers


def _check_kind_settings(model: str, settings: dict[str, Any]) -> None:
    """A UserError for a setting, away from its default, that only other kinds of model read
    (e.g. --augment on a VAE: it has no discriminator to augment for)."""
    from latentstudio.models import all_families, get_family
    from latentstudio.train.config import TrainConfig

    defaults = TrainConfig()
    for name, value in settings.items():
        if _other_kinds_setting(model, name) and value != getattr(defaults, name):
            readers = _readers(name)
            users = sorted(f.name for f in all_families() if f.kind in readers)
            raise UserError(f"--{name.replace('_', '-')} only applies to {' and '.join(readers)} "
                            f"models ({', '.join(users)}); {model} is a "
                            f"{get_family(model).kind}: drop it")


def _pick_model(settings: dict[str, Any]) -> None:
    from latentstudio.devices import resolve_device
    from latentstudio.train.auto import suggest

    on_gpu = resolve_device(settings.get("device", "auto")).type == "cuda"
    suggestion = suggest(settings, on_gpu)
    if suggestion is not None:
        added, line = suggestion
        settings.update(added)
        print(line, file=sys.stderr)


def _train_argv(args: argparse.Namespace) -> list[str]:
    """The `train` flags set in `args`, as a command line without --gpus (for torchrun's children)."""
    argv: list[str] = []
    for action in args.train_parser._actions:
        value = getattr(args, action.dest, None)
        if not action.option_strings or action.dest in ("help", "gpus") or value == action.default:
            continue
        flag = max(action.option_strings, key=len)
        if isinstance(action, argparse.BooleanOptionalAction):
            argv.append(action.option_strings[0] if value else "--no-" + action.option_strings[0][2:])
        elif action.nargs == 0:  # store_true and the like
            argv.append(flag)
        else:
            for v in (value if isinstance(value, list) else [value]):
                shown = ",".join(repr(float(x)) for x in v) if isinstance(v, tuple) else str(v)
                argv += [flag, shown]
    return argv


def launch_gpus(args: argparse.Namespace) -> int:
    """Run this training in args.gpus processes under torchrun; the exit status of torchrun."""
    import shlex
    import subprocess

    import torch

    from latentstudio.train.distributed import launch_command

    if not str(args.device or "auto").startswith("cpu"):
        visible = torch.cuda.device_count()
        if visible == 0:
            raise UserError("--gpus needs CUDA GPUs and none is visible (--device cpu --gpus N "
                            "runs N CPU processes, for testing)")
        if args.gpus > visible:
            raise UserError(f"--gpus {args.gpus}, but only {visible} CUDA GPU(s) are visible")
    cmd = launch_command(args.gpus, ["train", *_train_argv(args)])
    print(f"launching: {shlex.join(cmd)}", file=sys.stderr)
    return subprocess.run(cmd, check=False).returncode


def _eval_callbacks(args: argparse.Namespace) -> list:
    """The --eval-every callback, when asked for."""
    if not getattr(args, "eval_every", None):
        return []
    from latentstudio.metrics.evaluate import EvalConfig
    from latentstudio.train.evaluation import EvalCallback

    config = EvalConfig(metrics=tuple(m.strip() for m in args.eval_metrics.split(",") if m.strip()),
                        n=args.eval_n, extractor=args.eval_extractor, device="auto")
    return [EvalCallback(config, every=args.eval_every, keep_best_by=args.keep_best_by)]


def cmd_train(args: argparse.Namespace) -> int:
    import os

    from latentstudio.train.distributed import world_from_env
    from latentstudio.train.loop import resumed_config, train

    if getattr(args, "gpus", None) and args.gpus > 1 and not args.dry_run and \
            "WORLD_SIZE" not in os.environ:
        return launch_gpus(args)
    if args.resume:
        _, given = config_from_args(args)
        if args.dry_run:
            return _print_resolved(resumed_config(args.resume, given))
        allowed = {"epochs", "steps", "log_every", "preview_every", "checkpoint_every", "device"}
        ignored = sorted(set(given) - allowed)
        if ignored:
            raise UserError(f"--resume keeps the run's settings; only --epochs, --steps, --device and "
                            f"logging flags may change (drop: {', '.join('--' + i.replace('_', '-') for i in ignored)})")
        run_dir = train(resume=args.resume, overrides=given, callbacks=_eval_callbacks(args),
                        raise_interrupt=True)
    else:
        if args.init_from and args.grow_from:  # before reading the parent
            from latentstudio.train.grow import BOTH_STARTS

            raise UserError(BOTH_STARTS)
        if args.init_from or args.config:
            _inherit_parent(args)
        cfg, _ = config_from_args(args, pick_model=True)
        if args.dry_run:
            return _print_resolved(cfg)
        run_dir = train(cfg, callbacks=_eval_callbacks(args), raise_interrupt=True)
    if world_from_env().is_main:
        _print_results(Path(run_dir))
    return 0


def _inherit_parent(args: argparse.Namespace) -> None:
    """--init-from RUN: the parent's model settings for the flags given neither on the command
    line nor in --config (so `--init-from RUN --data folder:X` trains the same model)."""
    from latentstudio.runs import read_run_config
    from latentstudio.train.config import load_config_file, parent_settings, parse_init_from

    in_file = load_config_file(args.config) if args.config else {}
    spec = args.init_from or in_file.get("init_from")
    if not spec:
        return
    path, _ = parse_init_from(str(spec))
    if not path.is_dir():
        raise UserError(f"--init-from {spec}: {path} is not a run folder")
    inherited = parent_settings(read_run_config(path))
    model = args.model or in_file.get("model") or inherited.get("model")
    for name, value in inherited.items():
        if getattr(args, name, None) is None and name not in in_file \
                and not _other_kinds_setting(str(model), name):
            setattr(args, name, value)


def _print_resolved(cfg: Any) -> int:
    """--dry-run: the settings a training would use, with the family's defaults filled in."""
    import json

    from latentstudio.models import get_family
    from latentstudio.train.config import resolve_config

    print(json.dumps(resolve_config(cfg, get_family(cfg.model)).to_dict(), indent=2))
    return 0


def _print_results(run_dir: Path) -> None:
    from latentstudio.runs import sample_grids

    samples = [p for _, p in sample_grids(run_dir)]
    print(f"run folder: {run_dir}")
    if samples:
        print(f"  latest grid:  {samples[-1]}")
    print(f"  progress:     {run_dir / 'progress.gif'}")
    print(f"  losses:       {run_dir / 'losses.png'}")
    print(f"  checkpoint:   {run_dir / 'checkpoints' / 'last.pt'}")
    if (run_dir / "tb").is_dir():
        print(f"  TensorBoard:  tensorboard --logdir {run_dir / 'tb'}")
    print(f"  more samples: latentstudio sample {run_dir} --n 64 --out grid.png")


# Instance noise and an EMA generator: without them, on these flat-coloured images the
# discriminator wins within 100 steps and DCGAN draws blobs (or collapses) for thousands more.
DEMO = dict(model="dcgan", data="shapes:6000", resolution=32, width=32, batch_size=64, epochs=24,
            instance_noise=0.2, ema=0.995, preview_every=1, preview_count=36, seed=0)
# FastGAN at 64 px, at the width and batch train/auto.py picks for a folder on a CPU.
DEMO_FASTGAN = dict(model="fastgan", data="shapes:2000", resolution=64, width=8, batch_size=16,
                    epochs=16, augment="diffaug", ema=0.999, preview_every=1, preview_count=36,
                    seed=0)
DEMOS = {"dcgan": DEMO, "fastgan": DEMO_FASTGAN}


def cmd_demo(args: argparse.Namespace) -> int:
    from latentstudio.train.config import TrainConfig
    from latentstudio.train.loop import train

    settings = dict(DEMOS[args.model], out=args.out, device=args.device)
    if args.epochs is not None:
        settings["epochs"] = args.epochs
    name = {"dcgan": "a DCGAN", "fastgan": "FastGAN"}[args.model]
    print(f"latentstudio demo: training {name} on the built-in shapes dataset "
          f"({settings['epochs']} epochs at {settings['resolution']} px; a few minutes on a laptop "
          "CPU)", file=sys.stderr)
    run_dir = train(TrainConfig(**settings), raise_interrupt=True)
    _print_results(Path(run_dir))
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from latentstudio.explore.sampling import sample_to
    from latentstudio.explore.seeds import parse_seeds

    if args.seeds is not None and args.seed != 0:
        raise UserError("give --seed (the first of --n seeds) or --seeds (a list), not both")
    written = sample_to(args.run, args.out, n=args.n, seed=args.seed, class_=args.class_,
                        checkpoint=args.checkpoint, device=args.device, nrow=args.nrow,
                        truncation=args.truncation, add=args.add, size=args.size,
                        seeds=None if args.seeds is None else parse_seeds(args.seeds))
    print(f"wrote {written}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train a model and write a run folder",
        description="Train a generative model. Example: latentstudio train --model dcgan "
                    "--data folder:~/sketches --resolution 64 --epochs 50 --out runs/sketches",
    )
    add_train_flags(p)
    p.add_argument("--config", help="TOML or JSON file of settings (flags override it)")
    p.add_argument("--resume", metavar="RUN", help="continue the run in this folder")
    p.add_argument("--dry-run", action="store_true", help="print the resolved settings and stop")
    p.add_argument("--eval-every", type=_positive, metavar="K",
                   help="every K epochs compute metrics (FID by default, on --eval-extractor), log them to "
                        "metrics.jsonl and TensorBoard, and keep checkpoints/best.pt")
    p.add_argument("--eval-metrics", default="fid", help="comma list of fid,kid,pr,dc,mem [default: fid]")
    p.add_argument("--eval-n", type=_positive, default=2000, help="images per evaluation [default: 2000]")
    p.add_argument("--eval-extractor", default="auto",
                   help="auto (domain at 32 px or less and for gray data, else lite0), lite0, "
                        "inception or domain [default: auto]")
    p.add_argument("--keep-best-by", default="fid",
                   help="fid, kid, precision, recall, density or coverage [default: fid]")
    p.add_argument("--gpus", type=_positive, metavar="N",
                   help="train on N GPUs of this machine with DistributedDataParallel (launches "
                        "torchrun; --batch-size is the total); with --device cpu, N CPU processes")
    p.set_defaults(func=cmd_train, train_parser=p)

    p = sub.add_parser(
        "demo", help="train a small DCGAN (or FastGAN) on the built-in shapes (a few minutes on a CPU)",
        description="Train a small DCGAN (or with --model fastgan a FastGAN at 64 px) on the "
                    "built-in shapes dataset. Example: latentstudio demo --model fastgan",
    )
    p.add_argument("--out", default="runs/demo", help="run folder [default: runs/demo]")
    p.add_argument("--model", choices=sorted(DEMOS), default="dcgan",
                   help="dcgan (32 px) or fastgan (64 px) [default: dcgan]")
    p.add_argument("--epochs", type=_positive,
                   help=f"epochs [default: {DEMO['epochs']} for dcgan, "
                        f"{DEMO_FASTGAN['epochs']} for fastgan]")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "sample", help="generate images from a trained run",
        description="Generate images. Example: latentstudio sample runs/demo --n 64 --seed 1 "
                    "--out grid.png (or --out folder/ for one PNG per image); "
                    "latentstudio sample runs/demo --truncation 0.7 --add square.pt:1.5",
    )
    p.add_argument("run", help="run folder")
    p.add_argument("--n", type=_positive, default=64, help="number of images [default: 64]")
    p.add_argument("--seed", type=int, default=0, help="seed of the latents [default: 0]")
    p.add_argument("--out", default="samples.png", help="grid .png, or a folder/ for single images")
    p.add_argument("--class", dest="class_", help="class name or index (conditional models)")
    p.add_argument("--nrow", type=_positive, help="images per grid row")
    p.add_argument("--size", type=size_arg, metavar="PX",
                   help="longer side of the grid in pixels, enlarged sharply [default: 512], or "
                        "of each single image [default: native]; 'native' keeps the raw pixels")
    p.add_argument("--truncation", type=float, metavar="PSI",
                   help="pull latents towards the mean: 1 = unchanged, 0.7 = safer, less varied")
    p.add_argument("--add", action="append", default=[], metavar="VEC.pt[:STRENGTH]",
                   help="add a concept vector from `latentstudio vector` (repeatable), e.g. vec.pt:1.5")
    p.add_argument("--checkpoint", default="last", help="last or best [default: last]")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto [default: cpu]")
    p.add_argument("--seeds", metavar="LIST",
                   help="one image per listed seed instead of --n and --seed, e.g. 0-35 or "
                        "1,5,10-20; seed S is the image of --seed S --n 1")
    p.set_defaults(func=cmd_sample)
