"""Networks to dream through: GoogLeNet weights and layer names, EfficientNet-Lite0, downloads."""

from __future__ import annotations

import hashlib
import io
import urllib.error
from pathlib import Path

import pytest
import torch

from latentstudio.dream import weights as weights_module
from latentstudio.dream.networks import (
    GOOGLENET_ALIASES,
    LayerObjective,
    googlenet_net,
    load_network,
    parse_channels,
)
from latentstudio.dream.weights import GOOGLENET_URL, download, load_googlenet
from latentstudio.errors import UserError
from latentstudio.models.googlenet import FEATURE_LAYERS, GoogLeNet

KEYS_FILE = Path(__file__).parents[1] / "fixtures" / "googlenet_keys.txt"


def _torchvision_keys() -> list[tuple[str, str, tuple[int, ...]]]:
    """(key, dtype, shape) of torchvision's GoogLeNet state dict, from the committed list."""
    rows = []
    for line in KEYS_FILE.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, dtype, shape = line.split()
        rows.append((key, dtype, () if shape == "-" else tuple(int(s) for s in shape.split("x"))))
    return rows


def _random_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, dtype, shape in _torchvision_keys():
        if dtype == "int64":
            state[key] = torch.tensor(7, dtype=torch.int64).expand(shape).clone()
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        else:
            state[key] = torch.randn(shape, generator=g) * 0.05
    return state


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return googlenet_net(GoogLeNet())


class TestGoogLeNetWeights:
    def test_state_dict_matches_torchvision_exactly(self):
        mine = [(k, str(v.dtype).removeprefix("torch."), tuple(v.shape))
                for k, v in GoogLeNet().state_dict().items()]
        assert mine == _torchvision_keys()

    def test_torchvision_state_dict_loads_unchanged(self, tmp_path):
        state = _random_state_dict()
        path = tmp_path / "googlenet-1378be20.pth"
        torch.save(state, path)
        model = load_googlenet(path)
        loaded = model.state_dict()
        assert all(torch.equal(loaded[k], v) for k, v in state.items())
        assert not model.training
        assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 1000)

    def test_file_without_batchnorm_counters_loads(self, tmp_path):
        state = {k: v for k, v in _random_state_dict().items()
                 if not k.endswith("num_batches_tracked")}
        torch.save(state, tmp_path / "w.pth")
        load_googlenet(tmp_path / "w.pth")

    def test_foreign_state_dict_is_a_user_error(self, tmp_path):
        state = _random_state_dict()
        state["fc.weight"] = torch.zeros(10, 1024)
        torch.save(state, tmp_path / "w.pth")
        with pytest.raises(UserError, match="not a torchvision GoogLeNet"):
            load_googlenet(tmp_path / "w.pth")
        del state["fc.weight"]
        torch.save(state, tmp_path / "w.pth")
        with pytest.raises(UserError, match="missing"):
            load_googlenet(tmp_path / "w.pth")

    def test_transform_input_maps_imagenet_normalised_input_to_minus_one_one(self):
        torch.manual_seed(0)
        model = GoogLeNet(transform_input=True).eval()
        plain = GoogLeNet(transform_input=False).eval()
        plain.load_state_dict(model.state_dict())
        x01 = torch.rand(1, 3, 64, 64)
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        with torch.no_grad():
            assert torch.allclose(model((x01 - mean) / std), plain(x01 * 2 - 1), atol=1e-5)


class TestOfflineWeights:
    def test_offline_without_weights_says_where_to_get_and_put_them(self, tmp_path, monkeypatch):
        monkeypatch.setenv("LATENTSTUDIO_CACHE", str(tmp_path / "cache"))

        def offline(*args, **kwargs):
            raise urllib.error.URLError("no network")

        monkeypatch.setattr(weights_module.urllib.request, "urlopen", offline)
        with pytest.raises(UserError) as e:
            load_network("googlenet")
        message = str(e.value)
        assert "\n" not in message
        assert GOOGLENET_URL in message
        assert str(tmp_path / "cache" / "weights" / "googlenet-1378be20.pth") in message
        assert "--weights" in message

    def test_cached_weights_are_used_without_network(self, tmp_path, monkeypatch):
        monkeypatch.setenv("LATENTSTUDIO_CACHE", str(tmp_path))
        monkeypatch.setattr(weights_module.urllib.request, "urlopen", None)  # any call would fail
        path = tmp_path / "weights" / "googlenet-1378be20.pth"
        path.parent.mkdir()
        torch.save(_random_state_dict(), path)
        assert load_network("googlenet").name == "googlenet"

    def test_missing_weights_file_is_a_user_error(self, tmp_path):
        with pytest.raises(UserError, match="not found"):
            load_network("googlenet", weights=str(tmp_path / "nope.pth"))

    def test_download_checks_the_hash(self, tmp_path, monkeypatch):
        payload = b"pretend weights" * 1000

        class Response(io.BytesIO):
            headers = {"Content-Length": str(len(payload))}

        monkeypatch.setattr(weights_module.urllib.request, "urlopen",
                            lambda url, timeout: Response(payload))
        good = hashlib.sha256(payload).hexdigest()[:8]
        dest = download("http://example/w.pth", tmp_path / "w.pth", good)
        assert dest.read_bytes() == payload
        with pytest.raises(UserError, match="corrupt"):
            download("http://example/w.pth", tmp_path / "x.pth", "00000000")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["w.pth"]  # nothing half-written


