"""The default pretrained network (offline EfficientNet-Lite0) dreams visibly on a real photo."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from latentstudio.dream import DreamConfig, LayerObjective, dream_picture, load_network
from latentstudio.dream.pictures import picture_to_tensor

skimage_data = pytest.importorskip("skimage.data")


def test_lite0_dream_on_a_photo_raises_the_objective_and_changes_the_picture(tmp_path):
    photo = Image.fromarray(skimage_data.chelsea())  # a cat, 451 x 300
    objective = LayerObjective(load_network("lite0"))  # defaults: block9, L2
    config = DreamConfig(octaves=3, iterations=10)
    dreamed, result = dream_picture(photo, objective, config)
    dreamed.save(tmp_path / "chelsea_dream.png")

    assert dreamed.size == photo.size and dreamed.mode == "RGB"
    values = np.array(result.objective).reshape(3, 10)  # per octave, per step
    assert (values[:, -1] > values[:, 0] * 1.3).all(), values

    def score(picture: Image.Image) -> float:
        with torch.no_grad():
            total, count = objective(picture_to_tensor(picture))
        return total.item() / count

    assert score(dreamed) > 1.5 * score(photo)
    change = np.abs(np.asarray(dreamed, np.float32) - np.asarray(photo, np.float32))
    assert change.mean() > 6  # of 255 (about 12 here): plainly visible, not a faint texture
