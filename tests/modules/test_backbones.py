"""Backbones expose named stages; pretrained weights load from torchvision's cache or fail clearly."""

import urllib.error

import pytest
import torch

from affectlab.modules import backbones
from affectlab.modules.backbones import Backbone, WeightsUnavailableError, weights_path


@pytest.mark.parametrize("name,stages,last", [
    ("resnet18", ("stem", "layer1", "layer2", "layer3", "layer4"), 512),
    ("vgg11", ("block1", "block2", "block3", "block4", "block5"), 512),
])
def test_stages_are_named_with_channels_and_strides(name, stages, last):
    net = Backbone(name, pretrained=False).eval()
    assert net.stage_names == stages and net.out_channels == last
    features = net(torch.randn(2, 3, 64, 64))
    for stage, feature in features.items():
        assert feature.shape[1] == net.channels[stage]
        assert feature.shape[-1] == 64 // net.reductions[stage]
    assert list(net(torch.randn(1, 3, 64, 64), until=stages[2])) == list(stages[:3])


def test_absent_weights_offline_name_the_file_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(WeightsUnavailableError) as info:
        Backbone("resnet18", pretrained=True)
    message = str(info.value)
    assert str(weights_path("resnet18")) in message and "hub/checkpoints" in message
    assert "--model.pretrained false" in message


def test_cached_weights_file_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    reference = backbones.build_torchvision("resnet18", pretrained=False)
    target = weights_path("resnet18")
    target.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), target)
    net = Backbone("resnet18", pretrained=True)
    torch.testing.assert_close(net.stages["stem"][0].weight, reference.conv1.weight)


def test_unknown_backbone_lists_the_supported_ones():
    with pytest.raises(ValueError, match="resnet50"):
        Backbone("alexnet", pretrained=False)
