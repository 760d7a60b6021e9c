"""Settings for a folder of images when no --model is given: the family and tricks that drew the
better images in benchmarks/fewshot_quality.py (on a CPU), or FastGAN's own settings on a GPU
(not measured here)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from latentstudio.data.base import parse_size
from latentstudio.data.folder import find_images
from latentstudio.devices import cpu_compiler_available
from latentstudio.train.config import as_flag

FASTGAN_SIDES = (64, 128, 256, 512, 1024)
DCGAN_LARGEST = 128
GROW_FROM = 64  # above 128 px on a CPU a folder trains at this size first, then grows
GROW_STEPS = 3000
# FastGAN on a CPU at the folder settings (width 8 or 16, one thread; models/spectral.py made it
# compile above 64 px): compiled, a step took 0.165 s against 0.21 s at 64 px, 0.44 against 0.50
# at 128 and 0.84 against 0.96 at 256 (width 16, batch 8), after compiling for 111, 150 and 195 s
# the first time (10-15 s once torch's compile cache holds the same networks). From a cold
# cache that pays back after about 2,500, 1,900 and 1,550 steps; the default 5,000 save 7-12%.
# Side by side for 10 minutes at 64 px (warm cache) it made 1.26x the steps and scored alike.
# At width 4 a step is cheap already: 0.120 s against 0.126 s after 90 s of compiling.
COMPILE_FROM_STEPS = 2500
COMPILE_FROM_WIDTH = 8
# On a CPU, 10 minutes per model on OpenMoji, scored on 5,000 samples (README, "Few images, high
# resolution"), fastgan's FID (lite0, domain) was lower than dcgan's at 64 px with 300 emoji
# (-31%, -53%), with four draws of 500 (latest, compiled with our spectral norm, -38%, -37%,
# -27% and -35%; -48%, -35%, -27% and -53%; the README lists all thirteen such pairs, FID
# (domain) at least 25% lower in ten and once 6% higher) and with
# all 4,495 (-38% and -32%, -6% and -9%, two runs), and at 128 px with 500 (-43%, -79%). So a
# folder of any size gets fastgan at its sizes.


def folder_of(spec: str) -> Path | None:
    """The directory a data spec names (`folder:PATH` or a bare directory), else None."""
    path = spec[len("folder:"):] if spec.startswith("folder:") else spec
    path = os.path.expanduser(path)
    return Path(path) if (spec.startswith("folder:") or os.path.isdir(path)) and \
        os.path.isdir(path) else None


def suggest(settings: dict[str, Any], on_gpu: bool) -> tuple[dict[str, Any], str] | None:
    """Settings to add for `train` without --model on a folder, and the one line saying why;
    None when the data is not a folder (the built-in sets keep dcgan). Settings already in
    `settings` are left alone."""
    from latentstudio.train.config import TrainConfig

    root = folder_of(str(settings.get("data", TrainConfig.data)))
    if root is None:
        return None
    count = len(find_images(root))
    if count == 0:
        return None  # loading the folder says what is wrong in one line
    side = min(parse_size(settings.get("resolution", TrainConfig.resolution)))
    if side in FASTGAN_SIDES:
        picked = {"model": "fastgan", "augment": "diffaug", "ema": 0.999}
        if on_gpu:  # FastGAN's official width (ngf 64), batch 8 and learning rate
            picked.update(width=64, batch_size=8)
        else:
            # Measured on 2 CPU cores, 10 minutes per model (README's "Few images, high
            # resolution"): width 8, batch 16, lr 1e-3 for G and 5e-4 for D drew clean emoji.
            # At these rates its samples swing from one few hundred steps to the next; an EMA
            # that may span 0.2 (not 0.05) of the images seen smooths that: FID (domain) every
            # 500 steps 1.17 ... 0.24, 0.18 without a rise, against 0.19, 0.28, 0.16, 0.13,
            # 0.23 at 0.05 (500 emoji, 64 px, 10 minutes).
            picked.update(width=8, batch_size=16, lr=1e-3, lr_d=5e-4, ema_rampup=0.2)
            if side > DCGAN_LARGEST and (settings.get("init_from") or
                                         settings.get("grow_from") == 0):
                # From the start at 256 px width 16 costs only ~25% more per image than 8,
                # which would leave 4 channels at full size.
                picked.update(width=16, batch_size=8)
            elif side > DCGAN_LARGEST:
                # All emoji, 10 minutes on 2 threads: 6 at 64 px (width 8, batch 16, 2,700-3,900
                # steps) grown to 256 px for 4 (batch 8) drew people with faces in five runs (FID
                # lite0 139.4-191.5), where 256 px from the start (width 16, batch 8) drew
                # outlined blobs (182.5-189.7; README, "Grow a run to a larger size").
                picked.update(batch_size=8, grow_from=GROW_FROM, grow_steps=GROW_STEPS,
                              grow_batch_size=16)
        why = (f"{count} images at {side} px: fastgan (FastGAN is made for a few hundred images "
               "at 64-1024 px")
        if not on_gpu:
            why += (f"; dcgan stops at 128 px; on a CPU a {GROW_FROM} px run grown to 256 px "
                    "drew people where one from 256 px drew blobs in the same time"
                    if side > DCGAN_LARGEST else
                    "; on a CPU it drew better than dcgan in the same time, on 100 to 4,495 "
                    "emoji")
        why += ")"
    else:
        picked = {"model": "dcgan", "augment": "diffaug", "ema": 0.999,
                  "width": 64 if on_gpu else 32, "batch_size": 64 if on_gpu else 32}
        why = f"{count} images at {side} px: dcgan (FastGAN needs 64-1024 px)"
    if count < 1000:
        why += "; DiffAugment and an EMA generator, as few images overfit the discriminator"
    else:
        why += "; DiffAugment and an EMA generator"
    if "epochs" not in settings and "steps" not in settings:
        # An epoch of a few hundred images is a handful of steps: the length is set in steps.
        # On a CPU, fastgan at width 8 did 3,500-4,900 steps in 10 minutes on one core (dcgan
        # at width 32 5,300-6,000); on a GPU, the official FastGAN's 50k iterations.
        picked["steps"] = 50000 if on_gpu else 5000
    if picked["model"] == "fastgan" and not on_gpu and cpu_compiler_available() \
            and int(settings.get("width", picked["width"])) >= COMPILE_FROM_WIDTH \
            and _planned_steps(settings, picked, count) >= COMPILE_FROM_STEPS:
        picked["compile"] = True
    added = {k: v for k, v in picked.items() if k not in settings}
    shown = ", ".join(as_flag(k, v) for k, v in added.items())
    return added, f"no --model given: {why} ({shown}; any flag overrides)"


def _planned_steps(settings: dict[str, Any], picked: dict[str, Any], count: int) -> int:
    """The steps the run will make: --steps, else --epochs over the folder's batches."""
    steps = settings.get("steps", picked.get("steps"))
    if steps:
        return int(steps)
    batch = int(settings.get("batch_size", picked["batch_size"]))
    return int(settings.get("epochs", 0)) * -(-count // batch)
