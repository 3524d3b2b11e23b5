"""Gradual global pruning makes MDAN thinner, keeps its heads, and the pruned checkpoint reloads."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from affectlab.callbacks.pruning import GradualGlobalPruning
from affectlab.datamodules.vea import FI
from affectlab.modules.mdan import MDAN


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread_module):
    """Tiny networks: one intra-op thread is faster than two busy ones."""


def test_mdan_is_pruned_physically_and_reloads(fi_sample, tmp_path):
    L.seed_everything(0)
    data = FI(root=str(fi_sample), batch_size=16, num_workers=0, image_size=32)
    model = MDAN("mikels", backbone="resnet18", pretrained=False, backbone_lr_mult=1.0)
    before = sum(p.numel() for p in model.parameters())
    pruning = GradualGlobalPruning(warmup_epochs=1, step_ratio=0.1, max_drop=None, calibration_batches=1)
    trainer = L.Trainer(max_epochs=3, limit_train_batches=2, limit_val_batches=1, accelerator="cpu", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, default_root_dir=tmp_path,
                        callbacks=[pruning], num_sanity_val_steps=0)
    trainer.fit(model, data)
    after = sum(p.numel() for p in model.parameters())
    assert pruning.step >= 1 and after < before, (pruning.step, before, after)
    net = model.net
    assert net.global_head.out_features == 8
    assert [local.maps.out_channels for local in net.local] == [2, 8]  # heads keep every class
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    out = model.compute(x)
    assert [p.shape for p in out["probs"]] == [(2, 2), (2, 8)]
    assert all(torch.isfinite(p).all() for p in out["probs"])
    ckpt = tmp_path / "pruned.ckpt"
    trainer.save_checkpoint(ckpt)
    reloaded = MDAN.load_from_checkpoint(ckpt).eval()
    assert sum(p.numel() for p in reloaded.parameters()) == after
    torch.testing.assert_close(reloaded.compute(x)["probs"][1], out["probs"][1])
