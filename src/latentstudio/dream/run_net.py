"""Dreaming through a trained run's own model: a GAN's discriminator (or critic), a VAE's encoder.

Its layers are its submodules whose output is a feature map (N, C, H, W), named as in
`named_modules()` (features.3) or by their position in the order they finish in the forward
pass (3), the order error messages list them in. The default is the deepest
one whose map at the training resolution is still at least 4 x 4. Inputs are images in [-1, 1]
with the run's channel count, as in training; layers before any Linear accept any image size.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from latentstudio.dream.networks import DreamNet
from latentstudio.errors import UserError

# Which of a run's networks reads images, in order of preference.
IMAGE_READERS = ("discriminator", "encoder")


def feature_maps(module: nn.Module, channels: int, size: int | tuple[int, int]) -> dict[str, tuple[int, ...]]:
    """Output shape of every submodule that returns a 4-d feature map, for one image of `size`
    (a side, or (width, height))."""
    width, height = (size, size) if isinstance(size, int) else size
    shapes: dict[str, tuple[int, ...]] = {}
    handles = []
    for name, sub in module.named_modules():
        if not name or "parametrizations" in name.split("."):  # the root; spectral-norm internals
            continue

        def record(m: nn.Module, inputs: object, output: object, name: str = name) -> None:
            if isinstance(output, torch.Tensor) and output.dim() == 4 and name not in shapes:
                shapes[name] = tuple(output.shape)

        handles.append(sub.register_forward_hook(record))
    device = next(module.parameters()).device
    try:
        with torch.no_grad():
            module(torch.zeros(1, channels, height, width, device=device))
    except (ValueError, TypeError):
        pass  # a conditional model wants labels after its feature layers: those are recorded
    finally:
        for h in handles:
            h.remove()
    return shapes


def run_net(module: nn.Module, name: str, channels: int, resolution: int | tuple[int, int]) -> DreamNet:
    """A run's image-reading network as a DreamNet; `resolution`: its image side or (width, height)."""
    shapes = feature_maps(module, channels, resolution)
    if not shapes:
        raise UserError(f"the {name} has no convolutional feature maps to dream on "
                        "(dense models read flattened images)")
    names = list(shapes)
    deep_enough = [n for n in names if min(shapes[n][2:]) >= 4]
    default = (deep_enough or names)[-1]
    layers = {n: n for n in names}
    by_index = {str(i): n for i, n in enumerate(names)}
    # A square probe of the longer side gives every layer a map at least as large as in training.
    probe = resolution if isinstance(resolution, int) else max(resolution)
    return DreamNet(name, module, layers, default, aliases=by_index, in_channels=channels,
                    probe_size=probe)


def load_run_net(path: str | Path) -> DreamNet:
    """The discriminator/critic or encoder of the run folder at `path` (on the CPU)."""
    from latentstudio.runs import load_run

    if not str(path).strip():
        raise UserError("--net run:RUN needs a run folder, e.g. --net run:runs/dcgan-shapes")
    run = load_run(path, device="cpu")
    for key in IMAGE_READERS:
        if key in run.models:
            cfg = run.model_config
            return run_net(run.models[key], f"{Path(path).name}'s {key}", cfg.channels,
                           cfg.resolution if cfg.height is None else cfg.size)
    raise UserError(f"run {path} has no discriminator or encoder to dream through "
                    f"(it has: {', '.join(run.models)})")