class TestLayers:
    def test_aliases_map_to_layers(self, net):
        assert net.layer_name("mixed4c") == "inception4c"
        assert net.layer_name("conv2d0") == "conv1"
        assert net.layer_name("conv2d2") == "conv3"
        assert net.layer_name("mixed5b") == "inception5b"
        assert net.layer_name("Inception4C") == "inception4c"
        assert net.layer_name(None) == "inception4c"
        assert set(GOOGLENET_ALIASES.values()) == set(FEATURE_LAYERS)
        assert len(GOOGLENET_ALIASES) == len(FEATURE_LAYERS)

    def test_alias_and_name_give_the_same_activation(self, net):
        x = torch.rand(1, 3, 64, 64)
        with torch.no_grad():
            a = LayerObjective(net, "mixed3b").activation(x)
            b = LayerObjective(net, "inception3b").activation(x)
        assert torch.equal(a, b) and a.shape[1] == 480

    def test_bad_layer_lists_the_valid_ones(self, net):
        with pytest.raises(UserError) as e:
            LayerObjective(net, "inception9z")
        message = str(e.value)
        assert "inception9z" in message
        for name in (*FEATURE_LAYERS, "mixed4c", "conv2d1"):
            assert name in message

    def test_channels_parse_ranges_and_lists(self):
        assert parse_channels("0-5,120", 512, "x") == [0, 1, 2, 3, 4, 5, 120]
        assert parse_channels(" 7 , 3-4,4", 8, "x") == [3, 4, 7]
        assert parse_channels(None, 8, "x") is None

    @pytest.mark.parametrize("spec", ["0-600", "512", "a-b", "5-2", "1,,2"])
    def test_bad_channels_list_the_valid_ones(self, net, spec):
        with pytest.raises(UserError, match="0-511"):
            LayerObjective(net, "inception4c", spec)

    def test_channel_selection_picks_those_channels(self, net):
        x = torch.rand(1, 3, 64, 64)
        with torch.no_grad():
            every = LayerObjective(net, "conv3").activation(x)
            some = LayerObjective(net, "conv3", "2-4,9").activation(x)
        assert torch.equal(some, every[:, [2, 3, 4, 9]])

    def test_forward_stops_at_the_layer(self, net):
        calls = []
        handle = net.module.inception5b.register_forward_hook(lambda *a: calls.append(1))
        try:
            with torch.no_grad():
                LayerObjective(net, "inception3a").activation(torch.rand(1, 3, 64, 64))
        finally:
            handle.remove()
        assert calls == []

    def test_unknown_network_lists_the_choices(self):
        with pytest.raises(UserError, match="lite0, googlenet, run:RUN"):
            load_network("resnet")


class TestLite0:
    def test_offline_weights_and_blocks(self):
        net = load_network("lite0")
        assert net.layer_name(None) == "block9"
        assert list(net.layers) == [f"block{i}" for i in range(16)]
        with pytest.raises(UserError, match="block0, block1"):
            net.layer_name("block16")
        assert LayerObjective(net, "block5").channel_count == 80

    def test_matches_the_package_module_exactly(self):
        from efficientnet_lite_pytorch import EfficientNet

        from latentstudio.models.lite0 import lite0_weights_path

        ours = load_network("lite0").module
        theirs = EfficientNet.from_name("efficientnet-lite0", image_size=None)
        theirs.load_state_dict(torch.load(lite0_weights_path(), weights_only=True))
        theirs.eval()
        x = torch.rand(1, 3, 67, 90) * 2 - 1  # odd size: the stride-2 padding is asymmetric
        with torch.no_grad():
            # equal up to float rounding: ours has its batch norms folded into the convolutions
            assert torch.allclose(ours(x), theirs(x), rtol=1e-4, atol=1e-4)
