"""DeepDream on any image, through EfficientNet-Lite0, GoogLeNet or a trained run's own model.

    from latentstudio.dream import DreamConfig, dream_file
    dream_file("photo.jpg", "dream.png", net="lite0", config=DreamConfig(layer="block9"))

deepdream.py holds the algorithm, networks.py the networks and their layers, pictures.py files
in and out, lite0.py / weights.py the pretrained weights, run_net.py a run's own model.
"""

from latentstudio.dream.deepdream import DreamConfig, DreamResult, dream
from latentstudio.dream.networks import NETWORKS, OBJECTIVES, DreamNet, LayerObjective, load_network
from latentstudio.dream.pictures import dream_file, dream_picture, dream_zoom

__all__ = [
    "NETWORKS", "OBJECTIVES", "DreamConfig", "DreamNet", "DreamResult", "LayerObjective", "dream",
    "dream_file", "dream_picture", "dream_zoom", "load_network",
]
