"""Large renders from coordinate networks (CPPN): a trained `cppn-gan` run or a random CPPN.

The picture is computed tile by tile straight into an 8-bit canvas, so memory is the canvas
(a byte per channel and pixel) plus one tile's activations, whatever the size. An RGBA run
renders an RGBA PNG.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from latentstudio.errors import UserError
from latentstudio.explore.latents import check_output, latent_dim_of, load_latent, truncate
from latentstudio.images import save_png, to_uint8
from latentstudio.runs import load_run

MAX_SIDE = 32768


def _check_size(width: int, height: int, tile: int) -> None:
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise UserError(f"--width and --height must be in 1..{MAX_SIDE}, got {width} x {height}")
    if tile <= 0:
        raise UserError(f"--tile must be positive, got {tile}")


@torch.no_grad()
def render_canvas(net: nn.Module, z: torch.Tensor, width: int, height: int,
                  labels: torch.Tensor | None = None, tile: int = 256) -> np.ndarray:
    """One picture (height, width, C) uint8 from a network with `tiles(z, w, h, labels, tile)`."""
    canvas = None
    for y0, x0, block in net.tiles(z[:1], width, height, labels, tile):
        pixels = to_uint8(block.float().cpu())[0].permute(1, 2, 0).numpy()
        if canvas is None:
            canvas = np.empty((height, width, pixels.shape[2]), dtype=np.uint8)
        canvas[y0:y0 + pixels.shape[0], x0:x0 + pixels.shape[1]] = pixels
    return canvas


def _save_canvas(canvas: np.ndarray, out: Path) -> Path:
    image = Image.fromarray(canvas[:, :, 0] if canvas.shape[2] == 1 else canvas)
    try:
        return save_png(image, out)
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror or e}") from None


def render(run_path: str | os.PathLike, out: str | os.PathLike, width: int = 1024,
           height: int | None = None, seed: int = 0, latent: str | os.PathLike | None = None,
           class_: int | str | None = None, truncation: float | None = None, tile: int = 256,
           checkpoint: str = "last", device: str = "cpu") -> Path:
    """Render a trained CPPN run at any size from a seed (or a saved latent) to a PNG."""
    height = height or width
    _check_size(width, height, tile)
    out = check_output(out, (".png",))
    run = load_run(run_path, device=device, checkpoint=checkpoint)
    dim = latent_dim_of(run)
    if not hasattr(run.image_network, "tiles"):
        raise UserError(f"render needs a coordinate-based generator (train with --model cppn-gan); "
                        f"{run.path} is a {run.config.model} - use `latentstudio sample` instead")
    label = None
    if latent is not None:
        frame = load_latent(latent, dim)
        z, label = frame.z[None], frame.label
    else:
        z = run.latents(1, seed)
    if run.model_config.num_classes:
        label = int(run.labels_for(1, class_ if class_ is not None else (label or 0))[0])
    elif class_ is not None:
        run.labels_for(1, class_)  # raises "not conditional"
    labels = None if label is None else torch.tensor([label], device=run.device)
    z = truncate(z, truncation).to(run.device)
    return _save_canvas(render_canvas(run.image_network, z, width, height, labels, tile), out)


def render_random(out: str | os.PathLike, seed: int = 0, width: int = 1024, height: int | None = None,
                  latent_dim: int = 8, hidden: int = 32, layers: int = 4, scale: float = 8.0,
                  channels: int = 3, z_seed: int | None = None, tile: int = 256,
                  device: str = "cpu") -> Path:
    """Render an untrained CPPN with N(0, 1) weights from `seed` (Ha 2016's random CPPN art).

    `seed` picks the network (the family of patterns); `z_seed` picks the latent within it.
    """
    from latentstudio.devices import resolve_device
    from latentstudio.models.cppn import random_cppn

    height = height or width
    _check_size(width, height, tile)
    if min(latent_dim, hidden, layers) <= 0 or scale <= 0 or channels not in (1, 3):
        raise UserError("--latent-dim, --hidden, --layers and --scale must be positive; --channels 1 or 3")
    out = check_output(out, (".png",))
    dev = resolve_device(device)
    net = random_cppn(seed, latent_dim, hidden, layers, scale, channels).to(dev)
    g = torch.Generator().manual_seed(seed if z_seed is None else z_seed)
    z = torch.randn(1, latent_dim, generator=g).to(dev)
    return _save_canvas(render_canvas(net, z, width, height, None, tile), out)
