"""FastGAN's training step on a CPU, eager against `--compile`, in one process: the figures
behind the compile rule in train/auto.py and the README's "Speed, memory and several GPUs".

Builds a Trainer on a folder of images, takes one batch, runs 5 untimed steps (for the compiled
networks: the compiling, reported as warm-up) and then 30 timed ones, eager first. Set
TORCHINDUCTOR_CACHE_DIR to an empty folder to time compiling from a cold cache.

    python benchmarks/compile_speed.py --data folder:~/.cache/latentstudio/openmoji/64px-500-seed0 \
        --resolution 64 --width 8 --batch-size 16
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from latentstudio.train.config import TrainConfig
from latentstudio.train.loop import Trainer


def time_steps(cfg: TrainConfig, warmup: int, steps: int) -> tuple[float, float]:
    """(seconds of the untimed first steps, seconds per timed step) on one fixed batch."""
    trainer = Trainer(cfg, Path(cfg.out), progress=False)
    real, _ = next(iter(trainer.loader.batches(0)))
    start = time.perf_counter()
    for i in range(warmup):
        trainer.step = i
        trainer._train_step(real, None)
    first = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(steps):
        trainer.step = warmup + i
        out = trainer._train_step(real, None)
    float(out["loss_d"])  # waits for the last step
    return first, (time.perf_counter() - start) / steps


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="folder:PATH of images")
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--width", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--steps", type=int, default=30)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = os.path.expanduser(args.data)
    for compiled in (False, True):
        # The settings a folder gets on a CPU (train/auto.py).
        cfg = TrainConfig(model="fastgan", data=data, resolution=args.resolution,
                          width=args.width, batch_size=args.batch_size, augment="diffaug",
                          ema=0.999, lr=1e-3, lr_d=5e-4, steps=100, compile=compiled,
                          out=tempfile.mkdtemp(prefix="compile-speed-"))
        first, per_step = time_steps(cfg, args.warmup, args.steps)
        print(f"{args.resolution} px, width {args.width}, batch {args.batch_size}, "
              f"{'compiled' if compiled else 'eager'}: {per_step:.3f} s a step "
              f"(first {args.warmup} steps {first:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
