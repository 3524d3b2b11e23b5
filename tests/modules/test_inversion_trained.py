"""Feature map inversion of networks trained with affectlab (modules/inversion/trained.py).

A small VGG is trained here on Fashion-MNIST (the Debian package dataset-fashion-mnist) through the
CLI; its checkpoint is then the inversion trunk, as a researcher would pass it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch import Trainer

from affectlab.datamodules.fashion_mnist import DEBIAN_DIR, MEAN, STD
from affectlab.datamodules.inversion import InversionImages
from affectlab.modules.classifier import EmotionClassifier
from affectlab.modules.inversion import FeatureMapInversion
from affectlab.modules.inversion.denoise import from_unit
from affectlab.modules.inversion.trunk import CaffeToTorchvision, FeatureTrunk
from affectlab.modules.mdan import MDAN
from conftest import REPO, run_cli

pytestmark = pytest.mark.skipif(not DEBIAN_DIR.is_dir(), reason="needs the Debian package dataset-fashion-mnist")


@pytest.fixture(scope="module")
def fashion_checkpoint(tmp_path_factory) -> Path:
    """A small VGG trained for one epoch on 4,000 Fashion-MNIST images by `affectlab fit`."""
    tmp = tmp_path_factory.mktemp("fashion_vgg")
    config = yaml.safe_load((REPO / "experiments/pruning/fashion_vgg.yaml").read_text())
    config["trainer"].update({"max_epochs": 1, "enable_progress_bar": False, "log_every_n_steps": 10,
                              "logger": False, "callbacks": []})
    config["model"]["init_args"].update({"widths": [8, 16, 16, 32], "hidden": 32})
    config["data"]["init_args"].update({"root": str(tmp / "data"), "train_size": 4000, "val_size": 1000,
                                        "num_workers": 0})
    (tmp / "fashion.yaml").write_text(yaml.safe_dump(config))
    run_cli(["fit", "-c", str(tmp / "fashion.yaml"), "--trainer.default_root_dir", str(tmp / "run")],
            cwd=tmp, AFFECTLAB_RUNS=str(tmp / "runs"))
    (checkpoint,) = (tmp / "run/checkpoints").glob("best-*.ckpt")
    state = torch.load(checkpoint, weights_only=True)["callbacks"]
    (best,) = [v["best_model_score"] for k, v in state.items() if k.startswith("ModelCheckpoint")]
    assert best > 0.3, f"val/acc {best} after one epoch: the small VGG did not learn (chance 0.1)"
    return checkpoint


def _energy_share(trunk: FeatureTrunk, images: torch.Tensor, layer: str) -> torch.Tensor:
    """Fraction of the code's total activation in each channel. ``B×3×H×W`` → ``B×C``."""
    with torch.no_grad():
        code = trunk(images, [layer])[layer].flatten(2).sum(2)
    return code / code.sum(1, keepdim=True)


def test_the_trunk_of_a_trained_checkpoint_is_addressed_by_caffe_names_and_fed_grey(fashion_checkpoint):
    trunk = FeatureTrunk(str(fashion_checkpoint))
    assert trunk.layer_names[:4] == ["conv1_1", "bn1_1", "relu1_1", "conv1_2"] and "pool2" in trunk.layer_names
    assert trunk.preprocess.grey and trunk.feature_scale == pytest.approx(255 * STD)
    codes = trunk(torch.randn(2, 3, 28, 28), ["relu2_1"])
    assert codes["relu2_1"].shape == (2, 16, 14, 14) and torch.isfinite(codes["relu2_1"]).all()


def test_a_grey_network_sees_the_standardised_grey_level_of_the_image():
    image = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    preprocess = CaffeToTorchvision((MEAN,), (STD,)).double()
    expected = (image.mean(1, keepdim=True) - MEAN) / STD
    assert torch.allclose(preprocess(from_unit(image)), expected, atol=1e-5)
    seen = preprocess.seen(from_unit(image))
    assert torch.allclose(preprocess(seen), expected, atol=1e-5)        # nothing the network sees is lost
    assert torch.allclose(seen - from_unit(torch.zeros(1, 3, 1, 1, dtype=torch.float64)),
                          (image.mean(1, keepdim=True) * 255).expand(-1, 3, -1, -1), atol=1e-4)   # equal channels: grey


