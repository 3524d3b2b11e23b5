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


def test_weights_are_chosen_by_name_and_default_resolves_to_its_own_name():
    from affectlab.modules.backbones import resolve_weights, weights_name

    assert resolve_weights("resnet101", "IMAGENET1K_V1").name == "IMAGENET1K_V1"   # the VEA lineage's
    assert weights_name("resnet101", "DEFAULT") == "IMAGENET1K_V2"                  # torchvision's newest today
    assert weights_name("resnet101", "ResNet101_Weights.IMAGENET1K_V1") == "IMAGENET1K_V1"
    assert resolve_weights("resnet50", None) is None and resolve_weights("resnet50", "none") is None
    with pytest.raises(ValueError, match="IMAGENET1K_V1"):
        resolve_weights("resnet50", "IMAGENET1K_V3")
    assert weights_path("resnet101", "IMAGENET1K_V1").name == "resnet101-63fe2227.pth"
    assert weights_path("resnet101", "DEFAULT").name == "resnet101-cd907fc2.pth"


def test_the_named_weights_file_is_loaded_and_recorded_in_the_checkpoint(tmp_path, monkeypatch):
    from affectlab.modules.classifier import EmotionClassifier
    from affectlab.modules.mdan import MDAN

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    reference = backbones.build_torchvision("resnet18", pretrained=False)
    target = weights_path("resnet18", "IMAGENET1K_V1")
    target.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), target)
    for cls in (MDAN, EmotionClassifier):
        model = cls("mikels", backbone="resnet18", pretrained=True, weights="DEFAULT")
        stem = model.net.backbone.stages["stem"][0] if cls is MDAN else model.backbone.stages["stem"][0]
        torch.testing.assert_close(stem.weight, reference.conv1.weight)
        assert model.hparams.weights == "IMAGENET1K_V1"  # DEFAULT recorded as what it was
        checkpoint = {"hyper_parameters": dict(model.hparams)}  # what the checkpoint and W&B receive
        assert checkpoint["hyper_parameters"]["weights"] == "IMAGENET1K_V1"
        assert cls("mikels", backbone="resnet18", pretrained=False).hparams.weights is None


def test_absent_named_weights_name_their_own_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url",
                        lambda *a, **k: (_ for _ in ()).throw(urllib.error.URLError("no network")))
    with pytest.raises(WeightsUnavailableError) as info:
        Backbone("resnet50", pretrained=True, weights="IMAGENET1K_V1")
    message = str(info.value)
    assert str(tmp_path / "hub/checkpoints/resnet50-0676ba61.pth") in message and "IMAGENET1K_V1" in message


def test_a_grey_stem_responds_to_one_channel_as_the_rgb_stem_to_the_grey_image_repeated():
    torch.manual_seed(0)
    rgb = Backbone("resnet18", pretrained=False).eval()
    torch.manual_seed(0)
    grey = Backbone("resnet18", pretrained=False, in_channels=1).eval()
    assert grey.stages["stem"][0].in_channels == 1
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(grey.forward_features(x), rgb.forward_features(x.expand(-1, 3, -1, -1)))
