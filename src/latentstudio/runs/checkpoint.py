"""Checkpoints: plain state dicts plus the config, written atomically, read with weights_only=True.

A checkpoint holds every network under "models" (an EMA copy as e.g. "generator_ema"), the
training step's optimiser/scaler/noise state under "step_state", the loop's position under
"progress" and the random generators under "rng". Format 1 (latentstudio 0.1.0) kept the EMA
weights inside "step_state"; it is upgraded on reading.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from latentstudio import __version__, atomic
from latentstudio.errors import UserError

FORMAT = 2
READABLE_FORMATS = (1, 2)


def save_checkpoint(path: str | Path, *, models: dict[str, torch.nn.Module], step_state: dict[str, Any],
                    config: dict[str, Any], progress: dict[str, Any],
                    device: torch.device | None = None) -> Path:
    """Write models, optimiser/EMA/RNG state, the config and loop position to `path` atomically.

    Of the CUDA generators only the training device's is saved: querying every GPU would open a
    context on each, and a list per GPU could not be restored on a machine with fewer of them.
    """
    payload = {
        "format": FORMAT,
        "version": __version__,
        "config": config,
        "models": {k: m.state_dict() for k, m in models.items()},
        "step_state": step_state,
        "progress": progress,
        "rng": {"torch": torch.get_rng_state()},
    }
    if device is not None and device.type == "cuda":
        payload["rng"]["cuda"] = torch.cuda.get_rng_state(device)
    return atomic.save_torch(path, payload)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by save_checkpoint, or raise a UserError saying what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means the same to the user
        raise UserError(f"{path} is not a readable latentstudio checkpoint ({type(e).__name__}); "
                        "it may be truncated or from another program") from None
    if not isinstance(payload, dict) or payload.get("format") not in READABLE_FORMATS or \
            "models" not in payload:
        raise UserError(f"{path} is not a latentstudio checkpoint (format {FORMAT})")
    if payload["format"] == 1:
        _upgrade_format_1(payload)
    return payload


def _upgrade_format_1(payload: dict[str, Any]) -> None:
    """Move 0.1.0's EMA weights from the step state to the models, as "<image module>_ema"."""
    ema = payload.get("step_state", {}).pop("ema", None)
    if ema is not None:
        from latentstudio.models import get_family

        family = get_family(payload.get("config", {}).get("model", "?"))
        payload["models"][f"{family.hooks.image_module}_ema"] = ema
    payload["format"] = FORMAT


def load_models(models: dict[str, torch.nn.Module], payload: dict[str, Any], source: str) -> None:
    """Load saved weights into built models; a mismatch is a UserError naming the model."""
    saved_model = payload.get("config", {}).get("model", "?")
    for name, module in models.items():
        if name not in payload["models"]:
            raise UserError(f"{source} has no weights for {name!r}: it was saved by model "
                            f"{saved_model!r}, which does not match")
        try:
            module.load_state_dict(payload["models"][name])
        except RuntimeError:
            raise UserError(f"{source} does not fit this model: it was saved by model "
                            f"{saved_model!r} with other settings (resolution, width, latent size)") from None


def restore_rng(payload: dict[str, Any], device: torch.device | None = None) -> None:
    """Restore the CPU generator, and the CUDA generator of `device` when it trains on a GPU."""
    torch.set_rng_state(payload["rng"]["torch"])
    state = payload["rng"].get("cuda")
    if state is None or device is None or device.type != "cuda":
        return
    if isinstance(state, (list, tuple)):  # written by 0.1.0 for every GPU
        index = device.index if device.index is not None else torch.cuda.current_device()
        if index >= len(state):
            return
        state = state[index]
    torch.cuda.set_rng_state(state, device)