def test_inverting_a_filter_of_the_trained_network_moves_the_energy_into_that_filter(fashion_checkpoint, tmp_path):
    """The paper's premise: the inverted feature-map code is an image filter k responds to above all others."""
    layer, filters = "relu2_1", [0, 3, 7]
    data = InversionImages(content="coffee", image_size=28, iterations=120)
    module = FeatureMapInversion(network=str(fashion_checkpoint), layers=[layer], filters=filters,
                                 image_size=28, stop_eps=0.0, denoise_weight=0.0)
    Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, default_root_dir=tmp_path, accelerator="cpu").fit(module, datamodule=data)
    data.setup("fit")
    content = from_unit(data.images["content"][None])
    before = _energy_share(module.trunk, content, layer)[0]
    after = _energy_share(module.trunk, module.image.detach()[1:], layer)     # image 0 inverts the original code
    for row, k in enumerate(filters):   # measured: shares 0.26–0.40 (the largest), 5–34× the content's
        assert after[row, k] > 4 * before[k] and k in after[row].topk(2).indices, (k, after[row], before)
    images = module.results()
    assert torch.equal(images[:, 0], images[:, 1]) and torch.equal(images[:, 1], images[:, 2])   # grey network: grey
    assert (tmp_path / "filters.png").is_file()


@pytest.mark.parametrize("cls", [EmotionClassifier, MDAN])
def test_a_resnet_checkpoint_is_addressed_by_graph_node_names(cls, tmp_path):
    model = cls(taxonomy="mikels", backbone="resnet18", pretrained=False)
    checkpoint = tmp_path / "classifier.ckpt"
    torch.save({"state_dict": model.state_dict(), "pytorch-lightning_version": "2.5.0",
                "hyper_parameters": {**model.hparams, "_class_path": f"{cls.__module__}.{cls.__name__}"},
                "datamodule_hyper_parameters": {"_class_path": "affectlab.datamodules.vea.FI"}}, checkpoint)
    trunk = FeatureTrunk(str(checkpoint))
    assert "layer3.1.relu_1" in trunk.layer_names and trunk.layer_names[0] == "stem.0"
    x = torch.randn(1, 3, 64, 64)
    codes = trunk(x, ["layer2"])
    backbone = (model.net if cls is MDAN else model).eval().backbone                # the classifier's own forward
    expected = backbone(CaffeToTorchvision()(x), until="layer2")["layer2"] * trunk.feature_scale
    assert torch.allclose(codes["layer2"], expected, atol=1e-5)


def test_checkpoints_that_are_not_affectlab_classifiers_get_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="written by `affectlab fit`"):
        FeatureTrunk(str(tmp_path / "missing.ckpt"))
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"_class_path": "somewhere.Else"}}, foreign)
    with pytest.raises(ValueError, match="somewhere.Else"):
        FeatureTrunk(str(foreign))


@pytest.fixture(scope="module")
def patches_checkpoint(tmp_path_factory) -> Path:
    """experiments/inversion/train_trunk.yaml, shrunk: 256 crops of 24 px, one epoch, through the CLI."""
    tmp = tmp_path_factory.mktemp("trunk")
    config = yaml.safe_load((REPO / "experiments/inversion/train_trunk.yaml").read_text())
    config["trainer"].update({"max_epochs": 1, "enable_progress_bar": False, "logger": False})
    config["data"]["init_args"].update({"image_size": 24, "train_size": 256, "val_size": 64, "test_size": 64})
    (tmp / "trunk.yaml").write_text(yaml.safe_dump(config))
    run_cli(["fit", "-c", str(tmp / "trunk.yaml"), "--trainer.default_root_dir", str(tmp / "run")],
            cwd=tmp, AFFECTLAB_RUNS=str(tmp / "runs"))
    return tmp / "run/checkpoints/last.ckpt"


def test_the_trunk_config_trains_an_average_pooled_vgg_whose_random_twin_shares_only_the_architecture(
        patches_checkpoint):
    from affectlab.datamodules.inversion import PhotoPatches
    from affectlab.modules.inversion.trained import calibrate_batch_norm

    trained = FeatureTrunk(str(patches_checkpoint))
    torch.manual_seed(0)
    twin = FeatureTrunk(str(patches_checkpoint), pretrained=False)
    assert trained.layer_names == twin.layer_names and "relu3_2" in trained.layer_names
    assert isinstance(trained.sequential.pool1, torch.nn.AvgPool2d)
    assert FeatureTrunk(str(patches_checkpoint), pooling="max").sequential.pool1.__class__ is torch.nn.MaxPool2d
    assert not torch.equal(trained.sequential.conv1_1.weight, twin.sequential.conv1_1.weight)
    assert torch.equal(twin.sequential.bn1_1.running_var, torch.ones(16))          # identity until calibrated
    assert trained.preprocess.grey is False                                        # colour network, colour input
    data = PhotoPatches(image_size=24, train_size=1, val_size=64, test_size=1, batch_size=32)
    batches = [b["image"] for b in data.val_dataloader()]
    calibrate_batch_norm(twin.sequential, batches)
    assert not twin.sequential.bn1_1.training
    with torch.no_grad():
        pre = twin.sequential[:twin.depth("bn2_1") + 1](torch.cat(batches))
    assert pre.mean().abs() < 0.2 and 0.5 < pre.var((0, 2, 3)).mean() < 2.0     # about standardised, as in training
