"""The same methods on a CUDA GPU: results agree with the CPU's, mixed precision trains, nothing stays on the host.

Skipped without a CUDA device; `make test` on a GPU box runs them (about a minute).
"""

from __future__ import annotations

from functools import partial

import lightning as L
import pytest
import torch

from affectlab.datamodules.fashion_mnist import FashionMNIST
from affectlab.datamodules.inversion import InversionImages
from affectlab.datamodules.samples import write_sample
from affectlab.datamodules.sketch import XDoG
from affectlab.modules.inversion import FeatureMapInversion, RandomReallocation
from affectlab.modules.mdan import MDAN
from affectlab.modules.small_cnn import SmallCNNClassifier

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

TINY = {"network": "tiny_vgg", "pretrained": False, "image_size": 24}


def _trainer(tmp_path, accelerator: str, **kwargs) -> L.Trainer:
    return L.Trainer(accelerator=accelerator, devices=1, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path, **kwargs)


@pytest.fixture
def images(tmp_path) -> InversionImages:
    overrides = write_sample(InversionImages, tmp_path / "sample")
    return InversionImages(**{**overrides, "image_size": 24, "iterations": 15})


@pytest.mark.parametrize("cls, extra", [(FeatureMapInversion, {"filters": [0, 1, 2]}), (RandomReallocation, {})])
def test_inversion_on_the_gpu_gives_the_cpu_images(cls, extra, images, tmp_path):
    runs = {}
    for accelerator in ("cpu", "gpu"):
        module = cls(layers=["relu1_2", "relu2_1"], stop_eps=0.05, seed=3, **TINY, **extra)
        _trainer(tmp_path / accelerator, accelerator, max_epochs=1, precision="64-true").fit(module, datamodule=images)
        runs[accelerator] = module
    cpu, gpu = runs["cpu"], runs["gpu"]
    assert gpu.image.device.type == "cuda"
    assert torch.equal(cpu.stopped_at, gpu.stopped_at.cpu())
    assert torch.allclose(cpu.image, gpu.image.detach().cpu(), rtol=1e-7, atol=1e-7)
    assert (tmp_path / "gpu" / f"{cls.grid_name}.png").is_file()


def test_xdog_runs_on_the_device_of_its_input():
    photos = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    xdog = XDoG()
    on_gpu = xdog(photos.cuda())
    assert on_gpu.device.type == "cuda"
    assert torch.allclose(xdog(photos), on_gpu.cpu(), atol=1e-5)


def test_mdan_trains_in_bf16_mixed_precision_on_the_gpu(tmp_path):
    from affectlab.datamodules.vea import FI

    L.seed_everything(0)
    data = FI(root=write_sample(FI, tmp_path / "fi", per_class=20, size=32)["root"], num_workers=0, batch_size=16,
              image_size=32)
    model = MDAN("mikels", backbone="resnet18", pretrained=False, backbone_lr_mult=1.0,
                 optimizer=partial(torch.optim.AdamW, lr=0.01))
    trainer = _trainer(tmp_path, "gpu", max_epochs=4, precision="bf16-mixed", limit_val_batches=0)
    trainer.fit(model, datamodule=data)
    metrics = trainer.test(model, datamodule=data, verbose=False)[0]
    assert all(torch.isfinite(p).all() for p in model.parameters())
    chance = [1 / n for n in model.taxonomy.num_classes]
    assert metrics["test/acc_l1"] > chance[0] + 0.15 and metrics["test/acc_l2"] > chance[1] + 0.1, metrics


def test_a_pruning_step_on_the_gpu_removes_neurons_and_keeps_training(tmp_path):
    pytest.importorskip("torch_pruning")
    from affectlab.callbacks.pruning import GradualGlobalPruning
    from affectlab.callbacks.pruning_graph import widths

    data = FashionMNIST(**{**write_sample(FashionMNIST, tmp_path / "fashion", train=80, test=20), "batch_size": 32})
    model = SmallCNNClassifier(taxonomy=data.taxonomy_spec, in_channels=1, widths=[6, 8], hidden=8)
    before = widths(model)
    pruning = GradualGlobalPruning(warmup_epochs=1, step_ratio=0.2, max_drop=None, calibration_batches=1,
                                   export=False)
    _trainer(tmp_path, "gpu", max_epochs=3, callbacks=[pruning]).fit(model, data)
    assert pruning.step == 2 and widths(model) != before
    assert all(p.device.type == "cuda" and torch.isfinite(p).all() for p in model.parameters())
