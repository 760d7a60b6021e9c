"""Networks to dream through, their layers by name, and the activation being maximised.

`NETWORKS` maps a --net name to a loader; `run:RUN` dreams through a trained run's own model
(see latentstudio.dream.run_net). A `DreamNet` names its layers in the user's words (block5,
inception4c, mixed4c) and maps them to module paths; `LayerObjective` runs the network only as
far as the chosen layer and scores the chosen channels' activation (its mean, or the original
notebook's L2).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from latentstudio.errors import UserError
from latentstudio.models.googlenet import FEATURE_LAYERS
from latentstudio.models.lite0 import LITE0_NORMS, fold_batch_norms


@dataclass
class DreamNet:
    """A frozen network whose input is an image in [-1, 1], with its dreamable layers.

    layers maps the names users type to module paths (as in `named_modules()`); aliases maps
    other accepted names to those; probe_size is a small image side the network accepts.
    """

    name: str
    module: nn.Module
    layers: dict[str, str]
    default_layer: str
    aliases: dict[str, str] = field(default_factory=dict)
    in_channels: int = 3
    probe_size: int = 64
    default_objective: str = "mean"

    def __post_init__(self) -> None:
        # Gradients flow to the image only. channels_last: bf16 convolutions on CUDA prefer it, and
        # on the CPU it makes max-pooling about 5x faster (measured on GoogLeNet's pools).
        self.module.eval().requires_grad_(False).to(memory_format=torch.channels_last)

    def to(self, device: torch.device | str) -> DreamNet:
        """Move the network to `device`."""
        self.module.to(torch.device(device))
        return self

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def layer_name(self, name: str | None) -> str:
        """The canonical layer name for `name` (None: the default); UserError lists valid names."""
        if name is None:
            return self.default_layer
        for key in (name, name.strip(), name.strip().lower()):
            if key in self.layers:
                return key
            if key in self.aliases:
                return self.aliases[key]
        valid = ", ".join(self.layers)
        if self.aliases and all(a.isdigit() for a in self.aliases):
            also = f" (or their position 0-{len(self.aliases) - 1})"
        else:
            also = f" (also: {', '.join(self.aliases)})" if self.aliases else ""
        raise UserError(f"unknown layer {name!r} for {self.name}; valid layers: {valid}{also}")


class _Reached(Exception):
    """Raised by the forward hook to stop the network once the chosen layer has run."""


def _mean(act: torch.Tensor) -> torch.Tensor:
    return act.sum(dtype=torch.float32)


def _l2(act: torch.Tensor) -> torch.Tensor:
    return act.float().square().sum() * 0.5


# name -> activation -> sum to maximise (divided by the activation's size it is the reported score).
# "l2" is the original notebook's: it amplifies whatever is strong, either sign, which suits layers
# without a ReLU at the end (EfficientNet's linear bottlenecks); "mean" suits ReLU outputs.
OBJECTIVES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"mean": _mean, "l2": _l2}


class LayerObjective:
    """What dreaming maximises: one layer's activation (some channels), reduced by an objective.

    `activation(x)` runs the network only as far as the layer (a hook raises once it has the
    output), so layers after it cost nothing; the autograd graph up to the layer is kept.
    Calling it returns (the objective summed over the activation, the activation's size).
    """

    def __init__(self, net: DreamNet, layer: str | None = None, channels: str | None = None,
                 objective: str | None = None) -> None:
        self.net = net
        self.layer = net.layer_name(layer)
        self.objective = objective or net.default_objective
        if self.objective not in OBJECTIVES:
            raise UserError(f"unknown objective {self.objective!r}; choose one of: "
                            f"{', '.join(OBJECTIVES)}")
        self._reduce = OBJECTIVES[self.objective]
        self._target = net.module.get_submodule(net.layers[self.layer])
        self._out: torch.Tensor | None = None
        self._select: slice | torch.Tensor | None = None
        size = net.probe_size
        with torch.no_grad():
            probe = self.activation(torch.zeros(1, net.in_channels, size, size, device=net.device))
        if probe.dim() < 2:
            raise UserError(f"layer {self.layer} of {net.name} has no channels to dream on")
        self.channel_count = probe.shape[1]
        self.channels = parse_channels(channels, self.channel_count, self.layer)
        if self.channels is not None:
            lo, hi = self.channels[0], self.channels[-1]
            if self.channels == list(range(lo, hi + 1)):
                self._select = slice(lo, hi + 1)  # a view, no gather copy
            else:
                self._select = torch.tensor(self.channels, device=net.device)

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        act = self.activation(x)
        return self._reduce(act), act.numel()

    def _hook(self, module: nn.Module, inputs: object, output: torch.Tensor) -> None:
        self._out = output
        raise _Reached

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        """The chosen channels of the layer's output for images `x`."""
        handle = self._target.register_forward_hook(self._hook)
        try:
            self.net.module(x)
        except _Reached:
            pass
        finally:
            handle.remove()
        out, self._out = self._out, None
        if out is None:
            raise RuntimeError(f"layer {self.layer} did not run in {self.net.name}'s forward pass")
        if isinstance(self._select, slice):
            return out[:, self._select]
        if self._select is not None:
            return out.index_select(1, self._select)
        return out


def parse_channels(spec: str | None, count: int, layer: str) -> list[int] | None:
    """'0-5,120' -> [0, 1, 2, 3, 4, 5, 120], each checked against the layer's `count` channels."""
    if spec is None or not spec.strip():
        return None
    chosen: list[int] = []
    for part in spec.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise UserError(f"bad --channels {spec!r}: use indices and ranges like 0-5,120; "
                            f"{layer} has channels 0-{count - 1}")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if lo > hi or hi >= count:
            raise UserError(f"channels {part.strip()} not in layer {layer}, which has {count} "
                            f"channels: valid are 0-{count - 1}")
        chosen.extend(c for c in range(lo, hi + 1) if c not in chosen)
    return sorted(chosen)


GOOGLENET_ALIASES: dict[str, str] = {
    "conv2d0": "conv1", "conv2d1": "conv2", "conv2d2": "conv3",
    **{f"mixed{n[len('inception'):]}": n for n in FEATURE_LAYERS if n.startswith("inception")},
}


def googlenet_net(module: nn.Module) -> DreamNet:
    """A GoogLeNet (latentstudio.models.googlenet, any weights) as a DreamNet (norms folded)."""
    fold_batch_norms(module, [("conv", "bn")])
    return DreamNet("googlenet", module, {n: n for n in FEATURE_LAYERS}, "inception4c",
                    aliases=dict(GOOGLENET_ALIASES))


def lite0_net(module: nn.Module) -> DreamNet:
    """An EfficientNet-Lite0 module as a DreamNet whose layers are its blocks (norms folded)."""
    fold_batch_norms(module, LITE0_NORMS)
    blocks = {f"block{i}": f"_blocks.{i}" for i in range(len(module._blocks))}
    return DreamNet("lite0", module, blocks, "block9", default_objective="l2")


def _load_lite0(weights: str | None) -> DreamNet:
    from latentstudio.models.lite0 import load_lite0

    return lite0_net(load_lite0(weights))


def _load_googlenet(weights: str | None) -> DreamNet:
    from latentstudio.dream.weights import load_googlenet

    return googlenet_net(load_googlenet(weights))


NETWORKS: dict[str, Callable[[str | None], DreamNet]] = {
    "lite0": _load_lite0,
    "googlenet": _load_googlenet,
}


def load_network(spec: str, weights: str | None = None, device: str | torch.device = "cpu") -> DreamNet:
    """The network named `spec` ('lite0', 'googlenet' or 'run:RUN') on `device`."""
    if spec.startswith("run:"):
        from latentstudio.dream.run_net import load_run_net

        return load_run_net(spec[len("run:"):]).to(device)
    if spec not in NETWORKS:
        raise UserError(f"unknown network {spec!r}; choose one of: {', '.join(NETWORKS)}, run:RUN "
                        "(a training run folder)")
    return NETWORKS[spec](weights).to(device)
