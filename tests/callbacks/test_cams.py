"""LDCAM heat maps and their agreement with stimuli maps (callbacks/cams.py)."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from affectlab.callbacks.cams import LDCAMLogger, cam_grid, cam_stimuli_agreement
from affectlab.modules.mdan import MDAN


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread_module):
    """One intra-op thread: on a shared 2-core machine more threads only wait for each other."""


def square_stimuli(batch: int = 3, size: int = 32) -> torch.Tensor:
    """``B×1×H×W`` maps with a square of stimuli in the top-left quarter."""
    stimuli = torch.zeros(batch, 1, size, size)
    stimuli[:, :, : size // 2, : size // 2] = 1
    return stimuli


def test_a_cam_on_the_stimuli_agrees_fully():
    stimuli = square_stimuli()
    cam = stimuli[:, 0, ::4, ::4] * 0.9 + 0.05   # coarser grid, resized inside
    result = cam_stimuli_agreement(cam, stimuli)
    assert result["auc"] > 0.95
    assert result["inside_outside"] > 5


def test_a_cam_off_the_stimuli_disagrees_and_a_flat_one_is_neutral():
    stimuli = square_stimuli()
    opposite = cam_stimuli_agreement(1 - stimuli[:, 0], stimuli)
    assert opposite["auc"] < 0.05 and opposite["inside_outside"] < 0.2
    flat = cam_stimuli_agreement(torch.full((3, 8, 8), 0.5), stimuli)
    assert flat["auc"] == pytest.approx(0.5, abs=1e-6) and flat["inside_outside"] == pytest.approx(1.0)
    noise = cam_stimuli_agreement(torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0)), stimuli)
    assert 0.4 < noise["auc"] < 0.6


def test_agreement_is_undefined_without_stimuli_or_background():
    assert cam_stimuli_agreement(torch.rand(2, 8, 8), torch.zeros(2, 32, 32))["auc"].isnan()
    assert cam_stimuli_agreement(torch.rand(2, 8, 8), torch.ones(2, 32, 32))["inside_outside"].isnan()


def test_the_grid_has_one_row_per_image_and_one_column_per_level():
    images, cams = torch.randn(3, 3, 16, 16), [torch.rand(3, 4, 4), torch.rand(3, 2, 2)]
    grid = cam_grid(images, cams, pad=1)
    assert grid.shape == (3 * 18, 3 * 18, 3) and grid.dtype.name == "uint8"


def test_the_logger_writes_heat_maps_and_agreement_every_validation_epoch(tmp_path):
    torch.manual_seed(0)
    model = MDAN("mikels", backbone="resnet18", pretrained=False)
    batches = [{"image": torch.randn(4, 3, 32, 32), "label": torch.tensor([0, 1, 2, 3]),
                "index": torch.arange(4), "path": [f"{i}.jpg" for i in range(4)],
                "stimuli": square_stimuli(4)} for _ in range(2)]
    loader = DataLoader(batches, batch_size=None)
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        callbacks=[LDCAMLogger(num_images=2)], default_root_dir=tmp_path)
    trainer.fit(model, train_dataloaders=loader, val_dataloaders=loader)
    assert sorted(p.name for p in (tmp_path / "media").glob("val_ldcam_*.png")) == ["val_ldcam_e000.png", "val_ldcam_e001.png"]
    for key in ("val/cam_auc_l1", "val/cam_auc_l2", "val/cam_inside_outside_l2"):
        assert 0 <= float(trainer.callback_metrics[key]) <= (1 if "auc" in key else 100), key


def test_images_without_a_stimuli_map_are_left_out_of_the_agreement():
    cam = torch.zeros(2, 8, 8)
    cam[:, :4] = 1.0                                   # attention on the top half
    stimuli = torch.zeros(2, 1, 8, 8)
    stimuli[0, :, :4] = 1.0                            # image 0: stimuli on the top half
    stimuli[1] = -1.0                                  # image 1: map missing
    agreement = cam_stimuli_agreement(cam, stimuli)
    assert agreement["auc"] == 1.0
