"""Writing samples of a trained run as one grid or a folder of single images."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from latentstudio.errors import UserError
from latentstudio.explore.latents import truncate
from latentstudio.explore.vectors import generate, load_vector, parse_add
from latentstudio.images import VIEW_SIDE, enlarge, make_grid, save_png, to_pil
from latentstudio.runs import load_run


def sample_to(run: str | os.PathLike, out: str | os.PathLike, n: int = 64, seed: int = 0,
              class_: str | int | None = None, checkpoint: str = "last", device: str = "cpu",
              nrow: int | None = None, truncation: float | None = None,
              add: Sequence[str] = (), size: int | str | None = None) -> Path:
    """Generate n images and write a grid PNG (`out` ends in .png) or one PNG each into a folder.

    `truncation` psi pulls the latents towards the mean (psi * z); each `add` entry
    "vec.pt[:STRENGTH]" adds a concept vector to every latent. `size`: the longer side of the
    grid (default VIEW_SIDE, enlarged only) or of each single image (default: native pixels);
    "native" keeps the model's own pixels.
    """
    if isinstance(size, int) and size <= 0:
        raise UserError(f"--size must be positive or 'native', got {size}")
    if n <= 0:
        raise UserError(f"--n must be positive, got {n}")
    loaded = load_run(run, device=device, checkpoint=checkpoint)
    vectors = [(load_vector(path, loaded), strength) for path, strength in map(parse_add, add)]
    z = truncate(loaded.latents(n, seed), truncation)
    images = generate(loaded, z, loaded.labels_for(n, class_, seed), vectors)
    out = Path(out)
    as_folder = str(out).endswith(("/", os.sep)) or out.is_dir() or not out.suffix
    try:
        if as_folder:
            out.mkdir(parents=True, exist_ok=True)
            side = size if isinstance(size, int) else None  # singles: raw pixels unless asked
            for i, img in enumerate(images):
                save_png(enlarge(to_pil(img), side, exact=True), out / f"seed{seed}_{i:04d}.png")
        else:
            if out.suffix.lower() != ".png":
                raise UserError(f"--out {out}: use a .png file for a grid, or a folder/ for single images")
            side = None if size == "native" else size if isinstance(size, int) else VIEW_SIDE
            save_png(enlarge(make_grid(images, nrow=nrow), side, exact=isinstance(size, int)), out)
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror or e}") from None
    return out
