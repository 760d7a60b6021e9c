"""Writing samples of a trained run as one grid or a folder of single images."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from latentstudio.errors import UserError
from latentstudio.explore.latents import truncate
from latentstudio.explore.vectors import generate, load_vector, parse_add
from latentstudio.images import VIEW_SIDE, enlarge, make_grid, save_png, to_pil
from latentstudio.runs import load_run

MAX_SAMPLES = 10_000  # per call into a folder: enough for a sheet or a metric, never hours of work
MAX_GRID = 1024       # images in one grid PNG: 32 x 32, about 8200 px square at 256 px each
BATCH = 256           # images generated and written at a time: memory does not grow with --n


def check_truncation(psi: float | None) -> None:
    """UserError unless psi is None or a finite number >= 0."""
    if psi is not None and not (math.isfinite(psi) and psi >= 0):
        raise UserError(f"--truncation must be a finite number >= 0 (1 = no change, "
                        f"0.7 = typical), got {psi}")


def check_count(n: int, grid: bool, flag: str = "--n") -> None:
    """UserError unless 1 <= n <= the limit for a grid or a folder (`flag` names the count)."""
    if n <= 0:
        raise UserError(f"--n must be positive, got {n}")
    if grid and n > MAX_GRID:
        raise UserError(f"{flag} {n}: a grid holds at most {MAX_GRID} images; write a folder/ "
                        f"for up to {MAX_SAMPLES}")
    if n > MAX_SAMPLES:
        raise UserError(f"{flag} {n}: at most {MAX_SAMPLES} images per call; run again with "
                        f"other --seed values for more")


def sample_to(run: str | os.PathLike, out: str | os.PathLike, n: int = 64, seed: int = 0,
              class_: str | int | None = None, checkpoint: str = "last", device: str = "cpu",
              nrow: int | None = None, truncation: float | None = None,
              add: Sequence[str] = (), size: int | str | None = None,
              seeds: Sequence[int] | None = None) -> Path:
    """Generate n images and write a grid PNG (`out` ends in .png) or one PNG each into a folder.

    Image i draws latent i of `seed`; with `seeds` (which replaces n and seed) image i is seed
    seeds[i] alone, the picture `sample --seed S --n 1` makes (a folder names it seedS.png).

    `truncation` psi pulls the latents towards the mean (psi * z); each `add` entry
    "vec.pt[:STRENGTH]" adds a concept vector to every latent. `size`: the longer side of the
    grid (default VIEW_SIDE, enlarged only) or of each single image (default: native pixels);
    "native" keeps the model's own pixels.
    """
    if isinstance(size, int) and size <= 0:
        raise UserError(f"--size must be positive or 'native', got {size}")
    if seeds is not None:
        if not seeds:
            raise UserError("--seeds is empty; give seeds like 0-35 or 1,5,10-20")
        n = len(seeds)
    out = Path(out)
    as_folder = str(out).endswith(("/", os.sep)) or out.is_dir() or not out.suffix
    check_count(n, grid=not as_folder, flag="--n" if seeds is None else "--seeds lists")
    check_truncation(truncation)
    if not as_folder and out.suffix.lower() != ".png":
        raise UserError(f"--out {out}: use a .png file for a grid, or a folder/ for single images")
    loaded = load_run(run, device=device, checkpoint=checkpoint)
    vectors = [(load_vector(path, loaded), strength) for path, strength in map(parse_add, add)]
    if seeds is None:
        z = truncate(loaded.latents(n, seed), truncation)
    else:
        z = truncate(torch.cat([loaded.latents(1, s) for s in seeds]), truncation)
    labels = loaded.labels_for(n, class_, seed)
    names = [f"seed{seed}_{i:04d}.png" for i in range(n)] if seeds is None else \
        [f"seed{s}.png" for s in seeds]
    try:
        if as_folder:
            out.mkdir(parents=True, exist_ok=True)
            side = size if isinstance(size, int) else None  # singles: raw pixels unless asked
            for start in range(0, n, BATCH):
                part = slice(start, start + BATCH)
                batch = generate(loaded, z[part], None if labels is None else labels[part], vectors)
                for i, img in enumerate(batch, start):
                    save_png(enlarge(to_pil(img), side, exact=True), out / names[i])
        else:
            side = None if size == "native" else size if isinstance(size, int) else VIEW_SIDE
            images = generate(loaded, z, labels, vectors)
            save_png(enlarge(make_grid(images, nrow=nrow), side, exact=isinstance(size, int)), out)
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror or e}") from None
    return out
