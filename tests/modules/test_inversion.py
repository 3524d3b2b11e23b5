"""Feature map inversion (docs/inversion.md): code modifications, the batched optimisation, its outputs."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch import Trainer
from torch import nn
from torchvision.transforms import functional as TF

from affectlab.datamodules.inversion import InversionImages
from affectlab.datamodules.samples import write_sample
from affectlab.modules.inversion import FeatureMapInversion, RandomReallocation, StyleTransfer, codes
from affectlab.modules.inversion.denoise import from_unit, postprocess, tv_denoise
from affectlab.modules.inversion.trunk import (
    CAFFE_MEAN,
    TORCHVISION_MEAN,
    TORCHVISION_STD,
    CaffeToTorchvision,
    FeatureTrunk,
)

TINY = {"network": "tiny_vgg", "pretrained": False}


@pytest.fixture
def images(tmp_path) -> InversionImages:
    """The sample content/style pair at 24 px, 12 iterations."""
    overrides = write_sample(InversionImages, tmp_path / "sample")
    return InversionImages(**{**overrides, "image_size": 24, "iterations": 12})


def fit(module, data: InversionImages, tmp_path, precision="32-true") -> FeatureMapInversion:
    Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, precision=precision, default_root_dir=tmp_path,
            accelerator="cpu", devices=1).fit(module, datamodule=data)
    return module


# -- code modifications ----------------------------------------------------------------------------------
def test_feature_map_sums_every_channel_into_filter_k():
    code = torch.rand(5, 4, 3)
    target = codes.feature_map(code, 2)
    assert torch.allclose(target[2], code.sum(0))
    assert target[[0, 1, 3, 4]].abs().sum() == 0
    assert torch.isclose(target.sum(), code.sum())
    with pytest.raises(ValueError, match="out of range"):
        codes.feature_map(code, 5)


def test_random_reallocation_keeps_each_channel_pattern_and_the_total_energy():
    code = torch.rand(6, 5, 5, dtype=torch.float64) + 0.1
    target = codes.random(code, torch.Generator().manual_seed(0))
    ratio = target / code                                     # one factor per channel: the same pattern
    assert torch.allclose(ratio, ratio[:, :1, :1].expand_as(ratio))
    assert torch.isclose(target.sum(), code.sum())
    again = codes.random(code, torch.Generator().manual_seed(0))
    other = codes.random(code, torch.Generator().manual_seed(1))
    assert torch.equal(target, again) and not torch.allclose(target, other)


def test_random_reallocation_guards_dead_channels_and_near_zero_share_sums():
    code = torch.rand(6, 4, 4)
    code[[1, 4]] = 0                                          # dead channels: Σ_p A_c = 0
    target = codes.random(code, torch.Generator().manual_seed(0))
    assert torch.isfinite(target).all()
    assert target[[1, 4]].abs().sum() == 0
    assert torch.isclose(target.sum(), code.sum(), rtol=1e-4)
    assert codes.random(torch.zeros(3, 2, 2)).abs().sum() == 0           # no energy at all: zeros, not NaN
    generator = torch.Generator().manual_seed(0)
    # a zero-mean draw over two channels has sums near zero often; the shares must stay bounded
    worst = max(codes.random_shares(2, generator, mean=0.0, std=1.0).abs().max().item() for _ in range(300))
    assert worst <= 1 / 0.05 + 1e-9


def test_energy_and_gram_statistics():
    code = torch.rand(2, 3, 4, 5)
    assert torch.allclose(codes.energy(code), code.sum((-2, -1)) / 20)
    flat = code.flatten(-2)
    assert torch.allclose(codes.gram(code), torch.einsum("bcp,bdp->bcd", flat, flat) / 20)


# -- the trunk --------------------------------------------------------------------------------------------
def test_caffe_input_maps_exactly_onto_torchvision_normalisation():
    unit = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    caffe = unit * 255 - torch.tensor(CAFFE_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    expected = TF.normalize(unit, TORCHVISION_MEAN, TORCHVISION_STD)
    assert torch.allclose(CaffeToTorchvision().double()(caffe), expected, atol=1e-6)  # float32 constants
    assert torch.allclose(from_unit(unit), caffe)


def test_vgg19_trunk_has_caffe_names_average_pools_and_stops_at_the_deepest_layer():
    trunk = FeatureTrunk("vgg19", pretrained=False)
    names = trunk.layer_names
    assert [n for n in names if n.startswith("relu")][-1] == "relu5_4" and "relu3_2" in names
    assert sum(n.startswith("conv") for n in names) == 16
    assert all(isinstance(m, nn.AvgPool2d) for n, m in trunk.sequential.named_children() if n.startswith("pool"))
    ran = []
    for name, module in trunk.sequential.named_children():
        module.register_forward_hook(lambda m, i, o, name=name: ran.append(name))
    out = trunk(torch.zeros(1, 3, 16, 16), ["relu1_1", "relu2_1"])
    assert set(out) == {"relu1_1", "relu2_1"} and ran[-1] == "relu2_1"
    ran.clear()
    trunk(torch.zeros(1, 3, 32, 32), ["relu2_1"], truncate=False)
    assert ran[-1] == "pool5"
    with pytest.raises(ValueError, match="unknown layer"):
        trunk.check(["relu6_1"])


def test_any_torchvision_cnn_is_addressed_by_node_name():
    trunk = FeatureTrunk("resnet18", pretrained=False)
    out = trunk(torch.zeros(1, 3, 32, 32), ["layer1.0.relu", "layer2"])
    assert out["layer1.0.relu"].shape == (1, 64, 8, 8) and out["layer2"].shape == (1, 128, 4, 4)
    assert trunk.depth("layer1.0.relu") < trunk.depth("layer2")
    with pytest.raises(ValueError, match="unknown layer"):
        trunk.check(["layer9"])


# -- the optimisation -------------------------------------------------------------------------------------
def test_the_loss_falls(images, tmp_path):
    module = FeatureMapInversion(layers=["relu1_2", "relu2_1"], filters=[0, 3], image_size=24, **TINY)
    start = module.image.detach().clone()
    fit(module, images, tmp_path)
    before = module.image_losses(start)
    after = module.image_losses(module.image.detach())
    assert (after < before).all(), (before, after)
    originals = [0, 3]                                        # each row starts with the plain inversion
    assert (after[originals] < 0.5 * before[originals]).all(), (before, after)


def test_a_batched_inversion_equals_single_inversions(images, tmp_path):
    """N filters together = N runs of one filter: same seed, same iterations, per-image early stop."""
    settings = dict(image_size=24, include_original=False, stop_eps=0.15, **TINY)
    batched = fit(FeatureMapInversion(layers=["relu2_1"], filters=[0, 1, 2], **settings), images, tmp_path,
                  precision="64-true")
    assert len(set(batched.stopped_at.tolist())) > 1, "the images should stop at different iterations"
    for index, k in enumerate([0, 1, 2]):
        single = fit(FeatureMapInversion(layers=["relu2_1"], filters=[k], **settings), images, tmp_path,
                     precision="64-true")
        assert single.stopped_at.item() == batched.stopped_at[index].item()
        assert torch.allclose(single.image[0], batched.image[index], rtol=1e-9, atol=1e-9)


CHUNKED = {"filters": (FeatureMapInversion, dict(layers=["relu1_2", "relu2_1"], filters=[0, 1, 2]), 4),
           "style": (StyleTransfer, dict(style_layers=["relu1_1", "relu2_1"], content_layer="relu2_2"), 1)}


@pytest.mark.parametrize("method, optimizer", [("filters", "sgd"), ("filters", "lbfgs"), ("style", "sgd")])
def test_chunks_through_the_trunk_give_the_images_of_one_pass(images, tmp_path, method, optimizer):
    cls, arguments, size = CHUNKED[method]
    settings = dict(image_size=24, stop_eps=0.15, optimizer=optimizer, **arguments, **TINY)
    if cls is FeatureMapInversion:
        settings["include_original"] = False
    runs = {}
    for chunk in (None, size):                  # one pass, or passes of at most `size` images
        module, sizes = cls(**settings, chunk_size=chunk), []
        module.trunk.register_forward_hook(lambda _, inputs, __, sizes=sizes: sizes.append(len(inputs[0])))
        runs[chunk] = fit(module, images, tmp_path, precision="64-true"), sizes
    (whole, whole_sizes), (chunked, chunked_sizes) = runs[None], runs[size]
    assert max(chunked_sizes) == size < max(whole_sizes) and len(chunked_sizes) > len(whole_sizes)
    assert torch.equal(whole.stopped_at, chunked.stopped_at) and whole.iteration == chunked.iteration
    assert torch.allclose(whole.image, chunked.image, rtol=1e-9, atol=1e-9)


def test_energy_and_gram_losses_are_zero_at_the_style_image(images, tmp_path):
    images.setup()
    module = StyleTransfer(style_layers=["relu1_1", "relu2_1", "relu3_1"], content_layer="relu2_2", image_size=24,
                           **TINY)
    assert module.hparams.weight_decay == 5e-3 and module.num_images == 4        # the original's style settings
    style = images.images["style"][None]
    module.prepare({"content": style, "style": style})
    at_style = module.image_losses(from_unit(style).repeat(4, 1, 1, 1))
    assert at_style.abs().max() < 1e-6 * module.image_losses(module.image.detach()).min()
    relative = module.style_losses(from_unit(style))
    assert all(float(v.abs().max()) < 1e-10 for v in relative.values())
    module.prepare({"content": style, "style": images.images["content"][None]})  # another style: not zero
    losses = module.image_losses(from_unit(style).repeat(4, 1, 1, 1))
    assert (losses[[0, 1, 3]] > 1e3).all() and losses[2] < 1e-6                # content only: still at its target
    relative = module.style_losses(from_unit(style))
    assert relative["gram"] > 1e-3 and relative["energy"] > 1e-3 and relative["content"] < 1e-10


def test_lbfgs_and_priors_are_options_that_also_lower_the_loss(images, tmp_path):
    module = RandomReallocation(layers=["relu1_1", "relu2_1"], samples=2, image_size=24, optimizer="lbfgs",
                                tv_weight=1e-3, alpha_weight=1e-3, **TINY)
    start = module.image.detach().clone()
    images.iterations = 4                                     # each L-BFGS step evaluates the loss several times
    fit(module, images, tmp_path)
    assert torch.isfinite(module.image).all()
    assert (module.image_losses(module.image.detach()) < module.image_losses(start)).all()


def test_tv_denoising_smooths_and_postprocessing_returns_8_bit_images():
    noisy = torch.randint(0, 256, (1, 3, 16, 16), dtype=torch.uint8)
    smooth = tv_denoise(noisy, 0.2)

    def variation(x):
        return (x.float().diff(dim=-1).abs().sum() + x.float().diff(dim=-2).abs().sum()).item()

    assert smooth.dtype == torch.uint8 and variation(smooth) < 0.5 * variation(noisy)
    out = postprocess(torch.full((2, 3, 4, 4), 500.0), weight=0.0)
    assert out.dtype == torch.uint8 and (out == 255).all()


def test_the_cli_writes_the_grid_to_the_run_folder_and_wandb(tmp_path):
    from affectlab.experiments.cli import main

    overrides = write_sample(InversionImages, tmp_path / "sample")
    data = [f"--data.init_args.{k}={v}" for k, v in overrides.items()]
    cli = main(["fit", "-c", "experiments/inversion/filters.yaml", "--model.init_args.network=tiny_vgg",
                "--model.init_args.pretrained=false", "--model.init_args.layers=[relu1_1,relu2_1]",
                "--model.init_args.filters=[0,1]", "--trainer.enable_progress_bar=false", *data])
    run = tmp_path / "runs" / "inversion-filters"
    folder = next(run.iterdir())
    assert (folder / "filters.png").stat().st_size > 0 and (folder / "filters_pixels.png").stat().st_size > 0
    assert cli.model.iteration == 3
    assert list(folder.glob("wandb/*/files/media/images/**/filters*.png")), "the grid should be logged to W&B"
