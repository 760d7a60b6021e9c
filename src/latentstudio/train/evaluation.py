"""`--eval-every K` during training: a trainer callback that evaluates every K epochs, logs the
values (as `eval/fid_lite0`, ...) to metrics.jsonl / TensorBoard through the trainer, and keeps
checkpoints/best.pt by one metric (its value in checkpoints/best.json, so resuming keeps it).
The real-data features are computed once (and cached on disk like `eval`'s)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from latentstudio import atomic
from latentstudio.data.base import ImageSet
from latentstudio.errors import UserError
from latentstudio.metrics.evaluate import (
    LOWER_IS_BETTER,
    EvalConfig,
    evaluate_images,
    metric_key,
)
from latentstudio.metrics.extractors import Extractor, build_extractor, default_extractor
from latentstudio.train.callbacks import Callback

# The value each metric group contributes that a "best" checkpoint can be chosen by.
SELECTABLE = {"fid": "fid", "kid": "kid", "precision": "pr", "recall": "pr", "density": "dc",
              "coverage": "dc"}


class EvalCallback(Callback):
    """Evaluate every `every` epochs with `config`; save `best` when `keep_best_by` improves.

    Uses the trainer's `.epoch` (epochs completed), `.step`, `.run_dir`, `.config`, `.data`
    (the real images), `.model_config.num_classes`, `.sample(z, labels)`, `.log_metrics(dict)`
    and `.save_checkpoint(name)`. The generated images come from latents seeded by
    `config.seed`, so successive evaluations compare like with like.
    """

    def __init__(self, config: EvalConfig, every: int = 1, keep_best_by: str | None = "fid",
                 dataset: ImageSet | None = None) -> None:
        if every <= 0:
            raise UserError(f"--eval-every must be a positive number of epochs, not {every}")
        if keep_best_by is not None:
            if keep_best_by not in SELECTABLE:
                raise UserError(f"cannot keep the best checkpoint by {keep_best_by!r}: use one of "
                                f"{', '.join(SELECTABLE)}")
            if SELECTABLE[keep_best_by] not in config.metrics:
                config = replace(config, metrics=(*config.metrics, SELECTABLE[keep_best_by]))
        self.config = config
        self.every = every
        self.keep_best_by = keep_best_by
        self.dataset = dataset
        self._extractor: Extractor | None = None

    def _real(self, trainer: Any) -> ImageSet:
        if self.dataset is None:
            self.dataset = trainer.data
        return self.dataset

    def _generate(self, trainer: Any) -> torch.Tensor:
        n, seed = self.config.n, self.config.seed
        z = torch.randn(n, trainer.config.latent_dim, generator=torch.Generator().manual_seed(seed))
        classes = getattr(trainer.model_config, "num_classes", 0)
        labels = torch.arange(n) % classes if classes else None
        return trainer.sample(z, labels)

    def _best_path(self, trainer: Any) -> Path:
        return Path(trainer.run_dir) / "checkpoints" / "best.json"

    def _best_value(self, trainer: Any) -> float | None:
        """The value best.pt was saved with (survives resuming), if it was chosen by this metric."""
        try:
            best = json.loads(self._best_path(trainer).read_text())
            if best.get("metric") == metric_key(self.keep_best_by or "", self.config.extractor):
                return float(best["value"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return None

    def on_epoch_end(self, trainer: Any) -> None:
        self.evaluate(trainer)

    def evaluate(self, trainer: Any) -> dict[str, float] | None:
        """Evaluate when the number of completed epochs is a multiple of `every`."""
        if trainer.epoch % self.every:
            return None
        real = self._real(trainer)
        if self.config.extractor == "auto":  # the concrete name labels the scores and best.json
            self.config = replace(self.config, extractor=default_extractor(real))
        if self._extractor is None:
            c = self.config
            self._extractor = build_extractor(c.extractor, real, c.device, c.weights, c.progress)
        fake = self._generate(trainer)
        result = evaluate_images(real, fake, self.config, self._extractor)
        values = {f"eval/{k}": v for k, v in result.keyed().items()}
        trainer.log_metrics(values)
        if self.keep_best_by is not None:
            self._keep_best(trainer, result.values[self.keep_best_by])
        return values

    def _keep_best(self, trainer: Any, value: float) -> None:
        if not math.isfinite(value):
            return
        best = self._best_value(trainer)
        lower = self.keep_best_by in LOWER_IS_BETTER
        if best is None or (value < best if lower else value > best):
            trainer.save_checkpoint("best")
            atomic.write_json(self._best_path(trainer), {
                "metric": metric_key(self.keep_best_by or "", self.config.extractor),
                "value": value, "step": int(trainer.step), "epoch": int(trainer.epoch),
            })
