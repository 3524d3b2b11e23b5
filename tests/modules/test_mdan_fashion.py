"""MDAN learns real data with a natural hierarchy: Fashion-MNIST under clothing / footwear / bag."""

from __future__ import annotations

import functools
import time

import lightning as L
import pytest
import torch

from affectlab.datamodules.fashion_mnist import DEBIAN_DIR, FashionMNIST, garments
from affectlab.modules.mdan import MDAN


def test_the_garment_taxonomy_keeps_the_release_indices():
    taxonomy = garments()
    assert taxonomy.levels[0] == ("clothing", "footwear", "bag")
    leaf = taxonomy.levels[1]
    assert leaf[5] == "sandal" and leaf[8] == "bag" and leaf[9] == "ankle boot"  # label i is the release's class i
    coarse = taxonomy.labels_at_levels(torch.arange(10))[0].tolist()
    assert coarse == [0, 0, 0, 0, 0, 1, 0, 1, 2, 1]
    with pytest.raises(ValueError, match="taxonomy"):
        FashionMNIST(taxonomy="tree")


@pytest.mark.skipif(not (DEBIAN_DIR / "train-images-idx3-ubyte.gz").exists(), reason="dataset-fashion-mnist not installed")
def test_mdan_beats_chance_at_both_levels_on_fashion_mnist(tmp_path):
    torch.set_num_threads(1)
    start = time.perf_counter()
    L.seed_everything(0, verbose=False)
    data = FashionMNIST(root=str(tmp_path), cache_dir=str(tmp_path), taxonomy="garments", image_size=32,
                        train_size=800, val_size=200, test_size=400, batch_size=32, num_workers=0)
    model = MDAN(data.taxonomy_spec, backbone="resnet18", pretrained=False, in_channels=1, backbone_lr_mult=1.0,
                 optimizer=functools.partial(torch.optim.AdamW, lr=0.002))
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        default_root_dir=tmp_path)
    trainer.fit(model, datamodule=data)
    metrics = trainer.test(model, datamodule=data, verbose=False)[0]
    # Chance: the majority group (clothing, 60 %) and one class in ten.
    assert metrics["test/acc_l1"] > 0.75, metrics
    assert metrics["test/acc_l2"] > 0.3, metrics
    print(f"Fashion-MNIST learning test took {time.perf_counter() - start:.0f} s: {metrics}")
