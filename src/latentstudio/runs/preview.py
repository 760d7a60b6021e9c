"""The preview grid: its fixed latents and its layout, shared by the trainer that draws it and
the gallery that cuts cells out of it.

Unconditional models: `preview_count` samples in a square grid. Conditional models: one row per
class, the same latent down each column. Kinds whose `preview_rows` name more than samples
(VAEs: real, recon, sample) repeat those rows for each group of `per_row` images.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from latentstudio.data.base import parse_size
from latentstudio.models import Kind

PREVIEW_SEED_OFFSET = 12345  # previews use their own fixed latents, apart from training noise
GRID_PADDING = 2  # images.make_grid's default


def preview_latents(kind: Kind, seed: int, count: int, latent_dim: int) -> torch.Tensor:
    """The run's fixed preview latents (the same on every device and in every process)."""
    g = torch.Generator().manual_seed(seed + PREVIEW_SEED_OFFSET)
    return kind.latents(count, latent_dim, g)


def preview_labels(num_classes: int, count: int) -> torch.Tensor | None:
    """Class labels of a conditional model's preview samples (one row per class)."""
    if not num_classes:
        return None
    return torch.arange(num_classes).repeat_interleave(max(1, count // num_classes))


def preview_layout(kind: Kind, count: int, num_classes: int, resolution: int | str) -> dict[str, Any]:
    """How the preview grid is tiled and what each cell shows.

    `cell` is a cell's width in pixels and `cell_height` its height (`resolution` "WxH" or a
    square side). cells[i] = {"kind": "sample"|"real"|"recon", "z": index into the preview latents (samples),
    "image": index into the training images (real, recon), "label": class or None}.
    """
    cells: list[dict[str, Any]] = []
    if num_classes:
        per_row = max(1, count // num_classes)
        cells = [{"kind": "sample", "z": i % per_row, "image": None, "label": i // per_row}
                 for i in range(num_classes * per_row)]
    elif kind.preview_rows == ("sample",):
        per_row = max(1, math.ceil(math.sqrt(count)))
        cells = [{"kind": "sample", "z": i, "image": None, "label": None} for i in range(count)]
    else:
        per_row = max(1, int(math.sqrt(count)))
        for start in range(0, count, per_row):
            width = min(per_row, count - start)
            for row in kind.preview_rows:
                cells += [{"kind": row, "z": start + j if row == "sample" else None,
                           "image": None if row == "sample" else start + j, "label": None}
                          for j in range(width)]
    width, height = parse_size(resolution)
    return {"per_row": per_row, "cell": width, "cell_height": height, "padding": GRID_PADDING,
            "cells": cells}


def preview_images(layout: dict[str, Any], z: torch.Tensor,
                 sample: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
                 real: Callable[[list[int]], torch.Tensor] | None = None,
                 reconstruct: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """The preview grid's images (N, C, H, W) in reading order: sample cells from
    `sample(z, labels)`, real cells from `real(indices)` (training images in [-1, 1]) and recon
    cells from `reconstruct(images)`. Tile them with make_grid(images, layout["per_row"])."""
    cells = layout["cells"]
    out: list[torch.Tensor | None] = [None] * len(cells)
    samples = [i for i, c in enumerate(cells) if c["kind"] == "sample"]
    if samples:
        labels = [cells[i]["label"] for i in samples]
        y = torch.tensor(labels) if labels[0] is not None else None
        images = sample(z[[cells[i]["z"] for i in samples]], y)
        for i, img in zip(samples, images, strict=True):
            out[i] = img
    shown = [i for i, c in enumerate(cells) if c["kind"] in ("real", "recon")]
    if shown:
        wanted = sorted({cells[i]["image"] for i in shown})
        originals = dict(zip(wanted, real(wanted), strict=True))
        recons = {}
        if any(cells[i]["kind"] == "recon" for i in shown):
            recons = dict(zip(wanted, reconstruct(torch.stack([originals[k] for k in wanted])),
                              strict=True))
        for i in shown:
            source = originals if cells[i]["kind"] == "real" else recons
            out[i] = source[cells[i]["image"]]
    return torch.stack(out)
